#include "nn/optim/schedule.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <numbers>

namespace cholla::optim {
namespace {

constexpr double kMaxCount = 0x1p53;  // counts beyond this are not exact doubles

bool finite_nonnegative(double x) { return x >= 0 && x < INFINITY; }

}  // namespace

Schedule::Schedule(const char* kind, Optimizer& optimizer) : kind_(kind), optimizer_(&optimizer) {
  for (std::size_t g = 0; g < optimizer.num_groups(); ++g) base_lrs_.push_back(optimizer.lr(g));
  optimizer.schedules_.push_back(this);
}

Schedule::~Schedule() {
  if (optimizer_ == nullptr) return;
  auto& list = optimizer_->schedules_;
  list.erase(std::remove(list.begin(), list.end(), this), list.end());
}

Optimizer& Schedule::optimizer() const {
  if (optimizer_ == nullptr)
    throw GraphError(kind_, "the optimiser this schedule was built on has been destroyed.");
  return *optimizer_;
}

std::vector<double> Schedule::lrs() const {
  std::vector<double> out;
  for (std::size_t g = 0; g < optimizer().num_groups(); ++g) out.push_back(optimizer().lr(g));
  return out;
}

void Schedule::step() {
  throw DomainError(kind_, "this schedule is driven by a metric: call step(metric).");
}

void Schedule::step(double) {
  throw DomainError(kind_, "this schedule takes no metric: call step().");
}

void Schedule::restart() {
  epoch_ = 0;
  apply();
}

double Schedule::value(const NamedTensors& values, const std::string& name) {
  for (const auto& [n, t] : values)
    if (n == name) return t.item();
  throw InternalError("schedule", fmt::format("no state entry '{}'.", name));
}

void Schedule::check_count(const char* name, double v, double lo) const {
  if (!(v >= lo && v <= kMaxCount) || v != std::floor(v))
    throw DomainError(kind_, fmt::format("{} = {} must be a whole number >= {}.", name, v, lo));
}

NamedTensors Schedule::state() const {
  const auto groups = static_cast<int64_t>(base_lrs_.size());
  return {{"epoch", Tensor::scalar(static_cast<double>(epoch_))},
          {"base_lrs", Tensor::from({groups}, base_lrs_)}};
}

void Schedule::check_state(const NamedTensors& values) const {
  check_count("epoch", value(values, "epoch"), 0);
  for (const auto& [name, t] : values)
    if (name == "base_lrs")
      for (double lr : t.data())
        if (!finite_nonnegative(lr))
          throw DomainError(kind_, fmt::format("base_lrs holds {}; learning rates must be finite "
                                               "and >= 0.",
                                               lr));
}

void Schedule::set_state(const NamedTensors& values) {
  epoch_ = static_cast<int64_t>(value(values, "epoch"));
  for (const auto& [name, t] : values)
    if (name == "base_lrs") base_lrs_ = t.to_vector();
}

void ClosedFormSchedule::step() {
  ++epoch_;
  apply();
}

void ClosedFormSchedule::apply() {
  Optimizer& opt = optimizer();
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) opt.set_lr(g, lr_at(base_lrs_[g], epoch_));
}

// StepLR

namespace {

void check(const char* kind, const StepLROptions& o) {
  if (o.step_size < 1 || !finite_nonnegative(o.gamma))
    throw DomainError(kind, fmt::format("step_size = {} must be >= 1 and gamma = {} finite and "
                                        ">= 0.",
                                        o.step_size, o.gamma));
}

}  // namespace

StepLR::StepLR(Optimizer& optimizer, const StepLROptions& options)
    : ClosedFormSchedule("step_lr", optimizer), options_(options) {
  check("step_lr", options_);
}

double StepLR::lr_at(double base, int64_t epoch) const {
  return base * std::pow(options_.gamma, static_cast<double>(epoch / options_.step_size));
}

NamedTensors StepLR::state() const {
  NamedTensors s = Schedule::state();
  s.emplace_back("step_size", Tensor::scalar(static_cast<double>(options_.step_size)));
  s.emplace_back("gamma", Tensor::scalar(options_.gamma));
  return s;
}

void StepLR::check_state(const NamedTensors& values) const {
  Schedule::check_state(values);
  check_count("step_size", value(values, "step_size"), 1);
  check("step_lr", StepLROptions{.step_size = 1, .gamma = value(values, "gamma")});
}

void StepLR::set_state(const NamedTensors& values) {
  Schedule::set_state(values);
  options_ = {.step_size = static_cast<int64_t>(value(values, "step_size")),
              .gamma = value(values, "gamma")};
}

// ExponentialLR

namespace {

void check(const char* kind, const ExponentialLROptions& o) {
  if (!finite_nonnegative(o.gamma))
    throw DomainError(kind, fmt::format("gamma = {} must be finite and >= 0.", o.gamma));
}

}  // namespace

ExponentialLR::ExponentialLR(Optimizer& optimizer, const ExponentialLROptions& options)
    : ClosedFormSchedule("exponential_lr", optimizer), options_(options) {
  check("exponential_lr", options_);
}

double ExponentialLR::lr_at(double base, int64_t epoch) const {
  return base * std::pow(options_.gamma, static_cast<double>(epoch));
}

