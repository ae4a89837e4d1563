#include "distributed/checkpoint.hpp"

#include <exception>
#include <functional>
#include <vector>

#include "distributed/collectives.hpp"
#include "distributed/context.hpp"
#include "distributed/detail/mpi_call.hpp"
#include "nn/checkpoint.hpp"

namespace cholla::distributed {
namespace {

// Runs `work` on rank 0 only and tells every rank how it went: rank 0's error message, if
// any, is broadcast and thrown everywhere as an IoError.
void on_root(const char* op, const std::function<void()>& work) {
  MPI_Comm comm = detail::communicator(op);
  std::string failure;
  if (Context::current().is_root()) {
    try {
      work();
    } catch (const std::exception& e) {
      failure = e.what();
      if (failure.empty()) failure = "unknown error";
    }
  }
  int64_t length = static_cast<int64_t>(failure.size());
  detail::check(MPI_Bcast(&length, 1, MPI_INT64_T, 0, comm), "MPI_Bcast", op);
  if (length == 0) return;
  failure.resize(static_cast<size_t>(length));
  detail::check(MPI_Bcast(failure.data(), static_cast<int>(length), MPI_CHAR, 0, comm), "MPI_Bcast", op);
  throw IoError(op, "on rank 0: " + failure);
}

// Rank 0's optimiser state, copied into every other rank's optimiser.
void broadcast_optimizer(optim::Optimizer& optimizer) {
  optim::NamedTensors state = optimizer.state_dict();
  std::vector<Tensor> values;
  for (auto& [name, value] : state) {
    value = value.clone();  // state_dict may hand out the live buffers
    values.push_back(value);
  }
  broadcast_tensors(values, 0);
  if (!Context::current().is_root()) optimizer.load_state_dict(state);
}

}  // namespace

void save_checkpoint(const nn::Module& module, const std::string& path) {
  on_root("distributed::save_checkpoint", [&] { nn::save(module, path); });
}

void save_checkpoint(const nn::Module& module, const optim::Optimizer& optimizer, const std::string& path) {
  on_root("distributed::save_checkpoint", [&] { nn::save(module, optimizer, path); });
}

void load_checkpoint(nn::Module& module, const std::string& path) {
  on_root("distributed::load_checkpoint", [&] { nn::load(module, path); });
  broadcast_parameters(module, 0);
}

void load_checkpoint(nn::Module& module, optim::Optimizer& optimizer, const std::string& path) {
  on_root("distributed::load_checkpoint", [&] { nn::load(module, optimizer, path); });
  broadcast_parameters(module, 0);
  broadcast_optimizer(optimizer);
}

}  // namespace cholla::distributed
