// Parameter checks on a MultivariateNormal's first use (multivariate_normal.hpp, "Validation"):
// the factories check shapes (and factorise a covariance or precision); loc and the triangular
// or diagonal factors are checked by the first method that reads them, log_prob on the values
// its one SIMD pass loads. The error must be the one the factory's scans give, wherever the bad
// value is, under every SIMD target.
#include <cmath>
#include <fmt/format.h>
#include <functional>
#include <limits>
#include <thread>

#include "autodiff/shape.hpp"
#include "distributions/detail/validation.hpp"
#include "simd_targets.hpp"

using namespace cholla;
using dist::MultivariateNormal;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// What `f` did: "" when it returned, else the type and every field of the cholla error.
std::string outcome(const std::function<void()>& f) {
  try {
    f();
    return "";
  } catch (const DomainError& e) {
    std::string s = fmt::format("DomainError op={} argument={} message={} index=[", e.op(), e.argument(), e.what());
    for (int64_t i : e.batch_index()) s += fmt::format("{},", i);
    s += "] shapes=";
    for (const Shape& shape : e.shapes()) s += format_shape(shape);
    return s;
  } catch (const Error& e) {
    return std::string("other cholla error: ") + e.what();
  }
}

enum class Form { ScaleTril, PrecisionTril, ScaleDiag, Covariance, Precision };

struct Factory {
  Form form;
  const char* who;
  const char* arg;
};
constexpr Factory kFactories[] = {
    {Form::ScaleTril, "MultivariateNormal::from_scale_tril", "scale_tril"},
    {Form::PrecisionTril, "MultivariateNormal::from_precision_tril", "precision_tril"},
    {Form::ScaleDiag, "MultivariateNormal::from_scale_diag", "scale_diag"},
    {Form::Covariance, "MultivariateNormal::from_covariance", "covariance"},
    {Form::Precision, "MultivariateNormal::from_precision", "precision"},
};

MultivariateNormal build(Form form, const Tensor& loc, const Tensor& p, bool validate = true) {
  const dist::MvnOptions o{.validate = validate};
  switch (form) {
    case Form::ScaleTril: return MultivariateNormal::from_scale_tril(loc, p, o);
    case Form::PrecisionTril: return MultivariateNormal::from_precision_tril(loc, p, o);
    case Form::ScaleDiag: return MultivariateNormal::from_scale_diag(loc, p, o);
    case Form::Covariance: return MultivariateNormal::from_covariance(loc, p, o);
    case Form::Precision: return MultivariateNormal::from_precision(loc, p, o);
  }
  throw InternalError("test", "unknown form");
}

// What the factories threw before the checks moved to the first use: their own scans, run
// directly (loc first, then the factor).
std::string eager_outcome(const Factory& f, const Tensor& loc, const Tensor& p, bool validate = true) {
  return outcome([&] {
    namespace v = dist::validation;
    if (f.form == Form::ScaleDiag) {
      v::check_vector_shapes(loc, p, f.who, f.arg);
      v::check_vector_values(loc, p, f.who, f.arg);
      if (validate) v::check_positive(p, f.who, f.arg);
      return;
    }
    v::check_parameter_shapes(loc, p, f.who, f.arg);
    v::check_loc_values(loc, f.who);
    if (f.form == Form::ScaleTril || f.form == Form::PrecisionTril) v::check_matrix_values(p, f.who, f.arg, validate);
  });
}

// A valid parameter of `form` for a batch [n] at d.
Tensor parameter(Form form, int64_t n, int64_t d, uint64_t seed) {
  if (form == Form::ScaleDiag) return test::uniform({n, d}, 0.5, 2.0, seed);
  if (form == Form::Covariance || form == Form::Precision) return test::spd({n}, d, seed);
  return test::triangular({n}, d, true, seed);
}

// Every method that reads the parameters, by name.
std::vector<std::pair<const char*, std::function<void(const MultivariateNormal&)>>> methods() {
  static constexpr int64_t d = 3;  // static: the lambdas use it without capturing it
  auto other = MultivariateNormal::from_scale_tril(Tensor::zeros({d}), Tensor::eye(d));
  return {
      {"log_prob", [](const MultivariateNormal& m) { (void)m.log_prob(Tensor::zeros({d})); }},
      {"log_prob with gradients",
       [](const MultivariateNormal& m) { (void)m.log_prob(Tensor::zeros({d}).requires_grad(true)); }},
      {"sample", [](const MultivariateNormal& m) { Rng rng(1); (void)m.sample(rng, 2); }},
      {"rsample", [](const MultivariateNormal& m) { Rng rng(1); (void)m.rsample(rng, Shape{2}); }},
      {"entropy", [](const MultivariateNormal& m) { (void)m.entropy(); }},
      {"mean", [](const MultivariateNormal& m) { (void)m.mean(); }},
      {"variance", [](const MultivariateNormal& m) { (void)m.variance(); }},
      {"stddev", [](const MultivariateNormal& m) { (void)m.stddev(); }},
      {"covariance", [](const MultivariateNormal& m) { (void)m.covariance(); }},
      {"precision", [](const MultivariateNormal& m) { (void)m.precision(); }},
      {"scale_tril", [](const MultivariateNormal& m) { (void)m.scale_tril(); }},
      {"kl_divergence(p, q)", [other](const MultivariateNormal& m) { (void)dist::kl_divergence(m, other); }},
      {"kl_divergence(q, p)", [other](const MultivariateNormal& m) { (void)dist::kl_divergence(other, m); }},
      {"mixture log_prob",
       [](const MultivariateNormal& m) {
         (void)dist::MixtureSameFamily(Tensor::zeros({m.batch_shape().back()}), m).log_prob(Tensor::zeros({d}));
       }},
  };
}

}  // namespace

