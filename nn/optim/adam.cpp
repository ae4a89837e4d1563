#include "nn/optim/adam.hpp"

#include <fmt/core.h>

#include <cmath>

#include "autodiff/tape.hpp"

namespace cholla::optim {
namespace {

AdamOptions resolve(AdamOptions o, const AdamGroupOptions& g) {
  o.lr = g.lr.value_or(o.lr);
  o.beta1 = g.beta1.value_or(o.beta1);
  o.beta2 = g.beta2.value_or(o.beta2);
  o.eps = g.eps.value_or(o.eps);
  o.weight_decay = g.weight_decay.value_or(o.weight_decay);
  return o;
}

// Comparisons are written so that NaN fails them.
void check(const std::string& kind, const AdamOptions& o, std::size_t group) {
  auto finite_nonnegative = [](double x) { return x >= 0 && x < INFINITY; };
  if (!finite_nonnegative(o.lr) || !finite_nonnegative(o.weight_decay))
    throw DomainError(kind, fmt::format("group {}: lr = {} and weight_decay = {} must be finite "
                                        "and >= 0.",
                                        group, o.lr, o.weight_decay));
  // eps = 0 turns a zero gradient into 0 / 0.
  if (!(o.eps > 0 && o.eps < INFINITY))
    throw DomainError(kind, fmt::format("group {}: eps = {} must be finite and > 0 (1e-8 is "
                                        "usual).",
                                        group, o.eps));
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1))
    throw DomainError(kind, fmt::format("group {}: beta1 = {} and beta2 = {} must be in [0, 1).",
                                        group, o.beta1, o.beta2));
}

AdamOptions from_w(const AdamWOptions& w) {
  return {.lr = w.lr, .beta1 = w.beta1, .beta2 = w.beta2, .eps = w.eps,
          .weight_decay = w.weight_decay};
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam("adam", {{std::move(params), {}}}, options, false) {}

Adam::Adam(std::vector<AdamParamGroup> groups, const AdamOptions& defaults)
    : Adam("adam", std::move(groups), defaults, false) {}

Adam::Adam(const char* kind, std::vector<AdamParamGroup> groups, const AdamOptions& defaults,
           bool decoupled)
    : Optimizer(kind, params_of(groups), {"exp_avg", "exp_avg_sq"}), decoupled_(decoupled) {
  for (std::size_t g = 0; g < groups.size(); ++g) {
    options_.push_back(resolve(defaults, groups[g].options));
    check(kind, options_.back(), g);
  }
}

AdamOptions& Adam::options(std::size_t group) {
  params(group);  // range check
  return options_[group];
}

void Adam::check_options(std::size_t group) const { check(kind(), options_[group], group); }

void Adam::step() {
  if (!begin_step()) return;
  NoGrad guard;
  for (std::size_t g = 0; g < num_groups(); ++g) {
    const AdamOptions& o = options_[g];
    const auto& ps = params(g);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      Tensor p = ps[i];
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ParamState& s = state(g, i);
      const double t = static_cast<double>(++s.steps);
      const double c1 = 1.0 - std::pow(o.beta1, t), c2 = 1.0 - std::pow(o.beta2, t);
      auto v = p.mutable_data();
      const auto gr = grad.data();
      auto m = s.buffers[0].mutable_data(), sq = s.buffers[1].mutable_data();
      for (std::size_t k = 0; k < v.size(); ++k) {
        double d = gr[k];
        if (decoupled_)
          v[k] *= 1.0 - o.lr * o.weight_decay;
        else
          d += o.weight_decay * v[k];
        m[k] = o.beta1 * m[k] + (1.0 - o.beta1) * d;
        sq[k] = o.beta2 * sq[k] + (1.0 - o.beta2) * d * d;
        v[k] -= o.lr * (m[k] / c1) / (std::sqrt(sq[k] / c2) + o.eps);
      }
    }
  }
}

NamedTensors Adam::hyperparameters(std::size_t group) const {
  const AdamOptions& o = options_[group];
  return {{"lr", Tensor::scalar(o.lr)},
          {"beta1", Tensor::scalar(o.beta1)},
          {"beta2", Tensor::scalar(o.beta2)},
          {"eps", Tensor::scalar(o.eps)},
          {"weight_decay", Tensor::scalar(o.weight_decay)}};
}

namespace {

AdamOptions from_values(const NamedTensors& values) {
  return {.lr = values[0].second.item(),
          .beta1 = values[1].second.item(),
          .beta2 = values[2].second.item(),
          .eps = values[3].second.item(),
          .weight_decay = values[4].second.item()};
}

}  // namespace

void Adam::set_hyperparameters(std::size_t group, const NamedTensors& values) {
  options_[group] = from_values(values);
}

void Adam::check_hyperparameters(std::size_t group, const NamedTensors& values) const {
  check(kind(), from_values(values), group);
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& options)
    : Adam("adamw", {{std::move(params), {}}}, from_w(options), true) {}

AdamW::AdamW(std::vector<AdamParamGroup> groups, const AdamWOptions& defaults)
    : Adam("adamw", std::move(groups), from_w(defaults), true) {}

}  // namespace cholla::optim
