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
// Reference counts: `refs` counts every handle (atomic: handles to one tensor may be copied on
// several threads). `tape_refs` counts the handles that the tape itself holds (an entry's
// inputs and the tensors its backward closure captured); it changes only on the thread that
// owns the tape. `refs - tape_refs` handles are "external": when no tensor with history of the
// current tape has an external handle any more, nobody can differentiate through the tape and
// it releases itself (tape.cpp, Tape::release_if_unreachable).
//
// Included at the end of tensor.hpp (it needs Tensor complete); do not include it directly.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace cholla {
namespace detail {

inline constexpr int64_t kInlineValues = 16;

enum class StorageKind : uint8_t { Inline, Buffer, Alias };

// Per-thread engine state read on hot paths. Initial-exec TLS: a plain %fs-relative load
// (a function-local thread_local would go through a guard and a call on every access).
struct ThreadEngineState {
  uint64_t tape_generation = 0;  // generation of this thread's current tape
  int64_t live = 0;              // tensors with history of that tape that have external handles
  bool adopting = false;         // record() is moving handles into the tape
  bool grad_enabled = true;      // NoGrad / EnableGrad
  Tape* tape = nullptr;          // this thread's tape, once created (Tape::current)
};
extern thread_local constinit ThreadEngineState t_engine
    __attribute__((tls_model("initial-exec")));

// Slow paths of handle copy/destroy, out of line (tensor.cpp).
void note_external_handle_gained(TensorImpl* p);
void note_external_handle_lost(TensorImpl* p);
void adopt_into_tape(TensorImpl* p);
void destroy_impl(TensorImpl* p);

struct TensorImpl {
  std::atomic<int32_t> refs{1};
  int32_t tape_refs = 0;
  detail::StorageKind kind = detail::StorageKind::Inline;
  bool requires_grad = false;  // leaves only: the user asked for .grad()
  int32_t output = 0;          // which output of its tape entry
  // History: the tape entry that produced this tensor (generation 0 = none, a leaf).
  uint64_t generation = 0;
  int64_t node = -1;
  int64_t size = 0;  // numel(shape)
  double* data = nullptr;
  int64_t capacity = 0;  // Buffer: doubles owned (the pool's size class)
  Shape shape;
  Tensor base;  // Alias: the tensor whose values `data` points into
  Tensor grad;  // accumulated gradient of a leaf
  int64_t capture_slot = -1;  // used by cholla::grad() to collect a leaf's gradient
  TensorImpl* next_free = nullptr;  // in this thread's cache of unused objects (storage.hpp)
  double inline_values[detail::kInlineValues];

  // True when this object is the only holder of its values: an in-place update (gradient
  // accumulation) cannot be observed by anyone else.
  bool owns_values_alone() const {
    return refs.load(std::memory_order_acquire) == 1 && kind != detail::StorageKind::Alias;
  }
};

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
  const int32_t before = p->refs.fetch_add(1, std::memory_order_relaxed);
  if (p->generation != 0 && p->generation == detail::t_engine.tape_generation &&
      before == p->tape_refs) [[unlikely]]
    detail::note_external_handle_gained(p);
}

inline void Tensor::release() {
  detail::TensorImpl* p = impl();
  const bool tape_held = (bits_ & kTapeTag) != 0;
  bits_ = 0;
  if (tape_held) --p->tape_refs;
  const int32_t before = p->refs.fetch_sub(1, std::memory_order_acq_rel);
  if (!tape_held && p->generation != 0 && p->generation == detail::t_engine.tape_generation &&
      before - 1 == p->tape_refs) [[unlikely]]
    detail::note_external_handle_lost(p);  // may release the tape (never p itself: see there)
  if (before == 1) detail::destroy_impl(p);
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

inline const Shape& Tensor::shape() const { return checked_impl("shape").shape; }
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
  return t.requires_grad || t.generation != 0;
}

inline bool Tensor::is_leaf() const { return checked_impl("is_leaf").generation == 0; }

}  // namespace cholla
