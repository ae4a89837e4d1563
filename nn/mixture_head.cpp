#include "nn/mixture_head.hpp"

#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"

namespace cholla::nn {

namespace tf = dist::transforms;

int64_t MixtureDensityHead::params_size(int64_t K, int64_t d) {
  if (K < 1 || d < 1)
    throw ShapeError("MixtureDensityHead",
                     fmt::format("needs K >= 1 components of dimension d >= 1, got K = {}, d = {}.", K, d), K < 1 ? "K" : "d",
                     {{K, d}});
  return checked_mul(K, tf::params_size(d) + 1, "MixtureDensityHead", "K (1 + d + d(d+1)/2)");
}

MixtureDensityHead::MixtureDensityHead(int64_t in_features, int64_t K, int64_t d,
                                       const MixtureDensityHeadOptions& options)
    : MixtureDensityHead(in_features, K, d, init_rng(), options) {}

MixtureDensityHead::MixtureDensityHead(int64_t in_features, int64_t K, int64_t d, Rng& rng,
                                       const MixtureDensityHeadOptions& options)
    : proj(in_features, params_size(K, d), rng, {.bias = true, .init = options.init}), k_(K), d_(d), options_(options) {
  if (!(options.init_scale > options.shift))
    throw DomainError("MixtureDensityHead",
                      fmt::format("init_scale {} must exceed shift {}.", options.init_scale, options.shift), "init_scale");
  if (!(options.loc_spread >= 0.0))
    throw DomainError("MixtureDensityHead", fmt::format("loc_spread must be >= 0, got {}.", options.loc_spread),
                      "loc_spread");
  register_module("proj", proj);
  init_bias(rng);
}

void MixtureDensityHead::init_bias(Rng& rng) {
  NoGrad guard;
  const int64_t tri = tf::triangular_size(d_);
  const double free = tf::diagonal_preimage(options_.init_scale - options_.shift, options_.diag);
  const Tensor spread = Tensor::uniform({k_ * d_}, -options_.loc_spread, options_.loc_spread, rng);
  auto b = proj.bias.mutable_data();
  for (int64_t i = 0; i < k_; ++i) b[static_cast<size_t>(i)] = 0.0;  // equal weights
  for (int64_t i = 0; i < k_ * d_; ++i) b[static_cast<size_t>(k_ + i)] = spread.data()[static_cast<size_t>(i)];
  for (int64_t c = 0; c < k_; ++c)
    for (int64_t i = 0; i < d_; ++i) b[static_cast<size_t>(k_ + k_ * d_ + c * tri + i * (i + 1) / 2 + i)] = free;
}

dist::MixtureSameFamily MixtureDensityHead::forward(const Tensor& x) {
  Tensor out = proj(x);
  const int64_t tri = tf::triangular_size(d_), locs = k_ + k_ * d_;
  Shape batch(out.shape().begin(), out.shape().end() - 1);
  auto with = [&](std::initializer_list<int64_t> tail) {
    Shape s = batch;
    s.insert(s.end(), tail);
    return s;
  };
  Tensor logits = slice(out, -1, 0, k_);
  Tensor loc = reshape(slice(out, -1, k_, locs), with({k_, d_}));
  Tensor packed = reshape(slice(out, -1, locs, locs + k_ * tri), with({k_, tri}));
  Tensor L = tf::fill_scale_tril(packed, {.diag = options_.diag, .shift = options_.shift});
  // Valid by construction: the per-element validation would only cost time.
  return dist::MixtureSameFamily(logits, dist::MultivariateNormal::from_scale_tril(loc, L, {.validate = false}));
}

std::string MixtureDensityHead::extra_repr() const {
  return fmt::format("in={}, K={}, d={}, params={}, shift={:g}", proj.in_features(), k_, d_, params_size(k_, d_),
                     options_.shift);
}

}  // namespace cholla::nn
