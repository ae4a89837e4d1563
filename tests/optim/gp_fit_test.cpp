// LBFGS fits the hyperparameters of a Gaussian process (RBF kernel plus noise, exact log
// marginal likelihood through potrf / trsm / sumlogdiag) in tens of evaluations.
//
// The reference optimum is computed independently of autodiff: the signal variance has a
// closed-form optimum given the other two (sf2 = y' (R + r I)^-1 y / n with r = sn2 / sf2), so
// the likelihood is profiled to two dimensions, evaluated with a plain Cholesky written here,
// located on a grid and polished by Newton's method on finite differences.
#include <cmath>
#include <numbers>

#include "../autodiff/helpers.hpp"

using namespace cholla;

namespace {

constexpr int64_t kN = 40;

struct Data {
  std::vector<double> x, y;
};

// y = sin(1.3 x) + 0.4 cos(3 x) + noise of sd 0.1, x uniform on [-3, 3].
Data make_data() {
  Rng rng(12);
  Data d;
  d.x = Tensor::uniform({kN}, -3, 3, rng).to_vector();
  const auto noise = Tensor::randn({kN}, rng).to_vector();
  for (int64_t i = 0; i < kN; ++i) {
    const double x = d.x[static_cast<size_t>(i)];
    d.y.push_back(std::sin(1.3 * x) + 0.4 * std::cos(3 * x) + 0.1 * noise[static_cast<size_t>(i)]);
  }
  return d;
}

// Profiled negative log marginal likelihood at log lengthscale u and log noise ratio v, with
// the optimal signal variance; also returns that variance.
double profiled_nll(const Data& d, double u, double v, double* sf2 = nullptr) {
  const size_t n = d.x.size();
  const double ell2 = std::exp(2 * u), ratio = std::exp(v);
  std::vector<double> L(n * n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j <= i; ++j) {
      const double r = d.x[i] - d.x[j];
      L[i * n + j] = std::exp(-0.5 * r * r / ell2) + (i == j ? ratio : 0.0);
    }
  for (size_t j = 0; j < n; ++j) {  // in-place Cholesky, lower triangle
    for (size_t k = 0; k < j; ++k) L[j * n + j] -= L[j * n + k] * L[j * n + k];
    if (!(L[j * n + j] > 0)) return INFINITY;
    L[j * n + j] = std::sqrt(L[j * n + j]);
    for (size_t i = j + 1; i < n; ++i) {
      for (size_t k = 0; k < j; ++k) L[i * n + j] -= L[i * n + k] * L[j * n + k];
      L[i * n + j] /= L[j * n + j];
    }
  }
  double q = 0, logdet_half = 0;
  std::vector<double> z(n);
  for (size_t i = 0; i < n; ++i) {  // z = L^-1 y
    double s = d.y[i];
    for (size_t k = 0; k < i; ++k) s -= L[i * n + k] * z[k];
    z[i] = s / L[i * n + i];
    q += z[i] * z[i];
    logdet_half += std::log(L[i * n + i]);
  }
  const double nd = static_cast<double>(n), var = q / nd;
  if (sf2 != nullptr) *sf2 = var;
  return 0.5 * nd * std::log(var) + 0.5 * nd + logdet_half + 0.5 * nd * std::log(2 * std::numbers::pi);
}

struct Reference {
  double log_ell, log_sf, log_sn, nll;
};

Reference reference_optimum(const Data& d) {
  double u = 0, v = 0, best = INFINITY;
  for (int i = 0; i <= 60; ++i)
    for (int j = 0; j <= 70; ++j) {
      const double gu = -3 + 0.1 * i, gv = -12 + 0.2 * j, f = profiled_nll(d, gu, gv);
      if (f < best) best = f, u = gu, v = gv;
    }
  const double h = 1e-4;
  auto f = [&](double a, double b) { return profiled_nll(d, a, b); };
  for (int it = 0; it < 30; ++it) {
    const double fu = (f(u + h, v) - f(u - h, v)) / (2 * h), fv = (f(u, v + h) - f(u, v - h)) / (2 * h);
    const double f0 = f(u, v);
    const double fuu = (f(u + h, v) - 2 * f0 + f(u - h, v)) / (h * h);
    const double fvv = (f(u, v + h) - 2 * f0 + f(u, v - h)) / (h * h);
    const double fuv = (f(u + h, v + h) - f(u + h, v - h) - f(u - h, v + h) + f(u - h, v - h)) / (4 * h * h);
    const double det = fuu * fvv - fuv * fuv;
    REQUIRE(det > 0);  // a minimum, not a saddle
    u -= (fvv * fu - fuv * fv) / det;
    v -= (fuu * fv - fuv * fu) / det;
  }
  double sf2 = 0;
  const double nll = profiled_nll(d, u, v, &sf2);
  return {u, 0.5 * std::log(sf2), 0.5 * (v + std::log(sf2)), nll};
}

}  // namespace

TEST_CASE("lbfgs: Gaussian-process hyperparameters in tens of evaluations, at the reference optimum") {
  const Data d = make_data();
  const Reference ref = reference_optimum(d);
  // The optimum is interior and plausible: noise near the 0.1 that generated the data.
  CHECK(std::exp(ref.log_sn) == doctest::Approx(0.1).epsilon(0.5));

  std::vector<double> d2(static_cast<size_t>(kN * kN));
  for (int64_t i = 0; i < kN; ++i)
    for (int64_t j = 0; j < kN; ++j) {
      const double r = d.x[static_cast<size_t>(i)] - d.x[static_cast<size_t>(j)];
      d2[static_cast<size_t>(i * kN + j)] = r * r;
    }
  const Tensor D2 = Tensor::from({kN, kN}, d2), Y = Tensor::from({kN, 1}, d.y);
  const Tensor I = Tensor::eye(kN);
  Tensor log_ell = Tensor::from({1}, {0.0}).requires_grad(true);
  Tensor log_sf = Tensor::from({1}, {0.0}).requires_grad(true);
  Tensor log_sn = Tensor::from({1}, {std::log(0.5)}).requires_grad(true);
  auto nll = [&] {
    Tensor K = exp(2.0 * log_sf) * exp(-0.5 * D2 * exp(-2.0 * log_ell)) + exp(2.0 * log_sn) * I;
    Tensor L = linalg::potrf(K);
    Tensor alpha = linalg::trsm(L, Y);
    return 0.5 * sum(square(alpha)) + linalg::sumlogdiag(L) +
           0.5 * static_cast<double>(kN) * std::log(2 * std::numbers::pi);
  };
  optim::LBFGS opt({log_ell, log_sf, log_sn}, {.max_iter = 100, .tolerance_grad = 1e-10, .tolerance_change = 1e-14});
  opt.step([&] {
    opt.zero_grad();
    Tensor l = nll();
    l.backward();
    return l;
  });
  MESSAGE("GP fit: ", opt.evaluations(), " evaluations, ", opt.iterations(), " iterations");
  CHECK(opt.evaluations() <= 40);  // 18 when written
  NoGrad guard;
  CHECK(nll().item() == doctest::Approx(ref.nll).epsilon(1e-12));
  CHECK(log_ell.item() == doctest::Approx(ref.log_ell).epsilon(1e-7));
  CHECK(log_sf.item() == doctest::Approx(ref.log_sf).epsilon(1e-7));
  CHECK(log_sn.item() == doctest::Approx(ref.log_sn).epsilon(1e-7));
}
