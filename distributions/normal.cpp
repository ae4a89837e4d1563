#include "distributions/normal.hpp"

#include <cmath>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "distributions/detail/constants.hpp"
#include "distributions/detail/validation.hpp"

namespace cholla::dist {
namespace {

void check_values(const Tensor& t, const char* arg, bool positive) {
  const auto v = t.data();
  for (size_t i = 0; i < v.size(); ++i) {
    const bool bad = std::isnan(v[i]) || (positive && !(v[i] > 0.0)) || std::isinf(v[i]);
    if (bad)
      throw DomainError("Normal",
                        fmt::format("{} has {} at index {} (shape {}); {} must be {}.", arg, v[i],
                                    format_shape(unravel_index(static_cast<int64_t>(i), t.shape())),
                                    format_shape(t.shape()), arg,
                                    positive ? "positive and finite (map a free parameter through "
                                               "softplus or exp)"
                                             : "finite"),
                        arg, {t.shape()}, unravel_index(static_cast<int64_t>(i), t.shape()));
  }
}

}  // namespace

Normal::Normal(Tensor loc, Tensor scale, bool validate)
    : loc_(std::move(loc)), scale_(std::move(scale)) {
  batch_ = broadcast_shapes(loc_.shape(), scale_.shape(), "Normal");
  if (validate) {
    check_values(loc_, "loc", false);
    check_values(scale_, "scale", true);
  }
}

Tensor Normal::log_prob(const Tensor& x) const {
  Tensor z = (x - loc_) / scale_;
  return -0.5 * square(z) - log(scale_) - detail::kHalfLog2Pi;
}

Tensor Normal::rsample(Rng& rng, int64_t n) const {
  return loc_ + scale_ * Tensor::randn(validation::sample_shape({n}, batch_, {}, "Normal::rsample"), rng);
}

Tensor Normal::sample(Rng& rng, int64_t n) const {
  NoGrad guard;
  return rsample(rng, n).detach();
}

Tensor Normal::entropy() const { return expand(log(scale_) + (0.5 + detail::kHalfLog2Pi), batch_); }

Tensor Normal::variance() const { return square(scale_); }

Tensor kl_divergence(const Normal& p, const Normal& q) {
  Tensor ratio = p.scale() / q.scale();
  return 0.5 * (square(ratio) + square((p.loc() - q.loc()) / q.scale()) - 1.0) - log(ratio);
}

}  // namespace cholla::dist
