// Tensor buffers (autodiff/storage.cpp): every buffer starts on a cache line, fresh or
// recycled, so kernels may write whole aligned lines (they still check: an alias need not be).
#include <cstdint>
#include <vector>

#include "autodiff/detail/storage.hpp"

#include "helpers.hpp"

using namespace cholla;

namespace {
bool line_aligned(const double* p) { return reinterpret_cast<std::uintptr_t>(p) % detail::kBufferAlignment == 0; }
}  // namespace

TEST_CASE("tensor buffers are 64-byte aligned, fresh and recycled") {
  // Past the inline values, small counts (the direct-index lists) and large ones (the map), odd
  // counts, and sizes that glibc serves from the heap and from mmap.
  for (int64_t n : {int64_t{17}, int64_t{33}, int64_t{1001}, int64_t{4095}, int64_t{4096}, int64_t{65537},
                    int64_t{589824}}) {
    CAPTURE(n);
    std::vector<Tensor> held;
    for (int round = 0; round < 3; ++round) {  // round 1 and 2 reuse what round 0 released
      held.clear();
      for (int k = 0; k < 4; ++k) {
        Tensor t = Tensor::full({n}, static_cast<double>(k));
        CHECK(line_aligned(t.data().data()));
        CHECK(t.data()[static_cast<size_t>(n - 1)] == static_cast<double>(k));
        held.push_back(t);
      }
    }
  }
}
