// nn::Sequential: layers applied in order; sub-module names are their positions "0", "1", ...
//
//   nn::Sequential mlp;
//   mlp.emplace<nn::Linear>(1, 32, rng);
//   mlp.emplace<nn::Tanh>();
//   mlp.emplace<nn::Linear>(32, 1, rng);
//   Tensor y = mlp(x);
//
// Sequential owns its layers (shared_ptr: a layer may also be kept and used elsewhere).
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "nn/module.hpp"

namespace cholla::nn {

class Sequential : public Layer {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Layer>> layers);

  // Appends a layer built in place and returns it.
  template <class L, class... Args>
  L& emplace(Args&&... args) {
    auto layer = std::make_shared<L>(std::forward<Args>(args)...);
    L& ref = *layer;
    push_back(std::move(layer));
    return ref;
  }
  void push_back(std::shared_ptr<Layer> layer);

  Tensor forward(const Tensor& x) override;

  std::size_t size() const { return layers_.size(); }
  Layer& operator[](std::size_t i) const;

 private:
  std::vector<std::shared_ptr<Layer>> layers_;
};

}  // namespace cholla::nn
