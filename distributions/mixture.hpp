// dist::MixtureSameFamily: a batch of Gaussian mixtures
//
//   p(x) = sum_k pi_k N(x; mu_k, Sigma_k),   pi = softmax(mixture_logits),
//
// whose K components are the last batch dimension of one MultivariateNormal (any of its forms),
// as torch.distributions.MixtureSameFamily. Shapes: mixture_logits [..., K], components with
// batch shape [..., K] and event shape [d]; the mixture's batch shape is the broadcast of the
// two leading parts, its event shape [d].
//
//   auto mixture = dist::MixtureSameFamily(logits, dist::MultivariateNormal::from_scale_tril(loc, L));
//   Tensor nll = -mean(mixture.log_prob(y));      // stable: a logsumexp over the components
#pragma once

#include <cstdint>

#include "autodiff/rng.hpp"
#include "autodiff/tensor.hpp"
#include "distributions/multivariate_normal.hpp"

namespace cholla::dist {

class MixtureSameFamily {
 public:
  MixtureSameFamily(Tensor mixture_logits, MultivariateNormal components);

  // log sum_k pi_k N_k(x) for x [..., d], computed as logsumexp_k(log_softmax(logits) + log N_k(x)).
  Tensor log_prob(const Tensor& x) const;
  // [sample..., batch..., d]: a component drawn from pi, then a draw from it. No gradient (the
  // choice of component is discrete).
  Tensor sample(Rng& rng, int64_t n) const;
  Tensor sample(Rng& rng, const Shape& sample_shape) const;
  Tensor mean() const;        // sum_k pi_k mu_k
  // Law of total variance: sum_k pi_k (Sigma_k + (mu_k - mu)(mu_k - mu)^T).
  Tensor covariance() const;
  Tensor variance() const;    // its diagonal, without forming the matrices
  Tensor mixture_probs() const;  // softmax(mixture_logits) [..., K]

  const Tensor& mixture_logits() const { return logits_; }
  const MultivariateNormal& components() const { return components_; }
  int64_t num_components() const { return logits_.size(-1); }
  const Shape& batch_shape() const { return batch_; }
  Shape event_shape() const { return components_.event_shape(); }
  int64_t dim() const { return components_.dim(); }

 private:
  Tensor logits_;
  MultivariateNormal components_;
  Shape batch_;
};

}  // namespace cholla::dist
