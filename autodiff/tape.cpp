#include "autodiff/tape.hpp"

#include <algorithm>
#include <atomic>
#include <optional>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"

namespace cholla {
namespace {

// Generations are unique across threads, so a tensor recorded on another thread's tape (or on
// a released one) is recognised as stale rather than mistaken for an entry of this tape.
uint64_t next_generation() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

thread_local bool t_grad_enabled = true;

bool has_history(const TensorImpl& t) { return t.generation != 0; }

[[noreturn]] void throw_stale(const TensorImpl& t) {
  throw GraphError("backward",
                   fmt::format("a tensor of shape {} was produced by an op whose tape entry has "
                               "been released (by an earlier backward() without retain_graph, "
                               "or it was recorded on another thread). Recompute it, or pass "
                               "{{.retain_graph = true}} to the earlier backward.",
                               format_shape(t.shape)));
}

void accumulate(Tensor& slot, const Tensor& g) { slot = slot.defined() ? slot + g : g; }

// The gradient slot of output `j` of an entry. Slots are handed to the backward by moving the
// vector out (no copy, no allocation), so an entry swept before may have none: recreate them.
Tensor& output_slot(Node& node, int32_t j) {
  if (node.grad_outputs.empty()) node.grad_outputs.resize(static_cast<size_t>(node.num_outputs));
  return node.grad_outputs[static_cast<size_t>(j)];
}

bool takes_part(const Tensor& t) {
  const TensorImpl* p = t.impl();
  return p != nullptr && (p->requires_grad || p->generation != 0);
}

// Reverse sweep over the entries top, top-1, ..., bottom. Leaves receive gradients either in
// .grad() or, when they carry a capture slot, in `captured`.
void sweep(Tape& tape, int64_t top, int64_t bottom, std::vector<Tensor>* captured) {
  for (int64_t k = top; k >= bottom; --k) {
    Node& node = tape.node(k);
    bool any = false;
    for (const Tensor& g : node.grad_outputs) any = any || g.defined();
    if (!any) continue;
    std::vector<Tensor> grad_outputs = std::move(node.grad_outputs);
    node.grad_outputs.clear();
    Needs needs{0};
    for (size_t i = 0; i < node.inputs.size() && i < 64; ++i)
      if (takes_part(node.inputs[i])) needs.bits |= 1ULL << i;
    const char* op = node.op;
    // The deque keeps `node` in place even if this call appends entries (create_graph).
    Grads grads = node.backward(grad_outputs, needs);
    if (grads.size() != node.inputs.size())
      throw InternalError(fmt::format("backward of {}", op),
                          fmt::format("returned {} gradients for {} inputs.", grads.size(),
                                      node.inputs.size()));
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& g = grads[i];
      const Tensor& input = node.inputs[i];
      if (!g.defined() || !takes_part(input)) continue;
      if (g.shape() != input.shape())
        throw ShapeError(fmt::format("backward of {}", op),
                         fmt::format("the gradient for input {} has shape {} but the input has "
                                     "shape {}; a backward rule must return one gradient of its "
                                     "input's shape (sum over broadcast dimensions).",
                                     i, format_shape(g.shape()), format_shape(input.shape())),
                         "", {g.shape(), input.shape()});
      TensorImpl& in = *input.impl();
      if (has_history(in)) {
        if (in.generation != tape.generation()) throw_stale(in);
        accumulate(output_slot(tape.node(in.node), in.output), g);
      } else if (captured != nullptr) {
        if (in.capture_slot >= 0) accumulate((*captured)[static_cast<size_t>(in.capture_slot)], g);
      } else {
        // Without create_graph nothing here has history; with it, .grad() keeps its history.
        in.grad = in.grad.defined() ? in.grad + g : g;
      }
    }
  }
}

void clear_grad_outputs(Tape& tape) {
  for (size_t k = 0; k < tape.size(); ++k)
    for (Tensor& g : tape.node(static_cast<int64_t>(k)).grad_outputs) g = Tensor();
}

// Plants a seed at the entry that produced `output`; returns that entry's index, or -1 when
// `output` is a leaf (then the seed is the leaf's own gradient).
int64_t plant_seed(Tape& tape, const Tensor& output, const Tensor& seed) {
  const TensorImpl& o = *output.impl();
  if (!has_history(o)) return -1;
  if (o.generation != tape.generation()) throw_stale(o);
  accumulate(output_slot(tape.node(o.node), o.output), seed);
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

Tape::Tape() : generation_(next_generation()) {}

Tape& Tape::current() {
  thread_local Tape tape;
  return tape;
}

void Tape::release() {
  nodes_.clear();
  generation_ = next_generation();
}

int64_t Tape::append(Node node) {
  nodes_.push_back(std::move(node));
  return static_cast<int64_t>(nodes_.size()) - 1;
}

bool grad_enabled() { return t_grad_enabled; }

NoGrad::NoGrad() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGrad::~NoGrad() { t_grad_enabled = previous_; }
EnableGrad::EnableGrad() : previous_(t_grad_enabled) { t_grad_enabled = true; }
EnableGrad::~EnableGrad() { t_grad_enabled = previous_; }

bool needs_recording(std::span<const Tensor> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

std::vector<Tensor> record_multi(const char* op, std::vector<Tensor> inputs,
                                 std::vector<Tensor> outputs, BackwardFn backward) {
  if (!needs_recording(inputs)) return outputs;
  Tape& tape = Tape::current();
  const auto n_out = static_cast<int32_t>(outputs.size());
  const int64_t index = tape.append(Node{op, std::move(inputs), std::move(backward),
                                         std::vector<Tensor>(outputs.size()), n_out});
  for (int32_t j = 0; j < n_out; ++j) {
    // Outputs are fresh tensors made by the op; give each its place on the tape.
    TensorImpl& impl = *outputs[static_cast<size_t>(j)].impl();
    impl.generation = tape.generation();
    impl.node = index;
    impl.output = j;
  }
  return outputs;
}

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
    std::optional<NoGrad> no_grad;
    std::optional<EnableGrad> enable;
    if (options.create_graph) enable.emplace(); else no_grad.emplace();
    const int64_t top = plant_seed(tape, *this, seed);
    if (top < 0) {
      TensorImpl& leaf = *impl();
      leaf.grad = leaf.grad.defined() ? leaf.grad + seed : seed.detach();
    } else {
      sweep(tape, top, 0, nullptr);
    }
  } catch (...) {
    clear_grad_outputs(tape);
    if (!retain) tape.release();
    throw;
  }
  if (!retain) tape.release();
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
      TensorImpl& in = *inputs[i].impl();
      if (has_history(in)) {
        if (in.generation != tape.generation()) throw_stale(in);
        nonleaf_inputs.push_back(static_cast<int64_t>(i));
      } else {
        in.capture_slot = static_cast<int64_t>(i);
      }
    }
    std::sort(nonleaf_inputs.begin(), nonleaf_inputs.end(), [&](int64_t a, int64_t b) {
      return inputs[static_cast<size_t>(a)].impl()->node > inputs[static_cast<size_t>(b)].impl()->node;
    });
    int64_t cursor = top;  // the next entry to process
    for (int64_t i : nonleaf_inputs) {
      const TensorImpl& in = *inputs[static_cast<size_t>(i)].impl();
      if (cursor > in.node) {
        sweep(tape, cursor, in.node + 1, &captured);
        cursor = in.node;
      }
      Tensor g = output_slot(tape.node(in.node), in.output);
      if (g.defined()) accumulate(result[static_cast<size_t>(i)], g);
    }
    if (cursor >= 0) sweep(tape, cursor, 0, &captured);
    for (size_t i = 0; i < inputs.size(); ++i) {
      inputs[i].impl()->capture_slot = -1;
      if (captured[i].defined()) accumulate(result[i], captured[i]);
    }
  } catch (...) {
    for (const Tensor& t : inputs)
      if (t.defined()) t.impl()->capture_slot = -1;
    clear_grad_outputs(tape);
    if (!retain) tape.release();
    throw;
  }
  clear_grad_outputs(tape);
  if (!retain) tape.release();
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
