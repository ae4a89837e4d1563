// Learning-rate schedules: StepLR, ExponentialLR, CosineAnnealingLR, LinearWarmup (alone or
// in front of another schedule) and ReduceLROnPlateau (plateau.hpp). They set the learning
// rate of every parameter group through Optimizer::set_lr, with PyTorch's closed forms:
//
//   optim::AdamW opt(model.parameters(), {.lr = 1e-3});
//   optim::CosineAnnealingLR cosine(opt, {.T_max = 90});
//   optim::LinearWarmup warmup(opt, 10, cosine);  // 10 steps of warm-up, then the cosine
//   for (int epoch = 0; epoch < 100; ++epoch) { train_one_epoch(); warmup.step(); }
//
// A schedule remembers each group's learning rate when it is built (the base) and writes
// lr(base, e) after its e-th step(). It owns the learning rates: a closed-form schedule
// overwrites any change made to them in between.
//
// State: a schedule attaches itself to its optimiser, so the optimiser's state_dict() — and so
// nn::save(module, optimizer, path) / nn::load — carries the schedule's state too, under
// "<optimiser>.schedule<i>.<kind>.<name>" (i counts the optimiser's schedules in the order they
// were built). Build the same schedules before loading; a file without them is an IoError, so
// build schedules after loading a checkpoint saved without any.
//
// A schedule must not outlive its optimiser's use: once the optimiser is destroyed, step() is
// a GraphError.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/optim/optimizer.hpp"

namespace cholla::optim {

class Schedule {
 public:
  virtual ~Schedule();
  Schedule(const Schedule&) = delete;
  Schedule& operator=(const Schedule&) = delete;

  // One more epoch (or iteration: the unit is the caller's).
  virtual void step();
  // For schedules driven by a metric (ReduceLROnPlateau); a DomainError for the others.
  virtual void step(double metric);

  int64_t epoch() const { return epoch_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // The current learning rate of every group.
  std::vector<double> lrs() const;
  Optimizer& optimizer() const;
  const std::string& kind() const { return kind_; }

  // The entry `name` of state values (as the schedule names them), as a double.
  static double value(const NamedTensors& values, const std::string& name);

 protected:
  Schedule(const char* kind, Optimizer& optimizer);

  // The schedule's options and counters as named scalars (and "base_lrs", [groups]); a check
  // that throws DomainError for values it would refuse; and their restoration.
  virtual NamedTensors state() const;
  virtual void check_state(const NamedTensors& values) const;
  virtual void set_state(const NamedTensors& values);
  // Writes the learning rates for the current epoch.
  virtual void apply() = 0;
  // Back to epoch 0 with the base learning rates (LinearWarmup hands over with it).
  void restart();
  // DomainError unless `v` is a whole number in [lo, 2^53].
  void check_count(const char* name, double v, double lo) const;

  std::vector<double> base_lrs_;
  int64_t epoch_ = 0;

 private:
  friend class Optimizer;
  friend class LinearWarmup;
  std::string kind_;
  Optimizer* optimizer_;
};

// A schedule whose learning rate is a function of the base and the epoch.
class ClosedFormSchedule : public Schedule {
 public:
  using Schedule::step;
  void step() override;
  // The learning rate after `epoch` steps from `base`.
  virtual double lr_at(double base, int64_t epoch) const = 0;

 protected:
  using Schedule::Schedule;
  void apply() override;
};

struct StepLROptions {
  int64_t step_size = 1;  // epochs between decays
  double gamma = 0.1;
};

// lr = base * gamma^floor(epoch / step_size).
class StepLR : public ClosedFormSchedule {
 public:
  StepLR(Optimizer& optimizer, const StepLROptions& options);
  double lr_at(double base, int64_t epoch) const override;

 protected:
  NamedTensors state() const override;
  void check_state(const NamedTensors& values) const override;
  void set_state(const NamedTensors& values) override;

 private:
  StepLROptions options_;
};

struct ExponentialLROptions {
  double gamma = 0.9;
};

// lr = base * gamma^epoch.
class ExponentialLR : public ClosedFormSchedule {
 public:
  ExponentialLR(Optimizer& optimizer, const ExponentialLROptions& options);
  double lr_at(double base, int64_t epoch) const override;

 protected:
  NamedTensors state() const override;
  void check_state(const NamedTensors& values) const override;
  void set_state(const NamedTensors& values) override;

 private:
  ExponentialLROptions options_;
};

struct CosineAnnealingLROptions {
  int64_t T_max = 1;  // half a period, in epochs
  double eta_min = 0.0;
};

// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2 (SGDR without restarts;
// past T_max it rises again, as PyTorch's does).
class CosineAnnealingLR : public ClosedFormSchedule {
 public:
  CosineAnnealingLR(Optimizer& optimizer, const CosineAnnealingLROptions& options);
  double lr_at(double base, int64_t epoch) const override;

 protected:
  NamedTensors state() const override;
  void check_state(const NamedTensors& values) const override;
  void set_state(const NamedTensors& values) override;

 private:
  CosineAnnealingLROptions options_;
};

struct LinearWarmupOptions {
  double start_factor = 1.0 / 3;  // the first epoch's multiple of the base, in (0, 1]
};

// lr = base * (start_factor + (1 - start_factor) epoch / steps) for epoch < steps; from epoch
// `steps` on, the schedule `then` runs from its own epoch 0 (or the base stays, without one).
// `then` must be built on the same optimiser before this one, and outlive it; step() only this
// one. With a ReduceLROnPlateau after it, call step(metric): the metric is ignored during the
// warm-up.
class LinearWarmup : public Schedule {
 public:
  LinearWarmup(Optimizer& optimizer, int64_t steps, const LinearWarmupOptions& options = {});
  LinearWarmup(Optimizer& optimizer, int64_t steps, Schedule& then,
               const LinearWarmupOptions& options = {});
  void step() override;
  void step(double metric) override;

 protected:
  NamedTensors state() const override;
  void check_state(const NamedTensors& values) const override;
  void set_state(const NamedTensors& values) override;
  void apply() override;

 private:
  LinearWarmup(Optimizer& optimizer, int64_t steps, Schedule* then,
               const LinearWarmupOptions& options);
  // Advances one epoch; returns whether the warm-up is over and `then_` takes this step.
  bool advance();
  int64_t steps_;
  LinearWarmupOptions options_;
  Schedule* then_ = nullptr;
};

}  // namespace cholla::optim
