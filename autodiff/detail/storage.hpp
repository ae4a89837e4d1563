// Internal: memory for tensors, kept in per-thread free lists.
//
// A training step allocates the same tensors at every step: the same few shapes, over and over.
// malloc/free was ~45% of all instructions of a small op when every tensor came from the heap,
// and fresh large buffers are faulted in and zeroed by the kernel again (20-30% of a batched
// MVN step). So TensorImpl objects and value buffers are recycled through per-thread free
// lists (buffers by exact element count), bounded in size; memory released on another thread
// simply joins that thread's lists. Under AddressSanitizer the lists are off, so a
// use-after-free stays detectable.
#pragma once

#include <cstddef>

#include "autodiff/errors.hpp"

namespace cholla {
struct TensorImpl;
}

namespace cholla::detail {

// `count` doubles for a tensor of `shape`; ResourceError naming `op`, the shape and the bytes
// when that is more than this machine's memory (RAM + swap) or the allocation fails.
double* allocate_buffer(std::size_t count, const Shape& shape, const char* op);
void release_buffer(double* p, std::size_t count);

// A TensorImpl in its default state (refs 1, no values, empty shape with spare capacity).
TensorImpl* allocate_impl();
// Takes back an object whose fields have been reset (destroy_impl does that).
void recycle_impl(TensorImpl* p);

}  // namespace cholla::detail
