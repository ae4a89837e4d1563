// getrf, getrs and inverse: triage, small-order path, LAPACK path (dgetrf, dgetri), and the
// two triangular solves plus row swaps of getrs.
//
// LAPACK factorises the column-major view of the buffer, which is A^T; kernels.hpp documents
// what the factors and pivots then mean for the row-major A. The inverse needs no fix-up:
// dgetri turns the view into (A^T)^{-1} = (A^{-1})^T, whose row-major reading is A^{-1}.
#include <algorithm>
#include <vector>

#include <cblas.h>
#include <lapacke.h>

#include "linalg/detail/kernels/internal.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/detail/kernels/small.hpp"

namespace cholla::linalg::kernels {

void getrf(int64_t n, double* A, int64_t stride, int64_t* pivots, int64_t batch, int64_t* info) {
  if (detail::empty_factorisation(n, batch, info)) return;
  if (n <= kSmallN) return small::getrf(n, A, stride, pivots, batch, info);
  const int ni = detail::to_int(n, "n");
  std::vector<lapack_int> ipiv(static_cast<size_t>(n));
  for (int64_t b = 0; b < batch; ++b) {
    info[b] = LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, ni, ni, A + b * stride, ni, ipiv.data());
    for (int64_t i = 0; i < n; ++i) pivots[b * n + i] = ipiv[static_cast<size_t>(i)] - 1;
  }
}

void inverse(int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  if (detail::empty_factorisation(n, batch, info)) return;
  if (n <= kSmallN) return small::inverse(n, A, stride, batch, info);
  const int ni = detail::to_int(n, "n");
  std::vector<lapack_int> ipiv(static_cast<size_t>(n));
  // dgetri's workspace depends on n only: query once for the whole batch.
  double query = 0.0;
  LAPACKE_dgetri_work(LAPACK_COL_MAJOR, ni, A, ni, ipiv.data(), &query, -1);
  const lapack_int lwork = std::max(ni, static_cast<lapack_int>(query));
  std::vector<double> work(static_cast<size_t>(lwork));
  for (int64_t b = 0; b < batch; ++b) {
    double* a = A + b * stride;
    info[b] = LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, ni, ni, a, ni, ipiv.data());
    if (info[b] == 0)
      info[b] = LAPACKE_dgetri_work(LAPACK_COL_MAJOR, ni, a, ni, ipiv.data(), work.data(), lwork);
  }
}

namespace {

// getrf's row swaps on an n x nrhs row-major block: in order 0..n-1 they apply P^T, in
// reverse order P.
void permute_rows(bool forward, int64_t n, int64_t nrhs, const int64_t* pivots, double* B) {
  for (int64_t step = 0; step < n; ++step) {
    const int64_t i = forward ? step : n - 1 - step;
    const int64_t p = pivots[i];
    if (p != i) std::swap_ranges(B + i * nrhs, B + (i + 1) * nrhs, B + p * nrhs);
  }
}

}  // namespace

void getrs(bool transpose, int64_t n, int64_t nrhs, const double* F, int64_t stride_f,
           const int64_t* pivots, int64_t stride_p, double* B, int64_t stride_b, int64_t batch) {
  detail::require_nonnegative(n, "n");
  detail::require_nonnegative(nrhs, "nrhs");
  detail::require_nonnegative(batch, "batch");
  if (n == 0 || nrhs == 0 || batch == 0) return;
  const int ni = detail::to_int(n, "n");
  const int ri = detail::to_int(nrhs, "nrhs");
  // Row-major F holds T = U^T on and below the diagonal and R = L^T (unit) above it, with
  // A = T R P^T (kernels.hpp, getrf). So A X = B is X = P R^{-1} T^{-1} B and
  // A^T X = B is X = T^{-T} R^{-T} P^T B.
  for (int64_t b = 0; b < batch; ++b) {
    const double* f = F + b * stride_f;
    const int64_t* p = pivots + b * stride_p;
    double* x = B + b * stride_b;
    if (!transpose) {
      cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, ni, ri, 1.0, f, ni, x, ri);
      cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasUnit, ni, ri, 1.0, f, ni, x, ri);
      permute_rows(false, n, nrhs, p, x);
    } else {
      permute_rows(true, n, nrhs, p, x);
      cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasUnit, ni, ri, 1.0, f, ni, x, ri);
      cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, ni, ri, 1.0, f, ni, x, ri);
    }
  }
}

}  // namespace cholla::linalg::kernels
