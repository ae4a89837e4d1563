// Vector kernels of vector_math.hpp. Highway compiles this file once per SIMD target
// (foreach_target.h re-includes it); HWY_DYNAMIC_DISPATCH picks the best one at run time.
//
// Every kernel works a whole vector at a time and the last few elements one at a time through
// a one-lane vector of the same target: the same instructions lane for lane, so an element's
// result never depends on its position in the array (nor, then, on how parallel_for chunks
// the array). A one-element tensor (a scalar chain) costs one narrow vector, not a padded wide
// one copied in and out. Lanes outside a polynomial's valid range are replaced
// by a harmless value before the polynomial runs (Highway's emulated targets convert NaN to
// int32 in C++, which would be undefined) and their results come from the std:: reference.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "autodiff/vector_math.cpp"
#include <hwy/foreach_target.h>  // must come before highway.h

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>

#include "autodiff/detail/vector_math.hpp"

HWY_BEFORE_NAMESPACE();
namespace cholla::detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<double>;
using D1 = hn::CappedTag<double, 1>;  // one lane: the tail
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(double);

// Each function: Valid (where Fast matches std:: within its ulp bound) and Fast, for a full
// vector (D) and a one-lane one (D1).
struct Exp {
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT> x) { return hn::And(hn::Ge(x, hn::Set(d, -708.0)), hn::Le(x, hn::Set(d, 706.0))); }
  template <class DT> static hn::Vec<DT> Fast(DT d, hn::Vec<DT> x, double) { return hn::Exp(d, x); }
};
// hwy's Expm1 turns -0 into +0; std::expm1 keeps the sign of a zero.
template <class DT>
hn::Vec<DT> expm1_keeping_zero(DT d, hn::Vec<DT> x) { return hn::IfThenElse(hn::Eq(x, hn::Zero(d)), x, hn::Expm1(d, x)); }

struct Expm1 {
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT> x) { return hn::And(hn::Ge(x, hn::Set(d, -700.0)), hn::Le(x, hn::Set(d, 706.0))); }
  template <class DT> static hn::Vec<DT> Fast(DT d, hn::Vec<DT> x, double) { return expm1_keeping_zero(d, x); }
};
struct Log {
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT> x) { return hn::And(hn::Ge(x, hn::Set(d, DBL_MIN)), hn::Le(x, hn::Set(d, DBL_MAX))); }
  template <class DT> static hn::Vec<DT> Fast(DT d, hn::Vec<DT> x, double) { return hn::Log(d, x); }
};
struct Log1p {
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT> x) { return hn::And(hn::Gt(x, hn::Set(d, -1.0)), hn::Le(x, hn::Set(d, DBL_MAX))); }
  template <class DT> static hn::Vec<DT> Fast(DT d, hn::Vec<DT> x, double) { return hn::Log1p(d, x); }
};
struct Tanh {
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT> x) { return hn::Le(hn::Abs(x), hn::Set(d, DBL_MAX)); }
  template <class DT> static hn::Vec<DT> Fast(DT d, hn::Vec<DT> x, double) { return hn::Tanh(d, x); }
};
struct Sigmoid {
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT> x) { return hn::Le(hn::Abs(x), hn::Set(d, 708.0)); }
  template <class DT> static hn::Vec<DT> Fast(DT d, hn::Vec<DT> x, double) {
    const auto one = hn::Set(d, 1.0);
    const auto e = hn::Exp(d, hn::Neg(hn::Abs(x)));
    return hn::Div(hn::IfThenElse(hn::Ge(x, hn::Zero(d)), one, e), hn::Add(one, e));
  }
};
struct Softplus {
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT> x) { return hn::Le(hn::Abs(x), hn::Set(d, 708.0)); }
  template <class DT> static hn::Vec<DT> Fast(DT d, hn::Vec<DT> x, double) {
    return hn::Add(hn::Max(x, hn::Zero(d)), hn::Log1p(d, hn::Exp(d, hn::Neg(hn::Abs(x)))));
  }
};
struct Elu {
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT> x) { return hn::Ge(x, hn::Set(d, -700.0)); }
  template <class DT> static hn::Vec<DT> Fast(DT d, hn::Vec<DT> x, double alpha) {
    const auto positive = hn::Gt(x, hn::Zero(d));
    // x itself on the negative side (Min could turn -0 into +0), 0 where it is discarded.
    const auto negative = hn::Mul(hn::Set(d, alpha), expm1_keeping_zero(d, hn::IfThenZeroElse(positive, x)));
    return hn::IfThenElse(positive, x, negative);
  }
};
struct Sqrt {  // correctly rounded in hardware, like std::sqrt, NaN for negatives included
  template <class DT> static hn::Mask<DT> Valid(DT d, hn::Vec<DT>) { return hn::FirstN(d, hn::Lanes(d)); }
  template <class DT> static hn::Vec<DT> Fast(DT, hn::Vec<DT> x, double) { return hn::Sqrt(x); }
};

