// cholla::Rng: a seeded generator whose streams are identical on every platform and compiler.
//
// std::normal_distribution is implementation-defined, so the normal variates are drawn here
// (Marsaglia's polar method) from the 64-bit Mersenne Twister, which the standard pins down.
#pragma once

#include <cstdint>
#include <random>

namespace cholla {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : engine_(seed) {}

  // Uniform on [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal.
  double normal();
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);
  uint64_t bits() { return engine_(); }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace cholla
