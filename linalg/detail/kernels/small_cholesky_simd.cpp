// potrf and potri for n <= kSmallN vectorised across the batch (helpers in
// small_simd-inl.h): the named triangles of a block of Lanes(d) matrices are gathered
// lane-major, computed with one vector operation per scalar one of the reference loops
// (small_cholesky.cpp), in the same order, and scattered back. Highway compiles this file
// once per SIMD target.
//
// A matrix that fails (a non-positive pivot for potrf, a zero diagonal for potri) is left
// to the reference kernel on its untouched input, so infos and what is left in the buffer
// follow LAPACK's convention exactly as the reference does.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "linalg/detail/kernels/small_cholesky_simd.cpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include <array>

#include "linalg/detail/kernels/small_simd-inl.h"

HWY_BEFORE_NAMESPACE();
namespace cholla::linalg::kernels::small::HWY_NAMESPACE {

// Packed index of L(i, j), j <= i, in the lane-major buffer.
constexpr int packed(int i, int j) { return i * (i + 1) / 2 + j; }

// Offsets of L(i, j) in packed order within a row-major matrix holding L (lower) or
// U = L^T (upper).
template <int N, bool Lower>
constexpr std::array<int, N * (N + 1) / 2> triangle_offsets() {
  std::array<int, N * (N + 1) / 2> offsets{};
  for (int i = 0; i < N; ++i)
    for (int j = 0; j <= i; ++j) offsets[static_cast<size_t>(packed(i, j))] = Lower ? i * N + j : j * N + i;
  return offsets;
}

// Cholesky–Crout on the packed lane-major block. Returns the lanes whose every pivot was
// positive (a NaN pivot is not).
template <int N>
HWY_INLINE hn::Mask<D> factorise_block(D d, double* x) {
  const size_t lanes = hn::Lanes(d);
  const auto entry = [&](int i, int j) { return x + static_cast<size_t>(packed(i, j)) * lanes; };
  const V zero = hn::Zero(d), one = hn::Set(d, 1.0);
  auto positive = hn::Gt(one, zero);  // all true
  for (int j = 0; j < N; ++j) {
    V pivot = hn::Load(d, entry(j, j));
    for (int p = 0; p < j; ++p) {
      const V ljp = hn::Load(d, entry(j, p));
      pivot = hn::Sub(pivot, hn::Mul(ljp, ljp));
    }
    positive = hn::And(positive, hn::Gt(pivot, zero));
    pivot = hn::Sqrt(pivot);  // NaN in failing lanes, which are never written back
    hn::Store(pivot, d, entry(j, j));
    const V r = hn::Div(one, pivot);
    for (int i = j + 1; i < N; ++i) {
      V s = hn::Load(d, entry(i, j));
      for (int p = 0; p < j; ++p)
        s = hn::Sub(s, hn::Mul(hn::Load(d, entry(i, p)), hn::Load(d, entry(j, p))));
      hn::Store(hn::Mul(s, r), d, entry(i, j));
    }
  }
  return positive;
}

// Runs a lane-batched kernel over the batch, one block of Lanes(d) matrices at a time: the
// named triangle is gathered packed and lane-major into x, compute(x) works in place and
// returns the lanes that succeeded, write(m, x, l) stores lane l into matrix m, and a
// failing matrix goes to fallback(m, info) (the reference loop, on its untouched input).
template <int N, bool Lower, class Compute, class Write, class Fallback>
void for_each_block(double* A, int64_t stride, int64_t batch, int64_t* info, Compute compute,
                    Write write, Fallback fallback) {
  const D d;
  const size_t lanes = hn::Lanes(d);
  static constexpr auto kOffsets = triangle_offsets<N, Lower>();
  constexpr int kEntries = N * (N + 1) / 2;
  for (int64_t b = 0; b < batch; b += static_cast<int64_t>(lanes)) {
    const Block blk{lanes, static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(lanes), batch - b)), stride};
    double* a = A + b * stride;
    HWY_ALIGN double x[kEntries * kMaxLanes];
    gather(d, blk, a, kEntries, [](int e) { return kOffsets[static_cast<size_t>(e)]; }, x);
    HWY_ALIGN double ok[kMaxLanes];
    hn::Store(hn::IfThenElseZero(compute(d, x), hn::Set(d, 1.0)), d, ok);
    for (size_t l = 0; l < blk.count; ++l) {
      double* m = a + static_cast<int64_t>(l) * stride;
      int64_t* info_l = info + b + static_cast<int64_t>(l);
      if (ok[l] == 0.0) {
        fallback(m, info_l);
        continue;
      }
      write(m, x, l, lanes);
      *info_l = 0;
    }
  }
}

