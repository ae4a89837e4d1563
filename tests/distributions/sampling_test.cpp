// Samples, entropy and KL against Monte Carlo and exact distributions (fixed seeds).
#include <algorithm>
#include <cmath>
#include <random>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
using dist::MultivariateNormal;
using dist::Normal;

namespace {

// Kolmogorov-Smirnov statistic of `values` against N(mean, sd^2).
double ks_statistic(std::vector<double> values, double mean, double sd) {
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  double worst = 0.0;
  for (size_t i = 0; i < values.size(); ++i) {
    const double cdf = 0.5 * std::erfc(-(values[i] - mean) / (sd * std::sqrt(2.0)));
    worst = std::max({worst, std::abs(cdf - static_cast<double>(i) / n), std::abs(cdf - static_cast<double>(i + 1) / n)});
  }
  return worst;
}

}  // namespace

TEST_CASE("sample: moments and exact marginals of projections, both factor kinds") {
  Tensor S = Tensor::from({3, 3}, {2.0, 0.6, -0.4, 0.6, 1.0, 0.2, -0.4, 0.2, 0.5});
  Tensor loc = Tensor::from({3}, {1.0, -2.0, 0.5});
  const int64_t n = 40000;
  for (bool precision : {false, true}) {
    CAPTURE(precision);
    auto mvn = precision ? MultivariateNormal::from_precision(loc, linalg::inverse(S))
                         : MultivariateNormal::from_covariance(loc, S);
    Rng rng(123);
    Tensor xs = mvn.sample(rng, n);
    REQUIRE(xs.shape() == Shape{n, 3});
    CHECK_FALSE(xs.requires_grad());
    Tensor m = mean(xs, {0});
    Tensor c = linalg::gemm2(xs - m, xs - m, {.transpose_a = true}) / static_cast<double>(n - 1);
    for (int64_t i = 0; i < 3; ++i) {
      // 5 standard errors.
      CHECK(std::abs(m.at({i}) - loc.at({i})) < 5 * std::sqrt(S.at({i, i}) / static_cast<double>(n)));
      for (int64_t j = 0; j < 3; ++j) {
        const double se = std::sqrt((S.at({i, i}) * S.at({j, j}) + S.at({i, j}) * S.at({i, j})) / static_cast<double>(n));
        CHECK(std::abs(c.at({i, j}) - S.at({i, j})) < 5 * se);
      }
    }
    // u^T x ~ N(u^T loc, u^T S u): KS test against the exact normal CDF at the 0.1% level.
    for (auto u : {std::vector<double>{1, 0, 0}, std::vector<double>{0.3, -1.0, 2.0}}) {
      Tensor U = Tensor::from({3}, u);
      Tensor proj = sum(xs * U, {1});
      const double mu = sum(loc * U).item();
      const double var = sum(linalg::gemm2(reshape(U, {1, 3}), linalg::gemm2(S, reshape(U, {3, 1})))).item();
      CHECK(ks_statistic(proj.to_vector(), mu, std::sqrt(var)) < 1.95 / std::sqrt(static_cast<double>(n)));
    }
  }
}

TEST_CASE("rsample is differentiable: d E[x] / d loc = 1, d E[|x - loc|^2] / d L = 2 L") {
  Tensor loc = Tensor::from({2}, {0.3, -0.7}).requires_grad(true);
  Tensor L = Tensor::from({2, 2}, {1.2, 0.0, 0.4, 0.8}).requires_grad(true);
  auto mvn = MultivariateNormal::from_scale_tril(loc, L);
  Rng rng(5);
  Tensor xs = mvn.rsample(rng, 50000);
  Tensor objective = mean(sum(square(xs - loc.detach()), {1}));  // E = tr(L L^T)
  objective.backward();
  // Gradient of tr(L L^T) w.r.t. the lower triangle is 2L; sampling error ~ 1/sqrt(n).
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j <= i; ++j) CHECK(L.grad().at({i, j}) == doctest::Approx(2 * L.at({i, j})).epsilon(0.03));
  Tensor m = sum(mean(mvn.rsample(rng, 10), {0}));
  auto g = grad({m}, {loc});
  test::check_values(g[0], {1.0, 1.0});
}

TEST_CASE("entropy against Monte Carlo -E[log p]") {
  Tensor L = test::triangular({2}, 3, true, 30);
  auto mvn = MultivariateNormal::from_scale_tril(test::uniform({2, 3}, -1, 1, 31), L);
  Rng rng(7);
  Tensor xs = mvn.sample(rng, 100000);
  Tensor lp = mvn.log_prob(xs);  // [n, 2]
  Tensor mc = -mean(lp, {0});
  Tensor sd = sqrt(mean(square(lp + mc), {0}));
  Tensor h = mvn.entropy();
  for (int64_t b = 0; b < 2; ++b)
    CHECK(std::abs(h.at({b}) - mc.at({b})) < 5 * sd.at({b}) / std::sqrt(100000.0));
  // Closed form for a diagonal: sum of univariate entropies.
  Normal n(Tensor::zeros({3}), Tensor::from({3}, {0.5, 1.0, 3.0}));
  auto diag = MultivariateNormal::from_scale_tril(Tensor::zeros({3}), linalg::makediag(n.scale()));
  CHECK(diag.entropy().item() == doctest::Approx(sum(n.entropy()).item()));
}

