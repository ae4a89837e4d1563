// The MVN log-density: composed from linalg ops (any d), and fused for d <= 8.
//
// With residuals r = x - loc (rows), for Sigma = L L^T (docs/linalg.md §8.2):
//   z = L^{-1} r,  log p = -1/2 |z|^2 - sum log L_ii - d/2 log 2 pi
//   s = L^{-T} z:  gx = -g s,  gloc = g s,  gL = g (tril(s z^T) - diag(1 / L_ii))
// and for the precision factor P = M M^T (§8.3):
//   y = M^T r,     log p = -1/2 |y|^2 + sum log M_ii - d/2 log 2 pi
//   t = M y:       gx = -g t,  gloc = g t,  gM = g (-tril(r y^T) + diag(1 / M_ii))
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <optional>

#include "autodiff/detail/elementwise.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/tape.hpp"
#include "distributions/detail/constants.hpp"
#include "distributions/detail/factorise.hpp"
#include "distributions/detail/mvn_kernels.hpp"
#include "distributions/detail/mvn_simd.hpp"
#include "distributions/detail/validation.hpp"
#include "linalg/linalg.hpp"

namespace cholla::dist::detail {
namespace {

// Applies a right-side triangular op to residual rows [..., d]. A factor without batch
// dimensions is applied to all rows in one call (no copy of the factor, one BLAS-3 call).
template <class Op>
Tensor on_rows(const Tensor& factor, const Tensor& rows, Op op) {
  const int64_t d = factor.size(-1);
  if (factor.dim() == 2) return reshape(op(factor, reshape(rows, {-1, d})), rows.shape());
  return squeeze(op(factor, unsqueeze(rows, -2)), -2);
}

}  // namespace

Tensor times_factor(const Tensor& M, const Tensor& rows, bool transpose) {
  return on_rows(M, rows, [transpose](const Tensor& f, const Tensor& r) {
    return linalg::trmm(f, r, {.transpose = transpose, .rightside = true});
  });
}

Tensor solve_factor(const Tensor& L, const Tensor& rows, bool transpose) {
  return on_rows(L, rows, [transpose](const Tensor& f, const Tensor& r) {
    return linalg::trsm(f, r, {.transpose = transpose, .rightside = true});
  });
}

namespace {

// The closed-form gradients above, written with differentiable ops (used under create_graph).
// `factor` is differentiable with respect to `matrix` (potrf of it for the symmetric forms);
// for the symmetric forms the matrix gradient is the symmetric one:
//   covariance gS = g/2 (s s^T - S^{-1}),  precision gP = g/2 (P^{-1} - r r^T).
Grads closed_form_gradients(const Tensor& loc, const Tensor& matrix, const Tensor& factor, const Tensor& x,
                            MvnMatrix kind, const Tensor& g) {
  const bool precision = is_precision_factor(kind);
  Tensor r = x - loc;
  Tensor gcol = unsqueeze(g, -1);
  Tensor w, gw, outer;
  if (!precision) {
    Tensor z = solve_factor(factor, r, true);   // z^T = r^T L^{-T}
    w = solve_factor(factor, z, false);         // s^T = z^T L^{-1}
    gw = gcol * w;
    outer = unsqueeze(gw, -1) * unsqueeze(kind == MvnMatrix::Covariance ? w : z, -2);
  } else {
    Tensor y = times_factor(factor, r, false);  // y^T = r^T M
    w = times_factor(factor, y, true);          // t^T = y^T M^T
    gw = gcol * w;
    outer = -(unsqueeze(gcol * r, -1) * unsqueeze(kind == MvnMatrix::Precision ? r : y, -2));
  }
  Tensor gmatrix;
  if (kind == MvnMatrix::Covariance || kind == MvnMatrix::Precision) {
    Tensor inverse = unsqueeze(gcol, -1) * linalg::potri(factor);  // g S^{-1} or g P^{-1}
    gmatrix = 0.5 * (kind == MvnMatrix::Covariance ? outer - inverse : outer + inverse);
  } else {
    Tensor diag = linalg::makediag(gcol / linalg::extractdiag(factor));
    gmatrix = precision ? linalg::tril(outer) + diag : linalg::tril(outer) - diag;
  }
  return {sum_to(gw, loc.shape()), sum_to(gmatrix, matrix.shape()), sum_to(-gw, x.shape())};
}

// |w|^2 per row for rows r [E..., F..., d] against factors [F..., d, d] (F non-empty, E
// extra leading dims): the E rows of each factor become the columns of one [d, E] block, so
// there is one triangular op per factor, and its backward sums over the rows inside one BLAS-3
// product instead of building E x F separate d x d gradients (25x faster measured at d = 64,
// E = 140, F = 10). Returns an undefined tensor when the shapes are not of that form.
Tensor grouped_mahalanobis(const Tensor& factor, const Tensor& r, bool precision) {
  const Shape fb(factor.shape().begin(), factor.shape().end() - 2);
  const Shape rb(r.shape().begin(), r.shape().end() - 1);
  if (fb.empty() || rb.size() <= fb.size() || !std::equal(fb.begin(), fb.end(), rb.end() - static_cast<std::ptrdiff_t>(fb.size())))
    return Tensor();
  const int64_t d = factor.size(-1), F = numel(fb), E = numel(rb) / std::max<int64_t>(F, 1);
  Tensor cols = reshape(transpose(reshape(r, {E, F * d})), {F, d, E});
  Tensor f = reshape(factor, {F, d, d});
  Tensor w = precision ? linalg::trmm(f, cols, {.transpose = true}) : linalg::trsm(f, cols);
  return reshape(transpose(sum(square(w), {-2})), rb);
}

}  // namespace

Tensor composed_log_prob(const Tensor& loc, const Tensor& factor, const Tensor& x, bool precision) {
  const double d = static_cast<double>(factor.size(-1));
  Tensor r = x - loc;
  Tensor maha = grouped_mahalanobis(factor, r, precision);
  if (!maha.defined()) {
    Tensor w = precision ? times_factor(factor, r, false) : solve_factor(factor, r, true);
    maha = sum(square(w), {-1});
  }
  Tensor half_logdet = linalg::sumlogdiag(factor);
  return -0.5 * maha + (precision ? half_logdet : -half_logdet) - d * kHalfLog2Pi;
}

Tensor fused_log_prob(const Tensor& loc, const Tensor& factor, const Tensor& x, bool precision) {
  const MvnBatch batch = plan_mvn_batch(loc, factor, x);
  Tensor out = Tensor::empty(batch.shape);
  auto cache = std::make_shared<const FactorCache>(mvn_forward(
      batch, loc.data().data(), factor.data().data(), x.data().data(), precision, out.mutable_data().data()));
  auto composed = [loc, factor, x, precision](const Tensor& g, Needs) -> Grads {
    return closed_form_gradients(loc, factor, factor, x, precision ? MvnMatrix::PrecisionTril : MvnMatrix::ScaleTril, g);
  };
  return record("mvn_log_prob", {loc, factor, x}, out, composed,
                [loc, factor, x, precision, batch, cache](const Tensor& g, Needs needs) -> Grads {
    Tensor gl = needs[0] ? Tensor::zeros(loc.shape()) : Tensor();
    Tensor gf = needs[1] ? Tensor::zeros(factor.shape()) : Tensor();
    Tensor gx = needs[2] ? Tensor::zeros(x.shape()) : Tensor();
    mvn_backward(batch, *cache, loc.data().data(), factor.data().data(), x.data().data(), precision,
                 g.data().data(), gl.defined() ? gl.mutable_data().data() : nullptr,
                 gf.defined() ? gf.mutable_data().data() : nullptr,
                 gx.defined() ? gx.mutable_data().data() : nullptr);
    return {gl, gf, gx};
  });
}

namespace {

// A gradient buffer for an input the batch reads through an offset list must start at zero (the
// kernel adds into it); every other one is written whole by the kernel.
Tensor gradient_buffer(bool needed, const Tensor& input, const std::vector<int64_t>& offsets) {
  if (!needed) return Tensor();
  return offsets.empty() ? Tensor::empty(input.shape()) : Tensor::zeros(input.shape());
}

double* data_or_null(Tensor& t) { return t.defined() ? t.mutable_data().data() : nullptr; }

// Writes a gradient the kernel summed over the batch (an input shared by every sample).
void write_shared(Tensor& t, const double* sum, bool shared) {
  if (t.defined() && shared) std::copy_n(sum, t.numel(), t.mutable_data().data());
}

// The gradients computed with the forward when a backward is expected, for a guessed g.
//
// The common loss is -mean(log_prob), whose backward hands every sample g = -(1/N): with that
// guess the one SIMD pass computes log_prob and every gradient, and the backward only checks
// g (8 bytes per sample) instead of a second pass that reloads the inputs and recomputes the
// forward. The eager pass runs the backward's instructions on the same values, so a right guess
// gives the backward's bits; a wrong one (another loss, a mixture's weights) drops them and
// runs the backward, and this thread then stops guessing for a while (kGuessPause calls) so
// that a loss of another form does not pay for the wasted gradients on every call.
struct EagerGradients {
  std::array<Tensor, 3> grads;  // loc, matrix, x; undefined when not computed or handed over
  double guess = 0.0;
  int64_t count = 0;            // samples (the length of g)
  bool pending = false;         // grads holds gradients no backward has used yet
};

constexpr int kGuessPause = 16;
thread_local int t_guess_pause = 0;
thread_local GuessStats t_guess_stats;

// Eager only when grad mode is on, some input takes part in differentiation and every gradient
// wanted is per sample (an input shared by the batch or read through an offset list sums its
// gradient over samples, which the eager pass does not do; with one sample, all are).
bool guess_gradients(const MvnBatch& b, const std::array<bool, 3>& wanted) {
  if (!grad_enabled() || !(wanted[0] || wanted[1] || wanted[2]) || b.count == 0) return false;
  if (t_guess_pause > 0) {
    --t_guess_pause;
    return false;
  }
  auto per_sample = [&b](const std::vector<int64_t>& offsets, int64_t step) {
    return offsets.empty() && (step != 0 || b.count == 1);
  };
  return (!wanted[0] || per_sample(b.loc_offset, b.loc_step)) && (!wanted[1] || per_sample(b.factor_offset, b.factor_step)) &&
         (!wanted[2] || per_sample(b.x_offset, b.x_step));
}

// Every g[i] == value: a vector pass over the pool's chunks, or for a few samples a plain loop
// (the pass's dispatch alone cost a one-sample call 60 instructions; the same comparisons).
bool all_equal(const double* g, int64_t n, double value) {
  if (n > 8) return simd_all_equal(g, n, value);
  for (int64_t i = 0; i < n; ++i)
    if (!(g[i] == value)) return false;
  return true;
}

// The eager gradients when the guess was right (handed over once: a second backward of a
// retained graph recomputes); nullopt otherwise.
std::optional<Grads> take_eager(EagerGradients& e, const Tensor& g, Needs needs) {
  if (!e.pending) return std::nullopt;
  e.pending = false;
  std::array<Tensor, 3> grads = std::move(e.grads);
  if (!all_equal(g.data().data(), e.count, e.guess)) {
    t_guess_pause = kGuessPause;
    ++t_guess_stats.wrong;
    return std::nullopt;
  }
  ++t_guess_stats.right;
  Grads out(3);
  for (size_t i = 0; i < 3; ++i)
    if (needs[i]) out[i] = std::move(grads[i]);
  return out;
}

// The plain first-order rule of the op: the eager gradients, or one SIMD pass. It lives in the
// tape's arena with the entry (a shared heap record was one of the two allocations of a small
// call); `eager` is mutable because handing the gradients over consumes them, and the engine
// calls a rule as const.
// Both rules of the entry in one state object (placed once: one set of handles, one
// destructor): `composed`, the closed forms written with differentiable ops (create_graph), and
// `first_order`, the eager gradients or the SIMD backward pass.
struct LogProbRules {
  Tensor loc, matrix;
  Tensor factor;  // undefined when the matrix is the factor (the triangular forms): one handle less
  Tensor x;
  MvnMatrix kind;
  mutable EagerGradients eager;
  // The forward's plan when no eager gradients were computed (the backward pass reads it). With
  // eager gradients the pass runs only after a wrong guess or on a retained graph's second
  // sweep, and plans again from the same shapes (the same plan): carrying an MvnBatch through
  // the closure's moves into the arena cost the common call ~200 instructions.
  std::optional<MvnBatch> batch;

