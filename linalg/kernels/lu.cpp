// getrf and inverse: triage, small-order path, LAPACK path (dgetrf, dgetri).
//
// LAPACK factorises the column-major view of the buffer, which is A^T; kernels.hpp documents
// what the factors and pivots then mean for the row-major A. The inverse needs no fix-up:
// dgetri turns the view into (A^T)^{-1} = (A^{-1})^T, whose row-major reading is A^{-1}.
#include <algorithm>
#include <vector>

#include <lapacke.h>

#include "linalg/kernels/internal.hpp"
#include "linalg/kernels/kernels.hpp"
#include "linalg/kernels/small.hpp"

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

}  // namespace cholla::linalg::kernels
