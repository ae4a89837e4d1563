// One training epoch of the seed-3 model: 6 -> Dense 24 relu -> Dense 12 relu ->
// MultivariateNormalHead(5), Adam, batch 100, 10,000 rows (100 steps of forward, -log_prob,
// backward and update). Reported per epoch and per step.
#include <benchmark/benchmark.h>

#include <cholla.hpp>

using namespace cholla;

namespace {

struct Model : nn::Module {
  nn::Linear dense1, dense2;
  nn::MultivariateNormalHead head;
  explicit Model(Rng& rng) : dense1(6, 24, rng), dense2(24, 12, rng), head(12, 5, rng) {
    register_module("dense1", dense1);
    register_module("dense2", dense2);
    register_module("head", head);
  }
  dist::MultivariateNormal forward(const Tensor& x) { return head(relu(dense2(relu(dense1(x))))); }
};

void BM_Seed3Epoch(benchmark::State& state) {
  Rng rng(3);
  Tensor X = Tensor::uniform({10000, 6}, -1.0, 1.0, rng);
  Tensor Y = linalg::gemm2(X, Tensor::randn({6, 5}, rng)) + 0.3 * Tensor::randn({10000, 5}, rng);
  Model model(rng);
  optim::Adam opt(model.parameters(), {.lr = 1e-3});
  int64_t epoch = 0;
  for (auto _ : state) {
    for (auto [xb, yb] : data::DataLoader(X, Y, {.batch_size = 100, .seed = epoch})) {
      Tensor loss = -mean(model.forward(xb).log_prob(yb));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    ++epoch;
  }
  state.counters["per_step"] = benchmark::Counter(100, benchmark::Counter::kIsIterationInvariantRate |
                                                           benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK(BM_Seed3Epoch)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
