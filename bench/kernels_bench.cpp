// Kernels against the plain per-matrix OpenBLAS/LAPACK loop on the same data.
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
#include <vector>

#include "linalg/kernels/kernels.hpp"

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

void finish(benchmark::State& state, int64_t batch) {
  state.counters["ns/mat"] = benchmark::Counter(
      static_cast<double>(batch) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

template <bool Raw>
void BM_potrf(benchmark::State& state) {
  const int64_t n = state.range(0), batch = state.range(1);
  const std::vector<double> src = make(Kind::kSpd, n, batch);
  std::vector<double> a(src.size());
  std::vector<int64_t> info(static_cast<size_t>(batch));
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    std::memcpy(a.data(), src.data(), src.size() * sizeof(double));
    if constexpr (Raw)
      for (int64_t b = 0; b < batch; ++b)
        info[b] = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', ni, &a[b * n * n], ni);
    else
      k::potrf(true, n, a.data(), n * n, batch, info.data());
    benchmark::DoNotOptimize(a.data());
  }
  finish(state, batch);
}

template <bool Raw>
void BM_potri(benchmark::State& state) {
  const int64_t n = state.range(0), batch = state.range(1);
  const std::vector<double> src = make(Kind::kLower, n, batch);
  std::vector<double> a(src.size());
  std::vector<int64_t> info(static_cast<size_t>(batch));
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    std::memcpy(a.data(), src.data(), src.size() * sizeof(double));
    if constexpr (Raw)  // one triangle only; the kernel also mirrors it
      for (int64_t b = 0; b < batch; ++b)
        info[b] = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'U', ni, &a[b * n * n], ni);
    else
      k::potri(true, n, a.data(), n * n, batch, info.data());
    benchmark::DoNotOptimize(a.data());
  }
  finish(state, batch);
}

// Left, lower, no transpose, B square: T X = B.
template <bool Raw>
void BM_trsm(benchmark::State& state) {
  const int64_t n = state.range(0), batch = state.range(1);
  const std::vector<double> t = make(Kind::kLower, n, batch);
  const std::vector<double> src = make(Kind::kGeneral, n, batch);
  std::vector<double> x(src.size());
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    std::memcpy(x.data(), src.data(), src.size() * sizeof(double));
    if constexpr (Raw)
      for (int64_t b = 0; b < batch; ++b)
        cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, ni, ni,
                    1.0, &t[b * n * n], ni, &x[b * n * n], ni);
    else
      k::trsm(false, true, false, n, n, 1.0, t.data(), n * n, x.data(), n * n, batch);
    benchmark::DoNotOptimize(x.data());
  }
  finish(state, batch);
}

template <bool Raw>
void BM_gemm(benchmark::State& state) {
  const int64_t n = state.range(0), batch = state.range(1);
  const std::vector<double> a = make(Kind::kGeneral, n, batch);
  const std::vector<double> b_ = make(Kind::kGeneral, n, batch);
  std::vector<double> c(a.size());
  const int ni = static_cast<int>(n);
  for (auto _ : state) {
    if constexpr (Raw)
      for (int64_t b = 0; b < batch; ++b)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0, &a[b * n * n],
                    ni, &b_[b * n * n], ni, 0.0, &c[b * n * n], ni);
    else
      k::gemm(false, false, n, n, n, 1.0, a.data(), n * n, b_.data(), n * n, 0.0, c.data(),
              n * n, batch);
    benchmark::DoNotOptimize(c.data());
  }
  finish(state, batch);
}

}  // namespace

// Registered by hand so that each kernel runs right next to its raw loop on the same size:
// on a shared machine, load drifts between families would otherwise skew the ratios.
int main(int argc, char** argv) {
  struct Op {
    const char* name;
    void (*kernel)(benchmark::State&);
    void (*raw)(benchmark::State&);
  };
  const Op ops[] = {{"potrf", BM_potrf<false>, BM_potrf<true>},
                    {"trsm", BM_trsm<false>, BM_trsm<true>},
                    {"potri", BM_potri<false>, BM_potri<true>},
                    {"gemm", BM_gemm<false>, BM_gemm<true>}};
  for (const Op& op : ops)
    for (int64_t n : {3, 8, 64, 256, 1024})
      for (int64_t batch : {1, 4096}) {
        if (batch > 1 && n >= 256) continue;  // keeps the run short
        for (bool raw : {false, true}) {
          const std::string name = std::string(op.name) + (raw ? "/raw" : "/kernel");
          benchmark::RegisterBenchmark(name.c_str(), raw ? op.raw : op.kernel)
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
