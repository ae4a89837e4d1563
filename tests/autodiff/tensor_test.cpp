// Tensor factories, reading, Rng reproducibility, printing.
#include <cmath>
#include <limits>

#include "autodiff/detail/finite.hpp"

#include "helpers.hpp"

using namespace cholla;

TEST_CASE("factories and reading") {
  CHECK(Tensor::zeros({2, 3}).numel() == 6);
  CHECK(Tensor::ones({2}).to_vector() == std::vector<double>{1, 1});
  CHECK(Tensor::full({}, 2.5).item() == 2.5);
  Tensor I = Tensor::eye(3);
  CHECK(I.at({1, 1}) == 1.0);
  CHECK(I.at({1, 2}) == 0.0);
  CHECK(Tensor::arange(4).to_vector() == std::vector<double>{0, 1, 2, 3});
  Tensor t = Tensor::from({2, 2}, {1, 2, 3, 4});
  CHECK(t.size(-1) == 2);
  CHECK(t.dim() == 2);
  CHECK(t.at({1, 0}) == 3.0);
  CHECK_THROWS_AS((void)t.at({2, 0}), ShapeError);
  CHECK(to_string(t) == "tensor([[1, 2], [3, 4]], shape=[2, 2])");
}

TEST_CASE("Rng: same seed, same numbers; moments of randn") {
  Rng a(42), b(42), c(43);
  Tensor x = Tensor::randn({20000}, a);
  Tensor y = Tensor::randn({20000}, b);
  Tensor z = Tensor::randn({20000}, c);
  CHECK(x.to_vector() == y.to_vector());
  CHECK(x.to_vector() != z.to_vector());
  const double m = mean(x).item();
  const double v = mean(square(x - m)).item();
  CHECK(std::abs(m) < 4.0 / std::sqrt(20000.0));  // 4 standard errors
  CHECK(std::abs(v - 1.0) < 4.0 * std::sqrt(2.0 / 20000.0));
  Rng u(1);
  Tensor w = Tensor::uniform({10000}, -2.0, 3.0, u);
  CHECK(*std::min_element(w.data().begin(), w.data().end()) >= -2.0);
  CHECK(*std::max_element(w.data().begin(), w.data().end()) < 3.0);
  CHECK(mean(w).item() == doctest::Approx(0.5).epsilon(0.05));
}

TEST_CASE("detach shares values and drops history") {
  Tensor x = Tensor::from({2}, {1, 2}).requires_grad(true);
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.to_vector() == std::vector<double>{2, 4});
  Tape::current().release();
}

TEST_CASE("first_non_finite: NaN and Inf of either sign at block edges; extremes are finite") {
  std::vector<double> v(1000, 1.5);
  v[0] = -0.0;
  v[1] = 1e308;
  v[2] = -1e-310;  // subnormal
  v[3] = -std::numeric_limits<double>::max();
  CHECK(first_non_finite(v) == -1);
  for (double bad : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN()})
    for (size_t at : {size_t{0}, size_t{255}, size_t{256}, size_t{999}}) {
      auto w = v;
      w[at] = bad;
      CHECK(first_non_finite(w) == static_cast<int64_t>(at));
    }
}
