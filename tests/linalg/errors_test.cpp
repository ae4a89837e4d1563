// Every bad input gets a typed exception naming the op, the argument, the shapes and the batch
// element; nothing is printed.
#include <limits>

#include "linalg_helpers.hpp"

using namespace cholla;
using namespace cholla::linalg;

TEST_CASE("potrf: not positive definite names the batch element and the minor") {
  Tensor A = test::spd({4, 2}, 3, 1);
  // Make matrix [2, 1] indefinite at its third leading minor: A22 := -5.
  const size_t at = (2 * 2 + 1) * 9 + 8;
  A.mutable_data()[at] = -5.0;
  try {
    (void)potrf(A);
    FAIL("no throw");
  } catch (const NotPositiveDefinite& e) {
    CHECK(e.op() == "potrf");
    CHECK(e.argument() == "A");
    CHECK(e.flat_batch_index() == 5);
    CHECK(e.batch_index() == std::vector<int64_t>{2, 1});
    CHECK(e.minor_order() == 3);
    const std::string m = e.what();
    CHECK(m.find("potrf: matrix 5 of batch shape [4, 2] (index [2, 1]) is not positive definite") != std::string::npos);
    CHECK(m.find("leading minor of order 3") != std::string::npos);
    CHECK(m.find("from_scale_tril") != std::string::npos);
    CHECK(m.find("jitter") != std::string::npos);
  }
  // Unbatched: "the matrix".
  CHECK_THROWS_WITH_AS(potrf(Tensor::from({2, 2}, {1, 2, 2, 1})),
                       doctest::Contains("the matrix is not positive definite (its leading minor of order 2"),
                       NotPositiveDefinite);
  CHECK_THROWS_WITH_AS(potrf(Tensor::from({1, 1}, {0.0})), doctest::Contains("order 1"), NotPositiveDefinite);
}

TEST_CASE("potrf_ex reports info per element and never throws for non-PD input") {
  Tensor A = test::spd({3}, 2, 2);
  A.mutable_data()[1 * 4 + 0] = -1.0;  // matrix 1: a00 < 0, minor 1
  auto [L, info] = potrf_ex(A);
  test::check_values(info, {0, 1, 0});
  CHECK(std::isnan(L.data()[4]));
  test::check_close(slice(L, 0, 0, 1), potrf(slice(A, 0, 0, 1)), 0.0);
}

TEST_CASE("NaN or Inf in a factorisation or solve is a DomainError with the batch element") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor A = test::spd({3}, 3, 3);
  A.mutable_data()[2 * 9 + 4] = nan;
  try {
    (void)potrf(A);
    FAIL("no throw");
  } catch (const DomainError& e) {
    CHECK(e.op() == "potrf");
    CHECK(e.argument() == "A");
    CHECK(e.batch_index() == std::vector<int64_t>{2});
    CHECK(std::string(e.what()).find("matrix 2 of batch shape [3] (index [2]) contains NaN (at row 1, column 1)") != std::string::npos);
  }
  Tensor L = test::triangular({}, 3, true, 4);
  Tensor B = Tensor::from({3, 1}, {1, std::numeric_limits<double>::infinity(), 0});
  CHECK_THROWS_WITH_AS(trsm(L, B), doctest::Contains("trsm: argument B: the matrix contains Inf"), DomainError);
  CHECK_THROWS_WITH_AS(inverse(A), doctest::Contains("inverse: argument A"), DomainError);
  CHECK_THROWS_WITH_AS(slogdet(A), doctest::Contains("slogdet"), DomainError);
  CHECK_THROWS_WITH_AS(syevd(A), doctest::Contains("syevd"), DomainError);
  CHECK_THROWS_WITH_AS(potri(expand(L, {2, 3, 3}) * Tensor::from({2, 1, 1}, {1.0, nan})),
                       doctest::Contains("matrix 1 of batch shape [2]"), DomainError);
}

TEST_CASE("a zero on a triangular diagonal is a DomainError, not Inf") {
  Tensor L = test::triangular({2}, 3, true, 5);
  L.mutable_data()[9 + 4] = 0.0;  // matrix 1, entry (1, 1)
  Tensor B = test::uniform({2, 3, 2}, -1, 1, 6);
  CHECK_THROWS_WITH_AS(trsm(L, B), doctest::Contains("matrix 1 of batch shape [2] (index [1]) is singular (diagonal entry 1 is 0)"),
                       DomainError);
  CHECK_THROWS_AS(potri(L), DomainError);
  CHECK_THROWS_WITH_AS(sumlogdiag(L), doctest::Contains("diagonal entry 1 = 0"), DomainError);
  CHECK_THROWS_WITH_AS(inverse(Tensor::from({2, 2}, {1, 2, 2, 4})), doctest::Contains("singular"), DomainError);
}

TEST_CASE("shape mismatches are ShapeErrors with both shapes") {
  Tensor A = Tensor::zeros({2, 3, 4}), B = Tensor::zeros({2, 5, 2});
  try {
    (void)gemm2(A, B);
    FAIL("no throw");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "gemm2");
    REQUIRE(e.shapes().size() == 2);
    CHECK(e.shapes()[0] == Shape{2, 3, 4});
    CHECK(e.shapes()[1] == Shape{2, 5, 2});
    CHECK(std::string(e.what()).find("inner dimensions") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(gemm2(Tensor::zeros({3, 2, 2}), Tensor::zeros({4, 2, 2})),
                       doctest::Contains("batch dimensions of shapes [3, 2, 2] and [4, 2, 2] do not broadcast"), ShapeError);
  CHECK_THROWS_WITH_AS(potrf(Tensor::zeros({3, 2})), doctest::Contains("must hold square matrices, got shape [3, 2]"), ShapeError);
  CHECK_THROWS_WITH_AS(potrf(Tensor::zeros({3})), doctest::Contains("rank >= 2"), ShapeError);
  CHECK_THROWS_WITH_AS(trsm(Tensor::eye(3), Tensor::zeros({2, 3}), {.rightside = false}),
                       doctest::Contains("B needs 3 rows"), ShapeError);
  CHECK_THROWS_WITH_AS(maketrian(Tensor::zeros({4})), doctest::Contains("not a triangular number"), ShapeError);
  CHECK_THROWS_WITH_AS(gelqf(Tensor::zeros({4, 3})), doctest::Contains("m <= n"), ShapeError);
  CHECK_THROWS_WITH_AS(gemm(A, Tensor::zeros({2, 4, 2}), Tensor::zeros({5, 5})),
                       doctest::Contains("gemm: C has shape [5, 5]"), ShapeError);
}
