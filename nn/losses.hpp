// Loss functions. Each returns a scalar (Reduction::Mean, the default, or Sum) or the
// per-element losses (Reduction::None), built from differentiable ops so that gradcheck and
// gradgradcheck pass through them. Any distribution's -log_prob(y).mean() is a loss as well.
#pragma once

#include "autodiff/tensor.hpp"

namespace cholla::nn {

enum class Reduction { Mean, Sum, None };

struct MseOptions {
  Reduction reduction = Reduction::Mean;
};

// (input - target)^2. Shapes must be equal: a silent broadcast of [N, 1] against [N] is a
// classic bug, so it is a ShapeError here.
Tensor mse_loss(const Tensor& input, const Tensor& target, const MseOptions& options = {});

struct CrossEntropyOptions {
  Reduction reduction = Reduction::Mean;
};

// -log softmax(logits)[target], computed through log_softmax (stable for large logits).
// logits: [N, C] (or [C] for one sample). targets either
//  - class indices of shape [N] (or []) holding integers in [0, C), or
//  - class probabilities of logits' shape (soft labels), giving -sum_c p_c log softmax_c.
// The per-sample losses have shape [N] (or []).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets,
                     const CrossEntropyOptions& options = {});

struct GaussianNllOptions {
  bool full = false;   // add the constant 0.5 log(2 pi)
  double eps = 1e-6;   // var is clamped below at eps (see gaussian_nll)
  Reduction reduction = Reduction::Mean;
};

// Negative log-likelihood of target under N(input, var), as PyTorch's GaussianNLLLoss:
//   0.5 (log max(var, eps) + (input - target)^2 / max(var, eps))  [+ 0.5 log(2 pi) if full].
// input and target have the same shape; var has that shape, or that shape with the last
// dimension 1 or removed (one variance per sample, broadcast over the last dimension).
// The clamp changes the value only: the gradient passes to var unchanged (as PyTorch, which
// clamps without recording), so a variance that collapses can still be pushed back up.
// A negative var is a DomainError.
Tensor gaussian_nll(const Tensor& input, const Tensor& target, const Tensor& var,
                    const GaussianNllOptions& options = {});

}  // namespace cholla::nn
