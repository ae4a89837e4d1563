#include "autodiff/detail/storage.hpp"
#include "autodiff/detail/ownership.hpp"

#include <sys/sysinfo.h>

#include <cstdint>
#include <new>
#include <unordered_map>
#include <vector>
#include <fmt/format.h>

#include "autodiff/shape.hpp"
#include "autodiff/tensor.hpp"

namespace cholla::detail {

thread_local constinit ImplCache t_impl_cache;

namespace {

constexpr bool kPooled = kPooledMemory;

constexpr std::size_t kPoolBytes = 256u << 20;   // buffer bytes kept per thread at most
constexpr std::size_t kSmallCounts = 4096;       // buffer sizes below this: direct index

// Buffers start on a cache line: a block of samples whose rows fill whole lines is then written
// with full, aligned 64-byte stores (which streaming stores require, and which let the core
// skip reading a line it overwrites), and no vector load or store of a buffer's start splits a
// line. operator new[] only guarantees 16 bytes.
constexpr std::align_val_t kBufferAlign{kBufferAlignment};

double* new_buffer(std::size_t count) {
  return static_cast<double*>(::operator new(count * sizeof(double), kBufferAlign));
}
void delete_buffer(double* p) { ::operator delete(p, kBufferAlign); }

struct Pools {
  std::vector<std::vector<double*>> small{kSmallCounts};
  std::unordered_map<std::size_t, std::vector<double*>> large;
  std::size_t bytes = 0;
  // One lifetime flag for buffers and TensorImpls alike: t_impl_cache.state is trivially
  // destructible, so it can be read even while (or after) the pools are destroyed, and memory
  // released during thread or program exit is then freed directly.
  Pools() { t_impl_cache.state = ImplCache::Alive; }
  ~Pools();
};

Pools& pools() {
  thread_local Pools p;
  return p;
}

bool pools_alive() { return t_impl_cache.state == ImplCache::Alive; }

Pools::~Pools() {
  t_impl_cache.state = ImplCache::Gone;
  for (auto& list : small)
    for (double* b : list) delete_buffer(b);
  for (auto& [count, list] : large)
    for (double* b : list) delete_buffer(b);
  while (TensorImpl* p = t_impl_cache.head) {
    t_impl_cache.head = p->next_free;
    delete p;
  }
  t_impl_cache.count = 0;
}

std::vector<double*>& free_list(Pools& q, std::size_t count) {
  return count < kSmallCounts ? q.small[count] : q.large[count];
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

double* allocate_buffer(std::size_t count, const Shape& shape, const char* op) {
  if (count > memory_limit() / sizeof(double)) throw_too_large(count, shape, op);
  if (kPooled) {
    Pools& q = pools();
    auto& list = free_list(q, count);
    if (!list.empty()) {
      double* p = list.back();
      list.pop_back();
      q.bytes -= count * sizeof(double);
      return p;
    }
  }
  try {
    return new_buffer(count);
  } catch (const std::bad_alloc&) {
    throw_too_large(count, shape, op);
  }
}

void release_buffer(double* p, std::size_t count) {
  if (kPooled && pools_alive()) {
    Pools& q = pools();
    if (q.bytes + count * sizeof(double) <= kPoolBytes) {
      free_list(q, count).push_back(p);
      q.bytes += count * sizeof(double);
      return;
    }
  }
  delete_buffer(p);
}

TensorImpl* allocate_impl_slow() {
  if (kPooled && t_impl_cache.state == ImplCache::Unregistered) pools();  // registers the cache
  become_owner_thread();  // first tensor of this thread; else reconciles handles dropped elsewhere
  return new TensorImpl();
}

void recycle_impl_slow(TensorImpl* p) {
  if (kPooled && t_impl_cache.state == ImplCache::Unregistered) {
    pools();
    recycle_impl(p);
    return;
  }
  delete p;
}

}  // namespace cholla::detail
