// The tape: one per thread, append-only, in creation order (Stan's design: creation order is
// already a topological order, so backward needs no graph walk and no recursion).
//
// Ownership: the tape owns its entries; an entry owns handles to its inputs and its backward
// closure; a tensor knows only (tape generation, entry index, output index) of the entry that
// produced it. A tensor whose entry has been released is detected by its stale generation:
// GraphError, never undefined behaviour. Entries, their input lists and their closures live in
// a per-thread arena released in one step (docs/engine.md).
//
// When the tape is released: by backward() / grad() without retain_graph (the whole tape, as
// Stan's grad() does), by Tape::release(), and by itself as soon as no tensor with history of
// it is reachable from outside the tape (a graph built and dropped without a backward costs no
// memory once dropped).
//
// Declaring an op (see docs/adding-an-op.md):
//
//   Tensor exp(const Tensor& x) {
//     Tensor out = /* compute values on x.data() */;
//     return record("exp", {x}, out, [out](const Tensor& g, Needs) -> Grads {
//       return {g * out};            // written with differentiable ops: second order works
//     });
//   }
//
// `record` attaches history only when grad mode is on and some input requires grad; otherwise
// it drops the closure and returns `out` untouched, so inference costs no tape.
//
// An op may also pass a raw first-order rule after the op-composed one:
//
//   return record("potrf", {A}, L, composed_rule, raw_kernel_rule);
//
// The engine calls the raw rule when the backward itself is not being recorded (a plain
// backward()), and the composed rule under create_graph, where gradients need history.
//
// An elementwise op of one input can instead give a raw rule that rewrites the incoming
// gradient in place, dL/dout -> dL/dx element by element:
//
//   return record_elementwise("tanh", x, out, composed_rule,
//                             [out](std::span<double> g) { /* g[i] *= 1 - out[i]^2 */ });
//
// The engine hands it the gradient's own buffer when nobody else holds it (a copy otherwise),
// so a plain backward through a chain of such ops allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <new>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla {

// Which inputs of an op need a gradient; backward rules may skip the others.
struct Needs {
  uint64_t bits = ~0ULL;
  bool operator[](size_t i) const { return i >= 64 || ((bits >> i) & 1ULL) != 0; }
};

// One gradient per input; an undefined Tensor means "no gradient". Up to four are held inline
// (no allocation per backward call); more spill to the heap.
class Grads {
 public:
  Grads() = default;
  explicit Grads(size_t n) { resize(n); }
  // Grads{gx, gy}: the gradients are moved in (an initializer_list would copy each handle).
  template <class... T>
    requires(sizeof...(T) >= 1 && (std::is_convertible_v<T, Tensor> && ...))
  Grads(T&&... values) : size_(sizeof...(T)) {  // NOLINT: implicit on purpose
    if constexpr (sizeof...(T) <= kInline) {
      size_t i = 0;
      ((inline_[i++] = std::forward<T>(values)), ...);
    } else {
      heap_.reserve(sizeof...(T));
      (heap_.emplace_back(std::forward<T>(values)), ...);
    }
  }
  Grads(std::vector<Tensor> values) : size_(values.size()) {  // NOLINT: implicit on purpose
    if (size_ <= kInline) {
      for (size_t i = 0; i < size_; ++i) inline_[i] = std::move(values[i]);
    } else {
      heap_ = std::move(values);
    }
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Tensor& operator[](size_t i) { return size_ <= kInline ? inline_[i] : heap_[i]; }
  const Tensor& operator[](size_t i) const { return size_ <= kInline ? inline_[i] : heap_[i]; }
  Tensor* begin() { return size_ <= kInline ? inline_ : heap_.data(); }
  Tensor* end() { return begin() + size_; }
  const Tensor* begin() const { return size_ <= kInline ? inline_ : heap_.data(); }
  const Tensor* end() const { return begin() + size_; }
  void push_back(Tensor t) {
    resize(size_ + 1);
    (*this)[size_ - 1] = std::move(t);
  }
  void resize(size_t n) {
    if (n > kInline && size_ <= kInline) {
      heap_.resize(n);
      for (size_t i = 0; i < size_; ++i) heap_[i] = std::move(inline_[i]);
    } else if (n > kInline) {
      heap_.resize(n);
    } else if (size_ > kInline) {
      for (size_t i = 0; i < n; ++i) inline_[i] = std::move(heap_[i]);
      heap_.clear();
    }
    for (size_t i = n; i < size_ && i < kInline; ++i) inline_[i] = Tensor();
    size_ = n;
  }

 private:
  static constexpr size_t kInline = 4;
  size_t size_ = 0;
  Tensor inline_[kInline];
  std::vector<Tensor> heap_;
};

// A backward rule with any number of outputs, as a std::function (kept for code that stores
// rules; record and record_multi take any callable and store it without a heap allocation).
using BackwardFn = std::function<Grads(std::span<const Tensor> grad_outputs, Needs needs)>;

struct BackwardOptions {
  bool retain_graph = false;  // keep the entries for another backward
  bool create_graph = false;  // record the backward itself (second derivatives)
};

struct GradOptions {
  bool retain_graph = false;  // implied by create_graph
  bool create_graph = false;
  bool allow_unused = false;  // an input the outputs do not depend on gets zeros, not an error
};

// The inputs of an op, as a view: record({a, b}, ...) copies no handle (every copy of a Tensor
// is an atomic reference-count update, a measurable part of a small op). Holds references to
// its arguments, so use it only as a parameter.
class Inputs {
 public:
  Inputs(std::initializer_list<std::reference_wrapper<const Tensor>> list)  // NOLINT
      : refs_(std::data(list)), size_(list.size()) {}
  Inputs(std::span<const Tensor> tensors)  // NOLINT
      : tensors_(tensors.data()), size_(tensors.size()) {}
  Inputs(const std::vector<Tensor>& tensors)  // NOLINT
      : tensors_(tensors.data()), size_(tensors.size()) {}

