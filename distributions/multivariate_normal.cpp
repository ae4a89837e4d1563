#include "distributions/multivariate_normal.hpp"

#include <atomic>
#include <cmath>
#include <fmt/format.h>
#include <mutex>
#include <optional>
#include <span>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "distributions/detail/batch_dims.hpp"
#include "distributions/detail/constants.hpp"
#include "distributions/detail/factorise.hpp"
#include "distributions/detail/gaussian_form.hpp"
#include "distributions/detail/mvn_kernels.hpp"
#include "distributions/detail/mvn_simd.hpp"
#include "distributions/detail/recycling_allocator.hpp"
#include "distributions/detail/validation.hpp"
#include "linalg/linalg.hpp"

namespace cholla::dist {

// What a factory hands the constructor. Declared (incomplete) in the public header so that no
// user code can name or build one; only the factories below do.
struct detail::MvnParts {
  Tensor loc, factor;
  std::optional<FactorReport> report;  // the symmetric forms' factorisation; none for the triangular ones
  Tensor matrix;  // the covariance / precision when log_prob differentiates it directly
  // The value checks left for the first use: loc's, and unless loc_only those of the factor.
  const char* who = "";
  const char* arg = "";
  bool validate = true;
  bool loc_only = false;
};

// Shared by a distribution and its copies. `validated` is set once the checks have passed (by
// the scans or by log_prob's pass); two threads that race on the first use may both check,
// which is harmless. The report's mask is made on the first report(): a batch-sized fill that
// a distribution with nothing masked rarely needs.
struct detail::MvnState {
  // A constructor, not aggregate initialisation: allocate_shared's parenthesised aggregate init
  // is C++20 that clang 14 (the fuzz build) lacks.
  MvnState(const char* who_, const char* arg_, bool validate_, bool loc_only_)
      : who(who_), arg(arg_), validate(validate_), loc_only(loc_only_) {}
  const char* who;
  const char* arg;
  bool validate, loc_only;
  std::atomic<bool> validated{false};
  FactorReport report;
  std::once_flag mask_once;
};

namespace {

std::atomic<int64_t> g_validations{0};

Shape with_event(Shape batch, int64_t d) {
  batch.push_back(d);
  return batch;
}

}  // namespace

int64_t validation::deferred_validations() { return g_validations.load(); }

MultivariateNormal::MultivariateNormal(detail::MvnParts&& parts, bool precision_factor, bool diagonal)
    : loc_(std::move(parts.loc)), factor_(std::move(parts.factor)), precision_factor_(precision_factor),
      diagonal_(diagonal), matrix_(std::move(parts.matrix)),
      state_(std::allocate_shared<detail::MvnState>(detail::RecyclingAllocator<detail::MvnState>(), parts.who, parts.arg,
                                                   parts.validate, parts.loc_only)) {
  dim_ = factor_.shape().back();
  const std::span<const int64_t> factor_batch = detail::batch_dims(factor_, diagonal_ ? 1 : 2);
  const std::span<const int64_t> loc_batch = detail::batch_dims(loc_, 1);
  batch_ = detail::broadcast_batches(loc_batch, factor_batch, "MultivariateNormal");
  if (parts.report) state_->report = std::move(*parts.report);
  if (!state_->report.mask.defined())  // a copy of batch_ when the batches are one: no memmove call
    state_->report.batch_shape =
        detail::same_dims(loc_batch, factor_batch) ? batch_ : Shape(factor_batch.begin(), factor_batch.end());
}

const FactorReport& MultivariateNormal::report() const {
  FactorReport& r = state_->report;
  std::call_once(state_->mask_once, [&r] {
    if (!r.mask.defined()) r.mask = Tensor::ones(r.batch_shape);
  });
  return r;
}

bool MultivariateNormal::validated() const { return state_->validated.load(std::memory_order_acquire); }

void MultivariateNormal::mark_validated() const {
  state_->validated.store(true, std::memory_order_release);
  g_validations.fetch_add(1, std::memory_order_relaxed);
}

void MultivariateNormal::validate() const {
  if (validated()) return;
  const detail::MvnState& s = *state_;
  if (diagonal_) {
    validation::check_vector_values(loc_, factor_, s.who, s.arg);
    if (s.validate) validation::check_positive(factor_, s.who, s.arg);
  } else {
    validation::check_loc_values(loc_, s.who);
    if (!s.loc_only) validation::check_matrix_values(factor_, s.who, s.arg, s.validate);
  }
  mark_validated();
}

namespace {

// The two triangular forms: the factor is used as given; its values are checked on first use.
detail::MvnParts from_factor(Tensor loc, Tensor F, const MvnOptions& o, const char* who, const char* arg) {
  validation::check_parameter_shapes(loc, F, who, arg);
  return {std::move(loc), std::move(F), {}, Tensor(), who, arg, o.validate, false};
}

// The two symmetric forms: factorised once with potrf under the failure policy, so the matrix
// is checked here; loc is checked on first use.
detail::MvnParts from_symmetric(Tensor loc, Tensor A, const MvnOptions& o, const char* who, const char* arg) {
  validation::check_parameter_shapes(loc, A, who, arg);
  // d <= 8, all finite, symmetric (when validating) and positive definite: checked and
  // factorised in one SIMD pass, and log_prob differentiates A directly (no potrf backward).
  // Otherwise the reference checks and the failure policy decide, exactly as documented.
  if (auto fast = detail::simd_factorise(A, {o.validate, o.symmetry_rtol, o.symmetry_atol}, true))
    return {std::move(loc), std::move(fast->factor), std::move(fast->report), A, who, arg, o.validate, true};
  validation::check_matrix_values(A, who, arg, false);
  if (o.validate) validation::check_symmetric(A, o.symmetry_rtol, o.symmetry_atol, who, arg);
  Factorisation f = factorise(A, o.on_failure, who, arg);
  return {std::move(loc), std::move(f.factor), std::move(f.report), Tensor(), who, arg, o.validate, true};
}

}  // namespace

MultivariateNormal MultivariateNormal::from_scale_tril(Tensor loc, Tensor L, const MvnOptions& o) {
  return {from_factor(std::move(loc), std::move(L), o, "MultivariateNormal::from_scale_tril", "scale_tril"), false};
}

MultivariateNormal MultivariateNormal::from_precision_tril(Tensor loc, Tensor M, const MvnOptions& o) {
  return {from_factor(std::move(loc), std::move(M), o, "MultivariateNormal::from_precision_tril", "precision_tril"), true};
}

MultivariateNormal MultivariateNormal::from_scale_diag(Tensor loc, Tensor s, const MvnOptions& o) {
  const char* who = "MultivariateNormal::from_scale_diag";
  validation::check_vector_shapes(loc, s, who, "scale_diag");
  return {detail::MvnParts{std::move(loc), std::move(s), {}, Tensor(), who, "scale_diag", o.validate, false}, false, true};
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

detail::GaussianForm MultivariateNormal::form() const {
  validate();
  using Kind = detail::GaussianForm::Kind;
  detail::GaussianForm f;
  f.kind = diagonal_ ? Kind::ScaleDiag : precision_factor_ ? Kind::PrecisionTril : Kind::ScaleTril;
  f.loc = loc_;
  f.factor = diagonal_ ? factor_ : lower_factor();
  f.dim = dim_;
  return f;
}

Tensor MultivariateNormal::log_prob(const Tensor& x) const {
  if (diagonal_) {
    validate();
    validation::check_sample(x, dim_, "MultivariateNormal::log_prob");
    return detail::log_density(form(), x);
  }
  Tensor lp;
  if (dim_ <= detail::kMaxFusedDim) {  // x is checked by the kernel, and so are unchecked parameters
    using detail::MvnMatrix;
    const MvnMatrix kind = matrix_.defined() ? (precision_factor_ ? MvnMatrix::Precision : MvnMatrix::Covariance)
                                             : (precision_factor_ ? MvnMatrix::PrecisionTril : MvnMatrix::ScaleTril);
    detail::DeferredChecks deferred;
    const bool pending = !validated();
    if (pending) {
      // The pass checks the values it loads; it runs the scans (which throw the factory's error)
      // only when something is off.
      deferred.upper = state_->loc_only ? detail::UpperCheck::None
                       : state_->validate ? detail::UpperCheck::Zero
                                          : detail::UpperCheck::Finite;
      deferred.scans = [this] { validate(); };
    }
    lp = detail::simd_log_prob(loc_, matrix_.defined() ? matrix_ : factor_, factor_, x, kind,
                               pending ? &deferred : nullptr);
    if (pending && !validated()) mark_validated();
  } else {
    validate();
    validation::check_sample(x, dim_, "MultivariateNormal::log_prob");
    lp = detail::composed_log_prob(loc_, lower_factor(), x, precision_factor_);
  }
  const FactorReport& report = state_->report;
  if (report.ok()) return lp;
  // Masked elements: log_prob 0 and no gradient (a report with failures always has its mask).
  return where(report.mask, lp, Tensor::zeros({}));
}

Tensor MultivariateNormal::rsample(Rng& rng, const Shape& sample_shape) const {
  validate();
  Tensor eps = Tensor::randn(validation::sample_shape(sample_shape, batch_, {dim_}, "MultivariateNormal::rsample"), rng);
  if (diagonal_) return loc_ + factor_ * eps;
  // Rows: x^T = loc^T + eps^T L^T, or with the precision factor x^T = loc^T + eps^T M^{-1}.
  Tensor F = lower_factor();
  Tensor noise = precision_factor_ ? detail::solve_factor(F, eps, false) : detail::times_factor(F, eps, true);
  return loc_ + noise;
}

Tensor MultivariateNormal::rsample(Rng& rng, int64_t n) const { return rsample(rng, Shape{n}); }

Tensor MultivariateNormal::sample(Rng& rng, const Shape& sample_shape) const {
  NoGrad guard;
  return rsample(rng, sample_shape).detach();
}

Tensor MultivariateNormal::sample(Rng& rng, int64_t n) const { return sample(rng, Shape{n}); }

Tensor MultivariateNormal::entropy() const { return expand(detail::entropy(form()), batch_); }

Tensor MultivariateNormal::mean() const {
  validate();
  return expand(loc_, with_event(batch_, dim_));
}

Tensor MultivariateNormal::variance() const {
  validate();
  // Sigma_ii: |row i of L|^2, s_i^2, or the diagonal of (M M^T)^{-1}.
  Tensor v = diagonal_ ? square(factor_)
             : precision_factor_ ? linalg::extractdiag(linalg::potri(lower_factor()))
                                 : sum(square(lower_factor()), {-1});
  return expand(v, with_event(batch_, dim_));
}

Tensor MultivariateNormal::stddev() const { return sqrt(variance()); }

Tensor MultivariateNormal::covariance() const {
  validate();
  if (diagonal_) return linalg::makediag(square(factor_));
  return precision_factor_ ? linalg::potri(lower_factor()) : linalg::syrk(lower_factor());
}

Tensor MultivariateNormal::precision() const {
  validate();
  if (diagonal_) return linalg::makediag(1.0 / square(factor_));
  return precision_factor_ ? linalg::syrk(lower_factor()) : linalg::potri(lower_factor());
}

Tensor MultivariateNormal::scale_tril() const {
  validate();
  if (diagonal_) return linalg::makediag(factor_);
  return precision_factor_ ? linalg::potrf(linalg::potri(lower_factor())) : lower_factor();
}

Tensor kl_divergence(const MultivariateNormal& p, const MultivariateNormal& q) {
  return detail::kl_divergence(p.form(), q.form(), p.batch_shape(), q.batch_shape());
}

}  // namespace cholla::dist
