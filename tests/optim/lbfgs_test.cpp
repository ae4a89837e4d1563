// optim::LBFGS on problems with known minimisers: Rosenbrock, ill-conditioned quadratics, a
// log barrier, and the first iterations worked out by hand; evaluation budgets and tolerances.
#include <cmath>

#include "../autodiff/helpers.hpp"
#include "lbfgs_problems.hpp"

using namespace cholla;
using test::Quadratic;
using test::Rosenbrock;

TEST_CASE("lbfgs: Rosenbrock from (-1.5, 2) reaches (1, 1)") {
  Rosenbrock r(-1.5, 2.0);
  optim::LBFGS opt({r.x, r.y}, {.max_iter = 500, .tolerance_grad = 1e-12, .tolerance_change = 0});
  const Tensor first = opt.step(r.closure(opt));
  CHECK(first.item() == doctest::Approx(6.25 + 100 * 0.0625));  // f(-1.5, 2) = 2.5^2 + 100 (2 - 2.25)^2
  CHECK(r.x.item() == doctest::Approx(1.0).epsilon(1e-10));
  CHECK(r.y.item() == doctest::Approx(1.0).epsilon(1e-10));
  CHECK(r.value() < 1e-20);
  MESSAGE("Rosenbrock: ", opt.iterations(), " iterations, ", opt.evaluations(), " evaluations");
  CHECK(opt.iterations() < 100);
}

TEST_CASE("lbfgs: max_eval and max_iter bound one step; later steps continue from the history") {
  Rosenbrock r(-1.5, 2.0);
  optim::LBFGS opt({r.x, r.y}, {.max_iter = 100, .max_eval = 30, .tolerance_grad = 1e-12,
                                .tolerance_change = 0});
  CHECK(opt.options().max_eval == 30);
  opt.step(r.closure(opt));
  CHECK(opt.evaluations() <= 30);
  CHECK(r.evaluations == opt.evaluations());
  const double after_one = r.value();
  CHECK(after_one < 6.25);
  int steps = 1;
  while (r.value() > 1e-18 && steps < 20) opt.step(r.closure(opt)), ++steps;
  CHECK(r.value() <= 1e-18);
  // max_iter alone: the default max_eval is max_iter * 5 / 4.
  CHECK(optim::LBFGS({r.x}, {.max_iter = 8}).options().max_eval == 10);
  Rosenbrock s(-1.5, 2.0);
  optim::LBFGS one({s.x, s.y}, {.max_iter = 3, .max_eval = 100});
  one.step(s.closure(one));
  CHECK(one.iterations() == 3);
  // The default tolerances stop a step once the loss changes by less than 1e-9.
  Rosenbrock u(-1.5, 2.0);
  optim::LBFGS loose({u.x, u.y}, {.max_iter = 1000});
  loose.step(u.closure(loose));
  CHECK(loose.iterations() < 1000);
  CHECK(u.value() < 1e-8);
}

TEST_CASE("lbfgs: ill-conditioned quadratics converge (condition 1e6 and 1e9)") {
  for (double condition : {1e6, 1e9}) {
    for (int n : {10, 40}) {
      CAPTURE(condition);
      CAPTURE(n);
      Quadratic q(n, condition, 3);
      optim::LBFGS opt({q.x}, {.max_iter = 20 * n, .tolerance_grad = 1e-12, .tolerance_change = 0});
      opt.step(q.closure(opt));
      // Relative error of x in the A-norm, i.e. sqrt(f(x) / f(x0)).
      CHECK(std::sqrt(q.value() / q.initial_value) < 1e-7);
      CHECK(q.relative_error() < (condition > 1e6 ? 1e-4 : 1e-6));
      MESSAGE("quadratic n=", n, " condition ", condition, ": ", opt.iterations(),
              " iterations, relative error ", q.relative_error());
    }
  }
}

