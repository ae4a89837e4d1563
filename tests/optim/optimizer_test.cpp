// Optimiser state save/restore, zero_grad, and clip_grad_norm.
#include <cmath>

#include "../autodiff/helpers.hpp"

using namespace cholla;

namespace {

std::vector<Tensor> params() {
  return {Tensor::from({2}, {1.0, -1.0}).requires_grad(true),
          Tensor::from({2, 2}, {0.5, 0.25, -0.5, 2.0}).requires_grad(true)};
}

void run(optim::Optimizer& opt, const std::vector<Tensor>& ps, int steps) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Tensor loss = sum(square(ps[0])) + sum(exp(ps[1]) * ps[1]);
    loss.backward();
    opt.step();
  }
}

}  // namespace

TEST_CASE("optimizer: state_dict / load_state_dict resume exactly") {
  auto a = params(), b = params();
  optim::Adam first(a, {.lr = 0.05}), second(b, {.lr = 0.9, .beta1 = 0.1});
  run(first, a, 4);
  run(second, b, 1);  // diverge, then restore from the first
  for (size_t i = 0; i < a.size(); ++i) {
    NoGrad guard;
    auto dst = b[i].mutable_data();
    const auto src = a[i].data();
    std::copy(src.begin(), src.end(), dst.begin());
  }
  const auto state = first.state_dict();
  second.load_state_dict(state);
  CHECK(second.options().lr == 0.05);
  CHECK(second.options().beta1 == 0.9);
  run(first, a, 3);
  run(second, b, 3);
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].to_vector() == b[i].to_vector());

  // Names are stable and say what they hold.
  std::vector<std::string> names;
  for (auto& [name, t] : state) names.push_back(name);
  CHECK(names == std::vector<std::string>{
                     "adam.group0.lr", "adam.group0.beta1", "adam.group0.beta2",
                     "adam.group0.eps", "adam.group0.weight_decay", "adam.group0.param0.steps",
                     "adam.group0.param0.exp_avg", "adam.group0.param0.exp_avg_sq",
                     "adam.group0.param1.steps", "adam.group0.param1.exp_avg",
                     "adam.group0.param1.exp_avg_sq"});
  CHECK(state[5].second.item() == 4);
}

TEST_CASE("optimizer: a state that does not fit is an IoError and changes nothing") {
  auto a = params();
  optim::SGD sgd(a, {.lr = 0.1, .momentum = 0.5});
  run(sgd, a, 2);
  const auto good = sgd.state_dict();
  auto bad = good;
  bad.pop_back();
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(bad), doctest::Contains("lacks entry"), IoError);
  bad = good;
  bad.back().second = Tensor::zeros({3});
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(bad), doctest::Contains("has shape [3]"), IoError);
  bad = good;
  bad.emplace_back("sgd.group1.lr", Tensor::scalar(1));
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(bad), doctest::Contains("unexpected entry"), IoError);
  bad = good;
  bad[0].second = Tensor::scalar(5);  // lr: would change, but the next entry is wrong
  bad[5].second = Tensor::scalar(-1);  // param0.steps
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(bad), doctest::Contains("not a step count"), IoError);
  CHECK(sgd.options().lr == 0.1);
  auto b = params();
  optim::Adam adam(b);
  CHECK_THROWS_AS(adam.load_state_dict(good), IoError);
}

TEST_CASE("clip_grad_norm: rescales to max_norm and returns the norm before") {
  Tensor a = Tensor::zeros({2}).requires_grad(true), b = Tensor::zeros({1}).requires_grad(true);
  Tensor c = Tensor::zeros({1}).requires_grad(true);  // no gradient: skipped
  a.set_grad(Tensor::from({2}, {3, 4}));
  b.set_grad(Tensor::from({1}, {12}));
  CHECK(optim::clip_grad_norm({a, b, c}, 100.0) == doctest::Approx(13.0));
  test::check_values(a.grad(), {3, 4});  // under the limit: untouched
  CHECK(optim::clip_grad_norm({a, b, c}, 6.5) == doctest::Approx(13.0));
  test::check_values(a.grad(), {1.5, 2}, 1e-6);
  test::check_values(b.grad(), {6}, 1e-6);
  CHECK_FALSE(c.grad().defined());
  CHECK(optim::clip_grad_norm({a, b}, 1.0, {.norm_type = INFINITY}) == doctest::Approx(6.0));
  test::check_values(b.grad(), {1.0}, 1e-6);
  test::check_values(a.grad(), {0.25, 1.0 / 3}, 1e-6);

  b.set_grad(Tensor::from({1}, {NAN}));
  CHECK_THROWS_WITH_AS(optim::clip_grad_norm({a, b}, 1.0), doctest::Contains("NaN"), DomainError);
  CHECK_THROWS_AS(optim::clip_grad_norm({a}, -1.0), DomainError);
}
