// The across-the-batch SIMD MVN kernels (see mvn_simd.hpp). This file is compiled once per
// Highway target: foreach_target.h re-includes it with HWY_NAMESPACE = N_AVX3, N_AVX2, ...,
// and HWY_DYNAMIC_DISPATCH picks the best one the CPU supports at run time.
//
// Maths (docs/linalg.md §8.2, §8.3); r = x - loc, g the incoming gradient of log_prob:
//   scale factor L:      w = L^{-1} r,  s = L^{-T} w,  log p = -|w|^2/2 - sum log L_ii - c
//     gloc = g s, gx = -g s, gL = g (tril(s w^T) - diag(1/L_ii))
//     covariance S = L L^T:   gS = g/2 (s s^T - S^{-1}),  S^{-1} = L^{-T} L^{-1}
//   precision factor M:  w = M^T r,  t = M w,  log p = -|w|^2/2 + sum log M_ii - c
//     gloc = g t, gx = -g t, gM = g (-tril(r w^T) + diag(1/M_ii))
//     precision P = M M^T:    gP = g/2 (P^{-1} - r r^T),  P^{-1} = M^{-T} M^{-1}
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <limits>
#include <type_traits>

#include "autodiff/errors.hpp"
#include "autodiff/parallel.hpp"
#include "distributions/detail/constants.hpp"
#include "distributions/detail/mvn_simd.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "distributions/mvn_simd.cpp"
#include <hwy/foreach_target.h>  // must precede highway.h

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "distributions/detail/mvn_simd_rows-inl.h"

HWY_BEFORE_NAMESPACE();
namespace cholla::dist::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
namespace {  // internal linkage: no PLT calls between the helpers of the shared library

using DF = hn::ScalableTag<double>;
using DI = hn::RebindToSigned<DF>;
using V = hn::Vec<DF>;
using VI = hn::Vec<DI>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(double);

constexpr int tri(int i, int j) { return i * (i + 1) / 2 + j; }  // packed lower triangle

// N vectors. Sizeless vector types (SVE, RVV) cannot live in arrays, so there they are kept in
// an aligned stack buffer; elsewhere in registers.
template <int N>
class Vecs {
 public:
#if HWY_HAVE_SCALABLE
  V operator[](int i) const { return hn::Load(DF(), lanes_ + static_cast<size_t>(i) * kMaxLanes); }
  void set(int i, V v) { hn::Store(v, DF(), lanes_ + static_cast<size_t>(i) * kMaxLanes); }

 private:
  HWY_ALIGN double lanes_[(N > 0 ? N : 1) * kMaxLanes];
#else
  V operator[](int i) const { return v_[i]; }
  void set(int i, V v) { v_[i] = v; }

 private:
  V v_[N > 0 ? N : 1];
#endif
};

// Where sample i of the batch reads (or writes) a tensor.
struct Place {
  const std::vector<int64_t>* list;
  int64_t step;
  int64_t operator()(int64_t i) const { return list->empty() ? i * step : (*list)[static_cast<size_t>(i)]; }
  bool shared() const { return list->empty() && step == 0; }  // one tensor for every sample
  bool listed() const { return !list->empty(); }              // several samples may share one
};

// The element offsets of one block's samples in a tensor, as a vector of gather indices. Lanes
// past the end of the batch repeat its last sample (valid values, no spurious NaN).
class BlockIndex {
 public:
  explicit BlockIndex(Place at) : at_(at) {
    for (size_t l = 0; l < kMaxLanes; ++l) lane_[l] = static_cast<int64_t>(l) * at.step;
  }
  VI operator()(int64_t i0, int64_t n) const {
    const DI di;
    const auto lanes = static_cast<int64_t>(hn::Lanes(di));
    if (n == lanes && !at_.listed()) return hn::Add(hn::Load(di, lane_), hn::Set(di, i0 * at_.step));
    HWY_ALIGN int64_t index[kMaxLanes];
    for (int64_t l = 0; l < lanes; ++l) index[l] = at_(i0 + std::min(l, n - 1));
    return hn::Load(di, index);
  }
  const Place& place() const { return at_; }