TEST_CASE("lbfgs: the first iterations by hand on f = c x^2 / 2 (no line search)") {
  // x0 = 2, c = 3: g0 = 6. The first step is lr * min(1, 1/|g|_1) = 1/6 along -g: x1 = 1.
  // Then s = -1, y = c s = -3, H0 = s'y / y'y = 1/c: the second step is exactly Newton's, x2 = 0.
  Tensor x = Tensor::from({1}, {2.0}).requires_grad(true);
  auto f = [&] { return sum(1.5 * square(x)); };
  auto closure = [&] {
    x.zero_grad();
    Tensor l = f();
    l.backward();
    return l;
  };
  optim::LBFGS opt({x}, {.max_iter = 1, .line_search = optim::LineSearch::None});
  opt.step(closure);
  test::check_values(x, {1.0}, 1e-15);
  CHECK(opt.evaluations() == 1);  // the last iteration does not evaluate the new point
  opt.step(closure);
  CHECK(std::fabs(x.item()) < 1e-15);
  CHECK(opt.iterations() == 2);
  // At the minimum the gradient is below tolerance_grad: one evaluation, no iteration.
  opt.step(closure);
  CHECK(opt.iterations() == 2);
  CHECK(opt.evaluations() == 3);
}

TEST_CASE("lbfgs: LineSearch::None with lr = 1 converges on a moderately conditioned quadratic") {
  Quadratic q(8, 10.0, 5);
  optim::LBFGS opt({q.x}, {.max_iter = 200, .tolerance_grad = 1e-12, .tolerance_change = 0,
                           .line_search = optim::LineSearch::None});
  opt.step(q.closure(opt));
  CHECK(q.relative_error() < 1e-9);
}

TEST_CASE("lbfgs: the line search backs out of where the objective is undefined") {
  // f(x) = -log(1 - x) - log(1 + x) - x / 2 on (-1, 1): NaN outside. lr = 10 makes the first
  // trial x = 5. The minimiser solves 2x / (1 - x^2) = 1/2: x = sqrt(5) - 2.
  Tensor x = Tensor::from({1}, {0.0}).requires_grad(true);
  auto closure = [&] {
    x.zero_grad();
    Tensor l = sum(-log(1.0 - x) - log(1.0 + x) - 0.5 * x);
    l.backward();
    return l;
  };
  optim::LBFGS opt({x}, {.lr = 10, .max_iter = 50, .tolerance_grad = 1e-13, .tolerance_change = 0});
  opt.step(closure);
  CHECK(x.item() == doctest::Approx(std::sqrt(5.0) - 2).epsilon(1e-12));
}

TEST_CASE("lbfgs: wrong use is a typed error") {
  Tensor x = Tensor::from({2}, {1.0, 2.0}).requires_grad(true);
  optim::LBFGS opt({x});
  CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("step(closure)"), DomainError);
  CHECK_THROWS_WITH_AS(opt.step([&] { return x * 2.0; }), doctest::Contains("shape [2]"),
                       ShapeError);
  CHECK_THROWS_AS(opt.step(std::function<Tensor()>{}), DomainError);
  CHECK_THROWS_WITH_AS(optim::LBFGS({x}, {.max_iter = 0}), doctest::Contains("max_iter = 0"),
                       DomainError);
  CHECK_THROWS_WITH_AS(optim::LBFGS({x}, {.lr = NAN}), doctest::Contains("lr = nan"), DomainError);
  CHECK_THROWS_WITH_AS(optim::LBFGS({x}, {.history_size = 0}), doctest::Contains("history_size = 0"),
                       DomainError);
  CHECK_THROWS_WITH_AS(optim::LBFGS({x}, {.tolerance_grad = -1}),
                       doctest::Contains("tolerance_grad = -1"), DomainError);
  CHECK_THROWS_AS(optim::LBFGS({x}, {.max_iter = 4, .max_eval = 0}), DomainError);
  CHECK(opt.lr(0) == 1.0);
  opt.set_lr(0, 0.5);
  CHECK(opt.options().lr == 0.5);
  CHECK_THROWS_AS(opt.set_lr(0, -1), DomainError);
}