  size_t size() const { return size_; }
  const Tensor& operator[](size_t i) const { return refs_ != nullptr ? refs_[i].get() : tensors_[i]; }

 private:
  const std::reference_wrapper<const Tensor>* refs_ = nullptr;
  const Tensor* tensors_ = nullptr;
  size_t size_ = 0;
};

namespace detail {

struct TapeNode;   // one entry (detail/tape_node.hpp)
class TapeArena;   // the entries' memory (tape.cpp)

// A backward rule placed in the tape's arena, called through two plain function pointers.
struct Closure {
  Grads (*invoke)(void* self, std::span<const Tensor> grad_outputs, Needs needs) = nullptr;
  void (*destroy)(void* self) = nullptr;
  void* self = nullptr;
};

// A raw in-place rule (record_elementwise): rewrites the gradient g, in place, into the
// gradient for input `input`.
using InPlaceFn = void (*)(void* self, size_t input, std::span<double> g);
// The raw rule of an op whose gradient reaches every input unchanged (record_pass_through):
// the engine hands the same gradient on, and calls nothing.
void pass_through(void* self, size_t input, std::span<double> g);

// Bump allocation in this thread's tape arena (valid until the tape is released). The cursor
// is thread-local so that the common case inlines; a new chunk is the slow path (tape.cpp).
struct ArenaCursor {
  char* cursor = nullptr;
  char* end = nullptr;
};
extern thread_local constinit ArenaCursor t_arena __attribute__((tls_model("initial-exec")));
void* arena_allocate_slow(std::size_t bytes, std::size_t align);

inline void* arena_allocate(std::size_t bytes, std::size_t align) {
  const uintptr_t p = (reinterpret_cast<uintptr_t>(t_arena.cursor) + align - 1) &
                      ~(static_cast<uintptr_t>(align) - 1);
  if (t_arena.cursor == nullptr || p + bytes > reinterpret_cast<uintptr_t>(t_arena.end))
      [[unlikely]]
    return arena_allocate_slow(bytes, align);
  t_arena.cursor = reinterpret_cast<char*>(p + bytes);
  return reinterpret_cast<void*>(p);
}

// RAII: handles moved while this is alive become the tape's own (tensor_impl.hpp).
class AdoptionScope {
 public:
  AdoptionScope() : previous_(t_engine.adopting) { t_engine.adopting = true; }
  ~AdoptionScope() { t_engine.adopting = previous_; }
  AdoptionScope(const AdoptionScope&) = delete;
  AdoptionScope& operator=(const AdoptionScope&) = delete;

