// LowRankMultivariateNormal against the full MVN built from W W^T + diag(D), Monte Carlo for
// the sampler, and gradients of every differentiable method.
#include <cmath>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
using dist::LowRankMultivariateNormal;
using dist::MultivariateNormal;

namespace {

Tensor dense_covariance(const Tensor& W, const Tensor& D) {
  return linalg::gemm2(W, W, {.transpose_b = true}) + linalg::makediag(D);
}

}  // namespace

TEST_CASE("LowRankMultivariateNormal: every method equals the full MVN of W W^T + diag(D)") {
  // Batches broadcast: loc [3, 5], W [3, 5, 2], D [5] (shared).
  Tensor loc = test::uniform({3, 5}, -1, 1, 1);
  Tensor W = test::uniform({3, 5, 2}, -1, 1, 2);
  Tensor D = test::uniform({5}, 0.3, 1.2, 3);
  LowRankMultivariateNormal low(loc, W, D);
  CHECK(low.batch_shape() == Shape{3});
  CHECK(low.event_shape() == Shape{5});
  CHECK(low.rank() == 2);
  Tensor S = dense_covariance(W, D);
  auto full = MultivariateNormal::from_covariance(loc, S);
  Tensor x = test::uniform({4, 3, 5}, -2, 2, 4);
  test::check_close(low.log_prob(x), full.log_prob(x), 1e-11);
  test::check_close(low.log_prob(Tensor::zeros({5})), full.log_prob(Tensor::zeros({5})), 1e-11);
  test::check_close(low.entropy(), full.entropy(), 1e-11);
  test::check_close(low.mean(), full.mean(), 0.0);
  test::check_close(low.covariance(), S, 1e-12);
  test::check_close(low.precision(), linalg::inverse(S), 1e-10);
  test::check_close(low.scale_tril(), linalg::potrf(S), 1e-11);
  test::check_close(low.variance(), linalg::extractdiag(S), 1e-12);
  test::check_close(low.stddev(), sqrt(linalg::extractdiag(S)), 1e-12);
  // The capacitance matrix by its definition, I + W^T D^{-1} W.
  Tensor C = linalg::gemm2(W / unsqueeze(D, -1), W, {.transpose_a = true}) + Tensor::eye(2);
  test::check_close(linalg::syrk(low.capacitance_tril()), C, 1e-12);
}

TEST_CASE("LowRankMultivariateNormal: samples have the mean and covariance W W^T + D") {
  Tensor loc = Tensor::from({3}, {1.0, -1.0, 0.5});
  Tensor W = Tensor::from({3, 1}, {1.0, 0.5, -0.8});
  Tensor D = Tensor::from({3}, {0.2, 0.4, 0.3});
  LowRankMultivariateNormal low(loc, W, D);
  Rng rng(7);
  const int64_t n = 40000;
  Tensor xs = low.sample(rng, n);
  REQUIRE(xs.shape() == Shape{n, 3});
  CHECK_FALSE(xs.requires_grad());
  Tensor S = dense_covariance(W, D);
  Tensor m = mean(xs, {0});
  Tensor c = linalg::gemm2(xs - m, xs - m, {.transpose_a = true}) / static_cast<double>(n - 1);
  for (int64_t i = 0; i < 3; ++i) {
    CHECK(std::abs(m.at({i}) - loc.at({i})) < 5 * std::sqrt(S.at({i, i}) / static_cast<double>(n)));
    for (int64_t j = 0; j < 3; ++j) {
      const double se = std::sqrt((S.at({i, i}) * S.at({j, j}) + S.at({i, j}) * S.at({i, j})) / static_cast<double>(n));
      CHECK(std::abs(c.at({i, j}) - S.at({i, j})) < 5 * se);
    }
  }
  Rng a(1), b(1);
  Tensor shaped = low.rsample(a, Shape{2, 4});
  CHECK(shaped.shape() == Shape{2, 4, 3});
  test::check_close(shaped, reshape(low.rsample(b, Shape{8}), {2, 4, 3}), 0.0);
}

