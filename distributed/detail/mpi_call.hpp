// Internal to distributed/: the context's communicator and the check that turns an MPI error
// code into a DistributedError. Not installed (it includes <mpi.h>).
#pragma once

// MPI's C API only: the deprecated C++ bindings do not compile warning-free under -Werror.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

namespace cholla::distributed::detail {

// The live context's private communicator; DistributedError when no context is alive.
MPI_Comm communicator(const char* op);

// Throws DistributedError("<op>", "<call> failed: <MPI's message>") unless rc is MPI_SUCCESS.
void check(int rc, const char* call, const char* op);

}  // namespace cholla::distributed::detail