template <int N, bool Lower>
void potrf_batch(double* A, int64_t stride, int64_t batch, int64_t* info) {
  static constexpr auto kOffsets = triangle_offsets<N, Lower>();
  for_each_block<N, Lower>(
      A, stride, batch, info, [](D d, double* x) { return factorise_block<N>(d, x); },
      [](double* m, const double* x, size_t l, size_t lanes) {
        for (int i = 0; i < N; ++i)  // the other triangle is zeroed, as the contract says
          for (int j = i + 1; j < N; ++j) m[Lower ? i * N + j : j * N + i] = 0.0;
        for (size_t e = 0; e < kOffsets.size(); ++e) m[kOffsets[e]] = x[e * lanes + l];
      },
      [stride](double* m, int64_t* info_l) { reference::potrf(Lower, N, m, stride, 1, info_l); });
}

void potrf_kernel(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  dispatch(n, [&](auto order) {
    with_flag(lower, [&](auto is_lower) {
      potrf_batch<decltype(order)::value, decltype(is_lower)::value>(A, stride, batch, info);
    });
  });
}

// (L L^T)^{-1} = L^{-T} L^{-1} on the packed lane-major factor, in place, as reference
// potri_one: first L^{-1} (lower), then X(i, j) = sum_{p >= i} L^{-1}(p, i) L^{-1}(p, j),
// j <= i. Returns the lanes without a zero on the diagonal.
template <int N>
HWY_INLINE hn::Mask<D> invert_block(D d, double* x) {
  const size_t lanes = hn::Lanes(d);
  HWY_ALIGN double inv[N * (N + 1) / 2 * kMaxLanes];
  const auto at = [&](const double* buf, int i, int j) {
    return hn::Load(d, buf + static_cast<size_t>(packed(i, j)) * lanes);
  };
  const V zero = hn::Zero(d), one = hn::Set(d, 1.0);
  auto nonsingular = hn::Gt(one, zero);  // all true
  for (int i = 0; i < N; ++i) nonsingular = hn::And(nonsingular, hn::Ne(at(x, i, i), zero));
  for (int j = 0; j < N; ++j) {
    hn::Store(hn::Div(one, at(x, j, j)), d, inv + static_cast<size_t>(packed(j, j)) * lanes);
    for (int i = j + 1; i < N; ++i) {
      V s = zero;
      for (int p = j; p < i; ++p) s = hn::Add(s, hn::Mul(at(x, i, p), at(inv, p, j)));
      hn::Store(hn::Div(hn::Neg(s), at(x, i, i)), d, inv + static_cast<size_t>(packed(i, j)) * lanes);
    }
  }
  for (int i = 0; i < N; ++i)  // x is no longer read: the result overwrites it
    for (int j = 0; j <= i; ++j) {
      V s = zero;
      for (int p = i; p < N; ++p) s = hn::Add(s, hn::Mul(at(inv, p, i), at(inv, p, j)));
      hn::Store(s, d, x + static_cast<size_t>(packed(i, j)) * lanes);
    }
  return nonsingular;
}

template <int N, bool Lower>
void potri_batch(double* A, int64_t stride, int64_t batch, int64_t* info) {
  for_each_block<N, Lower>(
      A, stride, batch, info, [](D d, double* x) { return invert_block<N>(d, x); },
      [](double* m, const double* x, size_t l, size_t lanes) {  // symmetric: layout-free
        for (int i = 0; i < N; ++i)
          for (int j = 0; j <= i; ++j) m[i * N + j] = m[j * N + i] = x[static_cast<size_t>(packed(i, j)) * lanes + l];
      },
      // a zero on the diagonal: the reference reports it and writes nothing
      [stride](double* m, int64_t* info_l) { reference::potri(Lower, N, m, stride, 1, info_l); });
}

void potri_kernel(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  dispatch(n, [&](auto order) {
    with_flag(lower, [&](auto is_lower) {
      potri_batch<decltype(order)::value, decltype(is_lower)::value>(A, stride, batch, info);
    });
  });
}

}  // namespace cholla::linalg::kernels::small::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cholla::linalg::kernels::small::simd {

HWY_EXPORT(potrf_kernel);
HWY_EXPORT(potri_kernel);

void potrf(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  if (batch <= 0) return;
  HWY_DYNAMIC_DISPATCH(potrf_kernel)(lower, n, A, stride, batch, info);
}

void potri(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  if (batch <= 0) return;
  HWY_DYNAMIC_DISPATCH(potri_kernel)(lower, n, A, stride, batch, info);
}

}  // namespace cholla::linalg::kernels::small::simd
#endif  // HWY_ONCE