 private:
  Place at_;
  HWY_ALIGN int64_t lane_[kMaxLanes];
};

struct BatchIndex {
  BlockIndex loc, factor, x;
  explicit BatchIndex(const MvnBatch& b)
      : loc(Place{&b.loc_offset, b.loc_step}), factor(Place{&b.factor_offset, b.factor_step}),
        x(Place{&b.x_offset, b.x_step}) {}
};

// One block of samples transposed: vector e holds element e of every sample of the block
// (the factor as its packed lower triangle).
template <int D>
struct Block {
  static constexpr int kTri = D * (D + 1) / 2;
  Vecs<D> loc, x;
  Vecs<kTri> f;
};

// The strict upper triangle of the factor, which the maths never reads, for a deferred check
// (UpperCheck): `bad` ORs the raw values (only sign bits set iff all are +-0) or v * 0 (+-0 iff
// all are finite); the lines are loaded anyway for the lower triangle.
class UpperVerdict {
 public:
  explicit UpperVerdict(UpperCheck check) : check_(check) { bad_.set(0, hn::Zero(DF())); }
  template <int D>
  HWY_INLINE void add(const double* factor, VI index) {
    if (check_ == UpperCheck::None) return;
    const DF df;
    const bool zero = check_ == UpperCheck::Zero;
    V bad = bad_[0];
    for (int r = 0; r < D; ++r)
      for (int c = r + 1; c < D; ++c) {
        const V u = hn::GatherIndex(df, factor + r * D + c, index);
        bad = hn::Or(bad, zero ? u : hn::Mul(u, hn::Zero(df)));
      }
    bad_.set(0, bad);
  }
  bool ok() const {
    const hn::RebindToUnsigned<DF> du;
    const auto magnitude = hn::And(hn::BitCast(du, bad_[0]), hn::Set(du, 0x7FFFFFFFFFFFFFFFULL));
    return hn::AllTrue(du, hn::Eq(magnitude, hn::Zero(du)));
  }

