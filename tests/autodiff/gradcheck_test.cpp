// gradcheck itself: it must catch a wrong backward rule, name the worst element, and handle
// symmetric and triangular inputs.
#include "helpers.hpp"

using namespace cholla;
using Fn = std::vector<Tensor>;

namespace {

// x^2 with a deliberately wrong backward (3x instead of 2x).
Tensor wrong_square(const Tensor& x) {
  Tensor out = Tensor::make(x.shape(), square(x.detach()).to_vector());
  return record("wrong_square", {x}, out, [x](const Tensor& g, Needs) { return Grads{g * (3.0 * x)}; });
}

// Reads only the lower triangle of the last two dims: f(A) = sum of tril(A)^2 weighted.
Tensor lower_only(const Tensor& A) {
  const int64_t n = A.size(-1);
  Tensor mask = Tensor::zeros({n, n});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) mask.mutable_data()[static_cast<size_t>(i * n + j)] = 1.0;
  return square(A * mask);
}

}  // namespace

TEST_CASE("gradcheck catches a wrong backward and reports the worst element") {
  Tensor x = Tensor::from({2, 2}, {1.0, -2.0, 3.0, 0.5});
  auto r = gradcheck([](const Fn& v) { return wrong_square(v[0]); }, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.report.find("failed on 4 of 4 elements") != std::string::npos);
  CHECK(r.report.find("element [1, 0]") != std::string::npos);  // |x| largest -> worst
  CHECK_THROWS_AS(gradcheck([](const Fn& v) { return wrong_square(v[0]); }, {x},
                            {.throw_on_failure = true}),
                  GraphError);
  auto ok = gradcheck([](const Fn& v) { return square(v[0]); }, {x});
  CHECK_MESSAGE(ok.ok, ok.report);
}

TEST_CASE("gradgradcheck catches a backward that is not differentiable through the tape") {
  // A backward built from detached values is right to first order but wrong to second order.
  auto f = [](const Fn& v) {
    const Tensor& x = v[0];
    Tensor out = Tensor::make(x.shape(), exp(x.detach()).to_vector());
    return record("exp_detached", {x}, out,
                  [out](const Tensor& g, Needs) { return Grads{g * out.detach()}; });
  };
  Tensor x = Tensor::from({3}, {0.1, -0.4, 0.8});
  CHECK(gradcheck(f, {x}).ok);
  CHECK_FALSE(gradgradcheck(f, {x}).ok);
}

TEST_CASE("gradcheck: triangular and symmetric structure") {
  Tensor A = test::uniform({2, 3, 3}, -1.0, 1.0, 11);
  // The function ignores the upper triangle: a General check would still pass (zero
  // gradient there), and the triangular check perturbs only what the function reads.
  auto r = gradcheck([](const Fn& v) { return lower_only(v[0]); }, {A},
                     {.structure = {Structure::LowerTriangular}});
  CHECK_MESSAGE(r.ok, r.report);
  // Symmetric: perturbing (i,j) and (j,i) together matches g_ij + g_ji.
  auto s = gradcheck([](const Fn& v) { return lower_only(v[0]); }, {A},
                     {.structure = {Structure::Symmetric}});
  CHECK_MESSAGE(s.ok, s.report);
}
