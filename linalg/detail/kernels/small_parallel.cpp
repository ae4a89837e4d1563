// The small kernels' entry points: the batch split over the thread pool. (A lane-batched
// gemm was measured too and dropped: 0.93x the reference loops at n = 3 and 5, whose panel
// copy already vectorises; the lanes only pay off where long dependency chains of divisions
// and square roots leave the scalar loops latency-bound.) Each matrix of a
// batch is computed on its own, so any chunking gives the same result; the chunk size is
// fixed by the work per matrix (never by the thread count) so that a chunk is worth handing
// to a worker (tens of microseconds) and is a multiple of every SIMD width.
#include <algorithm>

#include "autodiff/parallel.hpp"
#include "linalg/detail/kernels/small.hpp"

namespace cholla::linalg::kernels::small {
namespace {

// Matrices per chunk for `work` (about flops) per matrix.
int64_t grain(int64_t work) {
  constexpr int64_t kChunkWork = int64_t{1} << 17, kAlign = 64;
  const int64_t g = kChunkWork / std::max<int64_t>(work, 1);
  return std::max(kAlign, g / kAlign * kAlign);
}

int64_t cube(int64_t n) { return n * n * n; }

// A triangular solve or product of order `side ? n_cols : m` with an m x n_cols right side.
int64_t triangular_work(bool rightside, int64_t m, int64_t n_cols) {
  return m * n_cols * (rightside ? n_cols : m);
}

// Whether the lane-batched trsm/trmm beats the reference loops for an order-n triangle and
// `other` right-hand columns (left) or rows (right). Measured, batch 4096: lanes win for one
// vector at every order (2.2x at n = 3, 1.7x at n = 8) and for a square B at n = 3 (1.26x),
// but lose for a square B at n >= 5 (0.93x, 0.84x), where the reference already runs four
// independent columns at once and transposing into lanes costs more than it gains.
bool lanes_win(bool rightside, int64_t m, int64_t n_cols) {
  const int64_t n = rightside ? n_cols : m, other = rightside ? m : n_cols;
  return other <= 2 || n <= 3;
}

}  // namespace

void potrf(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  parallel_for(batch, grain(cube(n) / 3 + n), [&](int64_t b, int64_t e) {
    simd::potrf(lower, n, A + b * stride, stride, e - b, info + b);
  });
}

// Lanes measured 1.5x the reference at n = 5 and 8 (batch 4096), 0.81x at n = 3, where the
// reference's short chains already overlap.
void potri(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  const auto kernel = n >= 5 ? simd::potri : reference::potri;
  parallel_for(batch, grain(cube(n)), [&](int64_t b, int64_t e) {
    kernel(lower, n, A + b * stride, stride, e - b, info + b);
  });
}

void potrf_backward(bool lower, int64_t n, const double* L, int64_t stride_l, const double* gL,
                    int64_t stride_g, double* gA, int64_t stride_out, int64_t batch) {
  parallel_for(batch, grain(2 * cube(n)), [&](int64_t b, int64_t e) {
    reference::potrf_backward(lower, n, L + b * stride_l, stride_l, gL + b * stride_g, stride_g,
                              gA + b * stride_out, stride_out, e - b);
  });
}

void getrf(int64_t n, double* A, int64_t stride, int64_t* pivots, int64_t batch, int64_t* info) {
  parallel_for(batch, grain(cube(n)), [&](int64_t b, int64_t e) {
    reference::getrf(n, A + b * stride, stride, pivots + b * n, e - b, info + b);
  });
}

void inverse(int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info) {
  parallel_for(batch, grain(2 * cube(n)), [&](int64_t b, int64_t e) {
    reference::inverse(n, A + b * stride, stride, e - b, info + b);
  });
}

void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* A, int64_t stride_a, const double* B, int64_t stride_b, double beta,
          double* C, int64_t stride_c, int64_t batch) {
  parallel_for(batch, grain(2 * m * n * k), [&](int64_t b, int64_t e) {
    reference::gemm(transpose_a, transpose_b, m, n, k, alpha, A + b * stride_a, stride_a,
                    B + b * stride_b, stride_b, beta, C + b * stride_c, stride_c, e - b);
  });
}

namespace {

using TriangularKernel = void (*)(bool, bool, bool, int64_t, int64_t, double, const double*,
                                  int64_t, double*, int64_t, int64_t);

// trsm and trmm: the same chunking, lane-batched or reference kernel chosen by lanes_win.
void triangular(TriangularKernel lanes, TriangularKernel loops, bool rightside, bool lower,
                bool transpose, int64_t m, int64_t n_cols, double alpha, const double* T,
                int64_t stride_t, double* B, int64_t stride_b, int64_t batch) {
  const TriangularKernel kernel = lanes_win(rightside, m, n_cols) ? lanes : loops;
  parallel_for(batch, grain(triangular_work(rightside, m, n_cols)), [&](int64_t b, int64_t e) {
    kernel(rightside, lower, transpose, m, n_cols, alpha, T + b * stride_t, stride_t,
           B + b * stride_b, stride_b, e - b);
  });
}

}  // namespace

void trsm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch) {
  triangular(simd::trsm, reference::trsm, rightside, lower, transpose, m, n_cols, alpha, T,
             stride_t, B, stride_b, batch);
}

void trmm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch) {
  triangular(simd::trmm, reference::trmm, rightside, lower, transpose, m, n_cols, alpha, T,
             stride_t, B, stride_b, batch);
}

}  // namespace cholla::linalg::kernels::small
