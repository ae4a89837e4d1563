// Test inputs for linalg: well-conditioned SPD matrices, triangular factors, and a reference
// matrix product written independently of BLAS.
#pragma once

#include "../autodiff/helpers.hpp"

namespace cholla::test {

// batch + {rows, cols}.
inline Shape mat(Shape batch, int64_t rows, int64_t cols) {
  batch.push_back(rows);
  batch.push_back(cols);
  return batch;
}

// X X^T / n + I for X uniform: SPD with eigenvalues safely away from 0.
inline Tensor spd(const Shape& batch, int64_t n, uint64_t seed) {
  Shape s = batch;
  s.push_back(n);
  s.push_back(n);
  Tensor X = uniform(s, -1.0, 1.0, seed);
  NoGrad guard;
  Tensor S = linalg::gemm2(X, X, {.transpose_b = true}) / static_cast<double>(n) + Tensor::eye(n);
  // Exact symmetry (potrf reads one triangle; gradcheck perturbs symmetrically).
  return 0.5 * (S + transpose(S));
}

// A well-conditioned lower (or upper) triangular matrix with diagonal in [1, 2].
inline Tensor triangular(const Shape& batch, int64_t n, bool lower, uint64_t seed) {
  Shape s = batch;
  s.push_back(n);
  s.push_back(n);
  NoGrad guard;
  Tensor off = uniform(s, -0.5, 0.5, seed);
  Shape d = batch;
  d.push_back(n);
  Tensor diag = linalg::makediag(uniform(d, 1.0, 2.0, seed + 1));
  return (lower ? linalg::tril(off, -1) : linalg::triu(off, 1)) + diag;
}

// Plain triple loop over the last two dims (same batch shape): the independent reference.
inline std::vector<double> naive_matmul(const Tensor& A, const Tensor& B) {
  const int64_t m = A.size(-2), k = A.size(-1), n = B.size(-1);
  const int64_t batch = A.numel() / (m * k);
  std::vector<double> C(static_cast<size_t>(batch * m * n), 0.0);
  auto a = A.data();
  auto b = B.data();
  for (int64_t t = 0; t < batch; ++t)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (int64_t l = 0; l < k; ++l)
          s += a[static_cast<size_t>(t * m * k + i * k + l)] * b[static_cast<size_t>(t * k * n + l * n + j)];
        C[static_cast<size_t>(t * m * n + i * n + j)] = s;
      }
  return C;
}

inline void check_close(const Tensor& a, const Tensor& b, double tol = 1e-10) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0.0;
  for (size_t i = 0; i < a.data().size(); ++i)
    worst = std::max(worst, std::abs(a.data()[i] - b.data()[i]));
  CHECK_MESSAGE(worst <= tol, "max |a - b| = ", worst);
}

inline Tensor batch_eye(const Shape& batch, int64_t n) {
  Shape s = batch;
  s.push_back(n);
  s.push_back(n);
  return expand(Tensor::eye(n), s);
}

}  // namespace cholla::test