TEST_CASE("deferred checks: the factories build, and every method's first use throws the factory's error") {
  const int64_t n = 5, d = 3, bad = 3;
  for (const Factory& f : kFactories) {
    CAPTURE(f.who);
    Tensor loc = test::uniform({n, d}, -1, 1, 1), p = parameter(f.form, n, d, 2);
    std::vector<std::pair<Tensor, Tensor>> cases;
    {
      Tensor l = loc.detach() + 0.0;
      l.mutable_data()[bad * d + 1] = kNaN;
      cases.emplace_back(l, p);
    }
    if (f.form == Form::ScaleDiag) {
      Tensor s = p.detach() + 0.0;
      s.mutable_data()[bad * d + 2] = -0.5;
      cases.emplace_back(loc, s);
    } else if (f.form == Form::ScaleTril || f.form == Form::PrecisionTril) {
      for (int64_t at : {1, 4, 6}) {  // above the diagonal, on it, below it
        Tensor m = p.detach() + 0.0;
        m.mutable_data()[bad * d * d + at] = at == 4 ? -1.0 : at == 6 ? kInf : 0.25;
        cases.emplace_back(loc, m);
      }
    }
    for (const auto& c : cases) {
      const auto& l = c.first;  // named, not bound: clang 14 lambdas cannot capture bindings
      const auto& m = c.second;
      const std::string want = eager_outcome(f, l, m);
      REQUIRE(want.find("DomainError") == 0);
      CHECK(want.find(fmt::format("index=[{},", bad)) != std::string::npos);
      MultivariateNormal reused = build(f.form, l, m);  // the factory no longer throws
      for (const auto& method : methods()) {
        const auto& name = method.first;
        const auto& use = method.second;
        CAPTURE(name);
        CHECK(outcome([&] { use(build(f.form, l, m)); }) == want);  // a fresh distribution
        CHECK(outcome([&] { use(reused); }) == want);  // a failed check is not remembered as passed
      }
    }
    // Shapes are still checked by the factory.
    CHECK_THROWS_AS(build(f.form, Tensor::zeros({d + 1}), p), ShapeError);
  }
}

TEST_CASE("deferred checks: a valid distribution is checked once, by its first use, for all its copies") {
  const int64_t n = 6, d = 3;
  for (const Factory& f : kFactories) {
    CAPTURE(f.who);
    for (bool log_prob_first : {true, false}) {
      CAPTURE(log_prob_first);
      const int64_t before = dist::validation::deferred_validations();
      auto mvn = build(f.form, test::uniform({n, d}, -1, 1, 3), parameter(f.form, n, d, 4));
      CHECK(dist::validation::deferred_validations() == before);  // nothing checked yet
      Rng rng(2);
      if (log_prob_first) (void)mvn.log_prob(Tensor::zeros({d}));
      else (void)mvn.sample(rng, 1);
      CHECK(dist::validation::deferred_validations() == before + 1);
      MultivariateNormal copy = mvn;
      for (int k = 0; k < 3; ++k) {
        (void)mvn.log_prob(test::uniform({n, d}, -1, 1, 5));
        (void)copy.log_prob(Tensor::zeros({d}).requires_grad(true));
        (void)copy.entropy();
        (void)mvn.rsample(rng, 2);
        (void)dist::kl_divergence(mvn, copy);
      }
      CHECK(dist::validation::deferred_validations() == before + 1);
    }
  }
}

TEST_CASE("deferred checks: copies used from several threads at once") {
  const int64_t n = 300, d = 3;
  for (bool valid : {true, false}) {
    CAPTURE(valid);
    Tensor L = test::triangular({n}, d, true, 6);
    if (!valid) L.mutable_data()[(n - 1) * d * d + 2] = 1.0;  // above the diagonal, last matrix
    auto mvn = MultivariateNormal::from_scale_tril(test::uniform({n, d}, -1, 1, 7), L);
    const Tensor x = test::uniform({n, d}, -1, 1, 8);
    std::vector<std::string> outcomes(4);
    std::vector<std::vector<double>> values(4);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 4; ++t)
      threads.emplace_back([&, t, copy = mvn] {
        outcomes[t] = outcome([&] { values[t] = copy.log_prob(x).to_vector(); });
      });
    for (auto& t : threads) t.join();
    for (size_t t = 1; t < 4; ++t) {
      CHECK(outcomes[t] == outcomes[0]);
      CHECK(values[t] == values[0]);
    }
    CHECK((outcomes[0].empty() == valid));
    if (!valid) CHECK(outcomes[0].find("index=[299,") != std::string::npos);
  }
}

