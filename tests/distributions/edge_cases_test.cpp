// Hostile input to the distributions (issue 9): zero sizes, huge sample counts, the wording of
// validation messages, and gradients w.r.t. triangular factors that stay lower triangular.
#include <functional>
#include <string>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
using dist::MultivariateNormal;
using dist::Normal;

namespace {

enum class Form { ScaleTril, PrecisionTril, Covariance, Precision };
constexpr Form kForms[] = {Form::ScaleTril, Form::PrecisionTril, Form::Covariance, Form::Precision};

MultivariateNormal make(Form form, const Tensor& loc, const Tensor& A) {
  switch (form) {
    case Form::ScaleTril: return MultivariateNormal::from_scale_tril(loc, A);
    case Form::PrecisionTril: return MultivariateNormal::from_precision_tril(loc, A);
    case Form::Covariance: return MultivariateNormal::from_covariance(loc, A);
    case Form::Precision: return MultivariateNormal::from_precision(loc, A);
  }
  return MultivariateNormal::from_scale_tril(loc, A);
}

Shape with(Shape s, std::initializer_list<int64_t> tail) {
  s.insert(s.end(), tail);
  return s;
}

// Every method of the distribution reduced to a scalar (for backward), with its expected shape.
struct Method {
  std::string name;
  std::function<Tensor(const MultivariateNormal&)> run;
  Shape shape;
};

std::vector<Method> methods(const Shape& batch, int64_t d) {
  auto rng = std::make_shared<Rng>(3);
  Shape draws{4};
  draws.insert(draws.end(), batch.begin(), batch.end());
  draws.push_back(d);
  return {
      {"log_prob", [=](const MultivariateNormal& m) { return m.log_prob(Tensor::ones(with(batch, {d}))); }, batch},
      {"rsample", [=](const MultivariateNormal& m) { return m.rsample(*rng, 4); }, draws},
      {"entropy", [](const MultivariateNormal& m) { return m.entropy(); }, batch},
      {"mean", [](const MultivariateNormal& m) { return m.mean(); }, with(batch, {d})},
      {"covariance", [](const MultivariateNormal& m) { return m.covariance(); }, with(batch, {d, d})},
      {"precision", [](const MultivariateNormal& m) { return m.precision(); }, with(batch, {d, d})},
      {"scale_tril", [](const MultivariateNormal& m) { return m.scale_tril(); }, with(batch, {d, d})},
      {"kl_divergence", [](const MultivariateNormal& m) { return dist::kl_divergence(m, m); }, batch},
  };
}

}  // namespace

TEST_CASE("MultivariateNormal with d = 0 is a ShapeError at construction, every form") {
  for (Form form : kForms) {
    CAPTURE(static_cast<int>(form));
    for (const Shape& batch : {Shape{}, Shape{3}}) {
      try {
        (void)make(form, Tensor::zeros(with(batch, {0})), Tensor::zeros(with(batch, {0, 0})));
        FAIL("no throw");
      } catch (const ShapeError& e) {
        CHECK(e.op().find("MultivariateNormal::from_") == 0);
        CHECK(std::string(e.what()).find("the event dimension d must be at least 1") != std::string::npos);
        REQUIRE(e.shapes().size() == 1);
        CHECK(e.shapes()[0] == with(batch, {0, 0}));
      }
    }
  }
}

TEST_CASE("batch 0: every method of every form works forward and backward") {
  for (int64_t d : {3, 10}) {  // the fused (d <= 8) and the composed log-density
    for (const Shape& batch : {Shape{0}, Shape{2, 0}}) {
      for (Form form : kForms) {
        for (const Method& method : methods(batch, d)) {
          CAPTURE(d);
          CAPTURE(format_shape(batch));
          CAPTURE(static_cast<int>(form));
          CAPTURE(method.name);
          Tensor loc = Tensor::zeros(with(batch, {d})).requires_grad(true);
          Tensor A = Tensor::zeros(with(batch, {d, d})).requires_grad(true);
          Tensor out = method.run(make(form, loc, A));
          CHECK(out.shape() == method.shape);
          CHECK(out.numel() == 0);
          sum(out).backward();
          // The gradient of an empty sum is zero, of each input's shape (or absent).
          for (const Tensor* t : {&loc, &A})
            if (t->grad().defined()) {
              CHECK(t->grad().shape() == t->shape());
              CHECK(t->grad().numel() == 0);
            }
        }
      }
    }
  }
}

