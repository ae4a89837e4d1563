// Zero sizes: every op (solves included) on n = 0 matrices and on an empty batch, forward, backward and the
// backward's own backward. The results are the empty (or, where a reduction meets an empty
// range, the neutral) values numpy and PyTorch give: det of a 0x0 matrix is 1, slogdet (1, 0),
// a product with inner dimension 0 is a zero matrix.
#include "linalg_helpers.hpp"

using namespace cholla;
using namespace cholla::linalg;
using Fn = std::vector<Tensor>;
using test::mat;

namespace {

// f's output has the expected shape and values; first- and second-order gradients exist and
// have the inputs' shapes (an empty gradient for an empty input).
void check_empty(const char* what, const std::function<Tensor(const Fn&)>& f, const Fn& inputs,
                 const Shape& expected, const std::vector<double>& values = {}) {
  CAPTURE(what);
  Fn leaves;
  for (const Tensor& x : inputs) leaves.push_back(x.detach().requires_grad(true));
  Tensor out = f(leaves);
  CHECK(out.shape() == expected);
  if (!values.empty()) test::check_values(out, values);
  // First order through the fast paths (no create_graph) ...
  auto g = grad({sum(out * out)}, leaves);
  REQUIRE(g.size() == leaves.size());
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i].defined()) CHECK(g[i].shape() == leaves[i].shape());
  // ... and second order through the differentiable ones.
  Tensor again = f(leaves);
  auto g1 = grad({sum(again * again)}, leaves, {.create_graph = true});
  Tensor total = Tensor::zeros({});
  for (const Tensor& t : g1)
    if (t.defined()) total = total + sum(t * t);
  if (total.requires_grad()) {
    auto g2 = grad({total}, leaves, {.allow_unused = true});
    for (size_t i = 0; i < g2.size(); ++i)
      if (g2[i].defined()) CHECK(g2[i].shape() == leaves[i].shape());
  }
}


}  // namespace

