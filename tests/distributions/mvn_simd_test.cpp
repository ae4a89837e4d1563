// The across-the-batch SIMD MVN kernels (distributions/mvn_simd.cpp) against the reference
// paths they replace: the log-density composed from linalg ops (potrf for the symmetric forms)
// and linalg::potrf, under EVERY SIMD target compiled in and supported by this machine.
#include <cmath>
#include <limits>

#include "../linalg/linalg_helpers.hpp"
#include "simd_targets.hpp"
#include "distributions/detail/factorise.hpp"
#include "distributions/detail/mvn_simd.hpp"

using namespace cholla;
using dist::MultivariateNormal;
using dist::detail::MvnMatrix;

namespace {

using test::for_each_target;

bool symmetric(MvnMatrix k) { return k == MvnMatrix::Covariance || k == MvnMatrix::Precision; }

// max |a - b| <= tol * max(1, max |b|): relative to the size of the reference, so the same
// tolerance holds at scales 1e-300 and 1e300.
void check_relative(const Tensor& a, const Tensor& b, double tol) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0.0, size = 1.0;
  for (size_t i = 0; i < a.data().size(); ++i) {
    worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
    size = std::max(size, std::abs(b.data()[i]));
  }
  CHECK_MESSAGE(worst <= tol * size, "max |a - b| = ", worst, " against max |b| = ", size);
}

// A lower factor with diagonal in [1, 2] times `scale`, and the matrix of kind `k` built from it.
Tensor make_matrix(MvnMatrix k, const Shape& batch, int64_t d, double scale, uint64_t seed) {
  NoGrad guard;
  Tensor L = test::triangular(batch, d, true, seed) * scale;
  if (!symmetric(k)) return L;
  Tensor S = linalg::syrk(L);
  return 0.5 * (S + transpose(S));
}

// The SIMD op and the reference agree on values and on every first-order gradient.
void compare(MvnMatrix kind, Tensor loc, Tensor matrix, Tensor x, double tol = 1e-11) {
  loc = loc.detach().requires_grad(true);
  matrix = matrix.detach().requires_grad(true);
  x = x.detach().requires_grad(true);
  const bool precision = kind == MvnMatrix::PrecisionTril || kind == MvnMatrix::Precision;
  Tensor factor = matrix;
  if (symmetric(kind)) {
    auto f = dist::detail::simd_factorise(matrix);
    REQUIRE(f.has_value());
    test::check_close(f->factor, linalg::potrf(matrix), 1e-12 * std::abs(linalg::potrf(matrix).data()[0]));
    factor = f->factor;
  }
  Tensor lp = dist::detail::simd_log_prob(loc, matrix, factor, x, kind);
  Tensor ref = dist::detail::composed_log_prob(loc, symmetric(kind) ? linalg::potrf(matrix) : matrix, x, precision);
  check_relative(lp, ref, tol);
  Tensor w = test::uniform(lp.shape(), -1, 1, 99);
  auto got = grad({sum(lp * w)}, {loc, matrix, x}, {.retain_graph = true});
  auto want = grad({sum(ref * w)}, {loc, matrix, x});
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    check_relative(got[i], want[i], tol);
  }
}

constexpr MvnMatrix kKinds[] = {MvnMatrix::ScaleTril, MvnMatrix::PrecisionTril, MvnMatrix::Covariance,
                                MvnMatrix::Precision};

// x = loc + noise on the scale of the distribution (so |w| stays O(1) at any scale).
Tensor sample_like(MvnMatrix kind, const Tensor& loc, const Shape& shape, double scale, uint64_t seed) {
  const bool precision = kind == MvnMatrix::PrecisionTril || kind == MvnMatrix::Precision;
  NoGrad guard;
  return loc + test::uniform(shape, -2, 2, seed) * (precision ? 1.0 / scale : scale);
}

}  // namespace

