// Failure policies on deliberately singular and indefinite batches; validation errors;
// transforms (round trip, Jacobian).
#include <cmath>
#include <limits>

#include "../linalg/linalg_helpers.hpp"

using namespace cholla;
using dist::MultivariateNormal;
namespace tf = cholla::dist::transforms;

namespace {

// A batch of 4 covariances: 1 singular (rank 1), 3 indefinite, the others fine.
Tensor troubled_batch() {
  Tensor S = test::spd({4}, 3, 40);
  auto v = S.mutable_data();
  // Matrix 1: [[1, 1, 0], [1, 1, 0], [0, 0, 1]] is singular (minor 2 is 0).
  const double singular[9] = {1, 1, 0, 1, 1, 0, 0, 0, 1};
  for (int i = 0; i < 9; ++i) v[9 + static_cast<size_t>(i)] = singular[i];
  // Matrix 3: eigenvalue -0.5 (indefinite, minor 3 fails).
  const double indefinite[9] = {1, 0, 0, 0, 1, 0, 0, 0, -0.5};
  for (int i = 0; i < 9; ++i) v[27 + static_cast<size_t>(i)] = indefinite[i];
  return S;
}

}  // namespace

TEST_CASE("Throw: NotPositiveDefinite names the element, the minor and the way out") {
  Tensor S = troubled_batch();
  try {
    (void)MultivariateNormal::from_covariance(Tensor::zeros({3}), S);
    FAIL("no throw");
  } catch (const NotPositiveDefinite& e) {
    CHECK(e.op() == "MultivariateNormal::from_covariance");
    CHECK(e.argument() == "covariance");
    CHECK(e.flat_batch_index() == 1);
    CHECK(e.minor_order() == 2);
    const std::string m = e.what();
    CHECK(m.find("covariance is not positive definite in matrix 1 of batch shape [4] (index [1]) (leading minor of order 2)") != std::string::npos);
    CHECK(m.find("from_scale_tril") != std::string::npos);
    CHECK(m.find("Jitter") != std::string::npos);
  }
}

TEST_CASE("Jitter: only failing elements are jittered; the report says which and how much") {
  Tensor S = troubled_batch();
  Tensor x = test::uniform({4, 3}, -1, 1, 41);
  auto mvn = MultivariateNormal::from_covariance(Tensor::zeros({3}), S, {.on_failure = dist::Jitter{.start = 1e-4}});
  const auto& r = mvn.report();
  CHECK(r.failed == std::vector<int64_t>{1, 3});
  CHECK(r.failed_minor == std::vector<int64_t>{2, 3});
  REQUIRE(r.jitter.size() == 2);
  CHECK(r.jitter[0] > 0.0);
  CHECK(r.jitter[1] > 0.5);  // must exceed |-0.5| relative to the mean diagonal
  CHECK(r.usable() == 4);
  CHECK(r.summary().find("2 of 4 matrices not positive definite") != std::string::npos);
  // Good elements are untouched: same log_prob as their own distribution.
  Tensor lp = mvn.log_prob(x);
  for (int64_t b : {0, 2}) {
    auto alone = MultivariateNormal::from_covariance(Tensor::zeros({3}), select(S, 0, b));
    CHECK(lp.at({b}) == doctest::Approx(alone.log_prob(select(x, 0, b)).item()).epsilon(1e-12));
  }
  // Too few tries: throws, naming the element.
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_covariance(Tensor::zeros({3}), S,
                                                           {.on_failure = dist::Jitter{.start = 1e-9, .max_tries = 2}}),
                       doctest::Contains("even after 2 jitter attempts"), NotPositiveDefinite);
}

TEST_CASE("Mask: failing elements give log_prob 0 and no gradient; the rest train") {
  Tensor S = troubled_batch().requires_grad(true);
  Tensor x = test::uniform({4, 3}, -1, 1, 42);
  auto mvn = MultivariateNormal::from_covariance(Tensor::zeros({3}), S, {.on_failure = dist::Mask{}});
  const auto& r = mvn.report();
  test::check_values(r.mask, {1, 0, 1, 0});
  CHECK(r.usable() == 2);
  Tensor lp = mvn.log_prob(x);
  CHECK(lp.at({1}) == 0.0);
  CHECK(lp.at({3}) == 0.0);
  CHECK(std::isfinite(lp.at({0})));
  Tensor loss = -sum(lp) / static_cast<double>(r.usable());
  loss.backward();
  Tensor g = S.grad();
  for (int64_t i = 0; i < 9; ++i) {
    CHECK(g.data()[static_cast<size_t>(9 + i)] == 0.0);
    CHECK(g.data()[static_cast<size_t>(27 + i)] == 0.0);
    CHECK(std::isfinite(g.data()[static_cast<size_t>(i)]));
  }
  CHECK(std::abs(g.data()[0]) > 0.0);
}

