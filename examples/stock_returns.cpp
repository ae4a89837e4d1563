// The main example (`make demo`): tomorrow's joint distribution of four stock indices.
//
// EuStockMarkets (daily closes of DAX, SMI, CAC and FTSE, 1991-1998) becomes daily log-returns
// in percent. A small network reads the previous day's returns and exponentially weighted
// moving variances and correlations, and emits a 4-D MultivariateNormalHead: a mean and a full
// covariance for the next day, i.e. time-varying volatilities and correlations. It trains on
// the first 70% of the days and is scored on the last 30% against the constant-covariance
// maximum-likelihood Gaussian fitted on the same training days.
#include <algorithm>
#include <cmath>
#include <fmt/core.h>

#include <cholla.hpp>

#include "common/cli.hpp"
#include "common/plot.hpp"
#include "common/training.hpp"

using namespace cholla;

namespace {

const std::vector<std::string> kIndices = {"DAX", "SMI", "CAC", "FTSE"};
constexpr int64_t kWarmup = 20;  // days before the moving covariance is used
constexpr double kEwmaDecay = 0.94;  // RiskMetrics' daily decay

struct Dataset {
  Tensor X;  // features [days, 14]
  Tensor C;  // the moving covariance at t-1, flattened [days, 16]
  Tensor Y;  // next-day returns [days, 4]
};

// Log-returns in percent: r_t = 100 log(P_t / P_{t-1}).
Tensor log_returns(const Tensor& prices) {
  const int64_t n = prices.size(0);
  return 100.0 * (log(slice(prices, 0, 1, n)) - log(slice(prices, 0, 0, n - 1)));
}

// Row t: the previous day's returns and exponentially weighted moving (co)variances at t-1
// (log variances and correlations: the quantities that drift slowly and predict tomorrow's
// covariance); target: returns at t.
Dataset make_features(const Tensor& r) {
  const int64_t days = r.size(0), k = r.size(1);
  std::vector<double> cov(static_cast<size_t>(k * k), 0.0), features, covs, targets;
  for (int64_t j = 0; j < k; ++j) cov[static_cast<size_t>(j * k + j)] = 1.0;
  auto c = [&](int64_t i, int64_t j) { return cov[static_cast<size_t>(i * k + j)]; };
  for (int64_t t = 0; t < days; ++t) {
    if (t >= kWarmup) {
      for (int64_t j = 0; j < k; ++j) features.push_back(r.at({t - 1, j}));
      for (int64_t j = 0; j < k; ++j) features.push_back(std::log(c(j, j)));
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < i; ++j) features.push_back(c(i, j) / std::sqrt(c(i, i) * c(j, j)));
      for (int64_t j = 0; j < k; ++j) targets.push_back(r.at({t, j}));
      covs.insert(covs.end(), cov.begin(), cov.end());
    }
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j)
        cov[static_cast<size_t>(i * k + j)] = kEwmaDecay * c(i, j) + (1 - kEwmaDecay) * r.at({t, i}) * r.at({t, j});
  }
  const auto rows = static_cast<int64_t>(targets.size()) / k;
  return {Tensor::from({rows, static_cast<int64_t>(features.size()) / rows}, features),
          Tensor::from({rows, k * k}, covs), Tensor::from({rows, k}, targets)};
}

// The network corrects the moving covariance rather than predicting from scratch: with
// C = L_ewma L_ewma^T, the predicted scale_tril is L_ewma L_net (a product of lower-triangular
// factors with positive diagonals is one), so a volatility regime never seen in training
// still scales the prediction.
struct Model : nn::Module {
  nn::Linear hidden1, hidden2;
  nn::MultivariateNormalHead head;
  Model(int64_t in, Rng& rng)
      : hidden1(in, 16, rng, {.init = nn::Init::XavierUniform}),
        hidden2(16, 16, rng, {.init = nn::Init::XavierUniform}),
        head(16, 4, rng) {
    register_module("hidden1", hidden1);
    register_module("hidden2", hidden2);
    register_module("head", head);
    // Start exactly at the moving covariance (correction = I, mean 0): training can only move
    // away from it where the data says so.
    NoGrad guard;
    for (double& w : head.proj.weight.mutable_data()) w = 0.0;
  }
  // x = [standardised features | flattened moving covariance].
  dist::MultivariateNormal forward(const Tensor& x) {
    const int64_t f = x.size(-1) - 16;
    auto correction = head(tanh(hidden2(tanh(hidden1(slice(x, -1, 0, f))))));
    Tensor L_ewma = linalg::potrf(reshape(slice(x, -1, f, f + 16), {-1, 4, 4}));
    return dist::MultivariateNormal::from_scale_tril(correction.loc(), linalg::gemm2(L_ewma, correction.scale_tril()),
                                                     {.validate = false});
  }
};