TEST_CASE("LowRankMultivariateNormal: gradcheck and gradgradcheck of every method") {
  Tensor loc = test::uniform({2, 4}, -1, 1, 11);
  Tensor W = test::uniform({2, 4, 2}, -1, 1, 12);
  Tensor D = test::uniform({2, 4}, 0.5, 1.5, 13);
  Tensor x = test::uniform({3, 2, 4}, -2, 2, 14);
  auto make = [](const std::vector<Tensor>& v) { return LowRankMultivariateNormal(v[0], v[1], v[2]); };
  test::check_gradients([&](const std::vector<Tensor>& v) { return make(v).log_prob(x); }, {loc, W, D});
  test::check_gradients([&](const std::vector<Tensor>& v) { return make(v).entropy(); }, {loc, W, D});
  test::check_gradients([&](const std::vector<Tensor>& v) { Rng r(2); return make(v).rsample(r, 3); }, {loc, W, D});
  test::check_gradients([&](const std::vector<Tensor>& v) { return make(v).precision(); }, {loc, W, D});
  test::check_gradients([&](const std::vector<Tensor>& v) { return make(v).covariance(); }, {loc, W, D});
  test::check_gradients([&](const std::vector<Tensor>& v) { return make(v).stddev(); }, {loc, W, D});
  test::check_gradients([&](const std::vector<Tensor>& v) { return make(v).scale_tril(); }, {loc, W, D});
}

TEST_CASE("LowRankMultivariateNormal: validation and zero sizes") {
  CHECK_THROWS_WITH_AS(LowRankMultivariateNormal(Tensor::zeros({3}), Tensor::ones({3, 2}), Tensor::from({3}, {1, 0, 1})),
                       doctest::Contains("cov_diag has 0 at index [1] (shape [3]); it must be positive"), DomainError);
  CHECK_THROWS_WITH_AS(LowRankMultivariateNormal(Tensor::zeros({3}), Tensor::ones({3, 0}), Tensor::ones({3})),
                       doctest::Contains("k >= 1"), ShapeError);
  CHECK_THROWS_WITH_AS(LowRankMultivariateNormal(Tensor::zeros({3}), Tensor::ones({3, 2}), Tensor::ones({4})),
                       doctest::Contains("cov_diag must have shape [..., 3]"), ShapeError);
  CHECK_THROWS_WITH_AS(LowRankMultivariateNormal(Tensor::zeros({2}), Tensor::ones({3, 2}), Tensor::ones({3})),
                       doctest::Contains("the last dimension of loc must be d = 3"), ShapeError);
  CHECK_THROWS_WITH_AS(LowRankMultivariateNormal(Tensor::zeros({0}), Tensor::ones({0, 2}), Tensor::ones({0})),
                       doctest::Contains("the event dimension d must be at least 1"), ShapeError);
  CHECK_THROWS_WITH_AS(LowRankMultivariateNormal(Tensor::zeros({3}), Tensor::ones({2, 3, 2}), Tensor::ones({4, 3})),
                       doctest::Contains("do not broadcast"), ShapeError);
  Tensor nan = Tensor::from({3, 1}, {1.0, std::nan(""), 0.0});
  CHECK_THROWS_WITH_AS(LowRankMultivariateNormal(Tensor::zeros({3}), nan, Tensor::ones({3})),
                       doctest::Contains("cov_factor contains NaN"), DomainError);
  // Batch 0: every method, forward and backward.
  Tensor loc = Tensor::zeros({0, 3}).requires_grad(true);
  Tensor W = Tensor::zeros({0, 3, 2}).requires_grad(true);
  Tensor D = Tensor::ones({0, 3}).requires_grad(true);
  LowRankMultivariateNormal empty(loc, W, D);
  Rng rng(1);
  Tensor total = sum(empty.log_prob(Tensor::zeros({0, 3}))) + sum(empty.rsample(rng, 2)) + sum(empty.entropy()) +
                 sum(empty.mean()) + sum(empty.variance()) + sum(empty.covariance()) + sum(empty.precision()) +
                 sum(dist::kl_divergence(empty, empty));
  total.backward();
  CHECK(W.grad().shape() == Shape{0, 3, 2});
  CHECK(D.grad().shape() == Shape{0, 3});
  CHECK(empty.sample(rng, 2).shape() == Shape{2, 0, 3});
  CHECK_THROWS_AS(empty.rsample(rng, -1), ShapeError);
}
