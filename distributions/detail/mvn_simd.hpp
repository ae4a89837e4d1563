// Internal: the MVN log-density for d <= 8 vectorised ACROSS THE BATCH with Google Highway.
//
// Each block of samples (one vector's worth of lanes) is transposed into a structure of arrays
// on the stack: element e of every sample side by side, so lane l of every vector belongs to
// sample l of the block. The triangular solves, the Cholesky factorisation and the gradients
// then run as straight-line vector code, unrolled for each d = 1..8. The best instruction set
// of the running machine is picked at run time (AVX-512, AVX2, SSE4, ..., or the portable
// baseline); the library itself is compiled for baseline x86-64.
//
// The forward makes one pass over loc, the factor and x and writes log_prob; the backward makes
// one pass over them and g, recomputes what the forward had (cheaper than storing it) and
// writes every gradient once. No heap memory is used per call.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "distributions/detail/factorise.hpp"
#include "distributions/detail/mvn_kernels.hpp"

namespace cholla::dist::detail {

// What the matrix input of the op is. The kernels always read a lower factor (L with
// Sigma = L L^T, or M with P = M M^T); for Covariance / Precision the factor's values come from
// simd_cholesky and the gradient is taken with respect to the symmetric matrix itself.
enum class MvnMatrix : int { ScaleTril, PrecisionTril, Covariance, Precision };

inline bool is_precision_factor(MvnMatrix m) { return m == MvnMatrix::PrecisionTril || m == MvnMatrix::Precision; }

// The recorded op: log N(x; loc, matrix) for d <= 8. `factor` holds the lower factor's values
// (the matrix itself for the triangular forms, simd_factorise's factor for the symmetric ones);
// gradients go to loc, matrix and x. First order runs simd_backward; a recorded backward
// (create_graph) uses closed forms written with differentiable ops, so second order is exact.
// x must be finite (checked only when a log_prob comes out non-finite).
// `deferred` (null once a distribution's parameters have been checked) asks the pass to check
// the parameters on the values it loads, as the factory would have (multivariate_normal.hpp,
// "Validation"): see DeferredChecks.
// When a backward is expected, the forward computes the gradients too, for the g of
// -mean(log_prob); the backward uses them if g is that, and recomputes otherwise (same bits
// either way; log_density.cpp). For tests: how often this thread's guesses were right or
// wrong, and guessing again from the next call (a wrong guess pauses guessing for some calls).
// What the pass checks in the strict upper triangle of the factor, which it otherwise never
// reads: exactly 0 (a validated scale_tril / precision_tril) or finite (without `validate`).
enum class UpperCheck : int { None, Zero, Finite };

// Checks of loc and the factor left by the factory for the first use. The pass checks the
// upper triangle as asked and, for the rest, relies on the log-density itself: a NaN or
// infinite entry of loc or of the factor's lower triangle, or a diagonal entry that is not
// positive and finite, makes that sample's log_prob NaN or infinite (tested entry by entry in
// tests/distributions/deferred_checks_test.cpp). On any such sign `scans` runs the factory's
// reference checks, which throw its error naming the batch element (or return, when the
// inputs were valid but the log-density overflowed); only then is x checked.
struct DeferredChecks {
  UpperCheck upper = UpperCheck::None;
  std::function<void()> scans;
};

Tensor simd_log_prob(const Tensor& loc, const Tensor& matrix, const Tensor& factor, const Tensor& x, MvnMatrix kind,
                     const DeferredChecks* deferred = nullptr);
struct GuessStats {
  int64_t right = 0, wrong = 0;
};
GuessStats& simd_guess_stats();
void simd_guess_reset();

// The Cholesky factor of a batch of symmetric d x d matrices (d <= 8), recorded as potrf of A,
// with its report (no mask: every element is usable); nullopt when d > 8 or some matrix is not positive definite (the caller then
// runs the reference checks and factorisation under its failure policy, which report as before).
// With check_symmetry, a matrix that is not symmetric within the tolerances also gives nullopt;
// with check_finite, one with a NaN or an infinite entry.
struct SymmetryCheck {
  bool on = false;
  double rtol = 0.0, atol = 0.0;
};
std::optional<Factorisation> simd_factorise(const Tensor& A, const SymmetryCheck& symmetry = {}, bool check_finite = false);

struct MvnPass {
  const MvnBatch* batch = nullptr;
  MvnMatrix matrix = MvnMatrix::ScaleTril;
  const double* loc = nullptr;
  const double* factor = nullptr;  // [factor_count, d, d], lower triangle read
  const double* x = nullptr;
  UpperCheck upper = UpperCheck::None;  // forward and eager passes (DeferredChecks)
  double* out = nullptr;        // forward: [count]
  const double* g = nullptr;    // backward: [count]
  double eager_g = 0.0;         // simd_eager: the g assumed for every sample
  double* gloc = nullptr;       // backward outputs; null when not needed. Inputs read through an
  double* gmatrix = nullptr;    // offset list must arrive zero-filled (they are accumulated);
  double* gx = nullptr;         // the others are written once, whole.
};

// Samples [begin, end). Returns false when some log_prob came out NaN or infinite, or the
// upper triangle failed p.upper (then the caller runs the deferred scans and checks x, and
// throws if an input is not valid).
bool simd_forward(const MvnPass& p, int64_t begin, int64_t end);

// Samples [begin, end). An input shared by every sample (one loc, one matrix or one x for the
// whole batch) gets its gradient summed over the range into `shared` (2d + d*d values:
// loc, x, matrix; each written, not added), and the caller writes it; the rest is written
// straight into the gradient buffers.
void simd_backward(const MvnPass& p, int64_t begin, int64_t end, double* shared);

// The forward and the backward in one pass, for a guessed incoming gradient: writes out (as
// simd_forward, same return) and every gradient simd_backward would write if g were p.eager_g
// for every sample, bit for bit. Only for gradients that are per sample: no input shared by
// every sample or read through an offset list has one.
bool simd_eager(const MvnPass& p, int64_t begin, int64_t end);

// Cholesky factors of `count` symmetric d x d matrices (lower triangle read, upper of L set to
// 0), optionally checking symmetry and finiteness on the same loaded values. Returns false if
// any matrix is not symmetric or not finite (when checked) or not positive definite: the
// caller then reruns the reference checks and factorisation, which name the batch element and
// minor.
struct CholeskyPass {
  const double* A = nullptr;
  int64_t d = 0, count = 0;
  double* L = nullptr;
  bool check_symmetry = false;  // |A - A^T| <= atol + rtol max|A|, per matrix
  double symmetry_rtol = 0.0, symmetry_atol = 0.0;
  bool check_finite = false;    // every entry of every matrix finite
  mutable double min_pivot = 0.0;  // out: smallest diagonal entry of the factors
};
bool simd_cholesky(const CholeskyPass& p);

// The three passes over the whole batch, split over the thread pool in fixed chunks
// (mvn_simd_parallel.cpp): bit-identical results for every thread count. A gradient that
// samples add into through an offset list keeps the backward on the calling thread.
bool simd_forward_all(const MvnPass& p);
bool simd_eager_all(const MvnPass& p);
void simd_backward_all(const MvnPass& p, double* shared);
bool simd_cholesky_all(const CholeskyPass& p);

// Validation scans: every value finite; every d x d matrix finite and lower triangular with a
// positive diagonal. Both only answer yes or no; the reference checks locate the culprit.
bool simd_all_finite(const double* p, int64_t n);
bool simd_all_equal(const double* p, int64_t n, double value);  // every p[i] == value
bool simd_finite_lower_positive(const double* L, int64_t d, int64_t count);

// For tests: the SIMD targets compiled in and supported by this machine, and forcing one (0
// restores the best).
std::vector<int64_t> simd_targets();
std::string simd_target_name(int64_t target);
void simd_use_target(int64_t target);

}  // namespace cholla::dist::detail
