// data::DataLoader: coverage, order reproducibility, batch shapes, drop_last.
#include <algorithm>
#include <limits>
#include <set>

#include "../autodiff/helpers.hpp"

using namespace cholla;

namespace {

// Row i of X is (i, -i); Y's row is 10 i, so a batch shows which rows it holds.
std::pair<Tensor, Tensor> rows(int64_t n) {
  std::vector<double> x, y;
  for (int64_t i = 0; i < n; ++i) {
    x.push_back(static_cast<double>(i));
    x.push_back(-static_cast<double>(i));
    y.push_back(10.0 * static_cast<double>(i));
  }
  return {Tensor::from({n, 2}, x), Tensor::from({n}, y)};
}

std::vector<int64_t> visit(const data::DataLoader& loader) {
  std::vector<int64_t> seen;
  for (auto [xb, yb] : loader) {
    REQUIRE(xb.size(0) == yb.size(0));
    for (int64_t r = 0; r < xb.size(0); ++r) {
      const auto i = static_cast<int64_t>(xb.at({r, 0}));
      CHECK(xb.at({r, 1}) == -static_cast<double>(i));
      CHECK(yb.at({r}) == 10.0 * static_cast<double>(i));
      seen.push_back(i);
    }
  }
  return seen;
}

}  // namespace

TEST_CASE("loader: every row exactly once per epoch, for several sizes") {
  for (int64_t n : {1, 7, 64, 65, 100}) {
    for (int64_t batch : {1, 8, 64, 200}) {
      CAPTURE(n);
      CAPTURE(batch);
      const auto [X, Y] = rows(n);
      for (int epoch = 0; epoch < 3; ++epoch) {
        data::DataLoader loader(X, Y, {.batch_size = batch, .seed = epoch});
        CHECK(loader.num_batches() == (n + batch - 1) / batch);
        auto seen = visit(loader);
        std::sort(seen.begin(), seen.end());
        std::vector<int64_t> all(static_cast<size_t>(n));
        std::iota(all.begin(), all.end(), int64_t{0});
        CHECK(seen == all);
      }
    }
  }
}

TEST_CASE("loader: the same seed gives the same order, another seed another") {
  const auto [X, Y] = rows(50);
  const auto a = visit(data::DataLoader(X, Y, {.batch_size = 8, .seed = 3}));
  const auto b = visit(data::DataLoader(X, Y, {.batch_size = 8, .seed = 3}));
  const auto c = visit(data::DataLoader(X, Y, {.batch_size = 8, .seed = 4}));
  CHECK(a == b);
  CHECK(a != c);
  std::vector<int64_t> sorted(a);
  std::sort(sorted.begin(), sorted.end());
  CHECK(a != sorted);  // actually shuffled
  // Without shuffling the order is the row order.
  const auto plain = visit(data::DataLoader(X, Y, {.batch_size = 8, .shuffle = false}));
  CHECK(plain == sorted);
}

TEST_CASE("loader: batch shapes, the short last batch, drop_last") {
  const auto [X, Y] = rows(10);
  std::vector<int64_t> sizes;
  for (auto [xb, yb] : data::DataLoader(X, Y, {.batch_size = 4})) {
    CHECK(xb.shape() == Shape{xb.size(0), 2});
    CHECK(yb.dim() == 1);
    sizes.push_back(xb.size(0));
  }
  CHECK(sizes == std::vector<int64_t>{4, 4, 2});
  data::DataLoader dropping(X, Y, {.batch_size = 4, .drop_last = true});
  CHECK(dropping.num_batches() == 2);
  CHECK(visit(dropping).size() == 8);
  CHECK(std::distance(dropping.begin(), dropping.end()) == 2);
}

TEST_CASE("loader: misuse is a typed error") {
  const auto [X, Y] = rows(10);
  CHECK_THROWS_WITH_AS(data::DataLoader(X, Tensor::ones({9})), doctest::Contains("same number"),
                       ShapeError);
  CHECK_THROWS_AS(data::DataLoader(X, Y, {.batch_size = 0}), DomainError);
  CHECK_THROWS_AS(data::DataLoader(X, Y).batch(5), ShapeError);
}

TEST_CASE("loader: batch sizes up to INT64_MAX give one batch, never an overflow") {
  const auto [X, Y] = rows(10);
  for (int64_t batch : {int64_t{11}, int64_t{1} << 40, (int64_t{1} << 62) + 1,
                        std::numeric_limits<int64_t>::max() - 1, std::numeric_limits<int64_t>::max()}) {
    CAPTURE(batch);
    data::DataLoader loader(X, Y, {.batch_size = batch, .shuffle = false});
    CHECK(loader.num_batches() == 1);
    const auto [xb, yb] = loader.batch(0);
    CHECK(xb.shape() == Shape{10, 2});
    CHECK(yb.shape() == Shape{10});
    CHECK(visit(loader).size() == 10);
    CHECK(data::DataLoader(X, Y, {.batch_size = batch, .drop_last = true}).num_batches() == 0);
    CHECK_THROWS_WITH_AS(loader.batch(1), doctest::Contains("batch 1 is out of range (1 batches)"),
                         ShapeError);
  }
  // The last index of a large batch count: start = index * batch_size stays exact.
  const auto [X7, Y7] = rows(7);
  data::DataLoader threes(X7, Y7, {.batch_size = 3, .shuffle = false});
  CHECK(threes.num_batches() == 3);
  CHECK(threes.batch(2).x.shape() == Shape{1, 2});
  CHECK(threes.batch(2).x.at({0, 0}) == 6);
  CHECK_THROWS_AS(threes.batch(-1), ShapeError);
  CHECK_THROWS_AS(threes.batch(std::numeric_limits<int64_t>::max()), ShapeError);
}
