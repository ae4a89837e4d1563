// Biased reference counts: the slow paths (tensor_impl.hpp has the fast ones, docs/engine.md
// "Reference counts" the protocol).
//
// A tensor's handles are counted in two parts: `owner_refs`, a plain integer that only the
// thread that created it (its owner) touches, and `shared_word`, an atomic count for every
// other thread. Handles move between threads freely (a tensor made on one thread and handed
// to another), so a handle counted in one part may be dropped against the other: the shared
// part can go negative while the owner's part still counts the moved handle. Two events
// reconcile the parts into the word alone ("merged"), after which every thread counts there:
//   - the owner drops its last plain handle while the word is not zero (owner_released_last);
//   - a thread drives the word negative: it marks the tensor queued and hands it to the owner,
//     which folds its plain part in at the next regular point (reconcile_dropped_elsewhere),
//     or, once the owner has exited and its plain counts are frozen, folds it in itself.
// A tensor is destroyed by whoever moves the word to exactly "merged, count 0, not queued":
// only one update can do that, since afterwards no handle exists.
#include "autodiff/detail/ownership.hpp"

#include <atomic>
#include <mutex>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla::detail {

struct OwnerThread {
  std::vector<TensorImpl*> queue;    // tensors to reconcile; guarded by ownership_mutex()
  std::atomic<bool> pending{false};  // queue not empty (read without the lock)
  bool dead = false;                 // the thread has exited: its plain counts are frozen
  int64_t remaining = 0;             // after its exit: its unmerged tensors; 0 -> deleted
};

namespace {

// One lock for the rare paths (queueing, a thread's exit). Never held while a tensor is
// destroyed (destroying drops handles, which may come back here). Never destroyed itself:
// tensors may still be released during static destruction.
std::mutex& ownership_mutex() {
  static std::mutex* const mutex = new std::mutex;
  return *mutex;
}

void destroy_if_last(TensorImpl* p, int32_t word) {
  if (word == kSharedMerged) destroy_impl(p);
}

// Folds the owner's plain count into the word (also adding `adjust`); returns the new word.
int32_t fold_owner_count(TensorImpl* p, int32_t adjust) {
  const int32_t add = p->owner_refs * kSharedOne + kSharedMerged + adjust;
  p->owner_refs = 0;
  p->owner.store(nullptr, std::memory_order_relaxed);
  return p->shared_word.fetch_add(add, std::memory_order_acq_rel) + add;
}

// Reconciles a queued tensor: folds its owner's plain count in (or, if merged meanwhile, only
// clears the queue mark) and returns the new word. Called by the live owner itself, or with
// the lock held when the owner is dead; then sets *to_delete when this was the dead owner's
// last unmerged tensor.
int32_t reconcile_queued(TensorImpl* p, OwnerThread** to_delete) {
  OwnerThread* o = p->owner.load(std::memory_order_relaxed);
  if (o == nullptr)
    return p->shared_word.fetch_sub(kSharedQueued, std::memory_order_acq_rel) - kSharedQueued;
  const int32_t word = fold_owner_count(p, -kSharedQueued);
  if (!o->dead)
    --t_engine.owned;  // the owner itself (only it sees its record alive here)
  else if (--o->remaining == 0)
    *to_delete = o;
  return word;
}

// Hands a tensor this thread has just marked queued to its owner, or reconciles it here when
// the owner has exited (or merged it meanwhile).
void queue_for_owner(TensorImpl* p) {
  OwnerThread* to_delete = nullptr;
  int32_t word;
  {
    std::lock_guard lock(ownership_mutex());
    OwnerThread* o = p->owner.load(std::memory_order_relaxed);
    if (o != nullptr && !o->dead) {
      o->queue.push_back(p);
      o->pending.store(true, std::memory_order_release);
      return;
    }
    word = reconcile_queued(p, &to_delete);
  }
  delete to_delete;
  destroy_if_last(p, word);
}

// The owner record's lifetime: created with the thread's first tensor, retired at its exit.
struct OwnerLifetime {
  OwnerThread* record = nullptr;
  OwnerLifetime() = default;
  OwnerLifetime(const OwnerLifetime&) = delete;
  OwnerLifetime& operator=(const OwnerLifetime&) = delete;
  ~OwnerLifetime();
};
thread_local OwnerLifetime t_owner_lifetime;
thread_local constinit bool t_owner_exited = false;

OwnerLifetime::~OwnerLifetime() {
  OwnerThread* o = record;
  if (o == nullptr) return;
  // From here on this thread counts every handle in shared words, its own tensors' too.
  t_engine.owner = nullptr;
  t_owner_exited = true;
  std::vector<TensorImpl*> queued;
  bool delete_now;
  {
    std::lock_guard lock(ownership_mutex());
    o->dead = true;
    o->remaining = t_engine.owned;
    delete_now = o->remaining == 0;
    queued.swap(o->queue);
    o->pending.store(false, std::memory_order_relaxed);
  }
  t_engine.owned = 0;
  if (delete_now) delete o;  // then no queued tensor refers to it either
  for (TensorImpl* p : queued) {
    OwnerThread* to_delete = nullptr;
    int32_t word;
    {
      std::lock_guard lock(ownership_mutex());
      word = reconcile_queued(p, &to_delete);
    }
    delete to_delete;
    destroy_if_last(p, word);
  }
}

}  // namespace

void become_owner_thread() {
  if (t_engine.owner != nullptr) {
    reconcile_dropped_elsewhere();
    return;
  }
  if (t_owner_exited) return;
  t_owner_lifetime.record = new OwnerThread;
  t_engine.owner = t_owner_lifetime.record;
}

void reconcile_dropped_elsewhere() {
  OwnerThread* o = t_engine.owner;
  if (o == nullptr || !o->pending.load(std::memory_order_acquire)) return;
  std::vector<TensorImpl*> queued;
  {
    std::lock_guard lock(ownership_mutex());
    queued.swap(o->queue);
    o->pending.store(false, std::memory_order_relaxed);
  }
  for (TensorImpl* p : queued) {
    OwnerThread* unused = nullptr;  // alive: never deleted here
    destroy_if_last(p, reconcile_queued(p, &unused));
  }
}

void owner_released_last(TensorImpl* p) {
  p->owner.store(nullptr, std::memory_order_relaxed);
  --t_engine.owned;
  const int32_t word = p->shared_word.fetch_or(kSharedMerged, std::memory_order_acq_rel) | kSharedMerged;
  destroy_if_last(p, word);
}

void release_shared_handle(TensorImpl* p, bool tape_held) {
  // Read before the count changes: afterwards another thread may destroy p at any time.
  const bool history_here = !tape_held && p->generation != 0 &&
                            p->generation == t_engine.tape_generation;
  const int32_t tape_refs = p->tape_refs;
  int32_t old = p->shared_word.load(std::memory_order_relaxed);
  int32_t word;
  do {
    word = old - kSharedOne;
    // Negative while an owner still counts in its plain part: the owner must reconcile.
    if ((old & kSharedMerged) == 0 && (word >> 2) < 0) word |= kSharedQueued;
  } while (!p->shared_word.compare_exchange_weak(old, word, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed));
  if ((old & kSharedMerged) != 0) {
    // The word is the whole count; the live count of tape.cpp is exact here.
    const bool note_lost = history_here && (word >> 2) == tape_refs;
    if (note_lost) note_external_handle_lost(p);
    destroy_if_last(p, word);
    return;
  }
  if ((word & kSharedQueued) != 0 && (old & kSharedQueued) == 0) queue_for_owner(p);
}

}  // namespace cholla::detail
