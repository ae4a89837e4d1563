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
#include <cstdint>

#include "autodiff/errors.hpp"

namespace cholla::detail {
struct TensorImpl;
}

namespace cholla::detail {

// Every buffer starts on a 64-byte boundary (a cache line). A tensor's data pointer need not:
// an alias (reshape, slice) may start anywhere in its owner's buffer.
inline constexpr std::size_t kBufferAlignment = 64;

// `count` doubles for a tensor of `shape`; ResourceError naming `op`, the shape and the bytes
// when that is more than this machine's memory (RAM + swap) or the allocation fails.
double* allocate_buffer(std::size_t count, const Shape& shape, const char* op);
void release_buffer(double* p, std::size_t count);

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kPooledMemory = false;
#else
inline constexpr bool kPooledMemory = true;
#endif

// Recycled TensorImpl objects of this thread: an intrusive stack (TensorImpl::next_free), so
// that taking and returning one is a few instructions, inline. `state` makes it safe during
// thread exit: objects released after the pools are gone are deleted directly.
struct ImplCache {
  enum State : uint8_t { Unregistered, Alive, Gone };
  TensorImpl* head = nullptr;
  std::size_t count = 0;
  State state = Unregistered;
};
extern thread_local constinit ImplCache t_impl_cache __attribute__((tls_model("initial-exec")));
inline constexpr std::size_t kPooledImpls = 1u << 16;  // objects kept per thread at most

TensorImpl* allocate_impl_slow();
void recycle_impl_slow(TensorImpl* p);

// A TensorImpl in its default state (one handle, counted by this thread when it owns tensors;
// no values; an empty shape with spare capacity).
inline TensorImpl* allocate_impl();
// Takes back an object whose fields have been reset (destroy_impl does that).
inline void recycle_impl(TensorImpl* p);

}  // namespace cholla::detail

#include "autodiff/tensor.hpp"

namespace cholla::detail {

inline TensorImpl* allocate_impl() {
  if (kPooledMemory && t_impl_cache.head != nullptr) [[likely]] {
    TensorImpl* p = t_impl_cache.head;
    t_impl_cache.head = p->next_free;
    --t_impl_cache.count;
    p->next_free = nullptr;
    claim_first_handle(p);
    return p;
  }
  TensorImpl* p = allocate_impl_slow();
  claim_first_handle(p);
  return p;
}

inline void recycle_impl(TensorImpl* p) {
  if (kPooledMemory && t_impl_cache.state == ImplCache::Alive &&
      t_impl_cache.count < kPooledImpls) [[likely]] {
    p->next_free = t_impl_cache.head;
    t_impl_cache.head = p;
    ++t_impl_cache.count;
    return;
  }
  recycle_impl_slow(p);
}

}  // namespace cholla::detail
