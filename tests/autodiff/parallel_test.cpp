// The thread pool: fixed chunks, bit-identical results across thread counts, concurrent
// callers, nested loops, exceptions.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <cholla.hpp>

#include "autodiff/parallel.hpp"
#include "linalg/detail/kernels/kernels.hpp"

using namespace cholla;

namespace {

// Restores the thread count a test changed.
struct ThreadCount {
  int64_t saved = num_threads();
  explicit ThreadCount(int64_t n) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;
};

constexpr int64_t kThreadCounts[] = {1, 2, 3, 7};

// Per-chunk partial sums of a badly conditioned series, combined in chunk order: a sum whose
// rounding depends on the association, so any change of chunking would show.
double chunked_sum(int64_t n, int64_t grain) {
  std::vector<double> partial(static_cast<size_t>(parallel_chunk_count(n, grain)), 0.0);
  parallel_for(n, grain, [&](int64_t begin, int64_t end) {
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) s += std::sin(static_cast<double>(i)) * 1e3 / (1.0 + i);
    partial[static_cast<size_t>(begin / grain)] = s;
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

TEST_CASE("parallel_for: chunks are [k grain, (k+1) grain), each exactly once, any thread count") {
  for (int64_t threads : kThreadCounts) {
    const ThreadCount scope(threads);
    for (auto [n, grain] : {std::pair<int64_t, int64_t>{1000, 64}, {64, 64}, {65, 64}, {7, 1}, {0, 5}}) {
      std::mutex mutex;
      std::set<std::pair<int64_t, int64_t>> seen;
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(n, grain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)]++;
        const std::lock_guard lock(mutex);
        seen.insert({begin, end});
      });
      std::set<std::pair<int64_t, int64_t>> expected;
      for (int64_t b = 0; b < n; b += grain) expected.insert({b, std::min(n, b + grain)});
      CHECK(seen == expected);
      CHECK(static_cast<int64_t>(expected.size()) == parallel_chunk_count(n, grain));
      for (const auto& h : hits) CHECK(h.load() == 1);
    }
  }
}

TEST_CASE("parallel_for: chunk-ordered reductions are bit-identical to the sequential loop") {
  const int64_t n = 100'003, grain = 1'000;
  // The same association written as one plain loop: the independent answer.
  double expected = 0.0;
  for (int64_t begin = 0; begin < n; begin += grain) {
    double s = 0.0;
    for (int64_t i = begin; i < std::min(n, begin + grain); ++i)
      s += std::sin(static_cast<double>(i)) * 1e3 / (1.0 + i);
    expected += s;
  }
  for (int64_t threads : kThreadCounts) {
    const ThreadCount scope(threads);
    CHECK(chunked_sum(n, grain) == expected);
  }
}

