// Small-order gemm, trsm and trmm. The triangular kernels first copy op(T) into a local
// array (only its nonzero triangle), so transposition is resolved once per matrix and the
// solve itself only knows whether op(T) is effectively lower or upper triangular.
// alpha == 0 and empty shapes are handled by the callers in blas.cpp.
#include <algorithm>

#include "linalg/detail/kernels/small.hpp"

namespace cholla::linalg::kernels::small {
namespace {

// Rows [i0, i0 + R) of C = alpha op(A) P + beta C, with P = op(B) as a local k x N panel.
// R rows at once give R * N independent accumulator chains (one row alone is latency-bound).
template <int R, int N, int K, bool TA>
void gemm_rows(int64_t i0, int64_t m, double alpha, const double* a,
               const double (&panel)[K][N], double beta, double* c) {
  double acc[R][N] = {};
  for (int p = 0; p < K; ++p)
    for (int r = 0; r < R; ++r) {
      const double arp = TA ? a[p * m + i0 + r] : a[(i0 + r) * K + p];
      for (int j = 0; j < N; ++j) acc[r][j] += arp * panel[p][j];
    }
  for (int r = 0; r < R; ++r) {
    double* ci = c + (i0 + r) * N;
    if (beta == 0.0)  // C is not read: NaN in C must not propagate
      for (int j = 0; j < N; ++j) ci[j] = alpha * acc[r][j];
    else
      for (int j = 0; j < N; ++j) ci[j] = alpha * acc[r][j] + beta * ci[j];
  }
}

// Templated on n and k, so every loop but the one over rows is fully unrolled (with a
// runtime k the inner loops stayed rolled: 1.7x slower than OpenBLAS at n = 8). Copying
// op(B) into a panel first makes both B layouts contiguous along j.
template <int N, int K, bool TA, bool TB>
void gemm_batch(int64_t m, double alpha, const double* A, int64_t sa,
                const double* B, int64_t sb, double beta, double* C, int64_t sc,
                int64_t batch) {
  constexpr int kRows = 4;
  for (int64_t b = 0; b < batch; ++b) {
    const double* a = A + b * sa;
    const double* bm = B + b * sb;
    double* c = C + b * sc;
    double panel[K][N];
    for (int p = 0; p < K; ++p)
      for (int j = 0; j < N; ++j) panel[p][j] = TB ? bm[j * K + p] : bm[p * N + j];
    int64_t i = 0;
    for (; i + kRows <= m; i += kRows) gemm_rows<kRows, N, K, TA>(i, m, alpha, a, panel, beta, c);
    for (; i < m; ++i) gemm_rows<1, N, K, TA>(i, m, alpha, a, panel, beta, c);
  }
}

// op(T) as a local N x N array. The whole matrix is copied (the kernels read only the
// triangle): a branch-free full copy beat zero-filling plus a masked copy (~10% at N = 8).
template <int N>
struct LocalTri {
  double t[N][N];
  double rdiag[N];
  LocalTri(const double* T, bool eff_lower, bool transpose) {
    if (transpose) {
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) t[i][j] = T[j * N + i];
    } else {
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) t[i][j] = T[i * N + j];
    }
    static_cast<void>(eff_lower);
    for (int i = 0; i < N; ++i) rdiag[i] = 1.0 / t[i][i];
  }
};

// Left sides work on blocks of kLanes columns gathered into x[N][W]: the substitution is
// fully unrolled, the lane loop vectorises, and the lanes' dependency chains overlap
// (row-wise axpys of runtime length, or one column at a time, lost to OpenBLAS at N = 8).
// The width W is a compile-time constant for full blocks and for the remainder alike, so
// no lane loop carries a runtime bound. Wider blocks (8) spill with SSE2's 16 registers.
constexpr int kLanes = 4;

// Calls block(std::integral_constant<int, W>{}, c) for each column block [c, c + W) of nc.
template <class Block>
void for_lane_blocks(int64_t nc, Block&& block) {
  int64_t c = 0;
  for (; c + kLanes <= nc; c += kLanes) block(std::integral_constant<int, kLanes>{}, c);
  switch (nc - c) {
    case 1: block(std::integral_constant<int, 1>{}, c); break;
    case 2: block(std::integral_constant<int, 2>{}, c); break;
    case 3: block(std::integral_constant<int, 3>{}, c); break;
    default: break;
  }
  static_assert(kLanes == 4, "extend the remainder switch");
}

// Left: op(T) X = alpha B, B is N x nc; forward (lower) or backward (upper) substitution,
// right-looking: once row j is final it is subtracted from every later row at once, so the
// critical path is N multiply-subtracts instead of N(N-1)/2.
template <int N, bool EffLower>
void trsm_left(const LocalTri<N>& L, int64_t nc, double alpha, double* b) {
  for_lane_blocks(nc, [&](auto W, int64_t c) {
    double x[N][W];
    for (int i = 0; i < N; ++i)
      for (int v = 0; v < W; ++v) x[i][v] = alpha * b[i * nc + c + v];
#pragma GCC unroll 8
    for (int s = 0; s < N; ++s) {
      const int j = EffLower ? s : N - 1 - s;
      for (int v = 0; v < W; ++v) x[j][v] *= L.rdiag[j];
#pragma GCC unroll 8
      for (int i = EffLower ? j + 1 : 0; i < (EffLower ? N : j); ++i)
        for (int v = 0; v < W; ++v) x[i][v] -= L.t[i][j] * x[j][v];
    }
    for (int i = 0; i < N; ++i)
      for (int v = 0; v < W; ++v) b[i * nc + c + v] = x[i][v];
  });
}

