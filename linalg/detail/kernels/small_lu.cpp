// Small-order LU (getrf) and inverse, mirroring LAPACK's dgetf2/dgetri step by step on the
// column-major view M = A^T of the row-major buffer, so that the small and the LAPACK paths
// return the same kind of factorisation (see getrf in kernels.hpp).
#include <cfloat>
#include <cmath>
#include <utility>

#include "linalg/detail/kernels/small.hpp"

namespace cholla::linalg::kernels::small {
namespace {

// Element (i, j) of the column-major view: row-major A(j, i).
template <int N>
constexpr int cm(int i, int j) {
  return i + j * N;
}

// Right-looking LU with row pivoting of M: M = P L U. info = first exactly-zero pivot; as in
// LAPACK the elimination continues past it.
template <int N>
int64_t getrf_one(double* a, int* piv) {
  int64_t info = 0;
  for (int j = 0; j < N; ++j) {
    int p = j;  // first index of the largest magnitude, like idamax
    double best = std::fabs(a[cm<N>(j, j)]);
    for (int i = j + 1; i < N; ++i)
      if (std::fabs(a[cm<N>(i, j)]) > best) {
        best = std::fabs(a[cm<N>(i, j)]);
        p = i;
      }
    piv[j] = p;
    const double pivot = a[cm<N>(p, j)];
    if (pivot != 0.0) {
      if (p != j)
        for (int c = 0; c < N; ++c) std::swap(a[cm<N>(j, c)], a[cm<N>(p, c)]);
      // Multiplying by the reciprocal overflows for subnormal pivots; divide then (as dgetf2).
      if (std::fabs(pivot) >= DBL_MIN) {
        const double r = 1.0 / pivot;
        for (int i = j + 1; i < N; ++i) a[cm<N>(i, j)] *= r;
      } else {
        for (int i = j + 1; i < N; ++i) a[cm<N>(i, j)] /= pivot;
      }
    } else if (info == 0) {
      info = j + 1;
    }
    for (int c = j + 1; c < N; ++c) {
      const double u = a[cm<N>(j, c)];
      for (int i = j + 1; i < N; ++i) a[cm<N>(i, c)] -= a[cm<N>(i, j)] * u;
    }
  }
  return info;
}

// inv(M) = inv(U) inv(L) P^T from the factors, in place (dgetri's order of operations).
template <int N>
void inverse_from_lu(double* a, const int* piv) {
  // inv(U), column by column; ascending i only overwrites entries no longer needed.
  for (int j = 0; j < N; ++j) {
    const double ujj = 1.0 / a[cm<N>(j, j)];
    a[cm<N>(j, j)] = ujj;
    for (int i = 0; i < j; ++i) {
      double s = 0.0;
      for (int p = i; p < j; ++p) s += a[cm<N>(i, p)] * a[cm<N>(p, j)];
      a[cm<N>(i, j)] = -s * ujj;
    }
  }
  // Solve X L = inv(U) for X, right to left: column j needs columns > j of X.
  for (int j = N - 1; j >= 0; --j) {
    double l[N] = {};
    for (int i = j + 1; i < N; ++i) {
      l[i] = a[cm<N>(i, j)];
      a[cm<N>(i, j)] = 0.0;
    }
    for (int p = j + 1; p < N; ++p)
      for (int i = 0; i < N; ++i) a[cm<N>(i, j)] -= a[cm<N>(i, p)] * l[p];
  }
  // X P^T: undo the row interchanges as column interchanges, last first.
  for (int j = N - 2; j >= 0; --j)
    if (piv[j] != j)
      for (int i = 0; i < N; ++i) std::swap(a[cm<N>(i, j)], a[cm<N>(i, piv[j])]);
}

}  // namespace

namespace reference {

void getrf(int64_t n, double* A, int64_t stride, int64_t* pivots, int64_t batch, int64_t* info) {
  dispatch(n, [&](auto N) {
    for (int64_t b = 0; b < batch; ++b) {
      int piv[N];
      info[b] = getrf_one<N>(A + b * stride, piv);
      for (int i = 0; i < N; ++i) pivots[b * N + i] = piv[i];
    }
  });
}

void inverse(int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  dispatch(n, [&](auto N) {
    for (int64_t b = 0; b < batch; ++b) {
      int piv[N];
      double* a = A + b * stride;
      info[b] = getrf_one<N>(a, piv);
      if (info[b] == 0) inverse_from_lu<N>(a, piv);
    }
  });
}

}  // namespace reference
}  // namespace cholla::linalg::kernels::small
