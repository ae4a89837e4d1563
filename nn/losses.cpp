#include "nn/losses.hpp"

#include <fmt/core.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "autodiff/checks.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"

namespace cholla::nn {
namespace {

Tensor reduce(const Tensor& losses, Reduction reduction) {
  switch (reduction) {
    case Reduction::Mean:
      return mean(losses);
    case Reduction::Sum:
      return sum(losses);
    case Reduction::None:
      return losses;
  }
  throw DomainError("loss", "unknown Reduction value.");
}

// One-hot rows [N, C] from integer class indices, checked for range and integrality.
Tensor one_hot(const Tensor& targets, int64_t classes) {
  std::vector<double> values(static_cast<size_t>(targets.numel() * classes), 0.0);
  const auto t = targets.data();
  for (size_t i = 0; i < t.size(); ++i) {
    const double c = t[i];
    if (!(c >= 0 && c < static_cast<double>(classes)) || c != std::floor(c))
      throw DomainError("cross_entropy",
                        fmt::format("target {} is {}, not a class index in [0, {}). Pass integer "
                                    "class indices, or probabilities shaped like the logits.",
                                    i, c, classes),
                        "targets");
    values[i * static_cast<size_t>(classes) + static_cast<size_t>(c)] = 1.0;
  }
  Shape shape = targets.shape();
  shape.push_back(classes);
  return Tensor::from(shape, std::move(values));
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, const MseOptions& options) {
  check_defined(input, "mse_loss", "input");
  check_defined(target, "mse_loss", "target");
  if (input.shape() != target.shape())
    throw ShapeError("mse_loss",
                     fmt::format("input {} and target {} differ in shape. Reshape one of them "
                                 "(broadcasting here usually hides a bug).",
                                 format_shape(input.shape()), format_shape(target.shape())),
                     "target", {input.shape(), target.shape()});
  return reduce(square(input - target), options.reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                     const CrossEntropyOptions& options) {
  check_defined(logits, "cross_entropy", "logits");
  check_defined(targets, "cross_entropy", "targets");
  if (logits.dim() < 1 || logits.dim() > 2 || logits.size(-1) < 1)
    throw ShapeError("cross_entropy",
                     fmt::format("logits have shape {}; expected [N, C] or [C] with C >= 1.",
                                 format_shape(logits.shape())),
                     "logits", {logits.shape()});
  Shape per_sample = logits.shape();
  per_sample.pop_back();
  Tensor probs;
  if (targets.shape() == logits.shape()) {
    probs = targets;
  } else if (targets.shape() == per_sample) {
    probs = one_hot(targets, logits.size(-1));
  } else {
    throw ShapeError("cross_entropy",
                     fmt::format("targets of shape {} fit neither class indices {} nor "
                                 "probabilities {} for logits {}.",
                                 format_shape(targets.shape()), format_shape(per_sample),
                                 format_shape(logits.shape()), format_shape(logits.shape())),
                     "targets", {logits.shape(), targets.shape()});
  }
  Tensor losses = -sum(probs * log_softmax(logits, -1), {-1});
  return reduce(losses, options.reduction);
}

Tensor gaussian_nll(const Tensor& input, const Tensor& target, const Tensor& var,
                    const GaussianNllOptions& options) {
  check_defined(input, "gaussian_nll", "input");
  check_defined(target, "gaussian_nll", "target");
  check_defined(var, "gaussian_nll", "var");
  if (input.shape() != target.shape())
    throw ShapeError("gaussian_nll",
                     fmt::format("input {} and target {} differ in shape.",
                                 format_shape(input.shape()), format_shape(target.shape())),
                     "target", {input.shape(), target.shape()});
  Tensor v = var;
  Shape last_one = input.shape(), last_dropped = input.shape();
  if (!input.shape().empty()) {
    last_one.back() = 1;
    last_dropped.pop_back();
  }
  if (var.shape() == last_dropped && var.shape() != input.shape() && !input.shape().empty()) {
    v = unsqueeze(var, -1);
  } else if (var.shape() != input.shape() && var.shape() != last_one) {
    throw ShapeError("gaussian_nll",
                     fmt::format("var of shape {} does not fit input {}: pass {}, {} or {}.",
                                 format_shape(var.shape()), format_shape(input.shape()),
                                 format_shape(input.shape()), format_shape(last_one),
                                 format_shape(last_dropped)),
                     "var", {input.shape(), var.shape()});
  }
  if (!(options.eps > 0))
    throw DomainError("gaussian_nll", fmt::format("eps = {} must be positive.", options.eps));
  for (double x : var.data())
    if (!(x >= 0))
      throw DomainError("gaussian_nll",
                        fmt::format("var holds {}; variances must be non-negative. Produce them "
                                    "with softplus or exp.",
                                    x),
                        "var");
  // max(v, eps) in value, identity in gradient: v + (clamped - v) with the correction detached.
  Tensor clamped = v + (maximum(v, Tensor::scalar(options.eps)) - v).detach();
  Tensor losses = 0.5 * (log(clamped) + square(input - target) / clamped);
  if (options.full) losses = losses + 0.5 * std::log(2.0 * std::numbers::pi);
  return reduce(losses, options.reduction);
}

}  // namespace cholla::nn