 private:
  UpperCheck check_;
  Vecs<1> bad_;
};

template <int D>
HWY_INLINE void gather(const MvnPass& p, const BatchIndex& at, int64_t i0, int64_t n, Block<D>& b,
                       UpperVerdict* upper = nullptr) {
  const DF df;
  const VI il = at.loc(i0, n), ix = at.x(i0, n), im = at.factor(i0, n);
  for (int e = 0; e < D; ++e) {
    b.loc.set(e, hn::GatherIndex(df, p.loc + e, il));
    b.x.set(e, hn::GatherIndex(df, p.x + e, ix));
  }
  for (int r = 0; r < D; ++r)
    for (int c = 0; c <= r; ++c) b.f.set(tri(r, c), hn::GatherIndex(df, p.factor + r * D + c, im));
  if (upper != nullptr) upper->add<D>(p.factor, im);
}

// g of the block's samples; 0 past the end of the batch, so those lanes add to no gradient.
HWY_INLINE V load_g(const double* g, int64_t i0, int64_t n) {
  const DF df;
  if (n == static_cast<int64_t>(hn::Lanes(df))) return hn::LoadU(df, g + i0);
  HWY_ALIGN double tail[kMaxLanes] = {};
  std::copy_n(g + i0, n, tail);
  return hn::Load(df, tail);
}

// 1 / F_ii for every i. Divisions are the slowest vector instructions here, so when every
// entry of the block lies in [2^-100, 2^100] (no partial product can leave the normal range)
// one division serves all: 1/F_ii = (prod_{j<i} F_jj) (prod_{j>i} F_jj) / prod_j F_jj.
template <int D>
HWY_INLINE void reciprocal_diagonal(const Vecs<Block<D>::kTri>& F, Vecs<D>& inv) {
  const DF df;
  const V one = hn::Set(df, 1.0);
  V smallest = F[0], largest = F[0];
  for (int i = 1; i < D; ++i) {
    smallest = hn::Min(smallest, F[tri(i, i)]);
    largest = hn::Max(largest, F[tri(i, i)]);
  }
  if (D == 1 || !hn::AllTrue(df, hn::And(hn::Ge(smallest, hn::Set(df, 0x1p-100)), hn::Le(largest, hn::Set(df, 0x1p100))))) {
    for (int i = 0; i < D; ++i) inv.set(i, hn::Div(one, F[tri(i, i)]));
    return;
  }
  Vecs<D> before;  // prod_{j<i} F_jj
  before.set(0, one);
  for (int i = 1; i < D; ++i) before.set(i, hn::Mul(before[i - 1], F[tri(i - 1, i - 1)]));
  V after = hn::Div(one, hn::Mul(before[D - 1], F[tri(D - 1, D - 1)]));  // (prod_{j>i} F_jj) / prod
  for (int i = D - 1; i >= 0; --i) {
    inv.set(i, hn::Mul(before[i], after));
    after = hn::Mul(after, F[tri(i, i)]);
  }
}

// r = x - loc and w (L^{-1} r, or M^T r for a precision factor); returns |w|^2.
template <int D, bool kPrecisionFactor>
HWY_INLINE V whiten(const Block<D>& b, const Vecs<D>& inv, Vecs<D>& r, Vecs<D>& w) {
  const DF df;
  const Vecs<Block<D>::kTri>& F = b.f;
  for (int i = 0; i < D; ++i) r.set(i, hn::Sub(b.x[i], b.loc[i]));
  V maha = hn::Zero(df);
  for (int i = 0; i < D; ++i) {
    V acc;
    if constexpr (!kPrecisionFactor) {
      acc = r[i];
      for (int j = 0; j < i; ++j) acc = hn::NegMulAdd(F[tri(i, j)], w[j], acc);
      acc = hn::Mul(acc, inv[i]);
    } else {
      acc = hn::Mul(F[tri(i, i)], r[i]);
      for (int j = i + 1; j < D; ++j) acc = hn::MulAdd(F[tri(j, i)], r[j], acc);
    }
    w.set(i, acc);
    maha = hn::MulAdd(acc, acc, maha);
  }
  return maha;
}

// sum log F_ii with ONE log per sample: the mantissas (in [1, 2)) of the diagonal multiply to
// less than 2^8 and the binary exponents add exactly, so nothing overflows whatever the scale.
// Subnormal entries are rescaled first. NaN when an entry is not positive, or infinite (which
// the exponent field would count as 2^1024, and which would leave |w|^2 finite: 1/inf = 0).
template <int D>
HWY_INLINE V sum_log_diagonal(const Vecs<Block<D>::kTri>& F) {
  const DF df;
  const hn::RebindToUnsigned<DF> du;
  const V tiny = hn::Set(df, DBL_MIN), rescale = hn::Set(df, 0x1p54);
  const auto exponent_bias = hn::Set(du, 0x4330000000000000ULL);  // 2^52 as a double
  const V unbias = hn::Set(df, 0x1p52 + 1023.0);
  V mantissa = hn::Set(df, 1.0), exponent = hn::Zero(df), smallest = hn::Set(df, 1.0), largest = smallest;
  for (int i = 0; i < D; ++i) {
    V v = F[tri(i, i)];
    smallest = hn::Min(smallest, v);
    largest = hn::Max(largest, v);
    const auto subnormal = hn::Lt(v, tiny);
    v = hn::IfThenElse(subnormal, hn::Mul(v, rescale), v);
    exponent = hn::IfThenElse(subnormal, hn::Sub(exponent, hn::Set(df, 54.0)), exponent);
    const auto bits = hn::BitCast(du, v);
    exponent = hn::Add(exponent, hn::Sub(hn::BitCast(df, hn::Or(hn::ShiftRight<52>(bits), exponent_bias)), unbias));
    mantissa = hn::Mul(mantissa, hn::BitCast(df, hn::Or(hn::And(bits, hn::Set(du, 0x000FFFFFFFFFFFFFULL)),
                                                         hn::Set(du, 0x3FF0000000000000ULL))));
  }
  const V h = hn::MulAdd(exponent, hn::Set(df, M_LN2), hn::Log(df, mantissa));
  const auto usable = hn::And(hn::Gt(smallest, hn::Zero(df)), hn::Le(largest, hn::Set(df, DBL_MAX)));
  return hn::IfThenElse(usable, h, hn::Set(df, std::numeric_limits<double>::quiet_NaN()));
}

// The log-density of one block from |w|^2 and the block's factor; `check` stays 0 unless some
// output is NaN or infinite.
template <int D, bool kPrecisionFactor>
HWY_INLINE void store_log_prob(const MvnPass& p, const Block<D>& b, V maha, int64_t i0, int64_t n, V& check) {
  const DF df;
  const V constant = hn::Set(df, D * kHalfLog2Pi), half = hn::Set(df, 0.5);
  const V h = sum_log_diagonal<D>(b.f);
  const V out = hn::NegMulAdd(half, maha, kPrecisionFactor ? hn::Sub(h, constant) : hn::Neg(hn::Add(h, constant)));
  check = hn::Add(check, hn::Mul(out, hn::Zero(df)));
  if (n == static_cast<int64_t>(hn::Lanes(df))) {
    hn::StoreU(out, df, p.out + i0);
  } else {
    HWY_ALIGN double tail[kMaxLanes];
    hn::Store(out, df, tail);
    std::copy_n(tail, n, p.out + i0);
  }
}

template <int D, bool kPrecisionFactor>
bool forward(const MvnPass& p, int64_t begin, int64_t end) {
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const BatchIndex at(*p.batch);
  V check = hn::Zero(df);
  UpperVerdict upper(p.upper);
  for (int64_t i0 = begin; i0 < end; i0 += static_cast<int64_t>(lanes)) {
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(lanes), end - i0);
    Block<D> b;
    gather<D>(p, at, i0, n, b, &upper);
    Vecs<D> inv, r, w;
    if constexpr (!kPrecisionFactor) reciprocal_diagonal<D>(b.f, inv);
    const V maha = whiten<D, kPrecisionFactor>(b, inv, r, w);
    store_log_prob<D, kPrecisionFactor>(p, b, maha, i0, n, check);
  }
  return hn::AllTrue(df, hn::Eq(check, hn::Zero(df))) && upper.ok();
}

