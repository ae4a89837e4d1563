// nn::save / nn::load: bit-exact round trips, optimiser state, and every kind of bad file
// rejected with an IoError that says which, leaving the module (and optimiser) untouched.
#include <cstring>
#include <filesystem>

#include "../autodiff/helpers.hpp"
#include "temp_dir.hpp"

using namespace cholla;
using test::TempDir;

namespace {

struct Net : nn::Module {
  nn::Linear a, b;
  explicit Net(uint64_t seed) : a(3, 4, rng(seed)), b(4, 2, rng(seed + 1)) {
    register_module("a", a);
    register_module("b", b);
  }
  static Rng& rng(uint64_t seed) {
    thread_local Rng r;
    r = Rng(seed);
    return r;
  }
};

std::vector<std::vector<double>> snapshot(const nn::Module& m) {
  std::vector<std::vector<double>> out;
  for (const Tensor& p : m.parameters()) out.push_back(p.to_vector());
  return out;
}

// Bitwise comparison: == on doubles would accept -0.0 for 0.0 and reject NaN for NaN.
bool bit_equal(const std::vector<std::vector<double>>& x, const std::vector<std::vector<double>>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].size() != y[i].size() ||
        std::memcmp(x[i].data(), y[i].data(), x[i].size() * sizeof(double)) != 0)
      return false;
  return true;
}

void train_a_bit(Net& net, optim::Optimizer& opt) {
  Tensor x = test::uniform({5, 3}, -1, 1, 4);
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    sum(square(net.b(tanh(net.a(x))))).backward();
    opt.step();
  }
}

}  // namespace

TEST_CASE("checkpoint: round trip is bit-exact, including awkward values") {
  TempDir dir;
  Net saved(1), loaded(2);
  {
    NoGrad guard;
    auto w = saved.a.weight.mutable_data();
    w[0] = -0.0;
    w[1] = 1e-310;  // subnormal
    w[2] = std::nextafter(1.0, 2.0);
    w[3] = -1.2345678901234567e300;
  }
  REQUIRE_FALSE(bit_equal(snapshot(saved), snapshot(loaded)));
  const std::string path = dir.file("net.ckpt");
  nn::save(saved, path);
  nn::load(loaded, path);
  CHECK(bit_equal(snapshot(saved), snapshot(loaded)));
  // Saving again over the file replaces it and leaves no temporary behind.
  nn::save(loaded, path);
  int files = 0;
  for (auto& entry : std::filesystem::directory_iterator(dir.file(""))) files += 1, (void)entry;
  CHECK(files == 1);
}

TEST_CASE("checkpoint: optimiser state round trip continues training identically") {
  TempDir dir;
  Net net(1), twin(5);
  optim::Adam opt(net.parameters(), {.lr = 0.05});
  optim::Adam twin_opt(twin.parameters(), {.lr = 0.5});
  train_a_bit(net, opt);
  const std::string path = dir.file("with_opt.ckpt");
  nn::save(net, opt, path);
  nn::load(twin, twin_opt, path);
  CHECK(twin_opt.options().lr == 0.05);
  train_a_bit(net, opt);
  train_a_bit(twin, twin_opt);
  CHECK(bit_equal(snapshot(net), snapshot(twin)));

  // The module alone loads from a file with optimiser state; an optimiser needs its state.
  Net plain(9);
  nn::load(plain, path);
  nn::save(net, dir.file("no_opt.ckpt"));
  CHECK_THROWS_WITH_AS(nn::load(twin, twin_opt, dir.file("no_opt.ckpt")),
                       doctest::Contains("no optimiser state"), IoError);
  // State of another kind of optimiser is refused before anything changes.
  optim::SGD sgd(twin.parameters(), {.lr = 0.1, .momentum = 0.9});
  const auto before = snapshot(twin);
  CHECK_THROWS_WITH_AS(nn::load(twin, sgd, path), doctest::Contains("sgd.group0"), IoError);
  CHECK(bit_equal(before, snapshot(twin)));
  CHECK(sgd.options().lr == 0.1);
}

TEST_CASE("checkpoint: every bad file is an IoError saying which, module unchanged") {
  TempDir dir;
  Net source(1);
  nn::save(source, dir.file("good.ckpt"));
  const std::string good = dir.read("good.ckpt");
  Net target(2);
  const auto before = snapshot(target);
  auto rejects = [&](const std::string& bytes, const char* says) {
    CAPTURE(says);
    const std::string path = dir.write("bad.ckpt", bytes);
    CHECK_THROWS_WITH_AS(nn::load(target, path), doctest::Contains(says), IoError);
    CHECK(bit_equal(before, snapshot(target)));
  };

  SUBCASE("missing file") {
    CHECK_THROWS_WITH_AS(nn::load(target, dir.file("nope.ckpt")), doctest::Contains("cannot open"),
                         IoError);
    CHECK(bit_equal(before, snapshot(target)));
  }
  SUBCASE("empty and truncated at several points") {
    rejects("", "truncated");
    for (size_t n : {size_t{4}, size_t{8}, size_t{20}, size_t{40}, good.size() / 2,
                     good.size() - 9, good.size() - 1})
      rejects(good.substr(0, n), "truncated");
  }
  SUBCASE("wrong magic") {
    std::string bad = good;
    bad[0] = 'X';
    rejects(bad, "wrong magic");
    rejects("hello, this is not a checkpoint at all, just text", "wrong magic");
  }
  SUBCASE("wrong version") {
    std::string bad = good;
    bad[8] = 7;
    rejects(bad, "version 7");
  }
  SUBCASE("trailing garbage") { rejects(good + "x", "corrupted"); }
  SUBCASE("every single flipped byte") {
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ 0x10);
      const std::string path = dir.write("bad.ckpt", bad);
      CHECK_THROWS_AS(nn::load(target, path), IoError);
    }
    CHECK(bit_equal(before, snapshot(target)));
    // Past the header a flip is caught by the checksum.
    std::string bad = good;
    bad[good.size() / 2] ^= 1;
    rejects(bad, "checksum");
  }
  SUBCASE("wrong shape, missing and extra parameters") {
    struct Wide : nn::Module {
      nn::Linear a{3, 5}, b{5, 2};
      Wide() {
        register_module("a", a);
        register_module("b", b);
      }
    } wide;
    nn::save(wide, dir.file("wide.ckpt"));
    rejects(dir.read("wide.ckpt"), "has shape [5, 3] in the file but [4, 3]");
    struct Half : nn::Module {
      nn::Linear a{3, 4};
      Half() { register_module("a", a); }
    } half;
    nn::save(half, dir.file("half.ckpt"));
    rejects(dir.read("half.ckpt"), "no parameter 'b.weight'");
    struct More : nn::Module {
      nn::Linear a{3, 4}, b{4, 2}, c{2, 2};
      More() {
        register_module("a", a);
        register_module("b", b);
        register_module("c", c);
      }
    } more;
    nn::save(more, dir.file("more.ckpt"));
    rejects(dir.read("more.ckpt"), "'c.bias', which the module does not have");
  }
}

TEST_CASE("checkpoint: an unwritable destination is an IoError and no file appears") {
  TempDir dir;
  Net net(1);
  CHECK_THROWS_WITH_AS(nn::save(net, dir.file("no/such/dir/net.ckpt")),
                       doctest::Contains("temporary file"), IoError);
}
