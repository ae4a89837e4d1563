// qda: quadratic discriminant analysis, i.e. one Gaussian per class, fitted by gradient descent
// on the negative log-likelihood (issue #6).
//
// Per class k the model is MultivariateNormal(loc_k, L_k L_k^T) with L_k = fill_scale_tril(v_k):
// every value of the free parameters is a valid covariance. All classes train at once: loc [K, p]
// and v [K, p(p+1)/2] hold every class's parameters, and the loss is the sum over classes of
// each class's mean NLL over its own training rows (so class k's parameters see only class k's
// term). Adam with an exponentially decaying learning rate.
//
// The maximum-likelihood answer is known in closed form (class mean and 1/n covariance), so the
// example prints how far gradient descent lands from it, then classifies a fixed test split
// (every 4th row) by argmax_k log N(x; mu_k, Sigma_k) + log prior_k.
//
// Features are standardised with the training rows' mean and standard deviation first: wine's
// raw features range from ~0.1 to ~1000, which makes the covariances badly conditioned.
//
// digits (8x8 images) is the failure case: inside every class some pixels are always 0, so each
// class's ML covariance is exactly singular. The example asks MultivariateNormal::from_covariance
// for it anyway, prints which class failed and why (the constant pixels), then fits with
// shrinkage  Sigma_k = (1 - a) S_k + a (tr S_k / p) I : in closed form, with the Jitter policy
// for comparison, and by gradient descent on the NLL plus the matching penalty (see fit()).
//
// correlated (generated) is the hard non-singular case (issue #12): 30 features, a third of them
// near-linear functions of others, so class covariances have condition numbers ~1e12. Adam stalls
// far from the optimum there; L-BFGS in coordinates whitened by the pooled covariance
// (fit_lbfgs()) reaches the closed-form NLL within 1e-6 relative on every non-singular data set.
#include <chrono>
#include <cmath>
#include <fmt/core.h>
#include <numbers>
#include <numeric>
#include <optional>

#include <cholla.hpp>

#include "common/cli.hpp"
#include "common/labelled_data.hpp"

#ifndef CHOLLA_EXAMPLES_DATA
#define CHOLLA_EXAMPLES_DATA "examples/data"
#endif

using namespace cholla;
namespace tf = cholla::dist::transforms;

namespace {

// ---- data -------------------------------------------------------------------------------------

enum class Scaling { PerFeature, Pooled, None };

struct Dataset {
  std::string name, file;
  examples::LabelledOptions options;
  std::vector<std::string> feature_names;  // overrides the file's (sklearn files have none)
  Scaling scaling = Scaling::PerFeature;
  double min_accuracy = 0.85;
  bool generated = false;  // made by correlated_data(), not read from `file`
};

std::vector<std::string> digit_pixels() {
  std::vector<std::string> names;
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) names.push_back(fmt::format("pixel({},{})", r, c));
  return names;
}

