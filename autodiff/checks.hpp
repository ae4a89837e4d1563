// Argument checks for ops, in the style of Stan Math's check_* functions: each takes the op and
// argument names and throws the library's typed error with the facts a caller can read
// (Error::op(), argument(), shapes(), batch_index()). Library ops use them, and so can users'
// own ops (docs/adding-an-op.md):
//
//   Tensor my_solve(const Tensor& A, const Tensor& b) {
//     check_square(A, "my_solve", "A");
//     check_finite(A, "my_solve", "A", /*core_dims=*/2);
//     ...
//   }
#pragma once

#include <cstdint>

#include "autodiff/tensor.hpp"

namespace cholla {

namespace detail {
[[noreturn]] void throw_undefined_argument(const char* op, const char* arg);
}

// GraphError unless `t` holds values (not default-constructed, not a gradient never computed).
// Inline: every op checks its arguments, and the test is one comparison.
inline void check_defined(const Tensor& t, const char* op, const char* arg) {
  if (!t.defined()) [[unlikely]]
    detail::throw_undefined_argument(op, arg);
}

// ShapeError unless `t` is defined with rank >= min_rank.
void check_min_rank(const Tensor& t, int64_t min_rank, const char* op, const char* arg);

// ShapeError unless `t` is a matrix or a batch of matrices (rank >= 2).
void check_matrix(const Tensor& t, const char* op, const char* arg);

// ShapeError unless `t` is a batch of square matrices ([..., n, n]).
void check_square(const Tensor& t, const char* op, const char* arg);

// ShapeError unless a and b have the same shape.
void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* arg_a,
                      const char* arg_b);

// ShapeError unless the batch dimensions (all but the last core_dims_a of a, and the last
// core_dims_b of b) are equal.
void check_same_batch(const Tensor& a, int64_t core_dims_a, const Tensor& b, int64_t core_dims_b,
                      const char* op, const char* arg_a, const char* arg_b);

// DomainError at the first NaN or Inf, naming its position; the trailing core_dims dimensions
// form one item (2 for matrices) and the others are reported as the batch index.
void check_finite(const Tensor& t, const char* op, const char* arg, int64_t core_dims = 0);

// Scalar arguments (hyperparameters, tolerances): DomainError unless finite, > 0, >= 0, or
// within [lo, hi] (hi_open: [lo, hi)).
void check_finite(double value, const char* op, const char* arg);
void check_positive(double value, const char* op, const char* arg);
void check_nonnegative(double value, const char* op, const char* arg);
void check_in_range(double value, double lo, double hi, bool hi_open, const char* op,
                    const char* arg);

}  // namespace cholla
