// Naive references and fixtures shared by the kernel tests. Written independently of the
// kernels: plain triple loops, no BLAS.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace kernels_test {

using Vec = std::vector<double>;

inline constexpr int64_t kSizes[] = {1, 2, 3, 5, 8, 9, 17, 64};
inline constexpr int64_t kBatches[] = {1, 3};
inline constexpr bool kBools[] = {false, true};
inline const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Rng {
  std::mt19937_64 gen{20240611};
  double operator()() { return std::uniform_real_distribution<double>(-1.0, 1.0)(gen); }
  Vec vec(int64_t len) {
    Vec v(static_cast<size_t>(len));
    for (double& x : v) x = (*this)();
    return v;
  }
};

// Element (i, j) of op(A), where op(A) is rows x cols and A is stored row-major.
inline double op_at(const double* A, bool t, int64_t rows, int64_t cols, int64_t i,
                    int64_t j) {
  return t ? A[j * rows + i] : A[i * cols + j];
}

inline Vec ref_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* A,
                    const double* B) {
  Vec C(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p)
        C[i * n + j] += op_at(A, ta, m, k, i, p) * op_at(B, tb, k, n, p, j);
  return C;
}

// Dense op(T) built from T's named triangle only.
inline Vec tri_op(const double* T, int64_t n, bool lower, bool transpose) {
  Vec D(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (lower ? j <= i : j >= i) D[transpose ? j * n + i : i * n + j] = T[i * n + j];
  return D;
}

// Well-conditioned triangular matrix; the other triangle is NaN, so reading it shows.
inline Vec random_tri(Rng& rng, int64_t n, bool lower) {
  Vec T(static_cast<size_t>(n * n), kNaN);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i == j) T[i * n + j] = 1.0 + std::fabs(rng());
      else if (lower ? j < i : j > i) T[i * n + j] = 2.0 * rng() / static_cast<double>(n);
    }
  return T;
}

inline Vec random_spd(Rng& rng, int64_t n) {
  const Vec M = rng.vec(n * n);
  Vec A = ref_gemm(false, true, n, n, n, M.data(), M.data());
  for (int64_t i = 0; i < n; ++i) A[i * n + i] += static_cast<double>(n);
  return A;
}

inline double max_diff(const double* a, const double* b, int64_t len) {
  double d = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    const double e = std::fabs(a[i] - b[i]);
    if (std::isnan(e)) return kNaN;  // fmax would drop it
    d = std::fmax(d, e);
  }
  return d;
}

inline double max_abs(const double* a, int64_t len) {
  double d = 0.0;
  for (int64_t i = 0; i < len; ++i) d = std::fmax(d, std::fabs(a[i]));
  return d;
}

inline bool all_finite(const Vec& v) {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// |got - want| <= tol relative to the size of want; NaN anywhere fails.
#define CHECK_CLOSE(got, want, len, tol)                                             \
  do {                                                                               \
    const double err_ = max_diff((got), (want), (len));                              \
    CHECK(err_ <= (tol) * (1.0 + max_abs((want), (len))));                           \
  } while (0)

inline Vec identity(int64_t n) {
  Vec I(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) I[i * n + i] = 1.0;
  return I;
}

// Copies the matrices into slots `stride` apart; padding is NaN so stray reads show.
inline Vec stack(const std::vector<Vec>& mats, int64_t stride) {
  Vec out(mats.size() * static_cast<size_t>(stride), kNaN);
  for (size_t b = 0; b < mats.size(); ++b)
    std::copy(mats[b].begin(), mats[b].end(), out.begin() + static_cast<long>(b) * stride);
  return out;
}

}  // namespace kernels_test
