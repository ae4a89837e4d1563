// Internal: what a Tensor handle points at. Included by tensor.hpp only so that the trivial
// accessors (shape, data, numel, requires_grad) inline; nothing outside autodiff/ should use
// these fields (docs/engine.md explains the design).
//
// Memory: a TensorImpl is one object from a per-thread free list (no allocation in steady
// state; its shape vector keeps its capacity across reuse). Values live
//   - inline, in the object itself, for tensors of up to kInlineValues elements (scalars,
//     small vectors and 3x3 matrices: the common case on the tape), or
//   - in a pooled buffer the object owns, or
//   - in another TensorImpl's values (`base`), for reshape and detach, which share storage.
//
// Reference counts are biased towards the thread that created the tensor (docs/engine.md,
// "Reference counts"): that thread, the owner, counts its handles in a plain integer
// (`owner_refs`); other threads count theirs in an atomic word (`shared_word`). A handle copied
// or dropped on the owner thread, which is nearly every handle operation of a training step,
// then costs no atomic instruction (each was ~20 cycles, a third of a scalar op). The total is
// owner_refs + the word's count; either part alone may be negative while the other makes up
// for it (a handle copied on the owner and dropped elsewhere). Reconciling the two when the
// owner's part reaches zero, or when the shared part goes negative, is ownership.cpp's job.
//
// `tape_refs` counts the handles that the tape itself holds (an entry's inputs and the tensors
// its backward closure captured); it changes only on the thread that owns the tape. The other
// handles are "external": when no tensor with history of the current tape has an external
// handle any more, nobody can differentiate through the tape and it releases itself (tape.cpp,
// release_if_unreachable).
//
// Included at the end of tensor.hpp (it needs Tensor complete); do not include it directly.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace cholla {
namespace detail {

// 13: with the inline Shape the object stays at four cache lines; 3x3 matrices still fit.
inline constexpr int64_t kInlineValues = 13;

enum class StorageKind : uint8_t { Inline, Buffer, Alias };

// Per-thread engine state read on hot paths. Initial-exec TLS: a plain %fs-relative load
// (a function-local thread_local would go through a guard and a call on every access).
struct OwnerThread;  // a thread that owns tensors: its queue of handles to reconcile (ownership.cpp)

struct ThreadEngineState {
  OwnerThread* owner = nullptr;  // this thread's record, once it has created a tensor
  int64_t owned = 0;             // tensors this thread owns whose counts are not yet merged
  uint64_t tape_generation = 0;  // generation of this thread's current tape
  int64_t live = 0;              // tensors with history of that tape that have external handles
  bool adopting = false;         // record() is moving handles into the tape
  int32_t busy = 0;              // > 0 while an entry is built or a sweep runs (tape.cpp)
  bool grad_enabled = true;      // NoGrad / EnableGrad
  Tape* tape = nullptr;          // this thread's tape, once created (Tape::current)
};
extern thread_local constinit ThreadEngineState t_engine
    __attribute__((tls_model("initial-exec")));

// The live count of tape.cpp: an external handle gained or lost by a tensor with history of
// this thread's tape. When no such tensor is left, the tape may release itself (out of line).
void tape_unreachable();
inline void note_external_handle_gained(TensorImpl*) { ++t_engine.live; }
inline void note_external_handle_lost(TensorImpl*) {
  if (--t_engine.live == 0) [[unlikely]]
    tape_unreachable();
}
// Slow paths of handle copy/destroy, out of line (tensor.cpp).
void adopt_into_tape(TensorImpl* p);
void destroy_impl(TensorImpl* p);
// Reference-count slow paths (ownership.cpp): a handle dropped by a thread that does not own
// the tensor, and the owner's last plain handle dropped while the shared part is not zero.
void release_shared_handle(TensorImpl* p, bool tape_held);
void owner_released_last(TensorImpl* p);

// shared_word = count * kSharedOne | queued | merged.
inline constexpr int32_t kSharedMerged = 1;  // the owner's count is folded in: the word alone counts
inline constexpr int32_t kSharedQueued = 2;  // waiting in the owner's queue (never destroyed meanwhile)
inline constexpr int32_t kSharedOne = 4;     // one handle

// Laid out for the cache: an op reads the first line (counts, history, values pointer) of each
// operand and result, the second holds the shape, and a small tensor's values share the third
// with what destroying touches. (A scalar chain of 10,000 ops works on 2.5 MB of these
// objects, more than L2.)
struct alignas(64) TensorImpl {
  // Reference count (see the top of this file): which thread owns the plain part, the plain
  // part, and the atomic part. A new object is shared-mode: no owner, one handle in the word.
  std::atomic<OwnerThread*> owner{nullptr};
  int32_t owner_refs = 0;
  std::atomic<int32_t> shared_word{kSharedOne | kSharedMerged};
  int32_t tape_refs = 0;
  // Which output of its tape entry. For a leaf (no entry), a hint instead: its place in this
  // thread's tape's table of held leaves (tape.cpp, hold_leaf; checked before use).
  int32_t output = 0;
  // History: the tape entry that produced this tensor (generation 0 = none, a leaf).
  uint64_t generation = 0;
  int64_t node = -1;
  double* data = nullptr;
  int64_t size = 0;  // numel(shape)
  detail::StorageKind kind = detail::StorageKind::Inline;
  bool requires_grad = false;  // leaves only: the user asked for .grad()
  int32_t capture_slot = -1;   // used by cholla::grad() to collect a leaf's gradient
  // ---- second cache line
  Shape shape;           // dimensions inline (shape_type.hpp)
  int64_t capacity = 0;  // Buffer: doubles owned (the pool's size class)
  // ---- third: what destroying touches, and a small tensor's values
  Tensor base;  // Alias: the tensor whose values `data` points into
  Tensor grad;  // accumulated gradient of a leaf
  TensorImpl* next_free = nullptr;  // in this thread's cache of unused objects (storage.hpp)
  double inline_values[detail::kInlineValues];

