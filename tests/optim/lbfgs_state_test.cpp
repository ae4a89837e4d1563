// LBFGS state: state_dict / nn::save round trips resume bit-identically; corrupted state is an
// IoError that changes nothing; NaN and infinities follow the NonFinite policy.
#include <cmath>

#include "../autodiff/helpers.hpp"
#include "../nn/temp_dir.hpp"
#include "lbfgs_problems.hpp"
#include "state_helpers.hpp"

using namespace cholla;
using test::bit_equal;
using test::flat_values;
using test::Rosenbrock;
using test::with;

namespace {

// Rosenbrock's two parameters as a module, for nn::save / nn::load.
struct Valley : nn::Module {
  Rosenbrock r;
  Valley(double x0, double y0) : r(x0, y0) {
    register_parameter("x", r.x);
    register_parameter("y", r.y);
  }
};

const Tensor& entry(const optim::NamedTensors& state, const std::string& name) {
  for (const auto& [n, t] : state)
    if (n == name) return t;
  REQUIRE_MESSAGE(false, "no entry ", name);
  static const Tensor none;
  return none;
}

}  // namespace

TEST_CASE("lbfgs state: state_dict resumes bit-identically, history included") {
  Rosenbrock a(-1.5, 2.0), b(0.3, 0.3);
  optim::LBFGS first({a.x, a.y}, {.max_iter = 6}), second({b.x, b.y}, {.lr = 0.5, .history_size = 3});
  first.step(a.closure(first));
  const auto state = first.state_dict();
  const Tensor& s = entry(state, "lbfgs.history_s");
  CHECK(s.dim() == 2);
  CHECK(s.shape()[1] == 2);
  CHECK(s.shape()[0] >= 3);
  CHECK(entry(state, "lbfgs.iterations").item() == static_cast<double>(first.iterations()));
  CHECK(entry(state, "lbfgs.evaluations").item() == static_cast<double>(a.evaluations));
  {
    NoGrad guard;
    b.x.mutable_data()[0] = a.x.item();
    b.y.mutable_data()[0] = a.y.item();
  }
  second.load_state_dict(state);
  CHECK(second.options().lr == 1.0);
  CHECK(second.options().history_size == 100);
  for (int k = 0; k < 2; ++k) {
    first.step(a.closure(first));
    second.step(b.closure(second));
  }
  CHECK(bit_equal({a.x.item(), a.y.item()}, {b.x.item(), b.y.item()}));
  CHECK(bit_equal(flat_values(first.state_dict()), flat_values(second.state_dict())));
}

TEST_CASE("lbfgs state: through nn::save and nn::load") {
  test::TempDir dir;
  Valley saved(-1.5, 2.0), loaded(5, 5);
  optim::LBFGS opt(saved.parameters(), {.max_iter = 4});
  optim::LBFGS other(loaded.parameters());
  opt.step(saved.r.closure(opt));
  nn::save(saved, opt, dir.file("lbfgs.ckpt"));
  nn::load(loaded, other, dir.file("lbfgs.ckpt"));
  CHECK(other.options().max_iter == 4);
  opt.step(saved.r.closure(opt));
  other.step(loaded.r.closure(other));
  CHECK(bit_equal({saved.r.x.item(), saved.r.y.item()}, {loaded.r.x.item(), loaded.r.y.item()}));
}

