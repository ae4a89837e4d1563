// data::DistributedSampler: which rows each rank of a data-parallel job trains on.
//
// Every epoch has one seeded permutation of the rows, the same on every rank (it depends only
// on seed and epoch). The permutation is cut into global batches of global_batch_size rows,
// and each global batch into num_replicas contiguous parts, one per rank, as equal as
// possible (sizes differ by at most one). So the rows of a global step do not depend on the
// number of ranks, only how they are shared out; with global_batch_size = 0 the whole epoch
// is one batch and each rank gets one contiguous shard of the permutation.
//
//   data::DistributedSampler sampler(X.size(0), {.num_replicas = ctx.size(), .rank = ctx.rank(),
//                                                .global_batch_size = 100, .seed = 7});
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     sampler.set_epoch(epoch);
//     auto [Xr, Yr] = sampler.select(X, Y);                 // this rank's rows, batch after batch
//     for (auto [xb, yb] : data::DataLoader(Xr, Yr, {.batch_size = 100 / ctx.size(), .shuffle = false}))
//       ...
//   }
//
// The DataLoader's batches are this rank's parts of the global batches when num_replicas
// divides global_batch_size; otherwise use batch(step), which is always exact.
// The sampler needs no MPI: rank and replica count are plain numbers.
#pragma once

#include <cstdint>
#include <vector>

#include "autodiff/tensor.hpp"
#include "nn/data/loader.hpp"

namespace cholla::data {

struct DistributedSamplerOptions {
  int64_t num_replicas = 1;       // ranks taking part
  int64_t rank = 0;               // this rank, 0 <= rank < num_replicas
  int64_t global_batch_size = 0;  // rows per optimiser step over all ranks; 0: the whole epoch
  bool shuffle = true;
  int64_t seed = 0;
  bool drop_last = false;  // drop the last global batch when it is smaller
};

// Where this rank's part lies within one global batch.
struct BatchPart {
  int64_t begin = 0, end = 0;  // positions within the global batch: [begin, end)
  int64_t batch_size = 0;      // rows in the whole global batch
};

class DistributedSampler {
 public:
  DistributedSampler(int64_t rows, const DistributedSamplerOptions& options = {});

  // Draws the permutation of `epoch` (also done for epoch 0 by the constructor).
  void set_epoch(int64_t epoch);
  int64_t epoch() const { return epoch_; }
  // The epoch's permutation of all rows, identical on every rank.
  const std::vector<int64_t>& order() const { return order_; }

  // Global batches (optimiser steps) this epoch; the same on every rank.
  int64_t num_batches() const;
  BatchPart part(int64_t step) const;
  // This rank's rows of global batch `step`, in permutation order.
  std::vector<int64_t> batch(int64_t step) const;
  // All of this rank's rows this epoch, batch after batch.
  std::vector<int64_t> indices() const;
  // index_select of indices() from X and Y (rows are dimension 0).
  Batch select(const Tensor& X, const Tensor& Y) const;

 private:
  int64_t rows_;
  DistributedSamplerOptions options_;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace cholla::data