  bool owned_by_this_thread() const {
    const OwnerThread* o = owner.load(std::memory_order_relaxed);
    return o != nullptr && o == t_engine.owner;
  }

  // Handles in existence, as far as this thread can know: exact for its own tensors and for
  // shared-mode ones; -1 for another thread's (its plain part cannot be read from here).
  int32_t handle_count() const {
    const int32_t shared = shared_word.load(std::memory_order_acquire) >> 2;  // floor: the count
    const OwnerThread* o = owner.load(std::memory_order_relaxed);
    if (o == nullptr) return shared;
    return o == t_engine.owner ? owner_refs + shared : -1;
  }

  // True when the tensor takes part in differentiation: a leaf that requires grad, or a
  // tensor with history (the one definition behind requires_grad(), needs_recording and the
  // backward sweep's Needs).
  bool takes_part() const { return requires_grad || generation != 0; }

  // True when this object is the only holder of its values: an in-place update (gradient
  // accumulation) cannot be observed by anyone else.
  bool owns_values_alone() const { return handle_count() == 1 && kind != detail::StorageKind::Alias; }
};

// A fresh object's first handle: counted by this thread when it owns tensors.
inline void claim_first_handle(TensorImpl* p) {
  if (OwnerThread* o = t_engine.owner) [[likely]] {
    p->owner.store(o, std::memory_order_relaxed);
    p->owner_refs = 1;
    p->shared_word.store(0, std::memory_order_relaxed);
    ++t_engine.owned;
  } else {
    p->owner.store(nullptr, std::memory_order_relaxed);
    p->owner_refs = 0;
    p->shared_word.store(kSharedOne | kSharedMerged, std::memory_order_relaxed);
  }
}

inline TensorImpl* impl_of(const Tensor& t) noexcept { return t.impl(); }

}  // namespace detail

// ---- Tensor's inline members (they need detail::TensorImpl complete) ------------------------------

// A handle created while record() places an entry (its inputs, or a backward closure being
// moved or copied into the arena: a lambda's captures of `const Tensor&` parameters are const
// members, so they are copied, not moved) becomes the tape's own.
inline Tensor::Tensor(const Tensor& other) noexcept : bits_(other.bits_ & ~kTapeTag) {
  if (bits_ == 0) return;
  retain();
  if (detail::t_engine.adopting) [[unlikely]]
    adopt();
}

