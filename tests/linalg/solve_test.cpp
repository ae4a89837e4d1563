// solve and cholesky_solve: the defining identity A X = B on batched and broadcast shapes,
// closed forms, agreement with inverse/potri, typed errors, gradcheck and gradgradcheck.
#include "linalg_helpers.hpp"

using namespace cholla;
using namespace cholla::linalg;
using test::check_gradients;
using Fn = std::vector<Tensor>;
using test::mat;

namespace {

// A general (non-symmetric) matrix dominated by a cyclic shift: LU must pivot at every step,
// with swaps that do not commute, and the matrices stay well conditioned.
Tensor needs_pivoting(const Shape& batch, int64_t n, uint64_t seed) {
  NoGrad guard;
  Tensor C = Tensor::zeros({n, n});
  for (int64_t i = 0; i < n; ++i) C.mutable_data()[static_cast<size_t>(i * n + (i + 1) % n)] = 1.0;
  return test::uniform(mat(batch, n, n), -0.2, 0.2, seed) + 2.0 * C;
}

struct Case { Shape a_batch, b_batch; int64_t n, k; };
// Equal batches, a shared matrix, general broadcasting, a shared right-hand side, 1x1, and
// n > 8 (LAPACK's getrf rather than the small-order loops).
const Case kCases[] = {{{3}, {3}, 3, 2}, {{}, {4}, 4, 3}, {{2, 1}, {1, 3}, 3, 1},
                       {{2}, {}, 2, 2}, {{}, {}, 1, 1}, {{2}, {2}, 10, 2}};

}  // namespace

TEST_CASE("solve: A X = B, batched and broadcast like trsm") {
  for (const Case& c : kCases) {
    CAPTURE(format_shape(c.a_batch));
    CAPTURE(format_shape(c.b_batch));
    CAPTURE(c.n);
    Tensor A = needs_pivoting(c.a_batch, c.n, 1), B = test::uniform(mat(c.b_batch, c.n, c.k), -1, 1, 2);
    Tensor X = solve(A, B);
    const Shape batch = broadcast_shapes(c.a_batch, c.b_batch, "test");
    CHECK(X.shape() == mat(batch, c.n, c.k));
    test::check_close(gemm2(A, X), expand(B, X.shape()), 1e-12);
    test::check_close(X, gemm2(inverse(A), B), 1e-12);
  }
}

TEST_CASE("solve: closed forms") {
  // Cramer's rule with a zero pivot in place: [[0, 2], [3, 1]] x = (4, 5) has x = (1, 2).
  test::check_values(solve(Tensor::from({2, 2}, {0, 2, 3, 1}), Tensor::from({2, 1}, {4, 5})), {1, 2});
  // A permutation matrix: the solution is the permuted right-hand side.
  Tensor P = Tensor::from({3, 3}, {0, 0, 1, 1, 0, 0, 0, 1, 0});
  test::check_values(solve(P, Tensor::from({3, 2}, {1, 2, 3, 4, 5, 6})), {3, 4, 5, 6, 1, 2});
  // A X = I gives the inverse: [[4, 7], [2, 6]]^{-1} = [[0.6, -0.7], [-0.2, 0.4]].
  test::check_values(solve(Tensor::from({2, 2}, {4, 7, 2, 6}), Tensor::eye(2)), {0.6, -0.7, -0.2, 0.4}, 1e-14);
  test::check_values(solve(Tensor::from({1, 1}, {-4}), Tensor::from({1, 3}, {2, -1, 8})), {-0.5, 0.25, -2});
}

TEST_CASE("solve: a singular matrix is a DomainError naming the batch element") {
  Tensor A = stack({Tensor::eye(3), Tensor::from({3, 3}, {1, 2, 3, 2, 4, 6, 0, 1, 1})}, 0);
  try {
    (void)solve(A, Tensor::ones({3, 1}));
    FAIL("no throw");
  } catch (const DomainError& e) {
    CHECK(e.op() == "solve");
    CHECK(e.argument() == "A");
    CHECK(e.batch_index() == std::vector<int64_t>{1});
    CHECK(std::string(e.what()).find("matrix 1 of batch shape [2] (index [1]) is singular") != std::string::npos);
  }
  Tensor B = Tensor::from({2, 1}, {1, std::numeric_limits<double>::quiet_NaN()});
  CHECK_THROWS_WITH_AS(solve(Tensor::eye(2), B), doctest::Contains("solve: argument B: the matrix contains NaN"), DomainError);
  CHECK_THROWS_WITH_AS(solve(Tensor::eye(3), Tensor::zeros({2, 1})), doctest::Contains("B needs 3 rows"), ShapeError);
  CHECK_THROWS_WITH_AS(solve(Tensor::zeros({2, 3}), Tensor::zeros({2, 1})), doctest::Contains("square"), ShapeError);
  CHECK_THROWS_WITH_AS(solve(Tensor::zeros({3, 2, 2}), Tensor::zeros({4, 2, 1})),
                       doctest::Contains("batch dimensions of shapes [3, 2, 2] and [4, 2, 1] do not broadcast"), ShapeError);
}

