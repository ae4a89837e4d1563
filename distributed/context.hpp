// cholla::distributed::Context: the MPI environment of a data-parallel program, as an RAII
// object. Create one at the top of main, before any other distributed call:
//
//   int main(int argc, char** argv) {
//     cholla::distributed::Context ctx(argc, argv);   // MPI_Init ... MPI_Finalize
//     fmt::print("rank {} of {}\n", ctx.rank(), ctx.size());
//   }
//
// The context owns a private duplicate of MPI_COMM_WORLD, so cholla's messages never match a
// receive the program posts itself, and it makes MPI return error codes instead of aborting:
// every failed MPI call becomes a DistributedError naming the call and MPI's own message.
// If the program initialised MPI itself, the context uses it and leaves finalising to it.
// There is at most one context per process (MPI cannot be initialised twice).
//
// This header does not include <mpi.h>: programs using cholla::distributed need no MPI flags.
#pragma once

#include "autodiff/errors.hpp"

namespace cholla::distributed {

// An MPI call failed, or the ranks disagree about what they were asked to do (different
// parameter lists, a checkpoint that rank 0 could not write). Thrown on every rank involved.
class DistributedError : public Error {
  using Error::Error;
};

class Context {
 public:
  Context();
  Context(int& argc, char**& argv);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  // Blocks until every rank has reached it.
  void barrier() const;

  // The live context; DistributedError when there is none.
  static const Context& current();

 private:
  void start(int* argc, char*** argv);
  bool owns_mpi_ = false;
  int rank_ = 0, size_ = 1;
};

}  // namespace cholla::distributed
