// A mixture density network on Bishop's inverse problem: the forward map
//
//   y = x + 0.3 sin(2 pi x) + eps,   x ~ U(0, 1),  eps ~ N(0, 0.05^2)
//
// is a function, but its inverse x | y is not: for 0.41 < y < 0.59 three different x give the
// same y. A network trained on squared error predicts their average, which is none of them; a
// mixture density network (1 -> 32 tanh -> 32 tanh -> MixtureDensityHead(K = 5, d = 1))
// learns the whole conditional density p(x | y), one mode per branch.
//
// The true conditional density is known in closed form up to a normaliser:
//   p(x | y) = 1[0 <= x <= 1] N(y; x + 0.3 sin(2 pi x), 0.05^2) / Z(y),
// with Z(y) by quadrature, so the learned density can be scored against it exactly.
#include <algorithm>
#include <cmath>
#include <fmt/core.h>
#include <fmt/os.h>
#include <fmt/ranges.h>

#include <cholla.hpp>

#include "common/cli.hpp"
#include "common/plot.hpp"

using namespace cholla;

namespace {

constexpr double kNoise = 0.05;
constexpr int64_t kComponents = 5;

double forward_map(double x) { return x + 0.3 * std::sin(2 * M_PI * x); }

// x grid for densities: wider than the support [0, 1], so mass put outside is counted.
constexpr double kLo = -0.2, kHi = 1.2;
constexpr int64_t kGrid = 561;
double grid_x(int64_t i) { return kLo + (kHi - kLo) * static_cast<double>(i) / (kGrid - 1); }
constexpr double kStep = (kHi - kLo) / (kGrid - 1);

// Z(y) = integral over [0, 1] of exp(-(y - f(x))^2 / (2 sigma^2)) dx (trapezoid rule), so that
// p(x | y) = exp(-(y - f(x))^2 / (2 sigma^2)) / Z(y) on [0, 1] (the Gaussian's constant cancels).
double normaliser(double y) {
  const int64_t fine = 20000;
  double Z = 0.0;
  for (int64_t i = 0; i <= fine; ++i) {
    const double z = (y - forward_map(static_cast<double>(i) / fine)) / kNoise;
    Z += (i == 0 || i == fine ? 0.5 : 1.0) * std::exp(-0.5 * z * z) / fine;
  }
  return Z;
}

// True p(x | y) on the grid.
std::vector<double> true_density(double y) {
  const double Z = normaliser(y);
  std::vector<double> p(kGrid, 0.0);
  for (int64_t i = 0; i < kGrid; ++i) {
    const double x = grid_x(i), z = (y - forward_map(x)) / kNoise;
    if (x >= 0.0 && x <= 1.0) p[static_cast<size_t>(i)] = std::exp(-0.5 * z * z) / Z;
  }
  return p;
}

// Grid positions of the local maxima holding at least 10% of the highest peak.
std::vector<double> modes(const std::vector<double>& p) {
  const double top = *std::max_element(p.begin(), p.end());
  std::vector<double> found;
  for (size_t i = 1; i + 1 < p.size(); ++i)
    if (p[i] > p[i - 1] && p[i] >= p[i + 1] && p[i] > 0.1 * top) found.push_back(grid_x(static_cast<int64_t>(i)));
  return found;
}

struct Model : nn::Module {
  nn::Linear hidden1, hidden2;
  nn::MixtureDensityHead head;
  explicit Model(Rng& rng)
      : hidden1(1, 32, rng, {.init = nn::Init::XavierUniform}),
        hidden2(32, 32, rng, {.init = nn::Init::XavierUniform}),
        head(32, kComponents, 1, rng, {.init_scale = 0.2, .loc_spread = 0.5}) {
    register_module("hidden1", hidden1);
    register_module("hidden2", hidden2);
    register_module("head", head);
  }
  dist::MixtureSameFamily forward(const Tensor& y) { return head(tanh(hidden2(tanh(hidden1(y))))); }
};

}  // namespace

