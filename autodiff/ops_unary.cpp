// Elementwise maths. Each op: values (SIMD kernels of vector_math.hpp for the transcendental
// functions, plain loops for the rest), then its derivative as ops, next to it.
#include <cmath>

#include "autodiff/checks.hpp"
#include "autodiff/detail/elementwise.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "autodiff/detail/vector_math.hpp"

namespace cholla {
namespace {

// f over x through the vector kernel, chunked over the thread pool.
Tensor map_vector(const Tensor& x, const char* op, detail::UnaryFn f, double param = 0.0) {
  check_defined(x, op, "x");
  Tensor out = Tensor::empty_like(x);
  const double* in = x.data().data();
  double* o = out.mutable_data().data();
  parallel_for(x.numel(), detail::kElementwiseGrain, [&](int64_t begin, int64_t end) {
    detail::vector_unary(f, in + begin, o + begin, end - begin, param);
  });
  return out;
}

// An in-place first-order rule whose derivative is a function of one tensor's values (the
// op's input or output): g[i] = rule(g[i], t[i]). `rule` evaluates the composed rule's
// arithmetic in its order (affine's `+ 0.0` included), so both give the same bits.
// It keeps a pointer to t's values, not a handle: the op's composed rule, placed in the same
// entry, captures t and keeps it alive as long as the entry (one handle per entry, not two).
template <class F>
auto with_values(const Tensor& t, F rule) {
  return [pt = t.data().data(), rule](std::span<double> g) {
    for (size_t i = 0; i < g.size(); ++i) g[i] = rule(g[i], pt[i]);
  };
}

}  // namespace

Tensor exp(const Tensor& x) {
  Tensor out = map_vector(x, "exp", detail::UnaryFn::kExp);
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "exp", x, out, [out](const Tensor& g, Needs) { return Grads{g * out}; },
      with_values(out, [](double g, double y) { return g * y; }));
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = map_vector(x, "log", detail::UnaryFn::kLog);
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "log", x, out, [x](const Tensor& g, Needs) { return Grads{g / x}; },
      with_values(x, [](double g, double v) { return g / v; }));
  return out;
}

Tensor log1p(const Tensor& x) {
  Tensor out = map_vector(x, "log1p", detail::UnaryFn::kLog1p);
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "log1p", x, out, [x](const Tensor& g, Needs) { return Grads{g / (x + 1.0)}; },
      with_values(x, [](double g, double v) { return g / (v * 1.0 + 1.0); }));
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = map_vector(x, "sqrt", detail::UnaryFn::kSqrt);
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "sqrt", x, out, [out](const Tensor& g, Needs) { return Grads{g * 0.5 / out}; },
      with_values(out, [](double g, double y) { return (g * 0.5 + 0.0) / y; }));
  return out;
}

Tensor square(const Tensor& x) {
  Tensor out = detail::map_unary(x, "square", [](double v) { return v * v; });
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "square", x, out, [x](const Tensor& g, Needs) { return Grads{g * (2.0 * x)}; },
      with_values(x, [](double g, double v) { return g * (v * 2.0 + 0.0); }));
  return out;
}

Tensor reciprocal(const Tensor& x) {
  Tensor out = detail::map_unary(x, "reciprocal", [](double v) { return 1.0 / v; });
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "reciprocal", x, out, [out](const Tensor& g, Needs) { return Grads{-(g * square(out))}; },
      with_values(out, [](double g, double y) { return (g * (y * y)) * -1.0 + 0.0; }));
  return out;
}

Tensor pow(const Tensor& x, double p) {
  if (p == 0.0) return affine(x, 0.0, 1.0);  // keeps the (zero) gradient path to x
  if (p == 1.0) return x;
  if (p == 2.0) return square(x);
  Tensor out = detail::map_unary(x, "pow", [p](double v) { return std::pow(v, p); });
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
  Tensor out = detail::map_unary(x, "abs", [](double v) { return std::abs(v); });
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "abs", x, out,
      [x](const Tensor& g, Needs) {
        // sign(x) is piecewise constant: a constant tensor, so second derivatives are zero.
        Tensor sign = detail::map_unary(x, "abs", [](double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); });
        return Grads{g * sign};
      },
      with_values(x, [](double g, double v) { return g * (v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0)); }));
  return out;
}

Tensor tanh(const Tensor& x) {
  Tensor out = map_vector(x, "tanh", detail::UnaryFn::kTanh);
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "tanh", x, out, [out](const Tensor& g, Needs) { return Grads{g * (1.0 - square(out))}; },
      with_values(out, [](double g, double y) { return g * (y * y * -1.0 + 1.0); }));
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = map_vector(x, "sigmoid", detail::UnaryFn::kSigmoid);  // through exp(-|x|): no overflow
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "sigmoid", x, out, [out](const Tensor& g, Needs) { return Grads{g * out * (1.0 - out)}; },
      with_values(out, [](double g, double y) { return g * y * (y * -1.0 + 1.0); }));
  return out;
}

Tensor relu(const Tensor& x) {
  Tensor out = detail::map_unary(x, "relu", [](double v) { return v > 0 ? v : 0.0; });
  if (!needs_recording({x})) return out;
  detail::attach_elementwise(
      "relu", x, out,
      [x](const Tensor& g, Needs) {
        Tensor mask = detail::map_unary(x, "relu", [](double v) { return v > 0 ? 1.0 : 0.0; });
        return Grads{g * mask};
      },
      with_values(x, [](double g, double v) { return g * (v > 0 ? 1.0 : 0.0); }));
  return out;
}

Tensor elu(const Tensor& x, double alpha) {
  Tensor out = map_vector(x, "elu", detail::UnaryFn::kElu, alpha);
  return record("elu", {x}, out, [x, out, alpha](const Tensor& g, Needs) {
    // d/dx = 1 for x > 0, alpha * exp(x) = out + alpha otherwise; written through `out` so the
    // second derivative (alpha * exp(x) on the negative side) comes out of the tape.
    Tensor positive = detail::map_unary(x, "elu", [](double v) { return v > 0 ? 1.0 : 0.0; });
    return Grads{g * where(positive, Tensor::ones({}), out + alpha)};
  });
}

Tensor softplus(const Tensor& x) {
  Tensor out = map_vector(x, "softplus", detail::UnaryFn::kSoftplus);
  return record("softplus", {x}, out, [x](const Tensor& g, Needs) { return Grads{g * sigmoid(x)}; });
}

}  // namespace cholla
