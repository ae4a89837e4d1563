#include "autodiff/checks.hpp"

#include <cmath>
#include <fmt/format.h>

#include "autodiff/detail/finite.hpp"
#include "autodiff/shape.hpp"

namespace cholla {

void detail::throw_undefined_argument(const char* op, const char* arg) {
  throw GraphError(op,
                   fmt::format("argument {} is an undefined tensor (default-constructed, or a "
                               "gradient that was never computed).",
                               arg),
                   arg);
}

void check_min_rank(const Tensor& t, int64_t min_rank, const char* op, const char* arg) {
  check_defined(t, op, arg);
  if (t.dim() < min_rank)
    throw ShapeError(op, fmt::format("argument {} needs rank >= {}, got shape {}.", arg, min_rank,
                                     format_shape(t.shape())),
                     arg, {t.shape()});
}

void check_matrix(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  if (t.dim() < 2)
    throw ShapeError(op, fmt::format("argument {} must be a matrix or a batch of matrices "
                                     "(rank >= 2), got shape {}.",
                                     arg, format_shape(t.shape())),
                     arg, {t.shape()});
}

void check_square(const Tensor& t, const char* op, const char* arg) {
  check_matrix(t, op, arg);
  if (t.size(-1) != t.size(-2))
    throw ShapeError(op, fmt::format("argument {} must hold square matrices [..., n, n], got "
                                     "shape {}.",
                                     arg, format_shape(t.shape())),
                     arg, {t.shape()});
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* arg_a,
                      const char* arg_b) {
  check_defined(a, op, arg_a);
  check_defined(b, op, arg_b);
  if (a.shape() != b.shape())
    throw ShapeError(op, fmt::format("arguments {} and {} must have one shape, got {} and {}.",
                                     arg_a, arg_b, format_shape(a.shape()), format_shape(b.shape())),
                     arg_b, {a.shape(), b.shape()});
}

void check_same_batch(const Tensor& a, int64_t core_dims_a, const Tensor& b, int64_t core_dims_b,
                      const char* op, const char* arg_a, const char* arg_b) {
  check_min_rank(a, core_dims_a, op, arg_a);
  check_min_rank(b, core_dims_b, op, arg_b);
  const Shape batch_a(a.shape().begin(), a.shape().end() - core_dims_a);
  const Shape batch_b(b.shape().begin(), b.shape().end() - core_dims_b);
  if (batch_a != batch_b)
    throw ShapeError(op, fmt::format("arguments {} and {} must have the same batch dimensions, "
                                     "got {} (from {}) and {} (from {}).",
                                     arg_a, arg_b, format_shape(batch_a), format_shape(a.shape()),
                                     format_shape(batch_b), format_shape(b.shape())),
                     arg_b, {a.shape(), b.shape()});
}

void check_finite(const Tensor& t, const char* op, const char* arg, int64_t core_dims) {
  check_min_rank(t, core_dims, op, arg);
  const auto v = t.data();
  const int64_t at = first_non_finite(v);
  if (at < 0) return;
  const Shape& s = t.shape();
  const std::vector<int64_t> index = unravel_index(at, s);
  const std::vector<int64_t> batch(index.begin(), index.end() - core_dims);
  throw DomainError(op,
                    fmt::format("argument {} contains {} at index {} (shape {}). Look for an "
                                "overflow, a log of a non-positive number or a 0/0 upstream.",
                                arg, std::isnan(v[static_cast<size_t>(at)]) ? "NaN" : "Inf",
                                format_shape(index), format_shape(s)),
                    arg, {s}, batch);
}

void check_finite(double value, const char* op, const char* arg) {
  if (!std::isfinite(value))
    throw DomainError(op, fmt::format("{} is {}; it must be a finite number.", arg, value), arg);
}

void check_positive(double value, const char* op, const char* arg) {
  if (!(value > 0.0) || std::isinf(value))
    throw DomainError(op, fmt::format("{} is {}; it must be finite and > 0.", arg, value), arg);
}

void check_nonnegative(double value, const char* op, const char* arg) {
  if (!(value >= 0.0) || std::isinf(value))
    throw DomainError(op, fmt::format("{} is {}; it must be finite and >= 0.", arg, value), arg);
}

void check_in_range(double value, double lo, double hi, bool hi_open, const char* op,
                    const char* arg) {
  const bool ok = value >= lo && (hi_open ? value < hi : value <= hi);
  if (!ok)
    throw DomainError(op, fmt::format("{} is {}; it must be in [{}, {}{}.", arg, value, lo, hi,
                                      hi_open ? ")" : "]"),
                      arg);
}

}  // namespace cholla