TEST_CASE("lbfgs state: corrupted entries are IoErrors and change nothing") {
  Rosenbrock a(-1.5, 2.0), b(0.0, 0.0);
  optim::LBFGS source({a.x, a.y}, {.max_iter = 5}), target({b.x, b.y});
  source.step(a.closure(source));
  target.step(b.closure(target));
  const auto good = source.state_dict();
  const auto before = flat_values(target.state_dict());
  const int64_t k = entry(good, "lbfgs.history_s").shape()[0];
  REQUIRE(k >= 2);
  auto refuses = [&](const optim::NamedTensors& bad, const char* says) {
    CAPTURE(says);
    CHECK_THROWS_WITH_AS(target.load_state_dict(bad), doctest::Contains(says), IoError);
    CHECK(bit_equal(flat_values(target.state_dict()), before));
  };
  refuses(with(good, "lbfgs.history_s", Tensor::zeros({k, 3})), "'lbfgs.history_s' has shape [");
  refuses(with(good, "lbfgs.history_y", Tensor::zeros({k - 1, 2})), "history_s has");
  refuses(with(good, "lbfgs.direction", Tensor::from({2}, {NAN, 0})), "'lbfgs.direction' has 1 NaN");
  refuses(with(good, "lbfgs.prev_grad", Tensor::zeros({3})), "'lbfgs.prev_grad' has shape [3]");
  refuses(with(good, "lbfgs.hessian_scale", Tensor::scalar(0)), "'lbfgs.hessian_scale' is 0");
  refuses(with(good, "lbfgs.iterations", Tensor::scalar(-1)), "not a count");
  refuses(with(good, "lbfgs.evaluations", Tensor::scalar(2.5)), "not a count");
  // A pair without positive curvature: y = -s.
  std::vector<double> s = entry(good, "lbfgs.history_s").to_vector();
  for (double& v : s) v = -v;
  refuses(with(good, "lbfgs.history_y", Tensor::from({k, 2}, s)), "row 0 has y's = ");
  refuses(with(good, "lbfgs.group0.max_iter", Tensor::scalar(0.5)), "max_iter = 0.5");
  refuses(with(good, "lbfgs.group0.history_size", Tensor::scalar(0)), "history_size = 0");
  refuses(with(good, "lbfgs.group0.line_search", Tensor::scalar(2)), "line_search = 2");
  refuses(with(good, "lbfgs.group0.lr", Tensor::scalar(NAN)), "lr = nan");
  refuses(with(good, "lbfgs.group0.tolerance_change", Tensor::scalar(-1)), "tolerance_change = -1");
  // An empty history (a fresh optimiser's state) is valid.
  Rosenbrock c(1, 2);
  optim::LBFGS fresh({c.x, c.y});
  CHECK(entry(fresh.state_dict(), "lbfgs.history_s").shape() == Shape{0, 2});
  target.load_state_dict(fresh.state_dict());
  CHECK(target.iterations() == 0);
}

TEST_CASE("lbfgs nonfinite: a NaN at the start is a DomainError, or a skipped step") {
  Tensor x = Tensor::from({2}, {1.0, 4.0}).requires_grad(true);
  bool poison_grad = true;
  auto closure = [&] {
    x.zero_grad();
    Tensor l = sum(square(x));
    l.backward();
    if (poison_grad) x.set_grad(Tensor::from({2}, {1.0, NAN}));
    return poison_grad ? l : l * NAN;  // a finite gradient with a NaN loss, the second time
  };
  optim::LBFGS opt({x});
  opt.set_parameter_names({{"weights", x}});
  const auto before = flat_values(opt.state_dict());
  CHECK_THROWS_WITH_AS(opt.step(closure), doctest::Contains("'weights'"), DomainError);
  poison_grad = false;
  CHECK_THROWS_WITH_AS(opt.step(closure), doctest::Contains("the loss nan at the starting point"),
                       DomainError);
  test::check_values(x, {1.0, 4.0});
  CHECK(bit_equal(flat_values(opt.state_dict()), before));
  opt.set_nonfinite(optim::NonFinite::Skip);
  opt.step(closure);
  poison_grad = true;
  opt.step(closure);
  CHECK(opt.skipped_steps() == 2);
  test::check_values(x, {1.0, 4.0});
  CHECK(bit_equal(flat_values(opt.state_dict()), before));
}

TEST_CASE("lbfgs nonfinite: without a line search a step into NaN is undone, then policy applies") {
  // f = -log(1 - x^2) is NaN for |x| >= 1; from x = 0.5 (g = 4/3) with lr = 100 the first
  // step lands at x = 0.5 - 100 min(1, 1/|g|) g = -99.5.
  Tensor x = Tensor::from({1}, {0.5}).requires_grad(true);
  auto closure = [&] {
    x.zero_grad();
    Tensor l = sum(-log(1.0 - square(x)));
    l.backward();
    return l;
  };
  const optim::LBFGSOptions options{.lr = 100, .line_search = optim::LineSearch::None};
  {
    optim::LBFGS opt({x}, options);
    CHECK_THROWS_WITH_AS(opt.step(closure), doctest::Contains("back at the last finite point"),
                         DomainError);
    test::check_values(x, {0.5});
  }
  {
    optim::LBFGS opt({x}, options);
    opt.set_nonfinite(optim::NonFinite::Skip);
    opt.step(closure);
    CHECK(opt.skipped_steps() == 1);
    test::check_values(x, {0.5});
  }
  {
    optim::LBFGS opt({x}, options);
    opt.set_nonfinite(optim::NonFinite::Allow);
    opt.step(closure);  // first to x = -99.5, where the loss is NaN (its gradient is not)
    CHECK(std::fabs(x.item()) >= 99.5);
  }
}
