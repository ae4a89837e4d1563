// Tape overhead: a chain of kOps elementwise ops on a tensor of n elements (n = 1 and 1000),
// cycling through three cheap ops so that values stay bounded:
//     y = y * 1.0001   (affine, unary)
//     y = tanh(y)      (unary, backward uses the output)
//     y = y + x        (binary, the leaf x takes part: backward accumulates into x.grad())
// Counter "ns/op" is wall time divided by the number of ops in the chain.
//
//   FwdBwd     forward recorded + backward (the "tape overhead" target of docs/design.md)
//   FwdRecord  forward recorded, then the tape released without a backward
//   FwdNoGrad  forward under NoGrad: kernels and tensor allocation only, no tape
//   RawLoop    the same maths fwd+bwd as hand-written loops over preallocated buffers: the floor
//
//   AffineChain  x = x * 1.0001 + 0.0001 on one element, kOps affine ops, forward + backward
//                (the engine-core figure compared with Stan Math and libtorch in bench/README.md)
//
// Counter "allocs/op": calls of the global operator new per op (this binary replaces it with a
// counting one; every C++ allocation of the library goes through it).
//
// Run with OPENBLAS_NUM_THREADS=1 (scripts/run-bench.sh does).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include <cholla.hpp>

#include "allocation_count.hpp"

namespace {

using cholla::Tensor;

constexpr int64_t kOps = 10000;

// Reports heap allocations per op over the timed loop.
class AllocationCounter {
 public:
  explicit AllocationCounter(benchmark::State& state)
      : state_(state), start_(cholla::bench::allocations()) {}
  ~AllocationCounter() {
    const double count = static_cast<double>(cholla::bench::allocations() - start_);
    state_.counters["allocs/op"] =
        count / (static_cast<double>(state_.iterations()) * static_cast<double>(kOps));
  }

 private:
  benchmark::State& state_;
  uint64_t start_;
};

Tensor chain(const Tensor& x) {
  Tensor y = x;
  for (int64_t i = 0; i < kOps; ++i) {
    switch (i % 3) {
      case 0: y = y * 1.0001; break;
      case 1: y = cholla::tanh(y); break;
      default: y = y + x; break;
    }
  }
  return y;
}

void per_op(benchmark::State& state) {
  state.counters["ns/op"] = benchmark::Counter(
      static_cast<double>(kOps) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["n"] = static_cast<double>(state.range(0));
}

Tensor leaf(int64_t n) {
  cholla::Rng rng(1);
  return Tensor::uniform({n}, -0.5, 0.5, rng).requires_grad(true);
}

void BM_AffineChain_FwdBwd(benchmark::State& state) {
  Tensor x = Tensor::scalar(0.5).requires_grad(true);
  AllocationCounter allocations(state);
  for (auto _ : state) {
    Tensor y = x;
    for (int64_t i = 0; i < kOps / 2; ++i) y = y * 1.0001 + 0.0001;
    y.backward();
    benchmark::DoNotOptimize(x.grad().data().data());
    x.zero_grad();
  }
  per_op(state);
}

// One MVN NLL call, N = 1, d = 3, forward + backward: the per-call engine overhead that a
// small-batch training step pays (state.range(0): 0 scale_tril, 1 covariance).
void BM_MvnCall_N1(benchmark::State& state) {
  const bool covariance = state.range(0) == 1;
  Tensor loc = Tensor::from({1, 3}, {0.1, -0.2, 0.3}).requires_grad(true);
  const Tensor L = Tensor::from({1, 3, 3}, {1.0, 0, 0, 0.2, 0.9, 0, -0.1, 0.3, 1.1});
  Tensor matrix = (covariance ? cholla::linalg::syrk(L) : L).detach().requires_grad(true);
  const Tensor y = Tensor::from({1, 3}, {0.5, 0.1, -0.4});
  const uint64_t start = cholla::bench::allocations();
  for (auto _ : state) {
    auto mvn = covariance ? cholla::dist::MultivariateNormal::from_covariance(loc, matrix)
                          : cholla::dist::MultivariateNormal::from_scale_tril(loc, matrix);
    Tensor loss = -mean(mvn.log_prob(y));
    loss.backward();
    loc.zero_grad();
    matrix.zero_grad();
    benchmark::DoNotOptimize(loss.data().data());
  }
  state.counters["allocs/call"] = static_cast<double>(cholla::bench::allocations() - start) /
                                  static_cast<double>(state.iterations());
}

void BM_TapeChain_FwdBwd(benchmark::State& state) {
  Tensor x = leaf(state.range(0));
  const Tensor seed = Tensor::ones({state.range(0)});
  AllocationCounter allocations(state);
  for (auto _ : state) {
    Tensor y = chain(x);
    y.backward(seed, {});  // seeds the n-element output directly: no extra reduction op
    benchmark::DoNotOptimize(x.grad().data().data());
    x.zero_grad();
  }
  per_op(state);
}

void BM_TapeChain_FwdRecord(benchmark::State& state) {
  Tensor x = leaf(state.range(0));
  for (auto _ : state) {
    Tensor y = chain(x);
    benchmark::DoNotOptimize(y.data().data());
    cholla::Tape::current().release();
  }
  per_op(state);
}

void BM_TapeChain_FwdNoGrad(benchmark::State& state) {
  Tensor x = leaf(state.range(0));
  cholla::NoGrad guard;
  for (auto _ : state) {
    Tensor y = chain(x);
    benchmark::DoNotOptimize(y.data().data());
  }
  per_op(state);
}

// The same chain with no engine at all: forward keeps every intermediate (as a tape must),
// backward walks them in reverse.
void BM_TapeChain_RawLoop(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  std::vector<double> x(n), gx(n), g(n);
  for (size_t j = 0; j < n; ++j) x[j] = -0.5 + static_cast<double>(j) / static_cast<double>(n);
  std::vector<double> ys(static_cast<size_t>(kOps + 1) * n);
  for (auto _ : state) {
    std::copy(x.begin(), x.end(), ys.begin());
    for (int64_t i = 0; i < kOps; ++i) {
      const double* y = &ys[static_cast<size_t>(i) * n];
      double* out = &ys[static_cast<size_t>(i + 1) * n];
      switch (i % 3) {
        case 0: for (size_t j = 0; j < n; ++j) out[j] = y[j] * 1.0001; break;
        case 1: for (size_t j = 0; j < n; ++j) out[j] = std::tanh(y[j]); break;
        default: for (size_t j = 0; j < n; ++j) out[j] = y[j] + x[j]; break;
      }
    }
    std::fill(g.begin(), g.end(), 1.0);
    std::fill(gx.begin(), gx.end(), 0.0);
    for (int64_t i = kOps - 1; i >= 0; --i) {
      const double* out = &ys[static_cast<size_t>(i + 1) * n];
      switch (i % 3) {
        case 0: for (size_t j = 0; j < n; ++j) g[j] *= 1.0001; break;
        case 1: for (size_t j = 0; j < n; ++j) g[j] *= 1.0 - out[j] * out[j]; break;
        default: for (size_t j = 0; j < n; ++j) gx[j] += g[j]; break;
      }
    }
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  }
  per_op(state);
}

}  // namespace

BENCHMARK(BM_AffineChain_FwdBwd)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MvnCall_N1)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TapeChain_FwdBwd)->Arg(1)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeChain_FwdRecord)->Arg(1)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeChain_FwdNoGrad)->Arg(1)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TapeChain_RawLoop)->Arg(1)->Arg(1000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
