#include "distributions/detail/gaussian_form.hpp"

#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "distributions/detail/constants.hpp"
#include "distributions/detail/factorise.hpp"
#include "linalg/linalg.hpp"

namespace cholla::dist::detail {

using Kind = GaussianForm::Kind;

Tensor capacitance_tril(const Tensor& W, const Tensor& D) {
  const int64_t k = W.size(-1);
  return linalg::potrf(linalg::gemm(W / unsqueeze(D, -1), W, Tensor::eye(k), {.transpose_a = true}));
}

Tensor rows_times(const Tensor& rows, const Tensor& W) {
  if (W.dim() == 2) {
    Shape out = rows.shape();
    out.back() = W.size(-1);
    return reshape(linalg::gemm2(reshape(rows, {-1, W.size(-2)}), W), out);
  }
  return squeeze(linalg::gemm2(unsqueeze(rows, -2), W), -2);
}

Tensor GaussianForm::half_logdet() const {
  switch (kind) {
    case Kind::ScaleTril: return linalg::sumlogdiag(factor);
    case Kind::PrecisionTril: return -linalg::sumlogdiag(factor);
    case Kind::ScaleDiag: return sum(log(factor), {-1});
    case Kind::LowRank: return linalg::sumlogdiag(capacitance_tril) + 0.5 * sum(log(diag), {-1});
  }
  return Tensor();
}

Tensor GaussianForm::inv_quad(const Tensor& r) const {
  switch (kind) {
    case Kind::ScaleTril: return sum(square(solve_factor(factor, r, true)), {-1});   // |L^{-1} r|^2
    case Kind::PrecisionTril: return sum(square(times_factor(factor, r, false)), {-1});  // |M^T r|^2
    case Kind::ScaleDiag: return sum(square(r / factor), {-1});
    case Kind::LowRank: {
      // Woodbury: r^T D^{-1} r - |C_L^{-1} W^T D^{-1} r|^2.
      Tensor v = r / diag;
      Tensor z = solve_factor(capacitance_tril, rows_times(v, factor), true);
      return sum(r * v, {-1}) - sum(square(z), {-1});
    }
  }
  return Tensor();
}

Tensor GaussianForm::trace_inv_root(const Tensor& A) const {
  switch (kind) {
    case Kind::ScaleTril: return sum(square(linalg::trsm(factor, A)), {-2, -1});
    case Kind::PrecisionTril: return sum(square(linalg::trmm(factor, A, {.transpose = true})), {-2, -1});
    case Kind::ScaleDiag: return sum(square(A / unsqueeze(factor, -1)), {-2, -1});
    case Kind::LowRank: {
      Tensor B = linalg::gemm2(factor / unsqueeze(diag, -1), A, {.transpose_a = true});  // W^T D^{-1} A
      return sum(square(A) / unsqueeze(diag, -1), {-2, -1}) - sum(square(linalg::trsm(capacitance_tril, B)), {-2, -1});
    }
  }
  return Tensor();
}

Tensor GaussianForm::trace_inv_diag(const Tensor& e) const {
  switch (kind) {
    case Kind::ScaleTril: {
      // (Sigma^{-1})_ii = |column i of L^{-1}|^2.
      Tensor inverse = linalg::trsm(factor, Tensor::eye(dim));
      return sum(square(inverse) * unsqueeze(e, -2), {-2, -1});
    }
    case Kind::PrecisionTril: return sum(e * sum(square(factor), {-1}), {-1});  // (M M^T)_ii
    case Kind::ScaleDiag: return sum(e / square(factor), {-1});
    case Kind::LowRank: {
      // sum e / D - |C_L^{-1} W^T D^{-1} diag(sqrt e)|_F^2.
      Tensor B = transpose(factor * unsqueeze(sqrt(e) / diag, -1));
      return sum(e / diag, {-1}) - sum(square(linalg::trsm(capacitance_tril, B)), {-2, -1});
    }
  }
  return Tensor();
}

Tensor GaussianForm::trace_inv(const GaussianForm& p) const {
  switch (p.kind) {
    case Kind::ScaleTril: return trace_inv_root(p.factor);
    case Kind::PrecisionTril:  // Sigma_p = M^{-T} M^{-1}
      return trace_inv_root(linalg::trsm(p.factor, Tensor::eye(p.dim), {.transpose = true}));
    case Kind::ScaleDiag: return trace_inv_diag(square(p.factor));
    case Kind::LowRank: return trace_inv_root(p.factor) + trace_inv_diag(p.diag);
  }
  return Tensor();
}

Tensor log_density(const GaussianForm& form, const Tensor& x) {
  return -0.5 * form.inv_quad(x - form.loc) - form.half_logdet() - static_cast<double>(form.dim) * kHalfLog2Pi;
}

Tensor entropy(const GaussianForm& form) {
  return form.half_logdet() + static_cast<double>(form.dim) * (0.5 + kHalfLog2Pi);
}

Tensor kl_divergence(const GaussianForm& p, const GaussianForm& q, const Shape& p_batch, const Shape& q_batch) {
  if (p.dim != q.dim)
    throw ShapeError("kl_divergence", fmt::format("p has dimension {} but q has dimension {}.", p.dim, q.dim), "q",
                     {{p.dim}, {q.dim}});
  const Shape batch = broadcast_shapes(p_batch, q_batch, "kl_divergence");
  Tensor quadratic = q.trace_inv(p) + q.inv_quad(q.loc - p.loc) - static_cast<double>(p.dim);
  return expand(0.5 * quadratic + q.half_logdet() - p.half_logdet(), batch);
}

}  // namespace cholla::dist::detail
