// The strong-Wolfe line search on one-dimensional functions whose minimisers are known: the
// returned step satisfies both conditions (checked here from their definitions), the point
// the caller was told to keep is the one returned, and undefined regions are backed out of.
#include <cmath>
#include <functional>

#include "../autodiff/helpers.hpp"
#include "nn/optim/detail/line_search.hpp"

using namespace cholla::optim::detail;

namespace {

struct Probe {
  std::function<double(double)> f, g;
  double kept_t = 0;  // the t of the last point the search asked to keep
  double last_t = 0;
  int calls = 0;

  LineObjective objective() {
    return {[this](double t) {
              ++calls;
              last_t = t;
              return LinePoint{t, f(t), g(t)};
            },
            [this] { kept_t = last_t; }};
  }
  LinePoint start() const { return {0, f(0), g(0)}; }
};

void check_strong_wolfe(const Probe& p, const WolfeResult& r, double c1 = 1e-4, double c2 = 0.9) {
  const LinePoint s = p.start();
  CHECK(r.satisfied);
  CHECK(r.point.t > 0);
  CHECK(r.point.f == p.f(r.point.t));
  CHECK(r.point.f <= s.f + c1 * r.point.t * s.g);
  CHECK(std::fabs(p.g(r.point.t)) <= c2 * std::fabs(s.g));
  CHECK(p.kept_t == r.point.t);
  CHECK(r.evaluations == p.calls);
}

}  // namespace

TEST_CASE("line search: the cubic interpolation is exact on cubics and quadratics") {
  auto at = [](double t, double f, double g) { return LinePoint{t, f, g}; };
  // phi = t^3 - 3t: local minimiser at 1, from either side and either order.
  auto cube = [&](double t) { return at(t, t * t * t - 3 * t, 3 * t * t - 3); };
  CHECK(cubic_minimizer(cube(0), cube(2)) == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(cubic_minimizer(cube(2), cube(0)) == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(cubic_minimizer(cube(0.5), cube(3)) == doctest::Approx(1.0).epsilon(1e-14));
  // phi = (t - 1.7)^2 + 4: a cubic with no t^3 term.
  auto bowl = [&](double t) { return at(t, (t - 1.7) * (t - 1.7) + 4, 2 * (t - 1.7)); };
  CHECK(cubic_minimizer(bowl(-1), bowl(5)) == doctest::Approx(1.7).epsilon(1e-14));
  // A monotone cubic (phi = t^3 + t) has no minimiser; equal steps have no cubic.
  auto rising = [&](double t) { return at(t, t * t * t + t, 3 * t * t + 1); };
  CHECK(std::isnan(cubic_minimizer(rising(0), rising(1))));
  CHECK(std::isnan(cubic_minimizer(bowl(1), bowl(1))));
}

TEST_CASE("line search: steps too long, too short and far too short all end strong-Wolfe") {
  for (double minimiser : {0.3, 1.0, 7.0, 900.0}) {
    for (double t0 : {1e-3, 1.0, 50.0}) {
      CAPTURE(minimiser);
      CAPTURE(t0);
      // A quartic with a flat bottom, so that interpolation is not exact.
      Probe p{[=](double t) { return std::pow(t - minimiser, 4) + 0.5 * (t - minimiser) * (t - minimiser); },
              [=](double t) { return 4 * std::pow(t - minimiser, 3) + (t - minimiser); }};
      const WolfeResult r = strong_wolfe(p.objective(), p.start(), t0);
      check_strong_wolfe(p, r);
      CHECK(r.evaluations <= 25);
    }
  }
}

TEST_CASE("line search: a tight curvature condition (c2 = 0.1) is met too") {
  Probe p{[](double t) { return std::exp(t) - 4 * t; }, [](double t) { return std::exp(t) - 4; }};
  const WolfeResult r = strong_wolfe(p.objective(), p.start(), 10.0, {.c2 = 0.1});
  check_strong_wolfe(p, r, 1e-4, 0.1);
  CHECK(r.point.t == doctest::Approx(std::log(4.0)).epsilon(0.1));
}

TEST_CASE("line search: trials where phi is NaN or infinite are treated as too long") {
  // phi = (t - 0.4)^2, defined only for t <= 0.5 (NaN beyond, +inf in a band before it).
  Probe p{[](double t) { return t > 0.5 ? NAN : t > 0.45 ? INFINITY : (t - 0.4) * (t - 0.4); },
          [](double t) { return t > 0.5 ? NAN : 2 * (t - 0.4); }};
  const WolfeResult r = strong_wolfe(p.objective(), p.start(), 1000.0);
  check_strong_wolfe(p, r);
  CHECK(std::isfinite(r.point.f));
  CHECK(r.point.t <= 0.45);
}

TEST_CASE("line search: no decrease anywhere within the budget returns the start") {
  // The slope at 0 promises a decrease that never comes (phi jumps up right after 0).
  Probe p{[](double t) { return t == 0 ? 0.0 : 1.0 + t; }, [](double t) { return t == 0 ? -1.0 : 1.0; }};
  const WolfeResult r = strong_wolfe(p.objective(), p.start(), 1.0, {.max_evaluations = 10});
  CHECK_FALSE(r.satisfied);
  CHECK(r.point.t == 0);
  CHECK(r.point.f == 0);
  CHECK(p.kept_t == 0);  // never asked to keep anything
  CHECK(r.evaluations == 10);
}
