// NonFinite policies: a NaN or infinite gradient never reaches a parameter silently. Under
// Throw (the default) the error names the parameter and the count of bad entries, and neither
// parameters nor optimiser state change; Skip drops the whole step; Allow is the old behaviour.
#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#include "../autodiff/helpers.hpp"
#include "state_helpers.hpp"

using namespace cholla;
using test::bit_equal;
using test::flat_values;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Net : nn::Module {
  nn::Linear a{2, 3, rng()}, b{3, 1, rng()};
  Net() {
    register_module("a", a);
    register_module("b", b);
  }
  static Rng& rng() {
    thread_local Rng r(7);
    return r;
  }
};

using Factory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;

// The three optimisers, with momentum and weight decay so that every buffer is live.
std::vector<std::pair<const char*, Factory>> optimisers() {
  return {{"sgd",
           [](std::vector<Tensor> p) {
             return std::make_unique<optim::SGD>(
                 std::move(p), optim::SGDOptions{.lr = 0.1, .momentum = 0.5, .weight_decay = 0.01});
           }},
          {"adam",
           [](std::vector<Tensor> p) {
             return std::make_unique<optim::Adam>(
                 std::move(p), optim::AdamOptions{.lr = 0.1, .weight_decay = 0.01});
           }},
          {"adamw", [](std::vector<Tensor> p) {
             return std::make_unique<optim::AdamW>(std::move(p), optim::AdamWOptions{.lr = 0.1});
           }}};
}

std::vector<Tensor> two_params() {
  return {Tensor::from({2}, {1.0, -2.0}).requires_grad(true),
          Tensor::from({3}, {0.5, 0.25, 4.0}).requires_grad(true)};
}

void set_grads(const std::vector<Tensor>& ps, std::vector<double> g0, std::vector<double> g1) {
  Tensor(ps[0]).set_grad(Tensor::from({2}, std::move(g0)));
  Tensor(ps[1]).set_grad(Tensor::from({3}, std::move(g1)));
}

}  // namespace

TEST_CASE("nonfinite: Throw by default names the parameter and the count, changes nothing") {
  for (const auto& optimiser : optimisers()) {
    const auto& kind = optimiser.first;  // named, not bound: clang 14 lambdas cannot capture bindings
    const auto& make = optimiser.second;
    CAPTURE(kind);
    auto ps = two_params();
    auto opt = make(ps);
    CHECK(opt->nonfinite() == optim::NonFinite::Throw);
    set_grads(ps, {0.5, -1.0}, {1.0, 2.0, 3.0});
    opt->step();  // a good step first, so that the state is not all zeros
    const auto params_before = flat_values(ps);
    const auto state_before = flat_values(opt->state_dict());
    // The first parameter's gradient is fine: it must not be updated either, so every
    // gradient has to be read before anything is written.
    set_grads(ps, {0.5, -1.0}, {NAN, 2.0, -kInf});
    try {
      opt->step();
      FAIL("step accepted a NaN gradient");
    } catch (const DomainError& e) {
      const std::string what = e.what();
      CHECK(what.starts_with(std::string(kind) + ": "));
      CHECK(what.find("parameter 1 of group 0") != std::string::npos);
      CHECK(what.find("shape [3]") != std::string::npos);
      CHECK(what.find("2 non-finite entries of 3 (1 NaN, 1 infinite)") != std::string::npos);
      CHECK(what.find("NonFinite::Skip") != std::string::npos);
      REQUIRE(e.shapes().size() == 1);
      CHECK(e.shapes()[0] == Shape{3});
    }
    CHECK(bit_equal(flat_values(ps), params_before));
    CHECK(bit_equal(flat_values(opt->state_dict()), state_before));
    CHECK(opt->skipped_steps() == 0);
  }
}

