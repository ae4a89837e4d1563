// dist::MultivariateNormal: a batch of d-dimensional Gaussians.
//
// Parameterisations (exactly one matrix per distribution):
//   from_scale_tril(loc, L)       Sigma = L L^T, L lower with positive diagonal
//   from_covariance(loc, S)       Sigma = S, factorised once with potrf
//   from_precision(loc, P)        Sigma = P^{-1}, factorised once (P = M M^T), never inverted
//   from_precision_tril(loc, M)   Sigma = (M M^T)^{-1}, M used without inversion
//   from_scale_diag(loc, s)       Sigma = diag(s^2), s > 0 [..., d]: every method O(d) per row
//
// Shapes: loc [..., d], the matrix [..., d, d]; batch_shape is the broadcast of loc's and the
// matrix's leading dimensions, event_shape is [d]. log_prob(x) broadcasts x [..., d] against
// the batch too. A matrix shared by many means or many x (no batch dimensions) is factorised
// once and never expanded in memory.
//
// Every method is built from autodiff + linalg ops, so gradients (of any order) flow to loc
// and to the matrix the distribution was built from. For d <= 8, log_prob runs as one fused
// batched op (forward and first-order backward each one SIMD pass across the batch, see
// distributions/detail/mvn_simd.hpp); second order goes through the composed ops. A covariance or
// precision with d <= 8 is checked and factorised by one SIMD pass too, and log_prob then
// differentiates the matrix directly; one that is not positive definite takes the failure
// policy's path below.
//
// Gradient convention: the gradient w.r.t. a covariance or precision matrix is symmetric; the
// gradient w.r.t. a scale_tril or precision_tril is lower triangular, whichever method used it.
//
// Validation (one rule for every factory and batch size): shapes are checked when the
// distribution is built, and so is a covariance or precision matrix, which the factory
// factorises anyway (finite, symmetric, positive definite under the failure policy). Every
// other value (loc finite; scale_tril / precision_tril finite and, with `validate`, lower
// triangular with a positive diagonal; scale_diag finite and positive) is checked on the
// distribution's FIRST USE, once for it and all its copies: log_prob checks them on the values
// its one pass loads (before any result is returned), every other method (sample, rsample,
// entropy, mean, variance, stddev, covariance, precision, scale_tril, kl_divergence, mixtures)
// runs the checks first. The error is the same typed exception, naming the factory, the
// argument, the shapes and the batch element; only the moment it is thrown differs (as with
// TensorFlow Probability's validate_args). The accessors loc(), batch_shape(), event_shape(),
// dim() and report() check nothing. A separate scan at construction would read every
// parameter once more: at N = 65,536 samples that was a fifth of the bytes of a training step.
#pragma once

#include <cstdint>
#include <memory>

#include "autodiff/rng.hpp"
#include "autodiff/tensor.hpp"
#include "distributions/failure_policy.hpp"

namespace cholla::dist {

namespace detail {
struct GaussianForm;
struct MvnParts;  // what a factory hands the constructor (multivariate_normal.cpp)
struct MvnState;  // what copies share: the checks left for the first use, the report
}

struct MvnOptions {
  FailurePolicy on_failure = Throw{};  // covariance / precision only
  bool validate = true;                // triangle, positivity and symmetry checks (finiteness: always)
  // A covariance or precision must be symmetric: |A_ij - A_ji| <= atol + rtol * max|A|.
  double symmetry_rtol = 1e-6;
  double symmetry_atol = 1e-12;
};

class MultivariateNormal {
 public:
  static MultivariateNormal from_scale_tril(Tensor loc, Tensor scale_tril, const MvnOptions& options = {});
  static MultivariateNormal from_covariance(Tensor loc, Tensor covariance, const MvnOptions& options = {});
  static MultivariateNormal from_precision(Tensor loc, Tensor precision, const MvnOptions& options = {});
  static MultivariateNormal from_precision_tril(Tensor loc, Tensor precision_tril,
                                                const MvnOptions& options = {});
  static MultivariateNormal from_scale_diag(Tensor loc, Tensor scale_diag, const MvnOptions& options = {});

  // log density, shape = broadcast of x's batch dims and batch_shape.
  Tensor log_prob(const Tensor& x) const;
  Tensor sample(Rng& rng, int64_t n) const;   // [n, batch..., d], no gradient
  Tensor rsample(Rng& rng, int64_t n) const;  // reparameterised: loc + L eps, differentiable
  Tensor sample(Rng& rng, const Shape& sample_shape) const;   // [sample..., batch..., d]
  Tensor rsample(Rng& rng, const Shape& sample_shape) const;
  Tensor entropy() const;                      // batch shape
  Tensor mean() const;                         // [batch..., d]
  Tensor variance() const;                     // diag(Sigma), [batch..., d]
  Tensor stddev() const;                       // sqrt(variance())
  Tensor covariance() const;                   // [..., d, d]
  Tensor precision() const;
  Tensor scale_tril() const;
  const Shape& batch_shape() const { return batch_; }
  Shape event_shape() const { return {dim_}; }
  int64_t dim() const { return dim_; }
  const Tensor& loc() const { return loc_; }
  // How the covariance/precision factorisation went (always ok() for the triangular forms).
  const FactorReport& report() const;
  // The covariance in its own parameterisation, for KL and mixtures (internal).
  detail::GaussianForm form() const;

 private:
  MultivariateNormal(detail::MvnParts&& parts, bool precision_factor, bool diagonal = false);
  Tensor lower_factor() const;
  // The value checks the factory left for the first use (see "Validation" above), run once for
  // this distribution and its copies; a no-op afterwards.
  void validate() const;
  bool validated() const;
  void mark_validated() const;

  Tensor loc_;
  // scale_tril L (Sigma = L L^T), precision_tril M (P = M M^T), or the scale diagonal s [..., d]
  Tensor factor_;
  bool precision_factor_ = false;
  bool diagonal_ = false;      // factor_ is s: Sigma = diag(s^2)
  Tensor matrix_;              // from_covariance / from_precision with d <= 8: the matrix itself
  std::shared_ptr<detail::MvnState> state_;
  Shape batch_;
  int64_t dim_ = 0;
};

// KL(p || q) for two MVNs of the same dimension, batch shapes broadcast:
//   1/2 [ tr(Sq^{-1} Sp) + (mq - mp)^T Sq^{-1} (mq - mp) - d + log det Sq - log det Sp ]
// computed in each form's own terms (O(d) per element for two diagonal forms). The pairs with
// a LowRankMultivariateNormal are in low_rank_normal.hpp.
Tensor kl_divergence(const MultivariateNormal& p, const MultivariateNormal& q);

}  // namespace cholla::dist