TEST_CASE("simd log_prob equals the composed path: every kind, d = 1..8, N around the vector width") {
  for_each_target([] {
    for (MvnMatrix kind : kKinds)
      for (int64_t d = 1; d <= 8; ++d)
        for (int64_t n : {1, 2, 3, 7, 8, 9, 17}) {
          CAPTURE(static_cast<int>(kind));
          CAPTURE(d);
          CAPTURE(n);
          const auto seed = static_cast<uint64_t>(d * 100 + n);
          Tensor loc = test::uniform({n, d}, -1, 1, seed);
          compare(kind, loc, make_matrix(kind, {n}, d, 1.0, seed + 1), sample_like(kind, loc, {n, d}, 1.0, seed + 2));
        }
  });
}

// -mean(log_prob), the loss whose g the forward guesses: the gradients computed with the forward
// equal the composed path's, and bit for bit those of the backward pass that recomputes them
// (a retained graph's second backward, and a loss with another g).
void compare_mean_loss(MvnMatrix kind, Tensor loc, Tensor matrix, Tensor x, bool x_grad) {
  loc = loc.detach().requires_grad(true);
  matrix = matrix.detach().requires_grad(true);
  x = x.detach().requires_grad(x_grad);
  const bool precision = kind == MvnMatrix::PrecisionTril || kind == MvnMatrix::Precision;
  Tensor factor = symmetric(kind) ? dist::detail::simd_factorise(matrix)->factor : matrix;
  std::vector<Tensor> inputs{loc, matrix};
  if (x_grad) inputs.push_back(x);
  dist::detail::simd_guess_reset();
  auto& stats = dist::detail::simd_guess_stats();
  const int64_t right = stats.right;
  Tensor lp = dist::detail::simd_log_prob(loc, matrix, factor, x, kind);
  Tensor loss = -mean(lp);
  auto eager = grad({loss}, inputs, {.retain_graph = true});
  CHECK(stats.right == right + 1);
  auto again = grad({loss}, inputs);  // the eager gradients were handed over: recomputed
  CHECK(stats.right == right + 1);
  Tensor other = dist::detail::simd_log_prob(loc, matrix, factor, x, kind);
  auto wrong = grad({mean(other) * -1.5}, inputs);  // a wrong guess
  Tensor ref = dist::detail::composed_log_prob(loc, symmetric(kind) ? linalg::potrf(matrix) : matrix, x, precision);
  auto want = grad({-mean(ref)}, inputs);
  for (size_t i = 0; i < inputs.size(); ++i) {
    CAPTURE(i);
    CHECK(eager[i].to_vector() == again[i].to_vector());
    check_relative(eager[i], want[i], 1e-11);
    check_relative(wrong[i], want[i] * 1.5, 1e-11);
  }
}

TEST_CASE("simd -mean(log_prob): gradients computed with the forward equal the backward's bits and the composed path") {
  for_each_target([] {
    for (MvnMatrix kind : kKinds)
      for (int64_t d : {1, 3, 5, 8})
        for (int64_t n : {1, 7, 8, 9, 17}) {
          CAPTURE(static_cast<int>(kind));
          CAPTURE(d);
          CAPTURE(n);
          const auto seed = static_cast<uint64_t>(d * 300 + n);
          Tensor loc = test::uniform({n, d}, -1, 1, seed);
          Tensor m = make_matrix(kind, {n}, d, 1.0, seed + 1);
          Tensor x = sample_like(kind, loc, {n, d}, 1.0, seed + 2);
          compare_mean_loss(kind, loc, m, x, true);
          compare_mean_loss(kind, loc, m, x, false);
        }
  });
  // A wrong guess pauses guessing on this thread; a right one is still used afterwards.
  auto& stats = dist::detail::simd_guess_stats();
  dist::detail::simd_guess_reset();
  const int64_t wrong = stats.wrong;
  Tensor loc = test::uniform({5, 2}, -1, 1, 1).requires_grad(true);
  Tensor L = test::triangular({5}, 2, true, 2).requires_grad(true);
  auto mvn = MultivariateNormal::from_scale_tril(loc, L);
  (void)grad({sum(mvn.log_prob(Tensor::zeros({5, 2})))}, {loc});
  CHECK(stats.wrong == wrong + 1);
  const int64_t right = stats.right;
  for (int i = 0; i < 40; ++i) (void)grad({-mean(mvn.log_prob(Tensor::zeros({5, 2})))}, {loc, L});
  CHECK(stats.right > right);
  CHECK(stats.right < right + 40);
  CHECK(stats.wrong == wrong + 1);
}

