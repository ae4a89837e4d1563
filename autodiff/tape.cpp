// The tape's structure: the per-thread arena, entries (EntryBuilder), the live count and the
// release. The backward sweep over the entries is backward.cpp.
#include "autodiff/tape.hpp"

#include <algorithm>
#include <atomic>
#include <memory>

#include "autodiff/detail/ownership.hpp"
#include "autodiff/detail/tape_node.hpp"

namespace cholla {

using detail::TensorImpl;

namespace detail {
thread_local constinit ThreadEngineState t_engine;
thread_local constinit ArenaCursor t_arena;
}  // namespace detail

using detail::t_arena;
using detail::t_engine;

// A chunked bump allocator. Chunks are kept across releases (a training loop reuses the same
// memory every step); only chunks beyond kKeptBytes are returned to the system. The bump
// cursor itself is the thread-local t_arena (one arena per thread), so that allocation inlines
// (tape.hpp, detail::arena_allocate); this class only moves it from chunk to chunk.
class detail::TapeArena {
 public:
  // Called when the current chunk cannot hold `bytes` at `align`.
  void* allocate_in_next_chunk(std::size_t bytes, std::size_t align) {
    advance(bytes + align);
    const uintptr_t p = align_up(reinterpret_cast<uintptr_t>(t_arena.cursor), align);
    t_arena.cursor = reinterpret_cast<char*>(p + bytes);
    return reinterpret_cast<void*>(p);
  }

  // Forgets every allocation; keeps up to kKeptBytes of chunks for the next tape.
  void reset() {
    std::size_t kept = 0, keep = 0;
    while (keep < chunks_.size() && kept + chunks_[keep].size <= kKeptBytes)
      kept += chunks_[keep++].size;
    chunks_.resize(keep);
    t_arena = {};
  }

 private:
  static constexpr std::size_t kChunkBytes = 64u << 10;
  static constexpr std::size_t kKeptBytes = 64u << 20;
  struct Chunk {
    std::unique_ptr<char[]> memory;
    std::size_t size;
  };

  static uintptr_t align_up(uintptr_t p, std::size_t align) {
    return (p + align - 1) & ~(static_cast<uintptr_t>(align) - 1);
  }

  // Moves to the next kept chunk (dropping one too small for `need`), or a new one.
  void advance(std::size_t need) {
    const size_t next = t_arena.cursor == nullptr ? 0 : current_ + 1;
    while (next < chunks_.size() && chunks_[next].size < need)
      chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(next));
    if (next == chunks_.size()) {
      const std::size_t size = std::max(kChunkBytes, need);
      chunks_.push_back({std::make_unique_for_overwrite<char[]>(size), size});
    }
    current_ = next;
    t_arena.cursor = chunks_[next].memory.get();
    t_arena.end = t_arena.cursor + chunks_[next].size;
  }

  std::vector<Chunk> chunks_;
  size_t current_ = 0;
};

namespace {

thread_local constinit bool t_tape_alive = false;  // between this thread's Tape() and ~Tape()

// Generations are unique across threads, so a tensor recorded on another thread's tape (or on
// a released one) is recognised as stale rather than mistaken for an entry of this tape.
uint64_t next_generation() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

}  // namespace

void detail::release_if_unreachable() {
  if (t_engine.live == 0 && t_engine.busy == 0 && t_tape_alive && Tape::current().size() > 0)
    Tape::current().release();
}

Tape::Tape() : arena_(new detail::TapeArena), generation_(next_generation()) {
  t_engine.tape_generation = generation_;
  t_engine.live = 0;
  t_engine.tape = this;
  t_tape_alive = true;
}

Tape::~Tape() {
  release();
  delete arena_;
  t_tape_alive = false;
  t_engine.tape = nullptr;
  t_engine.tape_generation = 0;  // no tensor has history of generation 0: no more counting
}

Tape& Tape::create_current() {
  thread_local Tape tape;
  return tape;
}

