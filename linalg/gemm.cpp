// gemm, gemm2, syrk (docs/linalg.md §2.1-§2.3).
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "linalg/detail/batching.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/linalg.hpp"

namespace cholla::linalg {

using detail::matrix_shape;

Tensor gemm2(const Tensor& A, const Tensor& B, const Gemm2Options& o) {
  const auto sa = matrix_shape(A, "gemm2", "A"), sb = matrix_shape(B, "gemm2", "B");
  const int64_t m = o.transpose_a ? sa.cols : sa.rows, k = o.transpose_a ? sa.rows : sa.cols;
  const int64_t kb = o.transpose_b ? sb.cols : sb.rows, n = o.transpose_b ? sb.rows : sb.cols;
  if (k != kb)
    throw ShapeError("gemm2",
                     fmt::format("op(A) is {}x{} but op(B) is {}x{} (shapes {} and {}, transpose_a "
                                 "= {}, transpose_b = {}); the inner dimensions must agree.",
                                 m, k, kb, n, format_shape(A.shape()), format_shape(B.shape()),
                                 o.transpose_a, o.transpose_b),
                     "", {A.shape(), B.shape()});
  const auto plan = detail::plan_batches(sa.batch, sb.batch, "gemm2", A.shape(), B.shape());
  Tensor C = Tensor::empty(detail::with_matrix(plan.batch, m, n));
  const double *pa = A.data().data(), *pb = B.data().data();
  double* pc = C.mutable_data().data();
  detail::for_each_run(plan, [&](int64_t ia, int64_t step_a, int64_t ib, int64_t step_b,
                                 int64_t ic, int64_t count) {
    kernels::gemm(o.transpose_a, o.transpose_b, m, n, k, o.alpha, pa + ia * sa.size(),
                  step_a * sa.size(), pb + ib * sb.size(), step_b * sb.size(), 0.0,
                  pc + ic * m * n, m * n, count);
  });
  return record("gemm2", {A, B}, C, [A, B, o](const Tensor& G, Needs needs) {
    Tensor gA, gB;
    if (needs[0])
      gA = o.transpose_a ? gemm2(B, G, {.transpose_a = o.transpose_b, .transpose_b = true, .alpha = o.alpha})
                         : gemm2(G, B, {.transpose_b = !o.transpose_b, .alpha = o.alpha});
    if (needs[1])
      gB = o.transpose_b ? gemm2(G, A, {.transpose_a = true, .transpose_b = o.transpose_a, .alpha = o.alpha})
                         : gemm2(A, G, {.transpose_a = !o.transpose_a, .alpha = o.alpha});
    return Grads{needs[0] ? sum_to(gA, A.shape()) : Tensor(),
                 needs[1] ? sum_to(gB, B.shape()) : Tensor()};
  });
}

Tensor gemm(const Tensor& A, const Tensor& B, const Tensor& C, const GemmOptions& o) {
  Tensor product = gemm2(A, B, {.transpose_a = o.transpose_a, .transpose_b = o.transpose_b, .alpha = o.alpha});
  matrix_shape(C, "gemm", "C");
  try {
    return o.beta == 0.0 ? product + 0.0 * C : product + o.beta * C;
  } catch (const ShapeError&) {
    throw ShapeError("gemm", fmt::format("C has shape {} but op(A) op(B) has shape {}.",
                                         format_shape(C.shape()), format_shape(product.shape())),
                     "C", {C.shape(), product.shape()});
  }
}

Tensor syrk(const Tensor& A, const SyrkOptions& o) {
  const auto s = matrix_shape(A, "syrk", "A");
  const int64_t n = o.transpose ? s.cols : s.rows, k = o.transpose ? s.rows : s.cols;
  Tensor C = Tensor::empty(detail::with_matrix(s.batch, n, n));
  double* pc = C.mutable_data().data();
  const double* pa = A.data().data();
  kernels::gemm(o.transpose, !o.transpose, n, n, k, o.alpha, pa, s.size(), pa, s.size(), 0.0, pc,
                n * n, s.count());
  // Mirror the lower triangle: the result is exactly symmetric, which potrf relies on.
  for (int64_t b = 0; b < s.count(); ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j) pc[b * n * n + i * n + j] = pc[b * n * n + j * n + i];
  return record("syrk", {A}, C, [A, o](const Tensor& G, Needs) {
    Tensor S = G + transpose(G);  // G need not be symmetric
    return Grads{o.transpose ? gemm2(A, S, {.alpha = o.alpha}) : gemm2(S, A, {.alpha = o.alpha})};
  });
}

}  // namespace cholla::linalg
