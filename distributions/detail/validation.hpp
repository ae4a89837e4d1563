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

// loc [..., d] (d >= 1) and a square matrix [..., d, d] with broadcastable batches: shapes only.
void check_parameter_shapes(const Tensor& loc, const Tensor& matrix, const char* who, const char* arg);
// The values of shape-checked parameters: loc finite; the matrix finite and, with
// `lower_positive`, check_lower_positive_diagonal (in one vector pass for d <= 8). NaN or Inf
// is a DomainError under every failure policy.
void check_loc_values(const Tensor& loc, const char* who);
void check_matrix_values(const Tensor& matrix, const char* who, const char* arg, bool lower_positive);
// All three, in that order.
void check_parameters(const Tensor& loc, const Tensor& matrix, const char* who, const char* arg,
                      bool lower_positive = false);
// Lower triangular (strict upper exactly 0) with a positive diagonal.
void check_lower_positive_diagonal(const Tensor& L, const char* who, const char* arg);
// |A - A^T| <= atol + rtol * max|A| for every matrix of the batch.
void check_symmetric(const Tensor& A, double rtol, double atol, const char* who, const char* arg);
// loc [..., d] (d >= 1) and a vector parameter [..., d] (a scale diagonal) with broadcastable
// batches: shapes only; then the values, all finite.
void check_vector_shapes(const Tensor& loc, const Tensor& v, const char* who, const char* arg);
void check_vector_values(const Tensor& loc, const Tensor& v, const char* who, const char* arg);
// loc [..., d], cov_factor [..., d, k] (k >= 1) and cov_diag [..., d], broadcastable, finite.
void check_low_rank(const Tensor& loc, const Tensor& W, const Tensor& D, const char* who);
// For tests: how many times a MultivariateNormal's value checks ran on its first use (by the
// scans or by log_prob's pass).
int64_t deferred_validations();
// Every entry > 0 (the values are already known to be finite).
void check_positive(const Tensor& v, const char* who, const char* arg);
// x [..., d] with finite values.
void check_sample(const Tensor& x, int64_t d, const char* who, const char* arg = "x");
// The shape of draws, [sample..., batch..., event...]; a ShapeError naming it when a sample
// dimension is negative or when its number of elements does not fit in int64 (autodiff's
// numel; an allocation larger than memory is then Tensor's ResourceError).
Shape sample_shape(const Shape& sample, const Shape& batch, const Shape& event, const char* who);

}  // namespace cholla::dist::validation
