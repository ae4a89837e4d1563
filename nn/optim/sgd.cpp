#include "nn/optim/sgd.hpp"

#include <fmt/core.h>

#include <cmath>

#include "autodiff/tape.hpp"

namespace cholla::optim {
namespace {

SGDOptions resolve(SGDOptions o, const SGDGroupOptions& g) {
  o.lr = g.lr.value_or(o.lr);
  o.momentum = g.momentum.value_or(o.momentum);
  o.dampening = g.dampening.value_or(o.dampening);
  o.weight_decay = g.weight_decay.value_or(o.weight_decay);
  o.nesterov = g.nesterov.value_or(o.nesterov);
  return o;
}

// Comparisons are written so that NaN fails them.
void check(const SGDOptions& o, std::size_t group) {
  if (!(o.lr >= 0 && o.lr < INFINITY) || !(o.weight_decay >= 0 && o.weight_decay < INFINITY))
    throw DomainError("sgd", fmt::format("group {}: lr = {} and weight_decay = {} must be finite "
                                         "and >= 0.",
                                         group, o.lr, o.weight_decay));
  // Momentum 1 or more sums past gradients without decay: the velocity grows without bound.
  if (!(o.momentum >= 0 && o.momentum < 1) || !(o.dampening >= 0 && o.dampening <= 1))
    throw DomainError("sgd", fmt::format("group {}: momentum = {} must be in [0, 1) and "
                                         "dampening = {} in [0, 1].",
                                         group, o.momentum, o.dampening));
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
    throw DomainError("sgd", fmt::format("group {}: nesterov needs momentum > 0 (got {}) and "
                                         "dampening = 0 (got {}).",
                                         group, o.momentum, o.dampening));
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : SGD(std::vector<SGDParamGroup>{{std::move(params), {}}}, options) {}

SGD::SGD(std::vector<SGDParamGroup> groups, const SGDOptions& defaults)
    : Optimizer("sgd", params_of(groups), {"momentum_buffer"}) {
  for (std::size_t g = 0; g < groups.size(); ++g) {
    options_.push_back(resolve(defaults, groups[g].options));
    check(options_.back(), g);
  }
}

SGDOptions& SGD::options(std::size_t group) {
  params(group);  // range check
  return options_[group];
}

void SGD::check_options(std::size_t group) const { check(options_[group], group); }

void SGD::step() {
  if (!begin_step()) return;
  NoGrad guard;
  for (std::size_t g = 0; g < num_groups(); ++g) {
    const SGDOptions& o = options_[g];
    const auto& ps = params(g);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      Tensor p = ps[i];
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ParamState& s = state(g, i);
      auto v = p.mutable_data();
      const auto gr = grad.data();
      auto buf = s.buffers[0].mutable_data();
      for (std::size_t k = 0; k < v.size(); ++k) {
        double d = gr[k] + o.weight_decay * v[k];
        if (o.momentum != 0) {
          buf[k] = s.steps == 0 ? d : o.momentum * buf[k] + (1 - o.dampening) * d;
          d = o.nesterov ? d + o.momentum * buf[k] : buf[k];
        }
        v[k] -= o.lr * d;
      }
      ++s.steps;
    }
  }
}

NamedTensors SGD::hyperparameters(std::size_t group) const {
  const SGDOptions& o = options_[group];
  return {{"lr", Tensor::scalar(o.lr)},
          {"momentum", Tensor::scalar(o.momentum)},
          {"dampening", Tensor::scalar(o.dampening)},
          {"weight_decay", Tensor::scalar(o.weight_decay)},
          {"nesterov", Tensor::scalar(o.nesterov ? 1.0 : 0.0)}};
}

namespace {

SGDOptions from_values(const NamedTensors& values) {
  return {.lr = values[0].second.item(),
          .momentum = values[1].second.item(),
          .dampening = values[2].second.item(),
          .weight_decay = values[3].second.item(),
          .nesterov = values[4].second.item() != 0};
}

}  // namespace

void SGD::set_hyperparameters(std::size_t group, const NamedTensors& values) {
  options_[group] = from_values(values);
}

void SGD::check_hyperparameters(std::size_t group, const NamedTensors& values) const {
  const double nesterov = values[4].second.item();
  if (nesterov != 0 && nesterov != 1)
    throw DomainError("sgd", fmt::format("group {}: nesterov = {} must be 0 or 1.", group,
                                         nesterov));
  check(from_values(values), group);
}

}  // namespace cholla::optim
