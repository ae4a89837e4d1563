// SIMD elementwise maths against the std:: reference, under every SIMD target this machine
// supports: within a few ulp on ordinary values, exactly std::'s answer on the edges.
#include <doctest/doctest.h>

#include <hwy/targets.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <cholla.hpp>

#include "autodiff/detail/vector_math.hpp"

using namespace cholla;
using detail::UnaryFn;

namespace {

// Distance in units in the last place: the number of doubles between a and b.
uint64_t ulp_distance(double a, double b) {
  const auto ordered = [](double x) {
    const int64_t i = std::bit_cast<int64_t>(x);
    return i < 0 ? std::numeric_limits<int64_t>::min() - i : i;
  };
  const int64_t ia = ordered(a), ib = ordered(b);
  return ia > ib ? static_cast<uint64_t>(ia) - static_cast<uint64_t>(ib)
                 : static_cast<uint64_t>(ib) - static_cast<uint64_t>(ia);
}

struct Case {
  UnaryFn f;
  const char* name;
  uint64_t max_ulp;  // hwy/contrib/math's documented bound, plus one per extra rounding
  double lo, hi;     // range of the random values
};

const Case kCases[] = {
    {UnaryFn::kExp, "exp", 1, -760.0, 720.0},
    {UnaryFn::kExpm1, "expm1", 4, -720.0, 720.0},
    {UnaryFn::kLog, "log", 4, -1.0, 1e6},
    {UnaryFn::kLog1p, "log1p", 2, -1.5, 1e6},
    {UnaryFn::kTanh, "tanh", 4, -25.0, 25.0},
    {UnaryFn::kSigmoid, "sigmoid", 4, -760.0, 760.0},
    {UnaryFn::kSoftplus, "softplus", 4, -760.0, 760.0},
    {UnaryFn::kElu, "elu", 6, -760.0, 50.0},
    {UnaryFn::kSqrt, "sqrt", 0, -1.0, 1e6},
};

constexpr double kElu = 0.7;

std::vector<double> edge_values() {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double denorm = std::numeric_limits<double>::denorm_min();
  std::vector<double> v = {0.0,     -0.0,    denorm,   -denorm, 1e-310, -1e-310, DBL_MIN,
                           -DBL_MIN, DBL_MAX, -DBL_MAX, inf,     -inf,   nan,     -nan,
                           1.0,     -1.0,    0.5,      -0.5,    2.0,    1e-300,  -1e-300,
                           1e-20,   -1e-20,  1e-8,     -1e-8,   705.9,  706.0,   706.1,
                           708.0,   709.7,   709.79,   709.8,   710.0,  -700.0,  -708.0,
                           -708.5,  -720.0,  -745.0,   -745.2,  -746.0, -1000.0, -1001.0,
                           18.7,    18.8,    -18.7,    -18.8,   37.0,   -37.0,   -1.0 + 1e-16,
                           std::nextafter(-1.0, 0.0), std::nextafter(1.0, 0.0), 1e300};
  return v;
}

std::vector<double> test_values(const Case& c) {
  std::vector<double> v = edge_values();
  std::mt19937_64 gen(11);
  std::uniform_real_distribution<double> u(c.lo, c.hi);
  std::uniform_real_distribution<double> e(-300.0, 300.0);
  for (int i = 0; i < 20'000; ++i) v.push_back(u(gen));
  for (int i = 0; i < 5'000; ++i) v.push_back(std::pow(10.0, e(gen)) * (i % 2 ? 1.0 : -1.0));
  for (int i = 0; i < 5'000; ++i) v.push_back(u(gen) * 1e-3);  // near zero
  return v;
}

// Checks every value of c; returns the largest ulp error seen on finite results.
uint64_t check_case(const Case& c) {
  const std::string name = c.name;
  CAPTURE(name);
  const std::vector<double> x = test_values(c);
  std::vector<double> y(x.size());
  detail::vector_unary(c.f, x.data(), y.data(), static_cast<int64_t>(x.size()), kElu);
  uint64_t worst = 0;
  int64_t failures = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = detail::reference_unary(c.f, x[i], kElu);
    const bool ok = std::isnan(ref) ? std::isnan(y[i])
                    : !std::isfinite(ref) || ref == 0.0
                        ? std::bit_cast<uint64_t>(y[i]) == std::bit_cast<uint64_t>(ref)
                        : ulp_distance(y[i], ref) <= c.max_ulp;
    if (!ok && failures++ < 5)
      FAIL_CHECK(c.name, "(", x[i], ") = ", y[i], ", std:: gives ", ref, " (",
                 ulp_distance(y[i], ref), " ulp)");
    if (std::isfinite(ref) && std::isfinite(y[i])) worst = std::max(worst, ulp_distance(y[i], ref));
  }
  CHECK(failures == 0);
  return worst;
}

}  // namespace

TEST_CASE("vector_unary: every function within its ulp bound and exact on edges, every SIMD target") {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  REQUIRE(!targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string target_name = hwy::TargetName(target);
    CAPTURE(target_name);
    CHECK(std::string(detail::vector_target()) == hwy::TargetName(target));
    std::string worst;
    for (const Case& c : kCases) worst += std::string(" ") + c.name + " " + std::to_string(check_case(c));
    MESSAGE("worst ulp on ", target_name, ":", worst);
  }
  hwy::SetSupportedTargetsForTest(0);
}

// Full vectors and the one-lane tail must agree bit for bit, under every target: a tensor's
// element must not change with its position, its tensor's length or the chunking.
TEST_CASE("vector_unary: a value's result does not depend on its position or the length") {
  const std::vector<double> values = {-3.5, 0.25, 7.0, -0.0, 1e-5, 700.0, -1.0, 2.5, 0.1,
                                      -710.0, 1e300, -1e-300, 0.75, -20.0, 19.5, 3e-9};
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (const Case& c : kCases) {
      const std::string name = std::string(c.name) + " on " + hwy::TargetName(target);
      CAPTURE(name);
      for (size_t n = 1; n <= 40; ++n) {
        std::vector<double> x(n), y(n);
        for (size_t i = 0; i < n; ++i) x[i] = values[(i * 5 + n) % values.size()];
        detail::vector_unary(c.f, x.data(), y.data(), static_cast<int64_t>(n), kElu);
        for (size_t i = 0; i < n; ++i) {
          double single = 0.0;
          detail::vector_unary(c.f, &x[i], &single, 1, kElu);
          CHECK(std::bit_cast<uint64_t>(y[i]) == std::bit_cast<uint64_t>(single));
        }
        detail::vector_unary(c.f, x.data(), x.data(), static_cast<int64_t>(n), kElu);  // in place
        CHECK(std::equal(x.begin(), x.end(), y.begin(), [](double a, double b) {
          return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
        }));
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST_CASE("elementwise ops use the vector kernels on tensors of any size") {
  Rng rng(3);
  for (int64_t n : {1, 3, 7, 9, 17, 100'003}) {
    CAPTURE(n);
    const Tensor x = Tensor::randn({n}, rng) * 3.0;
    const Tensor pos = exp(x);
    const auto check = [&](const Tensor& got, UnaryFn f, const Tensor& in, double param) {
      std::vector<double> expected(static_cast<size_t>(n));
      detail::vector_unary(f, in.data().data(), expected.data(), n, param);
      CHECK(std::vector<double>(got.data().begin(), got.data().end()) == expected);
      // and the reference within a few ulp
      for (int64_t i = 0; i < n; i += 97)
        CHECK(ulp_distance(got.data()[static_cast<size_t>(i)],
                           detail::reference_unary(f, in.data()[static_cast<size_t>(i)], param)) <= 6);
    };
    check(pos, UnaryFn::kExp, x, 0.0);
    check(log(pos), UnaryFn::kLog, pos, 0.0);
    check(log1p(pos), UnaryFn::kLog1p, pos, 0.0);
    check(sqrt(pos), UnaryFn::kSqrt, pos, 0.0);
    check(tanh(x), UnaryFn::kTanh, x, 0.0);
    check(sigmoid(x), UnaryFn::kSigmoid, x, 0.0);
    check(softplus(x), UnaryFn::kSoftplus, x, 0.0);
    check(elu(x, 1.3), UnaryFn::kElu, x, 1.3);
  }
}

TEST_CASE("elementwise ops: closed forms") {
  const Tensor x = Tensor::from({5}, {0.0, 1.0, -1.0, 2.0, -30.0});
  const double e = std::exp(1.0);
  const auto near = [](double a, double b) { return std::abs(a - b) <= 4e-16 * std::max(1.0, std::abs(b)); };
  CHECK(near(exp(x).data()[1], e));
  CHECK(near(log(exp(x)).data()[3], 2.0));
  CHECK(near(sigmoid(x).data()[2], 1.0 / (1.0 + e)));
  CHECK(near(tanh(x).data()[1], (e * e - 1.0) / (e * e + 1.0)));
  CHECK(near(softplus(x).data()[0], std::log(2.0)));
  CHECK(near(elu(x, 2.0).data()[2], 2.0 * (1.0 / e - 1.0)));
  CHECK(tanh(x).data()[0] == 0.0);
  CHECK(exp(x).data()[0] == 1.0);
}
