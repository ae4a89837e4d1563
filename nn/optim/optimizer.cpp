#include "nn/optim/optimizer.hpp"

#include <fmt/core.h>

#include <cmath>
#include <map>
#include <unordered_set>

#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"

namespace cholla::optim {

Optimizer::Optimizer(const char* kind, std::vector<std::vector<Tensor>> groups,
                     std::vector<std::string> buffers)
    : kind_(kind), groups_(std::move(groups)), buffer_names_(std::move(buffers)) {
  if (groups_.empty())
    throw DomainError(kind_, "no parameter groups were given. Pass model.parameters().");
  std::unordered_set<const TensorImpl*> seen;
  std::size_t total = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const Tensor& p = groups_[g][i];
      const std::string where = fmt::format("parameter {} of group {}", i, g);
      if (!p.defined())
        throw DomainError(kind_, where + " is an undefined tensor.");
      // Updating a tensor that an op produced would silently corrupt the tape's history.
      if (!p.is_leaf())
        throw GraphError(kind_, where + " was produced by an op; optimisers update leaves only. "
                                        "Pass the module's parameters().");
      if (!seen.insert(p.impl()).second)
        throw DomainError(kind_, where + " appears twice; each parameter may be in one group "
                                         "only, once.");
    }
    total += groups_[g].size();
  }
  if (total == 0)
    throw DomainError(kind_, "the parameter list is empty. Register parameters on the module "
                             "before building the optimiser.");
  state_.resize(groups_.size());
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (const Tensor& p : groups_[g]) {
      ParamState s;
      for (std::size_t b = 0; b < buffer_names_.size(); ++b)
        s.buffers.push_back(Tensor::zeros(p.shape()));
      state_[g].push_back(std::move(s));
    }
}

void Optimizer::zero_grad() {
  for (auto& group : groups_)
    for (Tensor& p : group) p.zero_grad();
}

const std::vector<Tensor>& Optimizer::params(std::size_t group) const {
  if (group >= groups_.size())
    throw ShapeError(kind_, fmt::format("group {} does not exist ({} groups).", group,
                                        groups_.size()));
  return groups_[group];
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> all;
  for (const auto& group : groups_) all.insert(all.end(), group.begin(), group.end());
  return all;
}

Optimizer::ParamState& Optimizer::state(std::size_t group, std::size_t index) {
  return state_[group][index];
}
const Optimizer::ParamState& Optimizer::state(std::size_t group, std::size_t index) const {
  return state_[group][index];
}

std::string Optimizer::prefix(std::size_t group) const {
  return fmt::format("{}.group{}.", kind_, group);
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (auto& [name, value] : hyperparameters(g)) out.emplace_back(prefix(g) + name, value);
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const std::string p = fmt::format("{}param{}.", prefix(g), i);
      const ParamState& s = state_[g][i];
      out.emplace_back(p + "steps", Tensor::scalar(static_cast<double>(s.steps)));
      // Copies: the caller must not alias buffers that later steps overwrite in place.
      for (std::size_t b = 0; b < buffer_names_.size(); ++b)
        out.emplace_back(p + buffer_names_[b], Tensor::from(s.buffers[b].shape(),
                                                            s.buffers[b].to_vector()));
    }
  }
  return out;
}

void Optimizer::check_state_dict(const NamedTensors& state) const {
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state)
    if (!given.emplace(name, &t).second)
      throw IoError(kind_, fmt::format("optimiser state has entry '{}' twice.", name));
  const NamedTensors expected = state_dict();
  for (const auto& [name, t] : expected) {
    auto it = given.find(name);
    if (it == given.end())
      throw IoError(kind_, fmt::format("optimiser state lacks entry '{}'. It was saved from a "
                                       "different optimiser or parameter groups.",
                                       name));
    if (!it->second->defined() || it->second->shape() != t.shape())
      throw IoError(kind_,
                    fmt::format("optimiser state entry '{}' has shape {}, expected {}.", name,
                                it->second->defined() ? format_shape(it->second->shape()) : "?",
                                format_shape(t.shape())),
                    "", {t.shape()});
  }
  if (given.size() != expected.size())
    for (const auto& [name, t] : given) {
      bool known = false;
      for (const auto& e : expected) known = known || e.first == name;
      if (!known)
        throw IoError(kind_, fmt::format("optimiser state has unexpected entry '{}'. It was "
                                         "saved from a different optimiser or parameter groups.",
                                         name));
    }
  for (const auto& [name, t] : state)
    if (name.ends_with(".steps")) {
      const double v = t.item();
      if (!(v >= 0) || v != std::floor(v) || v > 0x1p53)
        throw IoError(kind_, fmt::format("optimiser state entry '{}' is {}, not a step count.",
                                         name, v));
    }
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  check_state_dict(state);
  std::map<std::string, Tensor> given(state.begin(), state.end());
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    NamedTensors hyper = hyperparameters(g);
    for (auto& [name, value] : hyper) value = given.at(prefix(g) + name);
    set_hyperparameters(g, hyper);
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const std::string p = fmt::format("{}param{}.", prefix(g), i);
      ParamState& s = state_[g][i];
      s.steps = static_cast<int64_t>(given.at(p + "steps").item());
      for (std::size_t b = 0; b < buffer_names_.size(); ++b)
        s.buffers[b] = Tensor::from(s.buffers[b].shape(), given.at(p + buffer_names_[b]).to_vector());
    }
  }
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm,
                      const ClipOptions& options) {
  const double p = options.norm_type;
  if (!(max_norm >= 0) || !(p > 0))
    throw DomainError("clip_grad_norm",
                      fmt::format("max_norm = {} must be >= 0 and norm_type = {} must be > 0.",
                                  max_norm, p));
  double acc = 0.0;
  for (const Tensor& t : params) {
    if (!t.defined() || !t.grad().defined()) continue;
    for (double g : t.grad().data())
      acc = std::isinf(p) ? std::max(acc, std::fabs(g)) : acc + std::pow(std::fabs(g), p);
  }
  const double norm = std::isinf(p) ? acc : std::pow(acc, 1.0 / p);
  if (!std::isfinite(norm))
    throw DomainError("clip_grad_norm",
                      fmt::format("the gradient norm is {}; some gradient is NaN or infinite. "
                                  "Lower the learning rate or check the loss for log(0).",
                                  norm));
  // The small constant keeps a zero norm from dividing by zero (as PyTorch does).
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1.0) {
    NoGrad guard;
    for (const Tensor& t : params) {
      if (!t.defined() || !t.grad().defined()) continue;
      // Write a fresh gradient rather than scaling in place: the old one may be shared.
      Tensor g = t.grad();
      std::vector<double> v = g.to_vector();
      for (double& x : v) x *= scale;
      Tensor(t).set_grad(Tensor::from(g.shape(), std::move(v)));
    }
  }
  return norm;
}

}  // namespace cholla::optim
