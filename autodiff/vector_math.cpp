// Vector kernels of vector_math.hpp. Highway compiles this file once per SIMD target
// (foreach_target.h re-includes it); HWY_DYNAMIC_DISPATCH picks the best one at run time.
//
// Every kernel works a whole vector at a time, the last partial vector through a padded
// buffer, so an element's result never depends on its position in the array (nor, then, on
// how parallel_for chunks the array). Lanes outside a polynomial's valid range are replaced
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
using V = hn::Vec<D>;
using M = hn::Mask<D>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(double);

// Each function: Valid (where Fast matches std:: within its ulp bound) and Fast.
struct Exp {
  static M Valid(D d, V x) { return hn::And(hn::Ge(x, hn::Set(d, -708.0)), hn::Le(x, hn::Set(d, 706.0))); }
  static V Fast(D d, V x, double) { return hn::Exp(d, x); }
};
// hwy's Expm1 turns -0 into +0; std::expm1 keeps the sign of a zero.
V expm1_keeping_zero(D d, V x) { return hn::IfThenElse(hn::Eq(x, hn::Zero(d)), x, hn::Expm1(d, x)); }

struct Expm1 {
  static M Valid(D d, V x) { return hn::And(hn::Ge(x, hn::Set(d, -700.0)), hn::Le(x, hn::Set(d, 706.0))); }
  static V Fast(D d, V x, double) { return expm1_keeping_zero(d, x); }
};
struct Log {
  static M Valid(D d, V x) { return hn::And(hn::Ge(x, hn::Set(d, DBL_MIN)), hn::Le(x, hn::Set(d, DBL_MAX))); }
  static V Fast(D d, V x, double) { return hn::Log(d, x); }
};
struct Log1p {
  static M Valid(D d, V x) { return hn::And(hn::Gt(x, hn::Set(d, -1.0)), hn::Le(x, hn::Set(d, DBL_MAX))); }
  static V Fast(D d, V x, double) { return hn::Log1p(d, x); }
};
struct Tanh {
  static M Valid(D d, V x) { return hn::Le(hn::Abs(x), hn::Set(d, DBL_MAX)); }
  static V Fast(D d, V x, double) { return hn::Tanh(d, x); }
};
struct Sigmoid {
  static M Valid(D d, V x) { return hn::Le(hn::Abs(x), hn::Set(d, 708.0)); }
  static V Fast(D d, V x, double) {
    const V one = hn::Set(d, 1.0);
    const V e = hn::Exp(d, hn::Neg(hn::Abs(x)));
    return hn::Div(hn::IfThenElse(hn::Ge(x, hn::Zero(d)), one, e), hn::Add(one, e));
  }
};
struct Softplus {
  static M Valid(D d, V x) { return hn::Le(hn::Abs(x), hn::Set(d, 708.0)); }
  static V Fast(D d, V x, double) {
    return hn::Add(hn::Max(x, hn::Zero(d)), hn::Log1p(d, hn::Exp(d, hn::Neg(hn::Abs(x)))));
  }
};
struct Elu {
  static M Valid(D d, V x) { return hn::Ge(x, hn::Set(d, -700.0)); }
  static V Fast(D d, V x, double alpha) {
    const auto positive = hn::Gt(x, hn::Zero(d));
    // x itself on the negative side (Min could turn -0 into +0), 0 where it is discarded.
    const V negative = hn::Mul(hn::Set(d, alpha), expm1_keeping_zero(d, hn::IfThenZeroElse(positive, x)));
    return hn::IfThenElse(positive, x, negative);
  }
};
struct Sqrt {  // correctly rounded in hardware, like std::sqrt, NaN for negatives included
  static M Valid(D d, V) { return hn::FirstN(d, hn::Lanes(d)); }
  static V Fast(D, V x, double) { return hn::Sqrt(x); }
};

// One full vector from src to dst (dst may equal src).
template <class F>
HWY_INLINE void one_vector(D d, UnaryFn f, const double* src, double* dst, double param) {
  const V x = hn::LoadU(d, src);
  const M ok = F::Valid(d, x);
  if (HWY_LIKELY(hn::AllTrue(d, ok))) {
    hn::StoreU(F::Fast(d, x, param), d, dst);
    return;
  }
  HWY_ALIGN double xs[kMaxLanes];
  HWY_ALIGN double valid[kMaxLanes];
  hn::Store(x, d, xs);
  hn::Store(hn::IfThenElseZero(ok, hn::Set(d, 1.0)), d, valid);
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
  if (i == count) return;
  // The tail, through a full vector padded with 1.0 (valid for every function). Copied with
  // Highway's masked moves: std::copy of a few values was two memcpy calls, 10 % of a tanh
  // of one element.
  HWY_ALIGN double buffer[kMaxLanes];
  hn::Store(hn::Set(d, 1.0), d, buffer);
  hn::SafeCopyN(count - i, d, in + i, buffer);
  one_vector<F>(d, f, buffer, buffer, param);
  hn::SafeCopyN(count - i, d, buffer, out + i);
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