TEST_CASE("solve: gradients, first and second order, batched and broadcast") {
  for (const Case& c : kCases) {
    CAPTURE(format_shape(c.a_batch));
    CAPTURE(format_shape(c.b_batch));
    CAPTURE(c.n);
    if (c.n > 4) continue;  // finite differences of every entry: kept small
    Tensor A = needs_pivoting(c.a_batch, c.n, 3), B = test::uniform(mat(c.b_batch, c.n, c.k), -1, 1, 4);
    check_gradients([](const Fn& x) { return solve(x[0], x[1]); }, {A, B});
  }
  // A shared input and a composition: A^{-2} B.
  Tensor A = needs_pivoting({2}, 3, 5), B = test::uniform({2, 3, 2}, -1, 1, 6);
  check_gradients([](const Fn& x) { return solve(x[0], solve(x[0], x[1])); }, {A, B});
  // The first-order fast path (saved factors) and the recorded one agree.
  Tensor a = A.detach().requires_grad(true), b = B.detach().requires_grad(true);
  Tensor w = test::uniform({2, 3, 2}, -1, 1, 7);
  auto fast = grad({sum(solve(a, b) * w)}, {a, b});
  auto recorded = grad({sum(solve(a, b) * w)}, {a, b}, {.create_graph = true});
  test::check_close(fast[0], recorded[0], 1e-13);
  test::check_close(fast[1], recorded[1], 1e-13);
}

TEST_CASE("cholesky_solve: L L^T X = B (U^T U X = B), batched and broadcast") {
  for (const Case& c : kCases)
    for (bool lower : {true, false}) {
      CAPTURE(format_shape(c.a_batch));
      CAPTURE(format_shape(c.b_batch));
      CAPTURE(c.n);
      CAPTURE(lower);
      Tensor A = test::spd(c.a_batch, c.n, 8), B = test::uniform(mat(c.b_batch, c.n, c.k), -1, 1, 9);
      Tensor L = potrf(A, {.lower = lower});
      Tensor X = cholesky_solve(L, B, {.lower = lower});
      test::check_close(gemm2(A, X), expand(B, X.shape()), 1e-12);
      test::check_close(X, gemm2(potri(L, {.lower = lower}), B), 1e-12);
    }
  // 1x1: x = b / l^2.
  test::check_values(cholesky_solve(Tensor::from({1, 1}, {2}), Tensor::from({1, 2}, {6, -1})), {1.5, -0.25});
  // Only the named triangle is read.
  Tensor L = test::triangular({}, 3, true, 10);
  Tensor junk = L + triu(Tensor::full({3, 3}, 7.0), 1);
  Tensor B = test::uniform({3, 2}, -1, 1, 11);
  test::check_close(cholesky_solve(junk, B), cholesky_solve(L, B), 0.0);
}

TEST_CASE("cholesky_solve: errors name cholesky_solve and the factor") {
  Tensor L = test::triangular({2}, 3, true, 12);
  L.mutable_data()[9 + 8] = 0.0;  // matrix 1, entry (2, 2)
  try {
    (void)cholesky_solve(L, Tensor::ones({3, 1}));
    FAIL("no throw");
  } catch (const DomainError& e) {
    CHECK(e.op() == "cholesky_solve");
    CHECK(e.argument() == "L");
    CHECK(e.batch_index() == std::vector<int64_t>{1});
    CHECK(std::string(e.what()).find("diagonal entry 2 is 0") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(cholesky_solve(Tensor::eye(3), Tensor::zeros({4, 2})),
                       doctest::Contains("cholesky_solve: L is 3x3 but B has shape [4, 2]"), ShapeError);
  CHECK_THROWS_WITH_AS(cholesky_solve(Tensor::zeros({3}), Tensor::zeros({3, 1})), doctest::Contains("argument L"), ShapeError);
}

TEST_CASE("cholesky_solve: gradients, first and second order, lower and upper, broadcast") {
  for (const Case& c : kCases)
    for (bool lower : {true, false}) {
      if (c.n > 4) continue;
      CAPTURE(format_shape(c.a_batch));
      CAPTURE(format_shape(c.b_batch));
      CAPTURE(lower);
      Tensor L = test::triangular(c.a_batch, c.n, lower, 13), B = test::uniform(mat(c.b_batch, c.n, c.k), -1, 1, 14);
      // General structure on L: entries outside its triangle must get exactly zero.
      check_gradients([lower](const Fn& x) { return cholesky_solve(x[0], x[1], {.lower = lower}); }, {L, B});
    }
  // Through the factorisation: (A)^{-1} B as a function of a symmetric A.
  Tensor A = test::spd({2}, 3, 15), B = test::uniform({3, 2}, -1, 1, 16);
  const GradcheckOptions sym{.structure = {Structure::Symmetric}};
  check_gradients([](const Fn& x) { return cholesky_solve(potrf(x[0]), x[1]); }, {A, B}, sym);
}