// Writes (own), adds (listed) or sums over the range (shared) one transposed gradient block.
template <int N>
class GradientSink {
 public:
  GradientSink(double* dst, const BlockIndex& at, double sign) : dst_(dst), at_(at), sign_(sign) {
    for (int e = 0; e < N; ++e) sum_.set(e, hn::Zero(DF()));
  }
  bool active() const { return dst_ != nullptr; }
  // `mask` marks the entries a listed tensor accumulates (the lower triangle for a factor).
  template <class Get>
  HWY_INLINE void put(int64_t i0, int64_t n, Get&& get, const bool* mask = nullptr) {
    const DF df;
    const Place& place = at_.place();
    if (place.shared()) {
      for (int e = 0; e < N; ++e) sum_.set(e, hn::Add(sum_[e], get(e)));
      return;
    }
    const V sign = hn::Set(df, sign_);
    if (!place.listed() && n == static_cast<int64_t>(hn::Lanes(df))) {  // distinct samples: N values each
      rows::store_rows<N>(dst_ + place(i0), [&](int e) { return hn::Mul(sign, get(e)); });
      return;
    }
    for (int e = 0; e < N; ++e) hn::Store(hn::Mul(sign, get(e)), df, block_[e]);
    for (int64_t l = 0; l < n; ++l) {  // the tail, or samples that may share an element
      double* out = dst_ + place(i0 + l);
      if (place.listed()) {
        for (int e = 0; e < N; ++e)
          if (mask == nullptr || mask[e]) out[e] += block_[e][l];
      } else {
        for (int e = 0; e < N; ++e) out[e] = block_[e][l];
      }
    }
  }
  void finish(double* shared) const {
    if (!active() || !at_.place().shared()) return;
    const DF df;
    for (int e = 0; e < N; ++e) shared[e] = sign_ * hn::GetLane(hn::SumOfLanes(df, sum_[e]));
  }

 private:
  double* dst_;
  const BlockIndex& at_;
  double sign_;
  Vecs<N> sum_;
  HWY_ALIGN double block_[N][kMaxLanes];
};