TEST_CASE("batch 0 against a non-empty distribution: x with no rows, zero draws") {
  Tensor loc = Tensor::from({2}, {0.5, -1.0}).requires_grad(true);
  Tensor L = Tensor::from({2, 2}, {1.5, 0.0, 0.3, 0.7}).requires_grad(true);
  auto mvn = MultivariateNormal::from_scale_tril(loc, L);
  Tensor lp = mvn.log_prob(Tensor::zeros({0, 2}));
  CHECK(lp.shape() == Shape{0});
  Rng rng(1);
  Tensor draws = mvn.rsample(rng, 0);
  CHECK(draws.shape() == Shape{0, 2});
  CHECK(mvn.sample(rng, 0).shape() == Shape{0, 2});
  auto g = grad({sum(lp) + sum(draws)}, {loc, L});
  test::check_values(g[0], {0, 0});
  test::check_values(g[1], {0, 0, 0, 0});
}

TEST_CASE("Normal with batch 0: every method, forward and backward") {
  Tensor loc = Tensor::zeros({0, 2}).requires_grad(true);
  Tensor scale = Tensor::ones({0, 2}).requires_grad(true);
  Normal n(loc, scale);
  Rng rng(2);
  CHECK(n.log_prob(Tensor::zeros({0, 2})).shape() == Shape{0, 2});
  CHECK(n.sample(rng, 3).shape() == Shape{3, 0, 2});
  Tensor total = sum(n.log_prob(Tensor::zeros({0, 2}))) + sum(n.rsample(rng, 3)) + sum(n.entropy()) +
                 sum(n.mean()) + sum(n.stddev()) + sum(n.variance()) + sum(dist::kl_divergence(n, n));
  total.backward();
  CHECK(loc.grad().shape() == Shape{0, 2});
  CHECK(scale.grad().shape() == Shape{0, 2});
}