 private:
  bool previous_;
};

// Moves F into the arena, points `out.self` at it and sets its destructor (none when trivial).
// Tensors F captures become the tape's own handles. Written field by field into the entry: a
// Closure returned by value and copied in would be read back with wide loads that stall on the
// narrow stores that built it (measured: a sixth of a scalar op).
template <class F>
void place_state(F&& f, Closure& out) {
  using Fn = std::decay_t<F>;
  void* memory = arena_allocate(sizeof(Fn), alignof(Fn));
  if constexpr (std::is_trivially_copyable_v<Fn>) {
    new (memory) Fn(std::forward<F>(f));  // no Tensor captured: nothing to adopt
  } else {
    AdoptionScope adopting;
    new (memory) Fn(std::forward<F>(f));
  }
  out.self = memory;
  if constexpr (!std::is_trivially_destructible_v<Fn>)
    out.destroy = [](void* self) { static_cast<Fn*>(self)->~Fn(); };
}

// A multi-output rule F (callable as Grads(span<const Tensor>, Needs)) in an entry's slot.
template <class F>
void place_closure(F&& f, Closure& out) {
  using Fn = std::decay_t<F>;
  place_state(std::forward<F>(f), out);
  out.invoke = [](void* self, std::span<const Tensor> g, Needs n) -> Grads {
    return (*static_cast<Fn*>(self))(g, n);
  };
}

// An op-composed rule F (callable as Grads(const Tensor& g, Needs)) and an in-place rule R
// (callable as void(size_t input, std::span<double> g)) in one arena block: one placement
// for both, and one destructor, run through the composed rule's slot.
template <class F, class R>
struct RulePair {
  F composed;
  R in_place;
};

template <class F, class R>
void place_rule_pair(F&& composed, R&& in_place, Closure& backward, Closure& raw, InPlaceFn& apply) {
  using Pair = RulePair<std::decay_t<F>, std::decay_t<R>>;
  place_state(Pair{std::forward<F>(composed), std::forward<R>(in_place)}, backward);
  auto* pair = static_cast<Pair*>(backward.self);
  backward.invoke = [](void* self, std::span<const Tensor> g, Needs n) -> Grads {
    return static_cast<Pair*>(self)->composed(g[0], n);
  };
  raw.self = &pair->in_place;
  apply = [](void* self, size_t input, std::span<double> g) {
    (*static_cast<std::decay_t<R>*>(self))(input, g);
  };
}

// The two rules of a one-output op as members of one state object S, placed once:
// `composed(g, needs)` (differentiable ops, used under create_graph) and `first_order(g, needs)`
// (the raw rule), both returning Grads. For ops whose rules need the same captured state.
template <class S>
void place_shared_rules(S&& state, Closure& backward, Closure& raw) {
  using State = std::decay_t<S>;
  place_state(std::forward<S>(state), backward);
  backward.invoke = [](void* self, std::span<const Tensor> g, Needs n) -> Grads {
    return static_cast<const State*>(self)->composed(g[0], n);
  };
  raw.self = backward.self;  // destroyed once, through the composed rule's slot
  raw.invoke = [](void* self, std::span<const Tensor> g, Needs n) -> Grads {
    return static_cast<const State*>(self)->first_order(g[0], n);
  };
}

template <class F>
auto single_output(F&& f) {
  return [rule = std::forward<F>(f)](std::span<const Tensor> g, Needs n) -> Grads {
    return rule(g[0], n);
  };
}

// Builds one tape entry. The constructor appends it and gives each output its place on the
// tape *before* the rules are placed, so that outputs the rules capture are recognised as the
// tape's own handles. While a builder is alive the tape cannot release itself.
class EntryBuilder {
 public:
  // By reference: a struct passed by value goes through the stack and is read back with the
  // same stalling wide loads as above.
  EntryBuilder(const char* op, const Inputs& inputs, std::span<Tensor> outputs);
  // The common cases: one input or two, one output.
  EntryBuilder(const char* op, const Tensor& input, const Tensor& output);
  EntryBuilder(const char* op, const Tensor& a, const Tensor& b, const Tensor& output);
  ~EntryBuilder();
  EntryBuilder(const EntryBuilder&) = delete;
  EntryBuilder& operator=(const EntryBuilder&) = delete;
  // The entry's rules (empty until placed): the op-composed one, and the optional raw one.
  Closure& backward() { return *backward_; }
  Closure& raw_backward() { return *raw_backward_; }
  // Set instead of raw_backward().invoke when the raw rule works in place (its state is
  // raw_backward().self).
  InPlaceFn& raw_in_place() { return *raw_in_place_; }