// The first-order gradients of samples [begin, end) times g (backward), or, eagerly, the
// log-density and the gradients for g = p.eager_g on every sample in the same pass (p.g
// unused; every gradient buffer is per sample, see simd_eager). Both run the same instructions
// on the same values, so where g equals that guess the results are the same bits. (A run-time
// flag, not a template parameter: the 32 instantiations per target are slow enough to compile.)
template <int D, MvnMatrix kMatrix>
bool gradients(const MvnPass& p, int64_t begin, int64_t end, double* shared, bool eager) {
  constexpr bool kPrecisionFactor = kMatrix == MvnMatrix::PrecisionTril || kMatrix == MvnMatrix::Precision;
  constexpr bool kSymmetric = kMatrix == MvnMatrix::Covariance || kMatrix == MvnMatrix::Precision;
  constexpr int kTri = Block<D>::kTri;
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const BatchIndex at(*p.batch);
  const V half = hn::Set(df, 0.5);
  V check = hn::Zero(df);
  GradientSink<D> gloc(p.gloc, at.loc, 1.0), gx(p.gx, at.x, -1.0);
  GradientSink<D * D> gmatrix(p.gmatrix, at.factor, 1.0);
  bool lower[D * D];
  for (int k = 0; k < D * D; ++k) lower[k] = kSymmetric || k % D <= k / D;
  UpperVerdict upper(eager ? p.upper : UpperCheck::None);
  for (int64_t i0 = begin; i0 < end; i0 += static_cast<int64_t>(lanes)) {
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(lanes), end - i0);
    Block<D> b;
    gather<D>(p, at, i0, n, b, &upper);
    const Vecs<kTri>& F = b.f;
    Vecs<D> inv, r, w, s;
    reciprocal_diagonal<D>(F, inv);
    const V maha = whiten<D, kPrecisionFactor>(b, inv, r, w);
    if (eager) store_log_prob<D, kPrecisionFactor>(p, b, maha, i0, n, check);
    const V g = eager ? hn::IfThenElseZero(hn::FirstN(df, static_cast<size_t>(n)), hn::Set(df, p.eager_g))
                       : load_g(p.g, i0, n);
    // s = d log p / d x up to sign: L^{-T} w (back substitution) or M w.
    if constexpr (!kPrecisionFactor) {
      for (int k = D - 1; k >= 0; --k) {
        V acc = w[k];
        for (int j = k + 1; j < D; ++j) acc = hn::NegMulAdd(F[tri(j, k)], s[j], acc);
        s.set(k, hn::Mul(acc, inv[k]));
      }
    } else {
      for (int k = 0; k < D; ++k) {
        V acc = hn::Mul(F[tri(k, 0)], w[0]);
        for (int j = 1; j <= k; ++j) acc = hn::MulAdd(F[tri(k, j)], w[j], acc);
        s.set(k, acc);
      }
    }
    if (gloc.active() || gx.active()) {
      Vecs<D> gs;
      for (int k = 0; k < D; ++k) gs.set(k, hn::Mul(g, s[k]));
      auto get = [&](int e) { return gs[e]; };
      if (gloc.active()) gloc.put(i0, n, get);
      if (gx.active()) gx.put(i0, n, get);
    }
    if (!gmatrix.active()) continue;
    Vecs<D * D> G;
    if constexpr (!kSymmetric) {
      // tril(s w^T) - diag(1/L_ii), or -tril(r w^T) + diag(1/M_ii); times g.
      for (int k = 0; k < D; ++k)
        for (int j = 0; j < D; ++j) {
          V v = hn::Zero(df);
          if (j <= k) v = kPrecisionFactor ? hn::Neg(hn::Mul(r[k], w[j])) : hn::Mul(s[k], w[j]);
          if (j == k) v = kPrecisionFactor ? hn::Add(v, inv[k]) : hn::Sub(v, inv[k]);
          G.set(k * D + j, hn::Mul(g, v));
        }
    } else {
      // X = F^{-1} (lower), Q = X^T X = the inverse of the symmetric matrix F F^T.
      Vecs<kTri> X;
      for (int i = 0; i < D; ++i) {
        X.set(tri(i, i), inv[i]);
        for (int j = 0; j < i; ++j) {
          V acc = hn::Mul(F[tri(i, j)], X[tri(j, j)]);
          for (int k = j + 1; k < i; ++k) acc = hn::MulAdd(F[tri(i, k)], X[tri(k, j)], acc);
          X.set(tri(i, j), hn::Neg(hn::Mul(acc, inv[i])));
        }
      }
      const V hg = hn::Mul(half, g);
      for (int i = 0; i < D; ++i)
        for (int j = 0; j <= i; ++j) {
          V q = hn::Mul(X[tri(i, i)], X[tri(i, j)]);
          for (int k = i + 1; k < D; ++k) q = hn::MulAdd(X[tri(k, i)], X[tri(k, j)], q);
          const V v = kMatrix == MvnMatrix::Covariance ? hn::Sub(hn::Mul(s[i], s[j]), q)
                                                       : hn::Sub(q, hn::Mul(r[i], r[j]));
          G.set(i * D + j, hn::Mul(hg, v));
          if (j < i) G.set(j * D + i, G[i * D + j]);
        }
    }
    gmatrix.put(i0, n, [&](int e) { return G[e]; }, lower);
  }
  gloc.finish(shared);
  gx.finish(shared + D);
  gmatrix.finish(shared + 2 * D);
  return hn::AllTrue(df, hn::Eq(check, hn::Zero(df))) && upper.ok();
}

