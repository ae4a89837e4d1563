// MultivariateNormal negative log-likelihood, forward + backward, ns per sample:
//   loss = -mean(MultivariateNormal::from_X(loc, matrix).log_prob(y)); loss.backward()
// with one distribution per sample (loc [N, d], matrix [N, d, d]) as a network head produces,
// for the scale_tril and covariance parameterisations.
//
// BM_Nll* is the library as shipped (the SIMD kernels of distributions/mvn_simd.cpp for
// d <= 8). BM_RefNll* is the same computation through the reference pieces the SIMD path
// replaced: the scalar validation loops, potrf recorded on the tape, and the scalar fused
// kernel (distributions/mvn_kernels.cpp). Run both interleaved for an A/B in one process:
//   distributions_bench --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true
// BM_Kernel* times the SIMD kernels alone on raw buffers: the one pass that computes log_prob
// and the gradients of -mean(log_prob) (what BM_Nll* runs), and the forward and backward passes
// it replaced (still run for other losses). BM_MemoryFloor moves the one pass's bytes and
// nothing else.
#include <algorithm>
#include <new>
#include <vector>

#include <immintrin.h>

#include <benchmark/benchmark.h>

#include <cholla.hpp>

#include "distributions/detail/factorise.hpp"
#include "distributions/detail/mvn_simd.hpp"
#include "distributions/detail/validation.hpp"

using namespace cholla;

