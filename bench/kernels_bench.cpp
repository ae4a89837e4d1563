// Kernels against the plain per-matrix OpenBLAS/LAPACK loop (and, for n <= 8, the scalar
// reference loops) on the same data; elementwise maths against the std:: loop.
// Counter "ns/mat" is CPU time per matrix (printed with an SI prefix and a stray "s":
// "12.7ks" = 12 700 ns). Run with OPENBLAS_NUM_THREADS=1 for stable
// numbers. In-place kernels (potrf, trsm, potri) restore their input with a memcpy inside
// the timed loop, in both variants, so repeated solves cannot drift into inf/denormals.
#include <benchmark/benchmark.h>

#include <cblas.h>
#include <lapacke.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <cholla.hpp>

#include "autodiff/parallel.hpp"
#include "autodiff/detail/vector_math.hpp"
#include "linalg/detail/kernels/kernels.hpp"
#include "linalg/detail/kernels/small.hpp"

namespace k = cholla::linalg::kernels;

namespace {

// batch matrices of order n: SPD (diagonally dominant) or lower triangular with a
// dominant diagonal, so factorisations succeed and solves stay well conditioned.
enum class Kind { kGeneral, kSpd, kLower };

std::vector<double> make(Kind kind, int64_t n, int64_t batch) {
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(static_cast<size_t>(n * n * batch));
  for (int64_t b = 0; b < batch; ++b) {
    double* a = &v[static_cast<size_t>(b * n * n)];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        const double x = u(gen);
        a[i * n + j] = kind == Kind::kLower ? x / static_cast<double>(n) : x;
        a[j * n + i] = kind == Kind::kLower ? 0.0 : x;
      }
    if (kind == Kind::kGeneral)
      for (int64_t i = 0; i < n * n; ++i) a[i] = u(gen);
    if (kind != Kind::kGeneral)
      for (int64_t i = 0; i < n; ++i) a[i * n + i] = kind == Kind::kSpd ? n + 1.0 : 1.5;
  }
  return v;
}

// kKernel: the public kernel (pool + SIMD where there is one); kReference: the per-matrix
// loops of small.hpp (what the kernel ran before it was vectorised; n <= 8 only); kRaw: one
// LAPACK/BLAS call per matrix.
enum class Variant { kKernel, kReference, kRaw };

// Benchmarks take (n, batch, threads); the thread count applies to the kernel variant.
void use_threads(benchmark::State& state) { cholla::set_num_threads(state.range(2)); }

void finish(benchmark::State& state, int64_t batch) {
  state.counters["ns/mat"] = benchmark::Counter(
      static_cast<double>(batch) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <Variant V>
void BM_potrf(benchmark::State& state) {
  use_threads(state);
  const int64_t n = state.range(0), batch = state.range(1);
  const std::vector<double> src = make(Kind::kSpd, n, batch);
  std::vector<double> a(src.size());
  std::vector<int64_t> info(static_cast<size_t>(batch));
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    std::memcpy(a.data(), src.data(), src.size() * sizeof(double));
    if constexpr (V == Variant::kRaw)
      for (int64_t b = 0; b < batch; ++b)
        info[b] = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', ni, &a[b * n * n], ni);
    else if constexpr (V == Variant::kReference)
      k::small::reference::potrf(true, n, a.data(), n * n, batch, info.data());
    else
      k::potrf(true, n, a.data(), n * n, batch, info.data());
    benchmark::DoNotOptimize(a.data());
  }
  finish(state, batch);
}

template <Variant V>
void BM_potri(benchmark::State& state) {
  use_threads(state);
  const int64_t n = state.range(0), batch = state.range(1);
  const std::vector<double> src = make(Kind::kLower, n, batch);
  std::vector<double> a(src.size());
  std::vector<int64_t> info(static_cast<size_t>(batch));
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    std::memcpy(a.data(), src.data(), src.size() * sizeof(double));
    if constexpr (V == Variant::kRaw)  // one triangle only; the kernel also mirrors it
      for (int64_t b = 0; b < batch; ++b)
        info[b] = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'U', ni, &a[b * n * n], ni);
    else if constexpr (V == Variant::kReference)
      k::small::reference::potri(true, n, a.data(), n * n, batch, info.data());
    else
      k::potri(true, n, a.data(), n * n, batch, info.data());
    benchmark::DoNotOptimize(a.data());
  }
  finish(state, batch);
}

// Left, lower, no transpose, B n x Cols (square when Cols == 0): T X = B.
template <Variant V, int Cols = 0>
void BM_trsm(benchmark::State& state) {
  use_threads(state);
  const int64_t n = state.range(0), batch = state.range(1);
  const std::vector<double> t = make(Kind::kLower, n, batch);
  const int64_t nc = Cols == 0 ? n : Cols;
  std::vector<double> src = make(Kind::kGeneral, n, batch);
  src.resize(static_cast<size_t>(n * nc * batch));
  std::vector<double> x(src.size());
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    std::memcpy(x.data(), src.data(), src.size() * sizeof(double));
    if constexpr (V == Variant::kRaw)
      for (int64_t b = 0; b < batch; ++b)
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, ni,
                    static_cast<int>(nc), 1.0, &t[b * n * n], ni, &x[b * n * nc], static_cast<int>(nc));
    else if constexpr (V == Variant::kReference)
      k::small::reference::trsm(false, true, false, n, nc, 1.0, t.data(), n * n, x.data(), n * nc, batch);
    else
      k::trsm(false, true, false, n, nc, 1.0, t.data(), n * n, x.data(), n * nc, batch);
    benchmark::DoNotOptimize(x.data());
  }
  finish(state, batch);
}

