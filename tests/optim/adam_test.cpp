// optim::Adam and AdamW against hand-computed updates, bias correction included.
#include "../autodiff/helpers.hpp"

using namespace cholla;

namespace {

Tensor scalar_param(double v) { return Tensor::from({1}, {v}).requires_grad(true); }
void set_grad(Tensor p, double g) { p.set_grad(Tensor::from({1}, {g})); }

}  // namespace

TEST_CASE("adam: bias-corrected steps") {
  Tensor p = scalar_param(1.0);
  optim::Adam opt({p}, {.lr = 0.1});
  // Step 1: m = 0.05, v = 0.00025; corrected m^ = 0.5, v^ = 0.25: the first step has size lr
  // whatever the gradient's scale (the point of bias correction).
  set_grad(p, 0.5);
  opt.step();
  test::check_values(p, {1.0 - 0.1 * 0.5 / (0.5 + 1e-8)}, 1e-15);
  // Step 2: m = -0.055, v = 0.00124975; m^ = -0.055 / 0.19, v^ = 0.00124975 / 0.001999.
  set_grad(p, -1.0);
  opt.step();
  test::check_values(p, {0.9366103542405654}, 1e-14);
  set_grad(p, 0.25);
  opt.step();
  test::check_values(p, {0.9502794203389762}, 1e-14);
}

TEST_CASE("adam: L2 weight decay goes through the gradient; AdamW decouples it") {
  Tensor a = scalar_param(1.0), w = scalar_param(1.0);
  optim::Adam adam({a}, {.lr = 0.1, .weight_decay = 0.1});
  optim::AdamW adamw({w}, {.lr = 0.1, .weight_decay = 0.1});
  CHECK(adamw.decoupled_weight_decay());
  CHECK(optim::AdamW({scalar_param(0)}).options().weight_decay == 1e-2);
  set_grad(a, 0.5);
  set_grad(w, 0.5);
  adam.step();   // g = 0.6: m^ = 0.6, sqrt(v^) = 0.6
  adamw.step();  // p = 0.99 first, then the plain Adam step of size 0.1
  test::check_values(a, {1.0 - 0.1 * 0.6 / (0.6 + 1e-8)}, 1e-15);
  test::check_values(w, {0.99 - 0.1 * 0.5 / (0.5 + 1e-8)}, 1e-15);
  set_grad(a, -1.0);
  set_grad(w, -1.0);
  adam.step();
  adamw.step();
  test::check_values(a, {0.9252635194456061}, 1e-14);
  test::check_values(w, {0.9177103542205653}, 1e-14);
}

TEST_CASE("adam: per-group learning rates and betas; step counts are per parameter") {
  Tensor a = scalar_param(1.0), b = scalar_param(1.0), c = scalar_param(1.0);
  optim::Adam opt({{{a}, {.lr = 0.1}}, {{b, c}, {.lr = 0.01, .beta1 = 0.5}}}, {.beta2 = 0.99});
  CHECK(opt.options(0).beta1 == 0.9);
  CHECK(opt.options(0).beta2 == 0.99);
  CHECK(opt.options(1).beta1 == 0.5);
  CHECK(opt.options(1).beta2 == 0.99);
  set_grad(a, 3.0);
  set_grad(b, -2.0);  // c has no gradient: untouched, its step count stays 0
  opt.step();
  test::check_values(a, {1.0 - 0.1 * 3.0 / (3.0 + 1e-8)}, 1e-15);
  test::check_values(b, {1.0 + 0.01 * 2.0 / (2.0 + 1e-8)}, 1e-15);
  test::check_values(c, {1.0});
  set_grad(c, 4.0);
  opt.step();  // c's first step is bias-corrected as a first step: size exactly lr
  test::check_values(c, {1.0 - 0.01 * 4.0 / (4.0 + 1e-8)}, 1e-15);
  // b's second step with the same gradient: m^ = g, v^ = g^2 again, another step of size lr.
  test::check_values(b, {1.0 + 2 * 0.01 * 2.0 / (2.0 + 1e-8)}, 1e-14);
}

TEST_CASE("adam: invalid options are DomainErrors") {
  Tensor p = scalar_param(1.0);
  CHECK_THROWS_WITH_AS(optim::Adam({p}, {.beta1 = 1.0}), doctest::Contains("beta1"), DomainError);
  CHECK_THROWS_AS(optim::Adam({p}, {.lr = -1e-3}), DomainError);
  CHECK_THROWS_AS(optim::AdamW({p}, {.eps = -1}), DomainError);
}
