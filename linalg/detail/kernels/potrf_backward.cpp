// potrf_backward: reverse mode of the Cholesky factorisation, blocked (Murray 2016, §4).
//
// Derivation (lower, A = L L^T). The left-looking blocked factorisation computes, for the
// diagonal block D = rows/cols [j, j+k), with R = L[D rows, 0:j], B = L[below, 0:j]:
//   D0 = A_DD - R R^T,  L_D = chol(D0)
//   C0 = A_C  - B R^T,  L_C = C0 L_D^{-T}          (C = rows below D, columns of D)
// Reversing one block step, with Lb the running adjoint of L (lower triangle only):
//   Cb <- Cb L_D^{-1}                (adjoint of C0, also the adjoint of A_C's entries)
//   Db <- Db - tril(Cb^T L_C)        (L_C depends on L_D through L_D^{-T})
//   Bb <- Bb - Cb R,  Rb <- Rb - Cb^T B
//   W  = sym. gradient of chol at block D (the symbolic formula on the k x k block)
//   Rb <- Rb - 2 W R                 (D0 = A_DD - R R^T, W symmetric)
// Blocks are reversed last to first, so every adjoint is complete before it is consumed.
// This costs ~2n^3/3 flops, mostly in two gemms, against ~3n^3 for the symbolic formula
// (trmm + 2 full trsm) on the whole matrix.
//
// Storage convention while working: the lower triangle holds the gradient with respect to
// the lower entries of A read as independent variables (off-diagonal entries count twice
// in the symmetric gradient). The final pass halves them and mirrors.
//
// Upper (A = U^T U): the row-major buffer of U read column-major is L = U^T, and the
// gradient of U read the same way is the gradient of L. So the upper case is the lower
// algorithm on the column-major view of the same buffers; the result is symmetric either way.
#include <algorithm>
#include <vector>

#include <cblas.h>

#include "linalg/detail/kernels/internal.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/detail/kernels/small.hpp"

namespace cholla::linalg::kernels {
namespace {

// Block order: large enough for the gemms to run near peak, small enough that the k x k
// symbolic formula (3k^3 flops per block) stays a minor cost. Stan's rule clamp(n/8, ., 128)
// measured best here too: 128 at n = 1024, 16 at n = 128 (a single 128-block: ~2x slower).
int64_t block_order(int64_t n) { return std::clamp<int64_t>(n / 8, 16, 128); }

// L's logical lower triangle viewed through row-major (lower) or column-major (upper)
// storage of an n x n buffer with leading dimension n.
struct View {
  CBLAS_ORDER order;
  int64_t n;
  int64_t at(int64_t i, int64_t j) const {
    return order == CblasRowMajor ? i * n + j : i + j * n;
  }
};

// W = symmetric gradient of chol at a k x k diagonal block:
//   W = 1/2 L_D^{-T} copyltu(L_D^T tril(Db)) L_D^{-1},
// with W stored in the same order as the view (leading dimension k).
void diagonal_block(const View& v, int k, const double* ld, const double* db, double* w) {
  const int n = static_cast<int>(v.n);
  const View wv{v.order, k};
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) w[wv.at(i, j)] = j <= i ? db[v.at(i, j)] : 0.0;
  cblas_dtrmm(v.order, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, k, k, 1.0, ld, n, w, k);
  for (int i = 0; i < k; ++i)
    for (int j = i + 1; j < k; ++j) w[wv.at(i, j)] = w[wv.at(j, i)];
  cblas_dtrsm(v.order, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, k, k, 1.0, ld, n, w, k);
  cblas_dtrsm(v.order, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, k, k, 0.5, ld, n, w,
              k);
}

void one_matrix(const View& v, int64_t nb, const double* L, double* G, double* w) {
  const int64_t n = v.n;
  const int ni = static_cast<int>(n);
  const double* lp = L;
  for (int64_t j = (n - 1) / nb * nb; j >= 0; j -= nb) {
    const int k = static_cast<int>(std::min(nb, n - j));
    const int m = static_cast<int>(n - j - k);  // rows below the diagonal block
    const int ji = static_cast<int>(j);
    const double* ld = lp + v.at(j, j);
    const double* r = lp + v.at(j, 0);
    double* db = G + v.at(j, j);
    double* rb = G + v.at(j, 0);
    if (m > 0) {
      double* cb = G + v.at(j + k, j);
      const double* lc = lp + v.at(j + k, j);
      cblas_dtrsm(v.order, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, m, k, 1.0, ld, ni,
                  cb, ni);
      // Full k x k product; only its lower triangle matters (diagonal_block reads tril(Db)).
      cblas_dgemm(v.order, CblasTrans, CblasNoTrans, k, k, m, -1.0, cb, ni, lc, ni, 1.0, db, ni);
      if (j > 0) {
        cblas_dgemm(v.order, CblasNoTrans, CblasNoTrans, m, ji, k, -1.0, cb, ni, r, ni, 1.0,
                    G + v.at(j + k, 0), ni);
        cblas_dgemm(v.order, CblasTrans, CblasNoTrans, k, ji, m, -1.0, cb, ni,
                    lp + v.at(j + k, 0), ni, 1.0, rb, ni);
      }
    }
    diagonal_block(v, k, ld, db, w);
    if (j > 0)
      cblas_dsymm(v.order, CblasLeft, CblasLower, k, ji, -2.0, w, k, r, ni, 1.0, rb, ni);
    const View wv{v.order, k};
    for (int i = 0; i < k; ++i)
      for (int c = 0; c <= i; ++c) db[v.at(i, c)] = (c == i ? 1.0 : 2.0) * w[wv.at(i, c)];
  }
}

}  // namespace

void potrf_backward(bool lower, int64_t n, const double* L, int64_t stride_l, const double* gL,
                    int64_t stride_g, double* gA, int64_t stride_out, int64_t batch) {
  detail::require_nonnegative(n, "n");
  detail::require_nonnegative(batch, "batch");
  if (n == 0 || batch == 0) return;
  if (n <= kSmallN) return small::potrf_backward(lower, n, L, stride_l, gL, stride_g, gA, stride_out, batch);
  detail::to_int(n, "n");
  detail::to_int(n * n, "n * n");
  const View v{lower ? CblasRowMajor : CblasColMajor, n};
  const int64_t nb = block_order(n);
  std::vector<double> w(static_cast<size_t>(std::min(n, nb) * std::min(n, nb)));
  for (int64_t b = 0; b < batch; ++b) {
    const double* g = gL + b * stride_g;
    double* out = gA + b * stride_out;
    // The triangle of gL (row by row in storage order, so gA may alias gL); zeros elsewhere.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const bool keep = lower ? j <= i : j >= i;
        out[i * n + j] = keep ? g[i * n + j] : 0.0;
      }
    one_matrix(v, nb, L + b * stride_l, out, w.data());
    // Off-diagonal entries counted both (i, j) and (j, i): halve, then make symmetric.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = lower ? 0 : i + 1; j < (lower ? i : n); ++j) out[i * n + j] *= 0.5;
    detail::mirror_triangle(lower, n, out);
  }
}

}  // namespace cholla::linalg::kernels