void Tape::release() {
  // New generation first: every tensor with history of the old one is stale from here on, so
  // the handles destroyed below do no live-count bookkeeping.
  generation_ = next_generation();
  t_engine.tape_generation = generation_;
  t_engine.live = 0;
  // Only entries that own something are visited. Their gradient slots are empty: a sweep
  // clears every slot it reads, no slot above the sweep's start ever receives a gradient, and
  // a failed or partial sweep clears them all (clear_grad_outputs).
  nodes_.clear();  // first: a destructor below must not find entries to release again
  std::vector<Node*> owning;
  owning.swap(owning_);
  for (size_t k = owning.size(); k-- > 0;) {
    Node& node = *owning[k];
    if (node.backward.destroy != nullptr) node.backward.destroy(node.backward.self);
    if (node.raw_backward.destroy != nullptr) node.raw_backward.destroy(node.raw_backward.self);
    std::destroy_n(node.inputs, node.num_inputs);
    std::destroy_n(node.output_shapes, node.num_outputs);
  }
  owning.clear();
  if (owning_.empty()) owning_.swap(owning);  // keep the capacity for the next tape
  std::vector<Tensor> leaves;
  leaves.swap(leaves_);
  leaves.clear();  // may destroy leaves the user dropped (no history: no live-count effect)
  if (leaves_.empty()) leaves_.swap(leaves);
  arena_->reset();
  detail::reconcile_dropped_elsewhere();  // once per step: this thread's tensors dropped elsewhere
}

