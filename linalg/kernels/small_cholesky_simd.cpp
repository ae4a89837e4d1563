// potrf for n <= kSmallN vectorised across the batch: blocks of Lanes(d) matrices are
// transposed into a lane-major buffer (entry (i, j) of every matrix of the block side by
// side), factorised with one vector operation per scalar one of the reference loop, in the
// same order, and transposed back. Highway compiles this file once per SIMD target.
//
// A block whose every pivot is positive is written back at once. A lane with a failing
// pivot is left to the reference kernel on the untouched input, so infos and the partially
// factorised matrix are exactly LAPACK's convention (small_cholesky.cpp). The last partial
// block is padded with identity matrices, which factorise trivially and are never written.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "linalg/kernels/small_cholesky_simd.cpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include <hwy/highway.h>

#include <algorithm>
#include <cstddef>

#include "linalg/kernels/small.hpp"

HWY_BEFORE_NAMESPACE();
namespace cholla::linalg::kernels::small::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<double>;
using V = hn::Vec<D>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(double);

// Position of L(i, j) in a row-major matrix holding L (lower) or U = L^T (upper).
template <int N, bool Lower>
constexpr int at(int i, int j) {
  return Lower ? i * N + j : j * N + i;
}

// Lane-major copy of the named triangle of lanes [0, count) of the block at `a`; the lanes
// past count (a partial last block) get the identity. Full is count == Lanes(d), known at
// compile time so the common case has no per-element test.
template <int N, bool Lower, bool Full>
void load_block(D d, const double* a, int64_t stride, size_t count, double* x) {
  const size_t lanes = hn::Lanes(d);
  for (size_t l = 0; l < lanes; ++l) {
    const double* m = a + static_cast<int64_t>(l) * stride;
    for (int i = 0; i < N; ++i)
      for (int j = 0; j <= i; ++j)
        x[(i * N + j) * lanes + l] = Full || l < count ? m[at<N, Lower>(i, j)] : (i == j ? 1.0 : 0.0);
  }
}

// Cholesky–Crout on the lane-major block, the reference loop's operations in its order.
// Returns the lanes whose every pivot was positive (NaN pivots are not).
template <int N>
hn::Mask<D> factorise_block(D d, double* x) {
  const size_t lanes = hn::Lanes(d);
  const auto entry = [&](int i, int j) { return x + (i * N + j) * lanes; };
  const V zero = hn::Zero(d), one = hn::Set(d, 1.0);
  auto positive = hn::Gt(one, zero);  // all true
  for (int j = 0; j < N; ++j) {
    V pivot = hn::Load(d, entry(j, j));
    for (int p = 0; p < j; ++p) {
      const V ljp = hn::Load(d, entry(j, p));
      pivot = hn::Sub(pivot, hn::Mul(ljp, ljp));
    }
    positive = hn::And(positive, hn::Gt(pivot, zero));
    pivot = hn::Sqrt(pivot);  // NaN in failing lanes, which are never written back
    hn::Store(pivot, d, entry(j, j));
    const V r = hn::Div(one, pivot);
    for (int i = j + 1; i < N; ++i) {
      V s = hn::Load(d, entry(i, j));
      for (int p = 0; p < j; ++p)
        s = hn::Sub(s, hn::Mul(hn::Load(d, entry(i, p)), hn::Load(d, entry(j, p))));
      hn::Store(hn::Mul(s, r), d, entry(i, j));
    }
  }
  return positive;
}

template <int N, bool Lower>
void store_lane(size_t lanes, const double* x, size_t l, double* m) {
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) m[at<N, Lower>(i, j)] = j <= i ? x[(i * N + j) * lanes + l] : 0.0;
}

// Factorises lanes [0, count) of the block starting at matrix `a` (count <= Lanes(d)).
template <int N, bool Lower, bool Full>
void potrf_block(D d, double* a, int64_t stride, size_t count, int64_t* info) {
  const size_t lanes = hn::Lanes(d);
  HWY_ALIGN double x[N * N * kMaxLanes];  // x[(i * N + j) * lanes + l] = L(i, j) of lane l
  load_block<N, Lower, Full>(d, a, stride, count, x);
  const auto positive = factorise_block<N>(d, x);
  if (HWY_LIKELY(hn::AllTrue(d, positive))) {
    for (size_t l = 0; l < count; ++l) {
      store_lane<N, Lower>(lanes, x, l, a + static_cast<int64_t>(l) * stride);
      info[l] = 0;
    }
    return;
  }
  HWY_ALIGN double ok[kMaxLanes];
  hn::Store(hn::IfThenElseZero(positive, hn::Set(d, 1.0)), d, ok);
  for (size_t l = 0; l < count; ++l) {
    double* m = a + static_cast<int64_t>(l) * stride;
    if (ok[l] == 0.0) {
      reference::potrf(Lower, N, m, stride, 1, info + l);
    } else {
      store_lane<N, Lower>(lanes, x, l, m);
      info[l] = 0;
    }
  }
}

template <int N, bool Lower>
void potrf_batch(double* A, int64_t stride, int64_t batch, int64_t* info) {
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t b = 0;
  for (; b + lanes <= batch; b += lanes)
    potrf_block<N, Lower, true>(d, A + b * stride, stride, static_cast<size_t>(lanes), info + b);
  if (b < batch)
    potrf_block<N, Lower, false>(d, A + b * stride, stride, static_cast<size_t>(batch - b), info + b);
}

void potrf_kernel(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  dispatch(n, [&](auto order) {
    constexpr int N = decltype(order)::value;
    lower ? potrf_batch<N, true>(A, stride, batch, info) : potrf_batch<N, false>(A, stride, batch, info);
  });
}

}  // namespace cholla::linalg::kernels::small::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cholla::linalg::kernels::small::simd {

HWY_EXPORT(potrf_kernel);

void potrf(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  if (batch <= 0) return;
  HWY_DYNAMIC_DISPATCH(potrf_kernel)(lower, n, A, stride, batch, info);
}

}  // namespace cholla::linalg::kernels::small::simd
#endif  // HWY_ONCE
