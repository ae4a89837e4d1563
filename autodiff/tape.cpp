#include "autodiff/tape.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <fmt/format.h>

#include "autodiff/detail/ownership.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"

namespace cholla {

using detail::TensorImpl;

namespace detail {
thread_local constinit ThreadEngineState t_engine;
thread_local constinit ArenaCursor t_arena;
}  // namespace detail

using detail::t_arena;
using detail::t_engine;

// Where the gradient for one input of an entry goes, decided when the entry is recorded. The
// entry holds no handle to an input with history: it needs only that input's place on the
// tape, so an intermediate the user drops is freed at once (a 10,000-op chain then recycles a
// few TensorImpls in L1 instead of keeping 10,000 of them, 2.5 MB, alive until the release).
struct InputRoute {
  enum Kind : uint8_t {
    None,   // takes no part in differentiation: no gradient
    Entry,  // has history of this tape: the gradient goes to entry `node`'s slot `output`
    Leaf,   // a leaf that requires grad: the gradient goes to `held`'s .grad() (or grad()'s capture)
    Stale,  // has history of a released or another thread's tape: a GraphError if reached
  };
  Tensor held;  // Leaf and Stale only
  int64_t node = -1;
  int32_t output = 0;
  Kind kind = None;
};

// One entry. Everything it points at lives in the tape's arena, in the same block.
struct detail::TapeNode {
  const char* op;
  InputRoute* inputs;    // num_inputs routes
  Tensor* grad_outputs;  // num_outputs slots, filled during a backward sweep, then cleared
  Shape* output_shapes;  // num_outputs: what a gradient arriving in each slot must look like
  uint32_t num_inputs;
  int32_t num_outputs;
  Needs needs;                   // inputs that take part, fixed when the entry is recorded
  bool holds_resources;          // a held route or a shape on the heap: release must visit it
  detail::Closure backward;      // op-composed rule (differentiable: used under create_graph)
  detail::Closure raw_backward;  // optional first-order rule (invoke == nullptr when none)
  detail::InPlaceFn raw_in_place;  // or an in-place one (record_elementwise), on raw_backward.self
};

using Node = detail::TapeNode;

// The engine's access to the tape's private parts.
struct TapeAccess {
  static std::vector<Node*>& nodes(Tape& t) { return t.nodes_; }
  static std::vector<Node*>& owning(Tape& t) { return t.owning_; }
  static Node& node(Tape& t, int64_t index) { return *t.nodes_[static_cast<size_t>(index)]; }
  static detail::TapeArena& arena(Tape& t) { return *t.arena_; }
};

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

thread_local constinit bool t_tape_alive = false;

// RAII: the tape must not release itself while an entry is being built or swept.
class BusyScope {
 public:
  BusyScope() { ++t_engine.busy; }
  ~BusyScope() { --t_engine.busy; }
  BusyScope(const BusyScope&) = delete;
  BusyScope& operator=(const BusyScope&) = delete;
};

void release_if_unreachable() {
  if (t_engine.live == 0 && t_engine.busy == 0 && t_tape_alive && Tape::current().size() > 0)
    Tape::current().release();
}

// Generations are unique across threads, so a tensor recorded on another thread's tape (or on
// a released one) is recognised as stale rather than mistaken for an entry of this tape.
uint64_t next_generation() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

bool has_history(const TensorImpl& t) { return t.generation != 0; }

[[noreturn]] void throw_stale(const TensorImpl& t) {
  throw GraphError("backward",
                   fmt::format("a tensor of shape {} was produced by an op whose tape entry has "
                               "been released (by an earlier backward() without retain_graph, "
                               "or it was recorded on another thread). Recompute it, or pass "
                               "{{.retain_graph = true}} to the earlier backward.",
                               format_shape(t.shape)));
}

// slot += g. The first gradient is shared, not copied. Later ones are added in place when
// nobody else can see the slot's values and the addition is not being recorded; otherwise (a
// shared buffer, or create_graph, where the sum needs history) through the add op.
// The first gradient of a slot: taken over, not copied.
template <class G>
void accumulate(Tensor& slot, G&& g) {
  if (!slot.defined()) {
    slot = std::forward<G>(g);
    return;
  }
  TensorImpl& s = *detail::impl_of(slot);
  if (!t_engine.grad_enabled && s.owns_values_alone() && s.generation == 0 && s.shape == g.shape()) {
    const double* src = detail::impl_of(g)->data;
    double* dst = s.data;
    for (int64_t i = 0; i < s.size; ++i) dst[i] += src[i];
    return;
  }
  slot = slot + g;
}

Tensor& output_slot(Node& node, int32_t j) { return node.grad_outputs[j]; }

[[noreturn]] void throw_gradient_shape(const char* op, size_t i, const Shape& got,
                                       const Shape& expected) {
  throw ShapeError(fmt::format("backward of {}", op),
                   fmt::format("the gradient for input {} has shape {} but the input has shape "
                               "{}; a backward rule must return one gradient of its input's "
                               "shape (sum over broadcast dimensions).",
                               i, format_shape(got), format_shape(expected)),
                   "", {got, expected});
}

// Hands one input's gradient on to where its route points.
void route_gradient(Tape& tape, const char* op, size_t i, const InputRoute& route, Tensor&& g,
                    std::vector<Tensor>* captured) {
  const Shape& shape = detail::impl_of(g)->shape;
  switch (route.kind) {
    case InputRoute::None: return;
    case InputRoute::Entry: {
      Node& producer = TapeAccess::node(tape, route.node);
      const Shape& expected = producer.output_shapes[route.output];
      if (shape != expected) throw_gradient_shape(op, i, shape, expected);
      accumulate(output_slot(producer, route.output), std::move(g));
      return;
    }
    case InputRoute::Leaf: {
      TensorImpl& leaf = *detail::impl_of(route.held);
      if (shape != leaf.shape) throw_gradient_shape(op, i, shape, leaf.shape);
      if (captured == nullptr)
        accumulate(leaf.grad, std::move(g));  // with create_graph, .grad() keeps its history
      else if (leaf.capture_slot >= 0)
        accumulate((*captured)[static_cast<size_t>(leaf.capture_slot)], std::move(g));
      return;
    }
    case InputRoute::Stale: throw_stale(*detail::impl_of(route.held));
  }
}

// The raw step of an elementwise entry (record_elementwise, record_pass_through): each input
// that takes part gets the incoming gradient (copies of the handle for a pass-through,
// rewritten copies otherwise), the last one the gradient's own buffer.
// The gradient in `g` as a buffer nobody else sees: g itself if it is, else a copy.
Tensor& owned_alone(Tensor& g) {
  const TensorImpl* p = detail::impl_of(g);
  if (!p->owns_values_alone() || p->generation != 0)
    g = g.clone();  // someone else sees these values (a seed, a .grad(), a slot)
  return g;
}

void rewrite_in_place(const Node& node, size_t input, Tensor& g) {
  TensorImpl* p = detail::impl_of(g);
  node.raw_in_place(node.raw_backward.self, input, {p->data, static_cast<size_t>(p->size)});
}

void hand_on_in_place(Tape& tape, Node& node, std::vector<Tensor>* captured) {
  Tensor g = std::move(node.grad_outputs[0]);
  if (node.num_inputs == 1) {  // the common case, without the loops below
    rewrite_in_place(node, 0, owned_alone(g));
    route_gradient(tape, node.op, 0, node.inputs[0], std::move(g), captured);
    return;
  }
  size_t last = node.num_inputs;
  for (size_t i = 0; i < node.num_inputs; ++i)
    if (node.inputs[i].kind != InputRoute::None) last = i;
  const bool pass = node.raw_in_place == &detail::pass_through;
  for (size_t i = 0; i < node.num_inputs; ++i) {
    if (node.inputs[i].kind == InputRoute::None) continue;
    Tensor gi = i != last ? (pass ? g : g.clone()) : std::move(g);
    if (!pass) rewrite_in_place(node, i, owned_alone(gi));
    route_gradient(tape, node.op, i, node.inputs[i], std::move(gi), captured);
  }
}

// Reverse sweep over the entries top, top-1, ..., bottom. Leaves receive gradients either in
// .grad() or, when they carry a capture slot, in `captured`.
void sweep(Tape& tape, int64_t top, int64_t bottom, std::vector<Tensor>* captured) {
  for (int64_t k = top; k >= bottom; --k) {
    // Entries live in the arena: `node` stays put even if this backward appends entries.
    Node& node = TapeAccess::node(tape, k);
    const std::span<Tensor> grad_outputs(node.grad_outputs, static_cast<size_t>(node.num_outputs));
    bool any = false;
    for (const Tensor& g : grad_outputs) any = any || g.defined();
    if (!any) continue;
    const char* op = node.op;
    if (!t_engine.grad_enabled && node.raw_in_place != nullptr) {
      hand_on_in_place(tape, node, captured);
      continue;
    }
    const detail::Closure& rule =
        !t_engine.grad_enabled && node.raw_backward.invoke != nullptr ? node.raw_backward : node.backward;
    if (rule.invoke == nullptr)
      throw InternalError(fmt::format("backward of {}", op), "the entry has no backward rule.");
    Grads grads = rule.invoke(rule.self, grad_outputs, node.needs);
    for (Tensor& g : grad_outputs) g = Tensor();
    if (grads.size() != node.num_inputs)
      throw InternalError(fmt::format("backward of {}", op),
                          fmt::format("returned {} gradients for {} inputs.", grads.size(),
                                      node.num_inputs));
    for (size_t i = 0; i < grads.size(); ++i)
      if (grads[i].defined()) route_gradient(tape, op, i, node.inputs[i], std::move(grads[i]), captured);
  }
}

void clear_grad_outputs(Tape& tape) {
  for (Node* node : TapeAccess::nodes(tape))
    for (int32_t j = 0; j < node->num_outputs; ++j) node->grad_outputs[j] = Tensor();
}

// Plants a seed at the entry that produced `output`; returns that entry's index, or -1 when
// `output` is a leaf (then the seed is the leaf's own gradient).
int64_t plant_seed(Tape& tape, const Tensor& output, const Tensor& seed) {
  const TensorImpl& o = *detail::impl_of(output);
  if (!has_history(o)) return -1;
  if (o.generation != tape.generation()) throw_stale(o);
  accumulate(output_slot(TapeAccess::node(tape, o.node), o.output), seed);
  return o.node;
}

Tensor default_seed(const Tensor& output, const char* op) {
  if (output.numel() != 1)
    throw GraphError(op,
                     fmt::format("the output has shape {}, not one element; backward() needs a "
                                 "scalar, or pass a seed tensor of the output's shape.",
                                 format_shape(output.shape())),
                     "", {output.shape()});
  return Tensor::ones(output.shape());
}

void check_seed(const Tensor& output, const Tensor& seed, const char* op) {
  if (!seed.defined() || seed.shape() != output.shape())
    throw ShapeError(op,
                     fmt::format("the seed has shape {} but the output has shape {}.",
                                 seed.defined() ? format_shape(seed.shape()) : "undefined",
                                 format_shape(output.shape())),
                     "seed", {seed.defined() ? seed.shape() : Shape{}, output.shape()});
}

void require_defined(const Tensor& t, const char* op, const char* what) {
  if (!t.defined())
    throw GraphError(op, fmt::format("{} is an undefined tensor.", what));
}

}  // namespace

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
  arena_->reset();
  detail::reconcile_dropped_elsewhere();  // once per step: this thread's tensors dropped elsewhere
}

