// optim::Optimizer: the common part of SGD and Adam: parameter groups, zero_grad, state.
//
// Parameter groups: every group carries its own options. A group's options are "overrides"
// whose fields are optional; fields left unset take the optimiser's defaults:
//
//   optim::SGD opt({{model.mean_params(), {.lr = 0.1}},
//                   {model.cov_params(), {.lr = 1e-3}}},
//                  {.momentum = 0.3});            // both groups: momentum 0.3
//
// After construction `opt.options(g)` is the resolved options of group g, writable (learning-
// rate schedules change it between steps).
//
// step() updates parameters in place through Tensor::mutable_data() under NoGrad, so an
// update never enters the tape. Parameters without a gradient are left alone (and their state
// does not advance), as in PyTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Drops the gradient of every parameter.
  void zero_grad();
  // One update of every parameter that has a gradient.
  virtual void step() = 0;

  std::size_t num_groups() const { return groups_.size(); }
  const std::vector<Tensor>& params(std::size_t group) const;
  std::vector<Tensor> parameters() const;  // all groups, in order

  // The full state: hyperparameters of each group and per-parameter buffers, keyed by stable
  // names ("adam.group0.lr", "adam.group0.param1.exp_avg", ...). The prefix names the
  // optimiser, so state from one kind of optimiser cannot be loaded into another.
  NamedTensors state_dict() const;
  // Throws IoError naming the first missing, unexpected or mis-shaped entry, and changes
  // nothing, when `state` does not fit this optimiser (same kind, groups and parameter shapes).
  void check_state_dict(const NamedTensors& state) const;
  // check_state_dict, then replaces the state.
  void load_state_dict(const NamedTensors& state);

 protected:
  // `kind` prefixes state names ("sgd", "adam"); `buffers` names the per-parameter state.
  Optimizer(const char* kind, std::vector<std::vector<Tensor>> groups,
            std::vector<std::string> buffers);

  // The parameter lists of SGDParamGroup / AdamParamGroup values, for the constructor above.
  template <class Group>
  static std::vector<std::vector<Tensor>> params_of(const std::vector<Group>& groups) {
    std::vector<std::vector<Tensor>> out;
    for (const auto& g : groups) out.push_back(g.params);
    return out;
  }

  // Per-parameter state: a step count and one buffer per name in `buffers` (zeros of the
  // parameter's shape), allocated up front so that the state's layout never changes.
  struct ParamState {
    int64_t steps = 0;
    std::vector<Tensor> buffers;
  };
  ParamState& state(std::size_t group, std::size_t index);
  const ParamState& state(std::size_t group, std::size_t index) const;
  std::string prefix(std::size_t group) const;  // "adam.group0."

  // A group's hyperparameters as named scalars ("lr", "momentum", ...), for state_dict, and
  // their restoration (`values` holds the same names, already checked).
  virtual NamedTensors hyperparameters(std::size_t group) const = 0;
  virtual void set_hyperparameters(std::size_t group, const NamedTensors& values) = 0;

 private:
  std::string kind_;
  std::vector<std::vector<Tensor>> groups_;
  std::vector<std::vector<ParamState>> state_;
  std::vector<std::string> buffer_names_;
};

struct ClipOptions {
  double norm_type = 2.0;  // p of the p-norm; use INFINITY for the max norm
};

// Rescales the gradients of `params` in place so that their joint p-norm (all gradients seen
// as one vector) is at most max_norm; returns the norm before clipping. Parameters without a
// gradient are skipped. A non-finite norm is a DomainError and changes nothing.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm,
                      const ClipOptions& options = {});

}  // namespace cholla::optim
