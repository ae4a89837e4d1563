// Shared test helpers: reproducible inputs and one-line first- and second-order checks.
#pragma once

#include <doctest/doctest.h>

#include <cholla.hpp>
#include <fstream>

namespace cholla::test {

// Values in [lo, hi) from a fixed seed.
inline Tensor uniform(const Shape& shape, double lo, double hi, uint64_t seed = 1) {
  Rng rng(seed);
  return Tensor::uniform(shape, lo, hi, rng);
}

// Both orders of derivative against finite differences; failures print the worst element.
inline void check_gradients(const TensorFunction& f, const std::vector<Tensor>& inputs,
                            GradcheckOptions options = {}) {
  const auto first = gradcheck(f, inputs, options);
  CHECK_MESSAGE(first.ok, first.report);
  const auto second = gradgradcheck(f, inputs, options);
  CHECK_MESSAGE(second.ok, second.report);
}

inline void check_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  REQUIRE(t.numel() == static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i)
    CHECK_MESSAGE(t.data()[i] == doctest::Approx(expected[i]).epsilon(tol).scale(1.0),
                  "element ", i);
}

// Resident memory of this process in KiB (Linux /proc), for flat-memory tests.
inline long resident_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * 4;
}

}  // namespace cholla::test
