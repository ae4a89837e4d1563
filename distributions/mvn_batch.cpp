// The MVN batch plan: which loc, factor and x each sample of log_prob reads.
#include "distributions/detail/mvn_batch.hpp"

#include <array>

#include "autodiff/detail/elementwise.hpp"
#include "autodiff/shape.hpp"

namespace cholla::dist::detail {
namespace {

// Offsets of each batch element into a tensor whose batch broadcasts to `shape`; empty with a
// uniform step when possible.
void place(const Shape& own, const Shape& shape, int64_t count, int64_t size,
           std::vector<int64_t>& list, int64_t& step) {
  const int64_t n = numel(own);
  if (n == count || n == 1) {
    step = n == 1 ? 0 : size;
    return;
  }
  std::array<std::vector<int64_t>, 1> strides{cholla::detail::broadcast_strides(own, shape)};
  list.resize(static_cast<size_t>(count));
  cholla::detail::for_each_broadcast(shape, strides, [&](int64_t i, const std::array<int64_t, 1>& off) {
    list[static_cast<size_t>(i)] = off[0] * size;
  });
}

}  // namespace

MvnBatch plan_mvn_batch_general(const Tensor& loc, const Tensor& factor, const Tensor& x) {
  MvnBatch b;
  b.d = factor.size(-1);
  const Shape lb = batch_shape(loc, 1), fb = batch_shape(factor, 2), xb = batch_shape(x, 1);
  b.shape = broadcast_shapes(broadcast_shapes(lb, fb, "log_prob"), xb, "log_prob");
  b.count = numel(b.shape);
  b.factor_count = numel(fb);
  place(lb, b.shape, b.count, b.d, b.loc_offset, b.loc_step);
  place(fb, b.shape, b.count, b.d * b.d, b.factor_offset, b.factor_step);
  place(xb, b.shape, b.count, b.d, b.x_offset, b.x_step);
  return b;
}

// One batch for all three: nothing to broadcast, every tensor is read at i * its size, and
// the general plan's numel, broadcast and placement work (most of a small call's planning)
// reduces to this. A single sample reads everything with step 0, as place() gives it.
MvnBatch plan_mvn_batch(const Tensor& loc, const Tensor& factor, const Tensor& x) {
  const std::span<const int64_t> batch = batch_dims(factor, 2);
  if (!same_dims(batch, batch_dims(loc, 1)) || !same_dims(batch, batch_dims(x, 1)))
    return plan_mvn_batch_general(loc, factor, x);
  int64_t count = 1;
  for (int64_t n : batch)  // the dimensions of a tensor: never negative
    if (__builtin_mul_overflow(count, n, &count)) return plan_mvn_batch_general(loc, factor, x);  // its error
  MvnBatch b;
  b.d = factor.shape().back();
  b.shape = Shape(batch.begin(), batch.end());
  b.count = count;
  b.factor_count = count;
  const bool shared = count == 1;
  b.loc_step = shared ? 0 : b.d;
  b.factor_step = shared ? 0 : b.d * b.d;
  b.x_step = shared ? 0 : b.d;
  return b;
}

}  // namespace cholla::dist::detail
