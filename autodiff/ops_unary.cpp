// Elementwise maths. Each op: values with a plain loop, then its derivative as ops, next to it.
#include <cmath>

#include "autodiff/elementwise.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"

namespace cholla {

Tensor exp(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return std::exp(v); });
  return record("exp", {x}, out, [out](const Tensor& g, Needs) { return Grads{g * out}; });
}

Tensor log(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return std::log(v); });
  return record("log", {x}, out, [x](const Tensor& g, Needs) { return Grads{g / x}; });
}

Tensor log1p(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return std::log1p(v); });
  return record("log1p", {x}, out, [x](const Tensor& g, Needs) { return Grads{g / (x + 1.0)}; });
}

Tensor sqrt(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return std::sqrt(v); });
  return record("sqrt", {x}, out,
                [out](const Tensor& g, Needs) { return Grads{g * 0.5 / out}; });
}

Tensor square(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return v * v; });
  return record("square", {x}, out, [x](const Tensor& g, Needs) { return Grads{g * (2.0 * x)}; });
}

Tensor reciprocal(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return 1.0 / v; });
  return record("reciprocal", {x}, out,
                [out](const Tensor& g, Needs) { return Grads{-(g * square(out))}; });
}

Tensor pow(const Tensor& x, double p) {
  if (p == 0.0) return affine(x, 0.0, 1.0);  // keeps the (zero) gradient path to x
  if (p == 1.0) return x;
  if (p == 2.0) return square(x);
  Tensor out = detail::map_unary(x, [p](double v) { return std::pow(v, p); });
  return record("pow", {x}, out, [x, p](const Tensor& g, Needs) {
    return Grads{g * (p * pow(x, p - 1.0))};
  });
}

Tensor pow(const Tensor& x, const Tensor& p) {
  Tensor out = detail::map_binary(x, p, "pow", [](double a, double b) { return std::pow(a, b); });
  return record("pow", {x, p}, out, [x, p, out](const Tensor& g, Needs n) {
    Tensor gx, gp;
    if (n[0]) gx = sum_to(g * p * pow(x, p - 1.0), x.shape());
    if (n[1]) gp = sum_to(g * out * log(x), p.shape());
    return Grads{gx, gp};
  });
}

Tensor abs(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return std::abs(v); });
  return record("abs", {x}, out, [x](const Tensor& g, Needs) {
    // sign(x) is piecewise constant: a constant tensor, so second derivatives are zero.
    Tensor sign = detail::map_unary(x, [](double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); });
    return Grads{g * sign};
  });
}

Tensor tanh(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return std::tanh(v); });
  return record("tanh", {x}, out,
                [out](const Tensor& g, Needs) { return Grads{g * (1.0 - square(out))}; });
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) {
    // Evaluate through exp(-|v|) so neither branch overflows.
    const double e = std::exp(-std::abs(v));
    return v >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  });
  return record("sigmoid", {x}, out,
                [out](const Tensor& g, Needs) { return Grads{g * out * (1.0 - out)}; });
}

Tensor relu(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) { return v > 0 ? v : 0.0; });
  return record("relu", {x}, out, [x](const Tensor& g, Needs) {
    Tensor mask = detail::map_unary(x, [](double v) { return v > 0 ? 1.0 : 0.0; });
    return Grads{g * mask};
  });
}

Tensor elu(const Tensor& x, double alpha) {
  Tensor out = detail::map_unary(x, [alpha](double v) { return v > 0 ? v : alpha * std::expm1(v); });
  return record("elu", {x}, out, [x, out, alpha](const Tensor& g, Needs) {
    // d/dx = 1 for x > 0, alpha * exp(x) = out + alpha otherwise; written through `out` so the
    // second derivative (alpha * exp(x) on the negative side) comes out of the tape.
    Tensor positive = detail::map_unary(x, [](double v) { return v > 0 ? 1.0 : 0.0; });
    return Grads{g * where(positive, Tensor::ones({}), out + alpha)};
  });
}

Tensor softplus(const Tensor& x) {
  Tensor out = detail::map_unary(x, [](double v) {
    return std::max(v, 0.0) + std::log1p(std::exp(-std::abs(v)));
  });
  return record("softplus", {x}, out, [x](const Tensor& g, Needs) { return Grads{g * sigmoid(x)}; });
}

}  // namespace cholla
