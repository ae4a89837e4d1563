// The tape: one per thread, append-only, in creation order (Stan's design: creation order is
// already a topological order, so backward needs no graph walk and no recursion).
//
// Ownership: the tape owns its entries; an entry owns handles to its inputs; a tensor knows
// only (tape generation, entry index, output index) of the entry that produced it. There are no
// reference cycles, and a tensor whose entry has been released is detected by its stale
// generation: GraphError, never undefined behaviour.
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
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <span>
#include <type_traits>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla {

struct TensorImpl {
  Shape shape;
  std::shared_ptr<double[]> storage;  // numel(shape) values, shared by reshape/detach
  int64_t size = 0;                   // numel(shape)
  bool requires_grad = false;         // leaves only: the user asked for .grad()
  // History: the tape entry that produced this tensor (generation 0 = none, a leaf).
  uint64_t generation = 0;
  int64_t node = -1;
  int32_t output = 0;
  Tensor grad;                // accumulated gradient of a leaf
  int64_t capture_slot = -1;  // used by cholla::grad() to collect a leaf's gradient
};

// Which inputs of an op need a gradient; backward rules may skip the others.
struct Needs {
  uint64_t bits = ~0ULL;
  bool operator[](size_t i) const { return i >= 64 || ((bits >> i) & 1ULL) != 0; }
};

using Grads = std::vector<Tensor>;  // one per input; an undefined Tensor means "no gradient"
using BackwardFn = std::function<Grads(std::span<const Tensor> grad_outputs, Needs needs)>;

struct Node {
  const char* op;
  std::vector<Tensor> inputs;
  BackwardFn backward;
  std::vector<Tensor> grad_outputs;  // filled during a backward sweep, then cleared
  int32_t num_outputs = 1;
};

struct BackwardOptions {
  bool retain_graph = false;  // keep the entries for another backward
  bool create_graph = false;  // record the backward itself (second derivatives)
};

struct GradOptions {
  bool retain_graph = false;  // implied by create_graph
  bool create_graph = false;
  bool allow_unused = false;  // an input the outputs do not depend on gets zeros, not an error
};

class Tape {
 public:
  static Tape& current();  // this thread's tape

  std::size_t size() const { return nodes_.size(); }
  uint64_t generation() const { return generation_; }
  // Drops every entry; tensors they produced become stale (GraphError if a backward needs them).
  void release();

  // Internal (used by record/backward).
  int64_t append(Node node);
  Node& node(int64_t index) { return nodes_[static_cast<size_t>(index)]; }

 private:
  Tape();
  std::deque<Node> nodes_;  // deque: entries stay put while a backward appends new ones
  uint64_t generation_;
};

// Grad mode: when off, ops record nothing.
bool grad_enabled();

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
bool needs_recording(std::span<const Tensor> inputs);

// Records an op with several outputs. `backward(grad_outputs, needs)` receives one gradient per
// output (undefined where none flowed) and returns one per input.
std::vector<Tensor> record_multi(const char* op, std::vector<Tensor> inputs,
                                 std::vector<Tensor> outputs, BackwardFn backward);

// Records an op with one output; `backward(g, needs)` returns one gradient per input.
template <class F>
Tensor record(const char* op, std::vector<Tensor> inputs, Tensor output, F&& backward) {
  static_assert(std::is_invocable_r_v<Grads, F&, const Tensor&, Needs>,
                "backward must be callable as Grads(const Tensor& g, Needs needs)");
  if (!needs_recording(inputs)) return output;
  return record_multi(op, std::move(inputs), {std::move(output)},
                      [f = std::forward<F>(backward)](std::span<const Tensor> g, Needs n) {
                        return f(g[0], n);
                      })[0];
}

// Same, with the inputs written in place: record("exp", {x}, out, ...).
template <class F>
Tensor record(const char* op, std::initializer_list<Tensor> inputs, Tensor output, F&& backward) {
  // Checked before the vector is built: an op under NoGrad allocates nothing here.
  if (!needs_recording(std::span<const Tensor>(inputs.begin(), inputs.size()))) return output;
  return record(op, std::vector<Tensor>(inputs), std::move(output), std::forward<F>(backward));
}

// Gradients of sum_i <seeds_i, outputs_i> with respect to `inputs`, without touching .grad().
// Seeds default to ones for scalar outputs. With create_graph the returned gradients have
// history themselves, so they can be differentiated again.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const GradOptions& options = {}, const std::vector<Tensor>& seeds = {});

}  // namespace cholla
