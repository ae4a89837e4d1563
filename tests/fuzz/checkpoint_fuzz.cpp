// libFuzzer target for nn::load. The first byte picks the optimiser whose state is loaded too
// (none, Adam, SGD with momentum, AdamW) and whether the harness first repairs the size field
// and checksum: random bytes almost never carry a right checksum, and without the repair the
// fuzzer would never get past it to the entries. Every input must load or raise IoError (any
// other exception, a crash or a sanitizer report is a finding); a refused load must leave the
// module and the optimiser bit for bit as they were.
#include <cholla.hpp>

#include <cstring>
#include <memory>

#include "fuzz_file.hpp"

using namespace cholla;

namespace {

struct Tiny : nn::Module {
  nn::Linear a, b;
  explicit Tiny(Rng&& rng) : a(2, 2, rng), b(2, 1, rng) {
    register_module("a", a);
    register_module("b", b);
  }
};

std::unique_ptr<optim::Optimizer> optimizer(int kind, const Tiny& net) {
  switch (kind) {
    case 1: return std::make_unique<optim::Adam>(net.parameters(), optim::AdamOptions{.lr = 0.01});
    case 2: return std::make_unique<optim::SGD>(net.parameters(), optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
    case 3: return std::make_unique<optim::AdamW>(net.parameters());
    default: return nullptr;
  }
}

// Every value the load could change, as raw bytes (NaN == NaN, -0 != 0).
std::string snapshot(const Tiny& net, const optim::Optimizer* opt) {
  std::string out;
  auto add = [&](const Tensor& t) {
    out.append(reinterpret_cast<const char*>(t.data().data()), t.data().size() * sizeof(double));
  };
  for (const Tensor& p : net.parameters()) add(p);
  if (opt != nullptr)
    for (const auto& [name, t] : opt->state_dict()) out += name, add(t);
  return out;
}

// Size field and FNV-1a checksum as nn::save writes them (format in nn/checkpoint.hpp).
void repair(std::string& bytes) {
  if (bytes.size() < 40) return;
  const uint64_t size = bytes.size();
  for (int i = 0; i < 8; ++i) bytes[16 + static_cast<size_t>(i)] = static_cast<char>(size >> (8 * i));
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i + 8 < bytes.size(); ++i)
    h = (h ^ static_cast<unsigned char>(bytes[i])) * 0x100000001b3ULL;
  for (int i = 0; i < 8; ++i) bytes[size - 8 + static_cast<size_t>(i)] = static_cast<char>(h >> (8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) repair(bytes);
  static fuzz::MemoryFile file;
  const std::string path = file.hold(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());

  Tiny net(Rng(1));
  const auto opt = optimizer((data[0] >> 1) & 3, net);
  const std::string before = snapshot(net, opt.get());
  try {
    if (opt) nn::load(net, *opt, path);
    else nn::load(net, path);
  } catch (const IoError&) {
    if (snapshot(net, opt.get()) != before) fuzz::finding("a refused load changed the module or optimiser");
    return 0;
  }
  // Loaded: the model and optimiser must still work together.
  if (opt) {
    for (Tensor p : net.parameters()) p.set_grad(Tensor::ones(p.shape()));
    try {
      opt->step();
    } catch (const Error&) {
      // A typed refusal (e.g. of non-finite values) is fine; a crash is not.
    }
  }
  return 0;
}
