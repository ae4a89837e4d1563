// nn::MixtureDensityHead: a layer whose output is a K-component Gaussian mixture over R^d (a
// mixture density network's last layer, Bishop 1994).
//
// A Linear layer emits params_size(K, d) = K (1 + d + d(d+1)/2) numbers per row, laid out as
//   [ K mixture logits | K means of d numbers | K packed scale_trils of d(d+1)/2 numbers ]
// (component-major; each triangle packed as transforms.hpp draws it). The triangles go through
// fill_scale_tril, so any real output is a valid mixture: nothing can become singular.
//
//   nn::MixtureDensityHead head{32, 5, 2};
//   dist::MixtureSameFamily p = head(features);   // batch [rows], K = 5 components, event [2]
//   Tensor loss = -mean(p.log_prob(targets));
#pragma once

#include <cstdint>

#include "distributions/mixture.hpp"
#include "distributions/transforms.hpp"
#include "nn/linear.hpp"

namespace cholla::nn {

struct MixtureDensityHeadOptions {
  dist::transforms::Diag diag = dist::transforms::Diag::Softplus;
  double shift = 1e-5;      // floor of every scale_tril diagonal
  double init_scale = 1.0;  // each component starts with this scale (the diagonal bias)
  // The means' biases start uniform in [-loc_spread, loc_spread] so that the components begin
  // apart: identical components receive identical gradients and never separate.
  double loc_spread = 1.0;
  Init init = Init::XavierUniform;
};

class MixtureDensityHead : public Module {
 public:
  MixtureDensityHead(int64_t in_features, int64_t num_components, int64_t d,
                     const MixtureDensityHeadOptions& options = {});
  MixtureDensityHead(int64_t in_features, int64_t num_components, int64_t d, Rng& rng,
                     const MixtureDensityHeadOptions& options = {});

  // K (1 + d + d(d+1)/2); ShapeError when K or d < 1 or the count overflows int64.
  static int64_t params_size(int64_t num_components, int64_t d);

  // x [..., in_features] -> a mixture with batch shape [...], K components, event shape [d].
  dist::MixtureSameFamily forward(const Tensor& x);
  dist::MixtureSameFamily operator()(const Tensor& x) { return forward(x); }
  Tensor parameters_for(const Tensor& x) { return proj(x); }  // the raw params_size outputs
  std::string extra_repr() const override;

  int64_t num_components() const { return k_; }
  int64_t dim() const { return d_; }
  Linear proj;

 private:
  void init_bias(Rng& rng);
  int64_t k_, d_;
  MixtureDensityHeadOptions options_;
};

}  // namespace cholla::nn
