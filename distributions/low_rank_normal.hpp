// dist::LowRankMultivariateNormal: Sigma = W W^T + diag(D), W [..., d, k] with k usually much
// smaller than d (factor models: a few common factors plus idiosyncratic noise).
//
// Nothing of size d x d is formed except by covariance(), precision() and scale_tril(): the
// density, entropy and KL work through the k x k capacitance matrix C = I + W^T D^{-1} W
// (Woodbury identity and matrix determinant lemma), O(d k^2) per distribution and O(d k) per
// row, as torch.distributions.LowRankMultivariateNormal does.
//
// Shapes: loc [..., d], cov_factor [..., d, k], cov_diag [..., d]; the three batches broadcast.
#pragma once

#include <cstdint>

#include "autodiff/rng.hpp"
#include "autodiff/tensor.hpp"

namespace cholla::dist {

class MultivariateNormal;
namespace detail {
struct GaussianForm;
}

struct LowRankOptions {
  bool validate = true;  // cov_diag > 0 (finiteness and shapes are always checked)
};

class LowRankMultivariateNormal {
 public:
  LowRankMultivariateNormal(Tensor loc, Tensor cov_factor, Tensor cov_diag, const LowRankOptions& options = {});

  Tensor log_prob(const Tensor& x) const;                      // broadcast of x's batch and batch_shape
  Tensor rsample(Rng& rng, int64_t n) const;                   // [n, batch..., d], differentiable
  Tensor rsample(Rng& rng, const Shape& sample_shape) const;   // [sample..., batch..., d]
  Tensor sample(Rng& rng, int64_t n) const;                    // no gradient
  Tensor sample(Rng& rng, const Shape& sample_shape) const;
  Tensor entropy() const;
  Tensor mean() const;
  Tensor variance() const;  // diag(Sigma) = sum_j W_ij^2 + D_i, [batch..., d]
  Tensor stddev() const;
  Tensor covariance() const;  // W W^T + diag(D)
  Tensor precision() const;   // D^{-1} - D^{-1} W C^{-1} W^T D^{-1}
  Tensor scale_tril() const;  // chol(covariance()), O(d^3)

  const Shape& batch_shape() const { return batch_; }
  Shape event_shape() const { return {dim_}; }
  int64_t dim() const { return dim_; }
  int64_t rank() const { return cov_factor_.size(-1); }
  const Tensor& loc() const { return loc_; }
  const Tensor& cov_factor() const { return cov_factor_; }
  const Tensor& cov_diag() const { return cov_diag_; }
  // chol(I + W^T D^{-1} W) [..., k, k], computed once at construction.
  const Tensor& capacitance_tril() const { return capacitance_tril_; }
  detail::GaussianForm form() const;  // internal: for KL and the density

 private:
  Tensor loc_, cov_factor_, cov_diag_, capacitance_tril_;
  int64_t dim_ = 0;
  Shape batch_;
};

// KL(p || q) between any two Gaussian forms (the MultivariateNormal pair is declared with it).
Tensor kl_divergence(const LowRankMultivariateNormal& p, const LowRankMultivariateNormal& q);
Tensor kl_divergence(const MultivariateNormal& p, const LowRankMultivariateNormal& q);
Tensor kl_divergence(const LowRankMultivariateNormal& p, const MultivariateNormal& q);

}  // namespace cholla::dist
