// Internal to distributions/: a Gaussian's covariance kept in the parameterisation it was built
// from, with the few operations that the densities and the KL divergence need, each at that
// form's own cost (O(d) for a diagonal, O(d k^2) for low rank plus diagonal, O(d^2) per row or
// O(d^3) per matrix for a triangular factor). No form is ever converted to a dense covariance.
#pragma once

#include <cstdint>

#include "autodiff/tensor.hpp"

namespace cholla::dist::detail {

struct GaussianForm {
  enum class Kind {
    ScaleTril,      // Sigma = L L^T,           factor = L [..., d, d] (lower)
    PrecisionTril,  // Sigma = (M M^T)^{-1},    factor = M [..., d, d] (lower)
    ScaleDiag,      // Sigma = diag(s^2),       factor = s [..., d]
    LowRank,        // Sigma = W W^T + diag(D), factor = W [..., d, k], diag = D [..., d]
  };
  Kind kind = Kind::ScaleTril;
  Tensor loc;                // [..., d]
  Tensor factor;             // see Kind
  Tensor diag;               // LowRank only: D
  Tensor capacitance_tril;   // LowRank only: chol(I_k + W^T D^{-1} W) [..., k, k]
  int64_t dim = 0;

  // 1/2 log det Sigma, over the form's batch.
  Tensor half_logdet() const;
  // r^T Sigma^{-1} r for each row r [..., d] (rows broadcast against the form's batch).
  Tensor inv_quad(const Tensor& rows) const;
  // tr(Sigma^{-1} Sigma_p) for another form p of the same dimension.
  Tensor trace_inv(const GaussianForm& p) const;
  // tr(Sigma^{-1} A A^T) for A [..., d, m], and tr(Sigma^{-1} diag(e)) for e [..., d].
  Tensor trace_inv_root(const Tensor& A) const;
  Tensor trace_inv_diag(const Tensor& e) const;
};

// chol(I_k + W^T D^{-1} W): what the Woodbury identity and the matrix determinant lemma need,
//   Sigma^{-1} = D^{-1} - D^{-1} W C^{-1} W^T D^{-1},   det Sigma = det C * prod D.
Tensor capacitance_tril(const Tensor& W, const Tensor& D);

// Rows v [..., d] times W [..., d, k] -> [..., k] (batch dimensions broadcast).
Tensor rows_times(const Tensor& rows, const Tensor& W);

// log N(x; loc, Sigma) and the entropy, written with the form's operations.
Tensor log_density(const GaussianForm& form, const Tensor& x);
Tensor entropy(const GaussianForm& form);

// KL(p || q) = 1/2 [tr(Sq^{-1} Sp) + (mq - mp)^T Sq^{-1} (mq - mp) - d] + 1/2 log det Sq - 1/2 log det Sp,
// over the broadcast of the two batch shapes; a ShapeError when the dimensions differ.
Tensor kl_divergence(const GaussianForm& p, const GaussianForm& q, const Shape& p_batch, const Shape& q_batch);

}  // namespace cholla::dist::detail
