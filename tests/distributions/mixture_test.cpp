// MixtureSameFamily: log_prob against a hand loop over bivariate normal densities, moments
// against the law of total variance computed by hand and against samples, gradients.
#include <cmath>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
using dist::MixtureSameFamily;
using dist::MultivariateNormal;

namespace {

// N(x; m, S) for d = 2 by the explicit 2 x 2 inverse and determinant.
double bivariate_density(double x0, double x1, double m0, double m1, double s00, double s01, double s11) {
  const double det = s00 * s11 - s01 * s01;
  const double a = x0 - m0, b = x1 - m1;
  const double q = (s11 * a * a - 2 * s01 * a * b + s00 * b * b) / det;
  return std::exp(-0.5 * q) / (2 * M_PI * std::sqrt(det));
}

struct Setup {
  Tensor logits, loc, L;
};

// Batch [2] of mixtures of K = 3 bivariate components.
Setup setup() {
  return {Tensor::from({2, 3}, {0.2, -0.5, 1.0, 2.0, 0.0, -1.0}), test::uniform({2, 3, 2}, -2, 2, 1),
          test::triangular({2, 3}, 2, true, 2)};
}

MixtureSameFamily make(const Setup& s) {
  return MixtureSameFamily(s.logits, MultivariateNormal::from_scale_tril(s.loc, s.L));
}

}  // namespace

TEST_CASE("MixtureSameFamily: log_prob equals log sum_k pi_k N_k(x) by hand") {
  const Setup s = setup();
  auto mix = make(s);
  CHECK(mix.batch_shape() == Shape{2});
  CHECK(mix.event_shape() == Shape{2});
  CHECK(mix.num_components() == 3);
  Tensor x = test::uniform({4, 2, 2}, -3, 3, 3);
  Tensor lp = mix.log_prob(x);
  REQUIRE(lp.shape() == Shape{4, 2});
  Tensor S = linalg::syrk(s.L);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t b = 0; b < 2; ++b) {
      double norm = 0.0, total = 0.0;
      for (int64_t k = 0; k < 3; ++k) norm += std::exp(s.logits.at({b, k}));
      for (int64_t k = 0; k < 3; ++k)
        total += std::exp(s.logits.at({b, k})) / norm *
                 bivariate_density(x.at({n, b, 0}), x.at({n, b, 1}), s.loc.at({b, k, 0}), s.loc.at({b, k, 1}),
                                   S.at({b, k, 0, 0}), S.at({b, k, 0, 1}), S.at({b, k, 1, 1}));
      CHECK(lp.at({n, b}) == doctest::Approx(std::log(total)).epsilon(1e-12));
    }
  test::check_close(mix.mixture_probs(), softmax(s.logits, -1), 0.0);
  test::check_close(sum(mix.mixture_probs(), {-1}), Tensor::ones({2}), 1e-15);
}