namespace {

int run(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "mixture_density: a mixture density network (1 -> 32 tanh -> 32 tanh -> MixtureDensityHead,\n"
      "K = 5) learns p(x | y) for y = x + 0.3 sin(2 pi x) + N(0, 0.05^2), whose inverse has three\n"
      "branches for 0.41 < y < 0.59. The true conditional density is computed by quadrature.\n\n"
      "--check passes when the test NLL is within 0.15 nats (0.3 with --quick) of the true\n"
      "density's, the mean L1 distance between learned and true p(x | y) over y in [0.05, 0.95] is\n"
      "below 0.35 (0.5), and at y = 0.5 the learned density has the true density's three modes\n"
      "(each within 0.05).",
      12);
  Rng rng(cli.seed);
  const int64_t n = cli.quick ? 2000 : 6000, n_train = n * 8 / 10;
  Tensor x = Tensor::uniform({n, 1}, 0.0, 1.0, rng);
  Tensor noise = Tensor::randn({n, 1}, rng);
  std::vector<double> y_values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y_values[static_cast<size_t>(i)] = forward_map(x.at({i, 0})) + kNoise * noise.at({i, 0});
  Tensor y = Tensor::from({n, 1}, y_values);
  Tensor x_train = slice(x, 0, 0, n_train), y_train = slice(y, 0, 0, n_train);
  Tensor x_test = slice(x, 0, n_train, n), y_test = slice(y, 0, n_train, n);

