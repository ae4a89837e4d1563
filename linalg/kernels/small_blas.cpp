// Small-order gemm, trsm and trmm. The triangular kernels first copy op(T) into a local
// array (only its nonzero triangle), so transposition is resolved once per matrix and the
// solve itself only knows whether op(T) is effectively lower or upper triangular.
// alpha == 0 and empty shapes are handled by the callers in blas.cpp.
#include <algorithm>

#include "linalg/kernels/small.hpp"

namespace cholla::linalg::kernels::small {
namespace {

template <int K, bool TA, bool TB>
void gemm_batch(int64_t m, int64_t n, double alpha, const double* A, int64_t sa,
                const double* B, int64_t sb, double beta, double* C, int64_t sc,
                int64_t batch) {
  for (int64_t b = 0; b < batch; ++b) {
    const double* a = A + b * sa;
    const double* bm = B + b * sb;
    double* c = C + b * sc;
    for (int64_t i = 0; i < m; ++i) {
      double acc[kSmallN] = {};
      for (int p = 0; p < K; ++p) {
        const double aip = TA ? a[p * m + i] : a[i * K + p];
        for (int64_t j = 0; j < n; ++j) acc[j] += aip * (TB ? bm[j * K + p] : bm[p * n + j]);
      }
      double* ci = c + i * n;
      if (beta == 0.0)  // C is not read: NaN in C must not propagate
        for (int64_t j = 0; j < n; ++j) ci[j] = alpha * acc[j];
      else
        for (int64_t j = 0; j < n; ++j) ci[j] = alpha * acc[j] + beta * ci[j];
    }
  }
}

// op(T) restricted to its triangle; effectively lower iff lower != transpose.
template <int N>
struct LocalTri {
  double t[N][N] = {};
  double rdiag[N] = {};
  LocalTri(const double* T, bool eff_lower, bool transpose) {
    for (int i = 0; i < N; ++i)
      for (int j = 0; j < N; ++j)
        if (eff_lower ? j <= i : j >= i) t[i][j] = transpose ? T[j * N + i] : T[i * N + j];
    for (int i = 0; i < N; ++i) rdiag[i] = 1.0 / t[i][i];
  }
};

// Left sides work on blocks of kLanes columns gathered into x[N][kLanes]: the substitution
// is fully unrolled, the lane loop vectorises, and the lanes' dependency chains overlap
// (row-wise axpys of runtime length, or one column at a time, lost to OpenBLAS at N = 8).
// Missing lanes of the last block are zero and never stored.
constexpr int kLanes = 4;

template <int N>
void load_block(const double* b, int64_t nc, int64_t c, int w, double alpha,
                double (&x)[N][kLanes]) {
  for (int i = 0; i < N; ++i)
    for (int v = 0; v < kLanes; ++v) x[i][v] = v < w ? alpha * b[i * nc + c + v] : 0.0;
}

// Left: op(T) X = alpha B, B is N x nc; forward (lower) or backward (upper) substitution.
template <int N, bool EffLower>
void trsm_left(const LocalTri<N>& L, int64_t nc, double alpha, double* b) {
  for (int64_t c = 0; c < nc; c += kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(kLanes, nc - c));
    double x[N][kLanes];
    load_block<N>(b, nc, c, w, alpha, x);
    for (int s = 0; s < N; ++s) {
      const int i = EffLower ? s : N - 1 - s;
      for (int p = EffLower ? 0 : i + 1; p < (EffLower ? i : N); ++p)
        for (int v = 0; v < kLanes; ++v) x[i][v] -= L.t[i][p] * x[p][v];
      for (int v = 0; v < kLanes; ++v) x[i][v] *= L.rdiag[i];
    }
    for (int i = 0; i < N; ++i)
      for (int v = 0; v < w; ++v) b[i * nc + c + v] = x[i][v];
  }
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
  for (int64_t c = 0; c < nc; c += kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(kLanes, nc - c));
    double x[N][kLanes];
    load_block<N>(b, nc, c, w, alpha, x);
    for (int i = 0; i < N; ++i) {
      double y[kLanes] = {};
      for (int p = EffLower ? 0 : i; p < (EffLower ? i + 1 : N); ++p)
        for (int v = 0; v < kLanes; ++v) y[v] += L.t[i][p] * x[p][v];
      for (int v = 0; v < w; ++v) b[i * nc + c + v] = y[v];
    }
  }
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

void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* A, int64_t stride_a, const double* B, int64_t stride_b, double beta,
          double* C, int64_t stride_c, int64_t batch) {
  dispatch(k, [&](auto K) {
    const auto args = [&](auto kernel) {
      kernel(m, n, alpha, A, stride_a, B, stride_b, beta, C, stride_c, batch);
    };
    if (transpose_a)
      transpose_b ? args(gemm_batch<K, true, true>) : args(gemm_batch<K, true, false>);
    else
      transpose_b ? args(gemm_batch<K, false, true>) : args(gemm_batch<K, false, false>);
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

}  // namespace cholla::linalg::kernels::small
