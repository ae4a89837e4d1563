// Gradients at singular points. det's gradient, the cofactor matrix adj(A)^T, exists at every
// matrix; log|det| has none at a singular one (a DomainError naming slogdet); syevd's
// eigenvectors have none at a repeated eigenvalue unless the loss does not see rotations
// inside that eigenspace (a DomainError naming the two eigenvalues otherwise).
#include <cmath>

#include "linalg/detail/cofactor.hpp"
#include "linalg_helpers.hpp"

using namespace cholla;
using namespace cholla::linalg;
using Fn = std::vector<Tensor>;

namespace {

// det by Laplace expansion along the first row: exact for small integer matrices, and
// independent of LU, SVD and every cholla op.
double laplace_det(const std::vector<double>& a, int64_t n) {
  if (n == 0) return 1.0;
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    std::vector<double> minor;
    for (int64_t r = 1; r < n; ++r)
      for (int64_t c = 0; c < n; ++c)
        if (c != j) minor.push_back(a[static_cast<size_t>(r * n + c)]);
    total += (j % 2 == 0 ? 1.0 : -1.0) * a[static_cast<size_t>(j)] * laplace_det(minor, n - 1);
  }
  return total;
}

// C_ij = (-1)^{i+j} det(A without row i and column j), for every matrix of a batch.
std::vector<double> cofactors(const Tensor& A) {
  const int64_t n = A.size(-1), count = A.numel() / (n * n);
  std::vector<double> out;
  for (int64_t b = 0; b < count; ++b)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        std::vector<double> minor;
        for (int64_t r = 0; r < n; ++r)
          for (int64_t c = 0; c < n; ++c)
            if (r != i && c != j) minor.push_back(A.data()[static_cast<size_t>(b * n * n + r * n + c)]);
        out.push_back(((i + j) % 2 == 0 ? 1.0 : -1.0) * laplace_det(minor, n - 1));
      }
  return out;
}

Tensor det_grad(const Tensor& A) {
  Tensor leaf = A.detach().requires_grad(true);
  return grad({sum(det(leaf))}, {leaf})[0];
}

// A rotation by `angle` in the (i, j) plane of R^n (det 1).
Tensor givens(int64_t n, int64_t i, int64_t j, double angle) {
  Tensor G = Tensor::eye(n).clone();
  auto g = G.mutable_data();
  g[static_cast<size_t>(i * n + i)] = g[static_cast<size_t>(j * n + j)] = std::cos(angle);
  g[static_cast<size_t>(i * n + j)] = -std::sin(angle);
  g[static_cast<size_t>(j * n + i)] = std::sin(angle);
  return G;
}

