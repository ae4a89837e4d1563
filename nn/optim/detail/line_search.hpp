// A line search for the strong Wolfe conditions (Nocedal & Wright, Numerical Optimization,
// 2nd ed., Algorithms 3.5 and 3.6), on a one-dimensional function phi(t) = f(x + t d).
//
// A step t is accepted when it satisfies both
//   phi(t) <= phi(0) + c1 t phi'(0)          (sufficient decrease)
//   |phi'(t)| <= c2 |phi'(0)|                (curvature, strong form)
// Bracketing: trial steps grow until one fails sufficient decrease, does not improve on the
// previous one, or has phi' >= 0; the bracket is then shrunk ("zoom") by safeguarded cubic
// interpolation until a step satisfies both conditions. A trial where phi or phi' is NaN or
// infinite counts as too long a step, so the search backs away from where the objective is
// undefined instead of failing.
//
// Near a minimum, phi's changes fall below its rounding error and comparing values says
// nothing; the slope still does. So a change of phi within `noise * |phi(0)|` is not taken as
// an increase, and sufficient decrease may also hold in its approximate form (Hager & Zhang,
// SIAM J. Optim. 16, 2005, eq. 4.1): phi(t) <= phi(0) + noise |phi(0)| and
// phi'(t) <= (2 c1 - 1) phi'(0), which is equivalent to the exact form when phi is quadratic.
//
// Used by LBFGS; exposed (in detail) for its tests.
#pragma once

#include <functional>

namespace cholla::optim::detail {

struct LinePoint {
  double t = 0;  // the step
  double f = 0;  // phi(t)
  double g = 0;  // phi'(t), the directional derivative
};

struct LineObjective {
  // phi and phi' at t. May return non-finite values.
  std::function<LinePoint(double t)> evaluate;
  // Called when the point evaluate() returned last becomes the best step so far (the one the
  // search returns unless a better one follows): the caller keeps what it needs of it (LBFGS
  // keeps the gradient).
  std::function<void()> keep_last;
};

struct WolfeOptions {
  double c1 = 1e-4;
  double c2 = 0.9;
  int max_evaluations = 25;
  // The search stops when the bracket is shorter than this, times `direction_scale`.
  double tolerance_change = 1e-9;
  double direction_scale = 1.0;  // e.g. max |d_i|: the bracket's width in parameter space
  double noise = 1e-10;          // relative size of phi's rounding error (see above)
};

struct WolfeResult {
  LinePoint point;      // the step taken: t = 0 (the start) when no trial decreased phi
  int evaluations = 0;  // calls of evaluate()
  bool satisfied = false;  // whether `point` satisfies both strong Wolfe conditions
};

// `start` is phi at t = 0 (finite, with start.g < 0); `t` the first trial step (> 0).
WolfeResult strong_wolfe(const LineObjective& phi, const LinePoint& start, double t,
                         const WolfeOptions& options = {});

// The minimiser of the cubic interpolating phi and phi' at a and b (N&W eq. 3.59), or NaN
// when that cubic has no minimiser (or a and b are the same step).
double cubic_minimizer(const LinePoint& a, const LinePoint& b);

}  // namespace cholla::optim::detail
