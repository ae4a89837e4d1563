// MixtureDensityHead: the documented layout, a valid mixture for any input, initial state,
// gradients through the module, and size errors.
#include <cmath>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
namespace tf = cholla::dist::transforms;

TEST_CASE("MixtureDensityHead: params_size, layout and the mixture it returns") {
  CHECK(nn::MixtureDensityHead::params_size(3, 2) == 3 * (1 + 2 + 3));
  CHECK(nn::MixtureDensityHead::params_size(5, 1) == 15);
  Rng rng(1);
  nn::MixtureDensityHead head(4, 3, 2, rng);
  CHECK(head.proj.out_features() == 18);
  Tensor x = test::uniform({6, 4}, -1, 1, 2);
  auto mix = head(x);
  CHECK(mix.batch_shape() == Shape{6});
  CHECK(mix.num_components() == 3);
  CHECK(mix.event_shape() == Shape{2});
  // [K logits | K x d means | K packed triangles], component-major.
  Tensor raw = head.parameters_for(x);
  test::check_close(mix.mixture_logits(), slice(raw, -1, 0, 3), 0.0);
  test::check_close(mix.components().loc(), reshape(slice(raw, -1, 3, 9), {6, 3, 2}), 0.0);
  test::check_close(mix.components().scale_tril(), tf::fill_scale_tril(reshape(slice(raw, -1, 9, 18), {6, 3, 3})), 0.0);
  CHECK(nn::to_string(head).find("K=3, d=2") != std::string::npos);
}

TEST_CASE("MixtureDensityHead: initial state: equal weights, init_scale, separated means") {
  Rng rng(3);
  nn::MixtureDensityHead head(2, 4, 3, rng, {.init_scale = 0.5, .loc_spread = 2.0});
  auto mix = head(Tensor::zeros({1, 2}));  // only the bias acts
  test::check_close(mix.mixture_probs(), Tensor::full({1, 4}, 0.25), 1e-15);
  test::check_close(mix.components().scale_tril(), 0.5 * expand(Tensor::eye(3), {1, 4, 3, 3}), 1e-12);
  Tensor loc = mix.components().loc();
  for (double v : loc.data()) CHECK(std::abs(v) <= 2.0);
  // Distinct components (identical ones would never separate).
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t b = a + 1; b < 4; ++b)
      CHECK(sum(square(select(select(loc, 0, 0), 0, a) - select(select(loc, 0, 0), 0, b))).item() > 1e-6);
}

TEST_CASE("MixtureDensityHead: extreme inputs still give a finite log_prob") {
  Rng rng(4);
  nn::MixtureDensityHead head(3, 2, 2, rng);
  Tensor x = Tensor::from({2, 3}, {1e3, -1e3, 1e3, -1e3, -1e3, -1e3});
  for (double v : head(x).log_prob(Tensor::zeros({2})).data()) CHECK(std::isfinite(v));
}

TEST_CASE("MixtureDensityHead: log_prob gradchecks w.r.t. the input and the weight") {
  Rng rng(5);
  nn::MixtureDensityHead head(3, 2, 2, rng);
  Tensor y = test::uniform({4, 2}, -1, 1, 6);
  Tensor x = test::uniform({4, 3}, -1, 1, 7);
  // The head's forward with the weight as an explicit input (layout as documented).
  auto f = [&](const std::vector<Tensor>& v) {
    Tensor out = linalg::gemm2(v[0], v[1], {.transpose_b = true}) + head.proj.bias;
    Tensor loc = reshape(slice(out, -1, 2, 6), {4, 2, 2});
    Tensor L = tf::fill_scale_tril(reshape(slice(out, -1, 6, 12), {4, 2, 3}));
    return dist::MixtureSameFamily(slice(out, -1, 0, 2), dist::MultivariateNormal::from_scale_tril(loc, L)).log_prob(y);
  };
  test::check_gradients(f, {x, head.proj.weight.detach()});
  auto g = grad({-sum(head(x).log_prob(y))}, {head.proj.weight});
  Tensor W = head.proj.weight.detach().requires_grad(true);
  auto g2 = grad({-sum(f({x, W}))}, {W});
  test::check_close(g[0], g2[0], 1e-12);
}

TEST_CASE("MixtureDensityHead: size errors") {
  CHECK_THROWS_WITH_AS(nn::MixtureDensityHead(4, 0, 2), doctest::Contains("got K = 0, d = 2"), ShapeError);
  CHECK_THROWS_WITH_AS(nn::MixtureDensityHead(4, 2, 0), doctest::Contains("got K = 2, d = 0"), ShapeError);
  CHECK_THROWS_AS(nn::MixtureDensityHead::params_size(int64_t{1} << 40, 1LL << 20), ShapeError);
  CHECK_THROWS_WITH_AS(nn::MixtureDensityHead::params_size(3, int64_t{1} << 33), doctest::Contains("d = 8589934592"),
                       ShapeError);
  CHECK_THROWS_AS(nn::MixtureDensityHead(2, 2, 2, {.init_scale = 1e-9}), DomainError);
}
