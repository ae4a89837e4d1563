// Helpers for tests that compare or corrupt optimiser state.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include <cholla.hpp>

namespace cholla::test {

// Every value of the state (or of the tensors), in order, as one vector.
inline std::vector<double> flat_values(const optim::NamedTensors& state) {
  std::vector<double> out;
  for (const auto& [name, t] : state) out.insert(out.end(), t.data().begin(), t.data().end());
  return out;
}
inline std::vector<double> flat_values(const std::vector<Tensor>& tensors) {
  std::vector<double> out;
  for (const Tensor& t : tensors) out.insert(out.end(), t.data().begin(), t.data().end());
  return out;
}

// Bitwise equality: "unchanged" must hold for every bit, NaN and -0.0 included.
inline bool bit_equal(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// The state with entry `name` (which must exist) replaced by `value`.
inline optim::NamedTensors with(optim::NamedTensors state, const std::string& name, Tensor value) {
  bool found = false;
  for (auto& [n, t] : state)
    if (n == name) t = value, found = true;
  REQUIRE_MESSAGE(found, name);
  return state;
}

}  // namespace cholla::test
