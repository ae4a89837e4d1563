#include "distributions/multivariate_normal.hpp"

#include <cmath>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "distributions/factorise.hpp"
#include "distributions/mvn_kernels.hpp"
#include "distributions/validation.hpp"
#include "linalg/linalg.hpp"

namespace cholla::dist {
namespace {

constexpr double kHalfLog2Pi = 0.918938533204672741780329736406;

Shape batch_of_vector(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 1); }
Shape batch_of_matrix(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); }

// Rows [..., d] times op(factor) from the right, with the shared-factor fast path.
Tensor rows_times(const Tensor& factor, const Tensor& rows, const linalg::TriangularOptions& o, bool solve) {
  const int64_t d = factor.size(-1);
  auto apply = [&](const Tensor& r) { return solve ? linalg::trsm(factor, r, o) : linalg::trmm(factor, r, o); };
  if (factor.dim() == 2) return reshape(apply(reshape(rows, {-1, d})), rows.shape());
  return squeeze(apply(unsqueeze(rows, -2)), -2);
}

}  // namespace

MultivariateNormal::MultivariateNormal(Tensor loc, Tensor factor, bool precision_factor, FactorReport report)
    : loc_(std::move(loc)), factor_(std::move(factor)), precision_factor_(precision_factor),
      report_(std::move(report)) {
  dim_ = factor_.size(-1);
  batch_ = broadcast_shapes(batch_of_vector(loc_), batch_of_matrix(factor_), "MultivariateNormal");
  if (!report_.mask.defined()) {
    report_.batch_shape = batch_of_matrix(factor_);
    report_.mask = Tensor::ones(report_.batch_shape);
  }
}

MultivariateNormal MultivariateNormal::from_scale_tril(Tensor loc, Tensor L, const MvnOptions& o) {
  const char* who = "MultivariateNormal::from_scale_tril";
  validation::check_parameters(loc, L, who, "scale_tril");
  if (o.validate) validation::check_lower_positive_diagonal(L, who, "scale_tril");
  return MultivariateNormal(std::move(loc), std::move(L), false, {});
}

MultivariateNormal MultivariateNormal::from_precision_tril(Tensor loc, Tensor M, const MvnOptions& o) {
  const char* who = "MultivariateNormal::from_precision_tril";
  validation::check_parameters(loc, M, who, "precision_tril");
  if (o.validate) validation::check_lower_positive_diagonal(M, who, "precision_tril");
  return MultivariateNormal(std::move(loc), std::move(M), true, {});
}

MultivariateNormal MultivariateNormal::from_covariance(Tensor loc, Tensor S, const MvnOptions& o) {
  const char* who = "MultivariateNormal::from_covariance";
  validation::check_parameters(loc, S, who, "covariance");
  if (o.validate) validation::check_symmetric(S, o.symmetry_rtol, o.symmetry_atol, who, "covariance");
  Factorisation f = factorise(S, o.on_failure, who, "covariance");
  return MultivariateNormal(std::move(loc), std::move(f.factor), false, std::move(f.report));
}

MultivariateNormal MultivariateNormal::from_precision(Tensor loc, Tensor P, const MvnOptions& o) {
  const char* who = "MultivariateNormal::from_precision";
  validation::check_parameters(loc, P, who, "precision");
  if (o.validate) validation::check_symmetric(P, o.symmetry_rtol, o.symmetry_atol, who, "precision");
  Factorisation f = factorise(P, o.on_failure, who, "precision");
  return MultivariateNormal(std::move(loc), std::move(f.factor), true, std::move(f.report));
}

Tensor MultivariateNormal::log_prob(const Tensor& x) const {
  validation::check_sample(x, dim_, "MultivariateNormal::log_prob");
  Tensor lp = dim_ <= detail::kMaxFusedDim
                  ? detail::fused_log_prob(loc_, factor_, x, precision_factor_)
                  : detail::composed_log_prob(loc_, factor_, x, precision_factor_);
  if (report_.ok()) return lp;
  // Masked elements: log_prob 0 and no gradient.
  return where(report_.mask, lp, Tensor::zeros({}));
}

Tensor MultivariateNormal::rsample(Rng& rng, int64_t n) const {
  Shape s{n};
  s.insert(s.end(), batch_.begin(), batch_.end());
  s.push_back(dim_);
  Tensor eps = Tensor::randn(s, rng);
  // Rows: x^T = loc^T + eps^T L^T, or with the precision factor x^T = loc^T + eps^T M^{-1}.
  Tensor noise = precision_factor_ ? rows_times(factor_, eps, {.rightside = true}, true)
                                   : rows_times(factor_, eps, {.transpose = true, .rightside = true}, false);
  return loc_ + noise;
}

Tensor MultivariateNormal::sample(Rng& rng, int64_t n) const {
  NoGrad guard;
  return rsample(rng, n).detach();
}

Tensor MultivariateNormal::entropy() const {
  Tensor half_logdet = linalg::sumlogdiag(factor_);
  if (precision_factor_) half_logdet = -half_logdet;
  const double constant = static_cast<double>(dim_) * (0.5 + kHalfLog2Pi);
  return expand(half_logdet + constant, batch_);
}

Tensor MultivariateNormal::mean() const {
  Shape s = batch_;
  s.push_back(dim_);
  return expand(loc_, s);
}

Tensor MultivariateNormal::covariance() const {
  return precision_factor_ ? linalg::potri(factor_) : linalg::syrk(factor_);
}

Tensor MultivariateNormal::precision() const {
  return precision_factor_ ? linalg::syrk(factor_) : linalg::potri(factor_);
}

Tensor MultivariateNormal::scale_tril() const {
  return precision_factor_ ? linalg::potrf(linalg::potri(factor_)) : factor_;
}

Tensor kl_divergence(const MultivariateNormal& p, const MultivariateNormal& q) {
  if (p.dim() != q.dim())
    throw ShapeError("kl_divergence", fmt::format("p has dimension {} but q has dimension {}.", p.dim(), q.dim()));
  Tensor Lp = p.scale_tril(), Lq = q.scale_tril();
  // tr(Sq^{-1} Sp) = |Lq^{-1} Lp|_F^2;  Mahalanobis term through one solve with Lq.
  Tensor trace = sum(square(linalg::trsm(Lq, Lp)), {-2, -1});
  Tensor diff = q.loc() - p.loc();
  Tensor z = rows_times(Lq, diff, {.transpose = true, .rightside = true}, true);
  Tensor maha = sum(square(z), {-1});
  Tensor logdet_ratio = 2.0 * (linalg::sumlogdiag(Lq) - linalg::sumlogdiag(Lp));
  return 0.5 * (trace + maha - static_cast<double>(p.dim()) + logdet_ratio);
}

}  // namespace cholla::dist
