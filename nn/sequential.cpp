#include "nn/sequential.hpp"

#include <fmt/core.h>

#include <string>

namespace cholla::nn {

Sequential::Sequential(std::vector<std::shared_ptr<Layer>> layers) {
  for (auto& layer : layers) push_back(std::move(layer));
}

void Sequential::push_back(std::shared_ptr<Layer> layer) {
  if (!layer)
    throw DomainError("Sequential", fmt::format("layer {} is a null pointer. Pass a layer built "
                                                "with std::make_shared.",
                                                layers_.size()));
  register_module(std::to_string(layers_.size()), *layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

Layer& Sequential::operator[](std::size_t i) const {
  if (i >= layers_.size())
    throw ShapeError("Sequential", fmt::format("index {} is out of range for {} layers.", i,
                                               layers_.size()));
  return *layers_[i];
}

}  // namespace cholla::nn
