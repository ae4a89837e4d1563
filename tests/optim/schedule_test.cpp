// Learning-rate schedules against PyTorch's closed forms, written out here independently of
// the library's code, on every parameter group; warm-up in front of another schedule.
#include <cmath>
#include <numbers>

#include "../autodiff/helpers.hpp"

using namespace cholla;

namespace {

Tensor param() { return Tensor::from({1}, {1.0}).requires_grad(true); }

// An SGD with two groups, lr 0.1 and 0.02.
struct TwoGroups {
  Tensor a = param(), b = param();
  optim::SGD opt{{{{a}, {.lr = 0.1}}, {{b}, {.lr = 0.02}}}};
};

// lrs after 0, 1, ..., n - 1 steps of `schedule`.
std::vector<std::vector<double>> run(optim::Schedule& schedule, int n) {
  std::vector<std::vector<double>> out{schedule.lrs()};
  for (int e = 1; e < n; ++e) schedule.step(), out.push_back(schedule.lrs());
  return out;
}

void check_sequence(const std::vector<std::vector<double>>& got, const std::vector<double>& bases,
                    const std::function<double(double, int)>& expected) {
  for (size_t e = 0; e < got.size(); ++e)
    for (size_t g = 0; g < bases.size(); ++g) {
      CAPTURE(e);
      CAPTURE(g);
      CHECK(got[e][g] == doctest::Approx(expected(bases[g], static_cast<int>(e))).epsilon(1e-14));
    }
}

}  // namespace

TEST_CASE("schedules: StepLR, ExponentialLR and CosineAnnealingLR follow the closed forms") {
  SUBCASE("StepLR: base * gamma^floor(e / step_size)") {
    TwoGroups t;
    optim::StepLR s(t.opt, {.step_size = 3, .gamma = 0.5});
    const auto got = run(s, 10);
    // e = 0..9: factors 1 1 1 .5 .5 .5 .25 .25 .25 .125
    CHECK(got[5][0] == doctest::Approx(0.05));
    CHECK(got[9][1] == doctest::Approx(0.0025));
    check_sequence(got, {0.1, 0.02}, [](double b, int e) { return b * std::pow(0.5, e / 3); });
    CHECK(s.epoch() == 9);
    CHECK(t.opt.options(0).lr == got[9][0]);  // the optimiser's options are what changed
  }
  SUBCASE("ExponentialLR: base * gamma^e") {
    TwoGroups t;
    optim::ExponentialLR s(t.opt, {.gamma = 0.9});
    check_sequence(run(s, 12), {0.1, 0.02}, [](double b, int e) { return b * std::pow(0.9, e); });
  }
  SUBCASE("on Adam and LBFGS too") {
    Tensor p = param();
    optim::Adam adam({p}, {.lr = 0.3});
    optim::ExponentialLR a(adam, {.gamma = 0.5});
    optim::LBFGS lbfgs({p}, {.lr = 0.8});
    optim::StepLR l(lbfgs, {.step_size = 2, .gamma = 0.5});
    for (int e = 0; e < 3; ++e) a.step(), l.step();
    CHECK(adam.options().lr == doctest::Approx(0.3 * 0.125));
    CHECK(lbfgs.options().lr == doctest::Approx(0.8 * 0.5));
  }
  SUBCASE("CosineAnnealingLR: eta_min + (base - eta_min)(1 + cos(pi e / T))/2, periodic past T") {
    TwoGroups t;
    optim::CosineAnnealingLR s(t.opt, {.T_max = 10, .eta_min = 0.001});
    const auto got = run(s, 25);
    CHECK(got[10][0] == doctest::Approx(0.001));   // the bottom at T_max
    CHECK(got[20][1] == doctest::Approx(0.02));    // back at the base after a period
    CHECK(got[5][0] == doctest::Approx((0.1 + 0.001) / 2));
    check_sequence(got, {0.1, 0.02}, [](double b, int e) {
      return 0.001 + (b - 0.001) * (1 + std::cos(std::numbers::pi * e / 10)) / 2;
    });
  }
}

TEST_CASE("schedules: LinearWarmup alone, then in front of a cosine") {
  SUBCASE("alone: base (s + (1 - s) e / W), then the base") {
    TwoGroups t;
    optim::LinearWarmup w(t.opt, 4, {.start_factor = 0.2});
    check_sequence(run(w, 8), {0.1, 0.02}, [](double b, int e) {
      return b * (0.2 + 0.8 * std::min(e, 4) / 4.0);
    });
  }
  SUBCASE("then cosine: the cosine starts from its epoch 0 at epoch W") {
    TwoGroups t;
    optim::CosineAnnealingLR cosine(t.opt, {.T_max = 6});
    optim::LinearWarmup w(t.opt, 3, cosine);
    const auto got = run(w, 12);
    check_sequence(got, {0.1, 0.02}, [](double b, int e) {
      if (e < 3) return b * (1.0 / 3 + (2.0 / 3) * e / 3);
      return b * (1 + std::cos(std::numbers::pi * (e - 3) / 6)) / 2;
    });
    CHECK(got[0][0] == doctest::Approx(0.1 / 3));
    CHECK(got[9][0] == doctest::Approx(0.0).scale(1));
  }
  SUBCASE("then StepLR") {
    TwoGroups t;
    optim::StepLR decay(t.opt, {.step_size = 2, .gamma = 0.1});
    optim::LinearWarmup w(t.opt, 2, decay, {.start_factor = 0.5});
    check_sequence(run(w, 8), {0.1, 0.02}, [](double b, int e) {
      return e < 2 ? b * (0.5 + 0.5 * e / 2) : b * std::pow(0.1, (e - 2) / 2);
    });
  }
}