TEST_CASE("NaN in any parameter is a DomainError under every policy") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor S = test::spd({3}, 2, 43);
  S.mutable_data()[4 + 1] = nan;
  for (dist::FailurePolicy policy : {dist::FailurePolicy{dist::Throw{}}, dist::FailurePolicy{dist::Jitter{}},
                                     dist::FailurePolicy{dist::Mask{}}})
    CHECK_THROWS_WITH_AS(MultivariateNormal::from_covariance(Tensor::zeros({2}), S, {.on_failure = policy}),
                         doctest::Contains("covariance contains NaN in batch element 1 (index [1])"), DomainError);
  Tensor loc = Tensor::from({2}, {0.0, nan});
  // loc is checked on the distribution's first use (multivariate_normal.hpp).
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_scale_tril(loc, Tensor::eye(2)).log_prob(Tensor::zeros({2})),
                       doctest::Contains("loc contains NaN"), DomainError);
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_covariance(loc, Tensor::eye(2)).mean(), doctest::Contains("loc contains NaN"),
                       DomainError);
  auto ok = MultivariateNormal::from_scale_tril(Tensor::zeros({2}), Tensor::eye(2));
  CHECK_THROWS_WITH_AS(ok.log_prob(Tensor::from({2}, {nan, 0.0})), doctest::Contains("x contains NaN"), DomainError);
}

TEST_CASE("validation: triangle, diagonal, symmetry, shapes; switchable off") {
  Tensor upper = Tensor::from({2, 2}, {1.0, 0.5, 0.0, 1.0});
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_scale_tril(Tensor::zeros({2}), upper).log_prob(Tensor::zeros({2})),
                       doctest::Contains("scale_tril has 0.5 at (0, 1), above the diagonal; it must be lower triangular"), DomainError);
  Tensor negative = Tensor::from({2, 2}, {1.0, 0.0, 0.3, -2.0});
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_scale_tril(Tensor::zeros({2}), negative).entropy(),
                       doctest::Contains("positive diagonal"), DomainError);
  Tensor asym = Tensor::from({2, 2}, {2.0, 0.5, 0.4, 1.0});
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_covariance(Tensor::zeros({2}), asym),
                       doctest::Contains("is not symmetric: max |A - A^T| = 0.1"), DomainError);
  CHECK_NOTHROW(MultivariateNormal::from_covariance(Tensor::zeros({2}), asym, {.validate = false}));
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_covariance(Tensor::zeros({3}), Tensor::eye(2)),
                       doctest::Contains("the last dimension of loc must be d = 2"), ShapeError);
  CHECK_THROWS_WITH_AS(MultivariateNormal::from_covariance(Tensor::zeros({4, 2}), expand(Tensor::eye(2), {3, 2, 2})),
                       doctest::Contains("do not broadcast"), ShapeError);
  auto mvn = MultivariateNormal::from_scale_tril(Tensor::zeros({2}), Tensor::eye(2));
  CHECK_THROWS_WITH_AS(mvn.log_prob(Tensor::zeros({3})), doctest::Contains("x must have shape [..., 2], got [3]"), ShapeError);
}

TEST_CASE("transforms: packing picture, valid scale_tril for extreme inputs, round trip, Jacobian") {
  test::check_values(tf::fill_triangular(Tensor::from({6}, {0, 1, 2, 3, 4, 5})), {0, 0, 0, 1, 2, 0, 3, 4, 5});
  CHECK(tf::params_size(3) == 9);
  CHECK(tf::params_size(5) == 20);
  CHECK_THROWS_WITH_AS(tf::fill_scale_tril(Tensor::zeros({4})), doctest::Contains("not d(d+1)/2"), ShapeError);
  for (tf::Diag diag : {tf::Diag::Softplus, tf::Diag::Exp, tf::Diag::OnePlusElu}) {
    CAPTURE(static_cast<int>(diag));
    const tf::ScaleTrilOptions o{.diag = diag, .shift = 1e-5};
    Tensor v = test::uniform({5, 10}, -3, 3, 50);
    Tensor L = tf::fill_scale_tril(v, o);
    CHECK_NOTHROW(MultivariateNormal::from_scale_tril(Tensor::zeros({4}), L));
    test::check_close(tf::fill_scale_tril_inverse(L, o), v, 1e-9);
    if (diag != tf::Diag::Exp) {  // exp(1e3) overflows by design
      Tensor extreme = Tensor::from({2, 3}, {1e3, -1e3, -1e3, 1e3, 1e3, -1e3});
      Tensor Le = tf::fill_scale_tril(extreme, o);
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t i = 0; i < 2; ++i) CHECK(Le.at({b, i, i}) >= 1e-5);
    }
    // log|det J| of v -> packed L against finite differences of the full Jacobian.
    Tensor v1 = test::uniform({6}, -2, 2, 51);
    auto packed = [&](const Tensor& x) { return tf::fill_triangular_inverse(tf::fill_scale_tril(x, o)); };
    std::vector<double> J(36);
    const double eps = 1e-6;
    for (int64_t k = 0; k < 6; ++k) {
      Tensor plus = Tensor::from({6}, v1.to_vector()), minus = Tensor::from({6}, v1.to_vector());
      plus.mutable_data()[static_cast<size_t>(k)] += eps;
      minus.mutable_data()[static_cast<size_t>(k)] -= eps;
      Tensor col = (packed(plus) - packed(minus)) / (2 * eps);
      for (int64_t i = 0; i < 6; ++i) J[static_cast<size_t>(i * 6 + k)] = col.at({i});
    }
    auto [sign, logabs] = linalg::slogdet(Tensor::from({6, 6}, J));
    CHECK(tf::fill_scale_tril_log_abs_det_jacobian(v1, o).item() == doctest::Approx(logabs.item()).epsilon(1e-6));
    test::check_gradients([o](const std::vector<Tensor>& x) { return tf::fill_scale_tril(x[0], o); }, {v});
  }
}