TEST_CASE("simd log_prob at tiny and huge scales (the one-log log-determinant cannot overflow)") {
  for_each_target([] {
    for (MvnMatrix kind : kKinds)
      for (double scale : {1e-300, 1e-150, 1e-100, 1e100, 1e150, 1e300}) {
        // S = L L^T must stay representable for the symmetric forms.
        if (symmetric(kind) && std::abs(std::log10(scale)) > 100) continue;
        for (int64_t d : {1, 3, 8}) {
          CAPTURE(static_cast<int>(kind));
          CAPTURE(scale);
          CAPTURE(d);
          Tensor loc = test::uniform({11, d}, -1, 1, 5);
          compare(kind, loc, make_matrix(kind, {11}, d, scale, 6), sample_like(kind, loc, {11, d}, scale, 7), 1e-10);
        }
      }
    // Diagonal entries spread over 600 orders of magnitude in one factor.
    Tensor diag = Tensor::from({1, 4}, {1e-300, 1e300, 1e-200, 3.0});
    Tensor L = linalg::makediag(diag);
    Tensor x = Tensor::from({1, 4}, {2e-300, -1e300, 5e-201, 1.0});
    compare(MvnMatrix::ScaleTril, Tensor::zeros({1, 4}), L, x, 1e-10);
  });
}

TEST_CASE("simd log_prob with broadcast inputs: shared factor, shared loc, shared x, offset lists") {
  for_each_target([] {
    for (MvnMatrix kind : kKinds)
      for (int64_t d : {1, 3, 6}) {
        CAPTURE(static_cast<int>(kind));
        CAPTURE(d);
        const int64_t n = 13;
        Tensor many_loc = test::uniform({n, d}, -1, 1, 40);
        Tensor many_x = test::uniform({n, d}, -2, 2, 41);
        Tensor one_loc = test::uniform({d}, -1, 1, 42);
        Tensor one_x = test::uniform({d}, -2, 2, 43);
        compare(kind, many_loc, make_matrix(kind, {}, d, 1.0, 44), many_x);         // one matrix for all
        compare(kind, one_loc, make_matrix(kind, {n}, d, 1.0, 45), many_x);         // one loc
        compare(kind, many_loc, make_matrix(kind, {n}, d, 1.0, 46), one_x);         // one x
        compare(kind, one_loc, make_matrix(kind, {1}, d, 1.0, 47), one_x);          // a single sample
        // x [5, 1, d] against 3 distributions: loc and matrix read through offset lists.
        compare(kind, test::uniform({3, d}, -1, 1, 48), make_matrix(kind, {3}, d, 1.0, 49),
                test::uniform({5, 1, d}, -2, 2, 50));
        compare(kind, test::uniform({5, 1, d}, -1, 1, 51), make_matrix(kind, {1, 3}, d, 1.0, 52),
                test::uniform({3, d}, -2, 2, 53));
      }
  });
}

