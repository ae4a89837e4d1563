// Seed 3: "a Keras model that outputs a mean vector and a covariance matrix for every row".
//
// The seed's model, in cholla: 6 inputs -> Dense 24 relu -> Dense 12 relu ->
// MultivariateNormalHead(5), trained on -log_prob with batch size 100 for 100 epochs.
// `model.forward(X)` returns ONE distribution per row (batch shape [rows], event shape [5]).
//
// Data: a documented generator with a known input-dependent mean and covariance, so the
// learned model can be scored against the truth:
//   x ~ U(-1, 1)^6
//   mean_j(x)   = sin(2 x_j) + 0.5 x_{j+1}                             (j = 0..4)
//   sd_j(x)     = 0.3 exp(0.8 x_5 + 0.3 x_j)                           (volatilities)
//   Sigma(x)    = D(x) R D(x),  D = diag(sd(x)),  R_ij = 0.6^|i-j|     (AR(1) correlation)
// Or a user's table: --data F --inputs X1,...,X6 --outputs Y1,...,Y5 (the seed's shape).
#include <cmath>
#include <fmt/core.h>

#include <cholla.hpp>

#include "common/cli.hpp"
#include "common/mean_cov_model.hpp"
#include "common/plot.hpp"
#include "common/training.hpp"

using namespace cholla;
using examples::generate;
using examples::kIn;
using examples::kOut;
using examples::Model;
using examples::Table;

namespace {

void print_matrix_row(const char* label, const Tensor& v) {
  fmt::print("  {:<10}", label);
  for (double x : v.data()) fmt::print(" {:7.3f}", x);
  fmt::print("\n");
}

int run(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "mean_cov_regression: 6 -> Dense 24 relu -> Dense 12 relu -> MultivariateNormalHead(5), batch\n"
      "100, 100 epochs (seed 3), on generated data with a known input-dependent mean and covariance.\n\n"
      "--check passes when the test NLL beats the constant-covariance baseline and, on generated data\n"
      "in full mode, is within 0.25 nats per row of the true model's NLL.\n\n"
      "options:\n  --data F --inputs A,B,... --outputs C,D,...   train on your own CSV instead\n"
      "  --save-data F   write the generated table (X1..X6, Y1..Y5) as CSV",
      3, {"data", "inputs", "outputs", "save-data"});
  Rng rng(cli.seed);
  Table all;
  const bool user_data = !cli.get("data").empty();
  if (user_data) {
    const auto inputs = examples::split_list(cli.get("inputs")), outputs = examples::split_list(cli.get("outputs"));
    if (inputs.empty() || outputs.empty()) {
      fmt::print(stderr, "--data needs --inputs and --outputs (comma-separated column names)\n");
      return 2;
    }
    std::vector<std::string> columns = inputs;
    columns.insert(columns.end(), outputs.begin(), outputs.end());
    const auto table = data::read_csv(cli.get("data"), {.columns = columns, .missing = data::Missing::SkipRow});
    all.X = table.matrix(inputs);
    all.Y = table.matrix(outputs);
  } else {
    all = generate(cli.quick ? 3000 : 10000, rng);
    if (!cli.get("save-data").empty()) {
      std::vector<std::vector<double>> rows;
      for (int64_t r = 0; r < all.X.size(0); ++r) {
        std::vector<double> row;
        for (int64_t j = 0; j < kIn; ++j) row.push_back(all.X.at({r, j}));
        for (int64_t j = 0; j < kOut; ++j) row.push_back(all.Y.at({r, j}));
        rows.push_back(row);
      }
      examples::write_csv(cli.get("save-data"), {"X1", "X2", "X3", "X4", "X5", "X6", "Y1", "Y2", "Y3", "Y4", "Y5"}, rows);
    }
  }
  const int64_t n = all.X.size(0), n_train = n * 8 / 10;
  Tensor X_train = slice(all.X, 0, 0, n_train), Y_train = slice(all.Y, 0, 0, n_train);
  Tensor X_test = slice(all.X, 0, n_train, n), Y_test = slice(all.Y, 0, n_train, n);

  Model model(all.X.size(1), all.Y.size(1), rng);
  optim::Adam opt(model.parameters(), {.lr = 3e-3});
  const int64_t epochs = cli.quick ? 15 : 100;
  nn::Progress progress({.epochs = epochs, .every = 10});
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    if (epoch == epochs * 6 / 10 || epoch == epochs * 85 / 100) opt.options().lr *= 0.3;  // step decay
    const double loss = examples::train_epoch(model, opt, X_train, Y_train, {.batch_size = 100, .seed = epoch});
    progress.update(epoch, loss, X_train.size(0));
  }
  progress.finish();

  NoGrad guard;
  auto predicted = model.forward(X_test);  // one distribution per test row
  const double model_nll = -mean(predicted.log_prob(Y_test)).item();
  const double baseline = examples::constant_gaussian_nll(Y_train, Y_test);
  fmt::print("test NLL per row: network {:.4f}, constant-covariance Gaussian {:.4f}", model_nll, baseline);
  bool ok = model_nll < baseline;
  if (!user_data) {
    auto truth = dist::MultivariateNormal::from_covariance(slice(all.true_mean, 0, n_train, n),
                                                           slice(all.true_cov, 0, n_train, n));
    const double true_nll = -mean(truth.log_prob(Y_test)).item();
    fmt::print(", true model {:.4f}", true_nll);
    if (!cli.quick) ok = ok && model_nll < true_nll + 0.25;
    fmt::print("\n\nfirst test row: predicted vs true\n");
    print_matrix_row("mean", select(predicted.mean(), 0, 0));
    print_matrix_row("true mean", select(all.true_mean, 0, n_train));
    Tensor cov = select(predicted.covariance(), 0, 0), true_cov = select(all.true_cov, 0, n_train);
    print_matrix_row("sd", sqrt(linalg::extractdiag(cov)));
    print_matrix_row("true sd", sqrt(linalg::extractdiag(true_cov)));
  }
  fmt::print("\n");
  return examples::verdict(cli, ok, fmt::format("network {:.4f} vs constant {:.4f}", model_nll, baseline));
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
