// extractdiag/makediag, extracttrian/maketrian, sumlogdiag (docs/linalg.md §5).
//
// All four packing ops are one gather/scatter pair over a list of matrix positions; a gather
// and the scatter with the same positions are exact adjoints, so each is the other's backward.
#include <cmath>
#include <fmt/format.h>
#include <memory>
#include <vector>

#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "linalg/detail/batching.hpp"
#include "linalg/linalg.hpp"

namespace cholla::linalg {
namespace {

using Positions = std::shared_ptr<const std::vector<int64_t>>;  // flat (row * n + col)

Tensor scatter(const Tensor& v, const Positions& at, int64_t n, const char* op);

// v[..., k] = A[..., at[k]]
Tensor gather(const Tensor& A, const Positions& at, int64_t n, const char* op) {
  Shape s(A.shape().begin(), A.shape().end() - 2);
  const int64_t count = numel(s), p = static_cast<int64_t>(at->size());
  s.push_back(p);
  Tensor out = Tensor::empty(s);
  const double* a = A.data().data();
  double* o = out.mutable_data().data();
  for (int64_t b = 0; b < count; ++b)
    for (int64_t k = 0; k < p; ++k) o[b * p + k] = a[b * n * n + (*at)[static_cast<size_t>(k)]];
  return record(op, {A}, out, [at, n, op](const Tensor& g, Needs) {
    return Grads{scatter(g, at, n, op)};
  });
}

// A[..., at[k]] = v[..., k], zeros elsewhere.
Tensor scatter(const Tensor& v, const Positions& at, int64_t n, const char* op) {
  Shape s(v.shape().begin(), v.shape().end() - 1);
  const int64_t count = numel(s), p = static_cast<int64_t>(at->size());
  s.push_back(n);
  s.push_back(n);
  Tensor out = Tensor::zeros(s);
  const double* in = v.data().data();
  double* o = out.mutable_data().data();
  for (int64_t b = 0; b < count; ++b)
    for (int64_t k = 0; k < p; ++k) o[b * n * n + (*at)[static_cast<size_t>(k)]] = in[b * p + k];
  return record(op, {v}, out, [at, n, op](const Tensor& g, Needs) {
    return Grads{gather(g, at, n, op)};
  });
}

Positions diagonal_positions(int64_t n, int64_t offset) {
  auto at = std::make_shared<std::vector<int64_t>>();
  const int64_t r0 = offset < 0 ? -offset : 0, c0 = offset > 0 ? offset : 0;
  for (int64_t i = 0; r0 + i < n && c0 + i < n; ++i) at->push_back((r0 + i) * n + c0 + i);
  return at;
}

// MXNet's packing: lower triangle row by row, upper triangle column by column.
Positions triangle_positions(int64_t n, int64_t offset, bool lower) {
  auto at = std::make_shared<std::vector<int64_t>>();
  const int64_t shift = offset < 0 ? -offset : offset, m = n - shift;
  const bool use_lower = offset < 0 || (offset == 0 && lower);
  for (int64_t outer = 0; outer < m; ++outer)
    for (int64_t inner = 0; inner <= outer; ++inner)
      at->push_back(use_lower ? (outer + shift) * n + inner : inner * n + outer + shift);
  return at;
}

int64_t vector_length(const Tensor& v, const char* op) {
  if (!v.defined() || v.dim() < 1)
    throw ShapeError(op, "needs a tensor of rank >= 1 (a batch of vectors).", "v",
                     {v.defined() ? v.shape() : Shape{}});
  return v.size(-1);
}

}  // namespace

Tensor extractdiag(const Tensor& A, const DiagOptions& o) {
  const auto s = detail::square_matrix_shape(A, "extractdiag", "A");
  if (std::abs(o.offset) >= std::max<int64_t>(s.rows, 1))
    throw ShapeError("extractdiag", fmt::format("offset {} is out of range for {}x{} matrices.",
                                                o.offset, s.rows, s.rows),
                     "offset", {A.shape()});
  return gather(A, diagonal_positions(s.rows, o.offset), s.rows, "extractdiag");
}

Tensor makediag(const Tensor& v, const DiagOptions& o) {
  const int64_t n = vector_length(v, "makediag") + std::abs(o.offset);
  return scatter(v, diagonal_positions(n, o.offset), n, "makediag");
}

Tensor extracttrian(const Tensor& A, const TrianOptions& o) {
  const auto s = detail::square_matrix_shape(A, "extracttrian", "A");
  if (std::abs(o.offset) >= std::max<int64_t>(s.rows, 1))
    throw ShapeError("extracttrian", fmt::format("offset {} is out of range for {}x{} matrices.",
                                                 o.offset, s.rows, s.rows),
                     "offset", {A.shape()});
  return gather(A, triangle_positions(s.rows, o.offset, o.lower), s.rows, "extracttrian");
}

Tensor maketrian(const Tensor& v, const TrianOptions& o) {
  const int64_t len = vector_length(v, "maketrian");
  const auto m = static_cast<int64_t>(std::llround((std::sqrt(8.0 * static_cast<double>(len) + 1.0) - 1.0) / 2.0));
  if (m * (m + 1) / 2 != len)
    throw ShapeError("maketrian",
                     fmt::format("the last dimension of shape {} is {}, which is not a triangular "
                                 "number m(m+1)/2 (1, 3, 6, 10, ...).",
                                 format_shape(v.shape()), len),
                     "v", {v.shape()});
  const int64_t n = m + std::abs(o.offset);
  return scatter(v, triangle_positions(n, o.offset, o.lower), n, "maketrian");
}

Tensor sumlogdiag(const Tensor& A) {
  const auto s = detail::square_matrix_shape(A, "sumlogdiag", "A");
  const double* a = A.data().data();
  for (int64_t b = 0; b < s.count(); ++b)
    for (int64_t i = 0; i < s.rows; ++i) {
      const double d = a[b * s.size() + i * s.rows + i];
      if (!(d > 0.0) || !std::isfinite(d))
        throw DomainError("sumlogdiag",
                          fmt::format("{} has diagonal entry {} = {}; the log needs a positive, "
                                      "finite diagonal (a Cholesky factor's diagonal is positive: "
                                      "map free parameters through softplus or exp).",
                                      describe_batch_element(b, s.batch), i, d),
                          "A", {A.shape()}, unravel_index(b, s.batch));
    }
  return sum(log(extractdiag(A)), {-1});
}

}  // namespace cholla::linalg
