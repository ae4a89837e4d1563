#include "distributions/detail/validation.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <span>

#include "autodiff/detail/finite.hpp"
#include "autodiff/shape.hpp"
#include "distributions/detail/batch_dims.hpp"
#include "distributions/detail/mvn_simd.hpp"

namespace cholla::dist::validation {
namespace {

// DomainError for the first non-finite value, naming the batch element of `block`-sized items.
void check_finite(const Tensor& t, int64_t block, const Shape& batch, const char* who, const char* arg) {
  const auto v = t.data();
  if (detail::simd_all_finite(v.data(), t.numel())) return;  // vector pre-check; locate only on failure
  const int64_t at = first_non_finite(v);
  if (at < 0) return;
  const int64_t b = at / std::max<int64_t>(block, 1);
  throw DomainError(who,
                    fmt::format("{} contains {} in {}. Parameters must be finite under every "
                                "failure policy; a NaN usually comes from an exploding "
                                "gradient or a 0/0 upstream.",
                                arg, std::isnan(v[static_cast<size_t>(at)]) ? "NaN" : "Inf",
                                batch.empty() ? std::string("its only element")
                                              : fmt::format("batch element {} (index {})", b,
                                                            format_shape(unravel_index(b, batch)))),
                    arg, {t.shape()}, unravel_index(b, batch));
}

Shape drop_last(const Shape& s, size_t n) { return Shape(s.begin(), s.end() - static_cast<std::ptrdiff_t>(n)); }

}  // namespace

std::string in_batch_element(int64_t flat, const Shape& batch) {
  return batch.empty() ? std::string() : " in " + describe_batch_element(flat, batch);
}

namespace {

std::string shape_of(const Tensor& t) { return t.defined() ? format_shape(t.shape()) : "undefined"; }

// loc [..., d] against a parameter whose batch is `arg_batch`: the event sizes agree and the
// batches broadcast (equal ones, the common case, without building shapes).
void check_loc_against(const Tensor& loc, const Tensor& arg_tensor, std::span<const int64_t> arg_batch, int64_t d,
                       const char* who, const char* arg) {
  if (!loc.defined() || loc.dim() < 1)
    throw ShapeError(who, fmt::format("loc must have shape [..., d], got {}.", shape_of(loc)), "loc",
                     {loc.defined() ? loc.shape() : Shape{}});
  if (loc.shape().back() != d)
    throw ShapeError(who, fmt::format("loc has shape {} but {} has shape {}: the last dimension of "
                                      "loc must be d = {}.",
                                      format_shape(loc.shape()), arg, format_shape(arg_tensor.shape()), d),
                     "loc", {loc.shape(), arg_tensor.shape()});
  const std::span<const int64_t> loc_batch = detail::batch_dims(loc, 1);
  if (detail::same_dims(loc_batch, arg_batch)) return;
  try {
    broadcast_shapes(Shape(loc_batch.begin(), loc_batch.end()), Shape(arg_batch.begin(), arg_batch.end()), who);
  } catch (const ShapeError&) {
    throw ShapeError(who, fmt::format("the batch dimensions of loc {} and {} {} do not broadcast.",
                                      format_shape(loc.shape()), arg, format_shape(arg_tensor.shape())),
                     "loc", {loc.shape(), arg_tensor.shape()});
  }
}

void check_event_dim(int64_t d, const Tensor& t, const char* who, const char* arg) {
  if (d < 1)
    throw ShapeError(who, fmt::format("{} has shape {}: the event dimension d must be at least 1 (a "
                                      "0-dimensional Gaussian has no density).",
                                      arg, format_shape(t.shape())),
                     arg, {t.shape()});
}

}  // namespace

void check_parameter_shapes(const Tensor& loc, const Tensor& matrix, const char* who, const char* arg) {
  const auto square = [&matrix] {
    const Shape& s = matrix.shape();
    return s.size() >= 2 && s[s.size() - 1] == s[s.size() - 2];
  };
  if (!matrix.defined() || !square())
    throw ShapeError(who, fmt::format("{} must have shape [..., d, d], got {}.", arg, shape_of(matrix)), arg,
                     {matrix.defined() ? matrix.shape() : Shape{}});
  const int64_t d = matrix.shape().back();
  check_event_dim(d, matrix, who, arg);
  check_loc_against(loc, matrix, detail::batch_dims(matrix, 2), d, who, arg);
}

void check_loc_values(const Tensor& loc, const char* who) {
  check_finite(loc, loc.size(-1), drop_last(loc.shape(), 1), who, "loc");
}

void check_matrix_values(const Tensor& matrix, const char* who, const char* arg, bool lower_positive) {
  const int64_t d = matrix.size(-1);
  // Finite and triangular in one vector pass; the reference checks below locate a failure.
  if (lower_positive && d <= detail::kMaxFusedDim &&
      detail::simd_finite_lower_positive(matrix.data().data(), d, numel(drop_last(matrix.shape(), 2))))
    return;
  check_finite(matrix, d * d, drop_last(matrix.shape(), 2), who, arg);
  if (lower_positive) check_lower_positive_diagonal(matrix, who, arg);
}

void check_parameters(const Tensor& loc, const Tensor& matrix, const char* who, const char* arg,
                      bool lower_positive) {
  check_parameter_shapes(loc, matrix, who, arg);
  check_loc_values(loc, who);
  check_matrix_values(matrix, who, arg, lower_positive);
}

void check_vector_shapes(const Tensor& loc, const Tensor& v, const char* who, const char* arg) {
  if (!v.defined() || v.dim() < 1)
    throw ShapeError(who, fmt::format("{} must have shape [..., d], got {}.", arg, shape_of(v)), arg,
                     {v.defined() ? v.shape() : Shape{}});
  const int64_t d = v.size(-1);
  check_event_dim(d, v, who, arg);
  check_loc_against(loc, v, detail::batch_dims(v, 1), d, who, arg);
}

void check_vector_values(const Tensor& loc, const Tensor& v, const char* who, const char* arg) {
  check_loc_values(loc, who);
  check_finite(v, v.size(-1), drop_last(v.shape(), 1), who, arg);
}

void check_low_rank(const Tensor& loc, const Tensor& W, const Tensor& D, const char* who) {
  if (!W.defined() || W.dim() < 2 || W.size(-1) < 1)
    throw ShapeError(who, fmt::format("cov_factor must have shape [..., d, k] with k >= 1, got {} (without a "
                                      "low-rank part use MultivariateNormal::from_scale_diag).",
                                      shape_of(W)),
                     "cov_factor", {W.defined() ? W.shape() : Shape{}});
  const int64_t d = W.size(-2);
  check_event_dim(d, W, who, "cov_factor");
  if (!D.defined() || D.dim() < 1 || D.size(-1) != d)
    throw ShapeError(who, fmt::format("cov_diag must have shape [..., {}] to match cov_factor {}, got {}.", d,
                                      format_shape(W.shape()), shape_of(D)),
                     "cov_diag", {W.shape(), D.defined() ? D.shape() : Shape{}});
  const Shape wb = drop_last(W.shape(), 2), db = drop_last(D.shape(), 1);
  try {
    broadcast_shapes(wb, db, who);
  } catch (const ShapeError&) {
    throw ShapeError(who, fmt::format("the batch dimensions of cov_factor {} and cov_diag {} do not broadcast.",
                                      format_shape(W.shape()), format_shape(D.shape())),
                     "cov_diag", {W.shape(), D.shape()});
  }
  check_loc_against(loc, W, broadcast_shapes(wb, db, who), d, who, "cov_factor");
  check_loc_values(loc, who);
  check_finite(W, d * W.size(-1), wb, who, "cov_factor");
  check_finite(D, d, db, who, "cov_diag");
}

void check_positive(const Tensor& v, const char* who, const char* arg) {
  const auto values = v.data();
  for (size_t i = 0; i < values.size(); ++i)
    if (!(values[i] > 0.0)) {
      const Shape at = unravel_index(static_cast<int64_t>(i), v.shape());
      throw DomainError(who,
                        fmt::format("{} has {} at index {} (shape {}); it must be positive. Map a free "
                                    "parameter through softplus or exp, or pass {{.validate = false}} to "
                                    "skip this check.",
                                    arg, values[i], format_shape(at), format_shape(v.shape())),
                        arg, {v.shape()}, at);
    }
}

void check_lower_positive_diagonal(const Tensor& L, const char* who, const char* arg) {
  const int64_t d = L.size(-1);
  const Shape batch = drop_last(L.shape(), 2);
  const double* p = L.data().data();
  const int64_t count = numel(batch);
  // Branch-free scan first (this runs on every distribution built); locate only on failure.
  bool bad = false;
  for (int64_t b = 0; b < count; ++b)
    for (int64_t i = 0; i < d; ++i) {
      bad |= !(p[b * d * d + i * d + i] > 0.0);
      for (int64_t j = i + 1; j < d; ++j) bad |= p[b * d * d + i * d + j] != 0.0;
    }
  if (!bad) return;
  for (int64_t b = 0; b < count; ++b)
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = i; j < d; ++j) {
        const double v = p[b * d * d + i * d + j];
        if (j == i ? v > 0.0 : v == 0.0) continue;
        throw DomainError(who,
                          fmt::format("{} has {} at ({}, {}){}{}; it must be lower triangular with a "
                                      "positive diagonal. Build it with transforms::fill_scale_tril, "
                                      "or pass {{.validate = false}} to skip this check.",
                                      arg, v, i, j, j == i ? ", on the diagonal" : ", above the diagonal",
                                      in_batch_element(b, batch)),
                          arg, {L.shape()}, unravel_index(b, batch));
      }
}

