// Internal: raw batched kernels of the fused MVN log-density (d <= kMaxFusedDim). They know
// nothing of the tape; log_density.cpp records them as one op.
#pragma once

#include <cstdint>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla::dist::detail {

inline constexpr int64_t kMaxFusedDim = 8;

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

MvnBatch plan_mvn_batch(const Tensor& loc, const Tensor& factor, const Tensor& x);

// What the forward computes and the backward reuses: per distinct factor the reciprocal
// diagonal and the sum of log diagonal; per sample the residual r = x - loc and its whitened
// form w (L^{-1} r, or M^T r for a precision factor).
struct FactorCache {
  std::vector<double> inv_diag;      // factor_count * d
  std::vector<double> sum_log_diag;  // factor_count
  std::vector<double> residual;      // count * d
  std::vector<double> whitened;      // count * d
};

FactorCache mvn_forward(const MvnBatch& b, const double* loc, const double* factor, const double* x,
                        bool precision, double* out);

// Accumulates the first-order gradients (null pointers are skipped).
void mvn_backward(const MvnBatch& b, const FactorCache& cache, const double* loc, const double* factor,
                  const double* x, bool precision, const double* g, double* gloc, double* gfactor, double* gx);

}  // namespace cholla::dist::detail