TEST_CASE("nonfinite: module paths in the message after set_parameter_names") {
  Net net;
  optim::Adam opt(net.parameters());
  opt.set_parameter_names(net.named_parameters());
  CHECK(opt.parameter_name(0, 2) == "'b.weight' (parameter 2 of group 0)");
  Tensor x = Tensor::from({1, 2}, {1.0, 2.0});
  sum(net.b(tanh(net.a(x)))).backward();
  std::vector<double> g = net.b.weight.grad().to_vector();
  g[1] = kInf;
  net.b.weight.set_grad(Tensor::from({1, 3}, g));
  std::vector<double> h = net.a.bias.grad().to_vector();
  h[0] = NAN;
  net.a.bias.set_grad(Tensor::from({3}, h));
  try {
    opt.step();
    FAIL("step accepted an infinite gradient");
  } catch (const DomainError& e) {
    const std::string what = e.what();
    // The first bad parameter in order is a.bias; b.weight is counted among the others.
    CHECK(e.argument() == "a.bias");
    CHECK(what.find("'a.bias' (parameter 1 of group 0), shape [3], has 1 non-finite entries of 3 "
                    "(1 NaN, 0 infinite) (1 more parameters have some too)") != std::string::npos);
  }
}

TEST_CASE("nonfinite: the count is exact on a large gradient; huge finite values are fine") {
  Tensor p = Tensor::zeros({1000}).requires_grad(true);
  optim::SGD opt({p}, {.lr = 1e-300});
  std::vector<double> g(1000, 1.0);
  g[0] = std::numeric_limits<double>::max();
  g[1] = std::numeric_limits<double>::denorm_min();
  g[2] = -std::numeric_limits<double>::max();
  p.set_grad(Tensor::from({1000}, g));
  opt.step();  // finite, if extreme: accepted
  for (size_t i : {3, 17, 256, 511, 998, 999}) g[i] = i % 2 ? NAN : -kInf;
  g[500] = -NAN;
  p.set_grad(Tensor::from({1000}, g));
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("7 non-finite entries of 1000 (5 NaN, 2 infinite)"),
                       DomainError);
}

TEST_CASE("nonfinite: Skip drops the whole step and counts it; later steps are as if it never was") {
  for (const auto& optimiser : optimisers()) {
    const auto& kind = optimiser.first;  // named, not bound: clang 14 lambdas cannot capture bindings
    const auto& make = optimiser.second;
    CAPTURE(kind);
    auto ps = two_params(), reference = two_params();
    auto opt = make(ps), ref = make(reference);
    opt->set_nonfinite(optim::NonFinite::Skip);
    set_grads(ps, {0.5, -1.0}, {1.0, 2.0, 3.0});
    set_grads(reference, {0.5, -1.0}, {1.0, 2.0, 3.0});
    opt->step();
    ref->step();
    for (int bad = 1; bad <= 2; ++bad) {
      set_grads(ps, {0.5, kInf}, {1.0, 2.0, 3.0});
      opt->step();
      CHECK(opt->skipped_steps() == bad);
    }
    CHECK(bit_equal(flat_values(ps), flat_values(reference)));
    CHECK(bit_equal(flat_values(opt->state_dict()), flat_values(ref->state_dict())));
    set_grads(ps, {-0.25, 0.5}, {1.0, -2.0, 0.5});
    set_grads(reference, {-0.25, 0.5}, {1.0, -2.0, 0.5});
    opt->step();
    ref->step();
    CHECK(bit_equal(flat_values(ps), flat_values(reference)));
    CHECK(opt->skipped_steps() == 2);
  }
}

TEST_CASE("nonfinite: Allow lets NaN through, as before the check existed") {
  for (const auto& optimiser : optimisers()) {
    const auto& kind = optimiser.first;  // named, not bound: clang 14 lambdas cannot capture bindings
    const auto& make = optimiser.second;
    CAPTURE(kind);
    auto ps = two_params();
    auto opt = make(ps);
    opt->set_nonfinite(optim::NonFinite::Allow);
    set_grads(ps, {0.5, -1.0}, {NAN, 2.0, 3.0});
    opt->step();
    CHECK(std::isnan(ps[1].data()[0]));
    CHECK(std::isfinite(ps[0].data()[0]));
    CHECK(opt->skipped_steps() == 0);
  }
}
