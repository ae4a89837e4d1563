// Losses: values against hand-computed numbers, stability, gradcheck and gradgradcheck, errors.
#include <cmath>
#include <numbers>

#include "../autodiff/helpers.hpp"

using namespace cholla;
using test::check_gradients;
using test::check_values;
using test::uniform;
using Fn = std::vector<Tensor>;

TEST_CASE("mse_loss: values and reductions") {
  Tensor a = Tensor::from({2, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::from({2, 2}, {0, 2, 5, 1});
  CHECK(nn::mse_loss(a, b).item() == doctest::Approx((1 + 0 + 4 + 9) / 4.0));
  CHECK(nn::mse_loss(a, b, {.reduction = nn::Reduction::Sum}).item() == doctest::Approx(14));
  check_values(nn::mse_loss(a, b, {.reduction = nn::Reduction::None}), {1, 0, 4, 9});
  CHECK_THROWS_WITH_AS(nn::mse_loss(Tensor::ones({3, 1}), Tensor::ones({3})),
                       doctest::Contains("differ in shape"), ShapeError);
  check_gradients([](const Fn& x) { return nn::mse_loss(x[0], x[1]); },
                  {uniform({3, 2}, -1, 1, 1), uniform({3, 2}, -1, 1, 2)});
}

TEST_CASE("cross_entropy: class indices, probabilities, stability") {
  Tensor logits = Tensor::from({2, 3}, {1, 2, 3, 0, 0, 0});
  Tensor targets = Tensor::from({2}, {2, 0});
  const double l0 = -(3 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)));
  const double l1 = std::log(3.0);
  check_values(nn::cross_entropy(logits, targets, {.reduction = nn::Reduction::None}), {l0, l1});
  CHECK(nn::cross_entropy(logits, targets).item() == doctest::Approx((l0 + l1) / 2));
  // Soft labels equal to one-hot rows give the same numbers.
  Tensor onehot = Tensor::from({2, 3}, {0, 0, 1, 1, 0, 0});
  CHECK(nn::cross_entropy(logits, onehot).item() == doctest::Approx((l0 + l1) / 2));
  // A single sample: logits [C], target [].
  CHECK(nn::cross_entropy(Tensor::from({3}, {1, 2, 3}), Tensor::scalar(2)).item() ==
        doctest::Approx(l0));
  // Huge logits stay finite (through log_softmax, not log(softmax)).
  Tensor big = Tensor::from({1, 2}, {1000, -1000});
  CHECK(nn::cross_entropy(big, Tensor::from({1}, {0})).item() == doctest::Approx(0.0));
  CHECK(nn::cross_entropy(big, Tensor::from({1}, {1})).item() == doctest::Approx(2000.0));

  check_gradients([&](const Fn& x) { return nn::cross_entropy(x[0], targets); },
                  {uniform({2, 3}, -2, 2, 3)});
  check_gradients([](const Fn& x) { return nn::cross_entropy(x[0], softmax(x[1], -1)); },
                  {uniform({4, 3}, -2, 2, 4), uniform({4, 3}, -1, 1, 5)});

  CHECK_THROWS_WITH_AS(nn::cross_entropy(logits, Tensor::from({2}, {3, 0})),
                       doctest::Contains("not a class index"), DomainError);
  CHECK_THROWS_AS(nn::cross_entropy(logits, Tensor::from({2}, {0.5, 0})), DomainError);
  CHECK_THROWS_AS(nn::cross_entropy(logits, Tensor::from({3}, {0, 1, 2})), ShapeError);
  CHECK_THROWS_AS(nn::cross_entropy(Tensor::ones({2, 2, 2}), Tensor::ones({2, 2})), ShapeError);
}

TEST_CASE("gaussian_nll: values as PyTorch's GaussianNLLLoss") {
  Tensor mu = Tensor::from({2, 2}, {0, 1, 2, 3});
  Tensor y = Tensor::from({2, 2}, {1, 1, 0, 3});
  Tensor var = Tensor::from({2, 2}, {1, 2, 0.5, 4});
  std::vector<double> expected;
  for (int i = 0; i < 4; ++i) {
    const double m = mu.data()[i], t = y.data()[i], v = var.data()[i];
    expected.push_back(0.5 * (std::log(v) + (m - t) * (m - t) / v));
  }
  check_values(nn::gaussian_nll(mu, y, var, {.reduction = nn::Reduction::None}), expected);
  const double avg = (expected[0] + expected[1] + expected[2] + expected[3]) / 4;
  CHECK(nn::gaussian_nll(mu, y, var).item() == doctest::Approx(avg));
  CHECK(nn::gaussian_nll(mu, y, var, {.full = true}).item() ==
        doctest::Approx(avg + 0.5 * std::log(2 * std::numbers::pi)));

  // One variance per row, as [2, 1] or [2].
  Tensor row_var = Tensor::from({2, 1}, {1, 0.5});
  Tensor per_row = nn::gaussian_nll(mu, y, row_var, {.reduction = nn::Reduction::None});
  CHECK(per_row.shape() == Shape{2, 2});
  CHECK(per_row.at({1, 0}) == doctest::Approx(expected[2]));
  CHECK(nn::gaussian_nll(mu, y, Tensor::from({2}, {1, 0.5})).item() ==
        doctest::Approx(nn::gaussian_nll(mu, y, row_var).item()));

  // The eps clamp: a zero variance counts as eps in the value...
  Tensor zero = Tensor::from({1}, {0.0});
  CHECK(nn::gaussian_nll(Tensor::from({1}, {0.1}), Tensor::from({1}, {0.0}), zero,
                         {.eps = 1e-3})
            .item() == doctest::Approx(0.5 * (std::log(1e-3) + 0.01 / 1e-3)));
  // ...but the gradient still reaches var (straight through the clamp, as PyTorch).
  Tensor v = Tensor::from({1}, {1e-8}).requires_grad(true);
  nn::gaussian_nll(Tensor::from({1}, {0.1}), Tensor::from({1}, {0.0}), v, {.eps = 1e-3})
      .backward();
  CHECK(v.grad().item() == doctest::Approx(0.5 * (1 / 1e-3 - 0.01 / 1e-6)));

  CHECK_THROWS_WITH_AS(nn::gaussian_nll(mu, y, -var), doctest::Contains("non-negative"),
                       DomainError);
  CHECK_THROWS_AS(nn::gaussian_nll(mu, y, Tensor::ones({3})), ShapeError);
  CHECK_THROWS_AS(nn::gaussian_nll(mu, Tensor::ones({4}), var), ShapeError);
}

TEST_CASE("gaussian_nll: gradcheck and gradgradcheck in every argument") {
  for (bool full : {false, true}) {
    CAPTURE(full);
    check_gradients(
        [full](const Fn& x) { return nn::gaussian_nll(x[0], x[1], x[2], {.full = full}); },
        {uniform({3, 2}, -1, 1, 6), uniform({3, 2}, -1, 1, 7), uniform({3, 2}, 0.5, 2, 8)});
  }
  check_gradients([](const Fn& x) { return nn::gaussian_nll(x[0], x[1], x[2]); },
                  {uniform({3, 2}, -1, 1, 9), uniform({3, 2}, -1, 1, 10),
                   uniform({3, 1}, 0.5, 2, 11)});
  check_gradients(
      [](const Fn& x) {
        return nn::gaussian_nll(x[0], x[1], x[2], {.reduction = nn::Reduction::Sum});
      },
      {uniform({4}, -1, 1, 12), uniform({4}, -1, 1, 13), uniform({4}, 0.5, 2, 14)});
}
