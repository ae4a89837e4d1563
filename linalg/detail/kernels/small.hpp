// Hand-written kernels for matrices of order n <= kSmallN, where one LAPACK call per matrix
// costs more than the arithmetic. Same contracts as kernels.hpp; callers guarantee
// 1 <= n <= kSmallN (n is the triangle's order for trsm/trmm, and m, n, k for gemm).
#pragma once

#include <cstdint>
#include <type_traits>

#include "linalg/detail/kernels/kernels.hpp"

namespace cholla::linalg::kernels::small {

// Calls fn(std::integral_constant<int, N>{}) for N == n, so each order gets its own fully
// unrolled instantiation. n must lie in [1, kSmallN].
template <class Fn>
void dispatch(int64_t n, Fn&& fn) {
  static_assert(kSmallN == 8, "extend the switch below");
  switch (n) {
    case 1: fn(std::integral_constant<int, 1>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    case 3: fn(std::integral_constant<int, 3>{}); break;
    case 4: fn(std::integral_constant<int, 4>{}); break;
    case 5: fn(std::integral_constant<int, 5>{}); break;
    case 6: fn(std::integral_constant<int, 6>{}); break;
    case 7: fn(std::integral_constant<int, 7>{}); break;
    default: fn(std::integral_constant<int, 8>{}); break;
  }
}

// The entry points kernels.hpp's functions call: the batch split over the thread pool in
// fixed chunks (autodiff/parallel.hpp), each chunk run by the SIMD kernel where there is one
// (potrf, potri: small_cholesky_simd.cpp; trsm, trmm: small_blas_simd.cpp) and by the reference
// loops otherwise.
#include "linalg/detail/kernels/small_signatures.inc"  // IWYU pragma: export

// Plain loops, one matrix at a time: the reference the SIMD kernels are tested against, and
// the path of the ops without one.
namespace reference {
#include "linalg/detail/kernels/small_signatures.inc"  // IWYU pragma: export
}  // namespace reference

// Batched across SIMD lanes (matrices transposed into lane-major blocks in cache), Highway
// runtime dispatch. Same contracts and infos as the reference; results equal up to rounding
// (bit-identical where the compiler does not contract multiply-adds).
namespace simd {
void potrf(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info);
void potri(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info);
void trsm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch);
void trmm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch);
}  // namespace simd

}  // namespace cholla::linalg::kernels::small
