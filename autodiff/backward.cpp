// The backward sweep: gradients flow from the seeds down the tape in reverse creation order,
// each entry's rule (raw, in place, or composed) handing its inputs' gradients to where their
// routes point (backward(), grad()).
#include <algorithm>
#include <optional>
#include <fmt/format.h>

#include "autodiff/detail/tape_node.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"

namespace cholla {

using detail::BusyScope;
using detail::release_if_unreachable;
using detail::t_engine;
using detail::TensorImpl;

namespace {

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

// Hands the gradient of an input with history to the slot of the entry that produced it
// (inline: the step a plain backward through a chain takes at every entry).
[[gnu::always_inline]] inline void route_to_entry(Tape& tape, const char* op, size_t i,
                                                  const InputRoute& route, Tensor&& g) {
  Node& producer = TapeAccess::node(tape, route.node);
  const Shape& shape = detail::impl_of(g)->shape;
  const Shape& expected = producer.output_shapes[route.output];
  if (shape != expected) [[unlikely]]
    throw_gradient_shape(op, i, shape, expected);
  Tensor& slot = output_slot(producer, route.output);
  if (!slot.defined()) [[likely]]
    slot = std::move(g);  // the first gradient: taken over
  else
    accumulate(slot, std::move(g));
}

// Hands one input's gradient on to where its route points.
void route_gradient(Tape& tape, const char* op, size_t i, const InputRoute& route, Tensor&& g,
                    std::vector<Tensor>* captured) {
  const Shape& shape = detail::impl_of(g)->shape;
  switch (route.kind) {
    case InputRoute::None: return;
    case InputRoute::Entry: route_to_entry(tape, op, i, route, std::move(g)); return;
    case InputRoute::Leaf: {
      TensorImpl& leaf = *detail::impl_of(TapeAccess::leaves(tape)[static_cast<size_t>(route.node)]);
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
    if (node.inputs[0].kind == InputRoute::Entry)
      route_to_entry(tape, node.op, 0, node.inputs[0], std::move(g));
    else
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
int64_t plant_seed(Tape& tape, const Tensor& output, Tensor&& seed) {
  const TensorImpl& o = *detail::impl_of(output);
  if (!has_history(o)) return -1;  // `seed` untouched
  if (o.generation != tape.generation()) throw_stale(o);
  accumulate(output_slot(TapeAccess::node(tape, o.node), o.output), std::move(seed));
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

namespace {

// The sweep of backward(). `seed` is taken by value: the default seed is moved in, so its
// entry's slot is the only holder of its values and the first in-place rule may rewrite it
// (a caller's seed arrives as a copy of the handle: it is never written).
void run_backward(const Tensor& output, Tensor seed, const BackwardOptions& options) {
  if (!output.requires_grad())
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
    const int64_t top = plant_seed(tape, output, std::move(seed));
    if (top < 0) {
      TensorImpl& leaf = *detail::impl_of(output);
      accumulate(leaf.grad, std::move(seed));  // plant_seed leaves it for a leaf
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

}  // namespace

void Tensor::backward() const { backward(BackwardOptions{}); }

void Tensor::backward(const BackwardOptions& options) const {
  require_defined(*this, "backward", "the output");
  run_backward(*this, default_seed(*this, "backward"), options);
}

void Tensor::backward(const Tensor& seed, const BackwardOptions& options) const {
  require_defined(*this, "backward", "the output");
  check_seed(*this, seed, "backward");
  run_backward(*this, seed, options);
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
      const int64_t k = plant_seed(tape, outputs[j], std::move(seed));  // kept for a leaf
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