// x * 0 is +-0 for a finite x and NaN otherwise; the OR of such values is NaN iff one was.
HWY_INLINE V nan_if_not_finite(V acc, V v) { return hn::Or(acc, hn::Mul(v, hn::Zero(DF()))); }

// The Cholesky factorisation of one block of matrices, and (when asked) the symmetry check
// |A - A^T| <= atol + rtol max|A| and the finiteness of every entry on the same loaded values.
template <int D>
bool cholesky(const CholeskyPass& p) {
  constexpr int kTri = D * (D + 1) / 2;
  const DF df;
  const size_t lanes = hn::Lanes(df);
  const std::vector<int64_t> none;
  const BlockIndex at(Place{&none, D * D});
  const V zero = hn::Zero(df), rtol = hn::Set(df, p.symmetry_rtol), atol = hn::Set(df, p.symmetry_atol);
  V ok = hn::Set(df, 1.0), smallest = hn::Set(df, std::numeric_limits<double>::infinity());
  HWY_ALIGN double block[kTri][kMaxLanes];
  for (int64_t i0 = 0; i0 < p.count; i0 += static_cast<int64_t>(lanes)) {
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(lanes), p.count - i0);
    const VI index = at(i0, n);
    Vecs<kTri> A, F, upper;  // upper[tri(r, c)] = A_cr
    // A full block of 3 x 3 matrices is loaded as contiguous rows transposed in registers
    // (with AVX-512; gathers elsewhere): 1.2x faster than 9 gathers at d = 3 (4.55 against 5.45
    // ns per matrix with the checks), but 0.9x at d = 5 (72 shuffles against 25 gathers).
    const bool full = D == 3 && n == static_cast<int64_t>(lanes);
    if (full) {
      rows::load_rows<D * D>(p.A + i0 * D * D, [&](int e, V v) {
        if (e % D <= e / D) A.set(tri(e / D, e % D), v);
        else upper.set(tri(e % D, e / D), v);
      });
    } else {
      for (int r = 0; r < D; ++r)
        for (int c = 0; c <= r; ++c) A.set(tri(r, c), hn::GatherIndex(df, p.A + r * D + c, index));
    }
    if (p.check_symmetry || p.check_finite) {
      V largest = zero, worst = zero, finite = zero;
      for (int r = 0; r < D; ++r)
        for (int c = 0; c <= r; ++c) {
          finite = nan_if_not_finite(finite, A[tri(r, c)]);
          largest = hn::Max(largest, hn::Abs(A[tri(r, c)]));
          if (c == r) continue;
          const V u = full ? upper[tri(r, c)] : hn::GatherIndex(df, p.A + c * D + r, index);
          finite = nan_if_not_finite(finite, u);
          largest = hn::Max(largest, hn::Abs(u));
          worst = hn::Max(worst, hn::Abs(hn::Sub(A[tri(r, c)], u)));
        }
      if (p.check_finite) ok = hn::IfThenElseZero(hn::Eq(finite, zero), ok);
      // Same expression as the reference check (no fused multiply-add), so the same verdict.
      if (p.check_symmetry) ok = hn::IfThenElseZero(hn::Le(worst, hn::Add(atol, hn::Mul(rtol, largest))), ok);
    }
    for (int j = 0; j < D; ++j) {
      V pivot = A[tri(j, j)];
      for (int k = 0; k < j; ++k) pivot = hn::NegMulAdd(F[tri(j, k)], F[tri(j, k)], pivot);
      ok = hn::IfThenElseZero(hn::Gt(pivot, zero), ok);
      V root, inv;
      rows::root_and_inverse(pivot, root, inv);
      smallest = hn::Min(smallest, root);
      F.set(tri(j, j), root);
      for (int i = j + 1; i < D; ++i) {
        V acc = A[tri(i, j)];
        for (int k = 0; k < j; ++k) acc = hn::NegMulAdd(F[tri(i, k)], F[tri(j, k)], acc);
        F.set(tri(i, j), hn::Mul(acc, inv));
      }
    }
    if (n == static_cast<int64_t>(lanes)) {
      rows::store_rows<D * D>(p.L + i0 * D * D, [&](int e) { return e % D <= e / D ? F[tri(e / D, e % D)] : zero; });
      continue;
    }
    for (int t = 0; t < kTri; ++t) hn::Store(F[t], df, block[t]);
    for (int64_t l = 0; l < n; ++l) {  // the tail
      double* out = p.L + (i0 + l) * D * D;
      for (int r = 0; r < D; ++r)
        for (int c = 0; c < D; ++c) out[r * D + c] = c <= r ? block[tri(r, c)][l] : 0.0;
    }
  }
  p.min_pivot = hn::GetLane(hn::MinOfLanes(df, smallest));
  return hn::AllTrue(df, hn::Gt(ok, zero));
}

