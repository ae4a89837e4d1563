#include "nn/optim/detail/line_search.hpp"

#include <algorithm>
#include <cmath>

namespace cholla::optim::detail {
namespace {

bool finite(const LinePoint& p) { return std::isfinite(p.f) && std::isfinite(p.g); }

// The search's bookkeeping: the start, the options, the count of evaluations.
struct Search {
  const LineObjective& phi;
  const LinePoint& start;
  const WolfeOptions& o;
  int evaluations = 0;

  LinePoint evaluate(double t) {
    ++evaluations;
    LinePoint p = phi.evaluate(t);
    p.t = t;
    return p;
  }
  bool budget_left() const { return evaluations < o.max_evaluations; }
  double noise() const { return o.noise * std::fabs(start.f); }
  bool sufficient_decrease(const LinePoint& p) const {
    if (!finite(p)) return false;
    return p.f <= start.f + o.c1 * p.t * start.g ||
           (p.f <= start.f + noise() && p.g <= (2 * o.c1 - 1) * start.g);
  }
  // Whether p is worse than q by more than rounding could explain.
  bool worse(const LinePoint& p, const LinePoint& q) const { return p.f > q.f + noise(); }
  bool curvature(const LinePoint& p) const { return std::fabs(p.g) <= -o.c2 * start.g; }

  // Algorithm 3.6. Invariants: `lo` satisfies sufficient decrease and has the lowest phi of
  // such points seen; the interval between lo and hi holds steps satisfying both conditions
  // (hi failed sufficient decrease, or the slope at lo points towards hi).
  WolfeResult zoom(LinePoint lo, LinePoint hi) {
    while (budget_left()) {
      const double a = std::min(lo.t, hi.t), b = std::max(lo.t, hi.t), width = b - a;
      if (width * o.direction_scale < o.tolerance_change) break;
      // Safeguard: a cubic step too close to an end (or none, when hi is not finite) would
      // shrink the bracket too slowly; keep a tenth of the width on each side.
      double t = finite(hi) ? cubic_minimizer(lo, hi) : std::nan("");
      if (!(t >= a + 0.1 * width && t <= b - 0.1 * width))
        t = std::isnan(t) ? (a + b) / 2 : std::clamp(t, a + 0.1 * width, b - 0.1 * width);
      if (!(t > a && t < b)) break;  // the bracket has shrunk to adjacent doubles
      const LinePoint p = evaluate(t);
      if (!sufficient_decrease(p) || worse(p, lo)) {
        hi = p;
        continue;
      }
      phi.keep_last();
      if (curvature(p)) return {p, evaluations, true};
      if (p.g * (hi.t - lo.t) >= 0) hi = lo;
      lo = p;
    }
    return {lo, evaluations, false};
  }
};

}  // namespace

double cubic_minimizer(const LinePoint& a, const LinePoint& b) {
  if (a.t == b.t) return std::nan("");
  const double d1 = a.g + b.g - 3 * (a.f - b.f) / (a.t - b.t);
  const double disc = d1 * d1 - a.g * b.g;
  if (!(disc >= 0)) return std::nan("");  // the cubic is monotone: no minimiser
  const double d2 = std::copysign(std::sqrt(disc), b.t - a.t);
  const double denominator = b.g - a.g + 2 * d2;
  if (denominator == 0) return std::nan("");
  return b.t - (b.t - a.t) * (b.g + d2 - d1) / denominator;
}

WolfeResult strong_wolfe(const LineObjective& phi, const LinePoint& start, double t,
                         const WolfeOptions& options) {
  Search s{phi, start, options};
  LinePoint previous = start;  // Algorithm 3.5's alpha_{i-1}
  while (s.budget_left()) {
    const LinePoint p = s.evaluate(t);
    if (!s.sufficient_decrease(p) || (previous.t > 0 && s.worse(p, previous)))
      return s.zoom(previous, p);
    phi.keep_last();
    if (s.curvature(p)) return {p, s.evaluations, true};
    if (p.g >= 0) return s.zoom(p, previous);
    // Still descending: extrapolate to the cubic's minimiser, at least 10% and at most 10
    // times further than the current step.
    const double next = cubic_minimizer(previous, p);
    t = std::isnan(next) ? 10 * t : std::clamp(next, 1.1 * t, 10 * t);
    previous = p;
  }
  return {previous, s.evaluations, false};
}

}  // namespace cholla::optim::detail
