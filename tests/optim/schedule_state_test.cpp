// Schedules save and restore with their optimiser (state_dict, nn::save / nn::load): resuming
// continues the same learning rates and parameters bit for bit; bad or missing schedule state
// is an IoError that changes nothing.
#include <cmath>

#include "../autodiff/helpers.hpp"
#include "../nn/temp_dir.hpp"
#include "state_helpers.hpp"

using namespace cholla;
using test::bit_equal;
using test::flat_values;
using test::with;

namespace {

struct Net : nn::Module {
  nn::Linear a, b;
  explicit Net(uint64_t seed) : a(2, 3, rng(seed)), b(3, 1, rng(seed + 1)) {
    register_module("a", a);
    register_module("b", b);
  }
  static Rng& rng(uint64_t seed) {
    thread_local Rng r;
    r = Rng(seed);
    return r;
  }
};

// A model, its optimiser (two groups) and a warm-up in front of a cosine schedule.
struct Run {
  Net net;
  optim::Adam opt;
  optim::CosineAnnealingLR cosine;
  optim::LinearWarmup warmup;
  explicit Run(uint64_t seed)
      : net(seed),
        opt({{net.a.parameters(), {.lr = 0.05}}, {net.b.parameters(), {.lr = 0.01}}}),
        cosine(opt, {.T_max = 8, .eta_min = 1e-4}),
        warmup(opt, 3, cosine) {}
  void epochs(int n) {
    const Tensor x = test::uniform({6, 2}, -1, 1, 3);
    for (int e = 0; e < n; ++e) {
      opt.zero_grad();
      sum(square(net.b(tanh(net.a(x))))).backward();
      opt.step();
      warmup.step();
    }
  }
};

}  // namespace

TEST_CASE("schedule state: nn::save / nn::load resume the same learning rates and parameters") {
  test::TempDir dir;
  Run first(1), second(7);
  first.epochs(5);
  nn::save(first.net, first.opt, dir.file("run.ckpt"));
  nn::load(second.net, second.opt, dir.file("run.ckpt"));
  CHECK(second.warmup.epoch() == 5);
  CHECK(second.cosine.epoch() == 2);
  CHECK(bit_equal(second.warmup.lrs(), first.warmup.lrs()));
  first.epochs(6);
  second.epochs(6);
  CHECK(bit_equal(second.warmup.lrs(), first.warmup.lrs()));
  CHECK(bit_equal(flat_values(second.net.parameters()), flat_values(first.net.parameters())));
  // The cosine's bottom is reached at its epoch 8, i.e. epoch 11 of the run.
  CHECK(first.opt.lr(0) == doctest::Approx(1e-4));

  std::vector<std::string> names;
  for (const auto& [name, t] : first.opt.state_dict())
    if (name.find("schedule") != std::string::npos) names.push_back(name);
  CHECK(names == std::vector<std::string>{
                     "adam.schedule0.cosine_annealing_lr.epoch",
                     "adam.schedule0.cosine_annealing_lr.base_lrs",
                     "adam.schedule0.cosine_annealing_lr.T_max",
                     "adam.schedule0.cosine_annealing_lr.eta_min",
                     "adam.schedule1.linear_warmup.epoch", "adam.schedule1.linear_warmup.base_lrs",
                     "adam.schedule1.linear_warmup.steps",
                     "adam.schedule1.linear_warmup.start_factor"});
}

TEST_CASE("schedule state: missing, extra or bad schedule entries are IoErrors, nothing changed") {
  Run source(1), target(2);
  source.epochs(4);
  target.epochs(1);
  const auto good = source.opt.state_dict();
  const auto before = flat_values(target.opt.state_dict());
  auto refuses = [&](const optim::NamedTensors& bad, const char* says) {
    CAPTURE(says);
    CHECK_THROWS_WITH_AS(target.opt.load_state_dict(bad), doctest::Contains(says), IoError);
    CHECK(bit_equal(flat_values(target.opt.state_dict()), before));
  };
  const std::string cos = "adam.schedule0.cosine_annealing_lr.";
  const std::string warm = "adam.schedule1.linear_warmup.";
  refuses(with(good, cos + "epoch", Tensor::scalar(-1)), "epoch = -1");
  refuses(with(good, cos + "T_max", Tensor::scalar(0)), "T_max = 0");
  refuses(with(good, cos + "eta_min", Tensor::scalar(NAN)), "eta_min = nan");
  refuses(with(good, cos + "base_lrs", Tensor::from({2}, {0.1, INFINITY})), "base_lrs holds inf");
  refuses(with(good, cos + "base_lrs", Tensor::from({3}, {0.1, 0.1, 0.1})), "has shape [3]");
  refuses(with(good, warm + "start_factor", Tensor::scalar(2)), "start_factor = 2");
  refuses(with(good, warm + "steps", Tensor::scalar(1.5)), "steps = 1.5");

  // A file from a run without schedules, and the other way round.
  Net plain_net(3);
  optim::Adam plain({{plain_net.a.parameters(), {}}, {plain_net.b.parameters(), {}}});
  refuses(plain.state_dict(), "lacks entry 'adam.schedule0.cosine_annealing_lr.epoch'");
  CHECK_THROWS_WITH_AS(plain.load_state_dict(good), doctest::Contains("unexpected entry"), IoError);
}

TEST_CASE("schedule state: ReduceLROnPlateau's best and counters round-trip") {
  Tensor a = Tensor::from({1}, {1.0}).requires_grad(true), b = Tensor::from({1}, {1.0}).requires_grad(true);
  optim::SGD opt_a({a}, {.lr = 0.1}), opt_b({b}, {.lr = 0.1});
  optim::ReduceLROnPlateau pa(opt_a, {.patience = 1}), pb(opt_b, {.patience = 3, .cooldown = 2});
  for (double m : {5.0, 4.0, 4.0}) pa.step(m);
  opt_b.load_state_dict(opt_a.state_dict());
  CHECK(pb.best() == 4.0);
  CHECK(pb.bad_epochs() == 1);
  CHECK(pb.epoch() == 3);
  for (double m : {4.0, 3.0, 3.5, 3.5}) pa.step(m), pb.step(m);
  CHECK(bit_equal(pa.lrs(), pb.lrs()));
  CHECK(pa.lrs()[0] == doctest::Approx(0.001));  // reduced twice (patience 1 came with the state)
  auto bad = with(opt_a.state_dict(), "sgd.schedule0.reduce_lr_on_plateau.best", Tensor::scalar(NAN));
  CHECK_THROWS_WITH_AS(opt_b.load_state_dict(bad), doctest::Contains("best = nan"), IoError);
  bad = with(opt_a.state_dict(), "sgd.schedule0.reduce_lr_on_plateau.factor", Tensor::scalar(1));
  CHECK_THROWS_WITH_AS(opt_b.load_state_dict(bad), doctest::Contains("factor = 1"), IoError);
}
