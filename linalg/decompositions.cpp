// syevd and gelqf: two-output decompositions (docs/linalg.md §6.2, §6.1).
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <vector>

#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "linalg/detail/batching.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/linalg.hpp"

namespace cholla::linalg {
namespace {

// Eigenvalues closer than this (relative to the matrix's largest |lambda|) count as equal:
// their eigenvectors are then not determined, and 1 / (lambda_j - lambda_i) is noise.
constexpr double kEqualEigenvalues = 1e-10;
// An antisymmetric part of V^T g_V below this (relative to its largest entry) is rounding.
constexpr double kCancelled = 1e-8;

// The factor F of the eigenvector term, F_ij = 1 / (lambda_j - lambda_i) for distinct
// eigenvalues, as a constant 0/1 mask over the pairs that count. After symmetrisation a pair
// (i, j) contributes (K_ij - K_ji) / (lambda_j - lambda_i), K = V^T g_V. For (nearly) equal
// eigenvalues that is finite only when K_ij = K_ji, i.e. when the loss does not see rotations
// inside their eigenspace: the pair then contributes 0, otherwise it is a DomainError.
Tensor distinct_pairs(const Tensor& lambda, const Tensor& K, const Shape& batch) {
  const int64_t n = K.size(-1), count = numel(batch);
  Tensor keep = Tensor::zeros(K.shape());
  const double *l = lambda.data().data(), *k = K.data().data();
  double* m = keep.mutable_data().data();
  for (int64_t b = 0; b < count; ++b) {
    const double* lb = l + b * n;
    const double* kb = k + b * n * n;
    double scale = 0.0, kscale = 0.0;
    for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(lb[i]));
    for (int64_t i = 0; i < n * n; ++i) kscale = std::max(kscale, std::abs(kb[i]));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if (i == j) continue;
        if (std::abs(lb[j] - lb[i]) > kEqualEigenvalues * scale) {
          m[b * n * n + i * n + j] = 1.0;
          continue;
        }
        if (i < j && std::abs(kb[i * n + j] - kb[j * n + i]) > kCancelled * kscale)
          throw DomainError(
              "syevd",
              fmt::format("backward: {} has (nearly) equal eigenvalues {} and {} ({} and {}), "
                          "whose eigenvectors are not unique, and the loss depends on which "
                          "ones were returned: the gradient does not exist. A loss of the "
                          "eigenvalues only, or of the projector onto their common eigenspace, "
                          "is differentiable there.",
                          describe_batch_element(b, batch), i, j, lb[i], lb[j]),
              "A", {K.shape()}, unravel_index(b, batch));
      }
  }
  return keep;
}

}  // namespace

std::pair<Tensor, Tensor> syevd(const Tensor& A) {
  const auto s = detail::square_matrix_shape(A, "syevd", "A");
  detail::check_finite(A, s, "syevd", "A");
  const int64_t n = s.rows;
  Tensor U = A.clone();
  Shape ls = s.batch;
  ls.push_back(n);
  Tensor lambda = Tensor::empty(ls);
  std::vector<int64_t> info(static_cast<size_t>(s.count()));
  kernels::syevd(n, U.mutable_data().data(), s.size(), lambda.mutable_data().data(), s.count(),
                 info.data());
  for (int64_t b = 0; b < s.count(); ++b)
    if (info[static_cast<size_t>(b)] != 0)
      throw DomainError("syevd", fmt::format("the eigensolver did not converge for {} (info {}).",
                                             describe_batch_element(b, s.batch),
                                             info[static_cast<size_t>(b)]),
                        "A", {A.shape()}, unravel_index(b, s.batch));
  auto outs = record_multi("syevd", {A}, {U, lambda},
                           [U, lambda, batch = s.batch](std::span<const Tensor> g, Needs) {
    // With V = U^T (eigenvectors as columns) the classical rule is
    //   gA = V (diag(g_lambda) + F o (V^T g_V)) V^T,  F_ij = 1 / (lambda_j - lambda_i), i != j,
    // and V^T g_V = U g_U^T. The result is symmetrised (symmetric convention).
    Tensor inner;
    if (g[1].defined()) inner = makediag(g[1]);
    if (g[0].defined()) {
      Tensor K = gemm2(U, g[0], {.transpose_b = true});
      Tensor keep = distinct_pairs(lambda, K, batch);
      // 1 - keep on the pairs left out keeps the division finite; keep zeroes them.
      Tensor gap = unsqueeze(lambda, -2) - unsqueeze(lambda, -1) + (1.0 - keep);
      Tensor term = keep / gap * K;
      inner = inner.defined() ? inner + term : term;
    }
    Tensor gA = gemm2(gemm2(U, inner, {.transpose_a = true}), U);
    return Grads{0.5 * (gA + transpose(gA))};
  });
  return {outs[0], outs[1]};
}

std::pair<Tensor, Tensor> gelqf(const Tensor& A) {
  const auto s = detail::matrix_shape(A, "gelqf", "A");
  if (s.rows > s.cols)
    throw ShapeError("gelqf", fmt::format("needs m <= n for m x n matrices, got shape {}; for a "
                                          "tall matrix factorise its transpose.",
                                          format_shape(A.shape())),
                     "A", {A.shape()});
  detail::check_finite(A, s, "gelqf", "A");
  const int64_t m = s.rows;
  Tensor Q = A.clone();
  Tensor L = Tensor::zeros(detail::with_matrix(s.batch, m, m));
  kernels::gelqf(m, s.cols, Q.mutable_data().data(), s.size(), L.mutable_data().data(), s.count());
  auto outs = record_multi("gelqf", {A}, {Q, L}, [Q, L](std::span<const Tensor> g, Needs) {
    // gA = L^{-T} (gQ + copyltu(M) Q),  M = L^T gL - gQ Q^T,  copyltu(M) = tril(M) + tril(M,-1)^T
    Tensor M;
    if (g[1].defined()) M = gemm2(L, g[1], {.transpose_a = true});
    if (g[0].defined()) {
      Tensor term = gemm2(g[0], Q, {.transpose_b = true});
      M = M.defined() ? M - term : -term;
    }
    Tensor S = tril(M) + transpose(tril(M, -1));
    Tensor rhs = gemm2(S, Q);
    if (g[0].defined()) rhs = rhs + g[0];
    return Grads{trsm(L, rhs, {.transpose = true})};
  });
  return {outs[0], outs[1]};
}

}  // namespace cholla::linalg
