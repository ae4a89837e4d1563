// The gradient w.r.t. a scale_tril or precision_tril is lower triangular wherever the factor is
// used (issue 9, item 7): an optimiser stepping a plain [d, d] leaf must keep it triangular.
#include <functional>
#include <string>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
using dist::MultivariateNormal;

namespace {

using Build = std::function<MultivariateNormal(const Tensor&, const Tensor&)>;

MultivariateNormal by_scale(const Tensor& loc, const Tensor& F) { return MultivariateNormal::from_scale_tril(loc, F); }
MultivariateNormal by_precision(const Tensor& loc, const Tensor& F) {
  return MultivariateNormal::from_precision_tril(loc, F);
}

// Every use of the factor, as a scalar-or-tensor function of the distribution.
std::vector<std::pair<std::string, std::function<Tensor(const MultivariateNormal&)>>> uses(int64_t d) {
  Tensor x = test::uniform({5, 2, d}, -1.5, 1.5, 77);
  auto other = MultivariateNormal::from_covariance(test::uniform({d}, -0.5, 0.5, 78), test::spd({}, d, 79));
  return {
      {"log_prob", [x](const MultivariateNormal& m) { return m.log_prob(x); }},
      {"rsample",
       [](const MultivariateNormal& m) {
         Rng rng(9);  // the same noise at every evaluation: a deterministic function of the factor
         return m.rsample(rng, 3);
       }},
      {"entropy", [](const MultivariateNormal& m) { return m.entropy(); }},
      {"covariance", [](const MultivariateNormal& m) { return m.covariance(); }},
      {"precision", [](const MultivariateNormal& m) { return m.precision(); }},
      {"scale_tril", [](const MultivariateNormal& m) { return m.scale_tril(); }},
      {"kl_divergence(m, other)", [other](const MultivariateNormal& m) { return dist::kl_divergence(m, other); }},
      {"kl_divergence(other, m)", [other](const MultivariateNormal& m) { return dist::kl_divergence(other, m); }},
  };
}

void check_strict_upper_zero(const Tensor& g) {
  const int64_t d = g.size(-1);
  for (int64_t i = 0; i < g.numel(); ++i) {
    const int64_t row = (i / d) % d, col = i % d;
    if (col > row) CHECK_MESSAGE(g.data()[static_cast<size_t>(i)] == 0.0, "entry ", i, " above the diagonal");
  }
}

}  // namespace

TEST_CASE("triangular factors: every method's gradient is lower triangular and correct") {
  for (int64_t d : {3, 10}) {  // fused and composed log-density
    for (const auto& factor : {std::pair<std::string, Build>{"scale_tril", by_scale}, {"precision_tril", by_precision}}) {
      const std::string& kind = factor.first;  // named, not bound: clang 14 lambdas cannot capture bindings
      const Build& build = factor.second;
      for (const auto& u : uses(d)) {
        const auto& name = u.first;
        const auto& use = u.second;
        CAPTURE(d);
        CAPTURE(kind);
        CAPTURE(name);
        Tensor loc = test::uniform({2, d}, -0.5, 0.5, 11);
        Tensor F = test::triangular({2}, d, true, 12);
        auto f = [&, build = build, use = use](const std::vector<Tensor>& in) { return use(build(in[0], in[1])); };
        Tensor Fl = F.detach().requires_grad(true);
        Tensor out = f({loc, Fl});
        Tensor weights = test::uniform(out.shape(), 0.5, 1.5, 13);
        auto g = grad({sum(out * weights)}, {Fl});
        REQUIRE(g[0].defined());
        check_strict_upper_zero(g[0]);
        if (d == 3)  // finite differences on the lower triangle, both orders
          test::check_gradients(f, {loc, F}, {.structure = {Structure::General, Structure::LowerTriangular}});
      }
    }
  }
}

TEST_CASE("issue scenario: minimising KL with a plain [d, d] leaf under Adam keeps it triangular") {
  const int64_t d = 3;
  Tensor S = test::spd({}, d, 21);
  Tensor mu = Tensor::from({d}, {0.5, -1.0, 2.0});
  auto p = MultivariateNormal::from_covariance(mu, S);
  for (int direction = 0; direction < 2; ++direction) {  // KL(q || p) and KL(p || q)
    for (bool precision : {false, true}) {
      CAPTURE(direction);
      CAPTURE(precision);
      Tensor loc = Tensor::zeros({d}).requires_grad(true);
      Tensor L = Tensor::eye(d).requires_grad(true);  // a plain leaf, not a transform's output
      optim::Adam opt({loc, L}, {.lr = 0.05});
      double kl = 0.0;
      for (int step = 0; step < 600; ++step) {
        // Validation stays on: a non-triangular step would throw here.
        auto q = precision ? MultivariateNormal::from_precision_tril(loc, L) : MultivariateNormal::from_scale_tril(loc, L);
        Tensor loss = direction == 0 ? dist::kl_divergence(q, p) : dist::kl_divergence(p, q);
        kl = loss.item();
        REQUIRE(kl >= -1e-12);
        opt.zero_grad();
        loss.backward();
        opt.step();
      }
      CHECK(kl < 1e-6);
      check_strict_upper_zero(L);
      // At the optimum q = p: its covariance is S, its mean mu.
      auto q = precision ? MultivariateNormal::from_precision_tril(loc, L) : MultivariateNormal::from_scale_tril(loc, L);
      test::check_close(q.covariance(), S, 1e-3);
      test::check_close(q.mean(), mu, 1e-3);
    }
  }
}

TEST_CASE("triangular factors: second derivatives (Hessian-vector products) stay lower triangular") {
  for (int64_t d : {3, 10}) {
    for (const auto& factor : {std::pair<std::string, Build>{"scale_tril", by_scale}, {"precision_tril", by_precision}}) {
      const std::string& kind = factor.first;  // named, not bound: clang 14 lambdas cannot capture bindings
      const Build& build = factor.second;
      CAPTURE(d);
      CAPTURE(kind);
      Tensor loc = test::uniform({2, d}, -0.5, 0.5, 41);
      Tensor F = test::triangular({2}, d, true, 42).requires_grad(true);
      Tensor x = test::uniform({5, 2, d}, -1.5, 1.5, 43);
      auto g = grad({sum(build(loc, F).log_prob(x))}, {F}, {.create_graph = true});
      Tensor v = linalg::tril(test::uniform({2, d, d}, -1, 1, 44));
      auto h = grad({sum(g[0] * v)}, {F});
      check_strict_upper_zero(h[0]);
    }
  }
}
