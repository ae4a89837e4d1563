// inverse, det, slogdet through LU with partial pivoting (docs/linalg.md §7).
//
// The LU factors are used for values only. The recorded backward rules re-derive A^{-1} from A
// with the differentiable `inverse`, so higher derivatives see the dependence on A (saved LU
// factors and pivots are not tape variables). At an exactly singular matrix det's gradient is
// the cofactor matrix (linalg/cofactor.cpp); log|det| has none there.
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <vector>

#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "linalg/detail/batching.hpp"
#include "linalg/detail/cofactor.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/linalg.hpp"

namespace cholla::linalg {
namespace {

// A pivot this small against the largest one: A^{-1} has lost about half the digits, and
// det(A) A^{-T} with it, so det's gradient is built without the inverse.
constexpr double kNearlySingular = 1e-8;

struct SignLogAbs {
  Tensor sign, logabs;
  int64_t first_singular = -1;         // flat batch index of the first singular matrix, or -1
  int64_t first_nearly_singular = -1;  // the same for a pivot ratio <= kNearlySingular
};

SignLogAbs lu_determinant(const Tensor& A, const char* op) {
  const auto s = detail::square_matrix_shape(A, op, "A");
  detail::check_finite(A, s, op, "A");
  const int64_t n = s.rows;
  std::vector<double> lu(A.data().begin(), A.data().end());
  std::vector<int64_t> pivots(static_cast<size_t>(s.count() * n)), info(static_cast<size_t>(s.count()));
  kernels::getrf(n, lu.data(), s.size(), pivots.data(), s.count(), info.data());
  SignLogAbs r{Tensor::empty(s.batch), Tensor::empty(s.batch)};
  for (int64_t b = 0; b < s.count(); ++b) {
    double sign = 1.0, logabs = 0.0, smallest = std::numeric_limits<double>::infinity(), largest = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double u = lu[static_cast<size_t>(b * s.size() + i * n + i)];
      if (pivots[static_cast<size_t>(b * n + i)] != i) sign = -sign;
      if (u < 0) sign = -sign;
      logabs += std::log(std::abs(u));
      smallest = std::min(smallest, std::abs(u));
      largest = std::max(largest, std::abs(u));
    }
    if (smallest <= kNearlySingular * largest && r.first_nearly_singular < 0) r.first_nearly_singular = b;
    if (info[static_cast<size_t>(b)] > 0) {
      sign = 0.0;
      logabs = -std::numeric_limits<double>::infinity();
      if (r.first_singular < 0) r.first_singular = b;
    }
    r.sign.mutable_data()[static_cast<size_t>(b)] = sign;
    r.logabs.mutable_data()[static_cast<size_t>(b)] = logabs;
  }
  return r;
}

// g of batch shape, spread over each matrix of a batch of matrices.
Tensor times_matrices(const Tensor& g, const Tensor& matrices) {
  Shape s = g.shape();
  s.push_back(1);
  s.push_back(1);
  return reshape(g, s) * matrices;
}

}  // namespace

Tensor inverse(const Tensor& A) {
  const auto s = detail::square_matrix_shape(A, "inverse", "A");
  detail::check_finite(A, s, "inverse", "A");
  Tensor X = A.clone();
  std::vector<int64_t> info(static_cast<size_t>(s.count()));
  kernels::inverse(s.rows, X.mutable_data().data(), s.size(), s.count(), info.data());
  for (int64_t b = 0; b < s.count(); ++b)
    if (info[static_cast<size_t>(b)] > 0)
      throw DomainError("inverse",
                        fmt::format("{} is singular (pivot {} of its LU factorisation is 0). For "
                                    "a covariance use potrf + trsm (or potri); to solve a "
                                    "system, prefer a solve to an inverse.",
                                    describe_batch_element(b, s.batch), info[static_cast<size_t>(b)]),
                        "A", {A.shape()}, unravel_index(b, s.batch));
  return record("inverse", {A}, X, [X](const Tensor& G, Needs) {
    // d(A^{-1}) = -X dA X  =>  gA = -X^T G X^T
    return Grads{-gemm2(gemm2(X, G, {.transpose_a = true}), X, {.transpose_b = true})};
  });
}

std::pair<Tensor, Tensor> slogdet(const Tensor& A) {
  SignLogAbs r = lu_determinant(A, "slogdet");
  // Only log|det| is differentiable: d log|det A| = tr(A^{-1} dA).
  Tensor logabs = record("slogdet", {A}, r.logabs, [A, singular = r.first_singular](const Tensor& g, Needs) {
    if (singular >= 0) {
      const Shape batch(A.shape().begin(), A.shape().end() - 2);
      throw DomainError("slogdet",
                        fmt::format("backward: {} is singular, so log|det| is -inf there and has "
                                    "no gradient. Keep the matrix away from singularity (e.g. "
                                    "add a multiple of the identity), or differentiate det.",
                                    describe_batch_element(singular, batch)),
                        "A", {A.shape()}, unravel_index(singular, batch));
    }
    return Grads{times_matrices(g, transpose(inverse(A)))};
  });
  return {r.sign, logabs};
}

Tensor det(const Tensor& A) {
  SignLogAbs r = lu_determinant(A, "det");
  Tensor value = Tensor::empty(r.sign.shape());
  for (size_t b = 0; b < value.data().size(); ++b)
    value.mutable_data()[b] = r.sign.data()[b] * std::exp(r.logabs.data()[b]);
  // d det A = tr(adj(A) dA): gA = g adj(A)^T, the cofactor matrix. Where every matrix is
  // safely invertible that is det(A) A^{-T}, through the recorded output; otherwise it is
  // built without an inverse.
  return record("det", {A}, value, [A, value, singular = r.first_nearly_singular >= 0](const Tensor& g, Needs) {
    if (singular) return Grads{times_matrices(g, detail::cofactor(A))};
    return Grads{times_matrices(g * value, transpose(inverse(A)))};
  });
}

}  // namespace cholla::linalg
