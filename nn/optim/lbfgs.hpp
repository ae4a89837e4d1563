// optim::LBFGS: limited-memory BFGS with an optional strong-Wolfe line search, for full-batch
// problems (Gaussian-process hyperparameters, small models fitted to convergence).
//
//   optim::LBFGS opt(model.parameters(), {.max_iter = 100});
//   Tensor loss = opt.step([&] {
//     opt.zero_grad();
//     Tensor l = nll(model);
//     l.backward();
//     return l;
//   });
//
// One step(closure) runs up to max_iter iterations (and max_eval calls of the closure), as
// torch.optim.LBFGS does. Each iteration takes the direction d = -H g from the two-loop
// recursion over the last history_size pairs (s = x_{k+1} - x_k, y = g_{k+1} - g_k, pairs with
// y's < 1e-10 dropped), scaled by H0 = s'y / y'y (Nocedal & Wright, Algorithm 7.4 and eq. 7.20).
// The step along d is found by a strong-Wolfe line search (detail/line_search.hpp), or is lr with
// LineSearch::None; the very first step of all is lr * min(1, 1 / |g|_1).
//
// The iterations stop early when max |g| <= tolerance_grad, or when the step (max |t d|) or the
// change of the loss falls under tolerance_change. The history persists across step() calls
// and is part of state_dict().
//
// NaN and infinities: a non-finite loss or gradient at the point where step() starts follows
// the optimiser's NonFinite policy (default: DomainError, nothing changed). During the line
// search a non-finite trial counts as too long a step and the search backs off. Without a line
// search, a non-finite new point under Throw or Skip puts the parameters back at the last
// finite point of this step, then raises or counts the skipped step; Allow keeps going.
//
// All parameters form one group: LBFGS has no per-group options.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

#include "nn/optim/optimizer.hpp"

namespace cholla::optim {

enum class LineSearch {
  None,         // fixed step lr
  StrongWolfe,  // N&W Algorithms 3.5 and 3.6, c1 = 1e-4, c2 = 0.9, at most 25 evaluations
};

struct LBFGSOptions {
  double lr = 1.0;
  int64_t max_iter = 20;                       // iterations per step()
  std::optional<int64_t> max_eval = std::nullopt;  // closure calls per step(); max_iter * 5 / 4
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-9;
  int64_t history_size = 100;
  LineSearch line_search = LineSearch::StrongWolfe;
};

class LBFGS : public Optimizer {
 public:
  LBFGS(std::vector<Tensor> params, const LBFGSOptions& options = {});

  // Runs the iterations; `closure` zeroes the gradients, computes the loss, calls backward and
  // returns the loss (a tensor with one element). Returns the loss of the first evaluation.
  Tensor step(const std::function<Tensor()>& closure);
  // LBFGS evaluates the objective several times per step: this is a DomainError saying so.
  void step() override;

  // The options (writable between steps; max_eval is filled in).
  LBFGSOptions& options(std::size_t group = 0);
  // Totals since construction (or as loaded): iterations, and calls of the closure.
  int64_t iterations() const { return iterations_; }
  int64_t evaluations() const { return evaluations_; }

 protected:
  NamedTensors hyperparameters(std::size_t group) const override;
  void set_hyperparameters(std::size_t group, const NamedTensors& values) override;
  void check_options(std::size_t group) const override;
  void check_hyperparameters(std::size_t group, const NamedTensors& values) const override;
  double& lr_slot(std::size_t) override { return options_.lr; }
  double lr_slot(std::size_t) const override { return options_.lr; }
  NamedTensors extra_state() const override;
  void check_extra_state(const NamedTensors& entries) const override;
  void set_extra_state(const NamedTensors& entries) override;

 private:
  using Vector = std::vector<double>;
  struct Evaluation {
    Tensor loss;
    double f = 0;
    Vector grad;
  };

  Evaluation evaluate(const std::function<Tensor()>& closure);
  Vector flat_params() const;
  void set_params(const Vector& x0, double t, const Vector& d);  // x = x0 + t d
  Vector direction(const Vector& grad) const;                    // -H grad
  void remember(const Vector& grad);  // the pair (s, y) of the last iteration, if curved

  LBFGSOptions options_;
  int64_t numel_ = 0;
  // State (torch's names in parentheses): the history of pairs, oldest first (old_stps,
  // old_dirs); H0's scale (H_diag); the last direction and step (d, t); the gradient and loss
  // where the last iteration started (prev_flat_grad, prev_loss).
  std::deque<Vector> s_, y_;
  std::deque<double> rho_;  // 1 / (y's) of each pair, recomputed on load
  double hessian_scale_ = 1;
  Vector d_, prev_grad_;
  double t_ = 0, prev_loss_ = 0;
  int64_t iterations_ = 0, evaluations_ = 0;
};

}  // namespace cholla::optim
