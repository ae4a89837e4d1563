// Test problems with known minimisers for the LBFGS tests.
#pragma once

#include <cmath>
#include <functional>

#include <cholla.hpp>

namespace cholla::test {

// f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1).
struct Rosenbrock {
  Tensor x, y;
  int64_t evaluations = 0;

  Rosenbrock(double x0, double y0)
      : x(Tensor::from({1}, {x0}).requires_grad(true)), y(Tensor::from({1}, {y0}).requires_grad(true)) {}

  Tensor loss() const { return sum(square(1.0 - x) + 100.0 * square(y - square(x))); }
  double value() const {
    NoGrad guard;
    return loss().item();
  }
  std::function<Tensor()> closure(optim::Optimizer& opt) {
    return [this, &opt] {
      ++evaluations;
      opt.zero_grad();
      Tensor l = loss();
      l.backward();
      return l;
    };
  }
};

// f(x) = (x - c)' A (x - c) / 2 with A = Q diag(lambda) Q' [n, n], eigenvalues log-spaced from
// 1 to `condition`, Q a product of three Householder reflections; x starts at 0.
struct Quadratic {
  int64_t n;
  Tensor A, c, x;
  double initial_value = 0;

  Quadratic(int64_t size, double condition, uint64_t seed) : n(size) {
    Rng rng(seed);
    std::vector<double> q(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) q[static_cast<size_t>(i * n + i)] = 1;
    for (int r = 0; r < 3; ++r) {  // Q <- Q (I - 2 v v' / v'v)
      const std::vector<double> v = Tensor::randn({n}, rng).to_vector();
      double vv = 0;
      for (double e : v) vv += e * e;
      for (int64_t i = 0; i < n; ++i) {
        double qv = 0;
        for (int64_t k = 0; k < n; ++k) qv += q[static_cast<size_t>(i * n + k)] * v[static_cast<size_t>(k)];
        for (int64_t k = 0; k < n; ++k) q[static_cast<size_t>(i * n + k)] -= 2 * qv * v[static_cast<size_t>(k)] / vv;
      }
    }
    std::vector<double> a(static_cast<size_t>(n * n), 0.0);
    for (int64_t k = 0; k < n; ++k) {
      const double lambda = std::pow(condition, static_cast<double>(k) / static_cast<double>(n - 1));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j)
          a[static_cast<size_t>(i * n + j)] +=
              lambda * q[static_cast<size_t>(i * n + k)] * q[static_cast<size_t>(j * n + k)];
    }
    A = Tensor::from({n, n}, std::move(a));
    c = Tensor::uniform({n, 1}, -2, 2, rng);
    x = Tensor::zeros({n, 1}).requires_grad(true);
    initial_value = value();
  }

  Tensor loss() const {
    Tensor e = x - c;
    return 0.5 * sum(e * linalg::gemm2(A, e));
  }
  double value() const {
    NoGrad guard;
    return loss().item();
  }
  double relative_error() const {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double ci = c.data()[static_cast<size_t>(i)];
      const double d = x.data()[static_cast<size_t>(i)] - ci;
      num += d * d, den += ci * ci;
    }
    return std::sqrt(num / den);
  }
  std::function<Tensor()> closure(optim::Optimizer& opt) {
    return [this, &opt] {
      opt.zero_grad();
      Tensor l = loss();
      l.backward();
      return l;
    };
  }
};

}  // namespace cholla::test
