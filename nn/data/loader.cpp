#include "nn/data/loader.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <numeric>
#include <utility>

#include "autodiff/ops.hpp"
#include "autodiff/rng.hpp"
#include "autodiff/shape.hpp"

namespace cholla::data {

DataLoader::DataLoader(Tensor X, Tensor Y, const LoaderOptions& options)
    : X_(std::move(X)), Y_(std::move(Y)), options_(options) {
  if (!X_.defined() || !Y_.defined())
    throw GraphError("DataLoader", "X and Y must be defined tensors.");
  if (X_.dim() == 0 || Y_.dim() == 0 || X_.size(0) != Y_.size(0))
    throw ShapeError("DataLoader",
                     fmt::format("X {} and Y {} must have the same number of rows (dimension 0).",
                                 format_shape(X_.shape()), format_shape(Y_.shape())),
                     "Y", {X_.shape(), Y_.shape()});
  if (options_.batch_size < 1)
    throw DomainError("DataLoader",
                      fmt::format("batch_size = {} must be at least 1.", options_.batch_size));
  order_.resize(static_cast<size_t>(X_.size(0)));
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (options_.shuffle) {
    // Fisher-Yates with cholla::Rng: std::shuffle's algorithm is implementation-defined, and
    // the order must be the same everywhere for a given seed.
    Rng rng(static_cast<uint64_t>(options_.seed));
    for (size_t i = order_.size(); i > 1; --i)
      std::swap(order_[i - 1], order_[static_cast<size_t>(rng.below(i))]);
  }
}

// No sum or product here can overflow, whatever batch_size (>= 1) is: (n + b - 1) / b would for
// b near INT64_MAX, and start + b below likewise.
int64_t DataLoader::num_batches() const {
  const int64_t n = num_rows(), b = options_.batch_size;
  return n / b + (!options_.drop_last && n % b != 0 ? 1 : 0);
}

Batch DataLoader::batch(int64_t index) const {
  if (index < 0 || index >= num_batches())
    throw ShapeError("DataLoader", fmt::format("batch {} is out of range ({} batches).", index,
                                               num_batches()));
  const int64_t start = index * options_.batch_size;  // < num_rows(), as index < num_batches()
  const int64_t stop = start + std::min(options_.batch_size, num_rows() - start);
  const std::vector<int64_t> rows(order_.begin() + start, order_.begin() + stop);
  return {index_select(X_, 0, rows), index_select(Y_, 0, rows)};
}

}  // namespace cholla::data
