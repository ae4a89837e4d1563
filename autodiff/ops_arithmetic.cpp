// + - * / and their scalar forms. Backward rules reduce broadcast gradients with sum_to.
#include <array>
#include <fmt/format.h>

#include "autodiff/checks.hpp"
#include "autodiff/detail/elementwise.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"

namespace cholla {
namespace detail {

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  const auto own = strides_of(in);
  const size_t lead = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d)
    strides[lead + d] = in[d] == 1 && out[lead + d] != 1 ? 0 : own[d];
  return strides;
}

}  // namespace detail

Tensor add(const Tensor& a, const Tensor& b) {
  check_defined(a, "add", "a"), check_defined(b, "add", "b");
  Tensor out = detail::map_binary(a, b, "add", [](double x, double y) { return x + y; });
  if (!needs_recording({a, b})) return out;  // skip building the closure
  if (a.shape() == b.shape())  // no broadcast: the gradient passes through, nothing to capture
    detail::attach_pass_through("add", a, b, out, [](const Tensor& g, Needs n) {
      return Grads{n[0] ? g : Tensor(), n[1] ? g : Tensor()};
    });
  else
    out = record("add", {a, b}, std::move(out), [sa = a.shape(), sb = b.shape()](const Tensor& g, Needs n) {
      return Grads{n[0] ? sum_to(g, sa) : Tensor(), n[1] ? sum_to(g, sb) : Tensor()};
    });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_defined(a, "sub", "a"), check_defined(b, "sub", "b");
  Tensor out = detail::map_binary(a, b, "sub", [](double x, double y) { return x - y; });
  if (!needs_recording({a, b})) return out;
  if (a.shape() == b.shape())
    return record("sub", {a, b}, out, [](const Tensor& g, Needs n) {
      return Grads{n[0] ? g : Tensor(), n[1] ? neg(g) : Tensor()};
    });
  return record("sub", {a, b}, out, [sa = a.shape(), sb = b.shape()](const Tensor& g, Needs n) {
    return Grads{n[0] ? sum_to(g, sa) : Tensor(), n[1] ? sum_to(neg(g), sb) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_defined(a, "mul", "a"), check_defined(b, "mul", "b");
  Tensor out = detail::map_binary(a, b, "mul", [](double x, double y) { return x * y; });
  if (!needs_recording({a, b})) return out;
  auto composed = [a, b](const Tensor& g, Needs n) {
    return Grads{n[0] ? sum_to(g * b, a.shape()) : Tensor(),
                 n[1] ? sum_to(g * a, b.shape()) : Tensor()};
  };
  if (a.shape() != b.shape()) {
    out = record("mul", {a, b}, std::move(out), composed);
    return out;
  }
  // Pointers to the values, not handles: `composed` holds a and b as long as the entry.
  detail::attach_elementwise("mul", a, b, out, composed,
                             [pa = a.data().data(), pb = b.data().data()](size_t input, std::span<double> g) {
                               const double* other = input == 0 ? pb : pa;
                               for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] * other[i];  // g * b, g * a
                             });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  check_defined(a, "div", "a"), check_defined(b, "div", "b");
  Tensor out = detail::map_binary(a, b, "div", [](double x, double y) { return x / y; });
  return record("div", {a, b}, out, [a, b, out](const Tensor& g, Needs n) {
    Tensor gb;
    if (n[1]) gb = sum_to(neg(g * out / b), b.shape());  // d(a/b)/db = -a/b^2 = -out/b
    return Grads{n[0] ? sum_to(g / b, a.shape()) : Tensor(), gb};
  });
}

Tensor neg(const Tensor& x) { return affine(x, -1.0, 0.0); }

Tensor affine(const Tensor& x, double scale, double shift) {
  Tensor out = detail::map_unary(x, "affine", [scale, shift](double v) { return v * scale + shift; });
  if (needs_recording({x}))
    detail::attach_elementwise(
        "affine", x, out,
        [scale](const Tensor& g, Needs) { return Grads{affine(g, scale, 0.0)}; },
        [scale](std::span<double> g) {
          for (double& v : g) v = v * scale + 0.0;  // affine(g, scale, 0.0)'s bits (-0 becomes +0)
        });
  return out;
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double b) { return affine(a, 1.0, b); }
Tensor operator+(double a, const Tensor& b) { return affine(b, 1.0, a); }
Tensor operator-(const Tensor& a, double b) { return affine(a, 1.0, -b); }
Tensor operator-(double a, const Tensor& b) { return affine(b, -1.0, a); }
Tensor operator*(const Tensor& a, double b) { return affine(a, b, 0.0); }
Tensor operator*(double a, const Tensor& b) { return affine(b, a, 0.0); }
Tensor operator/(const Tensor& a, double b) { return affine(a, 1.0 / b, 0.0); }
Tensor operator/(double a, const Tensor& b) { return a * reciprocal(b); }

}  // namespace cholla
