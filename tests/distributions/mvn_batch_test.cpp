// The MVN batch plan (distributions/detail/mvn_batch.hpp): the direct plan for one batch shared
// by loc, the factor and x must be the broadcasting plan exactly, field by field, and log_prob
// and its gradients must come out with the same bits whichever plan a call takes.
#include <cstring>

#include "../linalg/linalg_helpers.hpp"
#include "distributions/detail/mvn_batch.hpp"
#include "distributions/detail/mvn_simd.hpp"

using namespace cholla;
using dist::MultivariateNormal;

namespace {

Shape with(Shape batch, std::initializer_list<int64_t> event) {
  batch.insert(batch.end(), event.begin(), event.end());
  return batch;
}

void check_same_plan(const dist::detail::MvnBatch& a, const dist::detail::MvnBatch& b) {
  CHECK(a.shape == b.shape);
  CHECK(a.count == b.count);
  CHECK(a.d == b.d);
  CHECK(a.loc_offset == b.loc_offset);
  CHECK(a.factor_offset == b.factor_offset);
  CHECK(a.x_offset == b.x_offset);
  CHECK(a.loc_step == b.loc_step);
  CHECK(a.factor_step == b.factor_step);
  CHECK(a.x_step == b.x_step);
  CHECK(a.factor_count == b.factor_count);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() &&
         std::memcmp(a.data().data(), b.data().data(), static_cast<size_t>(a.numel()) * sizeof(double)) == 0;
}

struct Call {
  Tensor lp, gloc, gmatrix, gx;
};

// log_prob and the gradients of `loss` (eager gradients for -mean, the backward pass for sum).
Call run(bool covariance, const Tensor& loc0, const Tensor& matrix0, const Tensor& x0, bool mean_loss) {
  Tensor loc = loc0.detach().requires_grad(true), matrix = matrix0.detach().requires_grad(true),
         x = x0.detach().requires_grad(true);
  dist::detail::simd_guess_reset();
  auto mvn = covariance ? MultivariateNormal::from_covariance(loc, matrix)
                        : MultivariateNormal::from_scale_tril(loc, matrix);
  Tensor lp = mvn.log_prob(x);
  (mean_loss ? -mean(lp) : sum(lp)).backward();
  return {lp.detach(), loc.grad(), matrix.grad(), x.grad()};
}

}  // namespace

TEST_CASE("mvn batch plan: the direct plan of one shared batch is the broadcasting plan") {
  struct Case {
    Shape loc, factor, x;
  };
  const Case cases[] = {
      // one batch for all three: the direct plan
      {{}, {}, {}},
      {{1}, {1}, {1}},
      {{5}, {5}, {5}},
      {{2, 3}, {2, 3}, {2, 3}},
      {{0}, {0}, {0}},
      {{4, 0, 2}, {4, 0, 2}, {4, 0, 2}},
      {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
      // broadcasting: the general plan (the same function, so these only check the dispatch)
      {{1}, {5}, {5}},
      {{5}, {}, {5}},
      {{2, 1}, {1, 3}, {2, 3}},
      {{5}, {5}, {7, 5}},
      {{3}, {3}, {}},
      {{1}, {1}, {}},
      {{}, {1}, {1}},
      {{2, 3}, {3}, {2, 3}},
  };
  for (int64_t d : {1, 3}) {
    for (const Case& c : cases) {
      CAPTURE(d);
      CAPTURE(format_shape(c.loc));
      CAPTURE(format_shape(c.factor));
      CAPTURE(format_shape(c.x));
      const Tensor loc = Tensor::zeros(with(c.loc, {d})), factor = Tensor::zeros(with(c.factor, {d, d})),
                   x = Tensor::zeros(with(c.x, {d}));
      check_same_plan(dist::detail::plan_mvn_batch(loc, factor, x),
                      dist::detail::plan_mvn_batch_general(loc, factor, x));
    }
  }
}

TEST_CASE("mvn batch plan: a broadcast to the same samples gives log_prob and gradients bit for bit") {
  // x with one batch dimension fewer reads the same values at the same offsets through the
  // general plan; with x of loc's batch the call takes the direct one.
  for (bool covariance : {false, true}) {
    for (int64_t n : {1, 2, 5}) {
      for (bool mean_loss : {true, false}) {
        CAPTURE(covariance);
        CAPTURE(n);
        CAPTURE(mean_loss);
        const int64_t d = 3;
        const Tensor loc = test::uniform({1, n, d}, -1.0, 1.0, 7);
        const Tensor L = test::triangular({1, n}, d, true, 11);
        const Tensor matrix = covariance ? linalg::syrk(L).detach() : L;
        const Tensor x_batched = test::uniform({1, n, d}, -2.0, 2.0, 13);
        const Tensor x_broadcast = reshape(x_batched, {n, d}).detach();
        REQUIRE(dist::detail::plan_mvn_batch(loc, matrix, x_batched).x_offset.empty());
        const Call direct = run(covariance, loc, matrix, x_batched, mean_loss);
        const Call general = run(covariance, loc, matrix, x_broadcast, mean_loss);
        CHECK(direct.lp.shape() == general.lp.shape());
        CHECK(same_bits(direct.lp, general.lp));
        CHECK(same_bits(direct.gloc, general.gloc));
        CHECK(same_bits(direct.gmatrix, general.gmatrix));
        CHECK(same_bits(direct.gx, general.gx));  // shapes [1, n, d] and [n, d], same values
      }
    }
  }
}
