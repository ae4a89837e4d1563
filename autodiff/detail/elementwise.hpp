// Internal: value kernels for elementwise ops (no tape). Broadcasting follows numpy: shapes are
// aligned at the last dimension and a size-1 dimension repeats. Large maps are split over the
// thread pool (autodiff/parallel.hpp) in fixed chunks; every element is computed the same way
// whatever the chunking, so results do not depend on the thread count.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "autodiff/checks.hpp"
#include "autodiff/parallel.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tensor.hpp"

namespace cholla::detail {

// Elements per parallel chunk: 256 KiB of doubles, several microseconds of the cheapest map,
// well above the cost of handing a chunk to a worker.
inline constexpr int64_t kElementwiseGrain = int64_t{1} << 15;

// o[i] = f(i) for i < n, chunked over the pool.
template <class F>
void parallel_fill(double* o, int64_t n, F&& f) {
  parallel_for(n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) o[i] = f(i);
  });
}

// Strides of `in` as seen from a broadcast `out` shape: 0 where `in` repeats.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Calls f(flat_out, offsets) for every element of `out`, where offsets[k] is the matching
// position in operand k (given by its broadcast strides). Offsets advance incrementally.
template <size_t K, class F>
void for_each_broadcast(const Shape& out, const std::array<std::vector<int64_t>, K>& strides,
                        F&& f) {
  const int64_t n = numel(out);
  if (n == 0) return;
  const size_t rank = out.size();
  std::vector<int64_t> index(rank, 0);
  std::array<int64_t, K> offset{};
  for (int64_t i = 0; i < n; ++i) {
    f(i, offset);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < out[d]) {
        for (size_t k = 0; k < K; ++k) offset[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < K; ++k) offset[k] -= strides[k][d] * (out[d] - 1);
      index[d] = 0;
    }
  }
}

// `op` names the caller when x is undefined.
template <class F>
Tensor map_unary(const Tensor& x, const char* op, F f) {
  check_defined(x, op, "x");
  Tensor out = Tensor::empty_like(x);
  const double* in = x.data().data();
  parallel_fill(out.mutable_data().data(), x.numel(), [&](int64_t i) { return f(in[i]); });
  return out;
}

template <class F>
Tensor map_binary(const Tensor& a, const Tensor& b, const char* op, F f) {
  const double* pa = a.data().data();
  const double* pb = b.data().data();
  if (a.shape() == b.shape()) {
    Tensor out = Tensor::empty_like(a);
    parallel_fill(out.mutable_data().data(), a.numel(), [&](int64_t i) { return f(pa[i], pb[i]); });
    return out;
  }
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape, op);
  double* o = out.mutable_data().data();
  if (b.numel() == 1 && shape == a.shape()) {
    const double s = pb[0];
    parallel_fill(o, a.numel(), [&](int64_t i) { return f(pa[i], s); });
    return out;
  }
  if (a.numel() == 1 && shape == b.shape()) {
    const double s = pa[0];
    parallel_fill(o, b.numel(), [&](int64_t i) { return f(s, pb[i]); });
    return out;
  }
  // General broadcasting walks its offsets incrementally: one sequential pass.
  std::array<std::vector<int64_t>, 2> strides{broadcast_strides(a.shape(), shape),
                                              broadcast_strides(b.shape(), shape)};
  for_each_broadcast(shape, strides, [&](int64_t i, const std::array<int64_t, 2>& off) {
    o[i] = f(pa[off[0]], pb[off[1]]);
  });
  return out;
}

}  // namespace cholla::detail
