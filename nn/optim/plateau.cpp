#include "nn/optim/plateau.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace cholla::optim {
namespace {

constexpr const char* kKind = "reduce_lr_on_plateau";

double worst(PlateauMode mode) { return mode == PlateauMode::Min ? INFINITY : -INFINITY; }

void check(const ReduceLROnPlateauOptions& o) {
  auto finite_nonnegative = [](double x) { return x >= 0 && x < INFINITY; };
  if (!(o.factor > 0 && o.factor < 1))
    throw DomainError(kKind, fmt::format("factor = {} must be in (0, 1).", o.factor));
  if (o.patience < 0 || o.cooldown < 0)
    throw DomainError(kKind, fmt::format("patience = {} and cooldown = {} must be >= 0.",
                                         o.patience, o.cooldown));
  if (!finite_nonnegative(o.threshold) || !finite_nonnegative(o.min_lr) ||
      !finite_nonnegative(o.eps))
    throw DomainError(kKind, fmt::format("threshold = {}, min_lr = {} and eps = {} must be finite "
                                         "and >= 0.",
                                         o.threshold, o.min_lr, o.eps));
}

}  // namespace

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, const ReduceLROnPlateauOptions& options)
    : Schedule(kKind, optimizer), options_(options), best_(worst(options.mode)) {
  check(options_);
}

bool ReduceLROnPlateau::improves(double metric) const {
  const ReduceLROnPlateauOptions& o = options_;
  const bool relative = o.threshold_mode == ThresholdMode::Relative;
  if (o.mode == PlateauMode::Min)
    return metric < (relative ? best_ * (1 - o.threshold) : best_ - o.threshold);
  return metric > (relative ? best_ * (1 + o.threshold) : best_ + o.threshold);
}

void ReduceLROnPlateau::step(double metric) {
  if (std::isnan(metric))
    throw DomainError(kKind, "step(metric): the metric is NaN; nothing was changed. Check the "
                             "validation loss.");
  Optimizer& opt = optimizer();
  ++epoch_;
  if (improves(metric)) {
    best_ = metric;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_epochs_ = 0;
  }
  if (bad_epochs_ <= options_.patience) return;
  for (std::size_t g = 0; g < opt.num_groups(); ++g) {
    const double old = opt.lr(g), reduced = std::max(old * options_.factor, options_.min_lr);
    if (old - reduced > options_.eps) opt.set_lr(g, reduced);
  }
  cooldown_left_ = options_.cooldown;
  bad_epochs_ = 0;
}

void ReduceLROnPlateau::apply() {
  Optimizer& opt = optimizer();
  for (std::size_t g = 0; g < base_lrs_.size(); ++g) opt.set_lr(g, base_lrs_[g]);
  best_ = worst(options_.mode);
  bad_epochs_ = cooldown_left_ = 0;
}

NamedTensors ReduceLROnPlateau::state() const {
  const ReduceLROnPlateauOptions& o = options_;
  NamedTensors s = Schedule::state();
  auto add = [&](const char* name, double v) { s.emplace_back(name, Tensor::scalar(v)); };
  add("mode", o.mode == PlateauMode::Max ? 1 : 0);
  add("factor", o.factor);
  add("patience", static_cast<double>(o.patience));
  add("threshold", o.threshold);
  add("threshold_mode", o.threshold_mode == ThresholdMode::Absolute ? 1 : 0);
  add("cooldown", static_cast<double>(o.cooldown));
  add("min_lr", o.min_lr);
  add("eps", o.eps);
  add("best", best_);
  add("bad_epochs", static_cast<double>(bad_epochs_));
  add("cooldown_left", static_cast<double>(cooldown_left_));
  return s;
}

namespace {

ReduceLROnPlateauOptions from_values(const NamedTensors& v) {
  auto at = [&](const char* name) { return Schedule::value(v, name); };
  auto count = [&](const char* name) { return static_cast<int64_t>(at(name)); };
  return {.mode = at("mode") == 1 ? PlateauMode::Max : PlateauMode::Min,
          .factor = at("factor"),
          .patience = count("patience"),
          .threshold = at("threshold"),
          .threshold_mode = at("threshold_mode") == 1 ? ThresholdMode::Absolute
                                                      : ThresholdMode::Relative,
          .cooldown = count("cooldown"),
          .min_lr = at("min_lr"),
          .eps = at("eps")};
}

}  // namespace

void ReduceLROnPlateau::check_state(const NamedTensors& values) const {
  Schedule::check_state(values);
  for (const char* flag : {"mode", "threshold_mode"}) {
    const double v = value(values, flag);
    if (v != 0 && v != 1)
      throw DomainError(kKind, fmt::format("{} = {} must be 0 or 1.", flag, v));
  }
  for (const char* name : {"patience", "cooldown", "bad_epochs", "cooldown_left"})
    check_count(name, value(values, name), 0);
  if (std::isnan(value(values, "best")))
    throw DomainError(kKind, "best = nan is not a metric value.");
  check(from_values(values));
}

void ReduceLROnPlateau::set_state(const NamedTensors& values) {
  Schedule::set_state(values);
  options_ = from_values(values);
  best_ = value(values, "best");
  bad_epochs_ = static_cast<int64_t>(value(values, "bad_epochs"));
  cooldown_left_ = static_cast<int64_t>(value(values, "cooldown_left"));
}

}  // namespace cholla::optim
