// Differentiable batched linear algebra with MXNet `linalg` semantics (the maths of every op,
// its backward and the conventions: docs/linalg.md).
//
// Shapes: the last two dimensions are the matrix, leading dimensions are batch dimensions.
// gemm, gemm2, trmm, trsm, solve and cholesky_solve broadcast the batch dimensions of their
// two operands as PyTorch does, without copying a broadcast operand (one factor L [d, d]
// against right-hand sides [N, d, k] is read N times, never copied); their backward sums
// over broadcast dimensions.
// The other ops take one batched operand.
//
// Gradient conventions:
// - potrf and syevd read one triangle of a symmetric input but are treated as functions of a
//   symmetric matrix: the gradient they return is SYMMETRIC (as in MXNet, PyTorch and TF).
//   To gradcheck them, perturb symmetrically (gradcheck's Structure::Symmetric).
// - The triangular argument of trmm, trsm and potri only has a triangle: its gradient is
//   projected onto that triangle (zero elsewhere).
//
// Errors: ShapeError (op and both shapes), DomainError for NaN/Inf in a factorisation or solve
// and for a zero on a triangular diagonal (op, argument, batch element),
// NotPositiveDefinite from potrf (batch element and the order of the failing leading minor).
#pragma once

#include <cstdint>
#include <utility>

#include "autodiff/tensor.hpp"

namespace cholla::linalg {

struct GemmOptions {
  bool transpose_a = false;
  bool transpose_b = false;
  double alpha = 1.0;
  double beta = 1.0;
};

struct Gemm2Options {
  bool transpose_a = false;
  bool transpose_b = false;
  double alpha = 1.0;
};

struct SyrkOptions {
  bool transpose = false;  // false: alpha A A^T; true: alpha A^T A
  double alpha = 1.0;
};

// trmm and trsm: A is triangular (only the `lower` or upper triangle is read).
struct TriangularOptions {
  bool transpose = false;  // use A^T
  bool rightside = false;  // B op(A) instead of op(A) B
  bool lower = true;
  double alpha = 1.0;
};

struct CholeskyOptions {
  bool lower = true;  // A = L L^T; false: A = U^T U
};

struct DiagOptions {
  int64_t offset = 0;  // 0 main diagonal, > 0 above, < 0 below
};

struct TrianOptions {
  int64_t offset = 0;  // > 0: upper triangle from that superdiagonal; < 0: lower, from that subdiagonal
  bool lower = true;   // which triangle when offset == 0
};

// alpha op(A) op(B) + beta C. C must broadcast to the product's shape.
Tensor gemm(const Tensor& A, const Tensor& B, const Tensor& C, const GemmOptions& options = {});
// alpha op(A) op(B).
Tensor gemm2(const Tensor& A, const Tensor& B, const Gemm2Options& options = {});
// alpha A A^T (or alpha A^T A); the result is exactly symmetric.
Tensor syrk(const Tensor& A, const SyrkOptions& options = {});
// alpha op(A) B, or alpha B op(A) with rightside.
Tensor trmm(const Tensor& A, const Tensor& B, const TriangularOptions& options = {});
// X solving op(A) X = alpha B, or X op(A) = alpha B with rightside.
Tensor trsm(const Tensor& A, const Tensor& B, const TriangularOptions& options = {});

// Cholesky factor of each SPD matrix (only the named triangle of A is read). Throws
// NotPositiveDefinite naming the batch element and the failing leading minor.
Tensor potrf(const Tensor& A, const CholeskyOptions& options = {});
// As potrf, but never throws for a matrix that is not positive definite: returns (L, info)
// with info (batch shape, float64) = 0 where the factorisation succeeded and the order of
// the failing leading minor elsewhere. Failed elements of L hold NaN.
std::pair<Tensor, Tensor> potrf_ex(const Tensor& A, const CholeskyOptions& options = {});
// X with L L^T X = B (lower) or U^T U X = B (upper): a solve with the SPD matrix whose
// Cholesky factor is given (only its triangle is read, and its gradient is projected onto
// that triangle). L [..., n, n] and B [..., n, k] broadcast their batch dimensions as trsm.
// DomainError for NaN/Inf or a zero on the factor's diagonal.
Tensor cholesky_solve(const Tensor& L, const Tensor& B, const CholeskyOptions& options = {});
// (L L^T)^{-1} (or (U^T U)^{-1}) from a triangular factor; full symmetric result.
Tensor potri(const Tensor& L, const CholeskyOptions& options = {});
// sum_i log A_ii per matrix: shape = batch shape. The diagonal must be positive.
Tensor sumlogdiag(const Tensor& A);

// Diagonal (with offset) of each matrix, and its adjoint: a matrix from a diagonal.
Tensor extractdiag(const Tensor& A, const DiagOptions& options = {});
Tensor makediag(const Tensor& v, const DiagOptions& options = {});

// Triangle of each matrix packed into a vector, and its adjoint. Packing order (MXNet's):
// the lower triangle row by row, the upper triangle column by column. For a 3x3 matrix,
// lower (offset 0) and upper (offset 0, lower = false) pack as
//
//     [ 0 . . ]        [ 0 1 3 ]
//     [ 1 2 . ]        [ . 2 4 ]
//     [ 3 4 5 ]        [ . . 5 ]
//
// offset -1 packs the strictly lower triangle ((1,0), (2,0), (2,1)) in the same order.
// A vector of length m(m+1)/2 makes an (m + |offset|) x (m + |offset|) matrix.
Tensor extracttrian(const Tensor& A, const TrianOptions& options = {});
Tensor maketrian(const Tensor& v, const TrianOptions& options = {});

// Lower (upper) triangle of each matrix on and below (above) diagonal k, zeros elsewhere.
Tensor tril(const Tensor& A, int64_t k = 0);
Tensor triu(const Tensor& A, int64_t k = 0);

// General square matrices, through LU with partial pivoting.
Tensor inverse(const Tensor& A);  // DomainError for a singular matrix
// X with A X = B for general square A [..., n, n] and B [..., n, k], batch dimensions
// broadcast as trsm. LU with partial pivoting; DomainError naming the batch element of a
// singular A. Cheaper and more accurate than gemm2(inverse(A), B).
Tensor solve(const Tensor& A, const Tensor& B);
// Differentiable everywhere: at a (nearly) singular matrix the gradient, the cofactor matrix
// adj(A)^T, is built from an SVD instead of det(A) A^{-T}.
Tensor det(const Tensor& A);
// (sign, log|det|); sign is not differentiable. A singular matrix gives (0, -inf), and
// differentiating log|det| there is a DomainError.
std::pair<Tensor, Tensor> slogdet(const Tensor& A);

// Symmetric eigendecomposition (lower triangle read): (U, lambda) with U A = diag(lambda) U,
// i.e. the ROWS of U are eigenvectors, lambda ascending; each row's largest-magnitude entry
// is positive. The eigenvalues' gradient always exists; the eigenvectors' exists where the
// eigenvalues are distinct, or where the loss does not see rotations inside the eigenspace
// of a repeated one (e.g. its projector). Otherwise backward throws a DomainError naming
// the two eigenvalues.
std::pair<Tensor, Tensor> syevd(const Tensor& A);
// LQ factorisation of full-rank m x n matrices, m <= n: (Q, L) with A = L Q, Q Q^T = I.
std::pair<Tensor, Tensor> gelqf(const Tensor& A);

}  // namespace cholla::linalg