// The pass's own checks, entry by entry: a bad value at any position of loc or of the factor,
// in the first sample or in the tail block, gives exactly the factory's error (and a value the
// factory accepts, none), with and without gradients, validation on and off.
TEST_CASE("deferred checks in the SIMD pass: every entry, every bad value, every target") {
  const Factory triangular[] = {kFactories[0], kFactories[1]};
  test::for_each_target([&] {
    for (const Factory& f : triangular)
      for (int64_t d = 1; d <= 8; ++d)
        for (int64_t n : {1, 9}) {
          CAPTURE(f.who);
          CAPTURE(d);
          CAPTURE(n);
          const Tensor loc = test::uniform({n, d}, -1, 1, static_cast<uint64_t>(10 + d));
          const Tensor L = test::triangular({n}, d, true, static_cast<uint64_t>(20 + d));
          const Tensor x = test::uniform({n, d}, -1, 1, static_cast<uint64_t>(30 + d));
          int64_t k = 0;
          for (int64_t b : n == 1 ? std::vector<int64_t>{0} : std::vector<int64_t>{0, n - 1})
            for (int64_t at = 0; at < d + d * d; ++at) {
              const bool in_loc = at < d;
              const int64_t e = in_loc ? at : at - d, r = e / d, c = e % d;
              std::vector<double> values{kNaN, kInf};
              if (in_loc || c < r) values.push_back(-kInf);
              if (!in_loc && c == r) values.insert(values.end(), {0.0, -0.0, -1.0, std::numeric_limits<double>::denorm_min()});
              if (!in_loc && c > r) values.insert(values.end(), {1e-300, -0.0, 2.0});
              for (double v : values)
                for (bool validate : {true, false}) {
                  CAPTURE(b);
                  CAPTURE(at);
                  CAPTURE(v);
                  CAPTURE(validate);
                  Tensor l = loc.detach() + 0.0, m = L.detach() + 0.0;
                  (in_loc ? l : m).mutable_data()[static_cast<size_t>(in_loc ? b * d + at : b * d * d + e)] = v;
                  const std::string want = eager_outcome(f, l, m, validate);
                  const bool gradients = ++k % 2 == 0;  // the eager pass and the forward pass
                  CAPTURE(gradients);
                  const std::string got = outcome([&] {
                    auto mvn = build(f.form, gradients ? l.requires_grad(true) : l, m, validate);
                    (void)mvn.log_prob(x);
                  });
                  CHECK(got == want);
                }
            }
        }
  });
}

TEST_CASE("deferred checks in the SIMD pass: shared factors and loc, an empty batch, several pool chunks") {
  const Factory& f = kFactories[0];
  const int64_t d = 3;
  // One factor and one loc for a batch of x: the error names no batch element.
  Tensor L = test::triangular({}, d, true, 40);
  L.mutable_data()[2] = 0.5;
  const std::string want = eager_outcome(f, Tensor::zeros({d}), L);
  CHECK(want.find("index=[] shapes=[3, 3]") != std::string::npos);
  CHECK(outcome([&] { (void)build(f.form, Tensor::zeros({d}), L).log_prob(test::uniform({7, d}, -1, 1, 41)); }) == want);
  // No sample at all: the pass loads nothing, so the scans run.
  CHECK(outcome([&] { (void)build(f.form, Tensor::zeros({d}), L).log_prob(Tensor::zeros({0, d})); }) == want);
  // 20,000 samples at d = 3 make three pool chunks: a bad entry in any of them is found, with
  // 1 and 2 threads, and the error is the same.
  const int64_t restore = num_threads(), n = 20000;
  const Tensor loc = test::uniform({n, d}, -1, 1, 42), x = test::uniform({n, d}, -1, 1, 43);
  const Tensor good = test::triangular({n}, d, true, 44);
  for (int64_t b : {int64_t{0}, int64_t{9000}, n - 1})
    for (int64_t threads : {1, 2}) {
      CAPTURE(b);
      CAPTURE(threads);
      set_num_threads(threads);
      Tensor m = good.detach() + 0.0;
      m.mutable_data()[static_cast<size_t>(b * d * d + 1)] = 1e-3;
      const std::string expected = eager_outcome(f, loc, m);
      CHECK(expected.find(fmt::format("index=[{},", b)) != std::string::npos);
      CHECK(outcome([&] { (void)build(f.form, loc.detach().requires_grad(true), m).log_prob(x); }) == expected);
      CHECK(outcome([&] { (void)build(f.form, loc, m).log_prob(x); }) == expected);
    }
  set_num_threads(restore);
}
