// Forward values of the linalg ops against closed forms and identities.
#include <cmath>

#include "linalg_helpers.hpp"

using namespace cholla;
using namespace cholla::linalg;
using test::check_close;

TEST_CASE("gemm2/gemm/syrk against a triple loop, every transpose combination") {
  Tensor A = test::uniform({3, 4, 5}, -1, 1, 1), B = test::uniform({3, 5, 2}, -1, 1, 2);
  Tensor ref = Tensor::from({3, 4, 2}, test::naive_matmul(A, B));
  check_close(gemm2(A, B), ref);
  check_close(gemm2(transpose(A), B, {.transpose_a = true}), ref);
  check_close(gemm2(A, transpose(B), {.transpose_b = true}), ref);
  check_close(gemm2(transpose(A), transpose(B), {.transpose_a = true, .transpose_b = true, .alpha = -2.0}),
              -2.0 * ref);
  Tensor C = test::uniform({3, 4, 2}, -1, 1, 3);
  check_close(gemm(A, B, C, {.alpha = 0.5, .beta = -1.5}), 0.5 * ref - 1.5 * C);
  check_close(syrk(A, {.alpha = 2.0}), 2.0 * Tensor::from({3, 4, 4}, test::naive_matmul(A, transpose(A))));
  check_close(syrk(A, {.transpose = true}), Tensor::from({3, 5, 5}, test::naive_matmul(transpose(A), A)));
  Tensor S = syrk(A);
  CHECK(S.to_vector() == transpose(S).to_vector());  // exactly symmetric
}

TEST_CASE("gemm2 broadcasts batch dimensions without changing values") {
  Tensor L = test::uniform({4, 4}, -1, 1, 4);
  Tensor B = test::uniform({6, 4, 3}, -1, 1, 5);
  Tensor ref = Tensor::from({6, 4, 3}, test::naive_matmul(expand(L, {6, 4, 4}), B));
  check_close(gemm2(L, B), ref);
  Tensor A2 = test::uniform({2, 1, 3, 4}, -1, 1, 6), B2 = test::uniform({1, 5, 4, 2}, -1, 1, 7);
  Tensor C2 = gemm2(A2, B2);
  CHECK(C2.shape() == Shape{2, 5, 3, 2});
  check_close(C2, Tensor::from({2, 5, 3, 2}, test::naive_matmul(expand(A2, {2, 5, 3, 4}),
                                                                  expand(B2, {2, 5, 4, 2}))));
}

TEST_CASE("potrf: L L^T = A, lower and upper; potri(potrf(A)) A = I") {
  for (int64_t n : {1, 2, 3, 5, 8, 9, 20}) {
    CAPTURE(n);
    Tensor A = test::spd({3}, n, static_cast<uint64_t>(n));
    Tensor L = potrf(A);
    check_close(gemm2(L, L, {.transpose_b = true}), A, 1e-12);
    check_close(tril(L), L, 0.0);
    Tensor U = potrf(A, {.lower = false});
    check_close(gemm2(U, U, {.transpose_a = true}), A, 1e-12);
    check_close(triu(U), U, 0.0);
    check_close(gemm2(potri(L), A), test::batch_eye({3}, n), 1e-10);
    check_close(gemm2(potri(U, {.lower = false}), A), test::batch_eye({3}, n), 1e-10);
    // 2 sumlogdiag(potrf(A)) = log det A
    auto [sign, logabs] = slogdet(A);
    check_close(2.0 * sumlogdiag(L), logabs, 1e-10);
    check_close(sign, Tensor::ones({3}), 0.0);
  }
}

TEST_CASE("potrf reads only one triangle") {
  Tensor A = test::spd({}, 4, 9);
  Tensor garbage = A + triu(Tensor::full({4, 4}, 100.0), 1);
  check_close(potrf(garbage), potrf(A), 0.0);
}

TEST_CASE("trsm undoes trmm for every flag combination and alpha") {
  for (bool lower : {true, false})
    for (bool transpose_flag : {false, true})
      for (bool rightside : {false, true})
        for (double alpha : {1.0, -0.5}) {
          CAPTURE(lower);
          CAPTURE(transpose_flag);
          CAPTURE(rightside);
          Tensor T = test::triangular({2}, 4, lower, 3);
          Tensor B = test::uniform(rightside ? Shape{2, 3, 4} : Shape{2, 4, 3}, -1, 1, 4);
          const TriangularOptions o{.transpose = transpose_flag, .rightside = rightside, .lower = lower,
                                    .alpha = alpha};
          Tensor C = trmm(T, B, o);
          // Against an explicit product with op(T).
          Tensor opT = transpose_flag ? transpose(T) : T;
          Tensor ref = rightside ? Tensor::from(C.shape(), test::naive_matmul(B, opT))
                                 : Tensor::from(C.shape(), test::naive_matmul(opT, B));
          check_close(C, alpha * ref, 1e-12);
          TriangularOptions inv = o;
          inv.alpha = 1.0 / alpha;
          check_close(trsm(T, C, inv), B, 1e-12);
        }
}