// One vector (full, or of one lane) from src to dst (dst may equal src).
template <class F, class DT>
HWY_INLINE void one_vector(DT d, UnaryFn f, const double* src, double* dst, double param) {
  const auto x = hn::LoadU(d, src);
  const auto ok = F::Valid(d, x);
  if (HWY_LIKELY(hn::AllTrue(d, ok))) {
    hn::StoreU(F::Fast(d, x, param), d, dst);
    return;
  }
  HWY_ALIGN double xs[kMaxLanes];
  HWY_ALIGN double valid[kMaxLanes];
  hn::StoreU(x, d, xs);
  hn::StoreU(hn::IfThenElseZero(ok, hn::Set(d, 1.0)), d, valid);
  hn::StoreU(F::Fast(d, hn::IfThenElse(ok, x, hn::Set(d, 0.5)), param), d, dst);
  for (size_t j = 0; j < hn::Lanes(d); ++j)
    if (valid[j] == 0.0) dst[j] = reference_unary(f, xs[j], param);
}

template <class F>
void map(UnaryFn f, const double* in, double* out, int64_t n, double param) {
  const D d;
  const size_t lanes = hn::Lanes(d);
  const size_t count = static_cast<size_t>(n);
  size_t i = 0;
  for (; i + lanes <= count; i += lanes) one_vector<F>(d, f, in + i, out + i, param);
  // The tail element by element, through one-lane vectors of this target (see the top).
  const D1 d1;
  for (; i < count; ++i) one_vector<F>(d1, f, in + i, out + i, param);
}

void unary_kernel(UnaryFn f, const double* in, double* out, int64_t n, double param) {
  switch (f) {
    case UnaryFn::kExp: return map<Exp>(f, in, out, n, param);
    case UnaryFn::kExpm1: return map<Expm1>(f, in, out, n, param);
    case UnaryFn::kLog: return map<Log>(f, in, out, n, param);
    case UnaryFn::kLog1p: return map<Log1p>(f, in, out, n, param);
    case UnaryFn::kTanh: return map<Tanh>(f, in, out, n, param);
    case UnaryFn::kSigmoid: return map<Sigmoid>(f, in, out, n, param);
    case UnaryFn::kSoftplus: return map<Softplus>(f, in, out, n, param);
    case UnaryFn::kElu: return map<Elu>(f, in, out, n, param);
    case UnaryFn::kSqrt: return map<Sqrt>(f, in, out, n, param);
  }
}

const char* target_name() { return hwy::TargetName(HWY_TARGET); }

}  // namespace cholla::detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace cholla::detail {

HWY_EXPORT(unary_kernel);
HWY_EXPORT(target_name);

const char* vector_target() { return HWY_DYNAMIC_DISPATCH(target_name)(); }

void vector_unary(UnaryFn f, const double* in, double* out, int64_t n, double param) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(unary_kernel)(f, in, out, n, param);
}

double reference_unary(UnaryFn f, double x, double param) {
  switch (f) {
    case UnaryFn::kExp: return std::exp(x);
    case UnaryFn::kExpm1: return std::expm1(x);
    case UnaryFn::kLog: return std::log(x);
    case UnaryFn::kLog1p: return std::log1p(x);
    case UnaryFn::kTanh: return std::tanh(x);
    case UnaryFn::kSigmoid: {
      const double e = std::exp(-std::abs(x));
      return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    }
    case UnaryFn::kSoftplus: return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
    case UnaryFn::kElu: return x > 0 ? x : param * std::expm1(x);
    case UnaryFn::kSqrt: return std::sqrt(x);
  }
  return x;  // unreachable: every enumerator is handled above
}

}  // namespace cholla::detail
#endif  // HWY_ONCE
