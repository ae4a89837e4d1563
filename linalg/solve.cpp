// solve (LU with partial pivoting) and cholesky_solve (two triangular solves): X with
// A X = B, batched and broadcast like trsm (docs/linalg.md 4.3, 7.4).
#include <fmt/format.h>
#include <memory>
#include <vector>

#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "linalg/detail/batching.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/linalg.hpp"

namespace cholla::linalg {
namespace {

// getrf's factors and pivots of every matrix of A (A's own batch, not broadcast).
struct LuFactors {
  std::vector<double> F;
  std::vector<int64_t> pivots;
};

std::shared_ptr<const LuFactors> lu_factorise(const Tensor& A, const detail::MatrixShape& s) {
  auto f = std::make_shared<LuFactors>();
  f->F.assign(A.data().begin(), A.data().end());
  f->pivots.resize(static_cast<size_t>(s.count() * s.rows));
  std::vector<int64_t> info(static_cast<size_t>(s.count()));
  kernels::getrf(s.rows, f->F.data(), s.size(), f->pivots.data(), s.count(), info.data());
  for (int64_t b = 0; b < s.count(); ++b)
    if (info[static_cast<size_t>(b)] > 0)
      throw DomainError("solve",
                        fmt::format("{} is singular (pivot {} of its LU factorisation is 0), so "
                                    "A X = B has no unique solution. Look for dependent rows or "
                                    "columns; for a regularised least-squares solution solve "
                                    "(A^T A + lambda I) X = A^T B with potrf and cholesky_solve.",
                                    describe_batch_element(b, s.batch), info[static_cast<size_t>(b)]),
                        "A", {A.shape()}, unravel_index(b, s.batch));
  return f;
}

// X = op(A)^{-1} B from A's factors, broadcast as planned. Not recorded.
Tensor lu_solve(const LuFactors& f, const detail::LinearProblem& p, const Tensor& B, bool transpose) {
  Tensor X = detail::rhs_buffer(B, p);
  detail::run_in_place(X, p, [&](int64_t ia, int64_t step_a, double* x, int64_t stride_x, int64_t count) {
    kernels::getrs(transpose, p.n, p.b.cols, f.F.data() + ia * p.a.size(), step_a * p.a.size(),
                   f.pivots.data() + ia * p.n, step_a * p.n, x, stride_x, count);
  });
  return X;
}

// op(A) X = B, recorded. solve is transpose = false; its backward solves with A^T.
Tensor solve_op(const Tensor& A, const Tensor& B, bool transpose) {
  const auto p = detail::check_linear_problem(A, B, false, "solve", "A");
  detail::check_finite(A, p.a, "solve", "A");
  detail::check_finite(B, p.b, "solve", "B");
  auto factors = lu_factorise(A, p.a);
  Tensor X = lu_solve(*factors, p, B, transpose);
  return record("solve", {A, B}, X, [A, B, X, factors, transpose](const Tensor& G, Needs needs) {
    // dX = -op(A)^{-1} op(dA) X: with W = op(A)^{-T} G, gB = W and gA = -W X^T (-X W^T for
    // A^T). A first-order backward reuses the factors; under create_graph W is recorded.
    const Tensor W = grad_enabled()
                         ? solve_op(A, G, !transpose)
                         : lu_solve(*factors, detail::check_linear_problem(A, G, false, "solve", "A"), G, !transpose);
    Tensor gA, gB;
    if (needs[0])
      gA = sum_to(transpose ? gemm2(X, W, {.transpose_b = true, .alpha = -1.0})
                            : gemm2(W, X, {.transpose_b = true, .alpha = -1.0}),
                  A.shape());
    if (needs[1]) gB = sum_to(W, B.shape());
    return Grads{gA, gB};
  });
}

}  // namespace

Tensor solve(const Tensor& A, const Tensor& B) { return solve_op(A, B, false); }

Tensor cholesky_solve(const Tensor& L, const Tensor& B, const CholeskyOptions& o) {
  const auto p = detail::check_linear_problem(L, B, false, "cholesky_solve", "L");
  detail::check_finite(L, p.a, "cholesky_solve", "L");
  detail::check_finite(B, p.b, "cholesky_solve", "B");
  detail::check_nonzero_diagonal(L, p.a, "cholesky_solve", "L");
  // L L^T X = B is X = L^{-T} (L^{-1} B); U^T U X = B is X = U^{-1} (U^{-T} B). Two
  // differentiable trsm: their backward already projects L's gradient onto its triangle.
  if (o.lower) return trsm(L, trsm(L, B), {.transpose = true});
  return trsm(L, trsm(L, B, {.transpose = true, .lower = false}), {.lower = false});
}

}  // namespace cholla::linalg
