// MultivariateNormal::log_prob against independent closed forms, across parameterisations,
// batch shapes, the fused and the composed paths; gradients against docs/linalg.md §8.
#include <cmath>

#include "../linalg/linalg_helpers.hpp"
#include "distributions/detail/factorise.hpp"

using namespace cholla;
using dist::MultivariateNormal;
using dist::Normal;
using Fn = std::vector<Tensor>;

namespace {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;

// The 2-D normal density written out by hand.
double bivariate_log_density(double x1, double x2, double m1, double m2, double a, double b, double c) {
  const double det = a * c - b * b;
  const double u = x1 - m1, v = x2 - m2;
  return -kLog2Pi - 0.5 * std::log(det) - 0.5 * (c * u * u - 2 * b * u * v + a * v * v) / det;
}

}  // namespace

TEST_CASE("log_prob: the 2-D density by hand, all four parameterisations") {
  const double a = 2.0, b = 0.6, c = 1.5;
  Tensor S = Tensor::from({2, 2}, {a, b, b, c});
  Tensor loc = Tensor::from({2}, {0.5, -1.0});
  Tensor x = Tensor::from({3, 2}, {0.0, 0.0, 1.5, -2.0, -3.0, 4.0});
  Tensor L = linalg::potrf(S);
  Tensor P = linalg::inverse(S);
  Tensor M = linalg::potrf(P);
  const std::vector<MultivariateNormal> all = {
      MultivariateNormal::from_covariance(loc, S), MultivariateNormal::from_scale_tril(loc, L),
      MultivariateNormal::from_precision(loc, P), MultivariateNormal::from_precision_tril(loc, M)};
  for (const auto& d : all) {
    Tensor lp = d.log_prob(x);
    REQUIRE(lp.shape() == Shape{3});
    for (int64_t i = 0; i < 3; ++i)
      CHECK(lp.data()[static_cast<size_t>(i)] ==
            doctest::Approx(bivariate_log_density(x.at({i, 0}), x.at({i, 1}), 0.5, -1.0, a, b, c)).epsilon(1e-12));
    CHECK(d.batch_shape() == Shape{});
    CHECK(d.event_shape() == Shape{2});
    test::check_close(d.covariance(), S, 1e-12);
    test::check_close(d.precision(), P, 1e-12);
    test::check_close(d.scale_tril(), L, 1e-12);
  }
}

TEST_CASE("log_prob: diagonal covariance equals a sum of univariate normals") {
  for (int64_t d : {1, 3, 8, 9, 12}) {  // fused (<= 8) and composed paths
    CAPTURE(d);
    Tensor loc = test::uniform({4, d}, -1, 1, 1);
    Tensor sd = test::uniform({4, d}, 0.5, 2.0, 2);
    Tensor x = test::uniform({4, d}, -3, 3, 3);
    auto mvn = MultivariateNormal::from_scale_tril(loc, linalg::makediag(sd));
    Tensor expected = sum(Normal(loc, sd).log_prob(x), {-1});
    test::check_close(mvn.log_prob(x), expected, 1e-11);
    auto cov = MultivariateNormal::from_covariance(loc, linalg::makediag(square(sd)));
    test::check_close(cov.log_prob(x), expected, 1e-11);
  }
}

TEST_CASE("log_prob: broadcasting loc, matrix and x as PyTorch does; batched equals a loop") {
  Tensor L = test::triangular({3}, 4, true, 4);  // 3 distributions
  Tensor loc = test::uniform({4}, -1, 1, 5);     // one mean shared
  Tensor x = test::uniform({5, 1, 4}, -2, 2, 6);  // 5 samples for each of the 3
  auto mvn = MultivariateNormal::from_scale_tril(loc, L);
  CHECK(mvn.batch_shape() == Shape{3});
  Tensor lp = mvn.log_prob(x);
  REQUIRE(lp.shape() == Shape{5, 3});
  for (int64_t n = 0; n < 5; ++n)
    for (int64_t k = 0; k < 3; ++k) {
      auto one = MultivariateNormal::from_scale_tril(loc, select(L, 0, k));
      const double expected = one.log_prob(select(select(x, 0, n), 0, 0)).item();
      CHECK(lp.at({n, k}) == doctest::Approx(expected).epsilon(1e-12));
    }
  // A single shared covariance against many x: same values as the batched form.
  Tensor S = test::spd({}, 3, 7);
  Tensor xs = test::uniform({6, 3}, -2, 2, 8);
  auto shared = MultivariateNormal::from_covariance(Tensor::zeros({3}), S);
  auto expanded = MultivariateNormal::from_covariance(Tensor::zeros({6, 3}), expand(S, {6, 3, 3}));
  test::check_close(shared.log_prob(xs), expanded.log_prob(xs), 1e-12);
}

TEST_CASE("fused log_prob equals the composed ops, values and gradients, every d and layout") {
  for (bool precision : {false, true})
    for (int64_t d = 1; d <= 8; ++d) {
      CAPTURE(precision);
      CAPTURE(d);
      Tensor F = test::triangular({2, 1}, d, true, static_cast<uint64_t>(d)).requires_grad(true);
      Tensor loc = test::uniform({3, d}, -1, 1, 9).requires_grad(true);
      Tensor x = test::uniform({4, 2, 3, d}, -2, 2, 10).requires_grad(true);
      Tensor w = test::uniform({4, 2, 3}, -1, 1, 11);
      Tensor fused = dist::detail::fused_log_prob(loc, F, x, precision);
      Tensor composed = dist::detail::composed_log_prob(loc, F, x, precision);
      test::check_close(fused, composed, 1e-11);
      auto gf = grad({sum(fused * w)}, {loc, F, x}, {.retain_graph = true});
      auto gc = grad({sum(composed * w)}, {loc, F, x});
      for (size_t i = 0; i < 3; ++i) test::check_close(gf[i], gc[i], 1e-10);
    }
}

