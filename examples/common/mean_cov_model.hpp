// Seed 3's model and data, shared by mean_cov_regression (one process) and data_parallel (the
// same training over MPI ranks): 6 inputs -> Dense 24 relu -> Dense 12 relu ->
// MultivariateNormalHead(5), and a generator with a known input-dependent mean and covariance:
//   x ~ U(-1, 1)^6
//   mean_j(x)   = sin(2 x_j) + 0.5 x_{j+1}                             (j = 0..4)
//   sd_j(x)     = 0.3 exp(0.8 x_5 + 0.3 x_j)                           (volatilities)
//   Sigma(x)    = D(x) R D(x),  D = diag(sd(x)),  R_ij = 0.6^|i-j|     (AR(1) correlation)
#pragma once

#include <cmath>
#include <cstdlib>
#include <vector>

#include <cholla.hpp>

namespace examples {

using cholla::Rng;
using cholla::Tensor;
namespace dist = cholla::dist;
namespace nn = cholla::nn;

constexpr int64_t kIn = 6, kOut = 5;

struct Table {
  Tensor X, Y;
  Tensor true_mean, true_cov;  // only for generated data
};

inline Table generate(int64_t rows, Rng& rng) {
  Tensor X = Tensor::uniform({rows, kIn}, -1.0, 1.0, rng);
  std::vector<double> mean, cov;
  for (int64_t r = 0; r < rows; ++r) {
    double sd[kOut];
    for (int64_t j = 0; j < kOut; ++j) {
      mean.push_back(std::sin(2.0 * X.at({r, j})) + 0.5 * X.at({r, j + 1}));
      sd[j] = 0.3 * std::exp(0.8 * X.at({r, 5}) + 0.3 * X.at({r, j}));
    }
    for (int64_t i = 0; i < kOut; ++i)
      for (int64_t j = 0; j < kOut; ++j) cov.push_back(sd[i] * sd[j] * std::pow(0.6, std::abs(static_cast<double>(i - j))));
  }
  Table t;
  t.X = X;
  t.true_mean = Tensor::from({rows, kOut}, mean);
  t.true_cov = Tensor::from({rows, kOut, kOut}, cov);
  t.Y = dist::MultivariateNormal::from_covariance(t.true_mean, t.true_cov).sample(rng, 1);
  t.Y = reshape(t.Y, {rows, kOut});
  return t;
}

struct Model : nn::Module {
  nn::Linear dense1, dense2;
  nn::MultivariateNormalHead head;
  Model(int64_t in, int64_t out, Rng& rng)
      : dense1(in, 24, rng), dense2(24, 12, rng), head(12, out, rng) {
    register_module("dense1", dense1);
    register_module("dense2", dense2);
    register_module("head", head);
  }
  dist::MultivariateNormal forward(const Tensor& x) { return head(relu(dense2(relu(dense1(x))))); }
};

}  // namespace examples
