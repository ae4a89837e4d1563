// Fused MVN log-density kernels, one template instance per d = 1..8 so the compiler unrolls
// the triangular loops. Per distinct factor the reciprocal diagonal and sum log diag are
// computed once: a covariance shared by thousands of samples costs d logs in total.
#include "distributions/detail/mvn_kernels.hpp"

#include <array>
#include <cmath>

#include "distributions/detail/constants.hpp"

namespace cholla::dist::detail {
namespace {

// One log per factor instead of d: the product of the diagonal is accumulated as mantissa and
// binary exponent (frexp), so it cannot overflow or underflow whatever the entries.
FactorCache prepare(const MvnBatch& b, const double* factor) {
  FactorCache p;
  p.inv_diag.resize(static_cast<size_t>(b.factor_count * b.d));
  p.sum_log_diag.resize(static_cast<size_t>(b.factor_count));
  for (int64_t f = 0; f < b.factor_count; ++f) {
    double mantissa = 1.0;
    int64_t exponent = 0;
    for (int64_t i = 0; i < b.d; ++i) {
      const double v = factor[f * b.d * b.d + i * b.d + i];
      p.inv_diag[static_cast<size_t>(f * b.d + i)] = 1.0 / v;
      int e = 0;
      mantissa = std::frexp(mantissa * v, &e);
      exponent += e;
    }
    p.sum_log_diag[static_cast<size_t>(f)] = std::log(mantissa) + static_cast<double>(exponent) * M_LN2;
  }
  return p;
}

struct Offsets {
  int64_t loc, factor, x;
};

Offsets offsets(const MvnBatch& b, int64_t i) {
  auto pick = [i](const std::vector<int64_t>& list, int64_t step) {
    return list.empty() ? i * step : list[static_cast<size_t>(i)];
  };
  return {pick(b.loc_offset, b.loc_step), pick(b.factor_offset, b.factor_step), pick(b.x_offset, b.x_step)};
}

// r = x - loc; w = L^{-1} r (tril) or M^T r (precision). Returns |w|^2.
template <int D>
double whiten(const double* mu, const double* F, const double* x, const double* inv, bool precision,
              double* r, double* w) {
  for (int i = 0; i < D; ++i) r[i] = x[i] - mu[i];
  double maha = 0.0;
  if (!precision) {
    for (int i = 0; i < D; ++i) {
      double acc = r[i];
      for (int j = 0; j < i; ++j) acc -= F[i * D + j] * w[j];
      w[i] = acc * inv[i];
      maha += w[i] * w[i];
    }
  } else {
    for (int i = 0; i < D; ++i) {
      double acc = 0.0;
      for (int j = i; j < D; ++j) acc += F[j * D + i] * r[j];
      w[i] = acc;
      maha += acc * acc;
    }
  }
  return maha;
}

template <int D>
void forward(const MvnBatch& b, FactorCache& p, const double* loc, const double* F,
             const double* x, bool precision, double* out) {
  const double constant = D * kHalfLog2Pi;
  p.residual.resize(static_cast<size_t>(b.count * D));
  p.whitened.resize(static_cast<size_t>(b.count * D));
  for (int64_t i = 0; i < b.count; ++i) {
    const Offsets o = offsets(b, i);
    const int64_t f = o.factor / (D * D);
    double* r = &p.residual[static_cast<size_t>(i * D)];
    double* w = &p.whitened[static_cast<size_t>(i * D)];
    const double maha = whiten<D>(loc + o.loc, F + o.factor, x + o.x, &p.inv_diag[static_cast<size_t>(f * D)],
                                  precision, r, w);
    const double hld = p.sum_log_diag[static_cast<size_t>(f)];
    out[i] = -0.5 * maha + (precision ? hld : -hld) - constant;
  }
}

template <int D>
void backward(const MvnBatch& b, const FactorCache& p, const double* loc, const double* F,
              const double* x, bool precision, const double* g, double* gloc, double* gF, double* gx) {
  std::array<double, D> t{};
  (void)loc;
  (void)x;
  for (int64_t i = 0; i < b.count; ++i) {
    const Offsets o = offsets(b, i);
    const int64_t f = o.factor / (D * D);
    const double* L = F + o.factor;
    const double* inv = &p.inv_diag[static_cast<size_t>(f * D)];
    const double* r = &p.residual[static_cast<size_t>(i * D)];
    const double* w = &p.whitened[static_cast<size_t>(i * D)];
    const double gi = g[i];
    if (!precision) {
      for (int k = D - 1; k >= 0; --k) {  // t = s = L^{-T} z by back substitution
        double acc = w[k];
        for (int j = k + 1; j < D; ++j) acc -= L[j * D + k] * t[j];
        t[k] = acc * inv[k];
      }
    } else {
      for (int k = 0; k < D; ++k) {  // t = M y
        double acc = 0.0;
        for (int j = 0; j <= k; ++j) acc += L[k * D + j] * w[j];
        t[k] = acc;
      }
    }
    if (gloc != nullptr)
      for (int k = 0; k < D; ++k) gloc[o.loc + k] += gi * t[k];
    if (gx != nullptr)
      for (int k = 0; k < D; ++k) gx[o.x + k] -= gi * t[k];
    if (gF != nullptr) {
      double* G = gF + o.factor;
      for (int k = 0; k < D; ++k) {
        // tril(s z^T) for the scale factor, -tril(r y^T) for the precision factor.
        const double left = precision ? -gi * r[k] : gi * t[k];
        for (int j = 0; j <= k; ++j) G[k * D + j] += left * w[j];
        G[k * D + k] += precision ? gi * inv[k] : -gi * inv[k];
      }
    }
  }
}

template <template <int> class Fn, class... Args>
void dispatch(int64_t d, Args&&... args) {
  switch (d) {
    case 1: Fn<1>::run(args...); break;
    case 2: Fn<2>::run(args...); break;
    case 3: Fn<3>::run(args...); break;
    case 4: Fn<4>::run(args...); break;
    case 5: Fn<5>::run(args...); break;
    case 6: Fn<6>::run(args...); break;
    case 7: Fn<7>::run(args...); break;
    case 8: Fn<8>::run(args...); break;
    default: throw InternalError("mvn_log_prob", "fused kernel called with d > 8.");
  }
}

template <int D>
struct Forward {
  template <class... A> static void run(A&&... a) { forward<D>(a...); }
};
template <int D>
struct Backward {
  template <class... A> static void run(A&&... a) { backward<D>(a...); }
};

}  // namespace

FactorCache mvn_forward(const MvnBatch& b, const double* loc, const double* factor, const double* x,
                        bool precision, double* out) {
  FactorCache p = prepare(b, factor);
  dispatch<Forward>(b.d, b, p, loc, factor, x, precision, out);
  return p;
}

void mvn_backward(const MvnBatch& b, const FactorCache& cache, const double* loc, const double* factor,
                  const double* x, bool precision, const double* g, double* gloc, double* gfactor, double* gx) {
  dispatch<Backward>(b.d, b, cache, loc, factor, x, precision, g, gloc, gfactor, gx);
}

}  // namespace cholla::dist::detail
