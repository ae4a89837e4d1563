// Differentiable linalg ops (forward, forward+backward) next to the raw LAPACK/BLAS call on
// the same data. Counter "ns/mat" is CPU time per matrix (printed with an SI prefix and a
// stray "s": "12.7ks" = 12 700 ns). Run with OPENBLAS_NUM_THREADS=1.
//
// Losses: potrf uses its natural loss sum(sumlogdiag(potrf(A))); trsm, potri and gemm2 use
// sum(out * W) with a fixed W. Backward goes through cholla::grad (no .grad accumulation).
// Raw variants copy their in-place input first (as the ops do), so the comparison is fair.
#include <benchmark/benchmark.h>

#include <cblas.h>
#include <lapacke.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <cholla.hpp>

using namespace cholla;

namespace {

enum class Mode { kForward, kForwardBackward, kRaw };

struct Inputs {
  Tensor spd, lower, general, weight;
};

// SPD (X X^T / n + I), lower triangular with diagonal in [1, 2], general, and W.
Inputs make_inputs(int64_t n, int64_t batch) {
  Rng rng(7);
  NoGrad guard;
  const Shape s{batch, n, n};
  Tensor X = Tensor::uniform(s, -1.0, 1.0, rng);
  Tensor S = linalg::syrk(X) / static_cast<double>(n) + Tensor::eye(n);
  Tensor off = linalg::tril(Tensor::uniform(s, -0.5, 0.5, rng), -1);
  Tensor diag = linalg::makediag(Tensor::uniform({batch, n}, 1.0, 2.0, rng));
  return {S, off + diag, Tensor::uniform(s, -1.0, 1.0, rng), Tensor::uniform(s, -1.0, 1.0, rng)};
}

void finish(benchmark::State& state, int64_t batch) {
  state.counters["ns/mat"] = benchmark::Counter(
      static_cast<double>(batch) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// Runs `op` on leaves built from `in` (fresh requires_grad copies for the backward mode).
template <class Op>
void run_op(benchmark::State& state, Mode mode, std::vector<Tensor> in, Op op) {
  if (mode == Mode::kForward) {
    NoGrad guard;
    for (auto _ : state) benchmark::DoNotOptimize(op(in).data().data());
    return;
  }
  for (Tensor& t : in) t = t.detach().requires_grad(true);
  for (auto _ : state) {
    std::vector<Tensor> g = grad({op(in)}, in);
    benchmark::DoNotOptimize(g[0].data().data());
  }
}

void BM_potrf(benchmark::State& state, Mode mode) {
  const int64_t n = state.range(0), batch = state.range(1);
  const Inputs x = make_inputs(n, batch);
  if (mode == Mode::kRaw) {
    const std::vector<double> src = x.spd.to_vector();
    std::vector<double> a(src.size());
    const int ni = static_cast<int>(n);
    for (auto _ : state) {
      std::memcpy(a.data(), src.data(), src.size() * sizeof(double));
      for (int64_t b = 0; b < batch; ++b)
        LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', ni, &a[b * n * n], ni);
      benchmark::DoNotOptimize(a.data());
    }
  } else if (mode == Mode::kForward) {
    run_op(state, mode, {x.spd}, [](const std::vector<Tensor>& v) { return linalg::potrf(v[0]); });
  } else {
    run_op(state, mode, {x.spd}, [](const std::vector<Tensor>& v) {
      return sum(linalg::sumlogdiag(linalg::potrf(v[0])));
    });
  }
  finish(state, batch);
}

void BM_trsm(benchmark::State& state, Mode mode) {
  const int64_t n = state.range(0), batch = state.range(1);
  const Inputs x = make_inputs(n, batch);
  if (mode == Mode::kRaw) {
    const std::vector<double> t = x.lower.to_vector(), src = x.general.to_vector();
    std::vector<double> b_(src.size());
    const int ni = static_cast<int>(n);
    for (auto _ : state) {
      std::memcpy(b_.data(), src.data(), src.size() * sizeof(double));
      for (int64_t b = 0; b < batch; ++b)
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, ni, ni, 1.0,
                    &t[b * n * n], ni, &b_[b * n * n], ni);
      benchmark::DoNotOptimize(b_.data());
    }
  } else {
    const Tensor W = x.weight;
    run_op(state, mode, {x.lower, x.general}, [mode, W](const std::vector<Tensor>& v) {
      Tensor out = linalg::trsm(v[0], v[1]);
      return mode == Mode::kForward ? out : sum(out * W);
    });
  }
  finish(state, batch);
}

void BM_potri(benchmark::State& state, Mode mode) {
  const int64_t n = state.range(0), batch = state.range(1);
  const Inputs x = make_inputs(n, batch);
  if (mode == Mode::kRaw) {  // one triangle only; the op also mirrors it
    const std::vector<double> src = x.lower.to_vector();
    std::vector<double> a(src.size());
    const int ni = static_cast<int>(n);
    for (auto _ : state) {
      std::memcpy(a.data(), src.data(), src.size() * sizeof(double));
      for (int64_t b = 0; b < batch; ++b)
        LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'U', ni, &a[b * n * n], ni);
      benchmark::DoNotOptimize(a.data());
    }
  } else {
    const Tensor W = x.weight;
    run_op(state, mode, {x.lower}, [mode, W](const std::vector<Tensor>& v) {
      Tensor out = linalg::potri(v[0]);
      return mode == Mode::kForward ? out : sum(out * W);
    });
  }
  finish(state, batch);
}

void BM_gemm2(benchmark::State& state, Mode mode) {
  const int64_t n = state.range(0), batch = state.range(1);
  const Inputs x = make_inputs(n, batch);
  if (mode == Mode::kRaw) {
    const std::vector<double> a = x.general.to_vector(), b_ = x.weight.to_vector();
    std::vector<double> c(a.size());
    const int ni = static_cast<int>(n);
    for (auto _ : state) {
      for (int64_t b = 0; b < batch; ++b)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0, &a[b * n * n], ni,
                    &b_[b * n * n], ni, 0.0, &c[b * n * n], ni);
      benchmark::DoNotOptimize(c.data());
    }
  } else {
    const Tensor W = x.lower;
    run_op(state, mode, {x.general, x.weight}, [mode, W](const std::vector<Tensor>& v) {
      Tensor out = linalg::gemm2(v[0], v[1]);
      return mode == Mode::kForward ? out : sum(out * W);
    });
  }
  finish(state, batch);
}

}  // namespace

