#include "nn/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <fmt/core.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"

namespace cholla::nn {
namespace {

constexpr char kMagic[8] = {'C', 'H', 'O', 'L', 'L', 'A', 'C', 'K'};
constexpr size_t kHeader = 32, kChecksum = 8;
constexpr const char* kModule = "module.";
constexpr const char* kOptimizer = "optimizer.";

uint64_t fnv1a(const char* data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001b3ULL;
  return h;
}

// Little-endian encoding by shifts, so the format does not depend on the host.
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t get_u(const std::string& in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + static_cast<size_t>(i)])) << (8 * i);
  return v;
}

using Entries = std::vector<std::pair<std::string, Tensor>>;

std::string encode(const Entries& entries) {
  std::string out(kMagic, sizeof kMagic);
  put_u32(out, kCheckpointVersion);
  put_u32(out, 0);
  put_u64(out, 0);  // file size, patched below
  put_u64(out, entries.size());
  for (const auto& [name, t] : entries) {
    put_u32(out, static_cast<uint32_t>(name.size()));
    out += name;
    put_u32(out, static_cast<uint32_t>(t.dim()));
    for (int64_t d : t.shape()) put_u64(out, static_cast<uint64_t>(d));
    for (double v : t.data()) put_u64(out, std::bit_cast<uint64_t>(v));
  }
  const uint64_t size = out.size() + kChecksum;
  for (int i = 0; i < 8; ++i) out[16 + static_cast<size_t>(i)] = static_cast<char>((size >> (8 * i)) & 0xff);
  put_u64(out, fnv1a(out.data(), out.size()));
  return out;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("load", fmt::format("{}: {}", path, what));
}

// Parses and verifies a whole file; every failure names what is wrong with it.
Entries decode(const std::string& path, const std::string& in) {
  const size_t n = in.size();
  if (n < sizeof kMagic && std::memcmp(in.data(), kMagic, n) == 0)
    fail(path, fmt::format("truncated: {} bytes, shorter than the header.", n));
  if (n < sizeof kMagic || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0)
    fail(path, "not a cholla checkpoint (wrong magic number). Pass a file written by nn::save.");
  if (n < kHeader + kChecksum)
    fail(path, fmt::format("truncated: {} bytes, shorter than the header.", n));
  const auto version = static_cast<uint32_t>(get_u(in, 8, 4));
  if (version != kCheckpointVersion)
    fail(path, fmt::format("unsupported format version {}; this build reads version {}.",
                           version, kCheckpointVersion));
  const uint64_t declared = get_u(in, 16, 8);
  if (declared > n)
    fail(path, fmt::format("truncated: {} bytes, the header announces {}. The file was not "
                           "completely written or copied.",
                           n, declared));
  if (declared < n)
    fail(path, fmt::format("corrupted: {} bytes, the header announces {}.", n, declared));
  if (get_u(in, n - kChecksum, 8) != fnv1a(in.data(), n - kChecksum))
    fail(path, "corrupted: checksum mismatch. Restore the file from a backup or save again.");

  // The checksum matched, so a malformed entry means a writer bug; still never read past the end.
  size_t at = kHeader;
  const size_t end = n - kChecksum;
  auto need = [&](uint64_t bytes) {
    if (bytes > end - at) fail(path, "corrupted: an entry runs past the end of the data.");
  };
  const uint64_t count = get_u(in, 24, 8);
  Entries out;
  for (uint64_t e = 0; e < count; ++e) {
    need(4);
    const uint64_t len = get_u(in, at, 4);
    at += 4;
    need(len);
    std::string name = in.substr(at, len);
    at += len;
    need(4);
    const uint64_t rank = get_u(in, at, 4);
    at += 4;
    need(rank * 8);
    Shape shape;
    uint64_t count_values = 1;
    for (uint64_t d = 0; d < rank; ++d, at += 8) {
      const uint64_t dim = get_u(in, at, 8);
      // Bound the running product by what the file could hold, so it cannot overflow.
      if (dim != 0 && count_values > ((end - kHeader) / 8) / dim)
        fail(path, "corrupted: implausible shape in entry " + name);
      shape.push_back(static_cast<int64_t>(dim));
      count_values *= dim;
    }
    if (count_values > (end - at) / 8) fail(path, "corrupted: entry " + name + " runs past the end.");
    std::vector<double> values(count_values);
    for (auto& v : values) v = std::bit_cast<double>(get_u(in, at, 8)), at += 8;
    out.emplace_back(std::move(name), Tensor::from(shape, std::move(values)));
  }
  if (at != end) fail(path, "corrupted: bytes left over after the last entry.");
  return out;
}