NamedTensors ExponentialLR::state() const {
  NamedTensors s = Schedule::state();
  s.emplace_back("gamma", Tensor::scalar(options_.gamma));
  return s;
}

void ExponentialLR::check_state(const NamedTensors& values) const {
  Schedule::check_state(values);
  check("exponential_lr", ExponentialLROptions{.gamma = value(values, "gamma")});
}

void ExponentialLR::set_state(const NamedTensors& values) {
  Schedule::set_state(values);
  options_.gamma = value(values, "gamma");
}

// CosineAnnealingLR

namespace {

void check(const char* kind, const CosineAnnealingLROptions& o) {
  if (o.T_max < 1 || !finite_nonnegative(o.eta_min))
    throw DomainError(kind, fmt::format("T_max = {} must be >= 1 and eta_min = {} finite and "
                                        ">= 0.",
                                        o.T_max, o.eta_min));
}

}  // namespace

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, const CosineAnnealingLROptions& options)
    : ClosedFormSchedule("cosine_annealing_lr", optimizer), options_(options) {
  check("cosine_annealing_lr", options_);
}

double CosineAnnealingLR::lr_at(double base, int64_t epoch) const {
  const double phase = std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(options_.T_max);
  // max(): base < eta_min would otherwise give a negative rate half-way.
  return std::max(0.0, options_.eta_min + (base - options_.eta_min) * (1 + std::cos(phase)) / 2);
}

NamedTensors CosineAnnealingLR::state() const {
  NamedTensors s = Schedule::state();
  s.emplace_back("T_max", Tensor::scalar(static_cast<double>(options_.T_max)));
  s.emplace_back("eta_min", Tensor::scalar(options_.eta_min));
  return s;
}

void CosineAnnealingLR::check_state(const NamedTensors& values) const {
  Schedule::check_state(values);
  check_count("T_max", value(values, "T_max"), 1);
  check("cosine_annealing_lr", CosineAnnealingLROptions{.T_max = 1, .eta_min = value(values, "eta_min")});
}

void CosineAnnealingLR::set_state(const NamedTensors& values) {
  Schedule::set_state(values);
  options_ = {.T_max = static_cast<int64_t>(value(values, "T_max")),
              .eta_min = value(values, "eta_min")};
}

// LinearWarmup

namespace {

void check(const char* kind, int64_t steps, const LinearWarmupOptions& o) {
  if (steps < 1 || !(o.start_factor > 0 && o.start_factor <= 1))
    throw DomainError(kind, fmt::format("steps = {} must be >= 1 and start_factor = {} in (0, 1].",
                                        steps, o.start_factor));
}

}  // namespace

LinearWarmup::LinearWarmup(Optimizer& optimizer, int64_t steps, const LinearWarmupOptions& options)
    : LinearWarmup(optimizer, steps, nullptr, options) {}

LinearWarmup::LinearWarmup(Optimizer& optimizer, int64_t steps, Schedule& then,
                           const LinearWarmupOptions& options)
    : LinearWarmup(optimizer, steps, &then, options) {}

LinearWarmup::LinearWarmup(Optimizer& optimizer, int64_t steps, Schedule* then,
                           const LinearWarmupOptions& options)
    : Schedule("linear_warmup", optimizer), steps_(steps), options_(options), then_(then) {
  check("linear_warmup", steps_, options_);
  if (then_ != nullptr && (then_->optimizer_ != &optimizer || then_ == this))
    throw DomainError("linear_warmup", "the schedule to run after the warm-up must be built on "
                                       "the same optimiser, before the warm-up.");
  apply();
}

void LinearWarmup::apply() {
  Optimizer& opt = optimizer();
  const double done = static_cast<double>(std::min(epoch_, steps_)) / static_cast<double>(steps_);
  const double factor = options_.start_factor + (1 - options_.start_factor) * done;
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) opt.set_lr(g, base_lrs_[g] * factor);
}

bool LinearWarmup::advance() {
  if (then_ != nullptr && then_->optimizer_ == nullptr) optimizer();  // GraphError
  ++epoch_;
  if (then_ == nullptr || epoch_ < steps_) {
    apply();
    return false;
  }
  if (epoch_ == steps_) {
    then_->restart();
    return false;
  }
  return true;
}

void LinearWarmup::step() {
  if (advance()) then_->step();
}

void LinearWarmup::step(double metric) {
  if (advance()) then_->step(metric);
}

NamedTensors LinearWarmup::state() const {
  NamedTensors s = Schedule::state();
  s.emplace_back("steps", Tensor::scalar(static_cast<double>(steps_)));
  s.emplace_back("start_factor", Tensor::scalar(options_.start_factor));
  return s;
}

void LinearWarmup::check_state(const NamedTensors& values) const {
  Schedule::check_state(values);
  check_count("steps", value(values, "steps"), 1);
  check("linear_warmup", 1, LinearWarmupOptions{.start_factor = value(values, "start_factor")});
}

void LinearWarmup::set_state(const NamedTensors& values) {
  Schedule::set_state(values);
  steps_ = static_cast<int64_t>(value(values, "steps"));
  options_.start_factor = value(values, "start_factor");
}

}  // namespace cholla::optim