std::vector<Dataset> builtin_datasets() {
  return {
      {"iris", "iris.csv", {}, {"sepal_length", "sepal_width", "petal_length", "petal_width"}, Scaling::PerFeature, 0.85},
      {"wine", "wine_data.csv", {},
       {"alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
        "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315", "proline"},
       Scaling::PerFeature, 0.85},
      {"penguins", "penguins.csv",
       {.label = "species", .features = {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"}},
       {}, Scaling::PerFeature, 0.85},
      // Per-pixel sds are 0 (always-blank pixels) or tiny (rarely inked ones): one common scale
      // keeps the pixels comparable, and the shrinkage target tr(S)/p I means the same thing.
      {"digits", "digits.csv", {}, digit_pixels(), Scaling::Pooled, 0.80},
      {"correlated", "", {}, {}, Scaling::PerFeature, 0.85, true},
  };
}

// 30 features in 2 classes, built like measurements of the same objects in several ways
// (radius, perimeter, area): 10 base features, drawn per class from N(mu_k, A_k A_k^T); 10
// near-linear functions of them (2 b_j + b_{j+1} / 2 plus noise of sd 1e-6), which make each
// class covariance nearly singular (condition ~1e12); and 10 near-quadratic ones
// (b_j^2 + b_j / 10 plus noise of sd 1e-3). 400 rows per class.
examples::LabelledData correlated_data() {
  constexpr int64_t kBase = 10, kP = 30, kPerClass = 400;
  Rng rng(2024);
  examples::LabelledData d;
  d.path = "generated";
  d.layout = "generated";
  d.class_names = {"a", "b"};
  for (int64_t j = 0; j < kP; ++j)
    d.feature_names.push_back(fmt::format("{}{}", j < kBase ? "base" : j < 2 * kBase ? "linear" : "square", j % kBase));
  std::vector<double> x;
  for (int64_t k = 0; k < 2; ++k) {
    const std::vector<double> A = (Tensor::randn({kBase, kBase}, rng) * 0.4 + Tensor::eye(kBase)).to_vector();
    for (int64_t i = 0; i < kPerClass; ++i) {
      const std::vector<double> z = Tensor::randn({kBase}, rng).to_vector();
      const std::vector<double> noise = Tensor::randn({2 * kBase}, rng).to_vector();
      std::vector<double> b(kBase, 0.8 * static_cast<double>(k));
      for (int64_t r = 0; r < kBase; ++r)
        for (int64_t c = 0; c < kBase; ++c) b[static_cast<size_t>(r)] += A[static_cast<size_t>(r * kBase + c)] * z[static_cast<size_t>(c)];
      for (int64_t j = 0; j < kBase; ++j) x.push_back(b[static_cast<size_t>(j)]);
      for (int64_t j = 0; j < kBase; ++j)
        x.push_back(2 * b[static_cast<size_t>(j)] + 0.5 * b[static_cast<size_t>((j + 1) % kBase)] + 1e-6 * noise[static_cast<size_t>(j)]);
      for (int64_t j = 0; j < kBase; ++j)
        x.push_back(b[static_cast<size_t>(j)] * b[static_cast<size_t>(j)] + 0.1 * b[static_cast<size_t>(j)] +
                    1e-3 * noise[static_cast<size_t>(kBase + j)]);
      d.y.push_back(k);
      d.line.push_back(static_cast<int64_t>(d.y.size()));
    }
  }
  // Interleave the classes so that every 4th row (the test split) takes from both.
  std::vector<int64_t> order;
  for (int64_t i = 0; i < kPerClass; ++i) order.push_back(i), order.push_back(kPerClass + i);
  const Tensor all = Tensor::from({2 * kPerClass, kP}, std::move(x));
  d.X = index_select(all, 0, order);
  std::vector<int64_t> y;
  for (int64_t i : order) y.push_back(d.y[static_cast<size_t>(i)]);
  d.y = y;
  return d;
}

struct Split {
  Tensor train, test;  // [n, p]
  std::vector<int64_t> ytrain, ytest;
};

// Every 4th row (index 3, 7, ...) to the test set: fixed, and stratified for files sorted by class.
Split split_rows(const Tensor& X, const std::vector<int64_t>& y) {
  std::vector<int64_t> tr, te;
  Split s;
  for (int64_t i = 0; i < X.size(0); ++i) {
    (i % 4 == 3 ? te : tr).push_back(i);
    (i % 4 == 3 ? s.ytest : s.ytrain).push_back(y[static_cast<size_t>(i)]);
  }
  s.train = index_select(X, 0, tr);
  s.test = index_select(X, 0, te);
  return s;
}

// PerFeature: subtracts the training mean and divides by the training sd of each feature (1 where
// it is 0). Pooled: only divides every feature by one number, the root of their mean training
// variance (no centring, so a feature that is constant 0 in a class stays exactly 0).
void standardise(Split& s, Scaling how) {
  if (how == Scaling::None) return;
  NoGrad guard;
  Tensor mu = mean(s.train, {0}, true);
  Tensor var = mean(square(s.train - mu), {0}, true);
  if (how == Scaling::Pooled) {
    const double sd = std::sqrt(mean(var).item());
    if (sd > 0.0) {
      s.train = s.train / sd;
      s.test = s.test / sd;
    }
    return;
  }
  Tensor sd = sqrt(var);
  sd = where(greater(sd, Tensor::scalar(0.0)), sd, Tensor::ones(sd.shape()));
  s.train = (s.train - mu) / sd;
  s.test = (s.test - mu) / sd;
}

// ---- closed form ------------------------------------------------------------------------------

struct Gaussians {
  Tensor mean;  // [K, p]
  Tensor cov;   // [K, p, p]
};

struct ClassStats {
  std::vector<int64_t> count;
  std::vector<double> log_prior;
};

ClassStats class_stats(const std::vector<int64_t>& y, int64_t K) {
  ClassStats s;
  s.count.assign(static_cast<size_t>(K), 0);
  for (int64_t k : y) ++s.count[static_cast<size_t>(k)];
  for (int64_t n : s.count) s.log_prior.push_back(std::log(static_cast<double>(n) / static_cast<double>(y.size())));
  return s;
}

// Class means and 1/n covariances (the maximum-likelihood estimates).
Gaussians ml_estimates(const Tensor& X, const std::vector<int64_t>& y, int64_t K) {
  const int64_t n = X.size(0), p = X.size(1);
  const auto x = X.data();
  std::vector<double> m(static_cast<size_t>(K * p), 0.0), c(static_cast<size_t>(K * p * p), 0.0);
  std::vector<double> count(static_cast<size_t>(K), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(y[static_cast<size_t>(i)]);
    count[k] += 1.0;
    for (int64_t a = 0; a < p; ++a) m[k * static_cast<size_t>(p) + static_cast<size_t>(a)] += x[static_cast<size_t>(i * p + a)];
  }
  for (size_t k = 0; k < static_cast<size_t>(K); ++k)
    for (size_t a = 0; a < static_cast<size_t>(p); ++a) m[k * static_cast<size_t>(p) + a] /= std::max(count[k], 1.0);
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(y[static_cast<size_t>(i)]);
    for (int64_t a = 0; a < p; ++a)
      for (int64_t b = 0; b < p; ++b) {
        const double da = x[static_cast<size_t>(i * p + a)] - m[k * static_cast<size_t>(p) + static_cast<size_t>(a)];
        const double db = x[static_cast<size_t>(i * p + b)] - m[k * static_cast<size_t>(p) + static_cast<size_t>(b)];
        c[(k * static_cast<size_t>(p) + static_cast<size_t>(a)) * static_cast<size_t>(p) + static_cast<size_t>(b)] += da * db;
      }
  }
  for (size_t k = 0; k < static_cast<size_t>(K); ++k)
    for (size_t j = 0; j < static_cast<size_t>(p * p); ++j) c[k * static_cast<size_t>(p * p) + j] /= std::max(count[k], 1.0);
  return {Tensor::from({K, p}, m), Tensor::from({K, p, p}, c)};
}

// Per class, the mean variance tr(S_k) / p: the shrinkage target's scale.
std::vector<double> mean_variance(const Tensor& cov) {
  const int64_t K = cov.size(0), p = cov.size(1);
  std::vector<double> out;
  for (int64_t k = 0; k < K; ++k) {
    double tr = 0.0;
    for (int64_t a = 0; a < p; ++a) tr += cov.at({k, a, a});
    out.push_back(tr / static_cast<double>(p));
  }
  return out;
}

// (1 - a) S_k + a (tr S_k / p) I.
Tensor shrink(const Tensor& cov, double a) {
  const int64_t K = cov.size(0), p = cov.size(1);
  const auto m = mean_variance(cov);
  std::vector<double> target(static_cast<size_t>(K * p * p), 0.0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t j = 0; j < p; ++j) target[static_cast<size_t>((k * p + j) * p + j)] = m[static_cast<size_t>(k)];
  NoGrad guard;
  return (1.0 - a) * cov + a * Tensor::from({K, p, p}, target);
}

// ---- classification ---------------------------------------------------------------------------

double accuracy(const dist::MultivariateNormal& model, const std::vector<double>& log_prior, const Tensor& X,
                const std::vector<int64_t>& y) {
  NoGrad guard;
  const int64_t K = static_cast<int64_t>(log_prior.size());
  Tensor score = model.log_prob(unsqueeze(X, 1)) + Tensor::from({K}, log_prior);  // [n, K]
  const auto s = score.data();
  int64_t correct = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    size_t best = 0;
    for (size_t k = 1; k < static_cast<size_t>(K); ++k)
      if (s[i * static_cast<size_t>(K) + k] > s[i * static_cast<size_t>(K) + best]) best = k;
    correct += static_cast<int64_t>(best) == y[i] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(y.size());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.data().size(); ++i) m = std::max(m, std::abs(a.data()[i] - b.data()[i]));
  return m;
}

