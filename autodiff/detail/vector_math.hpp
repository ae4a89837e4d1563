// Internal: elementwise maths over raw float64 arrays, SIMD through Google Highway with
// runtime dispatch (the best instruction set of the running machine; the library itself is
// built for baseline x86-64). Each function has a scalar reference written with std::
// (`reference_unary`), which the vector kernel falls back to lane by lane wherever its
// polynomial is outside its documented range: NaN, infinities, zeros and negatives for log,
// denormal results or inputs, overflow. So edges come out exactly as std:: gives them, and
// elsewhere the result is within a few ulp of std:: (hwy/contrib/math: exp 1 ulp, expm1 and
// log 4, log1p 2, tanh 4; the composites add at most one rounding per operation).
#pragma once

#include <cstdint>

namespace cholla::detail {

enum class UnaryFn {
  kExp,
  kExpm1,
  kLog,
  kLog1p,
  kTanh,
  kSigmoid,   // 1 / (1 + exp(-x)), through exp(-|x|) so neither branch overflows
  kSoftplus,  // log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))
  kElu,       // x > 0 ? x : param * expm1(x)
  kSqrt,
};

// out[i] = f(in[i]) for i < n (param: elu's alpha). in and out may be the same array.
void vector_unary(UnaryFn f, const double* in, double* out, int64_t n, double param = 0.0);

// Name of the SIMD target the dispatcher picked on this machine ("AVX3", "AVX2", "EMU128"...).
const char* vector_target();

// The std:: formula of f at one value: the reference the vector kernel is tested against.
double reference_unary(UnaryFn f, double x, double param = 0.0);

}  // namespace cholla::detail
