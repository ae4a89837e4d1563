// Internal to autodiff/: the tape's entries as tape.cpp (building and releasing them) and
// backward.cpp (the sweep) both see them. Not installed.
#pragma once

#include <cstdint>
#include <vector>

#include "autodiff/tape.hpp"

namespace cholla {

// Where the gradient for one input of an entry goes, decided when the entry is recorded. The
// entry holds no handle to an input with history: it needs only that input's place on the
// tape, so an intermediate the user drops is freed at once (a 10,000-op chain then recycles a
// few TensorImpls in L1 instead of keeping 10,000 of them, 2.5 MB, alive until the release).
struct InputRoute {
  enum Kind : uint8_t {
    None,   // takes no part in differentiation: no gradient
    Entry,  // has history of this tape: the gradient goes to entry `node`'s slot `output`
    Leaf,   // a leaf that requires grad: the gradient goes to the .grad() (or grad()'s capture)
            // of the tape's held leaf number `node` (Tape::leaves_)
    Stale,  // has history of a released or another thread's tape: a GraphError if reached
  };
  Tensor held;  // Stale only (for the error message)
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
  static std::vector<Tensor>& leaves(Tape& t) { return t.leaves_; }
};

namespace detail {

// RAII: the tape must not release itself while an entry is being built or swept.
class BusyScope {
 public:
  BusyScope() { ++t_engine.busy; }
  ~BusyScope() { --t_engine.busy; }
  BusyScope(const BusyScope&) = delete;
  BusyScope& operator=(const BusyScope&) = delete;
};

// Releases this thread's tape when no tensor with history of it is reachable any more and no
// entry is being built or swept (tape.cpp).
void release_if_unreachable();

}  // namespace detail
}  // namespace cholla