// ---- gradient descent -------------------------------------------------------------------------

struct FitOptions {
  int steps = 3000;
  double lr = 0.05, lr_end = 2e-4;  // exponential decay from lr to lr_end
  double shrinkage = 0.0;           // a in [0, 1): fit (1 - a) S + a (tr S / p) I instead of S
};

struct Fit {
  Gaussians g;
  double loss = 0.0;
  double seconds = 0.0;
  double closed_form_loss = 0.0;  // fit_lbfgs: the closed-form optimum's loss, in whitened terms
};

// Each class's rows of X.
std::vector<Tensor> rows_by_class(const Tensor& X, const std::vector<int64_t>& y, int64_t K) {
  std::vector<Tensor> rows;
  for (int64_t k = 0; k < K; ++k) {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < X.size(0); ++i)
      if (y[static_cast<size_t>(i)] == k) idx.push_back(i);
    rows.push_back(index_select(X, 0, idx));
  }
  return rows;
}

// Minimises, for every class k at once,
//   (1 - a) * mean_i [-log N(x_i; mu_k, Sigma_k)]  +  a * [ 1/2 log det Sigma_k + m_k/2 tr Sigma_k^{-1} ]
// with m_k = tr(S_k) / p. Up to constants this is 1/2 log det Sigma + 1/2 tr(Sigma^{-1} T) with
// T = (1 - a) S_k + a m_k I (+ the mean term), whose minimiser is mu_k = class mean, Sigma_k = T:
// with a = 0 the ML estimate, with a > 0 exactly the shrunk closed form.
Fit fit(const Tensor& X, const std::vector<int64_t>& y, int64_t K, const FitOptions& o, Rng& rng) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = X.size(0), p = X.size(1);
  // Each class's training rows. The classes are looped over rather than batched as x [n, 1, p]
  // against a batch of K Gaussians: with one factor per call (no batch dimensions) log_prob is
  // one triangular solve over all rows, while a batched factor broadcast against many rows is
  // ~25x slower for d = 64 (its backward materialises one d x d gradient per row).
  const std::vector<Tensor> rows = rows_by_class(X, y, K);

  // Every class starts at N(m + noise, s^2 I): m and s^2 the mean and mean variance of all the
  // training rows together (0 and 1 when standardised), the noise from --seed.
  const Gaussians pooled = ml_estimates(X, std::vector<int64_t>(static_cast<size_t>(n), 0), 1);
  const double s0 = std::sqrt(mean_variance(pooled.cov)[0]);
  Tensor loc = (pooled.mean + 0.1 * s0 * Tensor::randn({K, p}, rng)).detach();
  Tensor v = tf::fill_scale_tril_inverse(expand(Tensor::eye(p) * s0, {K, p, p})).detach();
  loc.requires_grad(true);
  v.requires_grad(true);

  Tensor m, eye;
  if (o.shrinkage > 0.0) {
    m = Tensor::from({K}, mean_variance(ml_estimates(X, y, K).cov));
    eye = expand(Tensor::eye(p), {K, p, p}).detach();
  }
  optim::Adam opt({loc, v}, {.lr = o.lr});
  const double decay = std::pow(o.lr_end / o.lr, 1.0 / std::max(o.steps - 1, 1));
  Fit result;
  for (int step = 0; step < o.steps; ++step) {
    opt.options().lr = o.lr * std::pow(decay, step);
    Tensor L = tf::fill_scale_tril(v);
    std::vector<Tensor> per_class;
    for (int64_t k = 0; k < K; ++k) {
      auto model = dist::MultivariateNormal::from_scale_tril(select(loc, 0, k), select(L, 0, k));
      per_class.push_back(-mean(model.log_prob(rows[static_cast<size_t>(k)])));
    }
    Tensor nll = stack(per_class);  // [K]: each class's mean NLL
    Tensor loss_k = nll;
    if (o.shrinkage > 0.0) {
      Tensor Linv = linalg::trsm(L, eye);  // tr Sigma^{-1} = |L^{-1}|_F^2
      Tensor penalty = linalg::sumlogdiag(L) + 0.5 * m * sum(square(Linv), {1, 2});
      loss_k = (1.0 - o.shrinkage) * nll + o.shrinkage * penalty;
    }
    Tensor loss = sum(loss_k);
    opt.zero_grad();
    loss.backward();
    opt.step();
    result.loss = loss.item();
  }
  NoGrad guard;
  result.g.mean = loc.detach();
  result.g.cov = dist::MultivariateNormal::from_scale_tril(loc, tf::fill_scale_tril(v)).covariance().detach();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