std::string errno_text() { return std::strerror(errno); }

void write_atomically(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    throw IoError("save", fmt::format("cannot create a temporary file next to '{}': {}. Check "
                                      "that the directory exists and is writable.",
                                      path, errno_text()));
  auto abandon = [&](const std::string& what) {
    const std::string reason = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    throw IoError("save", fmt::format("{} '{}': {}. '{}' was left unchanged.", what, tmp, reason,
                                      path));
  };
  ::fchmod(fd, 0644);  // mkstemp creates 0600; a checkpoint is an ordinary data file
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) abandon("cannot write");
    done += static_cast<size_t>(w);
  }
  // Data on disk before the rename makes it visible: otherwise a crash could leave `path`
  // naming a file whose blocks were never written.
  if (::fsync(fd) != 0) abandon("cannot flush");
  if (::close(fd) != 0) {
    const std::string reason = errno_text();
    ::unlink(tmp.c_str());
    throw IoError("save", fmt::format("cannot close '{}': {}.", tmp, reason));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = errno_text();
    ::unlink(tmp.c_str());
    throw IoError("save", fmt::format("cannot rename '{}' to '{}': {}.", tmp, path, reason));
  }
  // Persist the rename itself (best effort: some file systems refuse fsync on directories).
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

Entries module_entries(const Module& module) {
  Entries out;
  for (auto& [name, t] : module.named_parameters()) out.emplace_back(kModule + name, t);
  return out;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, fmt::format("cannot open: {}. Check the path.", errno_text()));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(path, "read error.");
  return bytes;
}

void do_load(Module& module, optim::Optimizer* optimizer, const std::string& path) {
  const Entries entries = decode(path, read_all(path));
  std::map<std::string, Tensor> saved;
  optim::NamedTensors opt_state;
  for (const auto& [name, t] : entries) {
    if (name.starts_with(kModule)) saved.emplace(name.substr(std::strlen(kModule)), t);
    if (name.starts_with(kOptimizer))
      opt_state.emplace_back(name.substr(std::strlen(kOptimizer)), t);
  }
  // Validate everything first: a partial load would leave a model no one ever trained.
  const auto params = module.named_parameters();
  for (const auto& [name, p] : params) {
    const auto it = saved.find(name);
    if (it == saved.end())
      fail(path, fmt::format("has no parameter '{}' (the module does not match the file).", name));
    if (it->second.shape() != p.shape())
      fail(path, fmt::format("parameter '{}' has shape {} in the file but {} in the module.",
                             name, format_shape(it->second.shape()), format_shape(p.shape())));
  }
  if (saved.size() != params.size())
    for (const auto& [name, t] : saved) {
      bool known = false;
      for (const auto& p : params) known = known || p.first == name;
      if (!known)
        fail(path, fmt::format("holds parameter '{}', which the module does not have.", name));
    }
  if (optimizer != nullptr) {
    if (opt_state.empty())
      fail(path, "holds no optimiser state. Save with nn::save(module, optimizer, path).");
    try {
      optimizer->check_state_dict(opt_state);
    } catch (const IoError& e) {
      fail(path, e.what());
    }
  }
  NoGrad guard;
  for (auto& [name, p] : params) {
    Tensor target = p;
    const auto src = saved.at(name).data();
    std::copy(src.begin(), src.end(), target.mutable_data().begin());
  }
  if (optimizer != nullptr) optimizer->load_state_dict(opt_state);
}

}  // namespace

void save(const Module& module, const std::string& path) {
  write_atomically(path, encode(module_entries(module)));
}

void save(const Module& module, const optim::Optimizer& optimizer, const std::string& path) {
  Entries entries = module_entries(module);
  for (auto& [name, t] : optimizer.state_dict()) entries.emplace_back(kOptimizer + name, t);
  write_atomically(path, encode(entries));
}

void load(Module& module, const std::string& path) { do_load(module, nullptr, path); }

void load(Module& module, optim::Optimizer& optimizer, const std::string& path) {
  do_load(module, &optimizer, path);
}

}  // namespace cholla::nn
