#include "autodiff/gradcheck.hpp"

#include <cmath>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/rng.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"

namespace cholla {
namespace {

// Weights of magnitude 0.5..1.5 with random signs: no output element is ignored, none
// dominates, and errors of either sign cannot cancel systematically.
Tensor random_weights(const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  Tensor w = Tensor::empty(shape);
  for (double& v : w.mutable_data()) v = (rng.uniform() < 0.5 ? -1.0 : 1.0) * rng.uniform(0.5, 1.5);
  return w;
}

Tensor scalarize(const Tensor& y, uint64_t seed) {
  if (!y.defined()) throw GraphError("gradcheck", "the function returned an undefined tensor.");
  if (y.numel() == 1) return sum(y);
  return sum(y * random_weights(y.shape(), seed));
}

Structure structure_of(const GradcheckOptions& o, size_t i) {
  return i < o.structure.size() ? o.structure[i] : Structure::General;
}

// The elements perturbed for one input, as (flat position, mirrored position or -1).
std::vector<std::pair<int64_t, int64_t>> perturbations(const Shape& shape, Structure s) {
  std::vector<std::pair<int64_t, int64_t>> out;
  const int64_t total = numel(shape);
  if (s == Structure::General || shape.size() < 2) {
    for (int64_t k = 0; k < total; ++k) out.emplace_back(k, -1);
    return out;
  }
  const int64_t m = shape[shape.size() - 2], n = shape[shape.size() - 1];
  if (m != n)
    throw ShapeError("gradcheck", fmt::format("a structured input must be square, got shape {}.",
                                              format_shape(shape)),
                     "inputs", {shape});
  for (int64_t b = 0; b < total / std::max<int64_t>(n * n, 1); ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        const int64_t at = b * n * n + i * n + j;
        if (s == Structure::LowerTriangular && j <= i) out.emplace_back(at, -1);
        if (s == Structure::UpperTriangular && j >= i) out.emplace_back(at, -1);
        if (s == Structure::Symmetric && j <= i)
          out.emplace_back(at, i == j ? -1 : b * n * n + j * n + i);
      }
  return out;
}

double evaluate(const TensorFunction& f, const std::vector<Tensor>& xs, uint64_t seed) {
  NoGrad guard;
  return scalarize(f(xs), seed).item();
}

}  // namespace

GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  std::vector<Tensor> leaves;
  for (const Tensor& x : inputs) {
    Tensor leaf = x.clone();
    leaf.requires_grad(true);
    leaves.push_back(leaf);
  }
  std::vector<Tensor> analytic;
  {
    EnableGrad on;
    Tensor s = scalarize(f(leaves), options.seed);
    analytic = s.requires_grad() ? grad({s}, leaves, {.allow_unused = true})
                                 : std::vector<Tensor>();
    for (size_t i = analytic.size(); i < leaves.size(); ++i)
      analytic.push_back(Tensor::zeros(leaves[i].shape()));
  }

  GradcheckResult result;
  int64_t failures = 0, checked = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Structure s = structure_of(options, i);
    const auto g = analytic[i].data();
    for (auto [at, mirror] : perturbations(inputs[i].shape(), s)) {
      std::vector<Tensor> plus, minus;
      for (const Tensor& x : inputs) {
        plus.push_back(x.clone());
        minus.push_back(x.clone());
      }
      for (int64_t k : {at, mirror}) {
        if (k < 0) continue;
        plus[i].mutable_data()[static_cast<size_t>(k)] += options.eps;
        minus[i].mutable_data()[static_cast<size_t>(k)] -= options.eps;
      }
      const double numeric =
          (evaluate(f, plus, options.seed) - evaluate(f, minus, options.seed)) / (2 * options.eps);
      const double a = g[static_cast<size_t>(at)] + (mirror >= 0 ? g[static_cast<size_t>(mirror)] : 0.0);
      const double error = std::abs(a - numeric) / (options.atol + options.rtol * std::abs(numeric));
      ++checked;
      const bool bad = !(error <= 1.0);  // NaN fails
      failures += bad ? 1 : 0;
      if (bad && (result.ok || error > result.max_error || std::isnan(error))) {
        result.report = fmt::format(
            "input {} (shape {}), element {}{}: analytic {:.10g}, numeric {:.10g}, |difference| "
            "{:.3g} exceeds atol {:.1g} + rtol {:.1g} * |numeric|",
            i, format_shape(inputs[i].shape()), format_shape(unravel_index(at, inputs[i].shape())),
            mirror >= 0 ? " (perturbed symmetrically)" : "", a, numeric, std::abs(a - numeric),
            options.atol, options.rtol);
      }
      if (bad) result.ok = false;
      if (!(error <= result.max_error)) result.max_error = error;
    }
  }
  if (!result.ok) {
    result.report = fmt::format("gradcheck failed on {} of {} elements; worst: {}", failures,
                                checked, result.report);
    if (options.throw_on_failure) throw GraphError("gradcheck", result.report);
  } else {
    result.report = fmt::format("gradcheck passed on {} elements (worst error ratio {:.3g})",
                                checked, result.max_error);
  }
  return result;
}

GradcheckResult gradgradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& options) {
  std::vector<Tensor> directions;
  for (size_t i = 0; i < inputs.size(); ++i)
    directions.push_back(random_weights(inputs[i].shape(), options.seed + 1000 + i));
  // h(x) = sum_i <v_i, d s / d x_i>. When the caller records (the analytic pass of gradcheck)
  // the inner gradient is built with create_graph; otherwise only its value is needed.
  TensorFunction h = [&](const std::vector<Tensor>& xs) {
    const bool outer = grad_enabled();
    EnableGrad on;
    std::vector<Tensor> leaves = xs;
    for (Tensor& x : leaves)
      if (!x.requires_grad()) x = x.detach().requires_grad(true);
    Tensor s = scalarize(f(leaves), options.seed);
    if (!s.requires_grad()) return Tensor::zeros({});
    auto g = grad({s}, leaves, {.create_graph = outer, .allow_unused = true});
    Tensor total = Tensor::zeros({});
    for (size_t i = 0; i < g.size(); ++i) total = total + sum(g[i] * directions[i]);
    return outer ? total : total.detach();
  };
  GradcheckOptions inner = options;
  inner.seed = options.seed + 7;
  GradcheckResult r = gradcheck(h, inputs, inner);
  r.report = "gradgradcheck: " + r.report;
  return r;
}

}  // namespace cholla
