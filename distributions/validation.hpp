// Internal to distributions/: argument checks with messages that name the constructor, the
// parameter and the batch element.
#pragma once

#include <cstdint>

#include "autodiff/tensor.hpp"

namespace cholla::dist::validation {

// loc [..., d] and a square matrix [..., d, d] with broadcastable batches, all values finite.
// Always on: NaN or Inf is a DomainError under every failure policy.
void check_parameters(const Tensor& loc, const Tensor& matrix, const char* who, const char* arg);
// Lower triangular (strict upper exactly 0) with a positive diagonal.
void check_lower_positive_diagonal(const Tensor& L, const char* who, const char* arg);
// |A - A^T| <= atol + rtol * max|A| for every matrix of the batch.
void check_symmetric(const Tensor& A, double rtol, double atol, const char* who, const char* arg);
// x [..., d] with finite values.
void check_sample(const Tensor& x, int64_t d, const char* who);

}  // namespace cholla::dist::validation
