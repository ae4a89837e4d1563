// optim::SGD: stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.
//
// With g = grad + weight_decay * p, each step is
//   buf = g                                       on a parameter's first step,
//   buf = momentum * buf + (1 - dampening) * g    afterwards          (only if momentum != 0)
//   d   = nesterov ? g + momentum * buf : buf     (d = g without momentum)
//   p  -= lr * d
// which is PyTorch's formulation (the momentum buffer is "velocity", lr applied last).
#pragma once

#include <optional>

#include "nn/optim/optimizer.hpp"

namespace cholla::optim {

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;  // in [0, 1)
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening = 0
};

// A group's overrides of the optimiser's defaults; unset fields take the defaults.
struct SGDGroupOptions {
  std::optional<double> lr = std::nullopt;
  std::optional<double> momentum = std::nullopt;
  std::optional<double> dampening = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
  std::optional<bool> nesterov = std::nullopt;
};

struct SGDParamGroup {
  std::vector<Tensor> params;
  SGDGroupOptions options = {};
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SGDOptions& options = {});
  SGD(std::vector<SGDParamGroup> groups, const SGDOptions& defaults = {});

  void step() override;

  // Resolved options of a group; writable between steps (learning-rate schedules).
  SGDOptions& options(std::size_t group = 0);

 protected:
  NamedTensors hyperparameters(std::size_t group) const override;
  void set_hyperparameters(std::size_t group, const NamedTensors& values) override;
  void check_options(std::size_t group) const override;
  double& lr_slot(std::size_t group) override { return options_[group].lr; }
  double lr_slot(std::size_t group) const override { return options_[group].lr; }
  void check_hyperparameters(std::size_t group, const NamedTensors& values) const override;

 private:
  std::vector<SGDOptions> options_;
};

}  // namespace cholla::optim
