// Helpers shared by the kernel translation units. Not installed, not part of the API.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cholla::linalg::kernels::detail {

// BLAS/LAPACK take 32-bit ints. A size outside [0, INT_MAX] is a caller bug, not a numerical
// failure, so it throws instead of being reported through `info`.
inline int to_int(int64_t value, const char* what) {
  if (value < 0 || value > INT_MAX)
    throw std::invalid_argument(std::string("linalg kernels: ") + what + " = " +
                                std::to_string(value) + " is out of range");
  return static_cast<int>(value);
}

inline void require_nonnegative(int64_t value, const char* what) {
  if (value < 0)
    throw std::invalid_argument(std::string("linalg kernels: negative ") + what + " = " +
                                std::to_string(value));
}

// Checks n and batch; true, with every info set to 0, when there is nothing to factorise.
inline bool empty_factorisation(int64_t n, int64_t batch, int64_t* info) {
  require_nonnegative(n, "n");
  require_nonnegative(batch, "batch");
  if (n != 0 && batch != 0) return false;
  std::fill(info, info + batch, int64_t{0});
  return true;
}

// Zero the strict upper (lower == true) or strict lower triangle of a row-major n x n matrix.
inline void zero_other_triangle(bool lower, int64_t n, double* a) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t begin = lower ? i + 1 : 0;
    const int64_t end = lower ? n : i;
    for (int64_t j = begin; j < end; ++j) a[i * n + j] = 0.0;
  }
}

// Copy the lower triangle of a row-major n x n matrix onto its upper triangle (or back).
// Tiled: a plain loop walks one side by columns (a TLB miss per element for large n);
// 8 x 8 tiles stay clear of the cache-set conflicts of power-of-two row strides.
inline void mirror_triangle(bool from_lower, int64_t n, double* a) {
  constexpr int64_t kTile = 8;
  for (int64_t ib = 0; ib < n; ib += kTile)
    for (int64_t jb = ib; jb < n; jb += kTile)
      for (int64_t i = ib; i < std::min(ib + kTile, n); ++i)
        for (int64_t j = std::max(jb, i + 1); j < std::min(jb + kTile, n); ++j) {
          if (from_lower)
            a[i * n + j] = a[j * n + i];
          else
            a[j * n + i] = a[i * n + j];
        }
}

}  // namespace cholla::linalg::kernels::detail
