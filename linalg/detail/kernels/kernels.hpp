// Batched linear-algebra kernels on raw row-major float64 buffers.
//
// They know nothing of the tape, of Tensor or of error messages: they compute, and report
// LAPACK-style `info` codes per batch element. The differentiable ops in linalg/ check
// arguments, call these, and translate infos into typed exceptions.
//
// Conventions shared by every kernel:
// - Matrices are row-major. A batch is `batch` matrices; matrix b of an operand starts at
//   `ptr + b * stride`. A stride of 0 broadcasts one matrix over the whole batch (it is read
//   `batch` times, never copied).
// - Row-major storage is handed to column-major BLAS/LAPACK as the transpose: a row-major
//   lower triangle is a column-major upper triangle, and transposition flags flip. LAPACKE's
//   row-major path (which copies) is never used.
// - Small matrices (n <= kSmallN) take hand-written loops: per-call LAPACK overhead dominates
//   there. Larger ones go to OpenBLAS/LAPACK.
// - Nothing is printed; LAPACK's xerbla is never reached with valid arguments.
// - Impossible arguments (negative sizes, sizes beyond 32-bit BLAS ints, gelqf with m > n)
//   throw std::invalid_argument; empty shapes are no-ops (infos set to 0).
#pragma once

#include <cstdint>

namespace cholla::linalg::kernels {

inline constexpr int64_t kSmallN = 8;

// C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b], op(A) is m x k, op(B) is k x n.
// beta == 0 overwrites C without reading it (NaN in C does not propagate).
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* A, int64_t stride_a, const double* B, int64_t stride_b, double beta,
          double* C, int64_t stride_c, int64_t batch);

// In-place Cholesky of each n x n matrix: lower: A = L L^T, L written to the lower triangle;
// upper: A = U^T U. Only the named triangle is read; the other triangle is set to zero.
// info[b] = 0 on success, or the order of the first leading minor that is not positive
// definite (the matrix is then left partially factorised). NaN on the diagonal pivot fails
// with that order too.
void potrf(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info);

// Solve op(T[b]) X = alpha B[b] (left) or X op(T[b]) = alpha B[b] (right), X overwriting B.
// T is n x n triangular (lower or upper, only that triangle read, non-unit diagonal).
// B is m x n_cols: left needs m == n, right needs n_cols == n.
void trsm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch);

// B[b] = alpha op(T[b]) B[b] (left) or alpha B[b] op(T[b]) (right), in place. Shapes as trsm.
void trmm(bool rightside, bool lower, bool transpose, int64_t m, int64_t n_cols, double alpha,
          const double* T, int64_t stride_t, double* B, int64_t stride_b, int64_t batch);

// Reverse mode of potrf, symmetric convention (docs/linalg.md §4.1): from the factor L[b]
// (lower: A = L L^T) and the gradient gL[b] of the factor, writes the full symmetric
//   gA = 1/2 L^{-T} copyltu(L^T tril(gL)) L^{-1}
// (upper, A = U^T U: gA = 1/2 U^{-1} copyutl(triu(gU) U^T) U^{-T}). Only the named triangles
// of L and gL are read. Blocked (Murray 2016): ~2n^3/3 flops, about twice a potrf, where
// the symbolic formula costs ~3n^3. gA may alias gL. Not differentiable: ops use it only
// for a first-order backward.
void potrf_backward(bool lower, int64_t n, const double* L, int64_t stride_l, const double* gL,
                    int64_t stride_g, double* gA, int64_t stride_out, int64_t batch);

// In-place (T T^T)^{-1} (lower) or (T^T T)^{-1} (upper) from a triangular factor T; the
// result is written as a full symmetric matrix. info[b] = i > 0 when T[i-1][i-1] == 0.
void potri(bool lower, int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info);

// In-place LU with partial pivoting of each n x n matrix, computed (as LAPACK sees the
// row-major buffer) for the TRANSPOSE: A^T = P L U, L unit lower, U upper. Equivalently
// A = U^T L^T P^T: column pivoting of A. On return, read row-major, the buffer holds U^T
// on and below the diagonal (so F[i][i] = U[i][i]) and L^T strictly above it (unit diagonal
// implicit); i.e. U[i][j] = F[j][i] for i <= j and L[i][j] = F[j][i] for i > j.
// pivots[b * n + i] = p >= i (0-based): step i swapped rows i and p of A^T, i.e. columns i
// and p of A; P = P_0 P_1 ... P_{n-1} with P_i that swap.
// det(A) = (-1)^{#{i : pivots[i] != i}} * prod_i F[i][i].
// info[b] = i > 0 when U[i-1][i-1] is exactly zero (the factorisation is completed anyway,
// as LAPACK does).
void getrf(int64_t n, double* A, int64_t stride, int64_t* pivots, int64_t batch, int64_t* info);

// Solve A[b] X = B[b] (or A[b]^T X = B[b] with transpose), X overwriting the n x nrhs B[b],
// from getrf's factors F[b] (stride_f; 0 shares one factorisation) and pivots[b * stride_p].
// The factorisation must be non-singular (getrf's info 0).
void getrs(bool transpose, int64_t n, int64_t nrhs, const double* F, int64_t stride_f,
           const int64_t* pivots, int64_t stride_p, double* B, int64_t stride_b, int64_t batch);

// In-place inverse of each n x n matrix. info[b] = i > 0 when the matrix is singular
// (U[i-1][i-1] == 0); the content of A[b] is then unspecified.
void inverse(int64_t n, double* A, int64_t stride, int64_t batch, int64_t* info);

// Symmetric eigendecomposition, reading the lower triangle of each n x n matrix A[b].
// On return A[b] holds U with the eigenvectors as ROWS (U A = diag(w) U), w[b * n + i]
// ascending; each row's sign is fixed so that its entry of largest magnitude is positive
// (ties: smallest index). info[b] > 0 when the algorithm failed to converge.
void syevd(int64_t n, double* A, int64_t stride, double* w, int64_t batch, int64_t* info);

// Singular value decomposition of each n x n matrix: A[b] = U[b] diag(s[b]) Vt[b], U and
// Vt = V^T orthogonal (row-major, n x n each, packed: matrix b at b * n * n), s[b * n + i]
// descending and >= 0. A is not modified. info[b] > 0 when the iteration did not converge.
void gesvd(int64_t n, const double* A, int64_t stride, double* U, double* s, double* Vt,
           int64_t batch, int64_t* info);

// LQ factorisation of each m x n matrix A[b] (m <= n): A = L Q, L m x m lower triangular,
// Q m x n with orthonormal rows. Q overwrites A[b] (stride as A); L is written to
// L + b * m * m (upper triangle zero). Signs as LAPACK returns them (not normalised).
void gelqf(int64_t m, int64_t n, double* A, int64_t stride, double* L, int64_t batch);

}  // namespace cholla::linalg::kernels
