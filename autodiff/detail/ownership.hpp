// Internal: the threads that own tensors (the plain part of the biased reference counts of
// tensor_impl.hpp). docs/engine.md, "Reference counts", has the protocol and why.
#pragma once

namespace cholla::detail {

// Called when this thread needs a fresh TensorImpl from the heap (its first tensor, or its
// cache is empty): makes the thread an owner the first time; afterwards reconciles the
// handles of its tensors that other threads dropped. Not after the thread's exit has begun.
void become_owner_thread();

// Reconciles the handles of this thread's tensors that other threads dropped (cheap when
// there are none). Called at points a training loop passes regularly (tape release).
void reconcile_dropped_elsewhere();

}  // namespace cholla::detail