TEST_CASE("trsm with alpha = 0 gives zeros, and one factor broadcasts over many right-hand sides") {
  Tensor L = test::triangular({}, 3, true, 5);
  Tensor B = test::uniform({7, 3, 2}, -1, 1, 6);
  check_close(trsm(L, B, {.alpha = 0.0}), Tensor::zeros({7, 3, 2}), 0.0);
  Tensor X = trsm(L, B);
  check_close(gemm2(L, X), B, 1e-12);
}

TEST_CASE("diag and triangle packing match MXNet's documented examples") {
  Tensor A = Tensor::from({2, 2}, {1, 2, 3, 4});
  test::check_values(extracttrian(A), {1, 3, 4});
  test::check_values(extracttrian(A, {.lower = false}), {1, 2, 4});
  test::check_values(extracttrian(A, {.offset = 1}), {2});
  test::check_values(extracttrian(A, {.offset = -1}), {3});
  Tensor B = Tensor::from({3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  test::check_values(extracttrian(B), {0, 3, 4, 6, 7, 8});                    // row by row
  test::check_values(extracttrian(B, {.lower = false}), {0, 1, 4, 2, 5, 8});  // column by column
  test::check_values(extracttrian(B, {.offset = -1}), {3, 6, 7});
  test::check_values(extractdiag(B), {0, 4, 8});
  test::check_values(extractdiag(B, {.offset = 1}), {1, 5});
  test::check_values(extractdiag(B, {.offset = -2}), {6});
  test::check_values(makediag(Tensor::from({2}, {1, 2}), {.offset = -1}), {0, 0, 0, 1, 0, 0, 0, 2, 0});
  test::check_values(maketrian(Tensor::from({3}, {1, 2, 3})), {1, 0, 2, 3});
  test::check_values(maketrian(Tensor::from({3}, {1, 2, 3}), {.offset = 1}), {0, 1, 2, 0, 0, 3, 0, 0, 0});
  // Round trips on a batch.
  Tensor C = test::uniform({2, 3, 4, 4}, -1, 1, 7);
  for (int64_t offset : {-2, -1, 0, 1, 3})
    for (bool lower : {true, false}) {
      Tensor v = extracttrian(C, {.offset = offset, .lower = lower});
      check_close(extracttrian(maketrian(v, {.offset = offset, .lower = lower}), {.offset = offset, .lower = lower}), v, 0.0);
    }
}

TEST_CASE("det, slogdet, inverse") {
  Tensor T = test::triangular({3}, 4, true, 8);
  Tensor d = extractdiag(T);
  // det of a triangular matrix is the product of its diagonal.
  Tensor product = exp(sum(log(d), {-1}));
  check_close(det(T), product, 1e-12);
  Tensor A = test::uniform({5, 4, 4}, -1, 1, 9);
  check_close(gemm2(inverse(A), A), test::batch_eye({5}, 4), 1e-9);
  auto [sign, logabs] = slogdet(A);
  check_close(sign * exp(logabs), det(A), 1e-10);
  // A known determinant with a row swap: [[0, 1], [2, 3]] has det -2.
  Tensor P = Tensor::from({2, 2}, {0, 1, 2, 3});
  CHECK(det(P).item() == doctest::Approx(-2.0));
  auto [s2, l2] = slogdet(P);
  CHECK(s2.item() == -1.0);
  CHECK(l2.item() == doctest::Approx(std::log(2.0)));
  // Singular: sign 0, log|det| = -inf; det 0.
  Tensor Z = Tensor::from({2, 2}, {1, 2, 2, 4});
  auto [s3, l3] = slogdet(Z);
  CHECK(s3.item() == 0.0);
  CHECK(std::isinf(l3.item()));
  CHECK(det(Z).item() == 0.0);
}

TEST_CASE("syevd reconstructs A with ascending eigenvalues; gelqf gives A = L Q, Q Q^T = I") {
  Tensor A = test::spd({2, 3}, 5, 10) - 1.3 * test::batch_eye({2, 3}, 5);
  auto [U, lambda] = syevd(A);
  check_close(gemm2(gemm2(U, makediag(lambda), {.transpose_a = true}), U), A, 1e-10);
  check_close(gemm2(U, U, {.transpose_b = true}), test::batch_eye({2, 3}, 5), 1e-12);
  for (int64_t b = 0; b < 6; ++b)
    for (int64_t i = 0; i + 1 < 5; ++i)
      CHECK(lambda.data()[static_cast<size_t>(b * 5 + i)] <= lambda.data()[static_cast<size_t>(b * 5 + i + 1)]);
  // 2x2 closed form: [[2, 1], [1, 2]] has eigenvalues 1 and 3.
  auto [U2, l2] = syevd(Tensor::from({2, 2}, {2, 1, 1, 2}));
  test::check_values(l2, {1.0, 3.0});
  Tensor M = test::uniform({4, 3, 6}, -1, 1, 11);
  auto [Q, L] = gelqf(M);
  check_close(gemm2(L, Q), M, 1e-12);
  check_close(gemm2(Q, Q, {.transpose_b = true}), test::batch_eye({4}, 3), 1e-12);
  check_close(tril(L), L, 0.0);
}
