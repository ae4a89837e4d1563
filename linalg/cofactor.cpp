// The cofactor matrix C(A) = adj(A)^T, computed without A^{-1} (docs/linalg.md, det).
//
// Two identities make it exact at any matrix, singular or not, and differentiable throughout:
//
// 1. For orthogonal constants U, V and M = U^T A V (so A = U M V^T), adj(XY) = adj(Y) adj(X)
//    and adj(Q) = det(Q) Q^T for orthogonal Q give
//        adj(A) = det(U) det(V) V adj(M) U^T.
//    This holds for every A, so U and V may be fixed numbers: the SVD of A's current value.
//    Then M is that SVD's diagonal: M11 (the r singular values above a threshold) is well
//    conditioned and the rest of M is ~0.
// 2. With the blocks M11 (r x r), M12, M21, M22 and the Schur complement
//    S = M22 - M21 M11^{-1} M12 (k x k, k = n - r), det M = det(M11) det(S), and multiplying
//    the block inverse of M by det M cancels every division by S:
//        adj(M) = det(M11) [ det(S) M11^{-1} + X adj(S) Y,  -X adj(S) ]
//                          [ -adj(S) Y,                      adj(S)   ]
//    with X = M11^{-1} M12, Y = M21 M11^{-1}. adj(S) and det(S) come from the
//    Faddeev-LeVerrier recursion: a polynomial in S, so nothing divides by S's small values.
// Collecting the blocks, with U = [U1 U2], V = [V1 V2] split after column r:
//    adj(A) = det(U) det(V) det(M11) [ det(S) V1 M11^{-1} U1^T + (V1 X - V2) adj(S) (Y U1^T - U2^T) ].
// Every step is a differentiable op on A (U, V are constants), so the result's derivatives of
// every order are those of the polynomial adj(A). At a matrix of rank n - 1 this is
// det(M11) V2 U2^T up to sign, the classical rank-one adjugate.
#include "linalg/detail/cofactor.hpp"

#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <vector>

#include "autodiff/ops.hpp"
#include "linalg/detail/batching.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/linalg.hpp"

namespace cholla::linalg::detail {
namespace {

Tensor trace(const Tensor& X) { return sum(extractdiag(X)); }

// (adj(S), det(S)) by Faddeev-LeVerrier: M_1 = I, c_{k-1} = -tr(S);
// M_j = S M_{j-1} + c_{k-j+1} I, c_{k-j} = -tr(S M_j) / j; then adj(S) = (-1)^{k+1} M_k and
// det(S) = (-1)^k c_0. S is small here, so the recursion's cancellation is harmless.
std::pair<Tensor, Tensor> adjugate_and_det(const Tensor& S) {
  const int64_t k = S.size(-1);
  if (k == 0) return {Tensor::zeros({0, 0}), Tensor::scalar(1.0)};
  const Tensor I = Tensor::eye(k);
  Tensor M = I;
  Tensor c = -trace(S);
  for (int64_t j = 2; j <= k; ++j) {
    M = gemm2(S, M) + c * I;
    c = -trace(gemm2(S, M)) / static_cast<double>(j);
  }
  const double parity = k % 2 == 0 ? 1.0 : -1.0;
  return {-parity * M, parity * c};
}

double orientation(const Tensor& Q) { return det(Q).item() > 0.0 ? 1.0 : -1.0; }

// One n x n matrix A (with history) and the SVD of its value: A = U diag(s) Vt.
Tensor cofactor_of_one(const Tensor& A, int64_t n, const double* u, const double* s,
                       const double* vt) {
  // Singular values below sqrt(eps) s_max go to the Schur complement: M11 stays well
  // conditioned, and the polynomial part handles the small ones exactly.
  const double tol = std::sqrt(std::numeric_limits<double>::epsilon()) * s[0];
  int64_t r = 0;
  while (r < n && s[r] > tol) ++r;
  const Tensor U = Tensor::from({n, n}, std::vector<double>(u, u + n * n));
  const Tensor V = transpose(Tensor::from({n, n}, std::vector<double>(vt, vt + n * n)));
  const Tensor U1 = slice(U, 1, 0, r), U2 = slice(U, 1, r, n);
  const Tensor V1 = slice(V, 1, 0, r), V2 = slice(V, 1, r, n);
  const Tensor P1 = gemm2(U1, A, {.transpose_a = true}), P2 = gemm2(U2, A, {.transpose_a = true});
  const Tensor M11 = gemm2(P1, V1), M12 = gemm2(P1, V2), M21 = gemm2(P2, V1), M22 = gemm2(P2, V2);
  const Tensor M11inv = inverse(M11);
  const Tensor X = gemm2(M11inv, M12), Y = gemm2(M21, M11inv);
  const auto [adjS, detS] = adjugate_and_det(M22 - gemm2(M21, X));
  const Tensor left = gemm2(V1, X) - V2;
  const Tensor right = gemm2(Y, U1, {.transpose_b = true}) - transpose(U2);
  const Tensor adjA = det(M11) * (detS * gemm2(gemm2(V1, M11inv), U1, {.transpose_b = true}) +
                                  gemm2(gemm2(left, adjS), right));
  return (orientation(U) * orientation(V)) * transpose(adjA);
}

}  // namespace

Tensor cofactor(const Tensor& A) {
  const auto shape = square_matrix_shape(A, "det", "A");
  const int64_t n = shape.rows, count = shape.count();
  if (n == 0 || count == 0) return Tensor::zeros(A.shape());
  std::vector<double> u(static_cast<size_t>(count * n * n)), vt(u.size()), s(static_cast<size_t>(count * n));
  std::vector<int64_t> info(static_cast<size_t>(count));
  kernels::gesvd(n, A.data().data(), n * n, u.data(), s.data(), vt.data(), count, info.data());
  const Tensor flat = reshape(A, {count, n, n});
  std::vector<Tensor> parts;
  for (int64_t b = 0; b < count; ++b) {
    if (info[static_cast<size_t>(b)] != 0)
      throw DomainError("det", fmt::format("backward: the SVD of {} did not converge (info {}); "
                                           "the gradient at this singular matrix is not available.",
                                           describe_batch_element(b, shape.batch),
                                           info[static_cast<size_t>(b)]),
                        "A", {A.shape()}, unravel_index(b, shape.batch));
    const size_t at = static_cast<size_t>(b * n * n);
    parts.push_back(cofactor_of_one(select(flat, 0, b), n, u.data() + at,
                                    s.data() + static_cast<size_t>(b * n), vt.data() + at));
  }
  return reshape(stack(parts, 0), A.shape());
}

}  // namespace cholla::linalg::detail
