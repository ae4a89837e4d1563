// kernels::potrf_backward (blocked, Murray 2016) against the symbolic formula written with
// differentiable ops, and potrf's first-order gradient at an order that takes the kernel path
// against the closed form of docs/linalg.md §8.1.
#include "linalg_helpers.hpp"

#include "linalg/detail/kernels/kernels.hpp"

using namespace cholla;
using namespace cholla::linalg;

namespace {

// gA = 1/2 L^{-T} copyltu(L^T gL) L^{-1} (lower), 1/2 U^{-1} copyutl(gU U^T) U^{-T} (upper),
// composed from ops exactly as docs/linalg.md §4.1 states it.
Tensor symbolic(const Tensor& L, const Tensor& G, bool lower) {
  NoGrad guard;
  if (lower) {
    Tensor M = trmm(L, G, {.transpose = true});
    Tensor S = tril(M) + transpose(tril(M, -1));
    return trsm(L, trsm(L, S, {.transpose = true}), {.rightside = true, .alpha = 0.5});
  }
  Tensor M = trmm(L, G, {.transpose = true, .rightside = true, .lower = false});
  Tensor S = triu(M) + transpose(triu(M, 1));
  return trsm(L, trsm(L, S, {.lower = false}),
              {.transpose = true, .rightside = true, .lower = false, .alpha = 0.5});
}

Tensor kernel(const Tensor& L, const Tensor& G, bool lower) {
  const int64_t n = L.size(-1);
  Tensor out = Tensor::empty(L.shape());
  kernels::potrf_backward(lower, n, L.data().data(), n * n, G.data().data(), n * n,
                          out.mutable_data().data(), n * n, L.numel() / (n * n));
  return out;
}

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (double x : t.data()) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST_CASE("potrf_backward kernel matches the op-composed formula, lower and upper, batched") {
  // 300 spans three blocks of the blocked loop, so its off-diagonal gemm updates run too.
  for (int64_t n : {1, 2, 3, 17, 64, 200, 300})
    for (bool lower : {true, false}) {
      CAPTURE(n);
      CAPTURE(lower);
      const Shape batch = n >= 200 ? Shape{2} : Shape{3};
      Tensor L = potrf(test::spd(batch, n, 11 + static_cast<uint64_t>(n)), {.lower = lower});
      Shape s = batch;
      s.push_back(n);
      s.push_back(n);
      // A full gL: the kernel must ignore the triangle that is not part of the factor.
      Tensor G = test::uniform(s, -1.0, 1.0, 5);
      Tensor ref = symbolic(L, G, lower);
      Tensor got = kernel(L, G, lower);
      // The reference is symmetric only up to rounding; the kernel exactly.
      test::check_close(got, 0.5 * (ref + transpose(ref)), 1e-11 * (1.0 + max_abs(ref)));
      test::check_close(got, transpose(got), 0.0);
    }
}

TEST_CASE("potrf_backward kernel: gA may alias gL, and a broadcast factor is read per element") {
  const int64_t n = 9;
  Tensor L = potrf(test::spd({}, n, 3));
  Tensor G = test::uniform({2, n, n}, -1.0, 1.0, 4);
  Tensor ref = symbolic(expand(L, {2, n, n}), G, true);
  Tensor inplace = Tensor::make(G.shape(), G.to_vector());
  double* p = inplace.mutable_data().data();
  kernels::potrf_backward(true, n, L.data().data(), 0, p, n * n, p, n * n, 2);
  test::check_close(inplace, 0.5 * (ref + transpose(ref)), 1e-12);
}

TEST_CASE("potrf + sumlogdiag: first-order gradient at large n is A^{-1} / 2") {
  // d/dA sum_i log L_ii = d/dA (1/2 log det A) = A^{-1} / 2 (§4(a) with no data term).
  const int64_t n = 150;  // above the order where potrf's backward switches to the kernel
  for (bool lower : {true, false}) {
    CAPTURE(lower);
    Tensor A = test::spd({2}, n, 21);
    A.requires_grad(true);
    Tensor loss = sum(sumlogdiag(potrf(A, {.lower = lower})));
    loss.backward();
    Tensor expected;
    {
      NoGrad guard;
      expected = 0.5 * inverse(A.detach());
    }
    test::check_close(A.grad(), expected, 1e-12);
  }
}

TEST_CASE("potrf at large n: the kernel path and the differentiable path agree") {
  // With create_graph the backward is recorded (the op-composed path), without it the kernel
  // runs: same values, and the recorded gradient can still be differentiated.
  const int64_t n = 150;
  Tensor A = test::spd({}, n, 31);
  A.requires_grad(true);
  Tensor W = test::uniform({n, n}, -1.0, 1.0, 32);
  const auto loss = [&] { return sum(potrf(A) * W); };
  Tensor plain = grad({loss()}, {A})[0];
  Tensor recorded = grad({loss()}, {A}, {.create_graph = true})[0];
  test::check_close(plain, recorded.detach(), 1e-11);
  Tensor hv = grad({sum(recorded * W)}, {A})[0];
  CHECK(std::isfinite(max_abs(hv)));
}
