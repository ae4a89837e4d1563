// kl_divergence between any two Gaussian forms: against the dense closed form (general LU
// inverse and slogdet, a different route from the forms' own solves), Monte Carlo, KL(p, p) = 0,
// broadcasting, and gradients of the mixed pairs.
#include <cmath>
#include <string>
#include <variant>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
using dist::LowRankMultivariateNormal;
using dist::MultivariateNormal;

namespace {

// One Gaussian of every form, with dense mean and covariance kept as the reference.
struct Any {
  std::string name;
  Tensor loc, cov;
  std::variant<MultivariateNormal, LowRankMultivariateNormal> dist;
};

std::vector<Any> every_form(int64_t d, uint64_t seed) {
  Tensor loc = test::uniform({2, d}, -1, 1, seed);
  Tensor S = test::spd({2}, d, seed + 1);
  Tensor W = test::uniform({2, d, 2}, -1, 1, seed + 2);
  Tensor D = test::uniform({2, d}, 0.4, 1.4, seed + 3);
  Tensor s = test::uniform({2, d}, 0.5, 1.5, seed + 4);
  Tensor low_cov = linalg::gemm2(W, W, {.transpose_b = true}) + linalg::makediag(D);
  return {
      {"scale_tril", loc, S, MultivariateNormal::from_scale_tril(loc, linalg::potrf(S))},
      {"precision_tril", loc, S, MultivariateNormal::from_precision_tril(loc, linalg::potrf(linalg::inverse(S)))},
      {"covariance", loc, S, MultivariateNormal::from_covariance(loc, S)},
      {"precision", loc, S, MultivariateNormal::from_precision(loc, linalg::inverse(S))},
      {"scale_diag", loc, linalg::makediag(square(s)), MultivariateNormal::from_scale_diag(loc, s)},
      {"low_rank", loc, low_cov, LowRankMultivariateNormal(loc, W, D)},
  };
}

Tensor kl_of(const Any& p, const Any& q) {
  return std::visit([](const auto& a, const auto& b) { return dist::kl_divergence(a, b); }, p.dist, q.dist);
}

// 1/2 [tr(Sq^{-1} Sp) + dm^T Sq^{-1} dm - d + log det Sq - log det Sp] with LU-based inverse and slogdet.
Tensor dense_kl(const Tensor& mp, const Tensor& Sp, const Tensor& mq, const Tensor& Sq) {
  Tensor Qinv = linalg::inverse(Sq);
  Tensor dm = unsqueeze(mq - mp, -1);
  Tensor trace = sum(linalg::extractdiag(linalg::gemm2(Qinv, Sp)), {-1});
  Tensor maha = sum(dm * linalg::gemm2(Qinv, dm), {-2, -1});
  Tensor logdet = linalg::slogdet(Sq).second - linalg::slogdet(Sp).second;
  return 0.5 * (trace + maha - static_cast<double>(Sp.size(-1)) + logdet);
}

}  // namespace

TEST_CASE("kl_divergence: all 36 pairs of forms equal the dense closed form") {
  const auto ps = every_form(4, 100), qs = every_form(4, 200);
  for (const Any& p : ps)
    for (const Any& q : qs) {
      CAPTURE(p.name);
      CAPTURE(q.name);
      Tensor kl = kl_of(p, q);
      CHECK(kl.shape() == Shape{2});
      test::check_close(kl, dense_kl(p.loc, p.cov, q.loc, q.cov), 1e-10);
      test::check_close(kl_of(p, p), Tensor::zeros({2}), 1e-11);
    }
}