  Model model(rng);
  optim::Adam opt(model.parameters(), {.lr = 5e-3});
  const int64_t epochs = cli.quick ? 150 : 500;
  nn::Progress progress({.epochs = epochs, .every = epochs / 5});
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    if (epoch == epochs * 6 / 10 || epoch == epochs * 85 / 100) opt.options().lr *= 0.3;
    double total = 0.0;
    for (auto [yb, xb] : data::DataLoader(y_train, x_train, {.batch_size = 100, .seed = epoch})) {
      Tensor loss = -mean(model.forward(yb).log_prob(xb));  // the target is x, the input y
      opt.zero_grad();
      loss.backward();
      opt.step();
      total += loss.item() * static_cast<double>(xb.size(0));
    }
    progress.update(epoch, total / static_cast<double>(n_train), n_train);
  }
  progress.finish();

  NoGrad guard;
  const double model_nll = -mean(model.forward(y_test).log_prob(x_test)).item();
  double true_nll = 0.0;
  for (int64_t i = 0; i < x_test.size(0); ++i) {
    const double xi = x_test.at({i, 0}), yi = y_test.at({i, 0}), z = (yi - forward_map(xi)) / kNoise;
    true_nll -= (-0.5 * z * z - std::log(normaliser(yi))) / static_cast<double>(x_test.size(0));
  }
  fmt::print("test NLL per row: network {:.4f}, true conditional density {:.4f}\n", model_nll, true_nll);

  // Learned density on the x grid for a grid of y: log_prob of x [G, 1, 1] against batch [Y].
  std::vector<double> ys;
  for (int i = 1; i <= 19; ++i) ys.push_back(0.05 * i);
  ys.push_back(0.5);  // the last one is the picture's and the mode check's
  Tensor xs = Tensor::from({kGrid, 1, 1}, [] {
    std::vector<double> v(kGrid);
    for (int64_t i = 0; i < kGrid; ++i) v[static_cast<size_t>(i)] = grid_x(i);
    return v;
  }());
  Tensor learned = exp(model.forward(Tensor::from({static_cast<int64_t>(ys.size()), 1}, ys)).log_prob(xs));  // [G, Y]
  double l1 = 0.0;
  std::vector<double> learned_at_half(kGrid), true_at_half = true_density(0.5);
  for (size_t j = 0; j < ys.size(); ++j) {
    const auto truth = true_density(ys[j]);
    double dist = 0.0;
    for (int64_t i = 0; i < kGrid; ++i) {
      const double q = learned.at({i, static_cast<int64_t>(j)});
      dist += std::abs(q - truth[static_cast<size_t>(i)]) * kStep;
      if (j + 1 == ys.size()) learned_at_half[static_cast<size_t>(i)] = q;
    }
    if (j + 1 < ys.size()) l1 += dist / static_cast<double>(ys.size() - 1);
  }
  const auto true_modes = modes(true_at_half), learned_modes = modes(learned_at_half);
  bool modes_ok = learned_modes.size() == true_modes.size();
  for (size_t m = 0; modes_ok && m < true_modes.size(); ++m) modes_ok = std::abs(learned_modes[m] - true_modes[m]) < 0.05;
  fmt::print("mean L1 distance to the true p(x | y) over y in [0.05, 0.95]: {:.3f}\n", l1);
  fmt::print("modes of p(x | y = 0.5): true [{:.3f}], learned [{:.3f}]\n", fmt::join(true_modes, ", "),
             fmt::join(learned_modes, ", "));

  // The picture: data with the components' means (sized by weight) against y, and the
  // density at y = 0.5.
  const std::string dir = examples::output_dir("mixture_density");
  {
    auto out = fmt::output_file(dir + "/data.dat");
    for (int64_t i = 0; i < n_train; ++i) out.print("{} {}\n", y_train.at({i, 0}), x_train.at({i, 0}));
  }
  std::vector<std::vector<double>> component_rows, density_rows;
  {
    std::vector<double> grid;
    for (int i = 0; i <= 120; ++i) grid.push_back(-0.1 + 1.2 * i / 120.0);
    auto mix = model.forward(Tensor::from({static_cast<int64_t>(grid.size()), 1}, grid));
    Tensor probs = mix.mixture_probs(), means = mix.components().loc();
    auto out = fmt::output_file(dir + "/components.dat");
    for (size_t g = 0; g < grid.size(); ++g)
      for (int64_t k = 0; k < kComponents; ++k) {
        const double w = probs.at({static_cast<int64_t>(g), k}), m = means.at({static_cast<int64_t>(g), k, 0});
        component_rows.push_back({grid[g], static_cast<double>(k), m, w});
        if (w > 0.02) out.print("{} {} {} {}\n", grid[g], m, 2.0 * std::sqrt(w), k);
      }
  }
  for (int64_t i = 0; i < kGrid; ++i)
    density_rows.push_back({grid_x(i), true_at_half[static_cast<size_t>(i)], learned_at_half[static_cast<size_t>(i)]});
  examples::write_csv(dir + "/components.csv", {"y", "component", "mean", "weight"}, component_rows);
  examples::write_csv(dir + "/density_y0.5.csv", {"x", "true", "learned"}, density_rows);
  {
    auto out = fmt::output_file(dir + "/density.dat");
    for (const auto& r : density_rows) out.print("{} {} {}\n", r[0], r[1], r[2]);
  }
  const std::string png = dir + "/mixture_density.png";
  const std::string script = fmt::format(R"GP(set terminal pngcairo size 1200,550 font ",11"
set output "{1}"
set multiplot layout 1,2
set title "data (grey) and the learned components' means, sized by weight"
set xlabel "y (input)"; set ylabel "x (target)"; set key off
set xrange [-0.1:1.1]; set yrange [-0.1:1.1]
plot "{0}/data.dat" using 1:2 with points pt 7 ps 0.25 lc rgb "#b0b0b0", \
     "{0}/components.dat" using 1:2:3:4 with points pt 7 ps variable lc variable
set title "p(x | y = 0.5): true (black) and learned (red)"
set xlabel "x"; set ylabel "density"; set autoscale y; set xrange [-0.2:1.2]
plot "{0}/density.dat" using 1:2 with lines lw 2 lc rgb "#000000", \
     "" using 1:3 with lines lw 2 lc rgb "#d62728"
unset multiplot
)GP",
                                         dir, png);
  examples::run_gnuplot(dir + "/mixture_density.gp", script, png);

  const double nll_gap = cli.quick ? 0.3 : 0.15, l1_limit = cli.quick ? 0.5 : 0.35;
  const bool ok = model_nll < true_nll + nll_gap && l1 < l1_limit && modes_ok;
  return examples::verdict(cli, ok,
                           fmt::format("NLL gap {:.3f} < {}, L1 {:.3f} < {}, {} of {} modes matched",
                                       model_nll - true_nll, nll_gap, l1, l1_limit,
                                       modes_ok ? true_modes.size() : 0, true_modes.size()));
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
