#include "distributions/low_rank_normal.hpp"

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "distributions/detail/gaussian_form.hpp"
#include "distributions/multivariate_normal.hpp"
#include "distributions/detail/validation.hpp"
#include "linalg/linalg.hpp"

namespace cholla::dist {
namespace {

constexpr const char* kWho = "LowRankMultivariateNormal";

Shape drop_last(const Shape& s, size_t n) { return Shape(s.begin(), s.end() - static_cast<std::ptrdiff_t>(n)); }

Shape with_event(Shape batch, int64_t d) {
  batch.push_back(d);
  return batch;
}

}  // namespace

LowRankMultivariateNormal::LowRankMultivariateNormal(Tensor loc, Tensor W, Tensor D, const LowRankOptions& o) {
  validation::check_low_rank(loc, W, D, kWho);
  if (o.validate) validation::check_positive(D, kWho, "cov_diag");
  dim_ = W.size(-2);
  capacitance_tril_ = detail::capacitance_tril(W, D);
  loc_ = std::move(loc);
  cov_factor_ = std::move(W);
  cov_diag_ = std::move(D);
  batch_ = broadcast_shapes(drop_last(loc_.shape(), 1), drop_last(cov_factor_.shape(), 2), kWho);
  batch_ = broadcast_shapes(batch_, drop_last(cov_diag_.shape(), 1), kWho);
}

detail::GaussianForm LowRankMultivariateNormal::form() const {
  return {detail::GaussianForm::Kind::LowRank, loc_, cov_factor_, cov_diag_, capacitance_tril_, dim_};
}

Tensor LowRankMultivariateNormal::log_prob(const Tensor& x) const {
  validation::check_sample(x, dim_, "LowRankMultivariateNormal::log_prob");
  return detail::log_density(form(), x);
}

Tensor LowRankMultivariateNormal::rsample(Rng& rng, const Shape& sample_shape) const {
  const Shape shape = validation::sample_shape(sample_shape, batch_, {dim_}, "LowRankMultivariateNormal::rsample");
  // x = loc + W eps_k + sqrt(D) eps_d: covariance W W^T + D, O(d k) per draw.
  Shape factor_noise = shape;
  factor_noise.back() = rank();
  Tensor eps_k = Tensor::randn(factor_noise, rng);
  Tensor eps_d = Tensor::randn(shape, rng);
  return loc_ + detail::rows_times(eps_k, transpose(cov_factor_)) + sqrt(cov_diag_) * eps_d;
}

Tensor LowRankMultivariateNormal::rsample(Rng& rng, int64_t n) const { return rsample(rng, Shape{n}); }

Tensor LowRankMultivariateNormal::sample(Rng& rng, const Shape& sample_shape) const {
  NoGrad guard;
  return rsample(rng, sample_shape).detach();
}

Tensor LowRankMultivariateNormal::sample(Rng& rng, int64_t n) const { return sample(rng, Shape{n}); }

Tensor LowRankMultivariateNormal::entropy() const { return expand(detail::entropy(form()), batch_); }

Tensor LowRankMultivariateNormal::mean() const { return expand(loc_, with_event(batch_, dim_)); }

Tensor LowRankMultivariateNormal::variance() const {
  return expand(sum(square(cov_factor_), {-1}) + cov_diag_, with_event(batch_, dim_));
}

Tensor LowRankMultivariateNormal::stddev() const { return sqrt(variance()); }

Tensor LowRankMultivariateNormal::covariance() const {
  Shape s = with_event(batch_, dim_);
  s.push_back(dim_);
  return expand(linalg::syrk(cov_factor_) + linalg::makediag(cov_diag_), s);
}

Tensor LowRankMultivariateNormal::precision() const {
  // D^{-1} - B^T B with B = C_L^{-1} W^T D^{-1} [..., k, d].
  Tensor B = linalg::trsm(capacitance_tril_, transpose(cov_factor_ / unsqueeze(cov_diag_, -1)));
  Shape s = with_event(batch_, dim_);
  s.push_back(dim_);
  return expand(linalg::makediag(1.0 / cov_diag_) - linalg::syrk(B, {.transpose = true}), s);
}

Tensor LowRankMultivariateNormal::scale_tril() const { return linalg::potrf(covariance()); }

Tensor kl_divergence(const LowRankMultivariateNormal& p, const LowRankMultivariateNormal& q) {
  return detail::kl_divergence(p.form(), q.form(), p.batch_shape(), q.batch_shape());
}

Tensor kl_divergence(const MultivariateNormal& p, const LowRankMultivariateNormal& q) {
  return detail::kl_divergence(p.form(), q.form(), p.batch_shape(), q.batch_shape());
}

Tensor kl_divergence(const LowRankMultivariateNormal& p, const MultivariateNormal& q) {
  return detail::kl_divergence(p.form(), q.form(), p.batch_shape(), q.batch_shape());
}

}  // namespace cholla::dist