// The same ML problem (shrinkage 0) by L-BFGS in whitened coordinates: with P the Cholesky
// factor of the pooled covariance of all training rows and m their mean, z = P^-1 (x - m), and
// class k is N(u_k, L_k L_k^T) in z (L_k = fill_scale_tril(v_k)), i.e. N(m + P u_k, P L_k L_k^T P^T)
// in x. Features that are near-functions of each other make every class covariance nearly
// singular (condition ~1e12), so in x the loss is a narrow valley that first-order steps crawl
// along; the same near-dependences are in the pooled covariance, so in z each class covariance
// is well conditioned and the problem is easy. The change of variables only shifts each class's
// mean NLL by log det P, so the optimum is the same ML estimate.
Fit fit_lbfgs(const Tensor& X, const std::vector<int64_t>& y, int64_t K, int max_iter, int* evaluations) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = X.size(0), p = X.size(1);
  const Gaussians pooled = ml_estimates(X, std::vector<int64_t>(static_cast<size_t>(n), 0), 1);
  const Tensor m = select(pooled.mean, 0, 0), P = linalg::potrf(select(pooled.cov, 0, 0));
  const Tensor Z = transpose(linalg::trsm(P, transpose(X - m)));  // rows z_i = P^-1 (x_i - m)
  const std::vector<Tensor> rows = rows_by_class(Z, y, K);
  Tensor u = Tensor::zeros({K, p}).requires_grad(true);
  Tensor v = tf::fill_scale_tril_inverse(expand(Tensor::eye(p), {K, p, p})).detach().requires_grad(true);
  optim::LBFGS opt({u, v}, {.max_iter = max_iter, .tolerance_grad = 1e-11, .tolerance_change = 1e-14,
                            .history_size = 20});
  auto loss_z = [&] {
    Tensor L = tf::fill_scale_tril(v);
    std::vector<Tensor> per_class;
    for (int64_t k = 0; k < K; ++k) {
      auto model = dist::MultivariateNormal::from_scale_tril(select(u, 0, k), select(L, 0, k));
      per_class.push_back(-mean(model.log_prob(rows[static_cast<size_t>(k)])));
    }
    return sum(stack(per_class));
  };
  opt.step([&] {
    opt.zero_grad();
    Tensor l = loss_z();
    l.backward();
    return l;
  });
  *evaluations = static_cast<int>(opt.evaluations());
  NoGrad guard;
  Fit result;
  result.loss = loss_z().item() + static_cast<double>(K) * linalg::sumlogdiag(P).item();
  result.g.mean = m + transpose(linalg::gemm2(P, transpose(u)));
  const Tensor PL = linalg::gemm2(expand(P, {K, p, p}), tf::fill_scale_tril(v));
  result.g.cov = linalg::syrk(PL);
  // At the ML estimate each class's mean NLL is (log det S_k + p (1 + log 2 pi)) / 2 exactly.
  // log det S_k = log det S_k^z + 2 log det P, with S_k^z the covariance of the whitened rows:
  // well conditioned, where Cholesky of S_k itself (condition ~1e12) loses ~eps * 1e12.
  const Tensor Sz = ml_estimates(Z, y, K).cov;
  result.closed_form_loss = sum(linalg::sumlogdiag(linalg::potrf(Sz))).item() +
                            static_cast<double>(K) * (linalg::sumlogdiag(P).item() +
                                                      0.5 * static_cast<double>(p) * (1 + std::log(2 * std::numbers::pi)));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

