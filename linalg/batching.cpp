#include "linalg/detail/batching.hpp"

#include <cmath>
#include <fmt/format.h>

#include "autodiff/checks.hpp"
#include "autodiff/detail/elementwise.hpp"
#include "autodiff/detail/finite.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"

namespace cholla::linalg::detail {

MatrixShape matrix_shape(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  const Shape& s = t.shape();
  if (s.size() < 2)
    throw ShapeError(op, fmt::format("argument {} must be a matrix or a batch of matrices "
                                     "(rank >= 2), got shape {}.",
                                     arg, format_shape(s)),
                     arg, {s});
  return {Shape(s.begin(), s.end() - 2), s[s.size() - 2], s[s.size() - 1]};
}

MatrixShape square_matrix_shape(const Tensor& t, const char* op, const char* arg) {
  MatrixShape m = matrix_shape(t, op, arg);
  if (m.rows != m.cols)
    throw ShapeError(op, fmt::format("argument {} must hold square matrices, got shape {}.", arg,
                                     format_shape(t.shape())),
                     arg, {t.shape()});
  return m;
}

void check_finite(const Tensor& t, const MatrixShape& s, const char* op, const char* arg) {
  const auto v = t.data();
  const int64_t at = first_non_finite(v);
  if (at < 0) return;
  const int64_t b = at / std::max<int64_t>(s.size(), 1);
  throw DomainError(op,
                    fmt::format("argument {}: {} contains {} (at row {}, column {}). "
                                "Factorisations and solves need finite input; look for an "
                                "overflow or a 0/0 upstream.",
                                arg, describe_batch_element(b, s.batch),
                                std::isnan(v[static_cast<size_t>(at)]) ? "NaN" : "Inf",
                                (at % s.size()) / s.cols, at % s.cols),
                    arg, {t.shape()}, unravel_index(b, s.batch));
}

void check_nonzero_diagonal(const Tensor& t, const MatrixShape& s, const char* op, const char* arg) {
  const double* v = t.data().data();
  for (int64_t b = 0; b < s.count(); ++b)
    for (int64_t i = 0; i < s.rows; ++i)
      if (v[b * s.size() + i * s.cols + i] == 0.0)
        throw DomainError(op,
                          fmt::format("argument {}: {} is singular (diagonal entry {} is 0). A "
                                      "triangular solve with it would divide by zero.",
                                      arg, describe_batch_element(b, s.batch), i),
                          arg, {t.shape()}, unravel_index(b, s.batch));
}

BatchPlan plan_batches(const Shape& batch_a, const Shape& batch_b, const char* op,
                       const Shape& full_a, const Shape& full_b) {
  BatchPlan plan;
  try {
    plan.batch = broadcast_shapes(batch_a, batch_b, op);
  } catch (const ShapeError&) {
    throw ShapeError(op, fmt::format("batch dimensions of shapes {} and {} do not broadcast.",
                                     format_shape(full_a), format_shape(full_b)),
                     "", {full_a, full_b});
  }
  plan.count = numel(plan.batch);
  const int64_t na = numel(batch_a), nb = numel(batch_b);
  const bool a_full = batch_a.size() <= plan.batch.size() && na == plan.count;
  const bool b_full = batch_b.size() <= plan.batch.size() && nb == plan.count;
  if ((a_full || na == 1) && (b_full || nb == 1)) {
    plan.step_a = na == 1 ? 0 : 1;
    plan.step_b = nb == 1 ? 0 : 1;
    return plan;
  }
  // General broadcasting (e.g. [4, 1] against [1, 3]): list the pairs.
  plan.uniform = false;
  const auto sa = cholla::detail::broadcast_strides(batch_a, plan.batch);
  const auto sb = cholla::detail::broadcast_strides(batch_b, plan.batch);
  for (int64_t i = 0; i < plan.count; ++i) {
    const auto index = unravel_index(i, plan.batch);
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < index.size(); ++d) ia += index[d] * sa[d], ib += index[d] * sb[d];
    plan.index_a.push_back(ia);
    plan.index_b.push_back(ib);
  }
  return plan;
}

void for_each_run(const BatchPlan& plan,
                  const std::function<void(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t)>& kernel) {
  if (plan.count == 0) return;
  if (plan.uniform) {
    kernel(0, plan.step_a, 0, plan.step_b, 0, plan.count);
    return;
  }
  for (int64_t i = 0; i < plan.count; ++i)
    kernel(plan.index_a[static_cast<size_t>(i)], 0, plan.index_b[static_cast<size_t>(i)], 0, i, 1);
}

LinearProblem check_linear_problem(const Tensor& A, const Tensor& B, bool rightside, const char* op,
                                   const char* a_name) {
  LinearProblem p;
  p.a = square_matrix_shape(A, op, a_name);
  p.b = matrix_shape(B, op, "B");
  p.n = p.a.rows;
  const int64_t matched = rightside ? p.b.cols : p.b.rows;
  if (matched != p.n)
    throw ShapeError(op,
                     fmt::format("{} is {}x{} but B has shape {}; B needs {} {}{}.", a_name, p.n,
                                 p.n, format_shape(B.shape()), p.n, rightside ? "columns" : "rows",
                                 rightside ? " (rightside = true)" : ""),
                     "", {A.shape(), B.shape()});
  p.plan = plan_batches(p.a.batch, p.b.batch, op, A.shape(), B.shape());
  return p;
}

Tensor rhs_buffer(const Tensor& B, const LinearProblem& p) {
  Tensor out = expand(B.detach(), with_matrix(p.plan.batch, p.b.rows, p.b.cols));
  // expand returns its input when no broadcasting is needed: the kernels must not write into B.
  return out.data().data() != B.data().data() ? out : out.clone();
}

void run_in_place(Tensor& out, const LinearProblem& p,
                  const std::function<void(int64_t, int64_t, double*, int64_t, int64_t)>& kernel) {
  double* po = out.mutable_data().data();
  for_each_run(p.plan, [&](int64_t ia, int64_t step_a, int64_t, int64_t, int64_t io, int64_t count) {
    kernel(ia, step_a, po + io * p.b.size(), p.b.size(), count);
  });
}

Shape with_matrix(const Shape& batch, int64_t rows, int64_t cols) {
  Shape s = batch;
  s.push_back(rows);
  s.push_back(cols);
  return s;
}

}  // namespace cholla::linalg::detail
