// trmm, trsm (docs/linalg.md §3.1, §3.2, §3.3) and the triangle masks tril/triu.
#include <algorithm>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "linalg/detail/batching.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/linalg.hpp"

namespace cholla::linalg {
namespace {

Tensor band(const Tensor& A, int64_t k, bool lower, const char* op) {
  const auto s = detail::matrix_shape(A, op, "A");
  Tensor out = A.clone();
  double* p = out.mutable_data().data();
  for (int64_t b = 0; b < s.count(); ++b)
    for (int64_t i = 0; i < s.rows; ++i)
      for (int64_t j = 0; j < s.cols; ++j)
        if (lower ? j - i > k : j - i < k) p[b * s.size() + i * s.cols + j] = 0.0;
  // A mask is linear and self-adjoint: its backward is the same mask.
  return record(op, {A}, out, [k, lower, op](const Tensor& G, Needs) {
    return Grads{band(G, k, lower, op)};
  });
}

Tensor project(const Tensor& gA, bool lower) { return lower ? tril(gA) : triu(gA); }

}  // namespace

Tensor tril(const Tensor& A, int64_t k) { return band(A, k, true, "tril"); }
Tensor triu(const Tensor& A, int64_t k) { return band(A, k, false, "triu"); }

Tensor trmm(const Tensor& A, const Tensor& B, const TriangularOptions& o) {
  const auto p = detail::check_linear_problem(A, B, o.rightside, "trmm", "A");
  Tensor out = detail::rhs_buffer(B, p);
  const double* pa = A.data().data();
  detail::run_in_place(out, p, [&](int64_t ia, int64_t step_a, double* b, int64_t sb, int64_t count) {
    kernels::trmm(o.rightside, o.lower, o.transpose, p.b.rows, p.b.cols, o.alpha, pa + ia * p.a.size(),
                  step_a * p.a.size(), b, sb, count);
  });
  return record("trmm", {A, B}, out, [A, B, o](const Tensor& G, Needs needs) {
    Tensor gA, gB;
    if (needs[0]) {
      Tensor full = !o.rightside ? (o.transpose ? gemm2(B, G, {.transpose_b = true, .alpha = o.alpha})
                                                : gemm2(G, B, {.transpose_b = true, .alpha = o.alpha}))
                                 : (o.transpose ? gemm2(G, B, {.transpose_a = true, .alpha = o.alpha})
                                                : gemm2(B, G, {.transpose_a = true, .alpha = o.alpha}));
      gA = sum_to(project(full, o.lower), A.shape());
    }
    if (needs[1]) {
      TriangularOptions flipped = o;
      flipped.transpose = !o.transpose;
      gB = sum_to(trmm(A, G, flipped), B.shape());
    }
    return Grads{gA, gB};
  });
}

Tensor trsm(const Tensor& A, const Tensor& B, const TriangularOptions& o) {
  const auto p = detail::check_linear_problem(A, B, o.rightside, "trsm", "A");
  detail::check_finite(A, p.a, "trsm", "A");
  detail::check_finite(B, p.b, "trsm", "B");
  detail::check_nonzero_diagonal(A, p.a, "trsm", "A");
  Tensor X = detail::rhs_buffer(B, p);
  const double* pa = A.data().data();
  detail::run_in_place(X, p, [&](int64_t ia, int64_t step_a, double* b, int64_t sb, int64_t count) {
    kernels::trsm(o.rightside, o.lower, o.transpose, p.b.rows, p.b.cols, o.alpha, pa + ia * p.a.size(),
                  step_a * p.a.size(), b, sb, count);
  });
  return record("trsm", {A, B}, X, [A, B, X, o](const Tensor& G, Needs needs) {
    // W = op(A)^{-T} G (left) or G op(A)^{-T} (right): one solve with the flag flipped. B's
    // gradient is alpha W and A's is built from W and X, so alpha = 0 divides by nothing.
    TriangularOptions flipped = o;
    flipped.transpose = !o.transpose;
    flipped.alpha = 1.0;
    Tensor W = trsm(A, G, flipped);
    Tensor gA, gB;
    if (needs[0]) {
      Tensor full = !o.rightside ? (o.transpose ? gemm2(X, W, {.transpose_b = true, .alpha = -1.0})
                                                : gemm2(W, X, {.transpose_b = true, .alpha = -1.0}))
                                 : (o.transpose ? gemm2(W, X, {.transpose_a = true, .alpha = -1.0})
                                                : gemm2(X, W, {.transpose_a = true, .alpha = -1.0}));
      gA = sum_to(project(full, o.lower), A.shape());
    }
    if (needs[1]) gB = sum_to(o.alpha == 1.0 ? W : o.alpha * W, B.shape());
    return Grads{gA, gB};
  });
}

}  // namespace cholla::linalg
