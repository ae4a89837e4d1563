// optim::Adam and optim::AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019).
//
// For a parameter's t-th step (t counts that parameter's steps, from 1):
//   g  = grad (+ weight_decay * p for Adam: L2 regularisation through the gradient)
//   p *= 1 - lr * weight_decay                     (AdamW: decay decoupled from the gradient)
//   m  = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2
//   p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
#pragma once

#include <optional>

#include "nn/optim/optimizer.hpp"

namespace cholla::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;           // > 0
  double weight_decay = 0.0;  // AdamW's default is 1e-2 (see AdamW)
};

// A group's overrides of the optimiser's defaults; unset fields take the defaults.
struct AdamGroupOptions {
  std::optional<double> lr = std::nullopt;
  std::optional<double> beta1 = std::nullopt;
  std::optional<double> beta2 = std::nullopt;
  std::optional<double> eps = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

struct AdamParamGroup {
  std::vector<Tensor> params;
  AdamGroupOptions options = {};
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options = {});
  Adam(std::vector<AdamParamGroup> groups, const AdamOptions& defaults = {});

  void step() override;

  // Resolved options of a group; writable between steps (learning-rate schedules).
  AdamOptions& options(std::size_t group = 0);
  bool decoupled_weight_decay() const { return decoupled_; }

 protected:
  Adam(const char* kind, std::vector<AdamParamGroup> groups, const AdamOptions& defaults,
       bool decoupled);
  NamedTensors hyperparameters(std::size_t group) const override;
  void set_hyperparameters(std::size_t group, const NamedTensors& values) override;
  void check_options(std::size_t group) const override;
  double& lr_slot(std::size_t group) override { return options_[group].lr; }
  double lr_slot(std::size_t group) const override { return options_[group].lr; }
  void check_hyperparameters(std::size_t group, const NamedTensors& values) const override;
  bool buffer_nonnegative(std::size_t buffer) const override { return buffer == 1; }

 private:
  std::vector<AdamOptions> options_;
  bool decoupled_;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

// Adam with decoupled weight decay.
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
  AdamW(std::vector<AdamParamGroup> groups, const AdamWOptions& defaults = {});
};

}  // namespace cholla::optim
