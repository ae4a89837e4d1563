// Reductions. Two primitives carry the whole family: sum_to (sum over broadcast dimensions)
// and expand (broadcast), each the other's adjoint. sum, mean, logsumexp and softmax are
// compositions of them, so their gradients of any order come from the tape.
#include <algorithm>
#include <array>
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <vector>

#include "autodiff/detail/elementwise.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/parallel.hpp"
#include "autodiff/tape.hpp"

namespace cholla {
namespace {

// `small` must broadcast to `big`: equal rank or fewer dims, each 1 or equal.
void check_broadcastable(const Shape& small, const Shape& big, const char* op) {
  bool ok = small.size() <= big.size();
  for (size_t i = 0; ok && i < small.size(); ++i) {
    const int64_t s = small[small.size() - 1 - i], b = big[big.size() - 1 - i];
    ok = s == b || s == 1;
  }
  if (!ok)
    throw ShapeError(op, fmt::format("shape {} does not broadcast to shape {}.",
                                     format_shape(small), format_shape(big)),
                     "", {small, big});
}

// Shape of x with the given dims set to 1, and the sorted, normalised dims.
Shape kept_shape(const Shape& shape, std::vector<int64_t>& dims, const char* op) {
  Shape keep = shape;
  for (int64_t& d : dims) {
    d = normalize_dim(d, static_cast<int64_t>(shape.size()), op);
    keep[static_cast<size_t>(d)] = 1;
  }
  std::sort(dims.begin(), dims.end());
  if (std::adjacent_find(dims.begin(), dims.end()) != dims.end())
    throw ShapeError(op, "a dimension is listed twice.", "dims", {shape});
  return keep;
}

Shape dropped_shape(const Shape& shape, const std::vector<int64_t>& dims) {
  Shape out;
  for (size_t d = 0; d < shape.size(); ++d)
    if (!std::binary_search(dims.begin(), dims.end(), static_cast<int64_t>(d)))
      out.push_back(shape[d]);
  return out;
}

// The sum of n contiguous values in an order fixed by n alone: chunks of kSumChunk values, each
// summed by 8 independent accumulators (one serial chain of adds ran at the adder's latency,
// ~0.5 ns per value), the chunk sums added in chunk order. Large inputs split the chunks over
// the pool; the result is the same bits for every thread count.
constexpr int64_t kSumChunk = int64_t{1} << 15;

double chunk_sum(const double* in, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += in[i + k];
  for (; i < n; ++i) acc[i % 8] += in[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double contiguous_sum(const double* in, int64_t n) {
  const int64_t chunks = parallel_chunk_count(n, kSumChunk);
  if (chunks <= 1) return chunk_sum(in, n);
  std::vector<double> partial(static_cast<size_t>(chunks));
  parallel_for(n, kSumChunk, [&](int64_t begin, int64_t end) {
    partial[static_cast<size_t>(begin / kSumChunk)] = chunk_sum(in + begin, end - begin);
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

// The rules of sum(x) * scale: the shape to expand the gradient to and the scale, shared by
// the composed rule and the raw one (which gives the same bits in one tensor, not two).
struct TotalRules {
  Shape full;
  double scale;
  Grads composed(const Tensor& g, Needs) const {
    return Grads{expand(scale == 1.0 ? g : affine(g, scale, 0.0), full)};
  }
  Grads first_order(const Tensor& g, Needs) const {
    Tensor gx = Tensor::empty(full, "backward of sum");
    const double value = scale == 1.0 ? g.item() : g.item() * scale + 0.0;
    detail::parallel_fill(gx.mutable_data().data(), gx.numel(), [value](int64_t) { return value; });
    return Grads{gx};
  }
};

// sum(x) * scale as one op of shape [] (sum and mean: one entry, where sum_to + reshape +
// affine made three). The value and both rules give the composed ops' bits.
Tensor scaled_total(const Tensor& x, double scale, const char* op) {
  check_defined(x, op, "x");
  Tensor out = Tensor::empty({}, op);
  out.mutable_data()[0] = contiguous_sum(x.data().data(), x.numel()) * scale + 0.0;
  if (needs_recording({x})) {
    detail::EntryBuilder entry(op, x, out);
    detail::place_shared_rules(TotalRules{x.shape(), scale}, entry.backward(), entry.raw_backward());
  }
  return out;
}

}  // namespace

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  check_broadcastable(shape, x.shape(), "sum_to");
  Tensor out = Tensor::zeros(shape);
  double* o = out.mutable_data().data();
  const double* in = x.data().data();
  if (out.numel() == 1) {
    o[0] = contiguous_sum(in, x.numel());
  } else {
    std::array<std::vector<int64_t>, 1> strides{detail::broadcast_strides(shape, x.shape())};
    detail::for_each_broadcast(x.shape(), strides, [&](int64_t i, const std::array<int64_t, 1>& off) {
      o[off[0]] += in[i];
    });
  }
  return record("sum_to", {x}, out,
                [full = x.shape()](const Tensor& g, Needs) { return Grads{expand(g, full)}; });
}

namespace {

// True when broadcasting `small` to `shape` only repeats it whole along leading dimensions
// (small = [1, ..., 1, trailing dims of shape]): the result is `small` copied end to end.
bool repeats_along_leading_dims(const Shape& small, const Shape& shape) {
  size_t first = 0;
  while (first < small.size() && small[first] == 1) ++first;
  const size_t kept = small.size() - first;
  if (kept > shape.size()) return false;
  return std::equal(small.begin() + static_cast<std::ptrdiff_t>(first), small.end(),
                    shape.end() - static_cast<std::ptrdiff_t>(kept));
}

}  // namespace

Tensor expand(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  check_broadcastable(x.shape(), shape, "expand");
  Tensor out = Tensor::empty(shape, "expand");
  double* o = out.mutable_data().data();
  const double* in = x.data().data();
  const int64_t n = out.numel(), block = x.numel();
  if (block == 1) {
    const double value = in[0];  // the backward of sum/mean: the common case, a fill (over the pool)
    detail::parallel_fill(o, n, [value](int64_t) { return value; });
  } else if (repeats_along_leading_dims(x.shape(), shape)) {
    for (int64_t at = 0; at < n; at += block) std::copy_n(in, block, o + at);
  } else {
    std::array<std::vector<int64_t>, 1> strides{detail::broadcast_strides(x.shape(), shape)};
    detail::for_each_broadcast(shape, strides, [&](int64_t i, const std::array<int64_t, 1>& off) {
      o[i] = in[off[0]];
    });
  }
  return record("expand", {x}, out,
                [small = x.shape()](const Tensor& g, Needs) { return Grads{sum_to(g, small)}; });
}

Tensor sum(const Tensor& x) { return scaled_total(x, 1.0, "sum"); }

Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  const Shape keep = kept_shape(x.shape(), dims, "sum");
  Tensor out = sum_to(x, keep);
  return keepdim ? out : reshape(out, dropped_shape(x.shape(), dims));
}

Tensor mean(const Tensor& x) {
  check_defined(x, "mean", "x");
  return scaled_total(x, 1.0 / static_cast<double>(std::max<int64_t>(x.numel(), 1)), "mean");
}

Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  const Shape keep = kept_shape(x.shape(), dims, "mean");
  const double count = static_cast<double>(x.numel()) / static_cast<double>(std::max<int64_t>(numel(keep), 1));
  return sum(x, dims, keepdim) / count;
}

Tensor max(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  const Shape keep = kept_shape(x.shape(), dims, "max");
  // Only a reduction over an empty dimension has no answer; an empty batch gives an empty result.
  if (x.numel() == 0 && numel(keep) != 0)
    throw ShapeError("max", "cannot reduce an empty tensor.", "x", {x.shape()});
  Tensor out = Tensor::full(keep, -std::numeric_limits<double>::infinity());
  double* o = out.mutable_data().data();
  const double* in = x.data().data();
  std::array<std::vector<int64_t>, 1> strides{detail::broadcast_strides(keep, x.shape())};
  detail::for_each_broadcast(x.shape(), strides, [&](int64_t i, const std::array<int64_t, 1>& off) {
    o[off[0]] = std::max(o[off[0]], in[i]);
  });
  out = record("max", {x}, out, [x, out](const Tensor& g, Needs) {
    // Ties share the gradient equally (the max is not differentiable there; this is the
    // symmetric subgradient).
    Tensor hit = detail::map_binary(x.detach(), out.detach(), "max",
                                    [](double a, double m) { return a == m ? 1.0 : 0.0; });
    Tensor share = hit / sum_to(hit, out.shape());
    return Grads{g * share};
  });
  return keepdim ? out : reshape(out, dropped_shape(x.shape(), dims));
}

Tensor logsumexp(const Tensor& x) {
  std::vector<int64_t> all(x.shape().size());
  for (size_t d = 0; d < all.size(); ++d) all[d] = static_cast<int64_t>(d);
  return logsumexp(x, all, false);
}

Tensor logsumexp(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  // Shift by the (constant) maximum so exp never overflows; a -inf/inf/NaN maximum is
  // replaced by 0 so that all -inf rows give -inf rather than NaN.
  Tensor shift = max(x.detach(), dims, true);
  for (double& v : shift.mutable_data())
    if (!std::isfinite(v)) v = 0.0;
  Tensor out = log(sum(exp(x - shift), dims, true)) + shift;
  if (keepdim) return out;
  kept_shape(x.shape(), dims, "logsumexp");
  return reshape(out, dropped_shape(x.shape(), dims));
}

Tensor log_softmax(const Tensor& x, int64_t dim) { return x - logsumexp(x, {dim}, true); }
Tensor softmax(const Tensor& x, int64_t dim) { return exp(log_softmax(x, dim)); }

}  // namespace cholla
