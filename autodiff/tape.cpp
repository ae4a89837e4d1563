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

// One entry. Everything it points at lives in the tape's arena.
struct detail::TapeNode {
  const char* op;
  Tensor* inputs;        // num_inputs handles held by the tape
  Tensor* grad_outputs;  // num_outputs slots, filled during a backward sweep, then cleared
  uint32_t num_inputs;
  int32_t num_outputs;
  detail::Closure backward;      // op-composed rule (differentiable: used under create_graph)
  detail::Closure raw_backward;  // optional first-order rule (invoke == nullptr when none)
};

using Node = detail::TapeNode;

// The engine's access to the tape's private parts.
struct TapeAccess {
  static std::vector<Node*>& nodes(Tape& t) { return t.nodes_; }
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
thread_local constinit int32_t t_busy = 0;  // > 0 inside record or a backward sweep

// RAII: the tape must not release itself while an entry is being built or swept.
class BusyScope {
 public:
  BusyScope() { ++t_busy; }
  ~BusyScope() { --t_busy; }
  BusyScope(const BusyScope&) = delete;
  BusyScope& operator=(const BusyScope&) = delete;
};

void release_if_unreachable() {
  if (t_engine.live == 0 && t_busy == 0 && t_tape_alive && Tape::current().size() > 0)
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
void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
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

bool takes_part(const Tensor& t) {
  const TensorImpl* p = detail::impl_of(t);
  return p != nullptr && p->takes_part();
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
    const std::span<const Tensor> inputs(node.inputs, node.num_inputs);
    Needs needs{0};
    for (size_t i = 0; i < inputs.size() && i < 64; ++i)
      if (takes_part(inputs[i])) needs.bits |= 1ULL << i;
    const char* op = node.op;
    const detail::Closure& rule =
        !t_engine.grad_enabled && node.raw_backward.invoke != nullptr ? node.raw_backward : node.backward;
    if (rule.invoke == nullptr)
      throw InternalError(fmt::format("backward of {}", op), "the entry has no backward rule.");
    Grads grads = rule.invoke(rule.self, grad_outputs, needs);
    for (Tensor& g : grad_outputs) g = Tensor();
    if (grads.size() != inputs.size())
      throw InternalError(fmt::format("backward of {}", op),
                          fmt::format("returned {} gradients for {} inputs.", grads.size(),
                                      inputs.size()));
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& g = grads[i];
      const Tensor& input = inputs[i];
      if (!g.defined() || !takes_part(input)) continue;
      if (g.shape() != input.shape())
        throw ShapeError(fmt::format("backward of {}", op),
                         fmt::format("the gradient for input {} has shape {} but the input has "
                                     "shape {}; a backward rule must return one gradient of its "
                                     "input's shape (sum over broadcast dimensions).",
                                     i, format_shape(g.shape()), format_shape(input.shape())),
                         "", {g.shape(), input.shape()});
      TensorImpl& in = *detail::impl_of(input);
      if (has_history(in)) {
        if (in.generation != tape.generation()) throw_stale(in);
        accumulate(output_slot(TapeAccess::node(tape, in.node), in.output), g);
      } else if (captured != nullptr) {
        if (in.capture_slot >= 0) accumulate((*captured)[static_cast<size_t>(in.capture_slot)], g);
      } else {
        // Without create_graph nothing here has history; with it, .grad() keeps its history.
        accumulate(in.grad, g);
      }
    }
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
  std::vector<Node*> nodes;
  nodes.swap(nodes_);
  for (size_t k = nodes.size(); k-- > 0;) {
    Node& node = *nodes[k];
    if (node.backward.destroy != nullptr) node.backward.destroy(node.backward.self);
    if (node.raw_backward.destroy != nullptr) node.raw_backward.destroy(node.raw_backward.self);
    std::destroy_n(node.inputs, node.num_inputs);
    std::destroy_n(node.grad_outputs, node.num_outputs);
  }
  nodes.clear();
  if (nodes_.empty()) nodes_.swap(nodes);  // keep the index's capacity for the next tape
  arena_->reset();
  detail::reconcile_dropped_elsewhere();  // once per step: this thread's tensors dropped elsewhere
}

namespace detail {

void* arena_allocate_slow(std::size_t bytes, std::size_t align) {
  return TapeAccess::arena(Tape::current()).allocate_in_next_chunk(bytes, align);
}

EntryBuilder::EntryBuilder(const char* op, const Inputs& inputs, std::span<Tensor> outputs) {
  ++t_busy;
  Tape& tape = Tape::current();
  // One block: the entry, then its input handles, then its gradient slots.
  static_assert(sizeof(Node) % alignof(Tensor) == 0);
  auto* node = static_cast<Node*>(arena_allocate(
      sizeof(Node) + sizeof(Tensor) * (inputs.size() + outputs.size()), alignof(Node)));
  node->op = op;
  node->num_inputs = static_cast<uint32_t>(inputs.size());
  node->num_outputs = static_cast<int32_t>(outputs.size());
  node->backward = {};
  node->raw_backward = {};
  backward_ = &node->backward;
  raw_backward_ = &node->raw_backward;
  std::vector<Node*>& nodes = TapeAccess::nodes(tape);
  nodes.push_back(node);
  const auto index = static_cast<int64_t>(nodes.size()) - 1;
  for (size_t j = 0; j < outputs.size(); ++j) {
    // Outputs are fresh tensors made by the op; give each its place on the tape. The caller
    // holds them, so each is a live tensor with history from here on.
    TensorImpl& impl = *detail::impl_of(outputs[j]);
    impl.generation = tape.generation();
    impl.node = index;
    impl.output = static_cast<int32_t>(j);
    const int32_t handles = impl.handle_count();  // -1: another thread's, counted as external
    if (handles < 0 || handles > impl.tape_refs) ++t_engine.live;
  }
  node->inputs = reinterpret_cast<Tensor*>(node + 1);
  {
    AdoptionScope adopting;  // the tape's own handles do not keep it alive
    for (size_t i = 0; i < inputs.size(); ++i) new (node->inputs + i) Tensor(inputs[i]);
  }
  node->grad_outputs = node->inputs + inputs.size();
  for (size_t j = 0; j < outputs.size(); ++j) new (node->grad_outputs + j) Tensor();
}

EntryBuilder::~EntryBuilder() {
  --t_busy;
  release_if_unreachable();
}

void note_external_handle_gained(TensorImpl*) { ++t_engine.live; }

void note_external_handle_lost(TensorImpl*) {
  if (--t_engine.live == 0) release_if_unreachable();
}

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
