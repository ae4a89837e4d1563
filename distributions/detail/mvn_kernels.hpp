// Internal: raw batched kernels of the fused MVN log-density (d <= kMaxFusedDim). They know
// nothing of the tape; log_density.cpp records them as one op.
#pragma once

#include <cstdint>
#include <vector>

#include "autodiff/tensor.hpp"
#include "distributions/detail/mvn_batch.hpp"

namespace cholla::dist::detail {

inline constexpr int64_t kMaxFusedDim = 8;

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
