// from_scale_diag, variance / stddev and sample shapes (issue 12): every method against the
// same Gaussian built densely with from_covariance(loc, diag(s^2)).
#include <cmath>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
using dist::MultivariateNormal;

TEST_CASE("from_scale_diag: every method equals the dense diagonal MVN") {
  Tensor loc = test::uniform({2, 3}, -1, 1, 1);
  Tensor s = test::uniform({2, 3}, 0.4, 1.8, 2);
  auto diag = MultivariateNormal::from_scale_diag(loc, s);
  auto dense = MultivariateNormal::from_covariance(loc, linalg::makediag(square(s)));
  CHECK(diag.batch_shape() == Shape{2});
  CHECK(diag.event_shape() == Shape{3});
  Tensor x = test::uniform({5, 2, 3}, -2, 2, 3);
  test::check_close(diag.log_prob(x), dense.log_prob(x), 1e-12);
  test::check_close(diag.entropy(), dense.entropy(), 1e-12);
  test::check_close(diag.mean(), dense.mean(), 0.0);
  test::check_close(diag.covariance(), dense.covariance(), 1e-12);
  test::check_close(diag.precision(), dense.precision(), 1e-12);
  test::check_close(diag.scale_tril(), dense.scale_tril(), 1e-12);
  test::check_close(diag.variance(), square(s), 1e-15);
  test::check_close(diag.stddev(), s, 1e-15);
  // The density by hand: sum_i log N(x_i; loc_i, s_i^2).
  const double lp = diag.log_prob(select(x, 0, 0)).at({1});
  double expected = 0.0;
  for (int64_t i = 0; i < 3; ++i) {
    const double z = (x.at({0, 1, i}) - loc.at({1, i})) / s.at({1, i});
    expected += -0.5 * z * z - std::log(s.at({1, i})) - 0.5 * std::log(2 * M_PI);
  }
  CHECK(lp == doctest::Approx(expected).epsilon(1e-13));
  // rsample is loc + s * eps with the generator's normal draws.
  Rng a(4), b(4);
  test::check_close(diag.rsample(a, 7), loc + s * Tensor::randn({7, 2, 3}, b), 1e-15);
  // Broadcast: one scale for a batch of means.
  auto shared = MultivariateNormal::from_scale_diag(test::uniform({4, 3}, -1, 1, 5), select(s, 0, 0));
  CHECK(shared.batch_shape() == Shape{4});
  CHECK(shared.log_prob(Tensor::zeros({3})).shape() == Shape{4});
}

TEST_CASE("from_scale_diag: gradcheck and gradgradcheck of every differentiable method") {
  Tensor loc = test::uniform({2, 3}, -1, 1, 6);
  Tensor s = test::uniform({2, 3}, 0.5, 1.5, 7);
  Tensor x = test::uniform({4, 2, 3}, -2, 2, 8);
  auto other = MultivariateNormal::from_scale_tril(test::uniform({3}, -1, 1, 9), test::triangular({}, 3, true, 10));
  auto build = [](const std::vector<Tensor>& v) { return MultivariateNormal::from_scale_diag(v[0], v[1]); };
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).log_prob(x); }, {loc, s});
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).entropy(); }, {loc, s});
  test::check_gradients([&](const std::vector<Tensor>& v) { Rng r(3); return build(v).rsample(r, 3); }, {loc, s});
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).covariance() + build(v).precision(); }, {loc, s});
  test::check_gradients([&](const std::vector<Tensor>& v) { return build(v).stddev(); }, {loc, s});
  test::check_gradients([&](const std::vector<Tensor>& v) { return dist::kl_divergence(build(v), other); }, {loc, s});
  test::check_gradients([&](const std::vector<Tensor>& v) { return dist::kl_divergence(other, build(v)); }, {loc, s});
}

TEST_CASE("from_scale_diag: validation") {
  Tensor s = Tensor::from({3}, {1.0, -0.5, 2.0});
  // Its values are checked on the distribution's first use (multivariate_normal.hpp).
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_scale_diag(Tensor::zeros({3}), s).log_prob(Tensor::zeros({3})),
                       doctest::Contains("scale_diag has -0.5 at index [1] (shape [3]); it must be positive"),
                       DomainError);
  CHECK_NOTHROW(MultivariateNormal::from_scale_diag(Tensor::zeros({3}), s, {.validate = false}).log_prob(Tensor::zeros({3})));
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_scale_diag(Tensor::zeros({2}), Tensor::ones({3})),
                       doctest::Contains("the last dimension of loc must be d = 3"), ShapeError);
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_scale_diag(Tensor::zeros({0}), Tensor::ones({0})),
                       doctest::Contains("the event dimension d must be at least 1"), ShapeError);
  Tensor bad = Tensor::from({2}, {1.0, std::nan("")});
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_scale_diag(Tensor::zeros({2}), bad).variance(),
                       doctest::Contains("scale_diag contains NaN"), DomainError);
}

TEST_CASE("variance and stddev of every form equal the covariance's diagonal") {
  Tensor S = test::spd({2}, 4, 11);
  Tensor loc = test::uniform({2, 4}, -1, 1, 12);
  for (int form = 0; form < 4; ++form) {
    CAPTURE(form);
    auto m = form == 0 ? MultivariateNormal::from_covariance(loc, S)
           : form == 1 ? MultivariateNormal::from_precision(loc, linalg::inverse(S))
           : form == 2 ? MultivariateNormal::from_scale_tril(loc, linalg::potrf(S))
                       : MultivariateNormal::from_precision_tril(loc, linalg::potrf(linalg::inverse(S)));
    test::check_close(m.variance(), linalg::extractdiag(S), 1e-11);
    test::check_close(m.stddev(), sqrt(linalg::extractdiag(S)), 1e-11);
  }
  Tensor L = test::triangular({2}, 3, true, 13);
  test::check_gradients([&](const std::vector<Tensor>& v) {
    return MultivariateNormal::from_precision_tril(v[0], v[1]).stddev();
  }, {test::uniform({2, 3}, -1, 1, 14), L}, {.structure = {Structure::General, Structure::LowerTriangular}});
  test::check_gradients([&](const std::vector<Tensor>& v) {
    return MultivariateNormal::from_scale_tril(v[0], v[1]).variance();
  }, {test::uniform({2, 3}, -1, 1, 14), L}, {.structure = {Structure::General, Structure::LowerTriangular}});
}

TEST_CASE("sample and rsample with a sample shape draw the same numbers as a flat count") {
  auto full = MultivariateNormal::from_scale_tril(test::uniform({4, 3}, -1, 1, 15), test::triangular({4}, 3, true, 16));
  auto diag = MultivariateNormal::from_scale_diag(Tensor::zeros({3}), Tensor::ones({3}));
  for (const MultivariateNormal* m : {&full, &diag}) {
    Rng a(5), b(5);
    Tensor shaped = m->rsample(a, Shape{2, 3});
    Shape expected{2, 3};
    expected.insert(expected.end(), m->batch_shape().begin(), m->batch_shape().end());
    expected.push_back(3);
    CHECK(shaped.shape() == expected);
    Tensor flat = m->rsample(b, 6);
    test::check_close(shaped, reshape(flat, expected), 0.0);
    CHECK(m->sample(a, Shape{}).shape() == Shape(expected.begin() + 2, expected.end()));
    CHECK(m->sample(a, Shape{0, 5}).numel() == 0);
    CHECK_THROWS_WITH_AS(m->sample(a, Shape{2, -1}), doctest::Contains("the sample shape [2, -1] has a negative size"),
                         ShapeError);
  }
}