 private:
  void set_rules(TapeNode& node);
  void keep_for_release();  // the entry owns something release must destroy
  TapeNode* node_;
  bool holds_resources_;
  Closure* backward_;
  Closure* raw_backward_;
  InPlaceFn* raw_in_place_;
};

// The entry of an op with one output, through the constructor for its number of inputs.
inline EntryBuilder single_output_entry(const char* op, const Inputs& inputs, Tensor& output) {
  if (inputs.size() == 1) return EntryBuilder(op, inputs[0], output);
  if (inputs.size() == 2) return EntryBuilder(op, inputs[0], inputs[1], output);
  return EntryBuilder(op, inputs, std::span<Tensor>(&output, 1));
}

// Entries that own nothing (affine's closure holds a double) are never visited by release.
// Then the tape may release itself: the entry's outputs may already be dropped.
inline EntryBuilder::~EntryBuilder() {
  if (holds_resources_ || backward_->destroy != nullptr || raw_backward_->destroy != nullptr)
    keep_for_release();
  --t_engine.busy;
  if (t_engine.live == 0) [[unlikely]]
    tape_unreachable();
}

template <class F>
constexpr void check_single_output_rule() {
  static_assert(std::is_invocable_r_v<Grads, F&, const Tensor&, Needs>,
                "backward must be callable as Grads(const Tensor& g, Needs needs)");
}

}  // namespace detail

class Tape {
 public:
  static Tape& current() {  // this thread's tape
    if (Tape* tape = detail::t_engine.tape) [[likely]]
      return *tape;
    return create_current();
  }

  std::size_t size() const { return nodes_.size(); }
  uint64_t generation() const { return generation_; }
  // Drops every entry; tensors they produced become stale (GraphError if a backward needs them).
  void release();

 private:
  Tape();
  ~Tape();
  static Tape& create_current();
  friend struct TapeAccess;
  std::vector<detail::TapeNode*> nodes_;  // creation order; the entries live in the arena
  std::vector<detail::TapeNode*> owning_;  // the entries whose release has work: handles, heap
  // The leaves that require grad which entries route gradients to, each held once however many
  // entries use it (a parameter used by every step of a loop is one handle, not one per entry,
  // and such entries own nothing release must visit).
  std::vector<Tensor> leaves_;
  detail::TapeArena* arena_;              // owned; entries, their inputs and their closures
  uint64_t generation_;
};

// Grad mode: when off, ops record nothing.
inline bool grad_enabled() { return detail::t_engine.grad_enabled; }

// RAII: no recording in this scope (inference, optimiser updates). Nests.
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

// RAII: recording on in this scope, even inside NoGrad (used by create_graph).
class EnableGrad {
 public:
  EnableGrad();
  ~EnableGrad();
  EnableGrad(const EnableGrad&) = delete;
  EnableGrad& operator=(const EnableGrad&) = delete;

 private:
  bool previous_;
};

// True when a tensor takes part in differentiation (a leaf that requires grad, or a tensor
// with history) and grad mode is on.
inline bool needs_recording(Inputs inputs) {
  if (!grad_enabled()) return false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const detail::TensorImpl* p = detail::impl_of(inputs[i]);
    if (p != nullptr && p->takes_part()) return true;
  }
  return false;
}

// Records an op with several outputs. `backward(grad_outputs, needs)` receives one gradient per
// output (undefined where none flowed) and returns one per input.
template <class F>
std::vector<Tensor> record_multi(const char* op, std::vector<Tensor> inputs,
                                 std::vector<Tensor> outputs, F&& backward) {
  static_assert(std::is_invocable_r_v<Grads, std::decay_t<F>&, std::span<const Tensor>, Needs>,
                "backward must be callable as Grads(std::span<const Tensor> g, Needs needs)");
  if (!needs_recording(inputs)) return outputs;
  detail::EntryBuilder entry(op, inputs, outputs);
  detail::place_closure(std::forward<F>(backward), entry.backward());
  return outputs;
}

// Records an op with one output; `backward(g, needs)` returns one gradient per input. The
// optional `raw_backward` (same signature) is a first-order-only rule, e.g. a fused kernel.
template <class F>
Tensor record(const char* op, Inputs inputs, Tensor output, F&& backward) {
  detail::check_single_output_rule<std::decay_t<F>>();
  if (!needs_recording(inputs)) return output;
  {
    detail::EntryBuilder entry = detail::single_output_entry(op, inputs, output);
    detail::place_closure(detail::single_output(std::forward<F>(backward)), entry.backward());
  }
  return output;
}