TEST_CASE("sample counts: negative and overflowing counts are ShapeErrors naming the shape") {
  auto mvn = MultivariateNormal::from_scale_tril(Tensor::zeros({4, 3}), Tensor::eye(3));
  Rng rng(1);
  CHECK_THROWS_WITH_AS(mvn.rsample(rng, -1), doctest::Contains("the number of samples must be >= 0, got -1"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(mvn.sample(rng, -5), doctest::Contains("got -5"), ShapeError);
  try {
    (void)mvn.rsample(rng, int64_t{1} << 62);
    FAIL("no throw");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "MultivariateNormal::rsample");
    CHECK(std::string(e.what()).find("[4611686018427387904, 4, 3]") != std::string::npos);
    CHECK(std::string(e.what()).find("more elements than a 64-bit count can hold") != std::string::npos);
  }
  Normal normal(Tensor::zeros({8}), Tensor::ones({8}));
  CHECK_THROWS_WITH_AS(normal.rsample(rng, int64_t{1} << 61), doctest::Contains("[2305843009213693952, 8]"),
                       ShapeError);
  CHECK_THROWS_AS(normal.sample(rng, -1), ShapeError);
  // Within int64 but larger than memory: a ResourceError from the allocation, never bad_alloc.
  auto scalar = MultivariateNormal::from_scale_tril(Tensor::zeros({1}), Tensor::ones({1, 1}));
  CHECK_THROWS_AS(scalar.rsample(rng, int64_t{1} << 62), ResourceError);
  CHECK_THROWS_AS(Normal(Tensor::zeros({}), Tensor::ones({})).rsample(rng, int64_t{1} << 62), ResourceError);
}

TEST_CASE("params_size and triangular_size: exact up to the int64 limit, ShapeError beyond") {
  namespace tf = dist::transforms;
  // 2^32 - 1 = 4294967295: d(d+1)/2 = 4294967295 * 2^31 = 9223372034707292160 < 2^63.
  CHECK(tf::triangular_size(4294967295LL) == 9223372034707292160LL);
  // ... but adding d = 4294967295 crosses it; one less fits: 9223372030412324865 + 4294967294.
  CHECK_THROWS_AS(tf::params_size(4294967295LL), ShapeError);
  CHECK(tf::params_size(4294967294LL) == 9223372034707292159LL);
  CHECK(tf::triangular_size(3) == 6);
  CHECK(tf::params_size(3) == 9);
  CHECK(tf::params_size(0) == 0);
  CHECK_THROWS_WITH_AS(tf::triangular_size(4294967296LL), doctest::Contains("d = 4294967296"), ShapeError);
  CHECK_THROWS_WITH_AS(tf::params_size(int64_t{1} << 33), doctest::Contains("d = 8589934592"), ShapeError);
  CHECK_THROWS_WITH_AS(tf::params_size(-1), doctest::Contains("d must be >= 0, got -1"), ShapeError);
  CHECK_THROWS_AS(tf::params_size(INT64_MAX), ShapeError);
}

TEST_CASE("messages: the triangle and symmetry checks read as sentences") {
  Tensor upper = Tensor::from({2, 2}, {1.0, 0.0499, 0.0, 1.0});
  // The factor's values are checked on the distribution's first use (multivariate_normal.hpp).
  try {
    (void)MultivariateNormal::from_scale_tril(Tensor::zeros({2}), upper).log_prob(Tensor::zeros({2}));
    FAIL("no throw");
  } catch (const DomainError& e) {
    const std::string m = e.what();
    CHECK(m.find("scale_tril has 0.0499 at (0, 1), above the diagonal; it must be lower triangular") !=
          std::string::npos);
    CHECK(m.find("the matrix") == std::string::npos);
  }
  Tensor batch = expand(Tensor::eye(2), {3, 2, 2}) + Tensor::zeros({3, 2, 2});
  batch.mutable_data()[2 * 4 + 3] = -0.5;
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_precision_tril(Tensor::zeros({2}), batch).log_prob(Tensor::zeros({2})),
                       doctest::Contains("precision_tril has -0.5 at (1, 1), on the diagonal in matrix 2 of "
                                         "batch shape [3] (index [2]); it must be"),
                       DomainError);
  Tensor asym = Tensor::from({2, 2}, {2.0, 0.5, 0.4, 1.0});
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_covariance(Tensor::zeros({2}), asym),
                       doctest::Contains("MultivariateNormal::from_covariance: covariance is not symmetric: max |A - A^T| = 0.1"),
                       DomainError);
  Tensor asym_batch = stack({Tensor::eye(2), asym});
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_precision(Tensor::zeros({2}), asym_batch),
                       doctest::Contains("precision is not symmetric in matrix 1 of batch shape [2] (index [1]): max"),
                       DomainError);
}

TEST_CASE("messages: a Jitter that gave up does not advise passing Jitter") {
  Tensor far = Tensor::from({2, 2}, {1.0, 0.0, 0.0, -100.0});
  try {
    (void)MultivariateNormal::from_covariance(Tensor::zeros({2}), far, {.on_failure = dist::Jitter{.max_tries = 3}});
    FAIL("no throw");
  } catch (const NotPositiveDefinite& e) {
    const std::string m = e.what();
    CHECK(m.find("covariance is not positive definite even after 3 jitter attempts") != std::string::npos);
    CHECK(m.find("on_failure = Jitter") == std::string::npos);
    CHECK(m.find("max_tries") != std::string::npos);
    CHECK(m.find("Mask{}") != std::string::npos);
  }
  // Under Throw the advice still offers Jitter.
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_covariance(Tensor::zeros({2}), far),
                       doctest::Contains("pass {.on_failure = Jitter{}} or Mask{}"), NotPositiveDefinite);
}