template <class F>
decltype(auto) with_dim(int64_t d, F&& f) {
  switch (d) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    case 8: return f(std::integral_constant<int, 8>{});
    default: throw InternalError("mvn simd kernel", "called with d outside 1..8.");
  }
}

}  // namespace

bool Forward(const MvnPass& p, int64_t begin, int64_t end) {
  return with_dim(p.batch->d, [&](auto dim) {
    return is_precision_factor(p.matrix) ? forward<dim.value, true>(p, begin, end)
                                         : forward<dim.value, false>(p, begin, end);
  });
}

bool all_gradients(const MvnPass& p, int64_t begin, int64_t end, double* shared, bool eager) {
  return with_dim(p.batch->d, [&](auto dim) {
    constexpr int D = dim.value;
    switch (p.matrix) {
      case MvnMatrix::ScaleTril: return gradients<D, MvnMatrix::ScaleTril>(p, begin, end, shared, eager);
      case MvnMatrix::PrecisionTril: return gradients<D, MvnMatrix::PrecisionTril>(p, begin, end, shared, eager);
      case MvnMatrix::Covariance: return gradients<D, MvnMatrix::Covariance>(p, begin, end, shared, eager);
      case MvnMatrix::Precision: return gradients<D, MvnMatrix::Precision>(p, begin, end, shared, eager);
    }
    return false;
  });
}

void Backward(const MvnPass& p, int64_t begin, int64_t end, double* shared) {
  all_gradients(p, begin, end, shared, false);
}

// A batch of one sample plans every input as shared by all samples (step 0): its gradient is
// then summed over the one sample, and copied here.
bool Eager(const MvnPass& p, int64_t begin, int64_t end) {
  const MvnBatch& b = *p.batch;
  double sum[2 * kMaxFusedDim + kMaxFusedDim * kMaxFusedDim];
  const bool ok = all_gradients(p, begin, end, sum, true);
  auto copy = [](double* dst, const std::vector<int64_t>& offsets, int64_t step, const double* from, int64_t n) {
    if (dst != nullptr && offsets.empty() && step == 0) std::copy_n(from, n, dst);
  };
  copy(p.gloc, b.loc_offset, b.loc_step, sum, b.d);
  copy(p.gx, b.x_offset, b.x_step, sum + b.d, b.d);
  copy(p.gmatrix, b.factor_offset, b.factor_step, sum + 2 * b.d, b.d * b.d);
  return ok;
}

bool Cholesky(const CholeskyPass& p) {
  return with_dim(p.d, [&](auto dim) { return cholesky<dim.value>(p); });
}

// The scans below run on every distribution built, so they are kept throughput-bound: the
// verdict is accumulated with bitwise ORs and mask ANDs (one-cycle latency), never through a
// chain of additions or minima.

bool AllFinite(const double* p, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  V a = hn::Zero(df), b = a;
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    a = nan_if_not_finite(a, hn::LoadU(df, p + i));
    b = nan_if_not_finite(b, hn::LoadU(df, p + i + lanes));
  }
  for (; i + lanes <= n; i += lanes) a = nan_if_not_finite(a, hn::LoadU(df, p + i));
  bool ok = hn::AllTrue(df, hn::Eq(hn::Or(a, b), hn::Zero(df)));
  for (; i < n; ++i) ok = ok && std::isfinite(p[i]);
  return ok;
}

bool AllEqual(const double* p, int64_t n, double value) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const V v = hn::Set(df, value);
  auto same = hn::FirstN(df, static_cast<size_t>(lanes));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) same = hn::And(same, hn::Eq(hn::LoadU(df, p + i), v));
  bool all = hn::AllTrue(df, same);
  for (; i < n; ++i) all = all && p[i] == value;
  return all;
}