template <class F, class R>
Tensor record(const char* op, Inputs inputs, Tensor output, F&& backward, R&& raw_backward) {
  detail::check_single_output_rule<std::decay_t<F>>();
  detail::check_single_output_rule<std::decay_t<R>>();
  if (!needs_recording(inputs)) return output;
  {
    detail::EntryBuilder entry = detail::single_output_entry(op, inputs, output);
    detail::place_closure(detail::single_output(std::forward<F>(backward)), entry.backward());
    detail::place_closure(detail::single_output(std::forward<R>(raw_backward)),
                          entry.raw_backward());
  }
  return output;
}

namespace detail {

// The entry of an elementwise op, attached to `output` (which the caller then returns, so
// the compiler constructs it in place: no handle moves). The caller has checked
// needs_recording. record_elementwise / record_pass_through below are these with the check.
template <class F, class R>
void attach_elementwise(const char* op, const Tensor& input, const Tensor& output, F&& backward,
                        R&& in_place) {
  check_single_output_rule<std::decay_t<F>>();
  static_assert(std::is_invocable_v<std::decay_t<R>&, std::span<double>>,
                "in_place must be callable as void(std::span<double> g)");
  EntryBuilder entry(op, input, output);
  place_rule_pair(
      std::forward<F>(backward),
      [rule = std::forward<R>(in_place)](size_t, std::span<double> g) mutable { rule(g); },
      entry.backward(), entry.raw_backward(), entry.raw_in_place());
}

template <class F, class R>
void attach_elementwise(const char* op, const Tensor& a, const Tensor& b, const Tensor& output,
                        F&& backward, R&& in_place) {
  check_single_output_rule<std::decay_t<F>>();
  static_assert(std::is_invocable_v<std::decay_t<R>&, size_t, std::span<double>>,
                "in_place must be callable as void(size_t input, std::span<double> g)");
  EntryBuilder entry(op, a, b, output);
  place_rule_pair(std::forward<F>(backward), std::forward<R>(in_place), entry.backward(),
                  entry.raw_backward(), entry.raw_in_place());
}

template <class F>
void attach_pass_through(const char* op, const Tensor& a, const Tensor& b, const Tensor& output,
                         F&& backward) {
  check_single_output_rule<std::decay_t<F>>();
  EntryBuilder entry(op, a, b, output);
  place_closure(single_output(std::forward<F>(backward)), entry.backward());
  entry.raw_in_place() = &pass_through;
}

}  // namespace detail

// Records an elementwise op of one input whose raw first-order rule `in_place(std::span<double>
// g)` turns dL/dout into dL/dx in place (see the top of this file). It must compute the same
// bits as `backward`, the composed rule used under create_graph.
template <class F, class R>
Tensor record_elementwise(const char* op, const Tensor& input, Tensor output, F&& backward,
                          R&& in_place) {
  if (needs_recording({input}))
    detail::attach_elementwise(op, input, output, std::forward<F>(backward),
                               std::forward<R>(in_place));
  return output;
}

// The same for an op of two inputs, both of the output's shape: `in_place(size_t input,
// std::span<double> g)` turns dL/dout into dL/d(input) in place. The engine gives each input
// that needs a gradient its own buffer (a copy for all but the last).
template <class F, class R>
Tensor record_elementwise(const char* op, const Tensor& a, const Tensor& b, Tensor output,
                          F&& backward, R&& in_place) {
  if (needs_recording({a, b}))
    detail::attach_elementwise(op, a, b, output, std::forward<F>(backward),
                               std::forward<R>(in_place));
  return output;
}

// Records an op of two inputs of the output's shape whose gradient is the output's for both
// (a + b): a plain backward passes the incoming gradient on as it is, with no rule called and
// no gradient list built. `backward` is the composed rule, used under create_graph.
template <class F>
Tensor record_pass_through(const char* op, const Tensor& a, const Tensor& b, Tensor output,
                           F&& backward) {
  if (needs_recording({a, b})) detail::attach_pass_through(op, a, b, output, std::forward<F>(backward));
  return output;
}

// Gradients of sum_i <seeds_i, outputs_i> with respect to `inputs`, without touching .grad().
// Seeds default to ones for scalar outputs. With create_graph the returned gradients have
// history themselves, so they can be differentiated again.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const GradOptions& options = {}, const std::vector<Tensor>& seeds = {});

}  // namespace cholla