// Matrices with a known exact singular structure (integers: LU meets an exact zero or a pivot
// at rounding level).
const Tensor kRank2 = Tensor::from({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
const Tensor kRank1 = Tensor::from({3, 3}, {1, 2, 3, 2, 4, 6, -3, -6, -9});
const Tensor kInvertible = Tensor::from({3, 3}, {2, -1, 0, -1, 2, -1, 0, -1, 3});
// 4x4 of rank 2: rows 3 and 4 are combinations of rows 1 and 2.
const Tensor kRank2of4 = Tensor::from({4, 4}, {1, 2, 0, -1, 3, -1, 2, 1, 4, 1, 2, 0, -2, 3, -2, -2});

}  // namespace

TEST_CASE("det: the gradient at an exactly singular matrix is the transposed adjugate") {
  test::check_values(det_grad(Tensor::from({2, 2}, {1, 2, 2, 4})), {4, -2, -2, 1});
  // A batch mixing ranks 2, 1, 0 and an invertible matrix; the invertible one must not change.
  Tensor batch = stack({kRank2, kRank1, Tensor::zeros({3, 3}), kInvertible}, 0);
  const auto expected = cofactors(batch);
  test::check_values(det_grad(batch), expected, 1e-12);
  test::check_values(det_grad(kRank2), {-3, 6, -3, 6, -12, 6, -3, 6, -3}, 1e-12);
  test::check_values(det_grad(kRank2of4), cofactors(kRank2of4), 1e-12);  // all zero
  test::check_values(det_grad(stack({kRank2of4, kRank2of4 + Tensor::eye(4)}, 0)),
                     cofactors(stack({kRank2of4, kRank2of4 + Tensor::eye(4)}, 0)), 1e-11);
  // The value itself: 0 at the singular ones (the integer rank-2 case may round to ~1e-15).
  CHECK(std::abs(det(batch).data()[0]) < 1e-12);
  CHECK(det(batch).data()[3] == doctest::Approx(laplace_det(std::vector<double>(kInvertible.data().begin(), kInvertible.data().end()), 3)));
}

TEST_CASE("det: the singular route against the closed form U diag(prod_{j != i} s_j) V^T") {
  // A = Q1 diag(s) Q2^T with rotations Q1, Q2 (det 1): adj(A)^T = Q1 diag(prod_{j!=i} s_j) Q2^T.
  // Singular values below sqrt(eps) (and exact zeros) go through the Schur complement.
  const Tensor Q1 = gemm2(givens(4, 0, 1, 0.3), givens(4, 1, 3, -1.1));
  const Tensor Q2 = gemm2(givens(4, 2, 3, 0.7), givens(4, 0, 2, 2.0));
  for (std::vector<double> s : {std::vector<double>{3, 2, 0.5, 0}, {3, 2, 1e-9, 0}, {2, 1, 1e-10, 1e-11},
                                {1, 0.5, 0, 0}, {2, 1.5, 1, 0.25}}) {
    CAPTURE(s[2]);
    CAPTURE(s[3]);
    Tensor A = gemm2(gemm2(Q1, makediag(Tensor::from({4}, s))), Q2, {.transpose_b = true});
    std::vector<double> p(4, 1.0);
    for (size_t i = 0; i < 4; ++i)
      for (size_t j = 0; j < 4; ++j)
        if (i != j) p[i] *= s[j];
    Tensor expected = gemm2(gemm2(Q1, makediag(Tensor::from({4}, p))), Q2, {.transpose_b = true});
    test::check_close(linalg::detail::cofactor(A), expected, 1e-13);
    test::check_close(det_grad(A), expected, 1e-13);
  }
}

TEST_CASE("det: finite differences and second order at singular matrices") {
  const GradcheckOptions o{.atol = 1e-6, .rtol = 1e-6};
  test::check_gradients([](const Fn& x) { return det(x[0]); },
                        {stack({kRank2, kRank1, Tensor::zeros({3, 3}), kInvertible}, 0)}, o);
  test::check_gradients([](const Fn& x) { return det(x[0]); }, {kRank2of4}, o);
  test::check_gradients([](const Fn& x) { return det(x[0]); }, {Tensor::from({2, 2}, {1, 2, 2, 4})}, o);
  // Composed: the singular matrix X X^T (rank 2) is an intermediate; d/dX is zero at first
  // order (det vanishes identically there) but not at second.
  test::check_gradients([](const Fn& x) { return det(gemm2(x[0], x[0], {.transpose_b = true}) + x[1]); },
                        {Tensor::from({3, 2}, {1, 2, -1, 0.5, 0, 1}), Tensor::zeros({3, 3})}, o);
}

TEST_CASE("slogdet: backward at a singular matrix is a DomainError naming slogdet") {
  Tensor A = stack({kInvertible, Tensor::from({3, 3}, {1, 2, 3, 2, 4, 6, 0, 1, 1})}, 0).requires_grad(true);
  auto [sign, logabs] = slogdet(A);
  CHECK(sign.data()[1] == 0.0);
  CHECK(std::isinf(logabs.data()[1]));
  try {
    sum(logabs).backward();
    FAIL("no throw");
  } catch (const DomainError& e) {
    CHECK(e.op() == "slogdet");
    CHECK(e.argument() == "A");
    CHECK(e.batch_index() == std::vector<int64_t>{1});
    const std::string m = e.what();
    CHECK(m.find("matrix 1 of batch shape [2] (index [1]) is singular") != std::string::npos);
    CHECK(m.find("inverse") == std::string::npos);
  }
}

namespace {

// Q diag(values) Q^T for a fixed rotation Q: the eigenvalues are known, repeated ones included.
Tensor with_eigenvalues(const std::vector<double>& values, Tensor* rotation = nullptr) {
  const Tensor Q = gemm2(givens(3, 0, 1, 0.4), givens(3, 1, 2, -0.9));
  if (rotation) *rotation = Q;
  Tensor A = gemm2(gemm2(Q, makediag(Tensor::from({3}, values))), Q, {.transpose_b = true});
  return 0.5 * (A + transpose(A));
}

}  // namespace

TEST_CASE("syevd: repeated eigenvalues and an eigenvector loss are a DomainError naming both") {
  const Tensor W = test::uniform({3, 3}, -1, 1, 31);
  for (double second : {1.0, 1.0 + 1e-13}) {
    CAPTURE(second);
    Tensor A = stack({with_eigenvalues({1, 2, 3}), with_eigenvalues({1, second, 3})}, 0).requires_grad(true);
    auto [U, lambda] = syevd(A);
    try {
      sum(U * W).backward();
      FAIL("no throw");
    } catch (const DomainError& e) {
      CHECK(e.op() == "syevd");
      CHECK(e.batch_index() == std::vector<int64_t>{1});
      const std::string m = e.what();
      CHECK(m.find("matrix 1 of batch shape [2] (index [1]) has (nearly) equal eigenvalues 0 and 1") != std::string::npos);
    }
  }
}

TEST_CASE("syevd: at repeated eigenvalues an eigenvalue-only loss has a finite gradient") {
  Tensor Q;
  Tensor A = with_eigenvalues({1, 1, 3}, &Q).requires_grad(true);
  // Equal weights on the repeated pair: d(sum_i w_i lambda_i) = Q diag(w) Q^T exactly.
  auto g = grad({sum(syevd(A).second * Tensor::from({3}, {2, 2, 5}))}, {A})[0];
  test::check_close(g, gemm2(gemm2(Q, makediag(Tensor::from({3}, {2, 2, 5}))), Q, {.transpose_b = true}), 1e-12);
  // Unequal weights: lambda_0 and lambda_1 are not differentiable there, but nothing is NaN.
  g = grad({sum(syevd(A).second * Tensor::from({3}, {1, 2, 3}))}, {A})[0];
  for (double v : g.data()) CHECK(std::isfinite(v));
}

TEST_CASE("syevd: a loss blind to rotations inside the repeated eigenspace is differentiable") {
  // The projector onto the eigenspace of the repeated eigenvalue is smooth in A while that
  // eigenvalue stays apart from the third: finite differences agree with the masked rule.
  Tensor A = with_eigenvalues({1, 1, 3});
  const Tensor W = test::uniform({3, 3}, -1, 1, 32);
  const GradcheckOptions sym{.structure = {Structure::Symmetric}};
  auto projector_loss = [W](const Fn& x) {
    Tensor top = slice(syevd(x[0]).first, 0, 0, 2);
    return sum(gemm2(top, top, {.transpose_a = true}) * W);
  };
  const auto first = gradcheck(projector_loss, {A}, sym);
  CHECK_MESSAGE(first.ok, first.report);
  // Closed form: P = I - q q^T with q the third eigenvector, dq = (3 I - A)^+ dA q = N dA q,
  // N = (I - q q^T) / (3 - 1); so dP = -(N dA q q^T + q q^T dA N), and for symmetric dA
  // the gradient is -(N W_s q q^T + q q^T W_s N) / 2 with W_s = W + W^T.
  Tensor Q;
  with_eigenvalues({1, 1, 3}, &Q);
  const Tensor q = slice(Q, 1, 2, 3);
  const Tensor qq = gemm2(q, q, {.transpose_b = true});
  const Tensor N = 0.5 * (Tensor::eye(3) - qq), Ws = W + transpose(W);
  const Tensor expected = -0.5 * (gemm2(gemm2(N, Ws), qq) + gemm2(gemm2(qq, Ws), N));
  Tensor leaf = A.detach().requires_grad(true);
  test::check_close(grad({projector_loss({leaf})}, {leaf})[0], expected, 1e-10);
}
