// Per-SIMD-target helpers of the batch-vectorised small kernels (small_*_simd.cpp): each
// SIMD lane holds one matrix of the batch; operands are transposed into lane-major buffers
// (entry e of every matrix of a block side by side) and back. Included once per target by
// Highway's foreach_target mechanism, hence the toggling include guard instead of
// #pragma once.
#if defined(CHOLLA_LINALG_SMALL_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHOLLA_LINALG_SMALL_SIMD_INL_H_
#undef CHOLLA_LINALG_SMALL_SIMD_INL_H_
#else
#define CHOLLA_LINALG_SMALL_SIMD_INL_H_
#endif

#include <hwy/highway.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "linalg/detail/kernels/small.hpp"

HWY_BEFORE_NAMESPACE();
namespace cholla::linalg::kernels::small::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<double>;
using V = hn::Vec<D>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(double);

// One block of `count` (<= lanes) matrices, matrix l at base + l * stride. Lanes past count
// (a partial last block) read the last matrix again and are never written back.
struct Block {
  size_t lanes, count;
  int64_t stride;
};

// x[e * lanes + l] = entry offset(e) of matrix l, for e < entries: one gather per entry
// (hardware gathers on AVX2 and AVX-512).
template <class Offset>
HWY_INLINE void gather(D d, const Block& blk, const double* base, int entries, Offset offset,
                       double* x) {
  const hn::RebindToSigned<D> di;
  HWY_ALIGN int64_t start[kMaxLanes];
  for (size_t l = 0; l < blk.lanes; ++l)
    start[l] = static_cast<int64_t>(std::min(l, blk.count - 1)) * blk.stride;
  const auto first = hn::Load(di, start);
  for (int e = 0; e < entries; ++e)
    hn::Store(hn::GatherIndex(d, base, hn::Add(first, hn::Set(di, static_cast<int64_t>(offset(e))))),
              d, x + static_cast<size_t>(e) * blk.lanes);
}

// The inverse for the real lanes: entry offset(e) of matrix l = x[e * lanes + l]. (Scalar:
// AVX-512's hardware scatter measured slower here.)
template <class Offset>
HWY_INLINE void scatter(const Block& blk, double* base, int entries, Offset offset,
                        const double* x) {
  for (size_t l = 0; l < blk.count; ++l) {
    double* m = base + static_cast<int64_t>(l) * blk.stride;
    for (int e = 0; e < entries; ++e) m[offset(e)] = x[static_cast<size_t>(e) * blk.lanes + l];
  }
}

// Calls fn(std::true_type{}) or fn(std::false_type{}): a runtime flag as a template argument.
template <class Fn>
HWY_INLINE void with_flag(bool flag, Fn&& fn) {
  if (flag)
    fn(std::true_type{});
  else
    fn(std::false_type{});
}

}  // namespace cholla::linalg::kernels::small::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // include guard toggled per target
