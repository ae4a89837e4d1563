#include "distributed/context.hpp"

#include <fmt/format.h>

#include "distributed/detail/mpi_call.hpp"

namespace cholla::distributed {
namespace {

const Context* g_current = nullptr;
MPI_Comm g_comm = MPI_COMM_NULL;

}  // namespace

namespace detail {

MPI_Comm communicator(const char* op) {
  if (g_current == nullptr)
    throw DistributedError(op, "no distributed::Context is alive. Create one at the top of main "
                               "(distributed::Context ctx(argc, argv);) and keep it until the end.");
  return g_comm;
}

void check(int rc, const char* call, const char* op) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
  throw DistributedError(op, fmt::format("{} failed (MPI error {}: {}). Check that every rank "
                                         "makes the same distributed calls in the same order.",
                                         call, rc, length > 0 ? std::string(text, static_cast<size_t>(length)) : "unknown"));
}

}  // namespace detail

Context::Context() { start(nullptr, nullptr); }

Context::Context(int& argc, char**& argv) { start(&argc, &argv); }

void Context::start(int* argc, char*** argv) {
  constexpr const char* op = "distributed::Context";
  if (g_current != nullptr)
    throw DistributedError(op, "a Context is already alive in this process; create one only, at "
                               "the top of main, and pass it (or use Context::current()).");
  int finalized = 0, initialized = 0;
  MPI_Finalized(&finalized);
  if (finalized)
    throw DistributedError(op, "MPI was already finalised in this process, and MPI cannot be "
                               "initialised twice: keep a single Context for the whole program.");
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Until a communicator with MPI_ERRORS_RETURN exists, MPI's default handler aborts on error.
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
      throw DistributedError(op, "MPI_Init failed. Run the program directly or with mpirun.");
    owns_mpi_ = true;
  }
  try {
    detail::check(MPI_Comm_dup(MPI_COMM_WORLD, &g_comm), "MPI_Comm_dup", op);
    detail::check(MPI_Comm_set_errhandler(g_comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", op);
    detail::check(MPI_Comm_rank(g_comm, &rank_), "MPI_Comm_rank", op);
    detail::check(MPI_Comm_size(g_comm, &size_), "MPI_Comm_size", op);
  } catch (...) {
    if (g_comm != MPI_COMM_NULL) MPI_Comm_free(&g_comm);
    if (owns_mpi_) MPI_Finalize();
    throw;
  }
  g_current = this;
}

Context::~Context() {
  g_current = nullptr;
  MPI_Comm_free(&g_comm);
  if (owns_mpi_) MPI_Finalize();
}

void Context::barrier() const {
  detail::check(MPI_Barrier(g_comm), "MPI_Barrier", "distributed::Context::barrier");
}

const Context& Context::current() {
  detail::communicator("distributed::Context::current");
  return *g_current;
}

}  // namespace cholla::distributed
