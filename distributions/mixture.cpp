#include "distributions/mixture.hpp"

#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "distributions/detail/validation.hpp"

namespace cholla::dist {
namespace {

constexpr const char* kWho = "MixtureSameFamily";

Shape drop_last(const Shape& s) { return Shape(s.begin(), s.end() - 1); }

// The mixture's batch: logits [L..., K] against components [C..., K].
Shape mixture_batch(const Tensor& logits, const MultivariateNormal& components) {
  const Shape& cb = components.batch_shape();
  if (cb.empty())
    throw ShapeError(kWho, "components must have batch shape [..., K] (the last batch dimension indexes the "
                           "mixture components), got batch shape []. Give loc shape [..., K, d].",
                     "components", {cb});
  if (!logits.defined() || logits.dim() < 1 || logits.size(-1) != cb.back())
    throw ShapeError(kWho,
                     fmt::format("mixture_logits must have shape [..., K] with K = {} (the components' last "
                                 "batch dimension), got {}.",
                                 cb.back(), logits.defined() ? format_shape(logits.shape()) : "undefined"),
                     "mixture_logits", {logits.defined() ? logits.shape() : Shape{}, cb});
  try {
    return broadcast_shapes(drop_last(logits.shape()), drop_last(cb), kWho);
  } catch (const ShapeError&) {
    throw ShapeError(kWho,
                     fmt::format("the batch dimensions of mixture_logits {} and of the components {} do not "
                                 "broadcast.",
                                 format_shape(logits.shape()), format_shape(cb)),
                     "mixture_logits", {logits.shape(), cb});
  }
}

Shape concat_shapes(Shape a, const Shape& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

MixtureSameFamily::MixtureSameFamily(Tensor mixture_logits, MultivariateNormal components)
    : logits_(std::move(mixture_logits)), components_(std::move(components)) {
  batch_ = mixture_batch(logits_, components_);
  validation::check_sample(logits_, logits_.size(-1), kWho, "mixture_logits");
}

Tensor MixtureSameFamily::mixture_probs() const { return softmax(logits_, -1); }

Tensor MixtureSameFamily::log_prob(const Tensor& x) const {
  validation::check_sample(x, dim(), "MixtureSameFamily::log_prob");
  // x [..., d] -> [..., 1, d] meets the components' [..., K] batch.
  Tensor per_component = components_.log_prob(unsqueeze(x, -2));
  return logsumexp(log_softmax(logits_, -1) + per_component, {-1});
}

Tensor MixtureSameFamily::mean() const {
  return sum(unsqueeze(mixture_probs(), -1) * components_.mean(), {-2});
}

Tensor MixtureSameFamily::covariance() const {
  Tensor probs = unsqueeze(unsqueeze(mixture_probs(), -1), -1);  // [..., K, 1, 1]
  Tensor deviation = components_.mean() - unsqueeze(mean(), -2);  // mu_k - mu, [..., K, d]
  Tensor spread = unsqueeze(deviation, -1) * unsqueeze(deviation, -2);
  return sum(probs * (components_.covariance() + spread), {-3});
}

Tensor MixtureSameFamily::variance() const {
  Tensor probs = unsqueeze(mixture_probs(), -1);  // [..., K, 1]
  Tensor deviation = components_.mean() - unsqueeze(mean(), -2);
  return sum(probs * (components_.variance() + square(deviation)), {-2});
}

Tensor MixtureSameFamily::sample(Rng& rng, const Shape& sample_shape) const {
  NoGrad guard;
  const int64_t K = num_components(), d = dim();
  const Shape draws = validation::sample_shape(sample_shape, batch_, {}, "MixtureSameFamily::sample");
  // One draw of every component, then keep the chosen one (K times the work of one component,
  // as torch does; the choice is a one-hot mask, so any component form works).
  // The components' batch [C..., K] may be shorter than the mixture's [B...] + [K]: insert
  // ones before C so that the draws line up with the batch.
  const Shape& cb = components_.batch_shape();
  Shape aligned = sample_shape;
  aligned.insert(aligned.end(), batch_.size() + 1 - cb.size(), 1);
  aligned.insert(aligned.end(), cb.begin(), cb.end());
  aligned.push_back(d);
  Tensor candidates = expand(reshape(components_.sample(rng, sample_shape), aligned), concat_shapes(draws, {K, d}));
  Tensor probs = expand(mixture_probs(), concat_shapes(batch_, {K})).detach();
  Tensor u = Tensor::uniform(draws, 0.0, 1.0, rng);
  const int64_t per_draw = numel(batch_);
  std::vector<double> chosen(static_cast<size_t>(u.numel() * K), 0.0);
  const auto p = probs.data();
  for (int64_t i = 0; i < u.numel(); ++i) {
    const int64_t b = per_draw == 0 ? 0 : i % per_draw;
    double cumulative = 0.0;
    int64_t k = 0;
    for (; k < K - 1; ++k) {
      cumulative += p[static_cast<size_t>(b * K + k)];
      if (u.data()[static_cast<size_t>(i)] < cumulative) break;
    }
    chosen[static_cast<size_t>(i * K + k)] = 1.0;
  }
  Tensor mask = Tensor::from(concat_shapes(draws, {K, 1}), std::move(chosen));
  return sum(mask * candidates, {-2});
}

Tensor MixtureSameFamily::sample(Rng& rng, int64_t n) const { return sample(rng, Shape{n}); }

}  // namespace cholla::dist
