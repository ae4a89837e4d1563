// What to do when a covariance or precision matrix handed to MultivariateNormal is not
// positive definite: the reason a training loop crashes with "cholesky: not positive definite".
//
//   Throw  (default) NotPositiveDefinite naming the batch element and the failing minor.
//   Jitter add start, start*factor, ... (up to max_tries) times I to the failing elements
//          only; elements still failing after max_tries throw.
//   Mask   failing elements get log_prob 0 and no gradient; the rest train. The report's mask
//          lets a loop average over the good elements only.
//
// NaN or Inf in any parameter is a DomainError under every policy: no jitter can repair it.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla::dist {

struct Throw {};
struct Jitter {
  double start = 1e-6;  // first jitter added to the diagonal
  double factor = 10.0;  // growth per try
  int max_tries = 6;
  // Scale the jitter by the matrix's mean |diagonal|. Off by default: a jitter that grows with
  // the matrix can feed back through an optimiser (a shrinking, indefinite covariance gets
  // ever larger jitter), while an absolute one stays bounded by start * factor^(max_tries-1).
  bool relative = false;
};
struct Mask {};
using FailurePolicy = std::variant<Throw, Jitter, Mask>;

// What a factorisation under a policy did. Empty lists when every element was fine.
struct FactorReport {
  Shape batch_shape;
  std::vector<int64_t> failed;         // flat batch indices that were not positive definite
  std::vector<int64_t> failed_minor;   // the failing leading minor of each
  std::vector<double> jitter;          // Jitter: absolute jitter that made each one succeed
  double min_pivot = 0.0;              // smallest diagonal entry of the factors used
  Tensor mask;                         // batch shape: 1 where usable, 0 where masked

  bool ok() const { return failed.empty(); }
  int64_t usable() const;              // number of elements with mask 1
  // One line for a training log, e.g. "2 of 512 matrices not positive definite (first: matrix
  // 17 of batch shape [512], minor 2); jitter up to 1.0e-05 applied; smallest pivot 3.1e-04".
  std::string summary() const;
};

}  // namespace cholla::dist
