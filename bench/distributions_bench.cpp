// MultivariateNormal negative log-likelihood, forward + backward, ns per sample:
//   loss = -mean(MultivariateNormal::from_X(loc, matrix).log_prob(y)); loss.backward()
// with one distribution per sample (loc [N, d], matrix [N, d, d]) as a network head produces,
// for the scale_tril and covariance parameterisations. Reference (docs/design.md, 1 thread, d = 3,
// N = 4096): PyTorch 1.13 494 / 1,160 ns per sample, target <= 35 / <= 80.
#include <benchmark/benchmark.h>

#include <cholla.hpp>

using namespace cholla;

namespace {

struct Inputs {
  Tensor loc, matrix, y;
};

Inputs make_inputs(int64_t n, int64_t d, bool covariance) {
  Rng rng(1);
  Tensor v = Tensor::randn({n, d * (d + 1) / 2}, rng) * 0.3;
  Tensor L;
  {
    NoGrad guard;
    L = dist::transforms::fill_scale_tril(v);
  }
  Tensor m = covariance ? linalg::syrk(L) : L;
  return {Tensor::randn({n, d}, rng).requires_grad(true), m.detach().requires_grad(true),
          Tensor::randn({n, d}, rng)};
}

void nll(benchmark::State& state, bool covariance) {
  const int64_t n = state.range(0), d = state.range(1);
  Inputs in = make_inputs(n, d, covariance);
  for (auto _ : state) {
    auto mvn = covariance ? dist::MultivariateNormal::from_covariance(in.loc, in.matrix)
                          : dist::MultivariateNormal::from_scale_tril(in.loc, in.matrix);
    Tensor loss = -mean(mvn.log_prob(in.y));
    loss.backward();
    in.loc.zero_grad();
    in.matrix.zero_grad();
    benchmark::DoNotOptimize(loss.item());
  }
  // Seconds per sample (printed with an SI prefix: "35n" is 35 ns).
  state.counters["per_sample"] = benchmark::Counter(
      static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_NllScaleTril(benchmark::State& state) { nll(state, false); }
void BM_NllCovariance(benchmark::State& state) { nll(state, true); }

void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t d : {2, 3, 5, 16})
    for (int64_t n : {1, 64, 4096, 65536}) b->Args({n, d});
}

}  // namespace

BENCHMARK(BM_NllScaleTril)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NllCovariance)->Apply(sizes)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
