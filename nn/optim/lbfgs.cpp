#include "nn/optim/lbfgs.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "nn/optim/detail/line_search.hpp"

namespace cholla::optim {
namespace {

using Vector = std::vector<double>;

double dot(const Vector& a, const Vector& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
double max_abs(const Vector& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::fabs(x));
  return m;
}
double sum_abs(const Vector& a) {
  double s = 0;
  for (double x : a) s += std::fabs(x);
  return s;
}
void axpy(double alpha, const Vector& x, Vector& y) {  // y += alpha x
  for (std::size_t i = 0; i < y.size(); ++i) y[i] += alpha * x[i];
}

// Pairs with less curvature than this are dropped: 1 / (y's) would amplify rounding.
constexpr double kMinCurvature = 1e-10;
constexpr int kMaxLineSearchEvaluations = 25;
constexpr double kMaxCount = 0x1p53;  // counts beyond this are not exact doubles

int64_t resolved_max_eval(const LBFGSOptions& o) {
  return o.max_eval.value_or(o.max_iter <= INT64_MAX / 5 ? o.max_iter * 5 / 4 : o.max_iter);
}

void check(const LBFGSOptions& o) {
  auto finite_nonnegative = [](double x) { return x >= 0 && x < INFINITY; };
  if (!finite_nonnegative(o.lr))
    throw DomainError("lbfgs", fmt::format("lr = {} must be finite and >= 0 (1 is usual).", o.lr));
  if (o.max_iter < 1 || resolved_max_eval(o) < 1 || o.history_size < 1)
    throw DomainError("lbfgs", fmt::format("max_iter = {}, max_eval = {} and history_size = {} "
                                           "must be >= 1.",
                                           o.max_iter, resolved_max_eval(o), o.history_size));
  if (!finite_nonnegative(o.tolerance_grad) || !finite_nonnegative(o.tolerance_change))
    throw DomainError("lbfgs", fmt::format("tolerance_grad = {} and tolerance_change = {} must "
                                           "be finite and >= 0.",
                                           o.tolerance_grad, o.tolerance_change));
  if (o.line_search != LineSearch::None && o.line_search != LineSearch::StrongWolfe)
    throw DomainError("lbfgs", "line_search must be LineSearch::None or LineSearch::StrongWolfe.");
}

}  // namespace

LBFGS::LBFGS(std::vector<Tensor> params, const LBFGSOptions& options)
    : Optimizer("lbfgs", {std::move(params)}, {}), options_(options) {
  check(options_);
  options_.max_eval = resolved_max_eval(options_);
  for (const Tensor& p : this->params(0)) numel_ += p.numel();
  d_.assign(static_cast<std::size_t>(numel_), 0.0);
  prev_grad_ = d_;
}

LBFGSOptions& LBFGS::options(std::size_t group) {
  params(group);  // range check
  return options_;
}

void LBFGS::step() {
  throw DomainError("lbfgs", "step() needs the objective: call step(closure) with a function "
                             "that zeroes the gradients, computes the loss, calls backward and "
                             "returns the loss.");
}

LBFGS::Evaluation LBFGS::evaluate(const std::function<Tensor()>& closure) {
  Evaluation e;
  e.loss = closure();
  if (!e.loss.defined() || e.loss.numel() != 1)
    throw ShapeError("lbfgs",
                     fmt::format("the closure must return the loss, a tensor with one element; "
                                 "it returned {}.",
                                 e.loss.defined() ? "shape " + format_shape(e.loss.shape())
                                                  : std::string("an undefined tensor")),
                     "closure", {e.loss.defined() ? e.loss.shape() : Shape{}});
  e.f = e.loss.data()[0];
  e.grad.reserve(static_cast<std::size_t>(numel_));
  for (const Tensor& p : params(0)) {
    const Tensor g = p.grad();
    if (g.defined())
      e.grad.insert(e.grad.end(), g.data().begin(), g.data().end());
    else
      e.grad.resize(e.grad.size() + static_cast<std::size_t>(p.numel()), 0.0);
  }
  return e;
}

Vector LBFGS::flat_params() const {
  Vector x;
  x.reserve(static_cast<std::size_t>(numel_));
  for (const Tensor& p : params(0)) x.insert(x.end(), p.data().begin(), p.data().end());
  return x;
}

void LBFGS::set_params(const Vector& x0, double t, const Vector& d) {
  NoGrad guard;
  std::size_t k = 0;
  for (Tensor p : params(0))
    for (double& v : p.mutable_data()) v = x0[k] + t * d[k], ++k;
}

// Two-loop recursion (N&W Algorithm 7.4), pairs oldest first in s_, y_, rho_.
Vector LBFGS::direction(const Vector& grad) const {
  Vector q(grad.size());
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = -grad[i];
  const std::size_t k = s_.size();
  Vector alpha(k);
  for (std::size_t j = k; j-- > 0;) {
    alpha[j] = rho_[j] * dot(s_[j], q);
    axpy(-alpha[j], y_[j], q);
  }
  for (double& v : q) v *= hessian_scale_;
  for (std::size_t j = 0; j < k; ++j) axpy(alpha[j] - rho_[j] * dot(y_[j], q), s_[j], q);
  return q;
}

void LBFGS::remember(const Vector& grad) {
  Vector y(grad.size()), s(grad.size());
  for (std::size_t i = 0; i < grad.size(); ++i) y[i] = grad[i] - prev_grad_[i], s[i] = t_ * d_[i];
  const double ys = dot(y, s);
  if (!(ys > kMinCurvature)) return;
  while (static_cast<int64_t>(s_.size()) >= options_.history_size)
    s_.pop_front(), y_.pop_front(), rho_.pop_front();
  hessian_scale_ = ys / dot(y, y);  // N&W eq. 7.20
  s_.push_back(std::move(s));
  y_.push_back(std::move(y));
  rho_.push_back(1.0 / ys);
}

Tensor LBFGS::step(const std::function<Tensor()>& closure) {
  if (!closure) throw DomainError("lbfgs", "step(closure) was given an empty function.");
  check_options(0);
  const LBFGSOptions& o = options_;
  const int64_t max_eval = resolved_max_eval(o);

  Evaluation start = evaluate(closure);
  const Tensor first_loss = start.loss;
  if (!admit_gradients()) return first_loss;
  if (!std::isfinite(start.f) &&
      !refuse_nonfinite(fmt::format("the closure returned the loss {} at the starting point; "
                                    "nothing was changed. Check the objective there, or call "
                                    "set_nonfinite(NonFinite::Skip) to skip such steps.",
                                    start.f)))
    return first_loss;
  int64_t current = 1;
  evaluations_ += 1;
  double f = start.f;
  Vector g = std::move(start.grad);
  if (max_abs(g) <= o.tolerance_grad) return first_loss;

  for (int64_t iter = 1; iter <= o.max_iter; ++iter) {
    ++iterations_;
    if (iterations_ == 1) {
      for (std::size_t i = 0; i < g.size(); ++i) d_[i] = -g[i];
      s_.clear(), y_.clear(), rho_.clear();
      hessian_scale_ = 1;
    } else {
      remember(g);
      d_ = direction(g);
    }
    prev_grad_ = g;
    prev_loss_ = f;
    // The first step of all has no curvature to go by: at most lr in the 1-norm.
    t_ = iterations_ == 1 ? std::min(1.0, 1.0 / sum_abs(g)) * o.lr : o.lr;
    const double gtd = dot(g, d_);
    if (!(gtd < -o.tolerance_change)) break;  // not a descent direction (or no slope left)

    const Vector x0 = flat_params();
    int64_t used = 0;
    if (o.line_search == LineSearch::StrongWolfe) {
      Evaluation last;
      Vector kept = g;
      const detail::LineObjective phi{
          [&](double t) {
            set_params(x0, t, d_);
            last = evaluate(closure);
            return detail::LinePoint{t, last.f, dot(last.grad, d_)};
          },
          [&] { std::swap(kept, last.grad); }};
      const auto found = detail::strong_wolfe(
          phi, {0, f, gtd}, t_,
          {.max_evaluations = static_cast<int>(
               std::min<int64_t>(kMaxLineSearchEvaluations, max_eval - current)),
           .tolerance_change = o.tolerance_change,
           .direction_scale = max_abs(d_)});
      used = found.evaluations;
      t_ = found.point.t;
      f = found.point.f;
      g = std::move(kept);
      set_params(x0, t_, d_);
    } else {
      set_params(x0, t_, d_);
      if (iter != o.max_iter) {
        Evaluation e = evaluate(closure);
        used = 1;
        const std::size_t bad = count_nonfinite(e.grad);
        if ((bad != 0 || !std::isfinite(e.f)) && nonfinite() != NonFinite::Allow) {
          set_params(x0, 0, d_);
          current += used, evaluations_ += used;
          if (!refuse_nonfinite(fmt::format(
                  "without a line search, the step of size lr = {} reached a point where the "
                  "loss is {} and {} gradient entries are NaN or infinite; the parameters are "
                  "back at the last finite point. Lower lr or use LineSearch::StrongWolfe.",
                  o.lr, e.f, bad)))
            break;
        }
        f = e.f;
        g = std::move(e.grad);
      }
    }
    current += used;
    evaluations_ += used;

    if (iter == o.max_iter || current >= max_eval) break;
    if (max_abs(g) <= o.tolerance_grad) break;
    if (max_abs(d_) * std::fabs(t_) <= o.tolerance_change) break;
    if (std::fabs(f - prev_loss_) < o.tolerance_change) break;
  }
  return first_loss;
}

NamedTensors LBFGS::hyperparameters(std::size_t) const {
  const LBFGSOptions& o = options_;
  return {{"lr", Tensor::scalar(o.lr)},
          {"max_iter", Tensor::scalar(static_cast<double>(o.max_iter))},
          {"max_eval", Tensor::scalar(static_cast<double>(resolved_max_eval(o)))},
          {"tolerance_grad", Tensor::scalar(o.tolerance_grad)},
          {"tolerance_change", Tensor::scalar(o.tolerance_change)},
          {"history_size", Tensor::scalar(static_cast<double>(o.history_size))},
          {"line_search", Tensor::scalar(o.line_search == LineSearch::StrongWolfe ? 1.0 : 0.0)}};
}

namespace {

LBFGSOptions from_values(const NamedTensors& values) {
  auto count = [&](std::size_t k) { return static_cast<int64_t>(values[k].second.item()); };
  return {.lr = values[0].second.item(),
          .max_iter = count(1),
          .max_eval = count(2),
          .tolerance_grad = values[3].second.item(),
          .tolerance_change = values[4].second.item(),
          .history_size = count(5),
          .line_search = values[6].second.item() == 1 ? LineSearch::StrongWolfe : LineSearch::None};
}

}  // namespace

void LBFGS::set_hyperparameters(std::size_t, const NamedTensors& values) {
  options_ = from_values(values);
}

void LBFGS::check_options(std::size_t) const { check(options_); }

void LBFGS::check_hyperparameters(std::size_t, const NamedTensors& values) const {
  for (std::size_t k : {1, 2, 5}) {
    const double v = values[k].second.item();
    if (!(v >= 1 && v <= kMaxCount) || v != std::floor(v))
      throw DomainError("lbfgs", fmt::format("{} = {} must be a whole number >= 1.",
                                             values[k].first, v));
  }
  const double line_search = values[6].second.item();
  if (line_search != 0 && line_search != 1)
    throw DomainError("lbfgs", fmt::format("line_search = {} must be 0 (None) or 1 "
                                           "(StrongWolfe).",
                                           line_search));
  check(from_values(values));
}

namespace {

Tensor rows(const std::deque<Vector>& history, int64_t n) {
  Vector flat;
  for (const Vector& v : history) flat.insert(flat.end(), v.begin(), v.end());
  return Tensor::from({static_cast<int64_t>(history.size()), n}, std::move(flat));
}

std::deque<Vector> unrows(const Tensor& t) {
  std::deque<Vector> out;
  const auto n = static_cast<std::size_t>(t.shape()[1]);
  const auto v = t.data();
  for (std::size_t r = 0; r < static_cast<std::size_t>(t.shape()[0]); ++r)
    out.emplace_back(v.begin() + static_cast<std::ptrdiff_t>(r * n),
                     v.begin() + static_cast<std::ptrdiff_t>((r + 1) * n));
  return out;
}

}  // namespace

// The order here is the order of `entries` in check_extra_state and set_extra_state.
NamedTensors LBFGS::extra_state() const {
  return {{"direction", Tensor::from({numel_}, d_)},
          {"step_size", Tensor::scalar(t_)},
          {"prev_grad", Tensor::from({numel_}, prev_grad_)},
          {"prev_loss", Tensor::scalar(prev_loss_)},
          {"hessian_scale", Tensor::scalar(hessian_scale_)},
          {"history_s", rows(s_, numel_)},
          {"history_y", rows(y_, numel_)},
          {"iterations", Tensor::scalar(static_cast<double>(iterations_))},
          {"evaluations", Tensor::scalar(static_cast<double>(evaluations_))}};
}

void LBFGS::check_extra_state(const NamedTensors& entries) const {
  auto refuse = [](const std::string& name, const std::string& what) {
    throw IoError("lbfgs", fmt::format("optimiser state entry 'lbfgs.{}' {}.", name, what));
  };
  const Shape vector{numel_}, scalar{};
  for (const auto& [name, t] : entries) {
    const bool history = name.starts_with("history_");
    const Shape expected = name == "direction" || name == "prev_grad" ? vector : scalar;
    if (history ? t.dim() != 2 || t.shape()[1] != numel_ : t.shape() != expected)
      refuse(name, fmt::format("has shape {}, expected {}", format_shape(t.shape()),
                               history ? fmt::format("[k, {}]", numel_) : format_shape(expected)));
    if (const std::size_t bad = count_nonfinite(t.data()); bad != 0)
      refuse(name, fmt::format("has {} NaN or infinite values", bad));
  }
  const Tensor& s = entries[5].second;
  const Tensor& y = entries[6].second;
  if (s.shape() != y.shape())
    refuse("history_y", fmt::format("has shape {} but history_s has {}", format_shape(y.shape()),
                                    format_shape(s.shape())));
  // Every stored pair had positive curvature; a pair without it would make H indefinite.
  const auto sv = s.data(), yv = y.data();
  const auto n = static_cast<std::size_t>(numel_);
  for (std::size_t r = 0; r * n < sv.size(); ++r) {
    double ys = 0;
    for (std::size_t i = r * n; i < (r + 1) * n; ++i) ys += sv[i] * yv[i];
    if (!(ys > kMinCurvature))
      refuse("history_y", fmt::format("row {} has y's = {}; it must be > {}", r, ys, kMinCurvature));
  }
  if (!(entries[4].second.item() > 0))
    refuse("hessian_scale", fmt::format("is {}; it must be > 0", entries[4].second.item()));
  for (std::size_t k : {7, 8}) {
    const double v = entries[k].second.item();
    if (!(v >= 0 && v <= kMaxCount) || v != std::floor(v))
      refuse(entries[k].first, fmt::format("is {}, not a count", v));
  }
}

void LBFGS::set_extra_state(const NamedTensors& entries) {
  d_ = entries[0].second.to_vector();
  t_ = entries[1].second.item();
  prev_grad_ = entries[2].second.to_vector();
  prev_loss_ = entries[3].second.item();
  hessian_scale_ = entries[4].second.item();
  s_ = unrows(entries[5].second);
  y_ = unrows(entries[6].second);
  rho_.clear();
  for (std::size_t j = 0; j < s_.size(); ++j) rho_.push_back(1.0 / dot(y_[j], s_[j]));
  iterations_ = static_cast<int64_t>(entries[7].second.item());
  evaluations_ = static_cast<int64_t>(entries[8].second.item());
}

}  // namespace cholla::optim
