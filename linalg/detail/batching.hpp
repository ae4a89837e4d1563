// Internal to linalg/: argument checks and batch-broadcasting plans shared by the ops.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "autodiff/shape.hpp"
#include "autodiff/tensor.hpp"

namespace cholla::linalg::detail {

// The leading (batch) dimensions and the matrix dimensions of a tensor of rank >= 2.
struct MatrixShape {
  Shape batch;
  int64_t rows = 0, cols = 0;
  int64_t count() const { return numel(batch); }
  int64_t size() const { return rows * cols; }
};

// ShapeError unless `t` has rank >= 2 (and is square when asked).
MatrixShape matrix_shape(const Tensor& t, const char* op, const char* arg);
MatrixShape square_matrix_shape(const Tensor& t, const char* op, const char* arg);

// DomainError naming the op, the argument and the batch element holding the first NaN/Inf.
void check_finite(const Tensor& t, const MatrixShape& s, const char* op, const char* arg);

// DomainError when a triangular matrix has an exact zero on its diagonal (BLAS would
// silently produce Inf).
void check_nonzero_diagonal(const Tensor& t, const MatrixShape& s, const char* op, const char* arg);

// How two batched operands pair up. The batch shapes broadcast; when one operand has a
// single matrix it is read with stride 0 (never copied).
struct BatchPlan {
  Shape batch;        // broadcast batch shape of the result
  int64_t count = 0;  // numel(batch)
  // Uniform case: matrix b of the result pairs matrix b*step_a of A and b*step_b of B
  // (steps are 0 or 1). Otherwise per-element indices are listed.
  bool uniform = true;
  int64_t step_a = 1, step_b = 1;
  std::vector<int64_t> index_a, index_b;
};

BatchPlan plan_batches(const Shape& batch_a, const Shape& batch_b, const char* op,
                       const Shape& full_a, const Shape& full_b);

// Runs kernel(a_matrix_index, a_stride_in_matrices, b_matrix_index, b_stride, out_index,
// count) over the plan: once for the uniform case, once per matrix otherwise.
void for_each_run(const BatchPlan& plan,
                  const std::function<void(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t)>& kernel);

// The operands of op(A) B / B op(A) (trmm, trsm) and of A X = B (solve, cholesky_solve):
// A square n x n, B with n rows (left) or n columns (right), batch dimensions broadcast.
struct LinearProblem {
  MatrixShape a, b;
  BatchPlan plan;
  int64_t n = 0;
};

// ShapeError (naming op, `a_name` and both shapes) unless the shapes fit.
LinearProblem check_linear_problem(const Tensor& A, const Tensor& B, bool rightside, const char* op,
                                   const char* a_name);

// B's values broadcast to the result's batch shape, in a buffer of its own that kernels may
// overwrite.
Tensor rhs_buffer(const Tensor& B, const LinearProblem& p);

// Runs kernel(a_matrix_index, a_stride_in_matrices, out_matrix, out_stride, count) over the
// plan, on `out` (a rhs_buffer).
void run_in_place(Tensor& out, const LinearProblem& p,
                  const std::function<void(int64_t, int64_t, double*, int64_t, int64_t)>& kernel);

// Shape = batch + {rows, cols}.
Shape with_matrix(const Shape& batch, int64_t rows, int64_t cols);

}  // namespace cholla::linalg::detail
