// MultivariateNormalHead: a valid distribution for any input, the documented layout, gradients.
#include <cmath>
#include <functional>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
namespace tf = cholla::dist::transforms;

TEST_CASE("MultivariateNormalHead: extreme inputs (+-1e3) always give a valid scale_tril") {
  Rng rng(3);
  for (tf::Diag diag : {tf::Diag::Softplus, tf::Diag::OnePlusElu}) {
    nn::MultivariateNormalHead head(4, 3, rng, {.diag = diag});
    Tensor x = Tensor::from({4, 4}, {1e3, -1e3, 1e3, -1e3, -1e3, -1e3, -1e3, -1e3, 1e3, 1e3, 1e3, 1e3, 0, 0, 0, 0});
    auto p = head(x);
    CHECK(p.batch_shape() == Shape{4});
    CHECK(p.event_shape() == Shape{3});
    Tensor L = p.scale_tril();
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t i = 0; i < 3; ++i) {
        CHECK(L.at({b, i, i}) >= 1e-5);
        CHECK(std::isfinite(L.at({b, i, i})));
        for (int64_t j = i + 1; j < 3; ++j) CHECK(L.at({b, i, j}) == 0.0);
      }
    // log_prob stays finite (working with L itself: L L^T would be numerically singular here,
    // which is why the head never forms the covariance).
    Tensor lp = p.log_prob(Tensor::zeros({3}));
    for (double v : lp.data()) CHECK(std::isfinite(v));
  }
}

TEST_CASE("MultivariateNormalHead: layout [loc | packed scale_tril], initial scale, naming") {
  Rng rng(4);
  nn::MultivariateNormalHead head(2, 3, rng, {.init_scale = 2.0});
  CHECK(head.proj.out_features() == tf::params_size(3));
  auto names = head.named_parameters();
  REQUIRE(names.size() == 2);
  CHECK(names[0].first == "proj.weight");
  // With zero input only the bias acts: the scale_tril starts at init_scale * I.
  auto p = head(Tensor::zeros({1, 2}));
  test::check_close(p.scale_tril(), 2.0 * expand(Tensor::eye(3), {1, 3, 3}), 1e-12);
  // The packed parameters reproduce the distribution through fill_scale_tril.
  Tensor x = test::uniform({5, 2}, -1, 1, 6);
  Tensor raw = head.parameters_for(x);
  auto q = head(x);
  test::check_close(q.loc(), slice(raw, -1, 0, 3), 0.0);
  test::check_close(q.scale_tril(), tf::fill_scale_tril(slice(raw, -1, 3, 9)), 0.0);
  CHECK(nn::to_string(head).find("d=3") != std::string::npos);
}

TEST_CASE("MultivariateNormalHead: log_prob gradchecks w.r.t. inputs and parameters") {
  Rng rng(5);
  nn::MultivariateNormalHead head(3, 2, rng);
  Tensor y = test::uniform({4, 2}, -1, 1, 7);
  Tensor x = test::uniform({4, 3}, -1, 1, 8);
  // The head's forward with the weight as an explicit input, so gradcheck can perturb it.
  auto f = [&](const std::vector<Tensor>& v) {
    Tensor out = linalg::gemm2(v[0], v[1], {.transpose_b = true}) + head.proj.bias;
    return dist::MultivariateNormal::from_scale_tril(slice(out, -1, 0, 2), tf::fill_scale_tril(slice(out, -1, 2, 5)))
        .log_prob(y);
  };
  test::check_gradients(f, {x, head.proj.weight.detach()});
  // The module's own forward gives the same gradient as that explicit form.
  Tensor loss = -sum(head(x).log_prob(y));
  auto g = grad({loss}, {head.proj.weight});
  Tensor W = head.proj.weight.detach().requires_grad(true);
  auto g2 = grad({-sum(f({x, W}))}, {W});
  test::check_close(g[0], g2[0], 1e-12);
}

TEST_CASE("MultivariateNormalHead: every method's gradient reaches the parameters correctly") {
  // Central differences on the bias (all params_size(d) entries) against the tape, for each use
  // of the factor: the packed parameterisation must receive only the lower triangle's gradient.
  Rng rng(15);
  nn::MultivariateNormalHead head(2, 3, rng);
  Tensor x = test::uniform({4, 2}, -1, 1, 16);
  auto other = dist::MultivariateNormal::from_covariance(Tensor::from({3}, {0.2, -0.1, 0.4}), test::spd({}, 3, 17));
  const std::vector<std::function<Tensor(const dist::MultivariateNormal&)>> uses = {
      [](const dist::MultivariateNormal& m) { return sum(m.log_prob(Tensor::from({3}, {0.3, 0.1, -0.2}))); },
      [](const dist::MultivariateNormal& m) { Rng r(2); return sum(square(m.rsample(r, 3))); },
      [](const dist::MultivariateNormal& m) { return sum(m.entropy()); },
      [](const dist::MultivariateNormal& m) { return sum(m.covariance() * test::uniform({4, 3, 3}, 0.5, 1.5, 18)); },
      [](const dist::MultivariateNormal& m) { return sum(m.precision() * test::uniform({4, 3, 3}, 0.5, 1.5, 19)); },
      [](const dist::MultivariateNormal& m) { return sum(m.scale_tril() * test::uniform({4, 3, 3}, 0.5, 1.5, 20)); },
      [&](const dist::MultivariateNormal& m) { return sum(dist::kl_divergence(m, other)); },
      [&](const dist::MultivariateNormal& m) { return sum(dist::kl_divergence(other, m)); },
  };
  for (size_t u = 0; u < uses.size(); ++u) {
    CAPTURE(u);
    auto g = grad({uses[u](head(x))}, {head.proj.bias});
    const double eps = 1e-6;
    for (size_t i = 0; i < static_cast<size_t>(tf::params_size(3)); ++i) {
      double* b = head.proj.bias.mutable_data().data();
      const double keep = b[i];
      double value[2];
      for (int s = 0; s < 2; ++s) {
        b[i] = keep + (s == 0 ? eps : -eps);
        NoGrad guard;
        value[s] = uses[u](head(x)).item();
      }
      b[i] = keep;
      CHECK(g[0].data()[i] == doctest::Approx((value[0] - value[1]) / (2 * eps)).epsilon(1e-6).scale(1.0));
    }
  }
}

TEST_CASE("MultivariateNormalHead: an overflowing or empty d is a ShapeError") {
  CHECK_THROWS_WITH_AS(nn::MultivariateNormalHead(4, int64_t{1} << 33), doctest::Contains("d = 8589934592"), ShapeError);
  CHECK_THROWS_WITH_AS(nn::MultivariateNormalHead(4, 0), doctest::Contains("d must be >= 1, got 0"), ShapeError);
}
