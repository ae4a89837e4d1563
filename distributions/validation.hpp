// Internal to distributions/: argument checks with messages that name the constructor, the
// parameter and the batch element.
#pragma once

#include <cstdint>
#include <string>

#include "autodiff/tensor.hpp"

namespace cholla::dist::validation {

// " in matrix 3 of batch shape [5] (index [3])", or "" for an unbatched matrix: appended to the
// argument's name so that a message reads "scale_tril has ... in matrix 3 of ...".
std::string in_batch_element(int64_t flat, const Shape& batch);

// loc [..., d] (d >= 1) and a square matrix [..., d, d] with broadcastable batches, all values finite.
// Always on: NaN or Inf is a DomainError under every failure policy.
void check_parameters(const Tensor& loc, const Tensor& matrix, const char* who, const char* arg);
// Lower triangular (strict upper exactly 0) with a positive diagonal.
void check_lower_positive_diagonal(const Tensor& L, const char* who, const char* arg);
// |A - A^T| <= atol + rtol * max|A| for every matrix of the batch.
void check_symmetric(const Tensor& A, double rtol, double atol, const char* who, const char* arg);
// x [..., d] with finite values.
void check_sample(const Tensor& x, int64_t d, const char* who);
// The shape of n draws, [n, batch..., event...]; a ShapeError naming it when n < 0 or when its
// number of elements does not fit in int64.
Shape sample_shape(int64_t n, const Shape& batch, const Shape& event, const char* who);

}  // namespace cholla::dist::validation
