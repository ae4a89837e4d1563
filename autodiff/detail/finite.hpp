// first_non_finite: where the first NaN or Inf of a buffer is, or -1. Every factorisation and
// distribution checks its inputs with it, so it must cost next to nothing on clean data: the
// scan tests exponent bits with integer operations, which the compiler vectorises (a
// floating-point reduction would not be, without -ffast-math).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>

namespace cholla {

inline int64_t first_non_finite(std::span<const double> values) {
  constexpr uint64_t kExponent = 0x7ff0000000000000ULL;
  const size_t n = values.size();
  const double* p = values.data();
  constexpr size_t kBlock = 256;
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t end = start + kBlock < n ? start + kBlock : n;
    uint64_t any = 0;
    for (size_t i = start; i < end; ++i) {
      uint64_t bits;
      std::memcpy(&bits, p + i, sizeof bits);
      // An all-ones exponent (NaN, Inf) carries into bit 63 when one more unit is added to it:
      // only and/add/or, which vectorise.
      any |= (bits & kExponent) + (1ULL << 52);
    }
    if ((any >> 63) != 0)
      for (size_t i = start; i < end; ++i)
        if (!std::isfinite(p[i])) return static_cast<int64_t>(i);
  }
  return -1;
}

}  // namespace cholla