void check_symmetric(const Tensor& A, double rtol, double atol, const char* who, const char* arg) {
  const int64_t d = A.size(-1);
  const Shape batch = drop_last(A.shape(), 2);
  const double* p = A.data().data();
  for (int64_t b = 0; b < numel(batch); ++b) {
    const double* m = p + b * d * d;
    double largest = 0.0, worst = 0.0;
    for (int64_t i = 0; i < d * d; ++i) largest = std::max(largest, std::abs(m[i]));
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < i; ++j) worst = std::max(worst, std::abs(m[i * d + j] - m[j * d + i]));
    const double tolerance = atol + rtol * largest;
    if (worst > tolerance)
      throw DomainError(who,
                        fmt::format("{} is not symmetric{}: max |A - A^T| = {:.3g} exceeds the "
                                    "tolerance {:.3g}. Symmetrise it (0.5 (A + A^T)) or build it as "
                                    "L L^T.",
                                    arg, in_batch_element(b, batch), worst, tolerance),
                        arg, {A.shape()}, unravel_index(b, batch));
  }
}

void check_sample(const Tensor& x, int64_t d, const char* who, const char* arg) {
  if (!x.defined() || x.dim() < 1 || x.size(-1) != d)
    throw ShapeError(who, fmt::format("{} must have shape [..., {}], got {}.", arg, d, shape_of(x)), arg,
                     {x.defined() ? x.shape() : Shape{}});
  check_finite(x, d, drop_last(x.shape(), 1), who, arg);
}

Shape sample_shape(const Shape& sample, const Shape& batch, const Shape& event, const char* who) {
  Shape s = sample;
  s.insert(s.end(), batch.begin(), batch.end());
  s.insert(s.end(), event.begin(), event.end());
  for (int64_t n : sample)
    if (n < 0)
      throw ShapeError(who, fmt::format("the sample shape {} has a negative size; the number of samples must "
                                        "be >= 0, got {}.",
                                        format_shape(sample), n),
                       "sample_shape", {s});
  numel(s, who);  // ShapeError naming the shape when its element count overflows int64
  return s;
}

}  // namespace cholla::dist::validation