namespace detail {

void* arena_allocate_slow(std::size_t bytes, std::size_t align) {
  return TapeAccess::arena(Tape::current()).allocate_in_next_chunk(bytes, align);
}

namespace {

// The place of leaf `t` in the tape's table of held leaves, adding it on first use. A leaf
// this thread owns remembers its place (TensorImpl::output, unused by leaves) as a hint,
// checked against the table, so a stale hint from an earlier tape just adds it again. Another
// thread's leaf is added on every use: its hint is that thread's to read and write. Holding a
// leaf is no claim on the tape: it has no history (no adoption, no live count).
[[gnu::always_inline]] inline int64_t hold_leaf(Tape& tape, const Tensor& t, TensorImpl* p) {
  std::vector<Tensor>& leaves = TapeAccess::leaves(tape);
  const bool own = p->owned_by_this_thread();
  if (own) {
    const auto hint = static_cast<size_t>(p->output);
    if (hint < leaves.size() && detail::impl_of(leaves[hint]) == p) [[likely]]
      return static_cast<int64_t>(hint);
  }
  leaves.push_back(t);
  const auto place = static_cast<int32_t>(leaves.size() - 1);
  if (own) p->output = place;
  return place;
}

// Where input `t` of a new entry of `tape` sends its gradient.
[[gnu::always_inline]] inline void route_input(Tape& tape, const Tensor& t, InputRoute& route,
                                               Needs& needs, size_t i, bool& holds) {
  TensorImpl* p = detail::impl_of(t);
  if (p == nullptr || !p->takes_part()) return;
  if (i < 64) needs.bits |= 1ULL << i;
  if (p->generation == tape.generation()) [[likely]] {
    route.kind = InputRoute::Entry;
    route.node = p->node;
    route.output = p->output;
  } else if (p->generation == 0) {
    route.kind = InputRoute::Leaf;
    route.node = hold_leaf(tape, t, p);
  } else {
    // A tensor of another tape, held for the error message: it has no history here, so
    // holding it is no claim on this tape (no adoption).
    route.kind = InputRoute::Stale;
    route.held = t;
    holds = true;
  }
}

// Places an empty entry with room for its inputs' routes, gradient slots and output shapes
// (one arena block) and appends it to the tape.
[[gnu::always_inline]] inline Node* place_entry(Tape& tape, const char* op, size_t num_inputs,
                                                size_t num_outputs) {
  static_assert(sizeof(Node) % alignof(InputRoute) == 0 && sizeof(InputRoute) % alignof(Tensor) == 0 &&
                sizeof(Tensor) % alignof(Shape) == 0);
  auto* node = static_cast<Node*>(arena_allocate(
      sizeof(Node) + sizeof(InputRoute) * num_inputs + (sizeof(Tensor) + sizeof(Shape)) * num_outputs,
      alignof(Node)));
  node->op = op;
  node->inputs = reinterpret_cast<InputRoute*>(node + 1);
  node->grad_outputs = reinterpret_cast<Tensor*>(node->inputs + num_inputs);
  node->output_shapes = reinterpret_cast<Shape*>(node->grad_outputs + num_outputs);
  node->num_inputs = static_cast<uint32_t>(num_inputs);
  node->num_outputs = static_cast<int32_t>(num_outputs);
  node->needs = Needs{0};
  node->holds_resources = false;
  node->backward = {};
  node->raw_backward = {};
  node->raw_in_place = nullptr;
  TapeAccess::nodes(tape).push_back(node);
  return node;
}

// Gives the fresh output j of entry `index` its place on the tape. The caller holds it, so it
// is a live tensor with history from here on.
[[gnu::always_inline]] inline void place_output(const Tape& tape, Node& node, int64_t index,
                                                size_t j, const Tensor& output) {
  TensorImpl& impl = *detail::impl_of(output);
  impl.generation = tape.generation();
  impl.node = index;
  impl.output = static_cast<int32_t>(j);
  const int32_t handles = impl.handle_count();  // -1: another thread's, counted as external
  if (handles < 0 || handles > impl.tape_refs) ++t_engine.live;
  new (node.grad_outputs + j) Tensor();
  new (node.output_shapes + j) Shape(impl.shape);
  if (impl.shape.size() > Shape::kInline) node.holds_resources = true;
}

}  // namespace

// Routes come before the outputs get their place: an input is never one of the fresh outputs.
EntryBuilder::EntryBuilder(const char* op, const Inputs& inputs, std::span<Tensor> outputs) {
  ++t_engine.busy;
  Tape& tape = Tape::current();
  Node* node = place_entry(tape, op, inputs.size(), outputs.size());
  for (size_t i = 0; i < inputs.size(); ++i)
    route_input(tape, inputs[i], *new (node->inputs + i) InputRoute(), node->needs, i,
                node->holds_resources);
  const auto index = static_cast<int64_t>(tape.size()) - 1;
  for (size_t j = 0; j < outputs.size(); ++j) place_output(tape, *node, index, j, outputs[j]);
  set_rules(*node);
}

EntryBuilder::EntryBuilder(const char* op, const Tensor& input, const Tensor& output) {
  ++t_engine.busy;
  Tape& tape = Tape::current();
  Node* node = place_entry(tape, op, 1, 1);
  route_input(tape, input, *new (node->inputs) InputRoute(), node->needs, 0, node->holds_resources);
  place_output(tape, *node, static_cast<int64_t>(tape.size()) - 1, 0, output);
  set_rules(*node);
}

EntryBuilder::EntryBuilder(const char* op, const Tensor& a, const Tensor& b, const Tensor& output) {
  ++t_engine.busy;
  Tape& tape = Tape::current();
  Node* node = place_entry(tape, op, 2, 1);
  route_input(tape, a, *new (node->inputs) InputRoute(), node->needs, 0, node->holds_resources);
  route_input(tape, b, *new (node->inputs + 1) InputRoute(), node->needs, 1, node->holds_resources);
  place_output(tape, *node, static_cast<int64_t>(tape.size()) - 1, 0, output);
  set_rules(*node);
}

void EntryBuilder::set_rules(TapeNode& node) {
  node_ = &node;
  holds_resources_ = node.holds_resources;
  backward_ = &node.backward;
  raw_backward_ = &node.raw_backward;
  raw_in_place_ = &node.raw_in_place;
}

void EntryBuilder::keep_for_release() { TapeAccess::owning(Tape::current()).push_back(node_); }

void tape_unreachable() { release_if_unreachable(); }

void pass_through(void*, size_t, std::span<double>) {}  // a marker: the sweep never calls it

void adopt_into_tape(TensorImpl* p) {
  ++p->tape_refs;
  if (p->handle_count() == p->tape_refs && --t_engine.live == 0)
    release_if_unreachable();  // deferred while busy: an entry is being built
}

}  // namespace detail

NoGrad::NoGrad() : previous_(t_engine.grad_enabled) { t_engine.grad_enabled = false; }
NoGrad::~NoGrad() { t_engine.grad_enabled = previous_; }
EnableGrad::EnableGrad() : previous_(t_engine.grad_enabled) { t_engine.grad_enabled = true; }
EnableGrad::~EnableGrad() { t_engine.grad_enabled = previous_; }

}  // namespace cholla
