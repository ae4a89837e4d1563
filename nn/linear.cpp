#include "nn/linear.hpp"

#include <fmt/core.h>

#include <cmath>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "linalg/linalg.hpp"

namespace cholla::nn {

Rng& init_rng() {
  thread_local Rng rng(0);
  return rng;
}

void manual_seed(uint64_t seed) { init_rng() = Rng(seed); }

Tensor init_weight(int64_t in, int64_t out, Init init, Rng& rng) {
  const double fan_in = static_cast<double>(in), fan_sum = static_cast<double>(in + out);
  switch (init) {
    case Init::KaimingUniform: {
      const double b = std::sqrt(6.0 / fan_in);
      return Tensor::uniform({out, in}, -b, b, rng);
    }
    case Init::KaimingNormal:
      return Tensor::randn({out, in}, rng) * std::sqrt(2.0 / fan_in);
    case Init::XavierUniform: {
      const double b = std::sqrt(6.0 / fan_sum);
      return Tensor::uniform({out, in}, -b, b, rng);
    }
    case Init::XavierNormal:
      return Tensor::randn({out, in}, rng) * std::sqrt(2.0 / fan_sum);
  }
  throw DomainError("init_weight", "unknown Init value.");
}

Linear::Linear(int64_t in, int64_t out, const LinearOptions& options)
    : Linear(in, out, init_rng(), options) {}

Linear::Linear(int64_t in, int64_t out, Rng& rng, const LinearOptions& options)
    : in_(in), out_(out) {
  if (in <= 0 || out <= 0)
    throw ShapeError("Linear", fmt::format("in ({}) and out ({}) must both be positive.", in, out),
                     "", {{in, out}});
  // The weight was computed by an op (a scale) in the normal cases: detach makes it a leaf.
  weight = register_parameter("weight", init_weight(in, out, options.init, rng).detach());
  if (options.bias) bias = register_parameter("bias", Tensor::zeros({out}));
}

Tensor Linear::forward(const Tensor& x) {
  if (x.dim() == 0 || x.size(-1) != in_)
    throw ShapeError("Linear",
                     fmt::format("input of shape {} does not end in in_features = {}. Pass [..., "
                                 "{}] (a batch of rows or a single vector).",
                                 format_shape(x.shape()), in_, in_),
                     "x", {x.shape(), weight.shape()});
  // gemm2 works on matrices: a single vector is a one-row batch.
  const bool vector = x.dim() == 1;
  Tensor y = linalg::gemm2(vector ? unsqueeze(x, 0) : x, weight, {.transpose_b = true});
  if (bias.defined()) y = y + bias;
  return vector ? squeeze(y, 0) : y;
}

std::string Linear::extra_repr() const {
  return fmt::format("in={}, out={}, bias={}", in_, out_, bias.defined());
}

}  // namespace cholla::nn