// ---- one data set -----------------------------------------------------------------------------

struct Settings {
  bool quick = false;
  int steps = 0;          // 0: the default for the mode
  double shrinkage = 0.1;
  double tol_mean = 1e-2, tol_cov = 2e-2;
  uint64_t seed = 0;
};

struct Outcome {
  bool ok = true;
  std::string summary;
};

// Per feature, the smallest and largest value among class k's rows.
std::vector<std::pair<double, double>> class_ranges(const Tensor& X, const std::vector<int64_t>& y, int64_t k) {
  const int64_t p = X.size(1);
  std::vector<std::pair<double, double>> r(static_cast<size_t>(p), {HUGE_VAL, -HUGE_VAL});
  for (int64_t i = 0; i < X.size(0); ++i)
    if (y[static_cast<size_t>(i)] == k)
      for (int64_t j = 0; j < p; ++j) {
        auto& [lo, hi] = r[static_cast<size_t>(j)];
        lo = std::min(lo, X.at({i, j}));
        hi = std::max(hi, X.at({i, j}));
      }
  return r;
}

std::string fmt_name(const std::vector<std::string>& names, int64_t j) {
  return j >= 0 && j < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(j)] : fmt::format("x{}", j);
}

// Explains a class whose ML covariance potrf rejected: the features that are constant in the
// class's training rows (`raw`: the rows in the file's units).
void explain_singular(const NotPositiveDefinite& e, const Tensor& raw, const std::vector<int64_t>& y,
                      const std::vector<std::string>& classes, const std::vector<std::string>& features) {
  const int64_t k = e.flat_batch_index(), minor = e.minor_order(), p = raw.size(1);
  fmt::print("  from_covariance(ML estimates) threw NotPositiveDefinite:\n    {}\n", e.what());
  fmt::print("  -> class {} ('{}'): flat_batch_index() = {}, minor_order() = {}\n", k,
             classes[static_cast<size_t>(k)], k, minor);
  const std::vector<std::pair<double, double>> range = class_ranges(raw, y, k);
  int64_t rows = 0;
  for (int64_t c : y) rows += c == k ? 1 : 0;
  std::vector<std::string> constant;
  for (int64_t j = 0; j < p; ++j)
    if (range[static_cast<size_t>(j)].first == range[static_cast<size_t>(j)].second)
      constant.push_back(fmt::format("{}={:g}", fmt_name(features, j), range[static_cast<size_t>(j)].first));
  const int64_t j = minor - 1;
  const auto [lo, hi] = range[static_cast<size_t>(j)];
  if (lo == hi)
    fmt::print("  why: the minor of order {} ends at feature {} ({}), which is {:g} in all {} training rows of\n"
               "       class '{}': zero variance, so the covariance is exactly singular\n",
               minor, j, fmt_name(features, j), lo, rows, classes[static_cast<size_t>(k)]);
  else if (rows <= p)
    fmt::print("  why: class '{}' has {} training rows for {} features, so its covariance has rank at most\n"
               "       {}: feature {} ({}) is a linear combination of the features before it in this class\n",
               classes[static_cast<size_t>(k)], rows, p, rows - 1, j, fmt_name(features, j));
  else
    fmt::print("  why: feature {} ({}) varies ({:g}..{:g}) but is (numerically) a linear combination of\n"
               "       the features before it within class '{}'\n",
               j, fmt_name(features, j), lo, hi, classes[static_cast<size_t>(k)]);
  std::string list;
  for (size_t i = 0; i < constant.size(); ++i) list += (i ? ", " : "") + constant[i];
  fmt::print("  constant features in class '{}' ({} of {}): {}\n", classes[static_cast<size_t>(k)],
             constant.size(), p, list.empty() ? "none" : list);
}

