// Defining new differentiable ops from outside the library, with the public API only, and
// checking them with gradcheck (first derivatives) and gradgradcheck (second derivatives).
//
// Three ops, one per pattern (docs/adding-an-op.md walks through them):
//   log_cosh(x)      unary: a stable kernel, backward written with cholla ops
//   hypot(a, b)      binary with numpy broadcasting: Needs mask and sum_to in the backward
//   sincos(x)        two outputs from one kernel: record_multi
//
// The program is also the test of this walk-through (`meson test --suite examples`): it exits
// non-zero if any check fails.
#include <cmath>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include <cholla.hpp>

#include "common/cli.hpp"

using namespace cholla;

namespace {

void require_defined(const Tensor& t, const char* op, const char* arg) {
  if (!t.defined())
    throw GraphError(op, fmt::format("argument {} is an undefined tensor.", arg), arg);
}

// log(cosh(x)) without overflow: |x| + log1p(exp(-2|x|)) - log 2. Its derivative is tanh(x),
// and the backward is written with the differentiable `tanh`, so the second derivative
// 1 - tanh(x)^2 comes out of the tape (gradgradcheck below checks it).
Tensor log_cosh(const Tensor& x) {
  require_defined(x, "log_cosh", "x");
  Tensor out = Tensor::empty(x.shape());
  const double* in = x.data().data();
  double* o = out.mutable_data().data();
  const double log2 = std::log(2.0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double a = std::abs(in[i]);
    o[i] = a + std::log1p(std::exp(-2.0 * a)) - log2;
  }
  return record("log_cosh", {x}, out, [x](const Tensor& g, Needs) { return Grads{g * tanh(x)}; });
}

// sqrt(a^2 + b^2) with broadcasting. d/da = a / out, d/db = b / out (undefined at a = b = 0).
Tensor hypot(const Tensor& a, const Tensor& b) {
  require_defined(a, "hypot", "a");
  require_defined(b, "hypot", "b");
  // ShapeError("hypot", ...) naming both shapes when they do not broadcast.
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "hypot");
  // Values only: expand detached copies, so nothing is recorded for the kernel's own use.
  const Tensor ea = expand(a.detach(), shape), eb = expand(b.detach(), shape);
  Tensor out = Tensor::empty(shape);
  double* o = out.mutable_data().data();
  for (int64_t i = 0; i < out.numel(); ++i)
    o[i] = std::hypot(ea.data()[static_cast<size_t>(i)], eb.data()[static_cast<size_t>(i)]);
  return record("hypot", {a, b}, out, [a, b, out](const Tensor& g, Needs needs) {
    // Skip the inputs that need no gradient; reduce broadcast dimensions back with sum_to.
    Tensor ga, gb;
    if (needs[0]) ga = sum_to(g * a / out, a.shape());
    if (needs[1]) gb = sum_to(g * b / out, b.shape());
    return Grads{ga, gb};
  });
}

// (sin x, cos x) from one pass. The backward uses the outputs themselves (d sin = cos,
// d cos = -sin); they carry the op's history, so second derivatives flow back through it.
std::pair<Tensor, Tensor> sincos(const Tensor& x) {
  require_defined(x, "sincos", "x");
  Tensor s = Tensor::empty(x.shape()), c = Tensor::empty(x.shape());
  const double* in = x.data().data();
  double* ps = s.mutable_data().data();
  double* pc = c.mutable_data().data();
  for (int64_t i = 0; i < x.numel(); ++i) {
    ps[i] = std::sin(in[i]);
    pc[i] = std::cos(in[i]);
  }
  auto outs = record_multi("sincos", {x}, {s, c}, [s, c](std::span<const Tensor> g, Needs) {
    // An output that received no gradient has an undefined grad_output.
    Tensor gx;
    if (g[0].defined()) gx = g[0] * c;
    if (g[1].defined()) gx = gx.defined() ? gx - g[1] * s : -(g[1] * s);
    return Grads{gx};
  });
  return {outs[0], outs[1]};
}

// ---- checks -------------------------------------------------------------------------------

int failures = 0;

void expect(bool ok, const std::string& what) {
  fmt::print("{} {}\n", ok ? "ok  " : "FAIL", what);
  if (!ok) ++failures;
}

void check(const std::string& name, const TensorFunction& f, const std::vector<Tensor>& inputs) {
  const GradcheckResult first = gradcheck(f, inputs);
  const GradcheckResult second = gradgradcheck(f, inputs);
  expect(first.ok, fmt::format("gradcheck     {:<28} max error {:.2e}", name, first.max_error));
  if (!first.ok) fmt::print("     {}\n", first.report);
  expect(second.ok, fmt::format("gradgradcheck {:<28} max error {:.2e}", name, second.max_error));
  if (!second.ok) fmt::print("     {}\n", second.report);
}

}  // namespace

