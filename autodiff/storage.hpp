// Internal: allocation of tensor storage.
//
// A training loop allocates the same large buffers at every step. Fresh large allocations come
// from mmap, and every page is faulted in and zeroed by the kernel again: measured at 20-30%
// of a batched MVN negative log-likelihood step. Buffers of 4 KiB and more are therefore kept
// in a per-thread pool keyed by size and reused; small ones go straight to malloc, which is
// fast for them. Under AddressSanitizer the pool is off, so use-after-free stays detectable.
#pragma once

#include <cstddef>
#include <memory>

#include "autodiff/errors.hpp"

namespace cholla::detail {

// `count` doubles for a tensor of `shape`; ResourceError naming `op`, the shape and the bytes
// when that is more than this machine's memory (RAM + swap) or the allocation fails.
std::shared_ptr<double[]> allocate_storage(std::size_t count, const Shape& shape, const char* op);

}  // namespace cholla::detail