TEST_CASE("simd_cholesky equals potrf; a matrix that is not positive definite is reported") {
  for_each_target([] {
    for (int64_t d = 1; d <= 8; ++d)
      for (int64_t n : {1, 5, 8, 19}) {
        CAPTURE(d);
        CAPTURE(n);
        Tensor A = test::spd({n}, d, static_cast<uint64_t>(60 + d));
        Tensor L = Tensor::empty(A.shape());
        const dist::detail::CholeskyPass pass{.A = A.data().data(), .d = d, .count = n, .L = L.mutable_data().data(),
                                              .check_symmetry = true, .symmetry_rtol = 1e-6, .symmetry_atol = 1e-12};
        REQUIRE(dist::detail::simd_cholesky(pass));
        Tensor ref = linalg::potrf(A);
        test::check_close(L, ref, 1e-13);
        const std::vector<double> pivots = linalg::extractdiag(ref).to_vector();
        CHECK(pass.min_pivot == doctest::Approx(*std::min_element(pivots.begin(), pivots.end())));
        // Break one matrix, in the last lane: the kernel says so, and from_covariance reports
        // the batch element and the minor as the reference factorisation does.
        Tensor B = A.clone();
        B.mutable_data()[static_cast<size_t>((n - 1) * d * d + (d - 1) * d + (d - 1))] = -1.0;
        CHECK_FALSE(dist::detail::simd_cholesky({.A = B.data().data(), .d = d, .count = n, .L = L.mutable_data().data()}));
        CHECK_FALSE(dist::detail::simd_factorise(B).has_value());
        try {
          (void)MultivariateNormal::from_covariance(Tensor::zeros({d}), B);
          FAIL("expected NotPositiveDefinite");
        } catch (const NotPositiveDefinite& e) {
          CHECK(e.flat_batch_index() == n - 1);
          CHECK(e.minor_order() == d);
        }
      }
  });
}

TEST_CASE("simd_cholesky at tiny and huge scales, mixed in one block (the square roots without the divider)") {
  // Pivots of 1e-305 and 1e305 lie outside the range where AVX-512 refines a reciprocal square
  // root estimate; a block holding both kinds of matrix takes the exact instructions.
  for_each_target([] {
    for (int64_t d : {1, 3, 8}) {
      const int64_t n = 16;
      for (double scale : {1e-305, 1e-150, 1e150, 1e305, 0.0}) {
        CAPTURE(d);
        CAPTURE(scale);
        std::vector<double> a = test::spd({n}, d, static_cast<uint64_t>(70 + d)).to_vector();
        for (int64_t m = 0; m < n; ++m)  // scale 0: every other matrix at 1e-305, the rest at 1e305
          for (int64_t e = 0; e < d * d; ++e) a[static_cast<size_t>(m * d * d + e)] *= scale != 0.0 ? scale : m % 2 == 0 ? 1e-305 : 1e305;
        Tensor A = Tensor::from({n, d, d}, a);
        Tensor L = Tensor::empty(A.shape());
        REQUIRE(dist::detail::simd_cholesky({.A = A.data().data(), .d = d, .count = n, .L = L.mutable_data().data()}));
        Tensor ref = linalg::potrf(A);
        for (int64_t m = 0; m < n; ++m) {
          CAPTURE(m);
          check_relative(select(L, 0, m), select(ref, 0, m), 1e-14);
        }
      }
    }
  });
}

