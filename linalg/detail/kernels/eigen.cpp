// syevd: LAPACK dsyevd per matrix plus a deterministic sign per eigenvector.
//
// The row-major lower triangle is the column-major upper one ('U'), and dsyevd returns the
// eigenvectors as columns of the column-major view, which are the rows of the row-major
// buffer: exactly the documented U with U A = diag(w) U, no transposition needed.
#include <algorithm>
#include <cmath>
#include <vector>

#include <lapacke.h>

#include "linalg/detail/kernels/internal.hpp"
#include "linalg/detail/kernels/kernels.hpp"

namespace cholla::linalg::kernels {
namespace {

// Flip the row so that its entry of largest magnitude (first one on ties) is positive.
void fix_sign(int64_t n, double* row) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j)
    if (std::fabs(row[j]) > std::fabs(row[best])) best = j;
  if (row[best] < 0.0)
    for (int64_t j = 0; j < n; ++j) row[j] = -row[j];
}

}  // namespace

void syevd(int64_t n, double* A, int64_t stride, double* w, int64_t batch, int64_t* info) {
  if (detail::empty_factorisation(n, batch, info)) return;
  const int ni = detail::to_int(n, "n");
  // Workspace sizes depend on n only: one query for the whole batch.
  double work_query = 0.0;
  lapack_int iwork_query = 0;
  LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'U', ni, A, ni, w, &work_query, -1, &iwork_query,
                      -1);
  const lapack_int lwork = std::max<lapack_int>(1, static_cast<lapack_int>(work_query));
  const lapack_int liwork = std::max<lapack_int>(1, iwork_query);
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<lapack_int> iwork(static_cast<size_t>(liwork));
  for (int64_t b = 0; b < batch; ++b) {
    double* a = A + b * stride;
    info[b] = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'U', ni, a, ni, w + b * n, work.data(),
                                  lwork, iwork.data(), liwork);
    if (info[b] == 0)
      for (int64_t i = 0; i < n; ++i) fix_sign(n, a + i * n);
  }
}

}  // namespace cholla::linalg::kernels
