// dist::Normal: independent univariate normals, elementwise over broadcast loc and scale.
#pragma once

#include <cstdint>

#include "autodiff/rng.hpp"
#include "autodiff/tensor.hpp"

namespace cholla::dist {

class Normal {
 public:
  // scale > 0 everywhere and no NaN (checked when `validate`).
  Normal(Tensor loc, Tensor scale, bool validate = true);

  Tensor log_prob(const Tensor& x) const;
  Tensor sample(Rng& rng, int64_t n) const;   // [n, batch...], no gradient
  Tensor rsample(Rng& rng, int64_t n) const;  // loc + scale * eps, differentiable
  Tensor entropy() const;
  Tensor mean() const { return loc_; }
  Tensor stddev() const { return scale_; }
  Tensor variance() const;
  const Shape& batch_shape() const { return batch_; }
  Shape event_shape() const { return {}; }
  const Tensor& loc() const { return loc_; }
  const Tensor& scale() const { return scale_; }

 private:
  Tensor loc_, scale_;
  Shape batch_;
};

// KL(p || q) = log(sq / sp) + (sp^2 + (mp - mq)^2) / (2 sq^2) - 1/2, elementwise.
Tensor kl_divergence(const Normal& p, const Normal& q);

}  // namespace cholla::dist
