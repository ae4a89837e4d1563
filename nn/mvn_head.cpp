#include "nn/mvn_head.hpp"

#include <cmath>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"

namespace cholla::nn {

namespace tf = dist::transforms;

namespace {

// The width of the projection, checked before the Linear layer is built from it.
int64_t head_outputs(int64_t d) {
  if (d < 1) throw ShapeError("MultivariateNormalHead", fmt::format("d must be >= 1, got {}.", d), "d", {{d}});
  return tf::params_size(d);
}

}  // namespace

MultivariateNormalHead::MultivariateNormalHead(int64_t in_features, int64_t d,
                                               const MultivariateNormalHeadOptions& options)
    : MultivariateNormalHead(in_features, d, init_rng(), options) {}

MultivariateNormalHead::MultivariateNormalHead(int64_t in_features, int64_t d, Rng& rng,
                                               const MultivariateNormalHeadOptions& options)
    : proj(in_features, head_outputs(d), rng, {.bias = true, .init = options.init}),
      d_(d),
      options_(options) {
  if (!(options.init_scale > options.shift))
    throw DomainError("MultivariateNormalHead",
                      fmt::format("init_scale {} must exceed shift {}.", options.init_scale, options.shift),
                      "init_scale");
  register_module("proj", proj);
  init_bias();
}

void MultivariateNormalHead::init_bias() {
  // Diagonal entries of the packed triangle sit at d + i(i+1)/2 + i; give them the free value
  // that the diagonal map sends to init_scale, so the head starts near a unit-scale Gaussian.
  const double free = tf::diagonal_preimage(options_.init_scale - options_.shift, options_.diag);
  NoGrad guard;
  auto b = proj.bias.mutable_data();
  for (int64_t i = 0; i < d_; ++i) b[static_cast<size_t>(d_ + i * (i + 1) / 2 + i)] = free;
}

dist::MultivariateNormal MultivariateNormalHead::forward(const Tensor& x) {
  Tensor out = proj(x);
  const int64_t p = tf::params_size(d_);
  Tensor loc = slice(out, -1, 0, d_);
  Tensor L = tf::fill_scale_tril(slice(out, -1, d_, p), {.diag = options_.diag, .shift = options_.shift});
  // Valid by construction: the per-element validation would only cost time.
  return dist::MultivariateNormal::from_scale_tril(loc, L, {.validate = false});
}

std::string MultivariateNormalHead::extra_repr() const {
  const char* diag = options_.diag == tf::Diag::Softplus ? "softplus" : options_.diag == tf::Diag::Exp ? "exp" : "1+elu";
  return fmt::format("in={}, d={}, params={}, diag={}, shift={:g}", proj.in_features(), d_,
                     tf::params_size(d_), diag, options_.shift);
}

}  // namespace cholla::nn
