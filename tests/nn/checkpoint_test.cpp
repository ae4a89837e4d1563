// nn::save / nn::load: bit-exact round trips, optimiser state, and every kind of bad file
// rejected with an IoError that says which, leaving the module (and optimiser) untouched.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <thread>

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

namespace {

// A checkpoint built byte by byte from the format in nn/checkpoint.hpp, with a correct size
// field and checksum, so the tests can present entries no honest nn::save would write.
struct ForgedEntry {
  std::string name;
  std::vector<uint64_t> dims;
  std::vector<double> values;
};

void put(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string forge(const std::vector<ForgedEntry>& entries) {
  std::string out = "CHOLLACK";
  put(out, nn::kCheckpointVersion, 4);
  put(out, 0, 4);
  put(out, 0, 8);  // size, patched below
  put(out, entries.size(), 8);
  for (const auto& e : entries) {
    put(out, e.name.size(), 4);
    out += e.name;
    put(out, e.dims.size(), 4);
    for (uint64_t d : e.dims) put(out, d, 8);
    for (double v : e.values) put(out, std::bit_cast<uint64_t>(v), 8);
  }
  std::string size;
  put(size, out.size() + 8, 8);
  out.replace(16, 8, size);
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : out) h = (h ^ c) * 0x100000001b3ULL;
  put(out, h, 8);
  return out;
}

struct Tiny : nn::Module {
  nn::Linear a{2, 1};
  Tiny() { register_module("a", a); }
};

std::vector<ForgedEntry> tiny_entries() {
  return {{"module.a.weight", {1, 2}, {0.5, -0.25}}, {"module.a.bias", {1}, {2.0}}};
}

int count_files(const std::string& dir) {
  int n = 0;
  for (auto& entry : std::filesystem::directory_iterator(dir)) n += 1, (void)entry;
  return n;
}

}  // namespace

TEST_CASE("checkpoint: the forged-file helper agrees with nn::save and nn::load") {
  TempDir dir;
  Tiny tiny;
  nn::load(tiny, dir.write("forged.ckpt", forge(tiny_entries())));
  CHECK(tiny.a.weight.to_vector() == std::vector<double>{0.5, -0.25});
  CHECK(tiny.a.bias.to_vector() == std::vector<double>{2.0});
}

TEST_CASE("checkpoint: a directory, a device or a pipe is a prompt IoError") {
  TempDir dir;
  Tiny tiny;
  const auto before = snapshot(tiny);
  CHECK_THROWS_WITH_AS(nn::load(tiny, dir.file("")), doctest::Contains("is a directory"), IoError);
  CHECK_THROWS_WITH_AS(nn::load(tiny, "/dev/zero"),
                       doctest::Contains("'/dev/zero' is a device, pipe or socket, not a regular file"),
                       IoError);
  // A FIFO with no writer: opening it must not block.
  const std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(nn::load(tiny, fifo), doctest::Contains("not a regular file"), IoError);
  CHECK(bit_equal(before, snapshot(tiny)));
}

TEST_CASE("checkpoint: a header announcing another size is refused before the data is read") {
  TempDir dir;
  Tiny tiny;
  std::string bytes = forge(tiny_entries());
  // Announce 2^62 bytes: must say so, not try to allocate them.
  std::string huge;
  put(huge, uint64_t{1} << 62, 8);
  bytes.replace(16, 8, huge);
  CHECK_THROWS_WITH_AS(nn::load(tiny, dir.write("huge.ckpt", bytes)),
                       doctest::Contains("the header announces 4611686018427387904"), IoError);
}