TEST_CASE("every linalg op on 0x0 matrices and on an empty batch") {
  // {batch, n}: 0x0 alone, a batch of 0x0, an empty batch of 3x3.
  struct Case { Shape batch; int64_t n; };
  for (Case c : {Case{{}, 0}, Case{{2}, 0}, Case{{0}, 3}, Case{{2, 0}, 2}}) {
    CAPTURE(format_shape(c.batch));
    CAPTURE(c.n);
    const int64_t n = c.n, count = numel(c.batch);
    const Shape m = mat(c.batch, n, n);
    Tensor A = Tensor::zeros(m), B = Tensor::zeros(mat(c.batch, n, 2));
    Tensor S = test::batch_eye(c.batch, n);
    Shape vec = c.batch;
    vec.push_back(n);
    check_empty("gemm2", [](const Fn& x) { return gemm2(x[0], x[1]); }, {A, B}, mat(c.batch, n, 2));
    check_empty("gemm", [](const Fn& x) { return gemm(x[0], x[1], x[2]); }, {A, B, B}, mat(c.batch, n, 2));
    check_empty("syrk", [](const Fn& x) { return syrk(x[0]); }, {B}, m);
    check_empty("syrk^T", [](const Fn& x) { return syrk(x[0], {.transpose = true}); }, {B},
                mat(c.batch, 2, 2), std::vector<double>(static_cast<size_t>(4 * count), 0.0));
    for (bool right : {false, true}) {
      Tensor R = right ? Tensor::zeros(mat(c.batch, 2, n)) : B;
      const TriangularOptions o{.rightside = right};
      check_empty("trmm", [o](const Fn& x) { return trmm(x[0], x[1], o); }, {S, R}, R.shape());
      check_empty("trsm", [o](const Fn& x) { return trsm(x[0], x[1], o); }, {S, R}, R.shape());
    }
    for (bool lower : {true, false}) {
      check_empty("potrf", [lower](const Fn& x) { return potrf(x[0], {.lower = lower}); }, {S}, m);
      check_empty("potrf_ex", [lower](const Fn& x) { return potrf_ex(x[0], {.lower = lower}).first; }, {S}, m);
      check_empty("potri", [lower](const Fn& x) { return potri(x[0], {.lower = lower}); }, {S}, m);
    }
    CHECK(potrf_ex(S).second.shape() == c.batch);
    const std::vector<double> zeros(static_cast<size_t>(count), 0.0), ones(static_cast<size_t>(count), 1.0);
    check_empty("sumlogdiag", [](const Fn& x) { return sumlogdiag(x[0]); }, {S}, c.batch, n == 0 ? zeros : std::vector<double>{});
    check_empty("extractdiag", [](const Fn& x) { return extractdiag(x[0]); }, {A}, vec);
    check_empty("makediag", [](const Fn& x) { return makediag(x[0]); }, {Tensor::zeros(vec)}, m);
    Shape packed = c.batch;
    packed.push_back(n * (n + 1) / 2);
    check_empty("extracttrian", [](const Fn& x) { return extracttrian(x[0]); }, {A}, packed);
    check_empty("maketrian", [](const Fn& x) { return maketrian(x[0]); }, {Tensor::zeros(packed)}, m);
    check_empty("tril", [](const Fn& x) { return tril(x[0]); }, {A}, m);
    check_empty("triu", [](const Fn& x) { return triu(x[0], 1); }, {A}, m);
    check_empty("inverse", [](const Fn& x) { return inverse(x[0]); }, {S}, m);
    check_empty("solve", [](const Fn& x) { return solve(x[0], x[1]); }, {S, B}, B.shape());
    for (bool lower : {true, false})
      check_empty("cholesky_solve", [lower](const Fn& x) { return cholesky_solve(x[0], x[1], {.lower = lower}); },
                  {S, B}, B.shape());
    check_empty("det", [](const Fn& x) { return det(x[0]); }, {S}, c.batch, ones);
    check_empty("slogdet", [](const Fn& x) { return slogdet(x[0]).second; }, {S}, c.batch, zeros);
    CHECK(slogdet(S).first.shape() == c.batch);
    test::check_values(slogdet(S).first, ones);
    check_empty("syevd.U", [](const Fn& x) { return syevd(x[0]).first; }, {S}, m);
    check_empty("syevd.lambda", [](const Fn& x) { return syevd(x[0]).second; }, {S}, vec);
    Tensor wide = Tensor::zeros(mat(c.batch, n, n + 1));
    check_empty("gelqf.Q", [](const Fn& x) { return gelqf(x[0]).first; }, {n == 0 ? wide : A}, n == 0 ? wide.shape() : m);
    check_empty("gelqf.L", [](const Fn& x) { return gelqf(x[0]).second; }, {n == 0 ? wide : A}, m);
  }
}

TEST_CASE("inner dimension 0: products are zero matrices with empty gradients") {
  Tensor A = Tensor::zeros({2, 3, 0}), B = Tensor::zeros({0, 4});
  check_empty("gemm2", [](const Fn& x) { return gemm2(x[0], x[1]); }, {A, B}, {2, 3, 4},
              std::vector<double>(24, 0.0));
  Tensor C = test::uniform({3, 4}, -1, 1, 1);
  Tensor leafC = C.detach().requires_grad(true);
  Tensor out = gemm(A, B, leafC, {.beta = 2.0});
  test::check_close(out, expand(2.0 * C, {2, 3, 4}), 0.0);
  check_empty("syrk", [](const Fn& x) { return syrk(x[0]); }, {A}, {2, 3, 3}, std::vector<double>(18, 0.0));
  // No right-hand sides: an n x 0 solution.
  Tensor S = test::spd({2}, 3, 2), none = Tensor::zeros({2, 3, 0});
  check_empty("solve", [](const Fn& x) { return solve(x[0], x[1]); }, {S, none}, {2, 3, 0});
  check_empty("cholesky_solve", [](const Fn& x) { return cholesky_solve(potrf(x[0]), x[1]); }, {S, none}, {2, 3, 0});
  // A 0 x 3 matrix has an LQ factorisation with empty factors.
  check_empty("gelqf.Q", [](const Fn& x) { return gelqf(x[0]).first; }, {Tensor::zeros({2, 0, 3})}, {2, 0, 3});
}
