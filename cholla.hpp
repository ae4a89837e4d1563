// cholla: reverse-mode automatic differentiation with differentiable, batched linear algebra.
//
//   #include <cholla.hpp>
//   using namespace cholla;
//   Tensor x = Tensor::from({2}, {1.0, 2.0}).requires_grad(true);
//   Tensor y = sum(exp(x) * x);
//   y.backward();            // x.grad() = exp(x) * (1 + x)
//
// Layers: autodiff (tensors, tape, gradcheck) <- linalg <- distributions <- nn.
#pragma once

#include "autodiff/checks.hpp"
#include "autodiff/errors.hpp"
#include "autodiff/gradcheck.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/parallel.hpp"
#include "autodiff/rng.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "autodiff/tensor.hpp"
#include "linalg/linalg.hpp"
#include "distributions/distributions.hpp"
#include "nn/nn.hpp"
