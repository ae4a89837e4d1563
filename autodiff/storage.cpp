#include "autodiff/storage.hpp"

#include <unordered_map>
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

}  // namespace

std::shared_ptr<double[]> allocate_storage(std::size_t count) {
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

}  // namespace cholla::detail