TEST_CASE("kl_divergence: low rank against diagonal agrees with Monte Carlo E_p[log p - log q]") {
  LowRankMultivariateNormal p(Tensor::from({3}, {0.5, 0.0, -0.5}), Tensor::from({3, 1}, {0.8, -0.4, 0.6}),
                              Tensor::from({3}, {0.3, 0.5, 0.4}));
  auto q = MultivariateNormal::from_scale_diag(Tensor::zeros({3}), Tensor::from({3}, {1.0, 0.7, 1.3}));
  Rng rng(3);
  const int64_t n = 100000;
  Tensor x = p.sample(rng, n);
  Tensor ratio = p.log_prob(x) - q.log_prob(x);
  const double mc = mean(ratio).item();
  const double sd = std::sqrt(mean(square(ratio - mc)).item());
  CHECK(std::abs(dist::kl_divergence(p, q).item() - mc) < 5 * sd / std::sqrt(static_cast<double>(n)));
}

TEST_CASE("kl_divergence: batches broadcast, dimensions must agree") {
  auto p = MultivariateNormal::from_scale_diag(test::uniform({3, 2}, -1, 1, 1), Tensor::ones({2}));
  LowRankMultivariateNormal q(Tensor::zeros({2}), Tensor::ones({2, 1}), Tensor::ones({2}));
  CHECK(dist::kl_divergence(p, q).shape() == Shape{3});
  CHECK(dist::kl_divergence(q, p).shape() == Shape{3});
  CHECK(dist::kl_divergence(q, q).shape() == Shape{});
  auto three = MultivariateNormal::from_scale_diag(Tensor::zeros({3}), Tensor::ones({3}));
  CHECK_THROWS_WITH_AS(dist::kl_divergence(three, q), doctest::Contains("p has dimension 3 but q has dimension 2"),
                       ShapeError);
  CHECK_THROWS_AS(dist::kl_divergence(three, p), ShapeError);
}

TEST_CASE("kl_divergence: gradcheck and gradgradcheck of the mixed pairs") {
  Tensor loc = test::uniform({2, 3}, -1, 1, 31), loc2 = test::uniform({3}, -1, 1, 32);
  Tensor W = test::uniform({2, 3, 2}, -1, 1, 33), D = test::uniform({2, 3}, 0.5, 1.5, 34);
  Tensor W2 = test::uniform({3, 1}, -1, 1, 35), D2 = test::uniform({3}, 0.5, 1.5, 36);
  Tensor L = test::triangular({}, 3, true, 37), s = test::uniform({3}, 0.5, 1.5, 38);
  const GradcheckOptions lower{.structure = {Structure::General, Structure::General, Structure::General,
                                             Structure::General, Structure::LowerTriangular}};
  auto low = [](const Tensor& m, const Tensor& w, const Tensor& d) { return LowRankMultivariateNormal(m, w, d); };
  test::check_gradients([&](const std::vector<Tensor>& v) {
    return dist::kl_divergence(low(v[0], v[1], v[2]), low(v[3], W2, v[4]));
  }, {loc, W, D, loc2, D2});
  test::check_gradients([&](const std::vector<Tensor>& v) {
    return dist::kl_divergence(low(v[0], v[1], v[2]), MultivariateNormal::from_scale_tril(v[3], v[4]));
  }, {loc, W, D, loc2, L}, lower);
  test::check_gradients([&](const std::vector<Tensor>& v) {
    return dist::kl_divergence(MultivariateNormal::from_precision_tril(v[3], v[4]), low(v[0], v[1], v[2]));
  }, {loc, W, D, loc2, L}, lower);
  test::check_gradients([&](const std::vector<Tensor>& v) {
    return dist::kl_divergence(MultivariateNormal::from_scale_diag(v[0], v[1]), MultivariateNormal::from_precision_tril(v[2], v[3]));
  }, {loc2, s, loc2, L}, {.structure = {Structure::General, Structure::General, Structure::General, Structure::LowerTriangular}});
  test::check_gradients([&](const std::vector<Tensor>& v) {
    return dist::kl_divergence(MultivariateNormal::from_scale_diag(v[0], v[1]), low(v[2], W2, v[3]));
  }, {loc, D, loc2, D2});
}
