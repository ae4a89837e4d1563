// Internal: a tensor's batch dimensions (all but the event's last ones), read in place.
//
// The distributions compare and broadcast batches on every call; in the common case (one
// distribution per sample) they are equal, and comparing views of the shapes settles that
// without building a Shape or calling broadcast_shapes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "autodiff/shape.hpp"
#include "autodiff/tensor.hpp"

namespace cholla::dist::detail {

// All dimensions of t but the last `event` ones (t has at least `event`).
inline std::span<const int64_t> batch_dims(const Tensor& t, size_t event) {
  const Shape& s = t.shape();
  return {s.data(), s.size() - event};
}

inline Shape batch_shape(const Tensor& t, size_t event) {
  const std::span<const int64_t> dims = batch_dims(t, event);
  return Shape(dims.begin(), dims.end());
}

inline bool same_dims(std::span<const int64_t> a, std::span<const int64_t> b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)  // a loop, not std::equal (a memcmp call)
    if (a[i] != b[i]) return false;
  return true;
}

// The broadcast of two batches (ShapeError naming `op` when they do not broadcast).
inline Shape broadcast_batches(std::span<const int64_t> a, std::span<const int64_t> b, const char* op) {
  if (same_dims(a, b)) return Shape(a.begin(), a.end());
  return broadcast_shapes(Shape(a.begin(), a.end()), Shape(b.begin(), b.end()), op);
}

}  // namespace cholla::dist::detail