TEST_CASE("simd_cholesky checks finiteness and symmetry on the values it loads, upper triangle included") {
  for_each_target([] {
    for (int64_t d : {2, 3, 8})
      for (int64_t n : {1, 8, 11}) {
        CAPTURE(d);
        CAPTURE(n);
        Tensor A = test::spd({n}, d, static_cast<uint64_t>(80 + d));
        Tensor L = Tensor::empty(A.shape());
        for (int64_t at : {int64_t{1}, d * d - d}) {  // (0, 1) above the diagonal, (d - 1, 0) below
          for (double bad : {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
            CAPTURE(at);
            CAPTURE(bad);
            std::vector<double> a = A.to_vector();
            a[static_cast<size_t>((n - 1) * d * d + at)] = bad;  // the last matrix: the last lane
            const dist::detail::CholeskyPass pass{.A = a.data(), .d = d, .count = n, .L = L.mutable_data().data(),
                                                  .check_finite = true};
            CHECK_FALSE(dist::detail::simd_cholesky(pass));
            // Unchecked, a bad value above the diagonal is never read.
            if (at == 1)
              CHECK(dist::detail::simd_cholesky({.A = a.data(), .d = d, .count = n, .L = L.mutable_data().data()}));
            // The factory names it under every option (validation off skips only the symmetry check).
            CHECK_THROWS_WITH_AS((void)MultivariateNormal::from_covariance(Tensor::zeros({d}), Tensor::from({n, d, d}, a),
                                                                          {.validate = false}),
                                 doctest::Contains(std::isnan(bad) ? "covariance contains NaN" : "covariance contains Inf"),
                                 DomainError);
          }
        }
        // The upper triangle read for the symmetry check: 0.5 off in the last matrix's (0, 1).
        std::vector<double> a = A.to_vector();
        a[static_cast<size_t>((n - 1) * d * d + 1)] += 0.5;
        CHECK_FALSE(dist::detail::simd_cholesky({.A = a.data(), .d = d, .count = n, .L = L.mutable_data().data(),
                                                 .check_symmetry = true, .symmetry_rtol = 1e-6, .symmetry_atol = 1e-12}));
        CHECK(dist::detail::simd_cholesky({.A = a.data(), .d = d, .count = n, .L = L.mutable_data().data()}));
      }
  });
}

TEST_CASE("simd validation scans: a NaN, an Inf or a bad entry anywhere, including the tail") {
  for_each_target([] {
    for (int64_t n : {1, 2, 7, 8, 9, 23}) {
      std::vector<double> v(static_cast<size_t>(n), 1.5);
      CHECK(dist::detail::simd_all_finite(v.data(), n));
      for (int64_t at = 0; at < n; ++at)
        for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
          std::vector<double> w = v;
          w[static_cast<size_t>(at)] = bad;
          CHECK_FALSE(dist::detail::simd_all_finite(w.data(), n));
        }
    }
    for (int64_t d : {1, 2, 3, 8, 9})
      for (int64_t count : {1, 3, 9}) {
        CAPTURE(d);
        CAPTURE(count);
        Tensor L = test::triangular({count}, d, true, 70);
        CHECK(dist::detail::simd_finite_lower_positive(L.data().data(), d, count));
        for (int64_t k = 0; k < count * d * d; ++k) {
          const int64_t r = (k % (d * d)) / d, c = k % d;
          if (c < r) continue;  // the strict lower part may hold anything
          std::vector<double> w = L.to_vector();
          w[static_cast<size_t>(k)] = c == r ? 0.0 : 1e-300;  // zero pivot, or a nonzero upper entry
          CHECK_FALSE(dist::detail::simd_finite_lower_positive(w.data(), d, count));
        }
        for (int64_t k = 0; k < count * d * d; ++k) {  // a NaN anywhere, the strict lower part too
          std::vector<double> w = L.to_vector();
          w[static_cast<size_t>(k)] = std::numeric_limits<double>::quiet_NaN();
          CHECK_FALSE(dist::detail::simd_finite_lower_positive(w.data(), d, count));
        }
      }
  });
}

TEST_CASE("simd log_prob: a non-finite x is a DomainError naming its batch element; a finite x never is") {
  for_each_target([] {
    Tensor L = test::triangular({}, 3, true, 80);
    auto mvn = MultivariateNormal::from_scale_tril(Tensor::zeros({3}), L);
    for (int64_t at : {0, 8, 10}) {
      std::vector<double> v(11 * 3, 0.25);
      v[static_cast<size_t>(at * 3 + 1)] = std::numeric_limits<double>::quiet_NaN();
      try {
        (void)mvn.log_prob(Tensor::from({11, 3}, v));
        FAIL("expected DomainError");
      } catch (const DomainError& e) {
        CHECK(e.batch_index() == std::vector<int64_t>{at});
      }
    }
    // An empty batch computes nothing, and still rejects a non-finite x.
    auto none = MultivariateNormal::from_scale_tril(Tensor::zeros({0, 3}), L);
    CHECK(none.log_prob(Tensor::zeros({1, 3})).shape() == Shape{0});
    CHECK_THROWS_AS((void)none.log_prob(Tensor::from({1, 3}, {0.0, std::nan(""), 0.0})), DomainError);
    // Huge but finite: log_prob is -inf, not an error.
    Tensor lp = mvn.log_prob(Tensor::from({1, 3}, {1e300, -1e300, 1e300}));
    CHECK(lp.item() == -std::numeric_limits<double>::infinity());
  });
}

