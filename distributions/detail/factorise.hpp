// Internal to distributions/: Cholesky factorisation of a covariance or precision under a
// FailurePolicy, and the fused small-d log-density op.
#pragma once

#include "autodiff/tensor.hpp"
#include "distributions/failure_policy.hpp"

namespace cholla::dist {

struct Factorisation {
  Tensor factor;  // lower Cholesky factor, recorded on the tape (differentiable w.r.t. A)
  FactorReport report;
};

// `who` and `arg` name the caller and the matrix in messages ("MultivariateNormal::
// from_covariance", "covariance").
Factorisation factorise(const Tensor& A, const FailurePolicy& policy, const char* who, const char* arg);

namespace detail {

// log N(x; loc, Sigma) with Sigma = L L^T (precision_factor false) or (M M^T)^{-1} (true).
// loc [..., d], factor [..., d, d], x [..., d] broadcast over their leading dimensions.
// Recorded as ONE op: forward and first-order backward are single batched kernels; when the
// backward itself is recorded (create_graph) it uses the closed-form gradients written with
// differentiable ops, so second derivatives are exact.
Tensor fused_log_prob(const Tensor& loc, const Tensor& factor, const Tensor& x, bool precision_factor);

// Residual rows r [..., d] times the factor from the right: times_factor gives r^T M (or
// r^T M^T with transpose), solve_factor gives r^T L^{-1} (or r^T L^{-T}). A factor without batch
// dimensions is applied to all rows in one BLAS-3 call, never copied.
Tensor times_factor(const Tensor& factor, const Tensor& rows, bool transpose);
Tensor solve_factor(const Tensor& factor, const Tensor& rows, bool transpose);

// The same density composed from linalg ops (any d); the reference the fused op is tested against.
Tensor composed_log_prob(const Tensor& loc, const Tensor& factor, const Tensor& x, bool precision_factor);

}  // namespace detail
}  // namespace cholla::dist
