// Threads across a batch: a persistent pool that runs loops in fixed chunks.
//
// `parallel_for(n_items, grain, fn)` calls fn(begin, end) on the chunks [0, grain),
// [grain, 2 grain), ... of [0, n_items). The chunk boundaries depend only on n_items and grain,
// never on the thread count, so a loop whose chunks write disjoint outputs (or whose per-chunk
// partial results are combined in chunk order) gives bit-identical results for every
// `set_num_threads`. The calling thread works on its own loop too; several user threads may
// call at once (they share the pool's workers); a parallel_for inside a chunk runs inline.
// If chunks throw, the exception of the lowest-indexed failing chunk reaches the caller with
// its type intact (chunks after a recorded failure are skipped; earlier ones always run).
#pragma once

#include <cstdint>
#include <type_traits>

namespace cholla {

// Threads used by large batched and elementwise ops (the caller included). Default: the
// environment variable CHOLLA_NUM_THREADS if set, otherwise the hardware's thread count.
// OpenBLAS's own thread count is set in relation (its initial count divided by n, at least
// 1), so the two pools do not oversubscribe the cores. n < 1 is a DomainError; so is a call
// from inside a parallel_for chunk.
void set_num_threads(int64_t n);
int64_t num_threads();

// Number of chunks parallel_for uses for (n_items, grain): ceil(n_items / grain).
int64_t parallel_chunk_count(int64_t n_items, int64_t grain);

// True inside a chunk run by parallel_for (on a worker or on the calling thread).
bool in_parallel_region();

// Not cholla::detail: this header is public, and user code that opens both cholla and
// cholla::linalg would find two `detail`s.
namespace parallel_impl {
using ChunkCall = void (*)(void* fn, int64_t begin, int64_t end);
void parallel_run(int64_t n_items, int64_t grain, ChunkCall call, void* fn);
}  // namespace parallel_impl

// fn(int64_t begin, int64_t end). grain < 1 counts as 1. A loop of one chunk runs inline.
template <class Fn>
void parallel_for(int64_t n_items, int64_t grain, Fn&& fn) {
  if (n_items <= 0) return;
  if (grain < 1) grain = 1;
  if (n_items <= grain) {
    fn(int64_t{0}, n_items);
    return;
  }
  using F = std::remove_reference_t<Fn>;
  parallel_impl::parallel_run(
      n_items, grain,
      [](void* f, int64_t begin, int64_t end) { (*static_cast<F*>(f))(begin, end); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

}  // namespace cholla
