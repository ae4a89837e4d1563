// nn::MultivariateNormalHead: a layer whose output is a distribution, the C++ answer to
// Keras/TFP's MultivariateNormalTriL layer.
//
// A Linear layer emits params_size(d) = d + d(d+1)/2 numbers per row: the first d are the
// mean, the rest fill a lower-triangular scale_tril row by row (transforms.hpp draws the
// order) whose diagonal goes through softplus (or exp, or 1 + elu) plus a small shift. Any
// real output is therefore a valid distribution: no input, however extreme, can make the
// covariance singular or indefinite, so training never hits "not positive definite".
//
//   nn::MultivariateNormalHead head{12, 5};
//   dist::MultivariateNormal p = head(features);      // batch [rows], event [5]
//   Tensor loss = -mean(p.log_prob(targets));
#pragma once

#include <cstdint>

#include "distributions/multivariate_normal.hpp"
#include "distributions/transforms.hpp"
#include "nn/linear.hpp"

namespace cholla::nn {

struct MultivariateNormalHeadOptions {
  dist::transforms::Diag diag = dist::transforms::Diag::Softplus;
  double shift = 1e-5;       // floor of the scale_tril diagonal
  double init_scale = 1.0;   // the diagonal bias is set so that a zero input gives this scale
  Init init = Init::XavierUniform;
};

class MultivariateNormalHead : public Module {
 public:
  MultivariateNormalHead(int64_t in_features, int64_t d, const MultivariateNormalHeadOptions& options = {});
  MultivariateNormalHead(int64_t in_features, int64_t d, Rng& rng,
                         const MultivariateNormalHeadOptions& options = {});

  // x [..., in_features] -> a MultivariateNormal with batch shape [...] and event shape [d].
  dist::MultivariateNormal forward(const Tensor& x);
  dist::MultivariateNormal operator()(const Tensor& x) { return forward(x); }
  // The raw params_size(d) outputs, for users who want to inspect or regularise them.
  Tensor parameters_for(const Tensor& x) { return proj(x); }
  std::string extra_repr() const override;

  int64_t dim() const { return d_; }
  Linear proj;

 private:
  void init_bias();
  int64_t d_;
  MultivariateNormalHeadOptions options_;
};

}  // namespace cholla::nn
