// Data-parallel training: every rank holds the same model, computes gradients on its part of
// the global batch, and the ranks combine those gradients before each optimiser step:
//
//   distributed::Context ctx(argc, argv);
//   Model model(rng);
//   distributed::broadcast_parameters(model, 0);      // rank 0's initial values everywhere
//   optim::Adam opt(model.parameters(), {.lr = 1e-3});
//   for (...) {
//     opt.zero_grad();
//     (-mean(model.forward(x_local).log_prob(y_local))).backward();
//     distributed::allreduce_gradients(model.parameters(), {.average = true});
//     opt.step();                                      // identical on every rank
//   }
//
// All ranks must make the same calls with the same parameter lists (names aside: the lists
// are compared by count, sizes and shapes, and a mismatch is a DistributedError on every rank).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "autodiff/tensor.hpp"
#include "nn/module.hpp"

namespace cholla::distributed {

// Copies rank `root`'s values of every parameter of `module` (or of `tensors`) into the
// other ranks' tensors, in place, in buckets like allreduce_gradients.
void broadcast_parameters(const nn::Module& module, int root = 0);
void broadcast_tensors(const std::vector<Tensor>& tensors, int root = 0);

struct AllreduceOptions {
  // Divide the sum by the number of ranks: right when every rank's loss is a mean over
  // equally many rows. Leave false when each rank already weighted its loss by its share.
  bool average = true;
  // Gradients are packed, in parameter order, into buffers of about this many bytes; each
  // buffer is one collective call, so a step makes few large calls, not one per parameter.
  std::size_t bucket_bytes = std::size_t{1} << 20;
  // false: MPI_Allreduce (MPI picks the summation order; results can differ in the last bits
  //        between rank counts and, in principle, between ranks).
  // true:  every rank gathers all ranks' buckets (MPI_Allgather) and sums them itself in one
  //        fixed order, pairwise over ranks ((r0 + r1) + (r2 + r3)): bit-identical on every
  //        rank and every run. Costs (ranks - 1) buckets of memory and traffic per bucket.
  bool deterministic = false;
};

// Sums (or averages) the gradients of `params` over all ranks, in place, so that every rank
// ends with the same .grad(). A parameter without a gradient on some ranks counts as zero
// there; one without a gradient on every rank keeps none (the optimiser skips it, as it
// would in one process). Returns the number of reducing MPI calls made (the buckets), not
// counting one small call that checks that the ranks passed lists of the same shapes.
int64_t allreduce_gradients(const std::vector<Tensor>& params, const AllreduceOptions& options = {});

// The same reduction for plain numbers (losses, counts, metrics), in place; the values must
// have the same length on every rank. Returns the number of reducing MPI calls.
int64_t allreduce_values(std::span<double> values, const AllreduceOptions& options = {});

// The pairwise sum of gradient lists, ((g0 + g1) + (g2 + g3)) with the split at ceil(n / 2),
// the order deterministic allreduce uses across ranks. A rank that holds several contiguous
// shards of the global batch and sums their gradients with this, before a deterministic
// allreduce, gets exactly the bits one process summing all shards with it would get, when
// the number of shards and of ranks are powers of two (examples/data_parallel.cpp does this).
// Undefined entries count as zero; the result is undefined where every term is.
std::vector<Tensor> pairwise_sum(const std::vector<std::vector<Tensor>>& terms);

}  // namespace cholla::distributed