TEST_CASE("MixtureSameFamily: log_prob is stable far from every component") {
  // Naively exp(log N_k) underflows to 0 here (log N ~ -5e5); the logsumexp keeps the answer:
  // log(pi_0 N_0 + pi_1 N_1) where the nearer component dominates completely.
  Tensor logits = Tensor::from({2}, {0.0, std::log(3.0)});
  Tensor loc = Tensor::from({2, 1}, {0.0, 10.0});
  auto mix = MixtureSameFamily(logits, MultivariateNormal::from_scale_diag(loc, Tensor::ones({2, 1})));
  const double x = 1000.0;
  const double expected = std::log(0.75) - 0.5 * (x - 10.0) * (x - 10.0) - 0.5 * std::log(2 * M_PI);
  const double lp = mix.log_prob(Tensor::from({1}, {x})).item();
  CHECK(std::isfinite(lp));
  CHECK(lp == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("MixtureSameFamily: mean, covariance and variance by the law of total variance") {
  const Setup s = setup();
  auto mix = make(s);
  Tensor S = linalg::syrk(s.L);
  Tensor mu = mix.mean(), cov = mix.covariance();
  REQUIRE(mu.shape() == Shape{2, 2});
  REQUIRE(cov.shape() == Shape{2, 2, 2});
  for (int64_t b = 0; b < 2; ++b) {
    double norm = 0.0, m[2] = {0, 0};
    for (int64_t k = 0; k < 3; ++k) norm += std::exp(s.logits.at({b, k}));
    for (int64_t k = 0; k < 3; ++k)
      for (int64_t i = 0; i < 2; ++i) m[i] += std::exp(s.logits.at({b, k})) / norm * s.loc.at({b, k, i});
    for (int64_t i = 0; i < 2; ++i) {
      CHECK(mu.at({b, i}) == doctest::Approx(m[i]).epsilon(1e-13));
      for (int64_t j = 0; j < 2; ++j) {
        // E[x x^T] - mu mu^T with E[x x^T] = sum_k pi_k (S_k + mu_k mu_k^T).
        double second = 0.0;
        for (int64_t k = 0; k < 3; ++k)
          second += std::exp(s.logits.at({b, k})) / norm *
                    (S.at({b, k, i, j}) + s.loc.at({b, k, i}) * s.loc.at({b, k, j}));
        CHECK(cov.at({b, i, j}) == doctest::Approx(second - m[i] * m[j]).epsilon(1e-12));
      }
    }
  }
  test::check_close(mix.variance(), linalg::extractdiag(cov), 1e-12);
}

TEST_CASE("MixtureSameFamily: samples follow the mixture (moments and component shares)") {
  // Well separated components: each draw's nearest mean tells which component produced it.
  Tensor logits = Tensor::from({3}, {0.0, std::log(2.0), std::log(5.0)});
  Tensor loc = Tensor::from({3, 2}, {-10, 0, 0, 10, 10, 0});
  Tensor L = expand(Tensor::from({2, 2}, {1.0, 0.0, 0.4, 0.8}), {3, 2, 2}) + Tensor::zeros({3, 2, 2});
  auto mix = MixtureSameFamily(logits, MultivariateNormal::from_scale_tril(loc, L));
  Rng rng(11);
  const int64_t n = 40000;
  Tensor xs = mix.sample(rng, n);
  REQUIRE(xs.shape() == Shape{n, 2});
  CHECK_FALSE(xs.requires_grad());
  int64_t counts[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    const double a = xs.at({i, 0}), b = xs.at({i, 1});
    counts[a < -5 ? 0 : b > 5 ? 1 : 2]++;
  }
  const double shares[3] = {0.125, 0.25, 0.625};
  for (int k = 0; k < 3; ++k)
    CHECK(std::abs(static_cast<double>(counts[k]) / n - shares[k]) < 5 * std::sqrt(shares[k] * (1 - shares[k]) / n));
  Tensor m = mean(xs, {0}), c = linalg::gemm2(xs - m, xs - m, {.transpose_a = true}) / static_cast<double>(n - 1);
  Tensor true_cov = mix.covariance(), true_mean = mix.mean();
  for (int64_t i = 0; i < 2; ++i) {
    CHECK(std::abs(m.at({i}) - true_mean.at({i})) < 5 * std::sqrt(true_cov.at({i, i}) / n));
    for (int64_t j = 0; j < 2; ++j) CHECK(c.at({i, j}) == doctest::Approx(true_cov.at({i, j})).epsilon(0.03).scale(1.0));
  }
  CHECK(mix.sample(rng, Shape{2, 3}).shape() == Shape{2, 3, 2});
  // A batch of mixtures, logits broadcast against shared components.
  auto batched = MixtureSameFamily(expand(logits, {4, 3}), MultivariateNormal::from_scale_tril(loc, L));
  CHECK(batched.batch_shape() == Shape{4});
  CHECK(batched.sample(rng, 5).shape() == Shape{5, 4, 2});
}

TEST_CASE("MixtureSameFamily: gradcheck and gradgradcheck of log_prob, mean, covariance, probs") {
  const Setup s = setup();
  Tensor x = test::uniform({3, 2, 2}, -3, 3, 5);
  auto build = [](const std::vector<Tensor>& v) {
    return MixtureSameFamily(v[0], MultivariateNormal::from_scale_tril(v[1], v[2]));
  };
  const GradcheckOptions lower{.structure = {Structure::General, Structure::General, Structure::LowerTriangular}};
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).log_prob(x); }, {s.logits, s.loc, s.L}, lower);
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).mean(); }, {s.logits, s.loc, s.L}, lower);
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).covariance(); }, {s.logits, s.loc, s.L}, lower);
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).variance(); }, {s.logits, s.loc, s.L}, lower);
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).mixture_probs(); }, {s.logits, s.loc, s.L}, lower);
  // Diagonal components too.
  Tensor scale = test::uniform({2, 3, 2}, 0.5, 1.5, 6);
  test::check_gradients([&](const std::vector<Tensor>& v) {
    return MixtureSameFamily(v[0], MultivariateNormal::from_scale_diag(v[1], v[2])).log_prob(x);
  }, {s.logits, s.loc, scale});
}

TEST_CASE("MixtureSameFamily: shape errors and batch 0") {
  auto single = MultivariateNormal::from_scale_diag(Tensor::zeros({2}), Tensor::ones({2}));
  CHECK_THROWS_WITH_AS(MixtureSameFamily(Tensor::zeros({1}), single),
                       doctest::Contains("components must have batch shape [..., K]"), ShapeError);
  auto three = MultivariateNormal::from_scale_diag(Tensor::zeros({3, 2}), Tensor::ones({3, 2}));
  CHECK_THROWS_WITH_AS(MixtureSameFamily(Tensor::zeros({4}), three),
                       doctest::Contains("mixture_logits must have shape [..., K] with K = 3"), ShapeError);
  auto batched = MultivariateNormal::from_scale_diag(Tensor::zeros({2, 3, 2}), Tensor::ones({2, 3, 2}));
  CHECK_THROWS_WITH_AS(MixtureSameFamily(Tensor::zeros({5, 3}), batched), doctest::Contains("do not broadcast"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(MixtureSameFamily(Tensor::from({3}, {0.0, std::nan(""), 0.0}), three),
                       doctest::Contains("mixture_logits contains NaN"), DomainError);
  auto mix = MixtureSameFamily(Tensor::zeros({3}), three);
  CHECK_THROWS_WITH_AS(mix.log_prob(Tensor::zeros({3})), doctest::Contains("x must have shape [..., 2]"), ShapeError);
  // Batch 0.
  Tensor logits = Tensor::zeros({0, 3}).requires_grad(true);
  Tensor loc = Tensor::zeros({0, 3, 2}).requires_grad(true);
  auto empty = MixtureSameFamily(logits, MultivariateNormal::from_scale_tril(loc, Tensor::zeros({0, 3, 2, 2})));
  Rng rng(1);
  CHECK(empty.sample(rng, 4).shape() == Shape{4, 0, 2});
  Tensor total = sum(empty.log_prob(Tensor::zeros({0, 2}))) + sum(empty.mean()) + sum(empty.covariance());
  total.backward();
  CHECK(logits.grad().shape() == Shape{0, 3});
  CHECK(loc.grad().shape() == Shape{0, 3, 2});
}
