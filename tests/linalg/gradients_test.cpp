// gradcheck and gradgradcheck of every linalg op, per flag combination, on batched and
// broadcast shapes including 1x1.
#include "linalg_helpers.hpp"

using namespace cholla;
using namespace cholla::linalg;
using test::check_gradients;
using Fn = std::vector<Tensor>;
using test::mat;

TEST_CASE("gemm2, gemm, syrk: gradients for every transpose, batched and broadcast") {
  struct Case { Shape a_batch, b_batch; int64_t m, k, n; };
  for (Case c : {Case{{2}, {2}, 3, 4, 2}, Case{{}, {3}, 2, 3, 2}, Case{{2, 1}, {1, 2}, 2, 2, 3},
                 Case{{}, {}, 1, 1, 1}, Case{{3}, {}, 2, 1, 2}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        CAPTURE(format_shape(c.a_batch));
        CAPTURE(format_shape(c.b_batch));
        CAPTURE(ta);
        CAPTURE(tb);
        Tensor A = test::uniform(ta ? mat(c.a_batch, c.k, c.m) : mat(c.a_batch, c.m, c.k), -1, 1, 1);
        Tensor B = test::uniform(tb ? mat(c.b_batch, c.n, c.k) : mat(c.b_batch, c.k, c.n), -1, 1, 2);
        const Gemm2Options o{.transpose_a = ta, .transpose_b = tb, .alpha = -0.7};
        check_gradients([o](const Fn& x) { return gemm2(x[0], x[1], o); }, {A, B});
      }
  Tensor A = test::uniform({2, 3, 4}, -1, 1, 3), B = test::uniform({4, 2}, -1, 1, 4);
  Tensor C = test::uniform({3, 2}, -1, 1, 5);
  check_gradients([](const Fn& x) { return gemm(x[0], x[1], x[2], {.alpha = 1.5, .beta = -0.5}); }, {A, B, C});
  check_gradients([](const Fn& x) { return syrk(x[0], {.alpha = 0.5}); }, {A});
  check_gradients([](const Fn& x) { return syrk(x[0], {.transpose = true}); }, {A});
}

TEST_CASE("trmm and trsm: gradients for all 8 flag combinations, alpha, broadcasting") {
  for (bool lower : {true, false})
    for (bool tr : {false, true})
      for (bool right : {false, true})
        for (Shape a_batch : {Shape{2}, Shape{}}) {
          CAPTURE(lower);
          CAPTURE(tr);
          CAPTURE(right);
          CAPTURE(format_shape(a_batch));
          Tensor T = test::triangular(a_batch, 3, lower, 6);
          Tensor B = test::uniform(right ? Shape{2, 2, 3} : Shape{2, 3, 2}, -1, 1, 7);
          const TriangularOptions o{.transpose = tr, .rightside = right, .lower = lower, .alpha = 1.3};
          // General structure on T: entries outside the triangle must get exactly zero.
          check_gradients([o](const Fn& x) { return trmm(x[0], x[1], o); }, {T, B});
          check_gradients([o](const Fn& x) { return trsm(x[0], x[1], o); }, {T, B});
        }
  Tensor one = Tensor::from({1, 1}, {1.7}), b = Tensor::from({4, 1, 1}, {1, -2, 3, 0.5});
  check_gradients([](const Fn& x) { return trsm(x[0], x[1]); }, {one, b});
  check_gradients([](const Fn& x) { return trmm(x[0], x[1], {.transpose = true}); }, {one, b});
  // alpha = 0: the gradient of B is zero and A's gradient is finite (no division by alpha).
  Tensor T = test::triangular({}, 3, true, 8), B = test::uniform({3, 2}, -1, 1, 9);
  check_gradients([](const Fn& x) { return trsm(x[0], x[1], {.alpha = 0.0}) + x[1]; }, {T, B});
}

TEST_CASE("potrf: symmetric-convention gradient, lower and upper, batched and 1x1") {
  for (bool lower : {true, false})
    for (int64_t n : {1, 2, 4}) {
      CAPTURE(lower);
      CAPTURE(n);
      Tensor A = test::spd({2, 2}, n, static_cast<uint64_t>(10 + n));
      const GradcheckOptions sym{.structure = {Structure::Symmetric}};
      check_gradients([lower](const Fn& x) { return potrf(x[0], {.lower = lower}); }, {A}, sym);
      // The gradient itself is symmetric.
      Tensor leaf = A.detach().requires_grad(true);
      Tensor w = test::uniform(A.shape(), -1, 1, 3);
      auto g = grad({sum(potrf(leaf, {.lower = lower}) * w)}, {leaf});
      test::check_close(g[0], transpose(g[0]), 1e-12);
    }
}

TEST_CASE("potrf + sumlogdiag gradient equals the closed form A^{-1}") {
  Tensor A = test::spd({3}, 4, 21).requires_grad(true);
  Tensor logdet = 2.0 * sumlogdiag(potrf(A));
  sum(logdet).backward();
  test::check_close(A.grad(), inverse(A.detach()), 1e-10);
}

TEST_CASE("potri, sumlogdiag, diag and triangle ops: gradients") {
  for (bool lower : {true, false}) {
    Tensor L = test::triangular({2}, 3, lower, 12);
    check_gradients([lower](const Fn& x) { return potri(x[0], {.lower = lower}); }, {L});
  }
  Tensor one = Tensor::from({1, 1}, {0.8});
  check_gradients([](const Fn& x) { return potri(x[0]); }, {one});
  Tensor L = test::triangular({2, 2}, 4, true, 13);
  check_gradients([](const Fn& x) { return sumlogdiag(x[0]); }, {L});
  Tensor A = test::uniform({2, 4, 4}, -1, 1, 14);
  for (int64_t offset : {-2, 0, 1}) {
    check_gradients([offset](const Fn& x) { return square(extractdiag(x[0], {.offset = offset})); }, {A});
    check_gradients([offset](const Fn& x) { return square(extracttrian(x[0], {.offset = offset, .lower = false})); }, {A});
    check_gradients([offset](const Fn& x) { return square(extracttrian(x[0], {.offset = offset})); }, {A});
  }
  Tensor v = test::uniform({3, 6}, -1, 1, 15);
  check_gradients([](const Fn& x) { return square(maketrian(x[0])); }, {v});
  check_gradients([](const Fn& x) { return square(maketrian(x[0], {.offset = 1})); }, {v});
  check_gradients([](const Fn& x) { return square(makediag(x[0], {.offset = -1})); }, {v});
  check_gradients([](const Fn& x) { return square(tril(x[0], -1)) + triu(x[0]); }, {A});
}

TEST_CASE("inverse, det, slogdet: gradients") {
  Tensor A = test::spd({2}, 3, 16) + test::uniform({2, 3, 3}, -0.3, 0.3, 17);  // non-symmetric
  check_gradients([](const Fn& x) { return inverse(x[0]); }, {A});
  check_gradients([](const Fn& x) { return det(x[0]); }, {A});
  check_gradients([](const Fn& x) { return slogdet(x[0]).second; }, {A});
  Tensor N = -1.0 * A;  // negative determinant (odd n)
  check_gradients([](const Fn& x) { return slogdet(x[0]).second; }, {N});
  Tensor one = Tensor::from({1, 1}, {-2.5});
  check_gradients([](const Fn& x) { return det(x[0]) * inverse(x[0]); }, {one});
}

TEST_CASE("syevd and gelqf: gradients") {
  // Eigenvalues well separated: A = spd + diag(0, 1, 2, 3) shifts them apart.
  Tensor A = test::spd({2}, 4, 18) + makediag(Tensor::from({4}, {0, 1.5, 3, 4.5}));
  const GradcheckOptions sym{.structure = {Structure::Symmetric}};
  check_gradients([](const Fn& x) { return syevd(x[0]).second; }, {A}, sym);
  check_gradients([](const Fn& x) { return syevd(x[0]).first; }, {A}, sym);
  check_gradients([](const Fn& x) {
    auto [U, l] = syevd(x[0]);
    return gemm2(U, square(U)) * unsqueeze(l, -1);
  }, {A}, sym);
  Tensor M = test::uniform({2, 3, 5}, -1, 1, 19);
  check_gradients([](const Fn& x) { return gelqf(x[0]).first; }, {M});
  check_gradients([](const Fn& x) { return gelqf(x[0]).second; }, {M});
  check_gradients([](const Fn& x) {
    auto [Q, L] = gelqf(x[0]);
    return sum(Q, {-1}) * sum(L, {-1});
  }, {M});
}

TEST_CASE("gradients accumulate into already-filled gradients") {
  Tensor A = test::spd({2}, 3, 20).requires_grad(true);
  Tensor B = test::uniform({2, 3, 2}, -1, 1, 21).requires_grad(true);
  Tensor prefilled_A = test::uniform(A.shape(), -1, 1, 22);
  Tensor prefilled_B = test::uniform(B.shape(), -1, 1, 23);
  auto loss = [&] { return sum(square(trsm(potrf(A), B))) + sum(gemm2(A, B)); };
  auto fresh = grad({loss()}, {A, B});
  A.set_grad(prefilled_A);
  B.set_grad(prefilled_B);
  loss().backward();
  test::check_close(A.grad(), prefilled_A + fresh[0], 1e-12);
  test::check_close(B.grad(), prefilled_B + fresh[1], 1e-12);
}
