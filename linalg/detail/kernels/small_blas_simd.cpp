// trsm and trmm for n <= kSmallN vectorised across the batch (helpers in
// small_simd-inl.h): each SIMD lane holds one matrix of the batch. op(T), then one column
// (left) or row (right) of B at a time are gathered lane-major, computed with the reference
// loops' operations in their order (small_blas.cpp), and scattered back. Highway compiles
// this file once per SIMD target.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "linalg/detail/kernels/small_blas_simd.cpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include "linalg/detail/kernels/small_simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace cholla::linalg::kernels::small::HWY_NAMESPACE {

// op(T) of every lane (the whole N x N, as the reference's LocalTri copies it) and, for
// solves, the reciprocals of its diagonal.
template <int N>
struct LaneTri {
  HWY_ALIGN double t[N * N * kMaxLanes];
  HWY_ALIGN double rdiag[N * kMaxLanes];
  size_t lanes;
  LaneTri(D d, const Block& blk, const double* T, bool transpose, bool solve) : lanes(blk.lanes) {
    gather(d, blk, T, N * N, [&](int e) { return transpose ? (e % N) * N + e / N : e; }, t);
    if (solve)
      for (int i = 0; i < N; ++i)
        hn::Store(hn::Div(hn::Set(d, 1.0), at(d, i, i)), d, rdiag + static_cast<size_t>(i) * lanes);
  }
  V at(D d, int i, int j) const { return hn::Load(d, t + static_cast<size_t>(i * N + j) * lanes); }
  V rd(D d, int i) const { return hn::Load(d, rdiag + static_cast<size_t>(i) * lanes); }
};

// x holds one column (left) or row (right) of B across the lanes: x[i * lanes + l].
template <int N, bool EffLower, bool Right, bool Solve>
void triangular_vector(D d, const LaneTri<N>& T, double alpha, double* x) {
  const size_t lanes = T.lanes;
  const auto X = [&](int i) { return x + static_cast<size_t>(i) * lanes; };
  const V a = hn::Set(d, alpha);
  for (int i = 0; i < N; ++i) hn::Store(hn::Mul(a, hn::Load(d, X(i))), d, X(i));
  if constexpr (Solve && !Right) {  // op(T) x = alpha b, right-looking substitution
    for (int s = 0; s < N; ++s) {
      const int j = EffLower ? s : N - 1 - s;
      const V xj = hn::Mul(hn::Load(d, X(j)), T.rd(d, j));
      hn::Store(xj, d, X(j));
      for (int i = EffLower ? j + 1 : 0; i < (EffLower ? N : j); ++i)
        hn::Store(hn::Sub(hn::Load(d, X(i)), hn::Mul(T.at(d, i, j), xj)), d, X(i));
    }
  } else if constexpr (Solve) {  // x op(T) = alpha b
    for (int s = 0; s < N; ++s) {
      const int j = EffLower ? N - 1 - s : s;
      V xj = hn::Load(d, X(j));
      for (int i = EffLower ? j + 1 : 0; i < (EffLower ? N : j); ++i)
        xj = hn::Sub(xj, hn::Mul(hn::Load(d, X(i)), T.at(d, i, j)));
      hn::Store(hn::Mul(xj, T.rd(d, j)), d, X(j));
    }
  } else {
    HWY_ALIGN double y[N * kMaxLanes];
    const auto Y = [&](int i) { return y + static_cast<size_t>(i) * lanes; };
    for (int i = 0; i < N; ++i) hn::Store(hn::Zero(d), d, Y(i));
    if constexpr (!Right) {  // y = op(T) x
      for (int i = 0; i < N; ++i) {
        V yi = hn::Zero(d);
        for (int p = EffLower ? 0 : i; p < (EffLower ? i + 1 : N); ++p)
          yi = hn::Add(yi, hn::Mul(T.at(d, i, p), hn::Load(d, X(p))));
        hn::Store(yi, d, Y(i));
      }
    } else {  // y = x op(T)
      for (int i = 0; i < N; ++i) {
        const V xi = hn::Load(d, X(i));
        for (int j = EffLower ? 0 : i; j < (EffLower ? i + 1 : N); ++j)
          hn::Store(hn::Add(hn::Load(d, Y(j)), hn::Mul(xi, T.at(d, i, j))), d, Y(j));
      }
    }
    std::copy(y, y + N * lanes, x);
  }
}

template <int N, bool EffLower, bool Right, bool Solve>
void triangular_batch(bool transpose, int64_t other, double alpha, const double* T,
                      int64_t stride_t, double* B, int64_t stride_b, int64_t batch) {
  const D d;
  const size_t lanes = hn::Lanes(d);
  // Left: B is N x other, vectors are its columns; right: other x N, vectors are rows.
  const int64_t cols = Right ? N : other;
  for (int64_t b = 0; b < batch; b += static_cast<int64_t>(lanes)) {
    const size_t count = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(lanes), batch - b));
    const LaneTri<N> tri(d, Block{lanes, count, stride_t}, T + b * stride_t, transpose, Solve);
    const Block blk{lanes, count, stride_b};
    double* base = B + b * stride_b;
    HWY_ALIGN double x[N * kMaxLanes];
    for (int64_t v = 0; v < other; ++v) {
      const auto offset = [&](int i) { return Right ? v * cols + i : i * cols + v; };
      gather(d, blk, base, N, offset, x);
      triangular_vector<N, EffLower, Right, Solve>(d, tri, alpha, x);
      scatter(blk, base, N, offset, x);
    }
  }
}

template <bool Solve>
void triangular_kernel(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols,
                       double alpha, const double* T, int64_t stride_t, double* B,
                       int64_t stride_b, int64_t batch) {
  const bool eff_lower = lower != transpose;
  const int64_t other = rightside ? m : n_cols;
  dispatch(rightside ? n_cols : m, [&](auto order) {
    with_flag(rightside, [&](auto right) {
      with_flag(eff_lower, [&](auto eff) {
        triangular_batch<decltype(order)::value, decltype(eff)::value, decltype(right)::value, Solve>(
            transpose, other, alpha, T, stride_t, B, stride_b, batch);
      });
    });
  });
}

void trsm_kernel(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols,
                 double alpha, const double* T, int64_t stride_t, double* B, int64_t stride_b,
                 int64_t batch) {
  triangular_kernel<true>(rightside, lower, transpose, m, n_cols, alpha, T, stride_t, B,
                          stride_b, batch);
}

void trmm_kernel(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols,
                 double alpha, const double* T, int64_t stride_t, double* B, int64_t stride_b,
                 int64_t batch) {
  triangular_kernel<false>(rightside, lower, transpose, m, n_cols, alpha, T, stride_t, B,
                           stride_b, batch);
}

}  // namespace cholla::linalg::kernels::small::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cholla::linalg::kernels::small::simd {

HWY_EXPORT(trsm_kernel);
HWY_EXPORT(trmm_kernel);

void trsm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch) {
  if (batch <= 0 || m <= 0 || n_cols <= 0) return;
  HWY_DYNAMIC_DISPATCH(trsm_kernel)(rightside, lower, transpose, m, n_cols, alpha, T, stride_t,
                                    B, stride_b, batch);
}

void trmm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch) {
  if (batch <= 0 || m <= 0 || n_cols <= 0) return;
  HWY_DYNAMIC_DISPATCH(trmm_kernel)(rightside, lower, transpose, m, n_cols, alpha, T, stride_t,
                                    B, stride_b, batch);
}

}  // namespace cholla::linalg::kernels::small::simd
#endif  // HWY_ONCE
