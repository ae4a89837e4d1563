// optim::ReduceLROnPlateau: divides the learning rates when a metric stops improving, with
// PyTorch's rules. After each epoch, step(metric):
//   the metric improves on the best so far when it is below best (1 - threshold) (mode Min,
//   relative threshold; best - threshold with an absolute one; above for mode Max);
//   otherwise the epoch is bad. During `cooldown` epochs after a reduction bad epochs are not
//   counted. When more than `patience` bad epochs in a row have passed, every group's lr
//   becomes max(lr * factor, min_lr) (unless that changes it by eps or less).
// A NaN metric is a DomainError and changes nothing. The state (best, counters, options) is
// saved with the optimiser's (schedule.hpp).
#pragma once

#include "nn/optim/schedule.hpp"

namespace cholla::optim {

enum class PlateauMode { Min, Max };
enum class ThresholdMode { Relative, Absolute };

struct ReduceLROnPlateauOptions {
  PlateauMode mode = PlateauMode::Min;
  double factor = 0.1;  // in (0, 1)
  int64_t patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::Relative;
  int64_t cooldown = 0;
  double min_lr = 0.0;
  double eps = 1e-8;
};

class ReduceLROnPlateau : public Schedule {
 public:
  ReduceLROnPlateau(Optimizer& optimizer, const ReduceLROnPlateauOptions& options = {});
  using Schedule::step;
  void step(double metric) override;

  double best() const { return best_; }
  int64_t bad_epochs() const { return bad_epochs_; }

 protected:
  NamedTensors state() const override;
  void check_state(const NamedTensors& values) const override;
  void set_state(const NamedTensors& values) override;
  void apply() override;  // back to the base learning rates, counters reset

 private:
  bool improves(double metric) const;
  ReduceLROnPlateauOptions options_;
  double best_;
  int64_t bad_epochs_ = 0, cooldown_left_ = 0;
};

}  // namespace cholla::optim
