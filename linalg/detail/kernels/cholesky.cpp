// potrf and potri: triage, small-order path, LAPACK path.
//
// A row-major lower triangle is the column-major upper triangle of the same buffer, so
// lower == true calls LAPACK with uplo = 'U' (and vice versa); the buffer's column-major
// view of a symmetric A is A itself. LAPACKE's *_work functions with LAPACK_COL_MAJOR call
// the Fortran routine directly: no copy, no argument checks that could print.
#include <lapacke.h>

#include "linalg/detail/kernels/internal.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/detail/kernels/small.hpp"

namespace cholla::linalg::kernels {
namespace {

char flipped_uplo(bool lower) { return lower ? 'U' : 'L'; }

// OpenBLAS's unblocked potf2 tests `ajj <= 0`, which NaN passes: sqrt(NaN) then flows on
// and info stays 0. The contract (and reference LAPACK) fails at the first NaN pivot, and a
// NaN pivot leaves a NaN on the factor's diagonal, so scan the diagonal up to the reported
// failure (or the end) for the first NaN.
int64_t first_nan_pivot(int64_t n, const double* a, int64_t info) {
  const int64_t end = info > 0 ? info - 1 : n;
  for (int64_t j = 0; j < end; ++j)
    if (a[j * n + j] != a[j * n + j]) return j + 1;
  return info;
}

}  // namespace

void potrf(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  if (detail::empty_factorisation(n, batch, info)) return;
  if (n <= kSmallN) return small::potrf(lower, n, A, stride, batch, info);
  const int ni = detail::to_int(n, "n");
  for (int64_t b = 0; b < batch; ++b) {
    double* a = A + b * stride;
    const lapack_int res = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, flipped_uplo(lower), ni, a, ni);
    info[b] = first_nan_pivot(n, a, res);
    detail::zero_other_triangle(lower, n, a);
  }
}

void potri(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  if (detail::empty_factorisation(n, batch, info)) return;
  if (n <= kSmallN) return small::potri(lower, n, A, stride, batch, info);
  const int ni = detail::to_int(n, "n");
  for (int64_t b = 0; b < batch; ++b) {
    double* a = A + b * stride;
    // For a row-major lower T the column-major upper triangle holds U = T^T, and dpotri('U')
    // returns (U^T U)^{-1} = (T T^T)^{-1} in that triangle: the row-major lower one.
    info[b] = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, flipped_uplo(lower), ni, a, ni);
    if (info[b] == 0) detail::mirror_triangle(lower, n, a);
  }
}

}  // namespace cholla::linalg::kernels
