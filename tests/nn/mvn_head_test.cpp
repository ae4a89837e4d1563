// MultivariateNormalHead: a valid distribution for any input, the documented layout, gradients.
#include <cmath>

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
