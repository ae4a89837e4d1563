// Internal to linalg/: the cofactor matrix, the gradient of det where A^{-1} does not exist.
#pragma once

#include "autodiff/tensor.hpp"

namespace cholla::linalg::detail {

// C(A) = adj(A)^T of each square matrix (batched), singular or not: the gradient of det(A).
// Composed of differentiable ops, so it can be differentiated again (any order).
Tensor cofactor(const Tensor& A);

}  // namespace cholla::linalg::detail