  Grads composed(const Tensor& g, Needs) const {
    const bool symmetric = kind == MvnMatrix::Covariance || kind == MvnMatrix::Precision;
    return closed_form_gradients(loc, matrix, symmetric ? linalg::potrf(matrix) : matrix, x, kind, g);
  }

  Grads first_order(const Tensor& g, Needs needs) const {
    if (auto grads = take_eager(eager, g, needs)) return std::move(*grads);
    std::optional<MvnBatch> planned;
    if (!batch) planned = plan_mvn_batch(loc, factor_values(), x);
    const MvnBatch& b = batch ? *batch : *planned;
    Tensor gl = gradient_buffer(needs[0], loc, b.loc_offset);
    Tensor gm = gradient_buffer(needs[1], matrix, b.factor_offset);
    Tensor gx = gradient_buffer(needs[2], x, b.x_offset);
    MvnPass pass{.batch = &b, .matrix = kind, .loc = loc.data().data(), .factor = factor_values().data().data(),
                 .x = x.data().data(), .g = g.data().data(), .gloc = data_or_null(gl),
                 .gmatrix = data_or_null(gm), .gx = data_or_null(gx)};
    std::array<double, 2 * kMaxFusedDim + kMaxFusedDim * kMaxFusedDim> shared{};
    simd_backward_all(pass, shared.data());
    write_shared(gl, shared.data(), b.loc_offset.empty() && b.loc_step == 0);
    write_shared(gx, shared.data() + b.d, b.x_offset.empty() && b.x_step == 0);
    write_shared(gm, shared.data() + 2 * b.d, b.factor_offset.empty() && b.factor_step == 0);
    return {gl, gm, gx};
  }