// Every entry finite, and position k of a matrix 0 (strict upper), positive (diagonal) or
// anything: as bounds lo_k <= v <= hi_k (NaN fails both). One pattern covering `lanes`
// consecutive matrices lines up with whole vectors. d > 8 takes the scalar loop only.
bool FiniteLowerPositive(const double* L, int64_t d, int64_t count) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df)), size = d * d, period = size * lanes;
  const bool vectors = d <= 8 && count >= lanes;
  HWY_ALIGN double lo[kMaxLanes * 64], hi[kMaxLanes * 64];
  for (int64_t k = 0, r = 0, c = 0; vectors && k < period; ++k) {  // (r, c): position k in its matrix
    lo[k] = c > r ? 0.0 : c == r ? std::numeric_limits<double>::denorm_min() : -DBL_MAX;
    hi[k] = c > r ? 0.0 : DBL_MAX;
    if (++c == d) {
      c = 0;
      r = (r + 1) % d;
    }
  }
  auto ok = hn::FirstN(df, static_cast<size_t>(lanes));
  int64_t m = 0;
  for (; vectors && m + lanes <= count; m += lanes) {
    const double* block = L + m * size;
    for (int64_t k = 0; k < period; k += lanes) {
      const V v = hn::LoadU(df, block + k);
      ok = hn::And(ok, hn::And(hn::Ge(v, hn::Load(df, lo + k)), hn::Le(v, hn::Load(df, hi + k))));
    }
  }
  bool all = hn::AllTrue(df, ok);
  for (int64_t k = m * size; k < count * size; ++k) {
    const int64_t r = (k % size) / d, c = k % d;
    all = all && std::isfinite(L[k]) && (c > r ? L[k] == 0.0 : c < r || L[k] > 0.0);
  }
  return all;
}

}  // namespace HWY_NAMESPACE
}  // namespace cholla::dist::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cholla::dist::detail {

HWY_EXPORT(Forward);
HWY_EXPORT(Backward);
HWY_EXPORT(Eager);
HWY_EXPORT(Cholesky);
HWY_EXPORT(AllFinite);
HWY_EXPORT(AllEqual);
HWY_EXPORT(FiniteLowerPositive);

bool simd_forward(const MvnPass& p, int64_t begin, int64_t end) {
  return HWY_DYNAMIC_DISPATCH(Forward)(p, begin, end);
}

void simd_backward(const MvnPass& p, int64_t begin, int64_t end, double* shared) {
  HWY_DYNAMIC_DISPATCH(Backward)(p, begin, end, shared);
}

bool simd_eager(const MvnPass& p, int64_t begin, int64_t end) {
  return HWY_DYNAMIC_DISPATCH(Eager)(p, begin, end);
}

bool simd_cholesky(const CholeskyPass& p) { return HWY_DYNAMIC_DISPATCH(Cholesky)(p); }

// The scans split over the pool for large inputs (a yes/no answer: any chunking gives the same).
namespace {
template <class Scan>
bool all_chunks(int64_t n, int64_t grain, Scan&& scan) {
  std::atomic<bool> ok{true};
  parallel_for(n, grain, [&](int64_t begin, int64_t end) {
    if (!scan(begin, end)) ok.store(false, std::memory_order_relaxed);
  });
  return ok.load();
}
}  // namespace

bool simd_all_finite(const double* p, int64_t n) {
  return all_chunks(n, int64_t{1} << 16, [p](int64_t begin, int64_t end) {
    return HWY_DYNAMIC_DISPATCH(AllFinite)(p + begin, end - begin);
  });
}

// The backward's check of g (one value per sample), split too: serial, it was 1% of a 1-thread
// -mean(log_prob) step at N = 65,536, the part that stays on one thread.
bool simd_all_equal(const double* p, int64_t n, double value) {
  return all_chunks(n, int64_t{1} << 14, [p, value](int64_t begin, int64_t end) {
    return HWY_DYNAMIC_DISPATCH(AllEqual)(p + begin, end - begin, value);
  });
}

bool simd_finite_lower_positive(const double* L, int64_t d, int64_t count) {
  const int64_t grain = std::max<int64_t>(64, (int64_t{1} << 16) / (d * d) / 64 * 64);
  return all_chunks(count, grain, [=](int64_t begin, int64_t end) {
    return HWY_DYNAMIC_DISPATCH(FiniteLowerPositive)(L + begin * d * d, d, end - begin);
  });
}

std::vector<int64_t> simd_targets() { return hwy::SupportedAndGeneratedTargets(); }

std::string simd_target_name(int64_t target) { return hwy::TargetName(target); }

void simd_use_target(int64_t target) {
  hwy::SetSupportedTargetsForTest(target);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

}  // namespace cholla::dist::detail
#endif  // HWY_ONCE
