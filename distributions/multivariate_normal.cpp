#include "distributions/multivariate_normal.hpp"

#include <cmath>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "distributions/constants.hpp"
#include "distributions/factorise.hpp"
#include "distributions/mvn_kernels.hpp"
#include "distributions/validation.hpp"
#include "linalg/linalg.hpp"

namespace cholla::dist {
namespace {

Shape batch_of_vector(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 1); }
Shape batch_of_matrix(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

}  // namespace

MultivariateNormal::MultivariateNormal(Parts parts, bool precision_factor)
    : loc_(std::move(parts.loc)), factor_(std::move(parts.factor)), precision_factor_(precision_factor),
      report_(std::move(parts.report)) {
  dim_ = factor_.size(-1);
  batch_ = broadcast_shapes(batch_of_vector(loc_), batch_of_matrix(factor_), "MultivariateNormal");
  if (!report_.mask.defined()) {
    report_.batch_shape = batch_of_matrix(factor_);
    report_.mask = Tensor::ones(report_.batch_shape);
  }
}

namespace {

// The two triangular forms: the factor is used as given.
MultivariateNormal::Parts from_factor(Tensor loc, Tensor F, const MvnOptions& o, const char* who, const char* arg) {
  validation::check_parameters(loc, F, who, arg);
  if (o.validate) validation::check_lower_positive_diagonal(F, who, arg);
  return {std::move(loc), std::move(F), {}};
}

// The two symmetric forms: factorised once with potrf under the failure policy.
MultivariateNormal::Parts from_symmetric(Tensor loc, Tensor A, const MvnOptions& o, const char* who, const char* arg) {
  validation::check_parameters(loc, A, who, arg);
  if (o.validate) validation::check_symmetric(A, o.symmetry_rtol, o.symmetry_atol, who, arg);
  Factorisation f = factorise(A, o.on_failure, who, arg);
  return {std::move(loc), std::move(f.factor), std::move(f.report)};
}

}  // namespace

MultivariateNormal MultivariateNormal::from_scale_tril(Tensor loc, Tensor L, const MvnOptions& o) {
  return {from_factor(std::move(loc), std::move(L), o, "MultivariateNormal::from_scale_tril", "scale_tril"), false};
}

MultivariateNormal MultivariateNormal::from_precision_tril(Tensor loc, Tensor M, const MvnOptions& o) {
  return {from_factor(std::move(loc), std::move(M), o, "MultivariateNormal::from_precision_tril", "precision_tril"), true};
}

MultivariateNormal MultivariateNormal::from_covariance(Tensor loc, Tensor S, const MvnOptions& o) {
  return {from_symmetric(std::move(loc), std::move(S), o, "MultivariateNormal::from_covariance", "covariance"), false};
}

MultivariateNormal MultivariateNormal::from_precision(Tensor loc, Tensor P, const MvnOptions& o) {
  return {from_symmetric(std::move(loc), std::move(P), o, "MultivariateNormal::from_precision", "precision"), true};
}

// The factor as every op other than the fused log-density sees it: its strict upper triangle
// (zero in a valid factor) is dropped, so the gradient w.r.t. a scale_tril or precision_tril is
// lower triangular whatever op consumes it (trsm, trmm, syrk and potri give full ones). The
// fused op already returns a lower-triangular gradient and skips this copy.
Tensor MultivariateNormal::lower_factor() const { return linalg::tril(factor_); }

Tensor MultivariateNormal::log_prob(const Tensor& x) const {
  validation::check_sample(x, dim_, "MultivariateNormal::log_prob");
  Tensor lp = dim_ <= detail::kMaxFusedDim
                  ? detail::fused_log_prob(loc_, factor_, x, precision_factor_)
                  : detail::composed_log_prob(loc_, lower_factor(), x, precision_factor_);
  if (report_.ok()) return lp;
  // Masked elements: log_prob 0 and no gradient.
  return where(report_.mask, lp, Tensor::zeros({}));
}

Tensor MultivariateNormal::rsample(Rng& rng, int64_t n) const {
  Tensor eps = Tensor::randn(validation::sample_shape(n, batch_, {dim_}, "MultivariateNormal::rsample"), rng);
  // Rows: x^T = loc^T + eps^T L^T, or with the precision factor x^T = loc^T + eps^T M^{-1}.
  Tensor F = lower_factor();
  Tensor noise = precision_factor_ ? detail::solve_factor(F, eps, false) : detail::times_factor(F, eps, true);
  return loc_ + noise;
}

Tensor MultivariateNormal::sample(Rng& rng, int64_t n) const {
  NoGrad guard;
  return rsample(rng, n).detach();
}

Tensor MultivariateNormal::entropy() const {
  Tensor half_logdet = linalg::sumlogdiag(factor_);
  if (precision_factor_) half_logdet = -half_logdet;
  const double constant = static_cast<double>(dim_) * (0.5 + detail::kHalfLog2Pi);
  return expand(half_logdet + constant, batch_);
}

Tensor MultivariateNormal::mean() const {
  Shape s = batch_;
  s.push_back(dim_);
  return expand(loc_, s);
}

Tensor MultivariateNormal::covariance() const {
  return precision_factor_ ? linalg::potri(lower_factor()) : linalg::syrk(lower_factor());
}

Tensor MultivariateNormal::precision() const {
  return precision_factor_ ? linalg::syrk(lower_factor()) : linalg::potri(lower_factor());
}

Tensor MultivariateNormal::scale_tril() const {
  return precision_factor_ ? linalg::potrf(linalg::potri(lower_factor())) : lower_factor();
}

Tensor kl_divergence(const MultivariateNormal& p, const MultivariateNormal& q) {
  if (p.dim() != q.dim())
    throw ShapeError("kl_divergence", fmt::format("p has dimension {} but q has dimension {}.", p.dim(), q.dim()));
  Tensor Lp = p.scale_tril(), Lq = q.scale_tril();
  // tr(Sq^{-1} Sp) = |Lq^{-1} Lp|_F^2;  Mahalanobis term through one solve with Lq.
  Tensor trace = sum(square(linalg::trsm(Lq, Lp)), {-2, -1});
  Tensor diff = q.loc() - p.loc();
  Tensor z = detail::solve_factor(Lq, diff, true);
  Tensor maha = sum(square(z), {-1});
  Tensor logdet_ratio = 2.0 * (linalg::sumlogdiag(Lq) - linalg::sumlogdiag(Lp));
  return 0.5 * (trace + maha - static_cast<double>(p.dim()) + logdet_ratio);
}

}  // namespace cholla::dist