TEST_CASE("checkpoint: negative, overflowing or duplicate entries are an IoError, module unchanged") {
  TempDir dir;
  Tiny tiny;
  const auto before = snapshot(tiny);
  auto rejects = [&](std::vector<ForgedEntry> entries, const char* says) {
    CAPTURE(says);
    const std::string path = dir.write("bad.ckpt", forge(entries));
    CHECK_THROWS_WITH_AS(nn::load(tiny, path), doctest::Contains(says), IoError);
    CHECK(bit_equal(before, snapshot(tiny)));
  };
  auto with_weight_dims = [](std::vector<uint64_t> dims) {
    auto entries = tiny_entries();
    entries[0].dims = std::move(dims);
    return entries;
  };
  rejects(with_weight_dims({static_cast<uint64_t>(-1), static_cast<uint64_t>(-2)}),
          "entry 'module.a.weight' has dimension -1 (negative)");
  rejects(with_weight_dims({1, static_cast<uint64_t>(-2)}), "has dimension -2 (negative)");
  // Negative behind a zero: the product is 0 but the shape is still invalid.
  rejects(with_weight_dims({0, static_cast<uint64_t>(-2)}), "has dimension -2 (negative)");
  // Shapes whose product overflows 64 bits, with and without a zero dimension: the running
  // product is bounded by what the file can hold (a few values here), so it never overflows.
  rejects(with_weight_dims({uint64_t{1} << 32, uint64_t{1} << 32}),
          "declares dimension 4294967296 at position 0, more values than the file holds");
  rejects(with_weight_dims({0, uint64_t{1} << 40, uint64_t{1} << 40}),
          "declares dimension 1099511627776 at position 1");
  rejects(with_weight_dims({2, 1000}), "declares dimension 1000 at position 1");
  // Plausible alone, but more than the file holds.
  rejects(with_weight_dims({3, 2}), "runs past the end");
  auto twice = tiny_entries();
  twice.push_back(twice[1]);
  rejects(twice, "entry 'module.a.bias' appears twice");
  // A name of 10,000 bytes is quoted by its first characters, not echoed.
  auto long_name = tiny_entries();
  long_name.push_back({"module." + std::string(10000, 'x'), {1}, {1.0}});
  const std::string path = dir.write("long.ckpt", forge(long_name));
  try {
    nn::load(tiny, path);
    FAIL("no IoError");
  } catch (const IoError& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(what.find("holds parameter 'xxxxxxxx") != std::string::npos);
    CHECK(what.find("...' (10000 bytes), which the module does not have") != std::string::npos);
    CHECK(what.size() < 300);
  }
  CHECK(bit_equal(before, snapshot(tiny)));
}

TEST_CASE("checkpoint: a stale temporary file from a killed save is reused, not multiplied") {
  TempDir dir;
  Net net(1), twin(2);
  const std::string path = dir.file("net.ckpt");
  // What a save killed between creating and renaming its temporary file leaves behind.
  dir.write("net.ckpt.tmp", std::string(100000, 'z'));
  nn::save(net, path);
  CHECK(count_files(dir.file("")) == 1);
  nn::load(twin, path);
  CHECK(bit_equal(snapshot(net), snapshot(twin)));
}

TEST_CASE("checkpoint: saves killed at random moments leave the old or new file and one temporary") {
  TempDir dir;
  struct Big : nn::Module {
    nn::Linear a{300, 300};
    Big() { register_module("a", a); }
  } big;
  const std::string path = dir.file("big.ckpt");
  nn::save(big, path);
  Rng rng(7);
  for (int kill = 0; kill < 25; ++kill) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      for (;;) nn::save(big, path);  // until killed
    }
    ::usleep(static_cast<useconds_t>(200 + rng.below(5000)));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    int files = 0;
    for (auto& entry : std::filesystem::directory_iterator(dir.file(""))) {
      const std::string name = entry.path().filename().string();
      CHECK_MESSAGE((name == "big.ckpt" || name == "big.ckpt.tmp"), name);
      files += 1;
    }
    CHECK(files <= 2);
    nn::load(big, path);  // never a mix: the complete old or new file
  }
  nn::save(big, path);
  CHECK(count_files(dir.file("")) == 1);
}

TEST_CASE("checkpoint: concurrent saves of one path take turns") {
  TempDir dir;
  Net first(1), second(2), loaded(3);
  const std::string path = dir.file("net.ckpt");
  auto saver = [&](const Net& net) {
    for (int i = 0; i < 30; ++i) nn::save(net, path);
  };
  std::thread a(saver, std::cref(first)), b(saver, std::cref(second));
  a.join();
  b.join();
  nn::load(loaded, path);
  CHECK((bit_equal(snapshot(first), snapshot(loaded)) || bit_equal(snapshot(second), snapshot(loaded))));
  CHECK(count_files(dir.file("")) == 1);
}
