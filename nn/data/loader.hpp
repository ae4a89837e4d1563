// data::DataLoader: mini-batches of rows of (X, Y), optionally in a seeded random order.
//
//   for (int epoch = 0; epoch < 100; ++epoch)
//     for (auto [xb, yb] : data::DataLoader(X, Y, {.batch_size = 64, .seed = epoch})) { ... }
//
// Rows are dimension 0 of X and Y (which must agree in size there). Each epoch visits every row
// exactly once; the same seed gives the same order on every platform (cholla::Rng). The last
// batch is smaller when the batch size does not divide the rows, unless drop_last.
// Batches are index_select(X, 0, rows): copies, so the loader never aliases a batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla::data {

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  int64_t seed = 0;  // signed so that `.seed = epoch` with an int epoch is not narrowing
  bool drop_last = false;
};

struct Batch {
  Tensor x, y;
};

class DataLoader {
 public:
  DataLoader(Tensor X, Tensor Y, const LoaderOptions& options = {});

  class iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    Batch operator*() const { return loader_->batch(index_); }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++index_;
      return old;
    }
    bool operator==(const iterator& other) const { return index_ == other.index_; }

   private:
    friend class DataLoader;
    iterator(const DataLoader* loader, int64_t index) : loader_(loader), index_(index) {}
    const DataLoader* loader_ = nullptr;
    int64_t index_ = 0;
  };

  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, num_batches()}; }

  int64_t num_batches() const;
  int64_t num_rows() const { return static_cast<int64_t>(order_.size()); }
  Batch batch(int64_t index) const;
  // The row order of this epoch (a permutation of 0..rows-1).
  const std::vector<int64_t>& order() const { return order_; }

 private:
  Tensor X_, Y_;
  LoaderOptions options_;
  std::vector<int64_t> order_;
};

}  // namespace cholla::data