// Registered by hand so that each op's variants run next to each other on the same size:
// on a shared machine, load drifts between families would otherwise skew the ratios.
int main(int argc, char** argv) {
  cholla::set_num_threads(1);  // single-thread figures (CPU time counts the calling thread only)
  struct Op {
    const char* name;
    void (*fn)(benchmark::State&, Mode);
  };
  const Op ops[] = {{"potrf", BM_potrf}, {"trsm", BM_trsm}, {"potri", BM_potri},
                    {"gemm2", BM_gemm2}};
  const std::pair<Mode, const char*> modes[] = {
      {Mode::kForward, "fwd"}, {Mode::kForwardBackward, "fwdbwd"}, {Mode::kRaw, "raw"}};
  for (const Op& op : ops)
    for (int64_t n : {3, 8, 64, 256, 1024})
      for (int64_t batch : {1, 4096}) {
        if (batch > 1 && n >= 256) continue;  // minutes per run, gigabytes of inputs
        for (const auto& [mode, label] : modes) {
          const std::string name = std::string(op.name) + "/" + label;
          benchmark::RegisterBenchmark(name.c_str(), op.fn, mode)
              ->ArgNames({"n", "batch"})
              ->Args({n, batch})
              ->Unit(benchmark::kMicrosecond);
        }
      }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