template <Variant V>
void BM_gemm(benchmark::State& state) {
  use_threads(state);
  const int64_t n = state.range(0), batch = state.range(1);
  const std::vector<double> a = make(Kind::kGeneral, n, batch);
  const std::vector<double> b_ = make(Kind::kGeneral, n, batch);
  std::vector<double> c(a.size());
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    if constexpr (V == Variant::kRaw)
      for (int64_t b = 0; b < batch; ++b)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0, &a[b * n * n],
                    ni, &b_[b * n * n], ni, 0.0, &c[b * n * n], ni);
    else if constexpr (V == Variant::kReference)
      k::small::reference::gemm(false, false, n, n, n, 1.0, a.data(), n * n, b_.data(), n * n,
                                0.0, c.data(), n * n, batch);
    else
      k::gemm(false, false, n, n, n, 1.0, a.data(), n * n, b_.data(), n * n, 0.0, c.data(),
              n * n, batch);
    benchmark::DoNotOptimize(c.data());
  }
  finish(state, batch);
}

// Elementwise maths over a [400, 400] tensor (the size quoted for libtorch): the op on a
// Tensor (vector kernel, pool), and the std:: loop it replaced, on the same values.
template <bool Op>
void BM_unary(benchmark::State& state, cholla::detail::UnaryFn f) {
  cholla::set_num_threads(state.range(0));
  cholla::Rng rng(1);
  const cholla::Tensor x = cholla::Tensor::uniform({400, 400}, -5.0, 5.0, rng) +
                           (f == cholla::detail::UnaryFn::kLog ? 5.5 : 0.0);
  std::vector<double> out(160'000);
  cholla::NoGrad guard;
  for (auto _ : state) {
    if constexpr (Op) {
      cholla::Tensor y = f == cholla::detail::UnaryFn::kExp   ? cholla::exp(x)
                         : f == cholla::detail::UnaryFn::kLog ? cholla::log(x)
                                                              : cholla::tanh(x);
      benchmark::DoNotOptimize(y.data().data());
    } else {
      const double* in = x.data().data();
      for (size_t i = 0; i < out.size(); ++i) out[i] = cholla::detail::reference_unary(f, in[i]);
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.counters["ns/elem"] = benchmark::Counter(
      160'000 * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

// Registered by hand so that each kernel runs right next to its raw loop on the same size:
// on a shared machine, load drifts between families would otherwise skew the ratios.
int main(int argc, char** argv) {
  struct Op {
    const char* name;
    void (*kernel)(benchmark::State&);
    void (*reference)(benchmark::State&);
    void (*raw)(benchmark::State&);
  };
  const Op ops[] = {
      {"potrf", BM_potrf<Variant::kKernel>, BM_potrf<Variant::kReference>, BM_potrf<Variant::kRaw>},
      {"trsm", BM_trsm<Variant::kKernel>, BM_trsm<Variant::kReference>, BM_trsm<Variant::kRaw>},
      {"trsv", BM_trsm<Variant::kKernel, 1>, BM_trsm<Variant::kReference, 1>,
       BM_trsm<Variant::kRaw, 1>},
      {"potri", BM_potri<Variant::kKernel>, BM_potri<Variant::kReference>, BM_potri<Variant::kRaw>},
      {"gemm", BM_gemm<Variant::kKernel>, BM_gemm<Variant::kReference>, BM_gemm<Variant::kRaw>}};
  const auto add = [](const std::string& name, void (*fn)(benchmark::State&), int64_t n,
                      int64_t batch, int64_t threads) {
    auto* b = benchmark::RegisterBenchmark(name.c_str(), fn)
                  ->ArgNames({"n", "batch", "threads"})
                  ->Args({n, batch, threads})
                  ->Unit(benchmark::kMicrosecond);
    if (name.ends_with("_wall")) b->UseRealTime();
  };
  for (const Op& op : ops)
    for (int64_t n : {3, 5, 8, 64, 256, 1024})
      for (int64_t batch : {1, 4096}) {
        if (batch > 1 && n >= 256) continue;  // keeps the run short
        add(std::string(op.name) + "/kernel", op.kernel, n, batch, 1);
        if (batch > 1 && n <= k::kSmallN)
          add(std::string(op.name) + "/reference", op.reference, n, batch, 1);
        add(std::string(op.name) + "/raw", op.raw, n, batch, 1);
      }
  using cholla::detail::UnaryFn;
  for (auto [name, f] : {std::pair{"exp", UnaryFn::kExp}, {"log", UnaryFn::kLog}, {"tanh", UnaryFn::kTanh}}) {
    benchmark::RegisterBenchmark((std::string(name) + "/op").c_str(), BM_unary<true>, f)
        ->ArgNames({"threads"})->Arg(1)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string(name) + "/std_loop").c_str(), BM_unary<false>, f)
        ->ArgNames({"threads"})->Arg(1)->Unit(benchmark::kMicrosecond);
  }
  // Thread scaling in wall time (CPU time counts the calling thread only): "_wall" rows.
  for (int64_t threads : {1, 2}) {
    add("potrf/kernel_wall", BM_potrf<Variant::kKernel>, 3, 65536, threads);
    benchmark::RegisterBenchmark("exp/op_wall", BM_unary<true>, UnaryFn::kExp)
        ->ArgNames({"threads"})->Arg(threads)->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
