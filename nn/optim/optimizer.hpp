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
//
// Before it changes anything, step() validates every group's options and reads every gradient
// once: by default a NaN or infinite entry is a DomainError naming the parameter (its module
// path after set_parameter_names(model.named_parameters())) and leaves parameters and state as
// they were. set_nonfinite(NonFinite::Skip) skips such steps instead (counted by
// skipped_steps()); NonFinite::Allow lets the values through, as PyTorch does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Schedule;

// What step() does with a gradient that holds NaN or an infinity.
enum class NonFinite {
  Throw,  // DomainError naming the parameter; nothing is updated (the default)
  Skip,   // the whole step is skipped (no parameter, no state changes) and counted
  Allow,  // no check: the update runs and may write NaN into parameters
};

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Drops the gradient of every parameter.
  void zero_grad();
  // One update of every parameter that has a gradient.
  virtual void step() = 0;

  void set_nonfinite(NonFinite policy) { nonfinite_ = policy; }
  NonFinite nonfinite() const { return nonfinite_; }
  // Steps skipped under NonFinite::Skip since construction (not part of the saved state).
  int64_t skipped_steps() const { return skipped_steps_; }

  // Names used in error messages: every parameter of this optimiser found (by identity) in
  // `named`, typically module.named_parameters(), is called by its name there. Others keep
  // "parameter i of group g".
  void set_parameter_names(const NamedTensors& named);
  std::string parameter_name(std::size_t group, std::size_t index) const;

  // A group's learning rate, for schedules. set_lr throws DomainError (and changes nothing)
  // unless lr is finite and >= 0.
  double lr(std::size_t group) const;
  void set_lr(std::size_t group, double lr);

  std::size_t num_groups() const { return groups_.size(); }
  const std::vector<Tensor>& params(std::size_t group) const;
  std::vector<Tensor> parameters() const;  // all groups, in order

  // The full state: hyperparameters of each group, per-parameter buffers and the state of the
  // learning-rate schedules built on this optimiser (schedule.hpp), keyed by stable names
  // ("adam.group0.lr", "adam.group0.param1.exp_avg", "adam.schedule0.step_lr.epoch", ...). The
  // prefix names the optimiser, so state from one kind of optimiser cannot be loaded into
  // another.
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
  const std::string& kind() const { return kind_; }

  // The start of every step(): validates the options of every group (DomainError), then reads
  // every gradient once and applies the NonFinite policy. Returns false when the step must be
  // skipped. Nothing has changed when it throws or returns false.
  bool begin_step();
  // Applies the NonFinite policy to the current gradients only (no option check), e.g. after
  // LBFGS's closure ran. Returns false (and counts a skipped step) when the step must be skipped.
  bool admit_gradients();
  // Applies the NonFinite policy to a problem described by `message`: throws DomainError under
  // Throw, counts a skipped step and returns false under Skip, returns true under Allow.
  bool refuse_nonfinite(const std::string& message, const std::string& argument = {},
                        std::vector<Shape> shapes = {});

  // How many entries are NaN or infinite (one branch-free pass).
  static std::size_t count_nonfinite(std::span<const double> values);

  // A group's hyperparameters as named scalars ("lr", "momentum", ...), for state_dict, and
  // their restoration (`values` holds the same names, already checked).
  virtual NamedTensors hyperparameters(std::size_t group) const = 0;
  virtual void set_hyperparameters(std::size_t group, const NamedTensors& values) = 0;
  // DomainError unless group `group`'s current options are valid.
  virtual void check_options(std::size_t group) const = 0;
  // The learning rate of a group (an existing one) inside its options.
  virtual double& lr_slot(std::size_t group) = 0;
  virtual double lr_slot(std::size_t group) const = 0;
  // DomainError unless `values` (same names as hyperparameters()) are valid options.
  virtual void check_hyperparameters(std::size_t group, const NamedTensors& values) const = 0;
  // Buffers whose entries must be >= 0 (Adam's exp_avg_sq), checked at load.
  virtual bool buffer_nonnegative(std::size_t /*buffer*/) const { return false; }

  // State that is not per parameter (LBFGS's history), named "<kind>.<name>", with shapes that
  // may vary. check_extra_state gets the entries whose names extra_state() lists, and must
  // throw IoError for any it would refuse; set_extra_state installs checked entries.
  virtual NamedTensors extra_state() const { return {}; }
  virtual void check_extra_state(const NamedTensors& /*entries*/) const {}
  virtual void set_extra_state(const NamedTensors& /*entries*/) {}

 private:
  std::string kind_;
  NonFinite nonfinite_ = NonFinite::Throw;
  int64_t skipped_steps_ = 0;
  std::vector<std::vector<std::string>> names_;
  friend class Schedule;
  std::vector<Schedule*> schedules_;  // attached by their constructors, in order

  NamedTensors layout() const;  // state_dict() without the check of the options
  std::string schedule_prefix(std::size_t i) const;  // "adam.schedule0.step_lr."
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
