#include "nn/activations.hpp"

#include <fmt/core.h>

namespace cholla::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor ELU::forward(const Tensor& x) { return elu(x, alpha_); }
std::string ELU::extra_repr() const { return fmt::format("alpha={}", alpha_); }
Tensor Softplus::forward(const Tensor& x) { return softplus(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }

}  // namespace cholla::nn