TEST_CASE("schedules: ReduceLROnPlateau follows patience, threshold and cooldown") {
  TwoGroups t;
  optim::ReduceLROnPlateau p(t.opt, {.factor = 0.5, .patience = 2, .threshold = 0.1,
                                     .cooldown = 1, .min_lr = 0.006});
  // Relative threshold 0.1: a metric improves only when below 0.9 * best.
  const std::vector<double> metrics = {10, 9.5, 9.2, 9.1, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0};
  std::vector<std::vector<double>> lrs;
  for (double m : metrics) p.step(m), lrs.push_back(p.lrs());
  // epoch 1: best 10. 2, 3: bad (9.5, 9.2 >= 9). 4: third bad -> reduce (0.05, 0.01), cooldown 1.
  // 5: 8.0 < 9 improves; cooldown ends. 6, 7: bad. 8: third bad -> reduce (0.025, 0.006 = min).
  // 9: cooldown. 10, 11: bad, bad: no third bad yet.
  const std::vector<std::vector<double>> expected = {
      {0.1, 0.02},   {0.1, 0.02},   {0.1, 0.02},   {0.05, 0.01},  {0.05, 0.01}, {0.05, 0.01},
      {0.05, 0.01},  {0.025, 0.006}, {0.025, 0.006}, {0.025, 0.006}, {0.025, 0.006}};
  REQUIRE(lrs.size() == expected.size());
  for (size_t e = 0; e < lrs.size(); ++e)
    for (size_t g = 0; g < 2; ++g) {
      CAPTURE(e);
      CHECK(lrs[e][g] == doctest::Approx(expected[e][g]).epsilon(1e-14));
    }
  CHECK(p.best() == 8.0);
  CHECK(p.bad_epochs() == 2);
  CHECK_THROWS_WITH_AS(p.step(NAN), doctest::Contains("NaN"), DomainError);
  CHECK(p.bad_epochs() == 2);
  CHECK_THROWS_AS(p.step(), DomainError);
}

TEST_CASE("schedules: ReduceLROnPlateau in max mode with an absolute threshold, after a warm-up") {
  TwoGroups t;
  optim::ReduceLROnPlateau p(t.opt, {.mode = optim::PlateauMode::Max, .factor = 0.1,
                                     .patience = 0, .threshold = 0.5,
                                     .threshold_mode = optim::ThresholdMode::Absolute});
  optim::LinearWarmup w(t.opt, 2, p, {.start_factor = 0.5});
  CHECK(t.opt.lr(0) == doctest::Approx(0.05));
  w.step(100.0);  // warm-up: metric ignored
  CHECK(t.opt.lr(0) == doctest::Approx(0.075));
  w.step(100.0);  // end of warm-up: the plateau schedule starts from the base
  CHECK(t.opt.lr(0) == doctest::Approx(0.1));
  w.step(1.0);  // best = 1
  w.step(1.4);  // not above 1 + 0.5: bad, patience 0 -> reduce
  CHECK(t.opt.lr(0) == doctest::Approx(0.01));
  CHECK(t.opt.lr(1) == doctest::Approx(0.002));
  w.step(2.0);  // improves
  CHECK(t.opt.lr(0) == doctest::Approx(0.01));
}

TEST_CASE("schedules: bad options are DomainErrors; a destroyed optimiser is a GraphError") {
  TwoGroups t;
  CHECK_THROWS_AS(optim::StepLR(t.opt, {.step_size = 0}), DomainError);
  CHECK_THROWS_AS(optim::ExponentialLR(t.opt, {.gamma = NAN}), DomainError);
  CHECK_THROWS_AS(optim::CosineAnnealingLR(t.opt, {.T_max = 0}), DomainError);
  CHECK_THROWS_AS(optim::LinearWarmup(t.opt, 0), DomainError);
  CHECK_THROWS_AS(optim::LinearWarmup(t.opt, 3, {.start_factor = 0}), DomainError);
  CHECK_THROWS_AS(optim::ReduceLROnPlateau(t.opt, {.factor = 1.0}), DomainError);
  CHECK_THROWS_AS(optim::ReduceLROnPlateau(t.opt, {.patience = -1}), DomainError);
  TwoGroups other;
  optim::StepLR elsewhere(other.opt, {});
  CHECK_THROWS_WITH_AS(optim::LinearWarmup(t.opt, 3, elsewhere), doctest::Contains("same optimiser"),
                       DomainError);
  // None of the refused schedules stayed attached: the state has no schedule entries.
  for (const auto& [name, value] : t.opt.state_dict()) CHECK(name.find("schedule") == std::string::npos);
  CHECK(t.opt.lr(0) == 0.1);

  auto orphan = [] {
    Tensor p = param();
    auto opt = std::make_unique<optim::SGD>(std::vector<Tensor>{p});
    auto s = std::make_unique<optim::StepLR>(*opt, optim::StepLROptions{});
    opt.reset();
    return s;
  }();
  CHECK_THROWS_AS(orphan->step(), GraphError);
}