TEST_CASE("KL(p || q) against Monte Carlo for p != q (KL(p||p) = 0 alone proves nothing)") {
  auto p = MultivariateNormal::from_covariance(Tensor::from({3}, {0.2, -0.5, 1.0}),
                                               Tensor::from({3, 3}, {1.5, 0.3, 0.1, 0.3, 0.8, -0.2, 0.1, -0.2, 1.1}));
  auto q = MultivariateNormal::from_scale_tril(Tensor::from({3}, {-0.4, 0.1, 0.3}),
                                               Tensor::from({3, 3}, {1.1, 0, 0, -0.3, 0.9, 0, 0.5, 0.2, 1.4}));
  Rng rng(11);
  Tensor xs = p.sample(rng, 200000);
  Tensor diff = p.log_prob(xs) - q.log_prob(xs);
  const double mc = mean(diff).item();
  const double se = std::sqrt(mean(square(diff - mc)).item() / 200000.0);
  const double kl = dist::kl_divergence(p, q).item();
  CHECK(std::abs(kl - mc) < 5 * se);
  CHECK(kl > 0.1);
  CHECK(dist::kl_divergence(p, p).item() == doctest::Approx(0.0).scale(1.0).epsilon(1e-12));
  // Precision parameterisation of the same q gives the same KL.
  auto q_prec = MultivariateNormal::from_precision(q.loc(), q.precision());
  CHECK(dist::kl_divergence(p, q_prec).item() == doctest::Approx(kl).epsilon(1e-10));
  // Normal || Normal against Monte Carlo.
  Normal a(Tensor::from({2}, {0.0, 1.0}), Tensor::from({2}, {1.0, 0.5}));
  Normal b(Tensor::from({2}, {0.5, -1.0}), Tensor::from({2}, {2.0, 0.7}));
  Tensor ys = a.sample(rng, 200000);
  Tensor d2 = a.log_prob(ys) - b.log_prob(ys);
  Tensor mc2 = mean(d2, {0});
  Tensor kl2 = dist::kl_divergence(a, b);
  for (int64_t i = 0; i < 2; ++i) CHECK(kl2.at({i}) == doctest::Approx(mc2.at({i})).epsilon(0.02));
}

TEST_CASE("Normal: log_prob, entropy, gradients") {
  Normal n(Tensor::from({2}, {0.5, -1.0}), Tensor::from({2}, {2.0, 0.3}));
  Tensor lp = n.log_prob(Tensor::from({2}, {1.0, -1.0}));
  CHECK(lp.at({0}) == doctest::Approx(-0.5 * 0.0625 - std::log(2.0) - 0.5 * std::log(2 * M_PI)));
  CHECK(lp.at({1}) == doctest::Approx(-std::log(0.3) - 0.5 * std::log(2 * M_PI)));
  test::check_gradients([](const std::vector<Tensor>& v) { return Normal(v[0], v[1]).log_prob(v[2]); },
                        {Tensor::from({2}, {0.5, -1.0}), Tensor::from({2}, {2.0, 0.3}), Tensor::from({3, 2}, {1, 2, 3, 4, 5, 6})});
  CHECK_THROWS_WITH_AS(Normal(Tensor::zeros({2}), Tensor::from({2}, {1.0, -1.0})),
                       doctest::Contains("scale has -1 at index [1]"), DomainError);
}

TEST_CASE("sample: two-sample KS test against an independent reference sampler") {
  // Reference: Box-Muller on std::mt19937 and the 2x2 Cholesky factor written out by hand.
  const double a = 1.7, b = -0.6, c = 0.9;  // covariance [[a, b], [b, c]]
  const double l00 = std::sqrt(a), l10 = b / l00, l11 = std::sqrt(c - l10 * l10);
  std::mt19937 engine(99);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int64_t n = 20000;
  std::vector<double> ref_u, ref_v;
  for (int64_t i = 0; i < n; ++i) {
    const double r = std::sqrt(-2.0 * std::log(1.0 - unit(engine))), t = 2.0 * M_PI * unit(engine);
    const double z0 = r * std::cos(t), z1 = r * std::sin(t);
    const double x0 = 0.3 + l00 * z0, x1 = -1.0 + l10 * z0 + l11 * z1;
    ref_u.push_back(x0);
    ref_v.push_back(x0 - 2.0 * x1);
  }
  auto mvn = MultivariateNormal::from_covariance(Tensor::from({2}, {0.3, -1.0}), Tensor::from({2, 2}, {a, b, b, c}));
  Rng rng(100);
  Tensor xs = mvn.sample(rng, n);
  Tensor u = select(xs, 1, 0), v = select(xs, 1, 0) - 2.0 * select(xs, 1, 1);
  auto two_sample = [](std::vector<double> p, std::vector<double> q) {
    std::sort(p.begin(), p.end());
    std::sort(q.begin(), q.end());
    size_t i = 0, j = 0;
    double worst = 0.0;
    while (i < p.size() && j < q.size()) {
      if (p[i] <= q[j]) ++i; else ++j;
      worst = std::max(worst, std::abs(static_cast<double>(i) / static_cast<double>(p.size()) -
                                       static_cast<double>(j) / static_cast<double>(q.size())));
    }
    return worst;
  };
  const double critical = 1.95 * std::sqrt(2.0 / static_cast<double>(n));  // alpha = 0.001
  CHECK(two_sample(u.to_vector(), ref_u) < critical);
  CHECK(two_sample(v.to_vector(), ref_v) < critical);
  // The test has power: a sampler whose variance is 30% too large fails it.
  auto wrong = MultivariateNormal::from_covariance(Tensor::from({2}, {0.3, -1.0}), Tensor::from({2, 2}, {1.3 * a, b, b, c}));
  Tensor ws = wrong.sample(rng, n);
  CHECK(two_sample(select(ws, 1, 0).to_vector(), ref_u) > critical);
}
