#include "autodiff/storage.hpp"

#include <sys/sysinfo.h>

#include <cstdint>
#include <new>
#include <unordered_map>
#include <fmt/format.h>

#include "autodiff/shape.hpp"
#include <vector>

namespace cholla::detail {
namespace {

constexpr std::size_t kPooledFrom = 512;             // doubles (4 KiB)
constexpr std::size_t kPoolLimit = 256u << 20;       // bytes kept per thread at most

struct Pool {
  std::unordered_map<std::size_t, std::vector<double*>> free;
  std::size_t bytes = 0;
  ~Pool();
};

// Trivially destructible, so it can be read even while (or after) the pool is destroyed:
// a buffer released during thread or program exit is then freed directly.
thread_local bool t_pool_alive = false;

Pool& pool() {
  thread_local Pool p;
  t_pool_alive = true;
  return p;
}

Pool::~Pool() {
  t_pool_alive = false;
  for (auto& [count, blocks] : free)
    for (double* b : blocks) delete[] b;
}

// RAM + swap: no single buffer can be larger. Read once; the machine does not change.
std::size_t memory_limit() {
  static const std::size_t limit = [] {
    struct sysinfo info {};
    if (sysinfo(&info) != 0) return SIZE_MAX;
    const double total = (static_cast<double>(info.totalram) + static_cast<double>(info.totalswap)) *
                         static_cast<double>(info.mem_unit);
    return total >= 0x1p64 ? SIZE_MAX : static_cast<std::size_t>(total);
  }();
  return limit;
}

struct Release {
  std::size_t count;
  void operator()(double* p) const {
    if (t_pool_alive) {
      Pool& q = pool();
      if (q.bytes + count * sizeof(double) <= kPoolLimit) {
        q.free[count].push_back(p);
        q.bytes += count * sizeof(double);
        return;
      }
    }
    delete[] p;
  }
};

std::shared_ptr<double[]> allocate_unchecked(std::size_t count) {
#if defined(__SANITIZE_ADDRESS__)
  constexpr bool pooled = false;
#else
  constexpr bool pooled = true;
#endif
  if (!pooled || count < kPooledFrom) return std::make_shared_for_overwrite<double[]>(count);
  Pool& q = pool();
  auto it = q.free.find(count);
  if (it != q.free.end() && !it->second.empty()) {
    double* p = it->second.back();
    it->second.pop_back();
    q.bytes -= count * sizeof(double);
    return std::shared_ptr<double[]>(p, Release{count});
  }
  return std::shared_ptr<double[]>(new double[count], Release{count});
}

[[noreturn]] void throw_too_large(std::size_t count, const Shape& shape, const char* op) {
  throw ResourceError(op,
                      fmt::format("the result {} needs {}, more than this machine's memory ({}). "
                                  "Use a smaller batch, or check the shapes that broadcast into "
                                  "it.",
                                  format_shape(shape),
                                  format_bytes(static_cast<double>(count) * sizeof(double)),
                                  format_bytes(static_cast<double>(memory_limit()))),
                      "", {shape});
}

}  // namespace

std::shared_ptr<double[]> allocate_storage(std::size_t count, const Shape& shape, const char* op) {
  if (count > memory_limit() / sizeof(double)) throw_too_large(count, shape, op);
  try {
    return allocate_unchecked(count);
  } catch (const std::bad_alloc&) {
    throw_too_large(count, shape, op);
  }
}

}  // namespace cholla::detail
