// Internal: where each sample of an MVN log-density reads loc, the factor and x (the batch
// plan shared by the scalar kernels of mvn_kernels.cpp and the SIMD pass of mvn_simd.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "autodiff/tensor.hpp"
#include "distributions/detail/batch_dims.hpp"

namespace cholla::dist::detail {

// Where each element of the broadcast batch reads loc, the factor and x.
struct MvnBatch {
  Shape shape;  // broadcast batch shape (= the output shape)
  int64_t count = 0, d = 0;
  // Offsets in elements into loc, factor and x for batch element i (empty when a tensor's
  // batch equals the output batch, i.e. offset = i * its size, or is a single shared one).
  std::vector<int64_t> loc_offset, factor_offset, x_offset;
  int64_t loc_step = 0, factor_step = 0, x_step = 0;  // used when the offset lists are empty
  int64_t factor_count = 0;                            // distinct factors
};

// loc [..., d], factor [..., d, d], x [..., d] (shapes already checked): the plan. When the
// three batches are the same shape (the common case: one distribution per sample) the plan is
// written down directly; otherwise the batches are broadcast (ShapeError naming log_prob).
MvnBatch plan_mvn_batch(const Tensor& loc, const Tensor& factor, const Tensor& x);
// The broadcasting plan for any shapes, the reference for the direct one (tests compare them).
MvnBatch plan_mvn_batch_general(const Tensor& loc, const Tensor& factor, const Tensor& x);

}  // namespace cholla::dist::detail