namespace detail {

void* arena_allocate_slow(std::size_t bytes, std::size_t align) {
  return TapeAccess::arena(Tape::current()).allocate_in_next_chunk(bytes, align);
}

namespace {

// Where input `t` of a new entry of `tape` sends its gradient.
[[gnu::always_inline]] inline void route_input(const Tape& tape, const Tensor& t,
                                               InputRoute& route, Needs& needs, size_t i,
                                               bool& holds) {
  const TensorImpl* p = detail::impl_of(t);
  if (p == nullptr || !p->takes_part()) return;
  if (i < 64) needs.bits |= 1ULL << i;
  if (p->generation == tape.generation()) [[likely]] {
    route.kind = InputRoute::Entry;
    route.node = p->node;
    route.output = p->output;
  } else {
    // A leaf, or a tensor of another tape. Neither has history here, so holding it is not a
    // claim on this tape (no adoption).
    route.kind = p->generation == 0 ? InputRoute::Leaf : InputRoute::Stale;
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

void Tensor::backward() const { backward(BackwardOptions{}); }

void Tensor::backward(const BackwardOptions& options) const {
  require_defined(*this, "backward", "the output");
  backward(default_seed(*this, "backward"), options);
}

void Tensor::backward(const Tensor& seed, const BackwardOptions& options) const {
  require_defined(*this, "backward", "the output");
  check_seed(*this, seed, "backward");
  if (!requires_grad())
    throw GraphError("backward",
                     "the output does not require grad: no input of the computation had "
                     "requires_grad(true), or it was computed under NoGrad.");
  Tape& tape = Tape::current();
  const bool retain = options.retain_graph || options.create_graph;
  try {
    BusyScope busy;
    std::optional<NoGrad> no_grad;
    std::optional<EnableGrad> enable;
    if (options.create_graph) enable.emplace(); else no_grad.emplace();
    const int64_t top = plant_seed(tape, *this, seed);
    if (top < 0) {
      TensorImpl& leaf = *impl();
      accumulate(leaf.grad, seed);
    } else {
      sweep(tape, top, 0, nullptr);
    }
  } catch (...) {
    clear_grad_outputs(tape);
    if (!retain) tape.release();
    throw;
  }
  if (!retain) tape.release();
  else release_if_unreachable();
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const GradOptions& options, const std::vector<Tensor>& seeds) {
  if (!seeds.empty() && seeds.size() != outputs.size())
    throw ShapeError("grad", fmt::format("{} seeds given for {} outputs.", seeds.size(),
                                         outputs.size()));
  Tape& tape = Tape::current();
  std::vector<Tensor> captured(inputs.size());
  std::vector<int64_t> nonleaf_inputs;  // inputs with history: read from their entry
  for (size_t i = 0; i < inputs.size(); ++i) {
    require_defined(inputs[i], "grad", "an input");
    if (!inputs[i].requires_grad())
      throw GraphError("grad", fmt::format("input {} (shape {}) does not require grad.", i,
                                           format_shape(inputs[i].shape())));
  }
  const bool retain = options.retain_graph || options.create_graph;
  std::vector<Tensor> result(inputs.size());
  try {
    BusyScope busy;
    std::optional<NoGrad> no_grad;
    std::optional<EnableGrad> enable;
    if (options.create_graph) enable.emplace(); else no_grad.emplace();
    int64_t top = -1;
    for (size_t j = 0; j < outputs.size(); ++j) {
      require_defined(outputs[j], "grad", "an output");
      Tensor seed = seeds.empty() ? default_seed(outputs[j], "grad") : seeds[j];
      check_seed(outputs[j], seed, "grad");
      if (!outputs[j].requires_grad()) continue;
      const int64_t k = plant_seed(tape, outputs[j], seed);
      if (k < 0) {
        for (size_t i = 0; i < inputs.size(); ++i)
          if (inputs[i].same(outputs[j])) accumulate(result[i], seed);
      }
      top = std::max(top, k);
    }
    // Gradients w.r.t. tensors with history are read off their entry as the sweep passes it:
    // run the sweep down to each such entry in turn, highest first.
    for (size_t i = 0; i < inputs.size(); ++i) {
      TensorImpl& in = *detail::impl_of(inputs[i]);
      if (has_history(in)) {
        if (in.generation != tape.generation()) throw_stale(in);
        nonleaf_inputs.push_back(static_cast<int64_t>(i));
      } else {
        in.capture_slot = static_cast<int32_t>(i);
      }
    }
    std::sort(nonleaf_inputs.begin(), nonleaf_inputs.end(), [&](int64_t a, int64_t b) {
      return detail::impl_of(inputs[static_cast<size_t>(a)])->node >
             detail::impl_of(inputs[static_cast<size_t>(b)])->node;
    });
    int64_t cursor = top;  // the next entry to process
    for (int64_t i : nonleaf_inputs) {
      const TensorImpl& in = *detail::impl_of(inputs[static_cast<size_t>(i)]);
      if (cursor > in.node) {
        sweep(tape, cursor, in.node + 1, &captured);
        cursor = in.node;
      }
      Tensor g = output_slot(TapeAccess::node(tape, in.node), in.output);
      if (g.defined()) accumulate(result[static_cast<size_t>(i)], g);
    }
    if (cursor >= 0) sweep(tape, cursor, 0, &captured);
    for (size_t i = 0; i < inputs.size(); ++i) {
      detail::impl_of(inputs[i])->capture_slot = -1;
      if (captured[i].defined()) accumulate(result[i], captured[i]);
    }
  } catch (...) {
    for (const Tensor& t : inputs)
      if (t.defined()) detail::impl_of(t)->capture_slot = -1;
    clear_grad_outputs(tape);
    if (!retain) tape.release();
    throw;
  }
  clear_grad_outputs(tape);
  if (!retain) tape.release();
  else release_if_unreachable();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (result[i].defined()) continue;
    if (!options.allow_unused)
      throw GraphError("grad",
                       fmt::format("input {} (shape {}) is not used by the outputs; pass "
                                   "{{.allow_unused = true}} to get zeros.",
                                   i, format_shape(inputs[i].shape())));
    result[i] = Tensor::zeros(inputs[i].shape());
  }
  return result;
}

}  // namespace cholla
