// Internal: an allocator for std::allocate_shared that recycles its blocks through a small
// per-thread free list.
//
// A distribution's shared state (MvnState) is made by every factory call and freed with the
// last copy: in a training step that is one malloc and one free per distribution, ~300
// instructions of a small MVN call (callgrind) for a block of the same size every time. A
// block freed on another thread joins that thread's list (it is plain memory). The list is
// bounded, and emptied when its thread exits; under AddressSanitizer it is off, as the tensor
// pools are (autodiff/detail/storage.hpp), so a use-after-free stays detectable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "autodiff/detail/storage.hpp"

namespace cholla::dist::detail {

template <class T>
class RecyclingAllocator {
 public:
  using value_type = T;

  RecyclingAllocator() noexcept = default;
  template <class U>
  RecyclingAllocator(const RecyclingAllocator<U>&) noexcept {}  // NOLINT: rebinding

  // (allocate_shared rebinds the allocator it is given to its control block's type: only
  // that type's blocks are ever allocated, so the checks are here, not on the class.)
  T* allocate(std::size_t n) {
    static_assert(sizeof(T) >= sizeof(Block) && alignof(T) >= alignof(Block), "a block must hold a link");
    if (cholla::detail::kPooledMemory && n == 1 && t_list.head != nullptr) [[likely]] {
      Block* b = t_list.head;
      t_list.head = b->next;
      --t_list.count;
      return reinterpret_cast<T*>(b);
    }
    return std::allocator<T>().allocate(n);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    if (cholla::detail::kPooledMemory && n == 1 && t_list.count < kKept) [[likely]] {
      if (t_list.state == Unregistered) register_list();
      if (t_list.state == Alive) {
        t_list.head = ::new (static_cast<void*>(p)) Block{t_list.head};
        ++t_list.count;
        return;
      }
    }
    std::allocator<T>().deallocate(p, n);
  }

  friend bool operator==(const RecyclingAllocator&, const RecyclingAllocator&) noexcept { return true; }

 private:
  static constexpr std::size_t kKept = 64;  // blocks kept per thread at most
  struct Block {
    Block* next;
  };
  enum State : uint8_t { Unregistered, Alive, Gone };
  // Trivially destructible and constinit, so an access is one TLS load (no init guard).
  struct List {
    Block* head = nullptr;
    std::size_t count = 0;
    State state = Unregistered;
  };
  static inline thread_local constinit List t_list;

  // Once per thread: a thread_local whose destructor frees the kept blocks at thread exit;
  // blocks freed after that go straight back to the heap.
  static void register_list() {
    struct Owner {
      Owner() { t_list.state = Alive; }
      ~Owner() {
        t_list.state = Gone;
        while (Block* b = t_list.head) {
          t_list.head = b->next;
          std::allocator<T>().deallocate(reinterpret_cast<T*>(b), 1);
        }
        t_list.count = 0;
      }
    };
    thread_local Owner owner;
    (void)owner;
  }
};

}  // namespace cholla::dist::detail
