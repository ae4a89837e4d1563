// nn::Linear: y = x W^T + b with W of shape [out, in] and b of shape [out].
//
// Initialisation draws from a seeded Rng, so a model built twice from the same seed is
// bit-identical. Without an explicit Rng the layer draws from this thread's init_rng(), which
// starts at seed 0 and is reset by manual_seed(): a program that builds its layers in the same
// order gets the same weights on every run.
#pragma once

#include <cstdint>

#include "autodiff/rng.hpp"
#include "nn/module.hpp"

namespace cholla::nn {

enum class Init {
  KaimingUniform,  // U(-b, b), b = sqrt(6 / in): keeps activation variance through ReLU layers
  KaimingNormal,   // N(0, 2 / in)
  XavierUniform,   // U(-b, b), b = sqrt(6 / (in + out)): for tanh / sigmoid layers
  XavierNormal,    // N(0, 2 / (in + out))
};

struct LinearOptions {
  bool bias = true;
  Init init = Init::KaimingUniform;  // the weight's; the bias starts at zero
};

// This thread's generator for layers built without an explicit Rng.
Rng& init_rng();
void manual_seed(uint64_t seed);

// A fresh [out, in] weight drawn with `init` (fan_in = in, fan_out = out).
Tensor init_weight(int64_t in, int64_t out, Init init, Rng& rng);

class Linear : public Layer {
 public:
  Linear(int64_t in, int64_t out, const LinearOptions& options = {});
  Linear(int64_t in, int64_t out, Rng& rng, const LinearOptions& options = {});

  // x of shape [..., in] (a single vector [in] included) -> [..., out].
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined when built with .bias = false

 private:
  int64_t in_, out_;
};

}  // namespace cholla::nn
