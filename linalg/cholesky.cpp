// potrf, potrf_ex, potri (docs/linalg.md §4.1, §4.2).
#include <fmt/format.h>
#include <limits>
#include <vector>

#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "linalg/detail/batching.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/linalg.hpp"

namespace cholla::linalg {
namespace {

// Symmetric-convention gradient of the Cholesky factorisation (Murray 2016; MXNet; PyTorch):
//   lower: gA = 1/2 L^{-T} copyltu(L^T gL) L^{-1},  copyltu(M) = tril(M) + tril(M, -1)^T
//   upper: gA = 1/2 U^{-1} copyutl(gU U^T) U^{-T},  copyutl(M) = triu(M) + triu(M, 1)^T
// Two triangular solves, no inverse; every step is a differentiable op.
Tensor potrf_backward(const Tensor& L, const Tensor& G, bool lower) {
  if (lower) {
    Tensor M = trmm(L, G, {.transpose = true});
    Tensor S = tril(M) + transpose(tril(M, -1));
    Tensor Y = trsm(L, S, {.transpose = true});
    return trsm(L, Y, {.rightside = true, .alpha = 0.5});
  }
  Tensor M = trmm(L, G, {.transpose = true, .rightside = true, .lower = false});
  Tensor S = triu(M) + transpose(triu(M, 1));
  Tensor Y = trsm(L, S, {.lower = false});
  return trsm(L, Y, {.transpose = true, .rightside = true, .lower = false, .alpha = 0.5});
}

struct Factorised {
  Tensor L;
  std::vector<int64_t> info;
  detail::MatrixShape shape;
};

Factorised factorise(const Tensor& A, bool lower, const char* op) {
  Factorised f;
  f.shape = detail::square_matrix_shape(A, op, "A");
  detail::check_finite(A, f.shape, op, "A");
  f.L = A.clone();
  f.info.assign(static_cast<size_t>(f.shape.count()), 0);
  kernels::potrf(lower, f.shape.rows, f.L.mutable_data().data(), f.shape.size(), f.shape.count(),
                 f.info.data());
  return f;
}

// A plain first-order backward runs kernels::potrf_backward (an unrolled per-matrix path for
// n <= 8, Murray's blocked algorithm above: ~2n^3/3 flops, one pass over raw buffers) instead
// of the op composition (~3n^3 flops and seven temporaries): 5.5x faster at n = 1024.

// The kernel is not differentiable, so it only runs when the backward is not being recorded
// (no create_graph): second derivatives keep the differentiable path.
Tensor potrf_backward_raw(const Tensor& L, const Tensor& G, bool lower) {
  const auto s = detail::square_matrix_shape(L, "potrf", "L");
  Tensor gA = Tensor::empty(L.shape());
  kernels::potrf_backward(lower, s.rows, L.data().data(), s.size(), G.data().data(), s.size(),
                          gA.mutable_data().data(), s.size(), s.count());
  return gA;
}

Tensor record_potrf(const char* op, const Tensor& A, const Tensor& L, bool lower) {
  return record(
      op, {A}, L,
      [L, lower](const Tensor& G, Needs) { return Grads{potrf_backward(L, G, lower)}; },
      [L, lower](const Tensor& G, Needs) { return Grads{potrf_backward_raw(L, G, lower)}; });
}

}  // namespace

Tensor potrf(const Tensor& A, const CholeskyOptions& o) {
  Factorised f = factorise(A, o.lower, "potrf");
  for (int64_t b = 0; b < f.shape.count(); ++b) {
    const int64_t minor = f.info[static_cast<size_t>(b)];
    if (minor == 0) continue;
    throw NotPositiveDefinite(
        "potrf",
        fmt::format("{} is not positive definite (its leading minor of order {} is not "
                    "positive). Parameterise the matrix by its Cholesky factor "
                    "(MultivariateNormal::from_scale_tril, transforms::fill_scale_tril), build "
                    "it as L L^T + eps I, or add jitter to the diagonal.",
                    describe_batch_element(b, f.shape.batch), minor),
        "A", {A.shape()}, unravel_index(b, f.shape.batch), b, minor);
  }
  return record_potrf("potrf", A, f.L, o.lower);
}

std::pair<Tensor, Tensor> potrf_ex(const Tensor& A, const CholeskyOptions& o) {
  Factorised f = factorise(A, o.lower, "potrf_ex");
  Tensor info = Tensor::empty(f.shape.batch);
  double* pl = f.L.mutable_data().data();
  for (int64_t b = 0; b < f.shape.count(); ++b) {
    const int64_t minor = f.info[static_cast<size_t>(b)];
    info.mutable_data()[static_cast<size_t>(b)] = static_cast<double>(minor);
    // A partial factorisation is not a factor of anything: make that impossible to miss.
    if (minor != 0)
      std::fill_n(pl + b * f.shape.size(), f.shape.size(), std::numeric_limits<double>::quiet_NaN());
  }
  return {record_potrf("potrf_ex", A, f.L, o.lower), info};
}

Tensor potri(const Tensor& L, const CholeskyOptions& o) {
  const auto s = detail::square_matrix_shape(L, "potri", "L");
  detail::check_finite(L, s, "potri", "L");
  detail::check_nonzero_diagonal(L, s, "potri", "L");
  Tensor X = L.clone();
  std::vector<int64_t> info(static_cast<size_t>(s.count()), 0);
  kernels::potri(o.lower, s.rows, X.mutable_data().data(), s.size(), s.count(), info.data());
  for (int64_t b = 0; b < s.count(); ++b)
    if (info[static_cast<size_t>(b)] != 0)
      throw InternalError("potri", fmt::format("LAPACK reported info {} for {} after the diagonal "
                                               "check passed; please report this.",
                                               info[static_cast<size_t>(b)],
                                               describe_batch_element(b, s.batch)));
  return record("potri", {L}, X, [L, X, lower = o.lower](const Tensor& G, Needs) {
    // X = (L L^T)^{-1}: gL = -tril(X (G + G^T) L^{-T}); upper: gU = -triu(U^{-T} (G + G^T) X).
    // G + G^T because X is symmetric while G need not be.
    Tensor S = G + transpose(G);
    if (lower)
      return Grads{-tril(trsm(L, gemm2(X, S), {.transpose = true, .rightside = true}))};
    return Grads{-triu(trsm(L, gemm2(S, X), {.transpose = true, .lower = false}))};
  });
}

}  // namespace cholla::linalg
