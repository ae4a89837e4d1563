// The SIMD MVN passes over a whole batch, split over the thread pool (autodiff/parallel.hpp).
//
// Chunks have a fixed number of samples that depends only on d and the batch size, never on
// the thread count, and start on multiples of 64 samples (a multiple of every vector width), so
// every SIMD block holds the same samples whatever the thread count. Each sample's output and
// gradient is then computed by the same instructions; a gradient summed over the batch (an
// input shared by all samples) is summed per chunk and the chunk sums are added in chunk
// order. Results are therefore bit-identical for every `set_num_threads`.
#include <algorithm>
#include <array>
#include <limits>

#include "autodiff/parallel.hpp"
#include "distributions/detail/mvn_simd.hpp"

namespace cholla::dist::detail {
namespace {

constexpr int64_t kAlign = 64;
constexpr int64_t kMaxChunks = 64;  // bounds the per-chunk partial sums kept on the stack
constexpr int64_t kSharedSize = 2 * kMaxFusedDim + kMaxFusedDim * kMaxFusedDim;

int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

// Samples per chunk: about 2^16 / d^2 (tens of microseconds of work, so worth a hand-off),
// at most kMaxChunks chunks.
int64_t grain(int64_t d, int64_t count) {
  const int64_t by_work = std::max<int64_t>(1024, (int64_t{1} << 16) / (d * d)) / kAlign * kAlign;
  return std::max(by_work, round_up((count + kMaxChunks - 1) / kMaxChunks, kAlign));
}

// A gradient that several samples add into through an offset list cannot be split (two chunks
// could add to one element at once).
bool accumulates(const std::vector<int64_t>& offsets, const double* gradient) {
  return gradient != nullptr && !offsets.empty();
}

// Runs pass(p, begin, end) -> bool over fixed chunks; true when every chunk returned true.
template <class Pass>
bool all_chunks(const MvnPass& p, Pass&& pass) {
  const int64_t count = p.batch->count;
  std::array<bool, kMaxChunks> ok;
  ok.fill(true);
  const int64_t g = grain(p.batch->d, count);
  parallel_for(count, g, [&](int64_t begin, int64_t end) { ok[static_cast<size_t>(begin / g)] = pass(p, begin, end); });
  return std::all_of(ok.begin(), ok.end(), [](bool b) { return b; });
}

}  // namespace

bool simd_forward_all(const MvnPass& p) { return all_chunks(p, simd_forward); }

// Every gradient is per sample here, so chunks write disjoint elements.
bool simd_eager_all(const MvnPass& p) { return all_chunks(p, simd_eager); }

void simd_backward_all(const MvnPass& p, double* shared) {
  const MvnBatch& b = *p.batch;
  const int64_t n_shared = 2 * b.d + b.d * b.d;
  if (accumulates(b.loc_offset, p.gloc) || accumulates(b.factor_offset, p.gmatrix) || accumulates(b.x_offset, p.gx)) {
    simd_backward(p, 0, b.count, shared);
    return;
  }
  const int64_t g = grain(b.d, b.count);
  const int64_t chunks = parallel_chunk_count(b.count, g);
  if (chunks <= 1) {
    simd_backward(p, 0, b.count, shared);
    return;
  }
  std::array<std::array<double, kSharedSize>, kMaxChunks> partial;
  parallel_for(b.count, g, [&](int64_t begin, int64_t end) {
    simd_backward(p, begin, end, partial[static_cast<size_t>(begin / g)].data());
  });
  std::fill_n(shared, n_shared, 0.0);
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t e = 0; e < n_shared; ++e) shared[e] += partial[static_cast<size_t>(c)][static_cast<size_t>(e)];
}

bool simd_cholesky_all(const CholeskyPass& p) {
  std::array<bool, kMaxChunks> ok;
  std::array<double, kMaxChunks> pivot;
  ok.fill(true);
  pivot.fill(std::numeric_limits<double>::infinity());
  const int64_t g = grain(p.d, p.count);
  parallel_for(p.count, g, [&](int64_t begin, int64_t end) {
    CholeskyPass chunk = p;
    chunk.A = p.A + begin * p.d * p.d;
    chunk.L = p.L + begin * p.d * p.d;
    chunk.count = end - begin;
    const auto c = static_cast<size_t>(begin / g);
    ok[c] = simd_cholesky(chunk);
    pivot[c] = chunk.min_pivot;
  });
  p.min_pivot = *std::min_element(pivot.begin(), pivot.end());
  return std::all_of(ok.begin(), ok.end(), [](bool b) { return b; });
}

}  // namespace cholla::dist::detail
