// Symmetric-convention Cholesky backward for n <= kSmallN, one unrolled instance per order:
//   gA = 1/2 L^{-T} copyltu(L^T tril(gL)) L^{-1}
// computed per matrix with two triangular substitutions (~n^3 flops, no allocation). The
// upper case A = U^T U is the lower one for L = U^T, gL = gU^T; gA is the same matrix.
#include "linalg/detail/kernels/small.hpp"

namespace cholla::linalg::kernels::small {
namespace {

template <int N>
void one(bool lower, const double* F, const double* G, double* out) {
  double L[N][N], g[N][N], S[N][N], inv[N];
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const bool in = j <= i;
      L[i][j] = in ? (lower ? F[i * N + j] : F[j * N + i]) : 0.0;
      g[i][j] = in ? (lower ? G[i * N + j] : G[j * N + i]) : 0.0;
    }
  for (int i = 0; i < N; ++i) inv[i] = 1.0 / L[i][i];  // N divisions instead of 2 N^2
  // S = copyltu(L^T g): lower part M_ij = sum_{k >= i} L_ki g_kj (i >= j), mirrored.
  for (int i = 0; i < N; ++i)
    for (int j = 0; j <= i; ++j) {
      double m = 0.0;
      for (int k = i; k < N; ++k) m += L[k][i] * g[k][j];
      S[i][j] = S[j][i] = m;
    }
  // S := L^{-T} S (back substitution, column by column).
  for (int j = 0; j < N; ++j)
    for (int i = N - 1; i >= 0; --i) {
      double acc = S[i][j];
      for (int k = i + 1; k < N; ++k) acc -= L[k][i] * S[k][j];
      S[i][j] = acc * inv[i];
    }
  // S := S L^{-1} (row by row).
  for (int r = 0; r < N; ++r)
    for (int j = N - 1; j >= 0; --j) {
      double acc = S[r][j];
      for (int k = j + 1; k < N; ++k) acc -= S[r][k] * L[k][j];
      S[r][j] = acc * inv[j];
    }
  // 1/2 of the result, symmetrised exactly (it is symmetric up to rounding).
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) out[i * N + j] = 0.25 * (S[i][j] + S[j][i]);
}

}  // namespace

namespace reference {

void potrf_backward(bool lower, int64_t n, const double* L, int64_t stride_l, const double* gL,
                    int64_t stride_g, double* gA, int64_t stride_out, int64_t batch) {
  dispatch(n, [&](auto order) {
    constexpr int N = decltype(order)::value;
    double result[N * N];  // gA may alias gL
    for (int64_t b = 0; b < batch; ++b) {
      one<N>(lower, L + b * stride_l, gL + b * stride_g, result);
      for (int i = 0; i < N * N; ++i) gA[b * stride_out + i] = result[i];
    }
  });
}

}  // namespace reference
}  // namespace cholla::linalg::kernels::small