TEST_CASE("parallel ops: elementwise and batched linalg results identical for 1, 2, 3, 7 threads") {
  Rng rng(5);
  const Tensor x = Tensor::randn({400, 400}, rng);  // 160,000 elements: several chunks
  const Tensor y = Tensor::randn({400, 400}, rng);
  // A batch of SPD 3 x 3 matrices, large enough to be split.
  const Tensor m = Tensor::randn({20'000, 3, 3}, rng);
  const Tensor spd = linalg::gemm2(m, m, {.transpose_b = true}) + 0.5 * Tensor::eye(3);
  std::vector<std::vector<double>> results;
  for (int64_t threads : kThreadCounts) {
    const ThreadCount scope(threads);
    NoGrad guard;
    std::vector<double> r;
    for (const Tensor& t : {exp(x), tanh(x), x * y + x, softplus(y), linalg::potrf(spd),
                            linalg::trsm(linalg::potrf(spd), m)}) {
      const auto v = t.data();
      r.insert(r.end(), v.begin(), v.end());
    }
    results.push_back(std::move(r));
  }
  for (size_t i = 1; i < results.size(); ++i) CHECK(results[i] == results[0]);
}

TEST_CASE("parallel ops: a sum over all elements is the same bits for 1, 2 and 4 threads, and exact on integers") {
  Rng rng(6);
  // 160,000 and 65,537 values: several fixed chunks of the blocked sum, one ragged.
  const Tensor x = Tensor::randn({400, 400}, rng), y = Tensor::randn({65'537}, rng);
  std::vector<double> results;
  for (int64_t threads : {1, 2, 4}) {
    const ThreadCount scope(threads);
    NoGrad guard;
    results.push_back(sum(x).item());
    results.push_back(mean(y).item());
  }
  for (size_t i = 2; i < results.size(); ++i) CHECK(results[i] == results[i % 2]);
  // Against a sequential sum in long double (independent of the chunking).
  long double total = 0.0L;
  for (double v : x.to_vector()) total += v;
  CHECK(std::abs(results[0] - static_cast<double>(total)) <= 1e-10);
  // 0 + 1 + ... + (n - 1): every partial sum is an integer below 2^53, so any order is exact.
  const int64_t n = 100'003;
  std::vector<double> ramp(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ramp[static_cast<size_t>(i)] = static_cast<double>(i);
  for (int64_t threads : {1, 2, 4}) {
    const ThreadCount scope(threads);
    CHECK(sum(Tensor::from({n}, ramp)).item() == static_cast<double>(n * (n - 1) / 2));
  }
}

TEST_CASE("parallel_for: two user threads at once, each with its own loop") {
  const ThreadCount scope(3);
  const int64_t n = 200'000, grain = 997;
  const double expected = chunked_sum(n, grain);
  std::vector<double> got(2, 0.0);
  std::vector<std::thread> users;
  for (size_t u = 0; u < 2; ++u)
    users.emplace_back([&, u] {
      for (int rep = 0; rep < 20; ++rep) got[u] += chunked_sum(n, grain) == expected ? 1.0 : 0.0;
    });
  for (std::thread& t : users) t.join();
  CHECK(got[0] == 20.0);
  CHECK(got[1] == 20.0);
}

TEST_CASE("parallel ops: two user threads factorising different batches at once") {
  const ThreadCount scope(2);
  const int64_t batch = 10'000;
  std::vector<std::vector<double>> a(2), expected(2);
  for (size_t u = 0; u < 2; ++u) {
    // Diagonal SPD matrices diag(1, 4, 9) * (u + 1): the factor is diag(1, 2, 3) * sqrt(u + 1).
    a[u].assign(static_cast<size_t>(batch * 9), 0.0);
    for (int64_t b = 0; b < batch; ++b)
      for (int i = 0; i < 3; ++i) a[u][static_cast<size_t>(b * 9 + i * 4)] = (i + 1.0) * (i + 1.0) * (u + 1.0);
  }
  std::vector<std::thread> users;
  std::vector<int64_t> bad(2, 0);
  for (size_t u = 0; u < 2; ++u)
    users.emplace_back([&, u] {
      std::vector<int64_t> info(static_cast<size_t>(batch), -1);
      linalg::kernels::potrf(true, 3, a[u].data(), 9, batch, info.data());
      for (int64_t b = 0; b < batch; ++b) {
        bad[u] += info[static_cast<size_t>(b)] != 0;
        for (int i = 0; i < 3; ++i)
          bad[u] += std::abs(a[u][static_cast<size_t>(b * 9 + i * 4)] - (i + 1.0) * std::sqrt(u + 1.0)) > 1e-15;
      }
    });
  for (std::thread& t : users) t.join();
  CHECK(bad[0] == 0);
  CHECK(bad[1] == 0);
}

TEST_CASE("parallel_for: nested calls run inline on the chunk's thread, in order") {
  const ThreadCount scope(3);
  std::atomic<int64_t> wrong{0}, total{0};
  parallel_for(64, 4, [&](int64_t begin, int64_t end) {
    CHECK(in_parallel_region());
    const auto outer = std::this_thread::get_id();
    int64_t last_end = 0;
    parallel_for(100, 7, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() != outer || b != last_end) ++wrong;
      last_end = e;
      total += e - b;
    });
    static_cast<void>(begin), static_cast<void>(end);
  });
  CHECK(wrong.load() == 0);
  CHECK(total.load() == 16 * 100);
  CHECK_FALSE(in_parallel_region());
}

TEST_CASE("parallel_for: the lowest failing chunk's typed exception reaches the caller") {
  for (int64_t threads : kThreadCounts) {
    const ThreadCount scope(threads);
    for (int rep = 0; rep < 5; ++rep) {
      std::atomic<int64_t> ran{0};
      try {
        parallel_for(40, 1, [&](int64_t begin, int64_t) {
          ++ran;
          if (begin == 9 || begin == 3 || begin == 30)
            throw NotPositiveDefinite("potrf", "chunk failed", "A", {{40, 3, 3}}, {begin}, begin, 2);
        });
        FAIL("no exception");
      } catch (const NotPositiveDefinite& e) {
        CHECK(e.flat_batch_index() == 3);
        CHECK(e.minor_order() == 2);
      }
      CHECK(ran.load() >= 4);  // chunks 0..3 always run
    }
    // A cholla exception of another type keeps its type too.
    CHECK_THROWS_AS(parallel_for(10, 2, [](int64_t b, int64_t) {
                      if (b == 4) throw ShapeError("op", "bad shape");
                    }),
                    ShapeError);
  }
}

TEST_CASE("parallel_for: an op's error inside a parallel batch names the failing matrix") {
  const ThreadCount scope(2);
  Tensor a = expand(reshape(Tensor::eye(3), {1, 3, 3}), {50'000, 3, 3}).clone();
  a.mutable_data()[static_cast<size_t>(31'234 * 9 + 8)] = -1.0;  // matrix 31234: minor 3 fails
  a.mutable_data()[static_cast<size_t>(40'000 * 9 + 0)] = -1.0;  // matrix 40000: minor 1 fails
  try {
    static_cast<void>(linalg::potrf(a));
    FAIL("no exception");
  } catch (const NotPositiveDefinite& e) {
    CHECK(e.flat_batch_index() == 31'234);
    CHECK(e.minor_order() == 3);
  }
}

TEST_CASE("set_num_threads: bad counts and calls from inside a chunk are DomainErrors") {
  const ThreadCount scope(2);
  CHECK(num_threads() == 2);
  CHECK_THROWS_AS(set_num_threads(0), DomainError);
  CHECK_THROWS_AS(set_num_threads(-3), DomainError);
  CHECK(num_threads() == 2);
  std::atomic<int> errors{0};
  parallel_for(4, 1, [&](int64_t, int64_t) {
    try {
      set_num_threads(1);
    } catch (const DomainError&) {
      ++errors;
    }
  });
  CHECK(errors.load() == 4);
}