void draw(const std::string& dir, const Tensor& realised, const Tensor& predicted_cov, int64_t first_day) {
  // Realised volatility of the DAX: 20-day rolling standard deviation of its returns (the
  // network never sees the day it predicts, the rolling window is centred on the past).
  const int64_t n = realised.size(0);
  std::vector<std::vector<double>> rows;
  for (int64_t t = 0; t < n; ++t) {
    double s2 = 0.0;
    int64_t count = 0;
    for (int64_t u = std::max<int64_t>(0, t - 19); u <= t; ++u, ++count) s2 += realised.at({u, 0}) * realised.at({u, 0});
    const double dax = std::sqrt(predicted_cov.at({t, 0, 0})), cac = std::sqrt(predicted_cov.at({t, 2, 2}));
    rows.push_back({static_cast<double>(first_day + t), std::abs(realised.at({t, 0})), std::sqrt(s2 / static_cast<double>(count)),
                    dax, predicted_cov.at({t, 0, 2}) / (dax * cac)});
  }
  examples::write_csv(dir + "/test_days.csv", {"day", "abs_dax_return", "dax_rolling_sd_20d", "dax_predicted_sd", "dax_cac_predicted_corr"}, rows);
  const std::string png = dir + "/stock_returns.png";
  const std::string script = fmt::format(R"GP(set terminal pngcairo size 1200,800 font ",11"
set datafile separator comma
set output "{1}"
set multiplot layout 2,1
set key top left
set xlabel "trading day"
set ylabel "percent"
set title "DAX: predicted daily volatility vs realised (test period)"
plot "{0}/test_days.csv" every ::1 using 1:2 with impulses lc rgb "#c0c0c0" title "|return|", \
     "" every ::1 using 1:3 with lines lw 2 lc rgb "#404040" title "realised 20-day sd", \
     "" every ::1 using 1:4 with lines lw 2 lc rgb "#d62728" title "predicted sd"
set ylabel "correlation"
set yrange [0:1]
set title "predicted DAX-CAC correlation"
plot "{0}/test_days.csv" every ::1 using 1:5 with lines lw 2 lc rgb "#1f77b4" title "predicted"
unset multiplot
)GP",
                                         dir, png);
  examples::run_gnuplot(dir + "/stock_returns.gp", script, png);
}

int run(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "stock_returns: a network predicts tomorrow's mean and covariance of DAX, SMI, CAC and FTSE\n"
      "log-returns (EuStockMarkets) through a 4-D MultivariateNormalHead.\n\n"
      "--check passes when the network's test NLL (last 30% of the days) is below that of the\n"
      "constant-covariance maximum-likelihood Gaussian fitted on the training days.\n\n"
      "options:\n  --data F   a CSV with columns DAX, SMI, CAC, FTSE (default: the bundled EuStockMarkets)",
      7, {"data"});
  const std::string path = cli.get("data", CHOLLA_EXAMPLES_DATA "/eustockmarkets.csv");
  const auto table = data::read_csv(path, {.columns = kIndices});
  Tensor returns = log_returns(table.matrix());
  Dataset all = make_features(returns);
  const int64_t n = all.X.size(0), n_train = n * 7 / 10;
  // Standardise the features with training statistics only; append the moving covariance.
  Tensor F_train = slice(all.X, 0, 0, n_train);
  Tensor mu = mean(F_train, {0}), sd = sqrt(mean(square(F_train - mu), {0})) + 1e-8;
  Tensor X = concat({(all.X - mu) / sd, all.C}, 1);
  // The last 20% of the training days validate (early stopping); the test days are never seen.
  const int64_t n_fit = n_train * 8 / 10;
  Tensor X_fit = slice(X, 0, 0, n_fit), Y_fit = slice(all.Y, 0, 0, n_fit);
  Tensor X_val = slice(X, 0, n_fit, n_train), Y_val = slice(all.Y, 0, n_fit, n_train);
  Tensor Y_train = slice(all.Y, 0, 0, n_train);
  Tensor X_test = slice(X, 0, n_train, n), Y_test = slice(all.Y, 0, n_train, n);
  fmt::print("{} trading days -> {} training rows, {} test rows, {} features\n", returns.size(0) + 1, n_train,
             n - n_train, all.X.size(1));

  Rng rng(cli.seed);
  Model model(all.X.size(1), rng);
  const double ewma_nll = -mean(dist::MultivariateNormal::from_covariance(
                                    Tensor::zeros({4}), reshape(slice(all.C, 0, n_train, n), {-1, 4, 4}))
                                    .log_prob(Y_test))
                              .item();
  optim::AdamW opt(model.parameters(), {.lr = 1e-3, .weight_decay = 1e-3});
  const int64_t epochs = cli.quick ? 15 : 120;
  nn::Progress progress({.epochs = epochs, .every = 10});
  double best_val = INFINITY;
  std::vector<std::vector<double>> best;  // parameter values at the best validation NLL
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    const double loss = examples::train_epoch(model, opt, X_fit, Y_fit,
                                              {.batch_size = 64, .seed = epoch + static_cast<int64_t>(cli.seed)});
    progress.update(epoch, loss, X_fit.size(0));
    NoGrad guard;
    const double val = -mean(model.forward(X_val).log_prob(Y_val)).item();
    if (val < best_val) {
      best_val = val;
      best.clear();
      for (const Tensor& p : model.parameters()) best.push_back(p.to_vector());
    }
  }
  progress.finish();
  {
    NoGrad guard;
    auto params = model.parameters();
    for (size_t i = 0; i < params.size(); ++i) std::copy(best[i].begin(), best[i].end(), params[i].mutable_data().begin());
  }
  fmt::print("best validation NLL {:.4f}\n", best_val);

  NoGrad guard;
  auto predicted = model.forward(X_test);
  const double model_nll = -mean(predicted.log_prob(Y_test)).item();
  const double baseline_nll = examples::constant_gaussian_nll(Y_train, Y_test);
  fmt::print("test NLL per day: network {:.4f}, constant-covariance Gaussian {:.4f}, moving covariance "
             "alone {:.4f} (lower is better)\n",
             model_nll, baseline_nll, ewma_nll);
  draw(examples::output_dir("stock_returns"), Y_test, predicted.covariance(), n_train + kWarmup + 1);
  return examples::verdict(cli, model_nll < baseline_nll,
                           fmt::format("network NLL {:.4f} < baseline {:.4f}", model_nll, baseline_nll));
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
