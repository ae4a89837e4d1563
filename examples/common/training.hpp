// Pieces the distribution-regression examples share: one epoch of -log_prob training, and the
// baseline every such model must beat (one Gaussian with the training data's mean and ML
// covariance, for every row).
#pragma once

#include <cholla.hpp>

namespace examples {

// One pass of mini-batch training on -mean(log_prob); returns the mean loss over the rows.
template <class Model>
double train_epoch(Model& model, cholla::optim::Optimizer& opt, const cholla::Tensor& X, const cholla::Tensor& Y,
                   const cholla::data::LoaderOptions& options) {
  double total = 0.0;
  int64_t seen = 0;
  for (auto [xb, yb] : cholla::data::DataLoader(X, Y, options)) {
    cholla::Tensor loss = -cholla::mean(model.forward(xb).log_prob(yb));
    opt.zero_grad();
    loss.backward();
    opt.step();
    total += loss.item() * static_cast<double>(xb.size(0));
    seen += xb.size(0);
  }
  return total / static_cast<double>(seen);
}

// Test NLL per row of the constant-covariance maximum-likelihood Gaussian fitted on `train`.
inline double constant_gaussian_nll(const cholla::Tensor& train, const cholla::Tensor& test) {
  using namespace cholla;
  NoGrad guard;
  Tensor m = mean(train, {0});
  Tensor c = train - m;
  Tensor S = linalg::gemm2(c, c, {.transpose_a = true}) / static_cast<double>(train.size(0));
  return -mean(dist::MultivariateNormal::from_covariance(m, S).log_prob(test)).item();
}

}  // namespace examples
