// Per-SIMD-target helpers of the MVN kernels (distributions/mvn_simd.cpp) where AVX-512 has a
// faster way than the portable one: writing a block of samples back to row-major memory, and
// square roots with their reciprocals. Included once per target by Highway's foreach_target
// mechanism, hence the toggling include guard instead of #pragma once.
#if defined(CHOLLA_DIST_MVN_SIMD_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHOLLA_DIST_MVN_SIMD_ROWS_INL_H_
#undef CHOLLA_DIST_MVN_SIMD_ROWS_INL_H_
#else
#define CHOLLA_DIST_MVN_SIMD_ROWS_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace cholla::dist::detail::HWY_NAMESPACE {
namespace rows {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<double>;
using V = hn::Vec<DF>;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

// The 8 x 8 transpose of x (x[i] lane j becomes x[j] lane i): pairs, then pairs of pairs, then
// halves; 24 shuffles.
HWY_INLINE void transpose8(__m512d x[8]) {
  __m512d a[8], b[8];
  for (int k = 0; k < 8; k += 2) {
    a[k] = _mm512_unpacklo_pd(x[k], x[k + 1]);      // x_k[0] x_k+1[0] x_k[2] x_k+1[2] ...
    a[k + 1] = _mm512_unpackhi_pd(x[k], x[k + 1]);  // the odd lanes
  }
  const __m512i even_pairs = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i odd_pairs = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int k : {0, 4}) {
    b[k] = _mm512_permutex2var_pd(a[k], even_pairs, a[k + 2]);          // lanes 0 and 4 of rows k..k+3
    b[k + 2] = _mm512_permutex2var_pd(a[k], odd_pairs, a[k + 2]);       // lanes 2 and 6
    b[k + 1] = _mm512_permutex2var_pd(a[k + 1], even_pairs, a[k + 3]);  // lanes 1 and 5
    b[k + 3] = _mm512_permutex2var_pd(a[k + 1], odd_pairs, a[k + 3]);   // lanes 3 and 7
  }
  for (int j = 0; j < 4; ++j) {
    x[j] = _mm512_shuffle_f64x2(b[j], b[j + 4], 0x44);      // low halves: lane j of all rows
    x[j + 4] = _mm512_shuffle_f64x2(b[j], b[j + 4], 0xEE);  // high halves: lane j + 4
  }
}

// out[l * S + e] = lane l of col(e) for the 8 samples of a full block, e < S. Each group of 8
// values is transposed in registers and written as 8 contiguous rows (masked when the group
// is partial), instead of one scatter per value (eight scalar stores each); a group of fewer
// than 4 values is cheaper scattered than transposed.
template <int S, class Col>
HWY_INLINE void store_rows(double* out, Col&& col) {
  constexpr int kGroups = S / 8 + (S % 8 >= 4 ? 1 : 0);
  for (int c = 0; c < kGroups; ++c) {
    const int width = S - 8 * c < 8 ? S - 8 * c : 8;
    __m512d x[8];
    for (int k = 0; k < 8; ++k) x[k] = k < width ? col(8 * c + k).raw : _mm512_setzero_pd();
    transpose8(x);
    const auto mask = static_cast<__mmask8>((1u << width) - 1u);
    for (int l = 0; l < 8; ++l) _mm512_mask_storeu_pd(out + l * S + 8 * c, mask, x[l]);
  }
  const __m512i index = _mm512_setr_epi64(0, S, 2 * S, 3 * S, 4 * S, 5 * S, 6 * S, 7 * S);
  for (int e = 8 * kGroups; e < S; ++e) _mm512_i64scatter_pd(out + e, index, col(e).raw, 8);
}

// The inverse of store_rows: put(e, v) with lane l of v = in[l * S + e], for e < S.
template <int S, class Put>
HWY_INLINE void load_rows(const double* in, Put&& put) {
  constexpr int kGroups = S / 8 + (S % 8 >= 4 ? 1 : 0);
  for (int c = 0; c < kGroups; ++c) {
    const int width = S - 8 * c < 8 ? S - 8 * c : 8;
    const auto mask = static_cast<__mmask8>((1u << width) - 1u);
    __m512d x[8];
    for (int l = 0; l < 8; ++l) x[l] = _mm512_maskz_loadu_pd(mask, in + l * S + 8 * c);
    transpose8(x);
    for (int k = 0; k < width; ++k) put(8 * c + k, V{x[k]});
  }
  const __m512i index = _mm512_setr_epi64(0, S, 2 * S, 3 * S, 4 * S, 5 * S, 6 * S, 7 * S);
  for (int e = 8 * kGroups; e < S; ++e) put(e, V{_mm512_i64gather_pd(index, in + e, 8)});
}

// sqrt(x) and 1 / sqrt(x) for x > 0 without the divider (whose square roots and divisions
// bound the Cholesky pass): a 14-bit estimate of 1 / sqrt(x), then two coupled Newton steps on
// g ~ sqrt(x) and h ~ 1 / (2 sqrt(x)), each squaring the relative error (2^-14, 2^-28, below
// 2^-53), so within a few units in the last place of the correctly rounded values. Lanes
// outside [2^-1000, 2^1000] (where the estimate or g h could leave the normal range) take the
// exact instructions.
HWY_INLINE void root_and_inverse(V x, V& root, V& inv) {
  const DF df;
  const auto in_range = hn::And(hn::Ge(x, hn::Set(df, 0x1p-1000)), hn::Le(x, hn::Set(df, 0x1p1000)));
  if (!hn::AllTrue(df, in_range)) {
    root = hn::Sqrt(x);
    inv = hn::Div(hn::Set(df, 1.0), root);
    return;
  }
  const V y{_mm512_rsqrt14_pd(x.raw)};
  const V half = hn::Set(df, 0.5);
  V g = hn::Mul(x, y), h = hn::Mul(half, y);
  for (int step = 0; step < 2; ++step) {
    const V r = hn::NegMulAdd(g, h, half);  // 1/2 - g h
    g = hn::MulAdd(g, r, g);
    h = hn::MulAdd(h, r, h);
  }
  root = g;
  inv = hn::Add(h, h);
}

#else  // the portable versions

template <int S, class Col>
HWY_INLINE void store_rows(double* out, Col&& col) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  HWY_ALIGN int64_t index[HWY_MAX_BYTES / sizeof(double)];
  for (size_t l = 0; l < hn::Lanes(df); ++l) index[l] = static_cast<int64_t>(l) * S;
  for (int e = 0; e < S; ++e) hn::ScatterIndex(col(e), df, out + e, hn::Load(di, index));
}

template <int S, class Put>
HWY_INLINE void load_rows(const double* in, Put&& put) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  HWY_ALIGN int64_t index[HWY_MAX_BYTES / sizeof(double)];
  for (size_t l = 0; l < hn::Lanes(df); ++l) index[l] = static_cast<int64_t>(l) * S;
  for (int e = 0; e < S; ++e) put(e, hn::GatherIndex(df, in + e, hn::Load(di, index)));
}

HWY_INLINE void root_and_inverse(V x, V& root, V& inv) {
  root = hn::Sqrt(x);
  inv = hn::Div(hn::Set(DF(), 1.0), root);
}

#endif

}  // namespace rows
}  // namespace cholla::dist::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard toggled per target