  const Tensor& factor_values() const { return factor.defined() ? factor : matrix; }
};

}  // namespace

GuessStats& simd_guess_stats() { return t_guess_stats; }

void simd_guess_reset() { t_guess_pause = 0; }

// `factor` is a checked factor [..., d, d] (d >= 1): its shape is read without checks.
Tensor simd_log_prob(const Tensor& loc, const Tensor& matrix, const Tensor& factor, const Tensor& x, MvnMatrix kind,
                     const DeferredChecks* deferred) {
  const int64_t d = factor.shape().back();
  if (!x.defined() || x.dim() < 1 || x.shape().back() != d) validation::check_sample(x, d, "MultivariateNormal::log_prob");
  MvnBatch batch = plan_mvn_batch(loc, factor, x);
  const std::array<bool, 3> wanted{loc.requires_grad(), matrix.requires_grad(), x.requires_grad()};
  EagerGradients eager;
  eager.pending = guess_gradients(batch, wanted);
  eager.count = batch.count;
  Tensor out = Tensor::empty(batch.shape);
  MvnPass pass{.batch = &batch, .matrix = kind, .loc = loc.data().data(), .factor = factor.data().data(),
               .x = x.data().data(), .upper = deferred != nullptr ? deferred->upper : UpperCheck::None,
               .out = out.mutable_data().data()};
  if (eager.pending) {
    eager.guess = -(1.0 / static_cast<double>(batch.count));  // what -mean(log_prob) hands back
    const Tensor* inputs[3] = {&loc, &matrix, &x};
    for (size_t i = 0; i < 3; ++i)
      if (wanted[i]) eager.grads[i] = Tensor::empty_like(*inputs[i]);
    pass.eager_g = eager.guess;
    pass.gloc = data_or_null(eager.grads[0]);
    pass.gmatrix = data_or_null(eager.grads[1]);
    pass.gx = data_or_null(eager.grads[2]);
  }
  // A NaN or infinite log_prob is the only sign of a non-finite x (and, with `deferred`, of a
  // non-finite parameter); only then are the parameters and x scanned, to name the culprit.
  // (An empty batch computes nothing, so they are scanned directly.)
  const bool valid = eager.pending ? simd_eager_all(pass) : simd_forward_all(pass);
  if (!valid || batch.count == 0) {
    if (deferred != nullptr && deferred->scans) deferred->scans();
    validation::check_sample(x, d, "MultivariateNormal::log_prob");
  }
  if (!needs_recording({loc, matrix, x})) return out;
  std::optional<MvnBatch> kept;
  if (!eager.pending) kept = std::move(batch);
  {
    cholla::detail::EntryBuilder entry = cholla::detail::single_output_entry("mvn_log_prob", {loc, matrix, x}, out);
    cholla::detail::place_shared_rules(
        LogProbRules{loc, matrix, factor.same(matrix) ? Tensor() : factor, x, kind, std::move(eager), std::move(kept)},
        entry.backward(), entry.raw_backward());
  }
  return out;
}

// Same formula as linalg::potrf's backward (symmetric convention), written with differentiable
// ops so that second derivatives through the factor stay exact:
//   gA = 1/2 L^{-T} copyltu(L^T G) L^{-1},  copyltu(M) = tril(M) + tril(M, -1)^T.
Tensor cholesky_backward(const Tensor& L, const Tensor& G) {
  Tensor M = linalg::trmm(L, G, {.transpose = true});
  Tensor S = linalg::tril(M) + transpose(linalg::tril(M, -1));
  Tensor Y = linalg::trsm(L, S, {.transpose = true});
  return linalg::trsm(L, Y, {.rightside = true, .alpha = 0.5});
}

// A is a square matrix [..., d, d] (the factories check its shape first).
std::optional<Factorisation> simd_factorise(const Tensor& A, const SymmetryCheck& symmetry, bool check_finite) {
  const int64_t d = A.shape().back();
  if (d > kMaxFusedDim) return std::nullopt;
  Tensor L = Tensor::empty_like(A);  // A's shape is known good: no revalidation
  const int64_t count = d > 0 ? A.numel() / (d * d) : numel(batch_shape(A, 2));
  const CholeskyPass pass{.A = A.data().data(), .d = d, .count = count, .L = L.mutable_data().data(),
                          .check_symmetry = symmetry.on, .symmetry_rtol = symmetry.rtol,
                          .symmetry_atol = symmetry.atol, .check_finite = check_finite};
  if (!simd_cholesky_all(pass)) return std::nullopt;
  Factorisation f;
  f.report.batch_shape = batch_shape(A, 2);  // every element usable: MultivariateNormal::report() makes the mask
  f.report.min_pivot = pass.min_pivot;
  // Recorded as potrf of A: rsample, entropy, covariance() ... differentiate through it.
  f.factor = record("potrf", {A}, L, [L](const Tensor& G, Needs) { return Grads{cholesky_backward(L, G)}; });
  return f;
}

}  // namespace cholla::dist::detail
