// data::DistributedSampler: shards of a seeded, epoch-aware permutation (no MPI needed).
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include <cholla.hpp>

#include "nn/data/distributed_sampler.hpp"

using namespace cholla;
using data::DistributedSampler;

namespace {

std::vector<DistributedSampler> all_ranks(int64_t rows, int64_t ranks, data::DistributedSamplerOptions o) {
  std::vector<DistributedSampler> out;
  for (int64_t r = 0; r < ranks; ++r) {
    o.num_replicas = ranks;
    o.rank = r;
    out.emplace_back(rows, o);
  }
  return out;
}

}  // namespace

TEST_CASE("every global batch is shared out exactly once, in contiguous parts of near-equal size") {
  for (int64_t ranks : {1, 2, 3, 4})
    for (int64_t batch : {0, 7, 10, 100}) {
      CAPTURE(ranks);
      CAPTURE(batch);
      auto s = all_ranks(103, ranks, {.global_batch_size = batch, .seed = 5});
      const int64_t steps = s[0].num_batches();
      CHECK(steps == (batch == 0 ? 1 : (103 + batch - 1) / batch));
      std::vector<int64_t> seen;
      for (int64_t t = 0; t < steps; ++t) {
        int64_t lo = s[0].batch(t).size(), hi = lo;
        for (const auto& r : s) {
          CHECK(r.num_batches() == steps);
          const auto rows = r.batch(t);
          seen.insert(seen.end(), rows.begin(), rows.end());
          lo = std::min<int64_t>(lo, rows.size());
          hi = std::max<int64_t>(hi, rows.size());
        }
        CHECK(hi - lo <= 1);
      }
      // Concatenating the ranks' parts step by step gives back the permutation itself.
      CHECK(seen == s[0].order());
      std::sort(seen.begin(), seen.end());
      std::vector<int64_t> all(103);
      std::iota(all.begin(), all.end(), 0);
      CHECK(seen == all);
    }
}

TEST_CASE("the rows of a global step do not depend on the number of ranks") {
  auto one = all_ranks(50, 1, {.global_batch_size = 8, .seed = 3});
  auto four = all_ranks(50, 4, {.global_batch_size = 8, .seed = 3});
  for (auto* group : {&one, &four})
    for (auto& r : *group) r.set_epoch(2);
  for (int64_t t = 0; t < one[0].num_batches(); ++t) {
    std::vector<int64_t> joined;
    for (const auto& r : four) {
      const auto rows = r.batch(t);
      joined.insert(joined.end(), rows.begin(), rows.end());
    }
    CHECK(joined == one[0].batch(t));
  }
}

TEST_CASE("the permutation depends on seed and epoch only") {
  DistributedSampler a(40, {.seed = 1}), b(40, {.num_replicas = 3, .rank = 2, .seed = 1}), c(40, {.seed = 2});
  CHECK(a.order() == b.order());
  CHECK(a.order() != c.order());
  const auto first = a.order();
  a.set_epoch(1);
  CHECK(a.epoch() == 1);
  CHECK(a.order() != first);
  a.set_epoch(0);
  CHECK(a.order() == first);
  DistributedSampler plain(5, {.shuffle = false});
  CHECK(plain.order() == std::vector<int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("drop_last drops the short final global batch on every rank") {
  auto s = all_ranks(23, 2, {.global_batch_size = 10, .seed = 0, .drop_last = true});
  CHECK(s[0].num_batches() == 2);
  CHECK(s[0].indices().size() + s[1].indices().size() == 20);
  CHECK(s[1].part(1).begin == 5);
  CHECK(s[1].part(1).end == 10);
  CHECK_THROWS_AS(s[0].batch(2), ShapeError);
}

TEST_CASE("select + DataLoader yields this rank's part of each global batch") {
  Tensor X = reshape(Tensor::arange(30), {15, 2}), Y = Tensor::arange(15);
  for (int64_t rank : {0, 1, 2}) {
    DistributedSampler s(15, {.num_replicas = 3, .rank = rank, .global_batch_size = 6, .seed = 9});
    s.set_epoch(4);
    auto [Xr, Yr] = s.select(X, Y);
    int64_t step = 0;
    for (auto [xb, yb] : data::DataLoader(Xr, Yr, {.batch_size = 2, .shuffle = false})) {
      std::vector<double> expected;
      for (int64_t row : s.batch(step)) expected.push_back(static_cast<double>(row));
      CHECK(yb.to_vector() == expected);
      CHECK(xb.at({0, 1}) == 2 * expected[0] + 1);
      ++step;
    }
    CHECK(step == s.num_batches());
  }
}

TEST_CASE("bad options are DomainErrors naming the option") {
  auto arg = [](auto f) {
    try {
      f();
    } catch (const DomainError& e) {
      return e.argument();
    }
    return std::string("no error");
  };
  CHECK(arg([] { DistributedSampler(10, {.num_replicas = 0}); }) == "num_replicas");
  CHECK(arg([] { DistributedSampler(10, {.num_replicas = 2, .rank = 2}); }) == "rank");
  CHECK(arg([] { DistributedSampler(10, {.global_batch_size = -1}); }) == "global_batch_size");
  CHECK(arg([] { DistributedSampler(-1, {}); }) == "rows");
  DistributedSampler s(4, {});
  CHECK_THROWS_AS(s.select(Tensor::zeros({5, 1}), Tensor::zeros({5})), ShapeError);
  CHECK(DistributedSampler(0, {}).num_batches() == 0);
}