Outcome run_dataset(const examples::LabelledData& data, const std::string& name, Scaling scaling,
                    double min_accuracy, const Settings& st, bool require_adam = true) {
  Outcome out;
  const int64_t K = data.classes(), p = data.dim();
  std::vector<std::string> features = data.feature_names;
  fmt::print("== {}{}: {} rows, {} features, {} classes [", name, name == data.path ? "" : " (" + data.path + ")",
             data.rows(), p, K);
  for (size_t k = 0; k < data.class_names.size(); ++k) fmt::print("{}{}", k ? ", " : "", data.class_names[k]);
  fmt::print("]\n");
  for (const auto& s : data.skipped) fmt::print("  skipped {}\n", s);
  if (!data.skipped.empty()) fmt::print("  {} rows with missing values skipped\n", data.skipped.size());
  for (const auto& s : data.notes) fmt::print("  note: {}\n", s);

  Split split = split_rows(data.X, data.y);
  const ClassStats stats = class_stats(split.ytrain, K);
  fmt::print("  split: {} train / {} test (every 4th row to test); features {}\n", split.ytrain.size(),
             split.ytest.size(),
             scaling == Scaling::PerFeature ? "standardised with the training mean and sd"
             : scaling == Scaling::Pooled  ? "divided by one pooled training sd (not centred)"
                                           : "in their own units");
  for (int64_t k = 0; k < K; ++k)
    if (stats.count[static_cast<size_t>(k)] == 0) {
      fmt::print("  class '{}' has no training rows: cannot fit\n", data.class_names[static_cast<size_t>(k)]);
      out.ok = false;
      out.summary = fmt::format("{}: class without training rows", name);
      return out;
    }
  const Tensor raw_train = split.train;
  standardise(split, scaling);

  const Gaussians ml = ml_estimates(split.train, split.ytrain, K);
  bool singular = false;
  std::optional<dist::MultivariateNormal> ml_model;
  try {
    ml_model = dist::MultivariateNormal::from_covariance(ml.mean, ml.cov);
  } catch (const NotPositiveDefinite& e) {
    singular = true;
    explain_singular(e, raw_train, split.ytrain, data.class_names, features);
    // Which classes fail at all: the Mask policy factorises every element and reports.
    auto masked = dist::MultivariateNormal::from_covariance(ml.mean, ml.cov, {.on_failure = dist::Mask{}});
    std::string failed;
    for (int64_t k : masked.report().failed) {
      int64_t constants = 0;
      for (const auto& [lo, hi] : class_ranges(raw_train, split.ytrain, k)) constants += lo == hi ? 1 : 0;
      failed += fmt::format("{}{} ({} constant)", failed.empty() ? "" : ", ", data.class_names[static_cast<size_t>(k)], constants);
    }
    fmt::print("  under the Mask policy: {}\n  failing classes: {}\n", masked.report().summary(), failed);
  }

  const int default_steps = singular ? (st.quick ? 150 : 1500) : (st.quick ? 400 : 3000);
  FitOptions fo{.steps = st.steps > 0 ? st.steps : default_steps};
  Rng rng(st.seed);
  if (!singular) {
    const double acc_ml = accuracy(*ml_model, stats.log_prior, split.test, split.ytest);
    const Fit f = fit(split.train, split.ytrain, K, fo, rng);
    const double dm = max_abs_diff(f.g.mean, ml.mean), dc = max_abs_diff(f.g.cov, ml.cov);
    const double acc = accuracy(dist::MultivariateNormal::from_covariance(f.g.mean, f.g.cov), stats.log_prior,
                                split.test, split.ytest);
    double nll_ml = 0.0;
    {
      NoGrad guard;
      // The same objective at the closed form: sum over classes of the mean NLL.
      Tensor lp = ml_model->log_prob(unsqueeze(split.train, 1));  // [n, K]
      for (size_t i = 0; i < split.ytrain.size(); ++i) {
        const int64_t k = split.ytrain[i];
        nll_ml -= lp.at({static_cast<int64_t>(i), k}) / static_cast<double>(stats.count[static_cast<size_t>(k)]);
      }
    }
    fmt::print("  gradient descent: {} Adam steps (lr 0.05 -> 2e-4) in {:.2f} s, loss {:.6f} (closed form {:.6f})\n",
               fo.steps, f.seconds, f.loss, nll_ml);
    fmt::print("  vs closed-form ML: max |mean diff| {:.2e} (tol {:g}), max |cov diff| {:.2e} (tol {:g})\n", dm,
               st.tol_mean, dc, st.tol_cov);
    fmt::print("  test accuracy: gradient descent {:.3f}, closed-form QDA {:.3f} (need >= {:.2f})\n", acc, acc_ml,
               min_accuracy);
    int evaluations = 0;
    const Fit q = fit_lbfgs(split.train, split.ytrain, K, st.quick ? 300 : 1000, &evaluations);
    const double gap = std::abs(q.loss - q.closed_form_loss) / std::max(std::abs(q.closed_form_loss), 1e-300);
    const double acc_q = accuracy(dist::MultivariateNormal::from_covariance(q.g.mean, q.g.cov), stats.log_prior,
                                  split.test, split.ytest);
    fmt::print("  L-BFGS in whitened coordinates: {} evaluations in {:.2f} s, loss {:.9f}; closed form {:.9f}\n"
               "    evaluated in the same coordinates ({:.9f} through Cholesky of S_k): relative gap {:.1e}\n"
               "    (need <= 1e-6); test accuracy {:.3f}\n",
               evaluations, q.seconds, q.loss, q.closed_form_loss, nll_ml, gap, acc_q);
    const bool lbfgs_ok = gap <= 1e-6 && acc_q >= min_accuracy;
    if (!lbfgs_ok) fmt::print("  L-BFGS fell short of the closed form\n");
    // Adam is held to the closed form only where it gets there (not on near-singular covariances).
    const bool adam_ok = dm <= st.tol_mean && dc <= st.tol_cov && acc >= min_accuracy;
    const bool ok = lbfgs_ok && (adam_ok || !require_adam);
    out.ok = ok;
    out.summary = fmt::format("{}: Adam mean diff {:.1e}, cov diff {:.1e}, accuracy {:.3f}{}; L-BFGS NLL gap {:.1e}, "
                              "accuracy {:.3f}{}",
                              name, dm, dc, acc, require_adam ? "" : " (not checked)", gap, acc_q,
                              ok ? "" : "  <- FAILED");
    return out;
  }

  // Singular: shrink towards a multiple of I, then fit the same by gradient descent.
  const double a = st.shrinkage;
  const Tensor shrunk = shrink(ml.cov, a);
  const auto closed = dist::MultivariateNormal::from_covariance(ml.mean, shrunk);
  const double acc_closed = accuracy(closed, stats.log_prior, split.test, split.ytest);
  fmt::print("  shrinkage a = {:g}: Sigma_k = (1-a) S_k + a tr(S_k)/p I; closed-form QDA test accuracy {:.3f}\n", a,
             acc_closed);
  const auto jittered = dist::MultivariateNormal::from_covariance(ml.mean, ml.cov, {.on_failure = dist::Jitter{}});
  fmt::print("  for comparison, the Jitter policy instead: {}; test accuracy {:.3f}\n", jittered.report().summary(),
             accuracy(jittered, stats.log_prior, split.test, split.ytest));
  fo.shrinkage = a;
  const Fit f = fit(split.train, split.ytrain, K, fo, rng);
  const double dm = max_abs_diff(f.g.mean, ml.mean), dc = max_abs_diff(f.g.cov, shrunk);
  double scale = 0.0;
  for (double x : shrunk.data()) scale = std::max(scale, std::abs(x));
  const double acc = accuracy(dist::MultivariateNormal::from_covariance(f.g.mean, f.g.cov), stats.log_prior,
                              split.test, split.ytest);
  fmt::print("  gradient descent on NLL + shrinkage penalty: {} Adam steps in {:.2f} s\n", fo.steps, f.seconds);
  fmt::print("  vs shrunk closed form: max |mean diff| {:.2e} (tol {:g}), max |cov diff| {:.2e} (tol {:g}; largest "
             "|Sigma| entry {:.3g}){}\n",
             dm, st.tol_mean, dc, st.tol_cov, scale, st.quick ? " - not checked with --quick" : "");
  fmt::print("  test accuracy: gradient descent {:.3f}, closed form {:.3f} (need >= {:.2f})\n", acc, acc_closed,
             min_accuracy);
  // The match is part of the criterion in the full run only: --quick's 150 steps classify as
  // well but stop short of the optimum in 64-D.
  const bool match = dm <= st.tol_mean && dc <= st.tol_cov;
  out.ok = acc >= min_accuracy && (st.quick || match);
  out.summary = fmt::format("{}: singular covariance detected; shrinkage {:g}: mean diff {:.1e}, cov diff {:.1e}{}, "
                            "accuracy {:.3f}{}",
                            name, a, dm, dc, st.quick ? " (not checked with --quick)" : "", acc,
                            out.ok ? "" : "  <- FAILED");
  return out;
}

