// optim::SGD against updates computed by hand (numbers worked out in the comments).
#include "../autodiff/helpers.hpp"

using namespace cholla;

namespace {

Tensor param(std::vector<double> v) {
  const auto n = static_cast<int64_t>(v.size());
  return Tensor::from({n}, std::move(v)).requires_grad(true);
}

void set_grad(Tensor p, std::vector<double> g) {
  const auto n = static_cast<int64_t>(g.size());
  p.set_grad(Tensor::from({n}, std::move(g)));
}

}  // namespace

TEST_CASE("sgd: plain step p -= lr * g") {
  Tensor p = param({1.0, 2.0});
  optim::SGD opt({p}, {.lr = 0.1});
  set_grad(p, {0.5, -1.0});
  opt.step();
  test::check_values(p, {0.95, 2.1});
  // zero_grad drops the gradient; a parameter without one is left alone.
  opt.zero_grad();
  CHECK_FALSE(p.grad().defined());
  opt.step();
  test::check_values(p, {0.95, 2.1});
}

TEST_CASE("sgd: momentum, dampening, nesterov and weight decay") {
  SUBCASE("momentum 0.9: buf = g, then 0.9 g + g") {
    Tensor p = param({1.0});
    optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9});
    set_grad(p, {0.5});
    opt.step();  // 1 - 0.1 * 0.5
    test::check_values(p, {0.95});
    opt.step();  // buf = 0.45 + 0.5 = 0.95 -> 0.95 - 0.095
    test::check_values(p, {0.855});
  }
  SUBCASE("dampening 0.5 applies from the second step") {
    Tensor p = param({1.0});
    optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
    set_grad(p, {0.5});
    opt.step();  // buf = 0.5
    opt.step();  // buf = 0.45 + 0.25 = 0.7 -> 0.95 - 0.07
    test::check_values(p, {0.88});
  }
  SUBCASE("nesterov with weight decay 0.1") {
    Tensor p = param({1.0});
    optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1, .nesterov = true});
    set_grad(p, {0.5});
    opt.step();  // d = 0.5 + 0.1 = 0.6, buf = 0.6, d = 0.6 + 0.54 = 1.14 -> 0.886
    test::check_values(p, {0.886});
    // d = 0.5 + 0.0886 = 0.5886, buf = 0.54 + 0.5886 = 1.1286,
    // d = 0.5886 + 1.01574 = 1.60434 -> 0.886 - 0.160434
    opt.step();
    test::check_values(p, {0.725566});
  }
}

TEST_CASE("sgd: parameter groups override the defaults field by field") {
  Tensor a = param({1.0}), b = param({1.0});
  optim::SGD opt({{{a}, {.lr = 0.1}}, {{b}, {.lr = 0.01, .nesterov = true}}}, {.momentum = 0.3});
  CHECK(opt.num_groups() == 2);
  CHECK(opt.options(0).lr == 0.1);
  CHECK(opt.options(0).momentum == 0.3);
  CHECK_FALSE(opt.options(0).nesterov);
  CHECK(opt.options(1).lr == 0.01);
  CHECK(opt.options(1).momentum == 0.3);
  CHECK(opt.options(1).nesterov);
  set_grad(a, {1.0});
  set_grad(b, {1.0});
  opt.step();
  opt.step();
  test::check_values(a, {1.0 - 0.1 - 0.1 * 1.3});             // buf 1, then 1.3
  test::check_values(b, {1.0 - 0.01 * 1.3 - 0.01 * (1 + 0.39)}); // d = g + 0.3 buf
  // Options are writable between steps (schedules).
  opt.options(0).lr = 0.0;
  opt.step();
  test::check_values(a, {1.0 - 0.1 - 0.1 * 1.3});
  CHECK(opt.parameters().size() == 2);
}

TEST_CASE("sgd: invalid options and parameters are typed errors") {
  Tensor p = param({1.0});
  CHECK_THROWS_WITH_AS(optim::SGD({p}, {.nesterov = true}), doctest::Contains("momentum > 0"),
                       DomainError);
  CHECK_THROWS_AS(optim::SGD({p}, {.lr = -1}), DomainError);
  CHECK_THROWS_AS(optim::SGD({p}, {.momentum = 0.9, .dampening = 0.5, .nesterov = true}),
                  DomainError);
  CHECK_THROWS_WITH_AS(optim::SGD({p * 2.0}), doctest::Contains("leaves"), GraphError);
  CHECK_THROWS_WITH_AS(optim::SGD({p, p}), doctest::Contains("twice"), DomainError);
  CHECK_THROWS_WITH_AS(optim::SGD(std::vector<Tensor>{}), doctest::Contains("empty"),
                       DomainError);
  optim::SGD opt({p});
  opt.options().lr = -0.5;
  set_grad(p, {1.0});
  CHECK_THROWS_AS(opt.step(), DomainError);
  test::check_values(p, {1.0});
}
