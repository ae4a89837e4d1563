// Comparisons, where, clamp, maximum, minimum. Masks are constants: gradients flow through
// the selected branch only, and second derivatives of the selection itself are zero.
#include <algorithm>
#include <array>

#include "autodiff/detail/elementwise.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"

namespace cholla {

Tensor greater(const Tensor& a, const Tensor& b) {
  return detail::map_binary(a.detach(), b.detach(), "greater",
                            [](double x, double y) { return x > y ? 1.0 : 0.0; });
}

Tensor less(const Tensor& a, const Tensor& b) {
  return detail::map_binary(a.detach(), b.detach(), "less",
                            [](double x, double y) { return x < y ? 1.0 : 0.0; });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"),
                                       b.shape(), "where");
  Tensor out = Tensor::empty(shape);
  double* o = out.mutable_data().data();
  const double *pc = cond.data().data(), *pa = a.data().data(), *pb = b.data().data();
  std::array<std::vector<int64_t>, 3> strides{detail::broadcast_strides(cond.shape(), shape),
                                              detail::broadcast_strides(a.shape(), shape),
                                              detail::broadcast_strides(b.shape(), shape)};
  detail::for_each_broadcast(shape, strides, [&](int64_t i, const std::array<int64_t, 3>& off) {
    o[i] = pc[off[0]] != 0.0 ? pa[off[1]] : pb[off[2]];
  });
  Tensor mask = cond.detach();
  return record("where", {a, b}, out, [mask, sa = a.shape(), sb = b.shape()](const Tensor& g,
                                                                              Needs n) {
    Tensor zero = Tensor::zeros({});
    return Grads{n[0] ? sum_to(where(mask, g, zero), sa) : Tensor(),
                 n[1] ? sum_to(where(mask, zero, g), sb) : Tensor()};
  });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  Tensor out = detail::map_unary(x, "clamp", [lo, hi](double v) { return std::clamp(v, lo, hi); });
  return record("clamp", {x}, out, [x, lo, hi](const Tensor& g, Needs) {
    Tensor inside = detail::map_unary(x, "clamp", [lo, hi](double v) { return v >= lo && v <= hi ? 1.0 : 0.0; });
    return Grads{g * inside};
  });
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor pick_a = 1.0 - less(a, b);  // ties: a
  return where(pick_a, a, b);
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor pick_a = 1.0 - greater(a, b);  // ties: a
  return where(pick_a, a, b);
}

}  // namespace cholla