inline Tensor::Tensor(Tensor&& other) noexcept : bits_(other.bits_) {
  other.bits_ = 0;
  if (detail::t_engine.adopting && bits_ != 0 && (bits_ & kTapeTag) == 0) [[unlikely]]
    adopt();
}

inline Tensor& Tensor::operator=(const Tensor& other) noexcept {
  Tensor copy(other);
  std::swap(bits_, copy.bits_);
  return *this;
}

inline Tensor& Tensor::operator=(Tensor&& other) noexcept {
  Tensor moved(std::move(other));
  std::swap(bits_, moved.bits_);
  return *this;
}

inline Tensor::~Tensor() {
  if (bits_ != 0) release();
}

inline detail::TensorImpl* Tensor::impl() const { return reinterpret_cast<detail::TensorImpl*>(bits_ & ~kTapeTag); }

inline void Tensor::retain() const {
  detail::TensorImpl* p = impl();
  if (p->owned_by_this_thread()) [[likely]]
    ++p->owner_refs;
  else
    p->shared_word.fetch_add(detail::kSharedOne, std::memory_order_relaxed);
  if (p->generation != 0 && p->generation == detail::t_engine.tape_generation &&
      p->handle_count() == p->tape_refs + 1) [[unlikely]]
    detail::note_external_handle_gained(p);
}

inline void Tensor::release() {
  detail::TensorImpl* p = impl();
  const bool tape_held = (bits_ & kTapeTag) != 0;
  bits_ = 0;
  if (tape_held) --p->tape_refs;
  if (!p->owned_by_this_thread()) [[unlikely]] {
    detail::release_shared_handle(p, tape_held);
    return;
  }
  --p->owner_refs;
  // An external handle of a tensor with history of this thread's tape: the live count of
  // tape.cpp may change (the 1 -> 0 transition of its external handles).
  const bool history_here = !tape_held && p->generation != 0 &&
                            p->generation == detail::t_engine.tape_generation;
  if (p->owner_refs != 0 && !history_here) [[likely]]
    return;
  if (p->owner_refs == 0 && p->shared_word.load(std::memory_order_acquire) == 0) {
    // No handle is left anywhere (so none of the tape's either, and this was its last
    // external one): p is ours to destroy.
    if (history_here) detail::note_external_handle_lost(p);
    --detail::t_engine.owned;
    detail::destroy_impl(p);
    return;
  }
  const bool note_lost = history_here && p->handle_count() == p->tape_refs;
  if (p->owner_refs == 0)
    detail::owner_released_last(p);  // from here on others may destroy p: do not read it
  // The tape may release itself here and, with it, p's remaining (tape) handles.
  if (note_lost) detail::note_external_handle_lost(p);
}

inline void Tensor::adopt() {
  detail::TensorImpl* p = impl();
  if (p->generation == 0 || p->generation != detail::t_engine.tape_generation) return;
  bits_ |= kTapeTag;
  detail::adopt_into_tape(p);
}

inline const detail::TensorImpl& Tensor::checked_impl(const char* what) const {
  if (bits_ == 0) [[unlikely]]
    throw_undefined(what);
  return *impl();
}

inline const Shape& Tensor::shape() const& { return checked_impl("shape").shape; }
inline Shape Tensor::shape() const&& { return checked_impl("shape").shape; }
inline int64_t Tensor::numel() const { return checked_impl("numel").size; }
inline int64_t Tensor::dim() const { return static_cast<int64_t>(shape().size()); }

inline std::span<const double> Tensor::data() const& {
  const detail::TensorImpl& t = checked_impl("data");
  return {t.data, static_cast<size_t>(t.size)};
}

inline std::span<double> Tensor::mutable_data() {
  const detail::TensorImpl& t = checked_impl("mutable_data");
  return {t.data, static_cast<size_t>(t.size)};
}

inline bool Tensor::requires_grad() const {
  const detail::TensorImpl& t = checked_impl("requires_grad");
  return t.takes_part();
}

inline bool Tensor::is_leaf() const { return checked_impl("is_leaf").generation == 0; }

}  // namespace cholla
