#include "distributions/failure_policy.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "distributions/detail/factorise.hpp"
#include "distributions/detail/validation.hpp"
#include "linalg/linalg.hpp"

namespace cholla::dist {
namespace {

// Smallest diagonal entry over the usable factors: how close to singular training is getting.
double smallest_pivot(const Tensor& L, const Tensor& mask) {
  const int64_t d = L.size(-1);
  const double* p = L.data().data();
  const double* m = mask.data().data();
  double smallest = std::numeric_limits<double>::infinity();
  for (int64_t b = 0; b < mask.numel(); ++b)
    if (m[b] != 0.0)
      for (int64_t i = 0; i < d; ++i) smallest = std::min(smallest, p[b * d * d + i * d + i]);
  return smallest;
}

// What to do instead. A Jitter that gave up is not advised again: the remedies are a larger or
// relative jitter, masking, or a factor parameterisation.
std::string advice(const char* arg, const FailurePolicy& policy) {
  const std::string factor =
      "Parameterise by a Cholesky factor instead (MultivariateNormal::from_scale_tril with "
      "transforms::fill_scale_tril keeps it valid by construction)";
  const std::string data = fmt::format(
      "(a {} estimated from data is singular when a feature is constant or features are collinear: "
      "add shrinkage)",
      arg);
  if (std::holds_alternative<Jitter>(policy))
    return fmt::format("{}, raise Jitter's start or max_tries (or set .relative = true for a matrix "
                       "with large entries), or pass {{.on_failure = Mask{{}}}} to skip such elements "
                       "{}.",
                       factor, data);
  return fmt::format("{}, or pass {{.on_failure = Jitter{{}}}} or Mask{{}} to keep training {}.", factor, data);
}

// batch + [1, 1]: a per-element scalar broadcast over each matrix.
Shape per_matrix(Shape batch) {
  batch.push_back(1);
  batch.push_back(1);
  return batch;
}

// amount[b] * I for every element b of the batch.
Tensor scaled_identities(const Shape& batch, const std::vector<double>& amount, int64_t d) {
  return reshape(Tensor::from(batch, amount), per_matrix(batch)) * Tensor::eye(d);
}

Tensor identity_like_batch(const Shape& batch, int64_t d) {
  Shape s = batch;
  s.push_back(d);
  s.push_back(d);
  return expand(Tensor::eye(d), s);
}

// Per-element scale for jitter: mean |diagonal|, so the jitter is relative to the matrix.
std::vector<double> diagonal_scales(const Tensor& A) {
  NoGrad guard;
  Tensor diag = linalg::extractdiag(A.detach());
  const int64_t d = diag.size(-1);
  std::vector<double> scale(static_cast<size_t>(diag.numel() / d), 0.0);
  for (int64_t i = 0; i < diag.numel(); ++i) scale[static_cast<size_t>(i / d)] += std::abs(diag.data()[static_cast<size_t>(i)]) / static_cast<double>(d);
  for (double& s : scale)
    if (!(s > 0.0)) s = 1.0;
  return scale;
}

}  // namespace

int64_t FactorReport::usable() const {
  int64_t n = 0;
  for (double m : mask.data()) n += m != 0.0 ? 1 : 0;
  return n;
}

std::string FactorReport::summary() const {
  const int64_t total = numel(batch_shape);
  if (failed.empty())
    return fmt::format("all {} matrices positive definite; smallest pivot {:.3g}", total, min_pivot);
  std::string s = fmt::format("{} of {} matrices not positive definite (first: {}, leading minor {})",
                              failed.size(), total, describe_batch_element(failed[0], batch_shape),
                              failed_minor[0]);
  if (!jitter.empty())
    s += fmt::format("; jitter up to {:.2g} applied", *std::max_element(jitter.begin(), jitter.end()));
  else
    s += fmt::format("; {} masked", failed.size());
  if (usable() == 0) return s + "; no usable matrix left";
  return s + fmt::format("; smallest pivot {:.3g}", min_pivot);
}

Factorisation factorise(const Tensor& A, const FailurePolicy& policy, const char* who, const char* arg) {
  Factorisation f;
  const Shape batch(A.shape().begin(), A.shape().end() - 2);
  const int64_t d = A.size(-1), count = numel(batch);
  f.report.batch_shape = batch;
  f.report.mask = Tensor::ones(batch);

  if (std::holds_alternative<Throw>(policy)) {
    try {
      f.factor = linalg::potrf(A);
    } catch (const NotPositiveDefinite& e) {
      throw NotPositiveDefinite(
          who,
          fmt::format("{} is not positive definite{} (leading minor of order {}). {}", arg,
                      validation::in_batch_element(e.flat_batch_index(), batch), e.minor_order(),
                      advice(arg, policy)),
          arg, {A.shape()}, e.batch_index(), e.flat_batch_index(), e.minor_order());
    }
    f.report.min_pivot = smallest_pivot(f.factor, f.report.mask);
    return f;
  }

  std::vector<double> info;
  {
    NoGrad guard;
    info = linalg::potrf_ex(A.detach()).second.to_vector();
  }
  for (int64_t b = 0; b < count; ++b)
    if (info[static_cast<size_t>(b)] != 0) {
      f.report.failed.push_back(b);
      f.report.failed_minor.push_back(static_cast<int64_t>(info[static_cast<size_t>(b)]));
    }
  Tensor fixed = A;
  if (!f.report.failed.empty() && std::holds_alternative<Mask>(policy)) {
    Tensor keep = Tensor::ones(batch);
    for (int64_t b : f.report.failed) keep.mutable_data()[static_cast<size_t>(b)] = 0.0;
    f.report.mask = keep;
    // Masked elements see the identity: finite factor, zero gradient to A there.
    fixed = where(reshape(keep, per_matrix(batch)), A, identity_like_batch(batch, d));
  } else if (!f.report.failed.empty()) {
    const Jitter& j = std::get<Jitter>(policy);
    const auto scales = j.relative ? diagonal_scales(A) : std::vector<double>(static_cast<size_t>(count), 1.0);
    std::vector<double> amount(static_cast<size_t>(count), 0.0);
    std::vector<int64_t> pending = f.report.failed;
    for (int attempt = 0; attempt < j.max_tries && !pending.empty(); ++attempt) {
      for (int64_t b : pending)
        amount[static_cast<size_t>(b)] = j.start * std::pow(j.factor, attempt) * scales[static_cast<size_t>(b)];
      std::vector<double> now;
      {
        NoGrad guard;
        now = linalg::potrf_ex(A.detach() + scaled_identities(batch, amount, d)).second.to_vector();
      }
      std::vector<int64_t> still;
      for (int64_t b : pending)
        if (now[static_cast<size_t>(b)] != 0) still.push_back(b);
      pending = still;
    }
    if (!pending.empty()) {
      const int64_t b = pending[0];
      throw NotPositiveDefinite(
          who,
          fmt::format("{} is not positive definite{} even after {} jitter attempts (last "
                      "jitter {:.3g}). It may be far from positive definite or contain huge "
                      "values. {}",
                      arg, validation::in_batch_element(b, batch), j.max_tries, amount[static_cast<size_t>(b)],
                      advice(arg, policy)),
          arg, {A.shape()}, unravel_index(b, batch), b, 0);
    }
    for (int64_t b : f.report.failed) f.report.jitter.push_back(amount[static_cast<size_t>(b)]);
    fixed = A + scaled_identities(batch, amount, d);  // recorded: the gradient reaches A
  }
  f.factor = linalg::potrf(fixed);
  f.report.min_pivot = smallest_pivot(f.factor, f.report.mask);
  return f;
}

}  // namespace cholla::dist
