// potrf for n <= kSmallN vectorised across the batch (helpers in small_simd-inl.h): the
// named triangles of a block of Lanes(d) matrices are gathered lane-major, factorised with
// one vector operation per scalar one of the reference loop (small_cholesky.cpp), in the
// same order, and scattered back. Highway compiles this file once per SIMD target.
//
// A block whose every pivot is positive is written back at once. A matrix with a failing
// pivot is left to the reference kernel on its untouched input, so infos and the partially
// factorised matrix follow LAPACK's convention exactly as the reference does.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "linalg/kernels/small_cholesky_simd.cpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include <array>

#include "linalg/kernels/small_simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace cholla::linalg::kernels::small::HWY_NAMESPACE {

// Packed index of L(i, j), j <= i, in the lane-major buffer.
constexpr int packed(int i, int j) { return i * (i + 1) / 2 + j; }

// Offsets of L(i, j) in packed order within a row-major matrix holding L (lower) or
// U = L^T (upper).
template <int N, bool Lower>
constexpr std::array<int, N * (N + 1) / 2> triangle_offsets() {
  std::array<int, N * (N + 1) / 2> offsets{};
  for (int i = 0; i < N; ++i)
    for (int j = 0; j <= i; ++j) offsets[static_cast<size_t>(packed(i, j))] = Lower ? i * N + j : j * N + i;
  return offsets;
}

// Cholesky–Crout on the packed lane-major block. Returns the lanes whose every pivot was
// positive (a NaN pivot is not).
template <int N>
HWY_INLINE hn::Mask<D> factorise_block(D d, double* x) {
  const size_t lanes = hn::Lanes(d);
  const auto entry = [&](int i, int j) { return x + static_cast<size_t>(packed(i, j)) * lanes; };
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
void potrf_batch(double* A, int64_t stride, int64_t batch, int64_t* info) {
  const D d;
  const size_t lanes = hn::Lanes(d);
  static constexpr auto kOffsets = triangle_offsets<N, Lower>();
  constexpr int kEntries = N * (N + 1) / 2;
  const auto offset = [](int e) { return kOffsets[static_cast<size_t>(e)]; };
  for (int64_t b = 0; b < batch; b += static_cast<int64_t>(lanes)) {
    const Block blk{lanes, static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(lanes), batch - b)), stride};
    double* a = A + b * stride;
    HWY_ALIGN double x[kEntries * kMaxLanes];
    gather(d, blk, a, kEntries, offset, x);
    const auto positive = factorise_block<N>(d, x);
    HWY_ALIGN double ok[kMaxLanes];
    hn::Store(hn::IfThenElseZero(positive, hn::Set(d, 1.0)), d, ok);
    for (size_t l = 0; l < blk.count; ++l) {
      double* m = a + static_cast<int64_t>(l) * stride;
      if (ok[l] == 0.0) {
        reference::potrf(Lower, N, m, stride, 1, info + b + static_cast<int64_t>(l));
        continue;
      }
      for (int i = 0; i < N; ++i)  // the other triangle is zeroed, as the contract says
        for (int j = i + 1; j < N; ++j) m[Lower ? i * N + j : j * N + i] = 0.0;
      for (int e = 0; e < kEntries; ++e) m[offset(e)] = x[static_cast<size_t>(e) * lanes + l];
      info[b + static_cast<int64_t>(l)] = 0;
    }
  }
}

void potrf_kernel(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  dispatch(n, [&](auto order) {
    with_flag(lower, [&](auto is_lower) {
      potrf_batch<decltype(order)::value, decltype(is_lower)::value>(A, stride, batch, info);
    });
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