// Right: X op(T) = alpha B, B is m x N; each row x solves x op(T) = alpha b on its own.
template <int N, bool EffLower>
void trsm_right(const LocalTri<N>& L, int64_t m, double alpha, double* b) {
  for (int64_t r = 0; r < m; ++r) {
    double x[N];
    for (int j = 0; j < N; ++j) x[j] = alpha * b[r * N + j];
    for (int s = 0; s < N; ++s) {
      const int j = EffLower ? N - 1 - s : s;
      for (int i = EffLower ? j + 1 : 0; i < (EffLower ? N : j); ++i) x[j] -= x[i] * L.t[i][j];
      x[j] *= L.rdiag[j];
    }
    for (int j = 0; j < N; ++j) b[r * N + j] = x[j];
  }
}

// Left: B = alpha op(T) B, by blocks of columns as trsm_left.
template <int N, bool EffLower>
void trmm_left(const LocalTri<N>& L, int64_t nc, double alpha, double* b) {
  for_lane_blocks(nc, [&](auto W, int64_t c) {
    double x[N][W];
    for (int i = 0; i < N; ++i)
      for (int v = 0; v < W; ++v) x[i][v] = alpha * b[i * nc + c + v];
    for (int i = 0; i < N; ++i) {
      double y[W] = {};
      for (int p = EffLower ? 0 : i; p < (EffLower ? i + 1 : N); ++p)
        for (int v = 0; v < W; ++v) y[v] += L.t[i][p] * x[p][v];
      for (int v = 0; v < W; ++v) b[i * nc + c + v] = y[v];
    }
  });
}

// Right: B = alpha B op(T), row by row.
template <int N, bool EffLower>
void trmm_right(const LocalTri<N>& L, int64_t m, double alpha, double* b) {
  for (int64_t r = 0; r < m; ++r) {
    double y[N] = {};
    for (int i = 0; i < N; ++i) {
      const double xi = alpha * b[r * N + i];
      for (int j = EffLower ? 0 : i; j < (EffLower ? i + 1 : N); ++j) y[j] += xi * L.t[i][j];
    }
    for (int j = 0; j < N; ++j) b[r * N + j] = y[j];
  }
}

// Shared batch loop of trsm and trmm: Kernel<N, EffLower>(tri, other_dim, alpha, B[b]).
template <template <int, bool> class Kernel>
void triangular_batch(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols,
                      double alpha, const double* T, int64_t stride_t, double* B,
                      int64_t stride_b, int64_t batch) {
  const bool eff_lower = lower != transpose;
  const int64_t other = rightside ? m : n_cols;
  dispatch(rightside ? n_cols : m, [&](auto N) {
    for (int64_t b = 0; b < batch; ++b) {
      const LocalTri<N> tri(T + b * stride_t, eff_lower, transpose);
      if (eff_lower)
        Kernel<N, true>::run(tri, rightside, other, alpha, B + b * stride_b);
      else
        Kernel<N, false>::run(tri, rightside, other, alpha, B + b * stride_b);
    }
  });
}

template <int N, bool EffLower>
struct Solve {
  static void run(const LocalTri<N>& t, bool right, int64_t other, double alpha, double* b) {
    if (right)
      trsm_right<N, EffLower>(t, other, alpha, b);
    else
      trsm_left<N, EffLower>(t, other, alpha, b);
  }
};

template <int N, bool EffLower>
struct Multiply {
  static void run(const LocalTri<N>& t, bool right, int64_t other, double alpha, double* b) {
    if (right)
      trmm_right<N, EffLower>(t, other, alpha, b);
    else
      trmm_left<N, EffLower>(t, other, alpha, b);
  }
};

}  // namespace

namespace reference {

void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* A, int64_t stride_a, const double* B, int64_t stride_b, double beta,
          double* C, int64_t stride_c, int64_t batch) {
  dispatch(n, [&](auto N) {
    dispatch(k, [&](auto K) {
      const auto args = [&](auto kernel) {
        kernel(m, alpha, A, stride_a, B, stride_b, beta, C, stride_c, batch);
      };
      if (transpose_a)
        transpose_b ? args(gemm_batch<N, K, true, true>) : args(gemm_batch<N, K, true, false>);
      else
        transpose_b ? args(gemm_batch<N, K, false, true>) : args(gemm_batch<N, K, false, false>);
    });
  });
}

void trsm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch) {
  triangular_batch<Solve>(rightside, lower, transpose, m, n_cols, alpha, T, stride_t, B,
                          stride_b, batch);
}

void trmm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch) {
  triangular_batch<Multiply>(rightside, lower, transpose, m, n_cols, alpha, T, stride_t, B,
                             stride_b, batch);
}

}  // namespace reference
}  // namespace cholla::linalg::kernels::small
