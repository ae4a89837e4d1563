// The per-thread recycling allocator behind a MultivariateNormal's shared state
// (distributions/detail/recycling_allocator.hpp): objects are built and destroyed as with
// make_shared, a freed block is handed out again on the same thread, and blocks freed on
// another thread or after that thread's list is gone are plain heap memory.
#include <doctest/doctest.h>

#include <memory>
#include <thread>
#include <vector>

#include "autodiff/detail/storage.hpp"
#include "distributions/detail/recycling_allocator.hpp"

using cholla::dist::detail::RecyclingAllocator;

namespace {

struct Counted {
  static inline int alive = 0;
  int value;
  explicit Counted(int v) : value(v) { ++alive; }
  ~Counted() { --alive; }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
};

std::shared_ptr<Counted> make(int v) { return std::allocate_shared<Counted>(RecyclingAllocator<Counted>(), v); }

}  // namespace

TEST_CASE("recycling allocator: objects live and die as with make_shared") {
  const int before = Counted::alive;
  {
    auto a = make(1);
    auto b = a;
    CHECK(a->value == 1);
    CHECK(Counted::alive == before + 1);
    a.reset();
    CHECK(Counted::alive == before + 1);  // b still holds it
  }
  CHECK(Counted::alive == before);
}

TEST_CASE("recycling allocator: a freed block is handed out again on its thread") {
  auto first = make(1);
  const void* block = first.get();
  first.reset();
  // Small heap allocations of every size class in between: had the block gone back to malloc,
  // one of them would take it (glibc's per-thread caches hand out the last freed chunk first).
  std::vector<void*> grabbed;
  for (std::size_t n = 8; n <= 256; n += 8) grabbed.push_back(::operator new(n));
  auto second = make(2);
  CHECK(second->value == 2);
  CHECK((second.get() == block) == cholla::detail::kPooledMemory);  // ASan: no recycling
  for (void* p : grabbed) ::operator delete(p);
}

TEST_CASE("recycling allocator: blocks cross threads and outlive their thread's list") {
  const int before = Counted::alive;
  std::vector<std::shared_ptr<Counted>> made_here;
  for (int i = 0; i < 100; ++i) made_here.push_back(make(i));
  std::shared_ptr<Counted> made_there;
  std::thread worker([&] {
    made_here.clear();  // freed on the worker: its list keeps some, the rest goes to the heap
    made_there = make(7);
    auto reused = make(8);  // from the worker's list
    CHECK(reused->value == 8);
  });  // the worker's list is emptied when it exits
  worker.join();
  CHECK(made_there->value == 7);
  made_there.reset();  // a block from the worker's thread, freed here
  CHECK(Counted::alive == before);
  auto again = make(9);
  CHECK(again->value == 9);
}
