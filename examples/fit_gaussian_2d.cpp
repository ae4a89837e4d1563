// Fits a 2-D Gaussian's mean and Cholesky factor to samples by gradient descent on the
// negative log-likelihood, and prints the fit next to the sample mean and covariance (the
// maximum-likelihood answer it should converge to).
//
// The factor L = [[exp(a), 0], [c, exp(b)]] is valid for any real (a, b, c): the covariance
// L L^T can never stop being positive definite, whatever the optimiser does.
#include <cmath>
#include <fmt/core.h>

#include <cholla.hpp>

#include "common/cli.hpp"

using namespace cholla;

int main(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "fit_gaussian_2d: a 2-D Gaussian's mean and Cholesky factor fitted by gradient descent.\n\n"
      "--check passes when the fit is within 1e-3 of the maximum-likelihood estimate (the\n"
      "sample mean and 1/n covariance).",
      2026);
  // Data from a known Gaussian: mean (1, -2), covariance L L^T with L = [[1.5, 0], [0.8, 0.6]].
  Rng rng(cli.seed);
  const int64_t n = 2000;
  Tensor eps = Tensor::randn({n, 2}, rng);
  Tensor e0 = select(eps, 1, 0), e1 = select(eps, 1, 1);
  Tensor x0 = 1.0 + 1.5 * e0;
  Tensor x1 = -2.0 + 0.8 * e0 + 0.6 * e1;

  Tensor mu = Tensor::zeros({2}).requires_grad(true);
  Tensor log_diag = Tensor::zeros({2}).requires_grad(true);  // (a, b)
  Tensor offdiag = Tensor::zeros({1}).requires_grad(true);    // c
  const double lr = 0.2;
  for (int step = 0; step <= 400; ++step) {
    Tensor l00 = exp(select(log_diag, 0, 0)), l11 = exp(select(log_diag, 0, 1));
    Tensor l10 = select(offdiag, 0, 0);
    // Whitened residuals z = L^{-1} (x - mu), by forward substitution.
    Tensor z0 = (x0 - select(mu, 0, 0)) / l00;
    Tensor z1 = (x1 - select(mu, 0, 1) - l10 * z0) / l11;
    Tensor nll = mean(0.5 * (square(z0) + square(z1))) + sum(log_diag) + std::log(2 * M_PI);
    nll.backward();
    if (step % 50 == 0) fmt::print("step {:4d}  NLL {:.6f}\n", step, nll.item());
    NoGrad guard;
    for (Tensor* p : {&mu, &log_diag, &offdiag}) {
      auto v = p->mutable_data();
      auto g = p->grad().data();
      for (size_t i = 0; i < v.size(); ++i) v[i] -= lr * g[i];
      p->zero_grad();
    }
  }

  const double a = std::exp(log_diag.data()[0]), b = std::exp(log_diag.data()[1]);
  const double c = offdiag.data()[0];
  const double m0 = mean(x0).item(), m1 = mean(x1).item();
  const double s00 = mean(square(x0 - m0)).item(), s11 = mean(square(x1 - m1)).item();
  const double s01 = mean((x0 - m0) * (x1 - m1)).item();
  fmt::print("\n                 fitted                 sample (maximum likelihood)\n");
  fmt::print("mean        [{:8.4f} {:8.4f}]      [{:8.4f} {:8.4f}]\n", mu.data()[0], mu.data()[1], m0, m1);
  fmt::print("covariance  [{:8.4f} {:8.4f}]      [{:8.4f} {:8.4f}]\n", a * a, a * c, s00, s01);
  fmt::print("            [{:8.4f} {:8.4f}]      [{:8.4f} {:8.4f}]\n", a * c, c * c + b * b, s01, s11);
  fmt::print("true:  mean [1, -2], covariance [[2.25, 1.2], [1.2, 1.0]]\n");
  const double worst = std::max({std::abs(mu.data()[0] - m0), std::abs(mu.data()[1] - m1),
                                 std::abs(a * a - s00), std::abs(a * c - s01),
                                 std::abs(c * c + b * b - s11)});
  fmt::print("largest difference from the maximum-likelihood estimate: {:.2e}\n", worst);
  return examples::verdict(cli, worst < 1e-3, fmt::format("largest difference {:.1e} < 1e-3", worst));
}
