#include "distributions/transforms.hpp"

#include <cmath>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "linalg/linalg.hpp"

namespace cholla::dist::transforms {
namespace {

Tensor positive(const Tensor& x, Diag diag) {
  switch (diag) {
    case Diag::Softplus: return softplus(x);
    case Diag::Exp: return exp(x);
    case Diag::OnePlusElu: return 1.0 + elu(x);
  }
  return x;
}

// The inverse of `positive` on y > 0.
Tensor positive_inverse(const Tensor& y, Diag diag) {
  switch (diag) {
    case Diag::Softplus: return y + log(-(exp(-y) - 1.0));  // log(e^y - 1), stable for large y
    case Diag::Exp: return log(y);
    case Diag::OnePlusElu: return where(greater(y, Tensor::ones({})), y - 1.0, log(y));
  }
  return y;
}

// log f'(x) for each choice of f.
Tensor log_derivative(const Tensor& x, Diag diag) {
  switch (diag) {
    case Diag::Softplus: return -softplus(-x);  // log sigmoid(x)
    case Diag::Exp: return x;
    case Diag::OnePlusElu: return minimum(x, Tensor::zeros({}));  // 0 above 0, x below
  }
  return x;
}

void check_packed(const Tensor& v, const char* op) {
  if (!v.defined() || v.dim() < 1)
    throw ShapeError(op, "needs a tensor of rank >= 1 whose last dimension is d(d+1)/2.", "v");
  dim_from_triangular(v.size(-1), op);
}

// d(d+1)/2 [+ d], a ShapeError from `op` when d < 0 or the count overflows int64.
int64_t checked_size(int64_t d, bool with_mean, const char* op) {
  if (d < 0) throw ShapeError(op, fmt::format("d must be >= 0, got {}.", d), "d", {{d}});
  // One factor halved first (d / 2 + 1 = (d + 1) / 2 for odd d), so the product overflows only
  // when the result does.
  const int64_t a = d % 2 == 0 ? d / 2 : d, b = d % 2 == 0 ? d + 1 : d / 2 + 1;
  int64_t total = 0;
  if (__builtin_mul_overflow(a, b, &total) || (with_mean && __builtin_add_overflow(total, d, &total)))
    throw ShapeError(op,
                     fmt::format("a {0}-dimensional Gaussian needs {1}d(d+1)/2 parameters for d = {0}, "
                                 "more than int64 can count.",
                                 d, with_mean ? "d + " : ""),
                     "d", {{d, d}});
  return total;
}

}  // namespace

int64_t params_size(int64_t d) { return checked_size(d, true, "params_size"); }
int64_t triangular_size(int64_t d) { return checked_size(d, false, "triangular_size"); }

double diagonal_preimage(double y, Diag diag) {
  switch (diag) {
    case Diag::Softplus: return y + std::log(-std::expm1(-y));  // log(e^y - 1)
    case Diag::Exp: return std::log(y);
    case Diag::OnePlusElu: return y >= 1.0 ? y - 1.0 : std::log(y);
  }
  return y;
}

int64_t dim_from_triangular(int64_t n, const char* op) {
  const auto d = static_cast<int64_t>(std::llround((std::sqrt(8.0 * static_cast<double>(n) + 1.0) - 1.0) / 2.0));
  if (d < 1 || triangular_size(d) != n)
    throw ShapeError(op, fmt::format("the last dimension is {}, which is not d(d+1)/2 for any d "
                                     "(1, 3, 6, 10, 15, ...). A d-dimensional scale_tril needs "
                                     "d(d+1)/2 numbers; a head emitting the mean too needs "
                                     "params_size(d) = d + d(d+1)/2.",
                                     n),
                     "v");
  return d;
}

Tensor fill_triangular(const Tensor& v) {
  check_packed(v, "fill_triangular");
  return linalg::maketrian(v);
}

Tensor fill_triangular_inverse(const Tensor& L) { return linalg::extracttrian(L); }

Tensor fill_scale_tril(const Tensor& v, const ScaleTrilOptions& o) {
  check_packed(v, "fill_scale_tril");
  Tensor T = linalg::maketrian(v);
  return linalg::tril(T, -1) + linalg::makediag(positive(linalg::extractdiag(T), o.diag) + o.shift);
}

Tensor fill_scale_tril_inverse(const Tensor& L, const ScaleTrilOptions& o) {
  Tensor d = linalg::extractdiag(L) - o.shift;
  for (double x : d.data())
    if (!(x > 0.0))
      throw DomainError("fill_scale_tril_inverse",
                        fmt::format("a diagonal entry of L is {} (after subtracting shift {}); it "
                                    "must exceed the shift to have a preimage.",
                                    x + o.shift, o.shift),
                        "L", {L.shape()});
  return linalg::extracttrian(linalg::tril(L, -1) + linalg::makediag(positive_inverse(d, o.diag)));
}

Tensor fill_scale_tril_log_abs_det_jacobian(const Tensor& v, const ScaleTrilOptions& o) {
  check_packed(v, "fill_scale_tril_log_abs_det_jacobian");
  return sum(log_derivative(linalg::extractdiag(linalg::maketrian(v)), o.diag), {-1});
}

}  // namespace cholla::dist::transforms
