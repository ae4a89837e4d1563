// Seed 2: "training the covariance trial by trial makes it singular".
//
// Two categories of 2-D points (the seed's means, variances and covariances, 200 points each).
// The model holds two learned Gaussians; for a point x their densities exp(log N(x; mu_k,
// Sigma_k)) feed a 2 -> 2 linear layer trained with cross-entropy, one point at a time, by SGD
// with momentum 0.3 and separate learning rates for the layer, the means and the covariances.
//
// The seed's PyTorch model learned the covariance matrices directly and crashed ("cholesky_cpu:
// U(2,2) is zero, singular U") at a covariance learning rate of 1e-3. Here each Sigma_k is
// L_k L_k^T with L_k = fill_scale_tril(v_k): every value of the free parameters v_k is a valid
// covariance, so every learning rate runs to the end.
#include <cmath>
#include <fmt/core.h>

#include <cholla.hpp>

#include "common/cli.hpp"
#include "common/plot.hpp"

using namespace cholla;
namespace tf = cholla::dist::transforms;

namespace {

struct Category {
  std::vector<double> mean;
  double var0, var1, cov;
};
const Category kCategories[2] = {{{-0.5, 0.25}, 0.0185, 0.065, -0.005}, {{-0.25, -0.6}, 0.0125, 0.005, 0.005}};

Tensor true_covariance(const Category& c) { return Tensor::from({2, 2}, {c.var0, c.cov, c.cov, c.var1}); }

struct Learner : nn::Module {
  Tensor mu = register_parameter("mu", Tensor::from({2, 2}, {-0.25, 0.05, -0.15, -0.25}));
  // Free parameters of the two scale_trils, starting at Sigma = 0.02 I as the seed does.
  Tensor v = register_parameter("v", tf::fill_scale_tril_inverse(
                                         expand(Tensor::eye(2) * std::sqrt(0.02), {2, 2, 2})));
  nn::Linear fc{2, 2, {.bias = false}};
  Learner() {
    register_module("fc", fc);
    NoGrad guard;
    for (double& w : fc.weight.mutable_data()) w = 0.0;  // the seed starts the layer at zero
  }
  dist::MultivariateNormal gaussians() const {
    return dist::MultivariateNormal::from_scale_tril(mu, tf::fill_scale_tril(v));
  }
  // x [..., 2] -> logits [..., 2]: each point against both Gaussians.
  Tensor forward(const Tensor& x) { return fc(exp(gaussians().log_prob(unsqueeze(x, -2)))); }
};

struct Run {
  double accuracy = 0.0;
  bool finite = true;
  Tensor mu, covariance;
};

Run train(const Tensor& X, const Tensor& labels, double lr_cov, int epochs, uint64_t seed) {
  Learner model;
  optim::SGD opt({{model.fc.parameters(), {.lr = 0.1}}, {{model.mu}, {.lr = 0.002}}, {{model.v}, {.lr = lr_cov}}},
                 {.momentum = 0.3});
  Rng rng(seed);
  const int64_t n = X.size(0);
  for (int epoch = 0; epoch < epochs; ++epoch) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    for (int64_t i = n - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[rng.below(static_cast<uint64_t>(i + 1))]);
    for (int64_t i : order) {  // one trial at a time
      Tensor loss = nn::cross_entropy(model.forward(select(X, 0, i)), select(labels, 0, i));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  NoGrad guard;
  Run run;
  Tensor logits = model.forward(X);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i)
    correct += (logits.at({i, 1}) > logits.at({i, 0})) == (labels.at({i}) > 0.5) ? 1 : 0;
  run.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  run.mu = model.mu.detach();
  run.covariance = model.gaussians().covariance();
  for (double p : model.v.data()) run.finite = run.finite && std::isfinite(p);
  for (double p : run.mu.data()) run.finite = run.finite && std::isfinite(p);
  return run;
}

// Density of N(mean, cov) on a grid over [-1, 1]^2 in gnuplot's "x y z" block format.
void write_grid(const std::string& path, const Tensor& mean, const Tensor& cov) {
  auto mvn = dist::MultivariateNormal::from_covariance(mean, cov);
  const int steps = 120;
  std::vector<double> xy;
  for (int i = 0; i <= steps; ++i)
    for (int j = 0; j <= steps; ++j) {
      xy.push_back(-1.0 + 2.0 * i / steps);
      xy.push_back(-1.0 + 2.0 * j / steps);
    }
  Tensor pts = Tensor::from({static_cast<int64_t>(xy.size() / 2), 2}, xy);
  Tensor density = exp(mvn.log_prob(pts));
  auto out = fmt::output_file(path);
  for (int i = 0; i <= steps; ++i) {
    for (int j = 0; j <= steps; ++j) {
      const size_t k = static_cast<size_t>(i * (steps + 1) + j);
      out.print("{} {} {}\n", xy[2 * k], xy[2 * k + 1], density.data()[k]);
    }
    out.print("\n");
  }
}

void draw(const std::string& dir, const Tensor& X, const Run& learned, double lr) {
  std::vector<std::vector<double>> rows;
  for (int64_t i = 0; i < X.size(0); ++i) rows.push_back({X.at({i, 0}), X.at({i, 1}), i < X.size(0) / 2 ? 0.0 : 1.0});
  examples::write_csv(dir + "/points.csv", {"x", "y", "category"}, rows);
  {
    auto out = fmt::output_file(dir + "/points.dat");  // gnuplot reads the whitespace form
    for (const auto& r : rows) out.print("{} {} {}\n", r[0], r[1], r[2]);
  }
  for (int k = 0; k < 2; ++k) {
    write_grid(fmt::format("{}/true{}.dat", dir, k), Tensor::from({2}, kCategories[k].mean), true_covariance(kCategories[k]));
    write_grid(fmt::format("{}/learned{}.dat", dir, k), select(learned.mu, 0, k), select(learned.covariance, 0, k));
  }
  const std::string png = dir + "/gaussian_categories.png";
  std::string script = fmt::format(R"GP(set terminal pngcairo size 1200,600 font ",11"
set contour base; set cntrparam levels 6; unset surface; set view map
do for [f in "true0 true1 learned0 learned1"] {{
  set table sprintf("{0}/%s.contour", f); splot sprintf("{0}/%s.dat", f) with lines; unset table
}}
set output "{1}"
set multiplot layout 1,2
set xrange [-1:1]; set yrange [-1:1]; set size ratio -1; set key off
set object 1 rectangle from graph 0,0 to graph 1,1 behind fillcolor rgb "#808080" fillstyle solid noborder
set title "input data and true distributions"
plot "{0}/points.dat" using 1:($3==0?$2:1/0) with points pt 7 ps 0.5 lc rgb "#1f3fbf", \
     "" using 1:($3==1?$2:1/0) with points pt 7 ps 0.5 lc rgb "#1f9f3f", \
     "{0}/true0.contour" using 1:2 with lines lw 2 lc rgb "#9fbfff", \
     "{0}/true1.contour" using 1:2 with lines lw 2 lc rgb "#9fff9f"
set title "learned distributions (covariance learning rate {2:g})"
plot "{0}/learned0.contour" using 1:2 with lines lw 2 lc rgb "#9fbfff", \
     "{0}/learned1.contour" using 1:2 with lines lw 2 lc rgb "#9fff9f"
unset multiplot
)GP",
                                   dir, png, lr);
  examples::run_gnuplot(dir + "/gaussian_categories.gp", script, png);
}

