// The batch-vectorised small kernels against the per-matrix reference loops (kept in
// small.hpp for this), under every SIMD target this machine supports, with edge values:
// batches that are not a multiple of the vector width, failing lanes in a block, NaN, tiny
// and huge scales, both triangles, strides larger than a matrix.
#include <doctest/doctest.h>

#include <hwy/targets.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels_test_util.hpp"
#include "linalg/detail/kernels/small.hpp"

namespace small = cholla::linalg::kernels::small;
using namespace kernels_test;

namespace {

// Runs body() once per SIMD target compiled in and supported here.
template <class Body>
void for_each_target(Body&& body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = hwy::TargetName(target);
    CAPTURE(name);
    body();
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A batch of SPD matrices at scale `scale`, each in a slot of `stride` doubles (the slack
// is filled with a sentinel that must survive), with a few matrices made to fail.
struct Batch {
  int64_t n, count, stride;
  Vec data;
  Batch(Rng& rng, int64_t n_, int64_t count_, int64_t stride_, double scale, bool failures)
      : n(n_), count(count_), stride(stride_), data(static_cast<size_t>(count_ * stride_), 7.25) {
    for (int64_t b = 0; b < count; ++b) {
      const Vec a = random_spd(rng, n);
      double* m = &data[static_cast<size_t>(b * stride)];
      for (int64_t i = 0; i < n * n; ++i) m[i] = a[static_cast<size_t>(i)] * scale;
      if (!failures) continue;
      if (b % 5 == 2) m[(n - 1) * n + (n - 1)] = -scale;     // last minor fails
      if (b % 7 == 3) m[0] = 0.0;                            // first minor fails
      if (b % 11 == 4) m[(n / 2) * n + (n / 2)] = kNaN;      // NaN pivot
    }
  }
};

void check_potrf_against_reference(int64_t n, int64_t count, int64_t stride, double scale,
                                   bool failures, bool lower) {
  CAPTURE(n);
  CAPTURE(count);
  CAPTURE(stride);
  CAPTURE(scale);
  CAPTURE(lower);
  Rng rng;
  Batch batch(rng, n, count, stride, scale, failures);
  Vec expected = batch.data, got = batch.data;
  std::vector<int64_t> info_expected(static_cast<size_t>(count), -1), info(static_cast<size_t>(count), -1);
  small::reference::potrf(lower, n, expected.data(), stride, count, info_expected.data());
  small::simd::potrf(lower, n, got.data(), stride, count, info.data());
  CHECK(info == info_expected);
  // The same operations in the same order: equal up to the multiply-adds a compiler may fuse
  // on FMA targets; a few ulp of the factor's scale.
  int64_t mismatches = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double a = got[i], e = expected[i];
    const bool same = std::isnan(e) ? std::isnan(a) : std::fabs(a - e) <= 1e-14 * std::sqrt(scale) * n;
    if (!same && mismatches++ < 3) FAIL_CHECK("element ", i, ": ", a, " vs reference ", e);
  }
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("simd potrf: equals the reference loop for every order, triangle, batch and target") {
  for_each_target([] {
    for (int64_t n = 1; n <= 8; ++n)
      for (bool lower : kBools)
        for (int64_t count : {1, 2, 3, 7, 8, 9, 17, 64, 101})
          check_potrf_against_reference(n, count, n * n, 1.0, true, lower);
  });
}

TEST_CASE("simd potrf: tiny and huge scales, padded strides, all-good blocks") {
  for_each_target([] {
    for (int64_t n : {1, 3, 5, 8})
      for (double scale : {1e-300, 1e-150, 1.0, 1e150, 1e300})
        for (bool failures : kBools) {
          check_potrf_against_reference(n, 33, n * n, scale, failures, true);
          check_potrf_against_reference(n, 19, n * n + 3, scale, failures, false);
        }
  });
}

TEST_CASE("simd potrf: closed form of a diagonal batch; failures leave LAPACK's partial factor") {
  for_each_target([] {
    // diag(4, 9, 16) -> diag(2, 3, 4); matrix 5 has a -1 in position (1, 1): info 2, the
    // first column factorised (2 on the diagonal) and the reduced pivot -1 stored.
    const int64_t count = 11;
    Vec a(static_cast<size_t>(count * 9), 0.0);
    for (int64_t b = 0; b < count; ++b)
      for (int i = 0; i < 3; ++i) a[static_cast<size_t>(b * 9 + i * 4)] = (i + 2.0) * (i + 2.0);
    a[5 * 9 + 4] = -1.0;
    a[5 * 9 + 1] = 5.0;  // upper triangle: not read, must be zeroed only where factorised
    std::vector<int64_t> info(static_cast<size_t>(count), -1);
    small::simd::potrf(true, 3, a.data(), 9, count, info.data());
    for (int64_t b = 0; b < count; ++b) {
      CAPTURE(b);
      CHECK(info[static_cast<size_t>(b)] == (b == 5 ? 2 : 0));
      const double* m = &a[static_cast<size_t>(b * 9)];
      CHECK(m[0] == 2.0);
      CHECK(m[4] == (b == 5 ? -1.0 : 3.0));
      if (b != 5) CHECK(m[8] == 4.0);
      CHECK(m[1] == 0.0);
    }
  });
}

TEST_CASE("small::potrf (pool + simd) equals the reference on a batch split into chunks") {
  Rng rng;
  for (int64_t n : {2, 3, 8}) {
    Batch batch(rng, n, 20'011, n * n, 1.0, true);
    Vec expected = batch.data, got = batch.data;
    std::vector<int64_t> ie(20'011), ig(20'011);
    small::reference::potrf(true, n, expected.data(), n * n, 20'011, ie.data());
    small::potrf(true, n, got.data(), n * n, 20'011, ig.data());
    CHECK(ie == ig);
    int64_t mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i)
      mismatches += std::isnan(expected[i]) ? !std::isnan(got[i]) : !(std::fabs(got[i] - expected[i]) <= 1e-13);
    CHECK(mismatches == 0);
  }
}

namespace {

// trsm or trmm through the SIMD kernel and the reference on the same random batch; T's
// unread triangle is NaN (random_tri), so reading it would show.
template <class Simd, class Ref>
void check_triangular(Simd simd_fn, Ref ref_fn, bool right, bool lower, bool transpose,
                      int64_t n, int64_t other, int64_t count, bool shared_t, double alpha,
                      double scale) {
  CAPTURE(right);
  CAPTURE(lower);
  CAPTURE(transpose);
  CAPTURE(n);
  CAPTURE(other);
  CAPTURE(count);
  CAPTURE(shared_t);
  CAPTURE(scale);
  Rng rng;
  const int64_t m = right ? other : n, nc = right ? n : other;
  Vec T;
  for (int64_t b = 0; b < (shared_t ? 1 : count); ++b) {
    Vec t = random_tri(rng, n, lower);
    for (double& v : t) v *= scale;
    T.insert(T.end(), t.begin(), t.end());
  }
  Vec B = rng.vec(count * m * nc);
  Vec expected = B, got = B;
  const int64_t st = shared_t ? 0 : n * n;
  ref_fn(right, lower, transpose, m, nc, alpha, T.data(), st, expected.data(), m * nc, count);
  simd_fn(right, lower, transpose, m, nc, alpha, T.data(), st, got.data(), m * nc, count);
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] - expected[i]) / (std::fabs(expected[i]) + 1e-300));
  CHECK(worst <= 1e-12);
}

}  // namespace

TEST_CASE("simd trsm and trmm: equal the reference loops for every flag, order, width and target") {
  for_each_target([] {
    for (bool right : kBools)
      for (bool lower : kBools)
        for (bool transpose : kBools)
          for (int64_t n = 1; n <= 8; ++n)
            for (auto [other, count] : {std::pair<int64_t, int64_t>{1, 9}, {3, 5}, {n, 17}, {11, 3}}) {
              check_triangular(small::simd::trsm, small::reference::trsm, right, lower, transpose,
                               n, other, count, false, 1.0, 1.0);
              check_triangular(small::simd::trmm, small::reference::trmm, right, lower, transpose,
                               n, other, count, false, -0.5, 1.0);
            }
  });
}

TEST_CASE("simd trsm and trmm: a shared factor, alpha, tiny and huge scales") {
  for_each_target([] {
    for (double scale : {1e-150, 1e150})
      for (int64_t n : {1, 3, 8}) {
        check_triangular(small::simd::trsm, small::reference::trsm, false, true, false, n, 2, 13, true, 2.5, scale);
        check_triangular(small::simd::trsm, small::reference::trsm, true, false, true, n, 4, 13, true, -1.0, scale);
        check_triangular(small::simd::trmm, small::reference::trmm, true, true, false, n, 2, 13, true, 3.0, scale);
        check_triangular(small::simd::trmm, small::reference::trmm, false, false, true, n, 5, 13, true, 1.0, scale);
      }
  });
}

TEST_CASE("simd trsm: closed form, T = diag(2) solves to B / 2; trmm undoes trsm") {
  for_each_target([] {
    const int64_t n = 4, count = 10;
    Vec T(static_cast<size_t>(count * n * n), kNaN), B(static_cast<size_t>(count * n * 3));
    for (int64_t b = 0; b < count; ++b)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j) T[static_cast<size_t>(b * 16 + i * n + j)] = i == j ? 2.0 : 0.0;
    for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<double>(i) - 7.0;
    Vec X = B;
    small::simd::trsm(false, true, false, n, 3, 1.0, T.data(), n * n, X.data(), n * 3, count);
    for (size_t i = 0; i < B.size(); ++i) CHECK(X[i] == B[i] / 2.0);
    small::simd::trmm(false, true, false, n, 3, 1.0, T.data(), n * n, X.data(), n * 3, count);
    CHECK(X == B);
  });
}

TEST_CASE("simd potri: equals the reference loop; zero diagonals report info, write nothing") {
  for_each_target([] {
    Rng rng;
    for (int64_t n = 1; n <= 8; ++n)
      for (bool lower : kBools)
        for (int64_t count : {1, 3, 9, 17}) {
          CAPTURE(n);
          CAPTURE(lower);
          CAPTURE(count);
          Vec a;
          for (int64_t b = 0; b < count; ++b) {
            Vec t = random_tri(rng, n, lower);
            for (double& v : t)
              if (std::isnan(v)) v = 3.0;  // the other triangle: never read
            if (b % 4 == 1) t[static_cast<size_t>((n - 1) * n + (n - 1))] = 0.0;  // singular
            a.insert(a.end(), t.begin(), t.end());
          }
          Vec expected = a, got = a;
          std::vector<int64_t> ie(static_cast<size_t>(count), -1), ig(static_cast<size_t>(count), -1);
          small::reference::potri(lower, n, expected.data(), n * n, count, ie.data());
          small::simd::potri(lower, n, got.data(), n * n, count, ig.data());
          CHECK(ie == ig);
          double worst = 0.0;
          for (size_t i = 0; i < got.size(); ++i)
            worst = std::max(worst, std::fabs(got[i] - expected[i]) / (std::fabs(expected[i]) + 1.0));
          CHECK(worst <= 1e-14);
          for (int64_t b = 1; b < count; b += 4)  // singular: untouched
            CHECK(std::equal(got.begin() + b * n * n, got.begin() + (b + 1) * n * n, a.begin() + b * n * n));
        }
  });
}

TEST_CASE("simd potri: closed form, diag(2, 4) gives diag(1/4, 1/16)") {
  for_each_target([] {
    Vec a = {2.0, 0.0, 0.0, 4.0, 2.0, 0.0, 0.0, 4.0, 2.0, 0.0, 0.0, 4.0};
    std::vector<int64_t> info(3, -1);
    small::simd::potri(true, 2, a.data(), 4, 3, info.data());
    for (int b = 0; b < 3; ++b) {
      CHECK(info[static_cast<size_t>(b)] == 0);
      CHECK(a[static_cast<size_t>(b * 4)] == 0.25);
      CHECK(a[static_cast<size_t>(b * 4 + 1)] == 0.0);
      CHECK(a[static_cast<size_t>(b * 4 + 2)] == 0.0);
      CHECK(a[static_cast<size_t>(b * 4 + 3)] == 0.0625);
    }
  });
}
