// Activation modules, for Sequential; each forwards to the differentiable op of the same name
// in autodiff/ops.hpp. The functional forms are available as nn::relu etc. too.
#pragma once

#include "autodiff/ops.hpp"
#include "nn/module.hpp"

namespace cholla::nn {

using cholla::elu;
using cholla::relu;
using cholla::sigmoid;
using cholla::softplus;
using cholla::tanh;

class ReLU : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};

class ELU : public Layer {
 public:
  explicit ELU(double alpha = 1.0) : alpha_(alpha) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double alpha() const { return alpha_; }

 private:
  double alpha_;
};

class Softplus : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};

class Sigmoid : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};

}  // namespace cholla::nn