int run(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "gaussian_categories: two learned Gaussians + a linear layer, trained trial by trial (seed 2).\n\n"
      "--check passes when training finishes with finite parameters at every covariance learning\n"
      "rate (1e-4, 1e-3, 1e-2; the seed's PyTorch model crashed at 1e-3) with accuracy >= 0.9.",
      5);
  Rng rng(cli.seed);
  const int64_t per_category = 200;
  std::vector<Tensor> points;
  for (const Category& c : kCategories) {
    auto truth = dist::MultivariateNormal::from_covariance(Tensor::from({2}, c.mean), true_covariance(c));
    points.push_back(truth.sample(rng, per_category));
  }
  Tensor X = concat(points, 0);
  Tensor labels = concat({Tensor::zeros({per_category}), Tensor::ones({per_category})}, 0);
  const int epochs = cli.quick ? 1 : 5;
  bool ok = true;
  Run shown;
  for (double lr : {1e-4, 1e-3, 1e-2}) {
    Run r = train(X, labels, lr, epochs, cli.seed + 1);
    fmt::print("covariance learning rate {:6g}: finished {} epochs, accuracy {:.3f}, learned Sigma_1 "
               "diagonal [{:.4f} {:.4f}]\n",
               lr, epochs, r.accuracy, r.covariance.at({0, 0, 0}), r.covariance.at({0, 1, 1}));
    ok = ok && r.finite && r.accuracy >= 0.9;
    if (lr == 1e-3) shown = r;
  }
  draw(examples::output_dir("gaussian_categories"), X, shown, 1e-3);
  return examples::verdict(cli, ok, "finite parameters and accuracy >= 0.9 at every covariance learning rate");
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
