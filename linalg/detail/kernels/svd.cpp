// gesvd: SVD of square matrices through LAPACK dgesvd.
//
// The row-major buffer read column-major is A^T, and dgesvd factorises that: A^T = U' S V'^T,
// hence A = V' S U'^T. Read row-major, dgesvd's column-major VT' = V'^T buffer is V' = U
// (of A) and its column-major U' buffer is U'^T = V^T. So U and V^T come out row-major by
// passing the output buffers crosswise; nothing is transposed.
#include <algorithm>
#include <vector>

#include <lapacke.h>

#include "linalg/detail/kernels/internal.hpp"
#include "linalg/detail/kernels/kernels.hpp"

namespace cholla::linalg::kernels {

void gesvd(int64_t n, const double* A, int64_t stride, double* U, double* s, double* Vt,
           int64_t batch, int64_t* info) {
  if (detail::empty_factorisation(n, batch, info)) return;
  const int ni = detail::to_int(n, "n");
  detail::to_int(n * n, "n * n");
  std::vector<double> a(static_cast<size_t>(n * n));  // dgesvd destroys its input
  // The workspace depends on n only: one query for the whole batch.
  double query = 0.0;
  LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'A', 'A', ni, ni, a.data(), ni, s, Vt, ni, U, ni, &query, -1);
  const lapack_int lwork = std::max<lapack_int>(5 * ni, static_cast<lapack_int>(query));
  std::vector<double> work(static_cast<size_t>(lwork));
  for (int64_t b = 0; b < batch; ++b) {
    std::copy_n(A + b * stride, n * n, a.data());
    info[b] = LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, 'A', 'A', ni, ni, a.data(), ni, s + b * n,
                                  Vt + b * n * n, ni, U + b * n * n, ni, work.data(), lwork);
  }
}

}  // namespace cholla::linalg::kernels