namespace {

// Buffers on cache lines, as the library's tensors are (autodiff/storage.cpp), so the raw-buffer
// benchmarks write the same whole lines the library does.
template <class T>
struct LineAllocator {
  using value_type = T;
  LineAllocator() = default;
  template <class U>
  LineAllocator(const LineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  bool operator==(const LineAllocator&) const = default;
};
using Buffer = std::vector<double, LineAllocator<double>>;

Buffer buffer(int64_t count, double value = 0.0) { return Buffer(static_cast<size_t>(count), value); }

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

// Seconds per sample (printed with an SI prefix: "35n" is 35 ns).
void per_sample(benchmark::State& state, int64_t n) {
  state.counters["per_sample"] = benchmark::Counter(
      static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// The log-density as MultivariateNormal computed it before the SIMD kernels: every check a
// scalar loop, the covariance factorised by a recorded potrf, the scalar fused kernel.
Tensor reference_log_prob(const Tensor& loc, const Tensor& matrix, const Tensor& y, bool covariance) {
  const char* who = "reference";
  dist::validation::check_parameters(loc, matrix, who, "matrix");
  Tensor factor = matrix;
  if (covariance) {
    dist::validation::check_symmetric(matrix, 1e-6, 1e-12, who, "matrix");
    factor = dist::factorise(matrix, dist::Throw{}, who, "matrix").factor;
  } else {
    dist::validation::check_lower_positive_diagonal(matrix, who, "matrix");
  }
  dist::validation::check_sample(y, matrix.size(-1), who);
  return dist::detail::fused_log_prob(loc, factor, y, false);
}

// Arguments (N, d, threads); cholla's pool runs `threads` threads (the bench default is 1).
void nll(benchmark::State& state, bool covariance, bool reference) {
  const int64_t n = state.range(0), d = state.range(1);
  set_num_threads(state.range(2));
  Inputs in = make_inputs(n, d, covariance);
  for (auto _ : state) {
    Tensor lp;
    if (reference) {
      lp = reference_log_prob(in.loc, in.matrix, in.y, covariance);
    } else {
      auto mvn = covariance ? dist::MultivariateNormal::from_covariance(in.loc, in.matrix)
                            : dist::MultivariateNormal::from_scale_tril(in.loc, in.matrix);
      lp = mvn.log_prob(in.y);
    }
    Tensor loss = -mean(lp);
    loss.backward();
    in.loc.zero_grad();
    in.matrix.zero_grad();
    benchmark::DoNotOptimize(loss.item());
  }
  per_sample(state, n);
}

void BM_NllScaleTril(benchmark::State& state) { nll(state, false, false); }
void BM_NllCovariance(benchmark::State& state) { nll(state, true, false); }
void BM_RefNllScaleTril(benchmark::State& state) { nll(state, false, true); }
void BM_RefNllCovariance(benchmark::State& state) { nll(state, true, true); }

// The SIMD kernels alone (scale_tril form, all gradients but x): one pass, or forward then
// backward.
void kernel(benchmark::State& state, bool one_pass) {
  const int64_t n = state.range(0), d = state.range(1);
  Inputs in = make_inputs(n, d, false);
  const auto batch = dist::detail::plan_mvn_batch(in.loc, in.matrix, in.y);
  Buffer out = buffer(n), g = buffer(n, -1.0 / static_cast<double>(n)), gloc = buffer(n * d), gm = buffer(n * d * d);
  std::vector<double> shared(2 * 8 + 64);
  dist::detail::MvnPass pass{.batch = &batch, .matrix = dist::detail::MvnMatrix::ScaleTril,
                             .loc = in.loc.data().data(), .factor = in.matrix.data().data(),
                             .x = in.y.data().data(), .out = out.data(), .eager_g = g[0]};
  for (auto _ : state) {
    if (one_pass) {
      pass.gloc = gloc.data();
      pass.gmatrix = gm.data();
      benchmark::DoNotOptimize(dist::detail::simd_eager(pass, 0, n));
    } else {
      pass.g = nullptr;
      pass.gloc = pass.gmatrix = nullptr;
      benchmark::DoNotOptimize(dist::detail::simd_forward(pass, 0, n));
      pass.g = g.data();
      pass.gloc = gloc.data();
      pass.gmatrix = gm.data();
      dist::detail::simd_backward(pass, 0, n, shared.data());
    }
    benchmark::ClobberMemory();
  }
  per_sample(state, n);
}

// The memory floor of the one pass: a loop that only moves its bytes, reading loc, the factor
// and y (120 bytes per sample at d = 3) and writing log_prob and the gradients of loc and the
// factor (104 bytes), 8 samples at a time, with no arithmetic to speak of: AVX-512 loads and
// whole-line aligned stores when the machine has it (as the kernels), else SSE2. No kernel that
// writes dense [N, d, d] gradients can beat it; at N = 65,536 the data streams from L3.
// Arguments (N, d, stream): stream = 1 writes the gradients with non-temporal stores.
template <bool kStream>
__attribute__((target("avx512f"))) void floor_avx512(const double* loc, const double* m, const double* y, double* out,
                                                       double* gloc, double* gm, int64_t n, int64_t d) {
  for (int64_t i = 0; i < n; i += 8) {
    __m512d acc = _mm512_setzero_pd();
    for (int64_t k = 0; k < 8 * d; k += 8) acc = _mm512_add_pd(acc, _mm512_load_pd(loc + i * d + k));
    for (int64_t k = 0; k < 8 * d * d; k += 8) acc = _mm512_add_pd(acc, _mm512_load_pd(m + i * d * d + k));
    for (int64_t k = 0; k < 8 * d; k += 8) acc = _mm512_add_pd(acc, _mm512_load_pd(y + i * d + k));
    _mm512_store_pd(out + i, acc);  // log_prob: ordinary stores always, as the kernel
    for (int64_t k = 0; k < 8 * d; k += 8) {
      if constexpr (kStream) _mm512_stream_pd(gloc + i * d + k, acc);
      else _mm512_store_pd(gloc + i * d + k, acc);
    }
    for (int64_t k = 0; k < 8 * d * d; k += 8) {
      if constexpr (kStream) _mm512_stream_pd(gm + i * d * d + k, acc);
      else _mm512_store_pd(gm + i * d * d + k, acc);
    }
  }
  if constexpr (kStream) _mm_sfence();
}

void BM_MemoryFloor(benchmark::State& state) {
  const int64_t n = state.range(0) / 8 * 8, d = state.range(1);
  const bool stream = state.range(2) != 0, avx512 = __builtin_cpu_supports("avx512f");
  Buffer loc = buffer(n * d, 1.0), m = buffer(n * d * d, 1.0), y = buffer(n * d, 1.0), out = buffer(n),
         gloc = buffer(n * d), gm = buffer(n * d * d);
  for (auto _ : state) {
    if (avx512) {
      if (stream) floor_avx512<true>(loc.data(), m.data(), y.data(), out.data(), gloc.data(), gm.data(), n, d);
      else floor_avx512<false>(loc.data(), m.data(), y.data(), out.data(), gloc.data(), gm.data(), n, d);
      benchmark::ClobberMemory();
      continue;
    }
    for (int64_t i = 0; i < n; i += 8) {
      double acc[8] = {};  // independent lanes, so the compiler vectorises the adds
      auto read = [&acc](const double* p, int64_t count) {
        for (int64_t k = 0; k < count; k += 8)
          for (int64_t j = 0; j < 8; ++j) acc[j] += p[k + j];
      };
      read(loc.data() + i * d, 8 * d);
      read(m.data() + i * d * d, 8 * d * d);
      read(y.data() + i * d, 8 * d);
      const double v = acc[0] + acc[7];
      std::fill_n(out.data() + i, 8, v);
      std::fill_n(gloc.data() + i * d, 8 * d, v);
      std::fill_n(gm.data() + i * d * d, 8 * d * d, v);
    }
    benchmark::ClobberMemory();
  }
  per_sample(state, n);
}

void BM_KernelScaleTril(benchmark::State& state) { kernel(state, true); }
void BM_KernelScaleTrilTwoPass(benchmark::State& state) { kernel(state, false); }

// The SIMD Cholesky of from_covariance alone: factor, symmetry and finiteness checks (arg 2 =
// 1), or the factorisation only (0).
void BM_KernelCholesky(benchmark::State& state) {
  const int64_t n = state.range(0), d = state.range(1);
  Inputs in = make_inputs(n, d, true);
  std::vector<double> L(static_cast<size_t>(n * d * d));
  const bool checks = state.range(2) != 0;
  const dist::detail::CholeskyPass pass{.A = in.matrix.data().data(), .d = d, .count = n, .L = L.data(),
                                        .check_symmetry = checks, .symmetry_rtol = 1e-6, .symmetry_atol = 1e-12,
                                        .check_finite = checks};
  for (auto _ : state) {
    benchmark::DoNotOptimize(dist::detail::simd_cholesky(pass));
    benchmark::ClobberMemory();
  }
  per_sample(state, n);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "d", "threads"});
  for (int64_t d : {2, 3, 5, 16})
    for (int64_t n : {1, 64, 4096, 65536}) b->Args({n, d, 1});
}

void fused_sizes(benchmark::internal::Benchmark* b) {  // the reference kernel covers d <= 8
  b->ArgNames({"N", "d", "threads"});
  for (int64_t d : {3, 5})
    for (int64_t n : {1, 4096, 65536}) b->Args({n, d, 1});
}

// (N, d, stream) for the memory floor: ordinary and non-temporal stores, from L2-sized batches
// to L3-sized ones.
void stream_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "d", "stream"});
  for (int64_t d : {3, 5})
    for (int64_t n : {4096, 16384, 32768, 65536})
      for (int64_t stream : {0, 1}) b->Args({n, d, stream});
}

// Thread scaling, in wall time (CPU time counts the calling thread only).
void thread_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "d", "threads"})->UseRealTime();
  for (int64_t d : {3, 5})
    for (int64_t threads : {1, 2}) b->Args({65536, d, threads});
}

}  // namespace

BENCHMARK(BM_NllScaleTril)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NllCovariance)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RefNllScaleTril)->Apply(fused_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RefNllCovariance)->Apply(fused_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NllScaleTril)->Name("BM_NllScaleTril_wall")->Apply(thread_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NllCovariance)->Name("BM_NllCovariance_wall")->Apply(thread_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_KernelScaleTril)->Apply(fused_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_KernelScaleTrilTwoPass)->Apply(fused_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MemoryFloor)->Apply(stream_sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_KernelCholesky)->ArgNames({"N", "d", "checks"})->ArgsProduct({{4096}, {3, 5}, {0, 1}})->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
