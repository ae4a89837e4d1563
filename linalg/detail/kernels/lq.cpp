// gelqf: LQ of a row-major m x n A (m <= n) as QR of its column-major view.
//
// The buffer read column-major is the n x m matrix A^T. dgeqrf + dorgqr give A^T = Q' R with
// Q' n x m orthonormal columns and R m x m upper, hence A = R^T Q'^T: L = R^T and Q = Q'^T.
// R(i, j) sits at a[i + j * n], so L(r, c) = R(c, r) = a[r * n + c]: L is simply the leading
// m x m lower triangle of the buffer read row-major. dorgqr then overwrites the buffer with
// Q', whose row-major reading is Q. No transposition is ever materialised.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include <lapacke.h>

#include "linalg/detail/kernels/internal.hpp"
#include "linalg/detail/kernels/kernels.hpp"

namespace cholla::linalg::kernels {

void gelqf(int64_t m, int64_t n, double* A, int64_t stride, double* L, int64_t batch) {
  detail::require_nonnegative(m, "m");
  detail::require_nonnegative(batch, "batch");
  if (m > n) throw std::invalid_argument("linalg kernels: gelqf needs m <= n");
  if (m == 0 || batch == 0) return;
  const int mi = detail::to_int(m, "m");
  const int ni = detail::to_int(n, "n");
  std::vector<double> tau(static_cast<size_t>(m));
  // Workspace sizes depend on the shape only: query both routines once for the batch.
  double q_geqrf = 0.0;
  double q_orgqr = 0.0;
  LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, ni, mi, A, ni, tau.data(), &q_geqrf, -1);
  LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, ni, mi, mi, A, ni, tau.data(), &q_orgqr, -1);
  const lapack_int lwork =
      std::max({lapack_int{1}, mi, static_cast<lapack_int>(q_geqrf), static_cast<lapack_int>(q_orgqr)});
  std::vector<double> work(static_cast<size_t>(lwork));
  for (int64_t b = 0; b < batch; ++b) {
    double* a = A + b * stride;
    double* l = L + b * m * m;
    // Full rank is a precondition; dgeqrf/dorgqr have no failure mode beyond bad arguments.
    LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, ni, mi, a, ni, tau.data(), work.data(), lwork);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < m; ++c) l[r * m + c] = c <= r ? a[r * n + c] : 0.0;
    LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, ni, mi, mi, a, ni, tau.data(), work.data(), lwork);
  }
}

}  // namespace cholla::linalg::kernels