TEST_CASE("simd log_prob through MultivariateNormal: second order keeps the composed path") {
  for_each_target([] {
    Tensor x = test::uniform({4, 2}, -2, 2, 90);
    Tensor loc = test::uniform({4, 2}, -1, 1, 91);
    Tensor S = test::spd({4}, 2, 92);
    const GradcheckOptions sym{.structure = {Structure::General, Structure::Symmetric, Structure::General}};
    test::check_gradients([](const std::vector<Tensor>& v) {
      return MultivariateNormal::from_covariance(v[0], v[1]).log_prob(v[2]);
    }, {loc, S, x}, sym);
    // entropy differentiates through the factor simd_factorise recorded as potrf of P.
    test::check_gradients([](const std::vector<Tensor>& v) {
      return MultivariateNormal::from_precision(Tensor::zeros({2}), v[0]).entropy();
    }, {S}, {.structure = {Structure::Symmetric}});
  });
}

TEST_CASE("simd log_prob over several pool chunks: bit-identical for 1 and 2 threads, equal to the composed path") {
  // 20,000 samples at d = 3 are three chunks of the pool; a shared matrix or loc sums its
  // gradient per chunk, then in chunk order.
  const int64_t restore = num_threads();
  for (MvnMatrix kind : kKinds)
    for (int shared : {0, 1, 2}) {  // every input per sample; one matrix for all; one loc for all
      CAPTURE(static_cast<int>(kind));
      CAPTURE(shared);
      const int64_t n = 20000, d = 3;
      Tensor loc = test::uniform(shared == 2 ? Shape{d} : Shape{n, d}, -1, 1, 110);
      Tensor matrix = make_matrix(kind, shared == 1 ? Shape{} : Shape{n}, d, 1.0, 111);
      Tensor x = sample_like(kind, test::uniform({n, d}, -1, 1, 112), {n, d}, 1.0, 113);
      std::vector<std::vector<double>> results[2];
      for (int64_t threads : {1, 2}) {
        set_num_threads(threads);
        Tensor l = loc.detach().requires_grad(true), m = matrix.detach().requires_grad(true),
               y = x.detach().requires_grad(true);
        auto mvn = kind == MvnMatrix::ScaleTril       ? MultivariateNormal::from_scale_tril(l, m)
                   : kind == MvnMatrix::PrecisionTril ? MultivariateNormal::from_precision_tril(l, m)
                   : kind == MvnMatrix::Covariance    ? MultivariateNormal::from_covariance(l, m)
                                                      : MultivariateNormal::from_precision(l, m);
        Tensor lp = mvn.log_prob(y);
        auto g = grad({-mean(lp)}, {l, m, y});
        results[threads - 1] = {lp.to_vector(), g[0].to_vector(), g[1].to_vector(), g[2].to_vector()};
      }
      for (size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(results[0][i] == results[1][i]);
      }
      set_num_threads(restore);
      compare(kind, loc, matrix, x, 1e-10);
    }
  set_num_threads(restore);
}

TEST_CASE("simd validation scans split over pool chunks: a bad entry in any chunk is found") {
  const int64_t restore = num_threads();
  set_num_threads(2);
  const int64_t d = 3, count = 20000;  // three chunks of matrices, five of the flat scan
  Tensor L = test::triangular({count}, d, true, 71);
  CHECK(dist::detail::simd_finite_lower_positive(L.data().data(), d, count));
  CHECK(dist::detail::simd_all_finite(L.data().data(), count * d * d));
  for (int64_t m : {int64_t{0}, int64_t{9000}, count - 1}) {
    CAPTURE(m);
    std::vector<double> w = L.to_vector();
    w[static_cast<size_t>(m * d * d + 1)] = 0.5;  // above the diagonal
    CHECK_FALSE(dist::detail::simd_finite_lower_positive(w.data(), d, count));
    w[static_cast<size_t>(m * d * d + 1)] = std::numeric_limits<double>::infinity();
    CHECK_FALSE(dist::detail::simd_all_finite(w.data(), count * d * d));
  }
  set_num_threads(restore);
}
