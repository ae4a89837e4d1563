// Invalid hyperparameters are refused everywhere they can enter: at construction and through
// set_lr (DomainError), at step() and state_dict() when written through options(g) (so they
// cannot be saved), and at load (IoError, nothing changed), also through nn::save / nn::load.
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "../autodiff/helpers.hpp"
#include "../nn/temp_dir.hpp"
#include "state_helpers.hpp"

using namespace cholla;
using test::flat_values;
using test::with;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor param() { return Tensor::from({2}, {1.0, -2.0}).requires_grad(true); }

void one_step(optim::Optimizer& opt) {
  for (Tensor p : opt.parameters()) p.set_grad(Tensor::from({2}, {0.5, -1.0}));
  opt.step();
}

struct Net : nn::Module {
  nn::Linear a{2, 2};
  Net() { register_module("a", a); }
};

// Overwrites the scalar entry `name` of a checkpoint written by nn::save and re-seals the
// file: the layout (u32 name length, name, u32 rank, dims, f64 values) and the trailing FNV-1a
// 64 checksum are those documented in nn/checkpoint.hpp.
std::string patch_scalar(std::string bytes, const std::string& name, double value) {
  const std::size_t at = bytes.find(name);
  REQUIRE(at != std::string::npos);
  REQUIRE(bytes[at + name.size()] == 0);  // rank 0
  const auto bits = std::bit_cast<uint64_t>(value);
  for (int i = 0; i < 8; ++i)
    bytes[at + name.size() + 4 + static_cast<size_t>(i)] = static_cast<char>((bits >> (8 * i)) & 0xff);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i + 8 < bytes.size(); ++i)
    h = (h ^ static_cast<unsigned char>(bytes[i])) * 0x100000001b3ULL;
  for (int i = 0; i < 8; ++i)
    bytes[bytes.size() - 8 + static_cast<size_t>(i)] = static_cast<char>((h >> (8 * i)) & 0xff);
  return bytes;
}

}  // namespace

TEST_CASE("optimiser options: out-of-range or non-finite values are DomainErrors at construction") {
  Tensor p = param();
  for (double bad : {kNaN, -1.0, kInf}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(optim::SGD({p}, {.lr = bad}), doctest::Contains("lr"), DomainError);
    CHECK_THROWS_WITH_AS(optim::Adam({p}, {.lr = bad}), doctest::Contains("lr"), DomainError);
    CHECK_THROWS_WITH_AS(optim::SGD({p}, {.weight_decay = bad}),
                         doctest::Contains("weight_decay"), DomainError);
    CHECK_THROWS_WITH_AS(optim::AdamW({p}, {.weight_decay = bad}),
                         doctest::Contains("weight_decay"), DomainError);
    CHECK_THROWS_WITH_AS(optim::Adam({p}, {.eps = bad}), doctest::Contains("eps"), DomainError);
  }
  CHECK_THROWS_WITH_AS(optim::Adam({p}, {.eps = 0}), doctest::Contains("eps = 0"), DomainError);
  for (double bad : {kNaN, -0.1, 1.0, 1.5}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(optim::Adam({p}, {.beta1 = bad}), doctest::Contains("beta1"), DomainError);
    CHECK_THROWS_WITH_AS(optim::Adam({p}, {.beta2 = bad}), doctest::Contains("beta2"), DomainError);
    CHECK_THROWS_WITH_AS(optim::SGD({p}, {.momentum = bad}), doctest::Contains("momentum"),
                         DomainError);
  }
  CHECK_THROWS_WITH_AS(optim::SGD({p}, {.momentum = 0.5, .dampening = 1.5}),
                       doctest::Contains("dampening"), DomainError);
  // Group overrides are checked too, and the message says which group.
  CHECK_THROWS_WITH_AS(optim::SGD({{{p}, {}}, {{param()}, {.lr = NAN}}}),
                       doctest::Contains("group 1"), DomainError);
  // The edges of the ranges are accepted.
  CHECK_NOTHROW(optim::SGD({p}, {.lr = 0, .momentum = 0.999, .dampening = 1}));
  CHECK_NOTHROW(optim::Adam({p}, {.lr = 0, .beta1 = 0, .beta2 = 0, .eps = 1e-300}));
}

TEST_CASE("optimiser options: set_lr refuses bad values; bad options() writes cannot step or save") {
  Tensor p = param();
  optim::Adam opt({p}, {.lr = 0.1});
  one_step(opt);
  CHECK_THROWS_WITH_AS(opt.set_lr(0, NAN), doctest::Contains("lr = nan"), DomainError);
  CHECK_THROWS_AS(opt.set_lr(0, -1), DomainError);
  CHECK_THROWS_AS(opt.set_lr(1, 0.1), ShapeError);  // no group 1
  CHECK(opt.lr(0) == 0.1);
  opt.set_lr(0, 0.05);
  CHECK(opt.options().lr == 0.05);

  const auto before = p.to_vector();
  opt.options().beta1 = 1.0;
  CHECK_THROWS_WITH_AS(one_step(opt), doctest::Contains("beta1 = 1"), DomainError);
  CHECK(p.to_vector() == before);
  CHECK_THROWS_WITH_AS(opt.state_dict(), doctest::Contains("beta1"), DomainError);
  test::TempDir dir;
  Net net;
  optim::SGD sgd(net.parameters(), {.lr = 0.1});
  sgd.options().lr = NAN;
  CHECK_THROWS_AS(nn::save(net, sgd, dir.file("never.ckpt")), DomainError);
  CHECK_FALSE(std::filesystem::exists(dir.file("never.ckpt")));
  // A later fix through the same reference makes both work again.
  sgd.options().lr = 0.2;
  CHECK_NOTHROW(nn::save(net, sgd, dir.file("fixed.ckpt")));
}