int run(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "qda: class-conditional Gaussians (quadratic discriminant analysis) fitted by gradient descent\n"
      "on the negative log-likelihood, compared with the closed-form maximum-likelihood estimates.\n"
      "Runs iris, wine and penguins (rows with NA are reported and skipped), then digits, whose\n"
      "class covariances are exactly singular: it reports which class failed and why, then fits\n"
      "with shrinkage Sigma_k = (1-a) S_k + a tr(S_k)/p I. Features are standardised with the\n"
      "training mean/sd (digits: all pixels divided by one pooled sd, not centred). Test set:\n"
      "every 4th row (fixed). --seed sets the initial parameters only.\n"
      "\n"
      "Then 'correlated', generated: 30 features of which 10 are near-linear functions of others\n"
      "(class covariances with condition ~1e12), where Adam stalls (reported, not checked). Every\n"
      "non-singular data set is also fitted by L-BFGS in coordinates whitened by the pooled covariance.\n"
      "\n"
      "--check passes when, for iris, wine and penguins, the gradient-descent means are within 1e-2\n"
      "and the covariances within 2e-2 (max abs difference, standardised units) of the closed-form\n"
      "ML estimates and the test accuracy is >= 0.85; for every non-singular data set (correlated\n"
      "included) the L-BFGS NLL is within 1e-6 (relative) of the closed form's, evaluated in the same\n"
      "whitened coordinates, with test accuracy >= 0.85; and, for digits, the singular covariance is\n"
      "detected (NotPositiveDefinite caught) and the gradient-descent fit with shrinkage reaches test\n"
      "accuracy >= 0.80 and matches the shrunk closed form within the same 1e-2 / 2e-2.\n"
      "With --quick (400 Adam steps, 150 for digits) the tolerances are 5e-2 (means) and 1e-1\n"
      "(covariances), and digits' match to the shrunk closed form is printed but not checked.\n"
      "With --data, the same criterion for that file (accuracy >= --min-accuracy, default 0.85; a\n"
      "file with a singular class covariance is judged as digits is).\n"
      "\n"
      "options:\n"
      "  --data F          run on F instead (same CSV layouts: sklearn 'n,p,names' first line,\n"
      "                    headerless numeric with the label last, or a header line)\n"
      "  --label NAME      label column of a file with a header (default: label/class/species/\n"
      "                    target/y, else the last column); may be text\n"
      "  --features A,B    feature columns (default: every numeric column but the label)\n"
      "  --standardise S   scaling of --data's features: feature (each by its sd, the default),\n"
      "                    pooled (one sd for all, as for digits) or none\n"
      "  --min-accuracy X  accuracy required for --data (default 0.85)\n"
      "  --shrinkage A     shrinkage for singular covariances, in (0, 1) (default 0.1)\n"
      "  --steps N         Adam steps (default 3000, or 1500 with shrinkage; --quick 400 / 150)",
      0, {"data", "label", "features", "standardise", "min-accuracy", "shrinkage", "steps"});
  Settings st;
  st.quick = cli.quick;
  st.seed = cli.seed;
  st.steps = std::atoi(cli.get("steps", "0").c_str());
  st.shrinkage = std::atof(cli.get("shrinkage", "0.1").c_str());
  if (!(st.shrinkage > 0.0 && st.shrinkage < 1.0)) {
    fmt::print(stderr, "--shrinkage must be in (0, 1)\n");
    return 2;
  }
  if (cli.quick) {
    st.tol_mean = 5e-2;
    st.tol_cov = 1e-1;
  }
  std::vector<Outcome> outcomes;
  if (!cli.get("data").empty()) {
    examples::LabelledOptions o{.label = cli.get("label"), .features = examples::split_list(cli.get("features"))};
    const auto data = examples::read_labelled_csv(cli.get("data"), o);
    const std::string how = cli.get("standardise", "feature");
    if (how != "feature" && how != "pooled" && how != "none") {
      fmt::print(stderr, "--standardise takes feature, pooled or none\n");
      return 2;
    }
    outcomes.push_back(run_dataset(data, cli.get("data"),
                                   how == "feature" ? Scaling::PerFeature : how == "pooled" ? Scaling::Pooled : Scaling::None,
                                   std::atof(cli.get("min-accuracy", "0.85").c_str()), st));
  } else {
    for (const Dataset& d : builtin_datasets()) {
      auto data = d.generated ? correlated_data()
                              : examples::read_labelled_csv(std::string(CHOLLA_EXAMPLES_DATA) + "/" + d.file, d.options);
      if (!d.feature_names.empty() && d.feature_names.size() == data.feature_names.size())
        data.feature_names = d.feature_names;
      const Outcome o = run_dataset(data, d.name, d.scaling, d.min_accuracy, st, !d.generated);
      if (d.name == "digits" && o.summary.find("singular") == std::string::npos) {
        outcomes.push_back({false, "digits: the singular covariance was NOT detected  <- FAILED"});
      }
      outcomes.push_back(o);
    }
  }
  fmt::print("summary:\n");
  bool ok = true;
  for (const auto& o : outcomes) {
    fmt::print("  {}\n", o.summary);
    ok = ok && o.ok;
  }
  const std::string tolerances = cli.quick ? "5e-2/1e-1 (quick)" : "1e-2/2e-2";
  const std::string criterion =
      !cli.get("data").empty()
          ? fmt::format("GD matches the closed form within {}{}, L-BFGS NLL within 1e-6 when not singular, "
                        "accuracy >= {}",
                        tolerances,
                        cli.quick ? " when not singular" : "", cli.get("min-accuracy", "0.85"))
          : fmt::format("GD matches closed-form ML within {}, accuracy >= 0.85; L-BFGS NLL within 1e-6 of "
                        "the closed form (correlated included); digits singular detected, "
                        "accuracy >= 0.80 with shrinkage{}",
                        tolerances, cli.quick ? "" : ", GD matches the shrunk closed form");
  return examples::verdict(cli, ok, criterion);
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
