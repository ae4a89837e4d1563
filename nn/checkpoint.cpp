#include "nn/checkpoint.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "nn/data/detail/untrusted.hpp"

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

// The 32-byte header (or as much of it as the file has) against the file's real size: a file
// whose header does not announce exactly that size is refused before the rest is read.
void check_header(const std::string& path, const std::string& head, uint64_t n) {
  const size_t got = head.size();
  if (got < sizeof kMagic && std::memcmp(head.data(), kMagic, got) == 0)
    fail(path, fmt::format("truncated: {} bytes, shorter than the header.", n));
  if (got < sizeof kMagic || std::memcmp(head.data(), kMagic, sizeof kMagic) != 0)
    fail(path, "not a cholla checkpoint (wrong magic number). Pass a file written by nn::save.");
  if (n < kHeader + kChecksum)
    fail(path, fmt::format("truncated: {} bytes, shorter than the header.", n));
  const auto version = static_cast<uint32_t>(get_u(head, 8, 4));
  if (version != kCheckpointVersion)
    fail(path, fmt::format("unsupported format version {}; this build reads version {}.",
                           version, kCheckpointVersion));
  const uint64_t declared = get_u(head, 16, 8);
  if (declared > n)
    fail(path, fmt::format("truncated: {} bytes, the header announces {}. The file was not "
                           "completely written or copied.",
                           n, declared));
  if (declared < n)
    fail(path, fmt::format("corrupted: {} bytes, the header announces {}.", n, declared));
}

// Reads a checkpoint whose header has been checked, so at most the announced size is allocated
// (and only for a regular file: a directory or /dev/zero is refused before reading).
std::string read_checked(const std::string& path) {
  const data::detail::RegularFile file("load", path);
  const uint64_t n = file.size();
  check_header(path, file.read(0, std::min<uint64_t>(n, kHeader)), n);
  std::string bytes = file.read_all();
  check_header(path, bytes, bytes.size());  // the same bytes decode will check the sum of
  return bytes;
}

// Parses and verifies a file whose header check_header accepted; every failure names what is
// wrong with it.
Entries decode(const std::string& path, const std::string& in) {
  const size_t n = in.size();
  if (get_u(in, n - kChecksum, 8) != fnv1a(in.data(), n - kChecksum))
    fail(path, "corrupted: checksum mismatch. Restore the file from a backup or save again.");

  // The checksum matched, so a malformed entry means a writer bug or a forged file; still never
  // read past the end, and never build a shape the file could not hold.
  size_t at = kHeader;
  const size_t end = n - kChecksum;
  const uint64_t capacity = (end - kHeader) / 8;  // more values than this cannot be in the file
  auto need = [&](uint64_t bytes) {
    if (bytes > end - at) fail(path, "corrupted: an entry runs past the end of the data.");
  };
  const uint64_t count = get_u(in, 24, 8);
  Entries out;
  std::set<std::string> seen;
  for (uint64_t e = 0; e < count; ++e) {
    need(4);
    const uint64_t len = get_u(in, at, 4);
    at += 4;
    need(len);
    std::string name = in.substr(at, len);
    at += len;
    const std::string quoted = data::detail::excerpt(name);
    if (!seen.insert(name).second) fail(path, fmt::format("corrupted: entry {} appears twice.", quoted));
    need(4);
    const uint64_t rank = get_u(in, at, 4);
    at += 4;
    need(rank * 8);
    Shape shape;
    // Product of the non-zero dimensions, bounded by the capacity so it cannot overflow: a zero
    // dimension must not let [0, 2^40, 2^40] through.
    uint64_t extent = 1;
    bool empty = false;
    for (uint64_t d = 0; d < rank; ++d, at += 8) {
      const uint64_t dim = get_u(in, at, 8);
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(path, fmt::format("corrupted: entry {} has dimension {} (negative).", quoted,
                               static_cast<int64_t>(dim)));
      if (dim != 0 && extent > capacity / dim)
        fail(path, fmt::format("corrupted: entry {} declares dimension {} at position {}, more "
                               "values than the file holds.",
                               quoted, dim, d));
      shape.push_back(static_cast<int64_t>(dim));
      if (dim == 0) empty = true;
      else extent *= dim;
    }
    const uint64_t count_values = empty ? 0 : extent;
    if (count_values > (end - at) / 8)
      fail(path, fmt::format("corrupted: entry {} runs past the end.", quoted));
    std::vector<double> values(count_values);
    for (auto& v : values) v = std::bit_cast<double>(get_u(in, at, 8)), at += 8;
    try {
      out.emplace_back(std::move(name), Tensor::from(shape, std::move(values)));
    } catch (const ShapeError& e) {  // a shape the engine refuses (its own limits) is a bad file
      fail(path, fmt::format("corrupted: entry {} has shape {}: {}", quoted, format_shape(shape),
                             e.what()));
    }
  }
  if (at != end) fail(path, "corrupted: bytes left over after the last entry.");
  return out;
}

std::string errno_text() { return std::strerror(errno); }

// Opens "<path>.tmp" under an exclusive flock: the one temporary file of `path`, shared by
// every save of it. A save killed mid-way leaves it behind and the next save reuses (truncates)
// it, so kills cannot pile up temporaries; the lock keeps two concurrent saves off the same
// bytes. A save that waited for the lock may find that the holder renamed that very file over
// `path`; it then no longer is the temporary file, and the waiter starts again on a fresh one.
int open_temporary(const std::string& path, const std::string& tmp) {
  for (;;) {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
      throw IoError("save", fmt::format("cannot create the temporary file '{}' next to '{}': {}. "
                                        "Check that the directory exists and is writable.",
                                        tmp, path, errno_text()));
    int locked;
    do locked = ::flock(fd, LOCK_EX);
    while (locked != 0 && errno == EINTR);
    struct stat held {}, named {};
    if (locked != 0 || ::fstat(fd, &held) != 0) {
      const std::string reason = errno_text();
      ::close(fd);
      throw IoError("save", fmt::format("cannot lock '{}': {}. '{}' was left unchanged.", tmp,
                                        reason, path));
    }
    if (::lstat(tmp.c_str(), &named) == 0 && named.st_ino == held.st_ino &&
        named.st_dev == held.st_dev)
      return fd;
    ::close(fd);
  }
}

void write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = open_temporary(path, tmp);
  auto abandon = [&](const std::string& what) {
    const std::string reason = errno_text();
    ::unlink(tmp.c_str());
    ::close(fd);
    throw IoError("save", fmt::format("{}: {}. '{}' was left unchanged.", what, reason, path));
  };
  if (::ftruncate(fd, 0) != 0) abandon("cannot truncate '" + tmp + "'");  // a stale file from a killed save
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) abandon("cannot write '" + tmp + "'");
    done += static_cast<size_t>(w);
  }
  // Data on disk before the rename makes it visible: otherwise a crash could leave `path`
  // naming a file whose blocks were never written.
  if (::fsync(fd) != 0) abandon("cannot flush '" + tmp + "'");
  // Renamed while the lock is held, so no other save is writing these bytes meanwhile.
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    abandon(fmt::format("cannot rename '{}' to '{}'", tmp, path));
  ::close(fd);  // the data is durable already (fsync): nothing to report from close
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

void do_load(Module& module, optim::Optimizer* optimizer, const std::string& path) {
  const Entries entries = decode(path, read_checked(path));
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
        fail(path, fmt::format("holds parameter {}, which the module does not have.",
                               data::detail::excerpt(name)));
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