TEST_CASE("gradients match the closed forms of docs/linalg.md §8") {
  // Covariance: gSigma = 1/2 sum_j g_j (s_j s_j^T - Sigma^{-1}),  s_j = Sigma^{-1} (x_j - mu).
  Tensor S = test::spd({}, 3, 12).requires_grad(true);
  Tensor loc = test::uniform({3}, -1, 1, 13).requires_grad(true);
  Tensor x = test::uniform({5, 3}, -2, 2, 14);
  Tensor g = test::uniform({5}, -1, 1, 15);
  auto mvn = MultivariateNormal::from_covariance(loc, S);
  auto grads = grad({sum(mvn.log_prob(x) * g)}, {S, loc});
  NoGrad guard;
  Tensor Sinv = linalg::inverse(S.detach());
  Tensor s = linalg::gemm2(x - loc.detach(), Sinv);  // rows s_j^T (Sinv symmetric)
  Tensor gcol = unsqueeze(g, -1);
  Tensor expected_S = 0.5 * (linalg::gemm2(gcol * s, s, {.transpose_a = true}) - sum(g) * Sinv);
  test::check_close(grads[0], expected_S, 1e-10);
  test::check_close(grads[1], sum(gcol * s, {0}), 1e-10);
  // Precision: gLambda = 1/2 sum_j g_j (Sigma - d_j d_j^T).
  Tensor P = test::spd({}, 3, 16).requires_grad(true);
  Tensor expected_P;
  {
    Tensor r = x - loc.detach();
    expected_P = 0.5 * (sum(g) * linalg::inverse(P.detach()) -
                        linalg::gemm2(gcol * r, r, {.transpose_a = true}));
  }
  EnableGrad on;
  auto prec = MultivariateNormal::from_precision(loc.detach(), P);
  auto gp = grad({sum(prec.log_prob(x) * g)}, {P});
  test::check_close(gp[0], expected_P, 1e-10);
}

TEST_CASE("log_prob: gradcheck and gradgradcheck in every parameterisation") {
  Tensor x = test::uniform({2, 3, 3}, -2, 2, 17);
  Tensor loc = test::uniform({3, 3}, -1, 1, 18);
  Tensor L = test::triangular({3}, 3, true, 19);
  Tensor S = test::spd({3}, 3, 20);
  const GradcheckOptions tril{.structure = {Structure::General, Structure::LowerTriangular, Structure::General}};
  const GradcheckOptions sym{.structure = {Structure::General, Structure::Symmetric, Structure::General}};
  test::check_gradients([](const Fn& v) {
    return MultivariateNormal::from_scale_tril(v[0], v[1]).log_prob(v[2]);
  }, {loc, L, x}, tril);
  test::check_gradients([](const Fn& v) {
    return MultivariateNormal::from_precision_tril(v[0], v[1]).log_prob(v[2]);
  }, {loc, L, x}, tril);
  test::check_gradients([](const Fn& v) {
    return MultivariateNormal::from_covariance(v[0], v[1]).log_prob(v[2]);
  }, {loc, S, x}, sym);
  test::check_gradients([](const Fn& v) {
    return MultivariateNormal::from_precision(v[0], v[1]).log_prob(v[2]);
  }, {loc, S, x}, sym);
  // Composed path (d > 8).
  Tensor x9 = test::uniform({2, 9}, -2, 2, 21), loc9 = test::uniform({9}, -1, 1, 22);
  Tensor S9 = test::spd({}, 9, 23);
  auto first = gradcheck([](const Fn& v) {
    return MultivariateNormal::from_covariance(v[0], v[1]).log_prob(v[2]);
  }, {loc9, S9, x9}, sym);
  CHECK_MESSAGE(first.ok, first.report);
}

TEST_CASE("composed path (d > 8) groups the rows of each factor: same values and gradients") {
  for (bool precision : {false, true}) {
    CAPTURE(precision);
    Tensor F = test::triangular({3}, 9, true, 31).requires_grad(true);
    Tensor loc = test::uniform({3, 9}, -1, 1, 32).requires_grad(true);
    Tensor x = test::uniform({5, 3, 9}, -2, 2, 33);
    Tensor w = test::uniform({5, 3}, -1, 1, 34);
    // Grouped: factor batch [3] against rows [5, 3]. Reference: the factor expanded to the rows'
    // batch, which takes the row-by-row path.
    Tensor grouped = dist::detail::composed_log_prob(loc, F, x, precision);
    Tensor rowwise = dist::detail::composed_log_prob(loc, expand(F, {5, 3, 9, 9}), x, precision);
    test::check_close(grouped, rowwise, 1e-11);
    auto g1 = grad({sum(grouped * w)}, {loc, F}, {.retain_graph = true});
    auto g2 = grad({sum(rowwise * w)}, {loc, F});
    test::check_close(g1[0], g2[0], 1e-10);
    test::check_close(g1[1], g2[1], 1e-10);
    // And against one distribution at a time.
    for (int64_t n : {0, 4})
      for (int64_t k = 0; k < 3; ++k) {
        Tensor one = dist::detail::composed_log_prob(select(loc, 0, k), select(F, 0, k), select(select(x, 0, n), 0, k), precision);
        CHECK(grouped.at({n, k}) == doctest::Approx(one.item()).epsilon(1e-12));
      }
  }
}
