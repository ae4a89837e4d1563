// Small-order Cholesky factorisation (potrf) and inverse from the factor (potri).
//
// Both work on the lower factor L. For upper = true the factor is U = L^T, stored row-major,
// so L(i, j) lives at U's position (j, i): `at<N, Lower>(i, j)` hides that, and the same loop
// serves both triangles without copying.
#include <cmath>

#include "linalg/detail/kernels/small.hpp"

namespace cholla::linalg::kernels::small {
namespace {

template <int N, bool Lower>
constexpr int at(int i, int j) {
  return Lower ? i * N + j : j * N + i;
}

// Row-oriented Cholesky–Crout on L's lower triangle, in place. Mirrors LAPACK's info: on a
// non-positive (or NaN) pivot the reduced diagonal value is stored and the order returned.
template <int N, bool Lower>
int64_t potrf_one(double* a) {
  for (int i = 0; i < N; ++i)
    for (int j = i + 1; j < N; ++j) a[at<N, Lower>(i, j)] = 0.0;  // the unread triangle
  for (int j = 0; j < N; ++j) {
    double d = a[at<N, Lower>(j, j)];
    for (int p = 0; p < j; ++p) d -= a[at<N, Lower>(j, p)] * a[at<N, Lower>(j, p)];
    if (!(d > 0.0)) {  // also catches NaN
      a[at<N, Lower>(j, j)] = d;
      return j + 1;
    }
    d = std::sqrt(d);
    a[at<N, Lower>(j, j)] = d;
    const double r = 1.0 / d;
    for (int i = j + 1; i < N; ++i) {
      double s = a[at<N, Lower>(i, j)];
      for (int p = 0; p < j; ++p) s -= a[at<N, Lower>(i, p)] * a[at<N, Lower>(j, p)];
      a[at<N, Lower>(i, j)] = s * r;
    }
  }
  return 0;
}

// X = (L L^T)^{-1} = L^{-T} L^{-1}. Like LAPACK's dtrtri, an exact zero on the diagonal is
// reported before anything is written.
template <int N, bool Lower>
int64_t potri_one(double* a) {
  for (int i = 0; i < N; ++i)
    if (a[at<N, Lower>(i, i)] == 0.0) return i + 1;
  double inv[N][N] = {};  // L^{-1}, lower triangular
  for (int j = 0; j < N; ++j) {
    inv[j][j] = 1.0 / a[at<N, Lower>(j, j)];
    for (int i = j + 1; i < N; ++i) {
      double s = 0.0;
      for (int p = j; p < i; ++p) s += a[at<N, Lower>(i, p)] * inv[p][j];
      inv[i][j] = -s / a[at<N, Lower>(i, i)];
    }
  }
  // X(i, j) = sum_p inv(p, i) inv(p, j) over p >= max(i, j); symmetric, so layout-free.
  for (int i = 0; i < N; ++i)
    for (int j = 0; j <= i; ++j) {
      double s = 0.0;
      for (int p = i; p < N; ++p) s += inv[p][i] * inv[p][j];
      a[i * N + j] = s;
      a[j * N + i] = s;
    }
  return 0;
}

}  // namespace

namespace reference {

void potrf(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  dispatch(n, [&](auto N) {
    if (lower)
      for (int64_t b = 0; b < batch; ++b) info[b] = potrf_one<N, true>(A + b * stride);
    else
      for (int64_t b = 0; b < batch; ++b) info[b] = potrf_one<N, false>(A + b * stride);
  });
}

void potri(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  dispatch(n, [&](auto N) {
    if (lower)
      for (int64_t b = 0; b < batch; ++b) info[b] = potri_one<N, true>(A + b * stride);
    else
      for (int64_t b = 0; b < batch; ++b) info[b] = potri_one<N, false>(A + b * stride);
  });
}

}  // namespace reference
}  // namespace cholla::linalg::kernels::small