TEST_CASE("optimiser state: bad hyperparameters or buffers are refused at load, nothing changes") {
  SUBCASE("adam") {
    Tensor p = param();
    optim::Adam opt({p}, {.lr = 0.1});
    one_step(opt);
    const auto good = opt.state_dict();
    Tensor q = param();
    optim::Adam target({q}, {.lr = 0.3, .beta1 = 0.5});
    one_step(target);
    const auto before = flat_values(target.state_dict());
    auto refuses = [&](const char* name, double value, const char* says) {
      CAPTURE(name);
      CAPTURE(value);
      const auto bad = with(good, name, Tensor::scalar(value));
      CHECK_THROWS_WITH_AS(target.load_state_dict(bad), doctest::Contains(says), IoError);
      CHECK(flat_values(target.state_dict()) == before);
    };
    refuses("adam.group0.lr", NAN, "lr = nan");
    refuses("adam.group0.lr", -1e-3, "lr = -0.001");
    refuses("adam.group0.lr", kInf, "lr = inf");
    refuses("adam.group0.beta1", 1.0, "beta1 = 1");
    refuses("adam.group0.beta2", 1.5, "beta2 = 1.5");
    refuses("adam.group0.beta2", NAN, "beta2 = nan");
    refuses("adam.group0.eps", 0, "eps = 0");
    refuses("adam.group0.eps", -1e-8, "eps");
    refuses("adam.group0.weight_decay", kInf, "weight_decay = inf");
    auto bad = with(good, "adam.group0.param0.exp_avg", Tensor::from({2}, {0.1, NAN}));
    CHECK_THROWS_WITH_AS(target.load_state_dict(bad),
                         doctest::Contains("'adam.group0.param0.exp_avg' has 1 NaN or infinite"),
                         IoError);
    bad = with(good, "adam.group0.param0.exp_avg_sq", Tensor::from({2}, {0.1, -0.5}));
    CHECK_THROWS_WITH_AS(target.load_state_dict(bad), doctest::Contains("holds -0.5; it must be >= 0"),
                         IoError);
    CHECK(flat_values(target.state_dict()) == before);
    // The good state itself loads.
    target.load_state_dict(good);
    CHECK(target.options().lr == 0.1);
  }
  SUBCASE("sgd") {
    Tensor p = param();
    optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    one_step(opt);
    const auto good = opt.state_dict();
    Tensor q = param();
    optim::SGD target({q}, {.lr = 0.3});
    const auto before = flat_values(target.state_dict());
    auto refuses = [&](const char* name, double value, const char* says) {
      CAPTURE(name);
      CAPTURE(value);
      CHECK_THROWS_WITH_AS(target.load_state_dict(with(good, name, Tensor::scalar(value))),
                           doctest::Contains(says), IoError);
      CHECK(flat_values(target.state_dict()) == before);
    };
    refuses("sgd.group0.lr", NAN, "lr = nan");
    refuses("sgd.group0.momentum", 1.0, "momentum = 1");
    refuses("sgd.group0.momentum", -0.5, "momentum = -0.5");
    refuses("sgd.group0.dampening", 2, "dampening = 2");
    refuses("sgd.group0.nesterov", 0.5, "nesterov = 0.5");
    refuses("sgd.group0.momentum", 0, "nesterov needs momentum > 0");
    refuses("sgd.group0.weight_decay", NAN, "weight_decay = nan");
    CHECK_THROWS_WITH_AS(
        target.load_state_dict(with(good, "sgd.group0.param0.momentum_buffer",
                                    Tensor::from({2}, {kInf, -kInf}))),
        doctest::Contains("has 2 NaN or infinite"), IoError);
  }
}

TEST_CASE("optimiser state: nn::load refuses a checkpoint with bad hyperparameters, all unchanged") {
  test::TempDir dir;
  Net net, target;
  optim::Adam opt(net.parameters(), {.lr = 0.1});
  for (Tensor p : net.parameters()) p.set_grad(Tensor::ones(p.shape()));
  opt.step();
  const std::string path = dir.file("good.ckpt");
  nn::save(net, opt, path);
  const std::string good = dir.read("good.ckpt");
  optim::Adam target_opt(target.parameters(), {.lr = 0.02});
  const auto params_before = flat_values(target.parameters());
  const auto state_before = flat_values(target_opt.state_dict());
  for (const auto& c : {std::tuple{"optimizer.adam.group0.lr", kNaN, "lr = nan"},
                        std::tuple{"optimizer.adam.group0.beta1", 1.0, "beta1 = 1"},
                        std::tuple{"optimizer.adam.group0.eps", -1.0, "eps = -1"}}) {
    const auto& [name_, value, says] = c;
    const char* name = name_;  // named, not bound: clang 14 lambdas cannot capture bindings
    CAPTURE(name);
    const std::string bad = dir.write("bad.ckpt", patch_scalar(good, name, value));
    CHECK_THROWS_WITH_AS(nn::load(target, target_opt, bad), doctest::Contains(says), IoError);
    CHECK(flat_values(target.parameters()) == params_before);
    CHECK(flat_values(target_opt.state_dict()) == state_before);
    // The module alone does not read optimiser state: it loads.
    Net alone;
    CHECK_NOTHROW(nn::load(alone, bad));
  }
  // The patch itself is sound: the same bytes with a valid value load.
  const std::string fine = dir.write("fine.ckpt", patch_scalar(good, "optimizer.adam.group0.lr", 0.25));
  nn::load(target, target_opt, fine);
  CHECK(target_opt.options().lr == 0.25);
}