int main(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "custom_op: three differentiable ops defined outside the library (log_cosh, hypot, sincos),\n"
      "checked against closed forms and with gradcheck / gradgradcheck.\n\n"
      "--check passes when every check passes (--quick changes nothing: it is already fast).",
      7);
  using Fn = std::vector<Tensor>;
  Rng rng(cli.seed);

  // Forward values: agree with the naive formula where it is finite, stay finite where not.
  {
    Tensor x = Tensor::from({5}, {-3.0, -0.5, 0.0, 0.25, 2.0});
    Tensor y = log_cosh(x);
    double worst = 0.0;
    for (int64_t i = 0; i < 5; ++i)
      worst = std::max(worst, std::abs(y.data()[static_cast<size_t>(i)] -
                                       std::log(std::cosh(x.data()[static_cast<size_t>(i)]))));
    expect(worst < 1e-14, fmt::format("log_cosh matches log(cosh(x)), max diff {:.1e}", worst));
    const double big = log_cosh(Tensor::from({1}, {1000.0})).item();
    expect(std::isfinite(big) && std::abs(big - (1000.0 - std::log(2.0))) < 1e-12,
           fmt::format("log_cosh(1000) = {} (naive log(cosh(1000)) = {})", big,
                       std::log(std::cosh(1000.0))));
  }

  // First and second derivatives on batched inputs.
  Tensor x = Tensor::uniform({4, 3, 5}, -4.0, 4.0, rng);
  check("log_cosh [4,3,5]", [](const Fn& v) { return log_cosh(v[0]); }, {x});
  check("log_cosh composed", [](const Fn& v) { return log_cosh(v[0] * v[0] - 1.0); }, {x});

  // Broadcasting: [3,1,4] with [5,4] gives [3,5,4]; a is kept away from 0 so out > 0.3.
  Tensor a = Tensor::uniform({3, 1, 4}, 0.3, 2.0, rng);
  Tensor b = Tensor::uniform({5, 4}, -2.0, 2.0, rng);
  check("hypot [3,1,4] x [5,4]", [](const Fn& v) { return hypot(v[0], v[1]); }, {a, b});
  check("hypot(a, a*b) (shared input)",
        [](const Fn& v) { return hypot(v[0], v[0] * v[1]); }, {a, b});

  Tensor t = Tensor::uniform({2, 6}, -3.0, 3.0, rng);
  check("sincos both outputs", [](const Fn& v) {
    auto [s, c] = sincos(v[0]);
    return stack({s * c, square(s) - 0.5 * c});
  }, {t});
  check("sincos sin only", [](const Fn& v) { return sincos(v[0]).first; }, {t});
  check("sincos cos only", [](const Fn& v) { return sincos(v[0]).second; }, {t});

  // Validation: shapes that do not broadcast are a ShapeError naming the op and both shapes.
  try {
    hypot(Tensor::zeros({2, 3}), Tensor::zeros({4}));
    expect(false, "hypot([2,3], [4]) throws ShapeError");
  } catch (const ShapeError& e) {
    expect(e.op() == "hypot" && e.shapes().size() == 2,
           fmt::format("hypot([2,3], [4]) throws ShapeError: {}", e.what()));
  }

  // Inference: under NoGrad nothing is recorded, even for inputs that require grad.
  {
    Tensor w = Tensor::ones({3}).requires_grad(true);
    const std::size_t before = Tape::current().size();
    NoGrad guard;
    Tensor y = log_cosh(w) + hypot(w, w) + sincos(w).first;
    expect(Tape::current().size() == before && !y.requires_grad(),
           "NoGrad: no tape entries recorded");
  }

  // Plain use: backward fills .grad() with tanh(x) for sum(log_cosh(x)).
  {
    Tensor w = Tensor::from({3}, {-1.0, 0.5, 2.0}).requires_grad(true);
    sum(log_cosh(w)).backward();
    double worst = 0.0;
    for (size_t i = 0; i < 3; ++i)
      worst = std::max(worst, std::abs(w.grad().data()[i] - std::tanh(w.data()[i])));
    expect(worst < 1e-15, fmt::format("backward: d/dx sum(log_cosh(x)) = tanh(x), diff {:.1e}", worst));
  }

  return examples::verdict(cli, failures == 0, failures == 0 ? "all custom-op checks passed"
                                                           : fmt::format("{} custom-op check(s) failed", failures));
}
