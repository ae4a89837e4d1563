#include "distributed/collectives.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "distributed/context.hpp"
#include "distributed/detail/mpi_call.hpp"

namespace cholla::distributed {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

// Doubles per bucket: at least one, and at most what one MPI call can count.
int64_t bucket_doubles(std::size_t bytes) {
  return std::clamp<int64_t>(static_cast<int64_t>(bytes / sizeof(double)), 1, kMaxInt);
}

// FNV-1a over the shapes: the ranks compare it to detect different parameter lists.
int64_t shapes_fingerprint(const std::vector<Tensor>& tensors) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ULL;
    }
  };
  for (const Tensor& t : tensors) {
    mix(t.shape().size());
    for (int64_t d : t.shape()) mix(static_cast<uint64_t>(d));
  }
  return static_cast<int64_t>(h >> 2);  // non-negative, so that its negation exists
}

// One MPI_Allreduce(MAX) of [count, numel, fingerprint] and their negations: throws on every
// rank unless all ranks passed lists of the same shapes. (A fixed-size call, so that it is
// well-formed even when the lists differ.)
void agree(const std::vector<Tensor>& tensors, MPI_Comm comm, const char* op) {
  int64_t numel = 0;
  for (const Tensor& t : tensors) {
    if (!t.defined()) throw GraphError(op, "a tensor in the list is undefined.");
    numel += t.numel();
  }
  const int64_t facts[3] = {static_cast<int64_t>(tensors.size()), numel, shapes_fingerprint(tensors)};
  int64_t v[6] = {facts[0], facts[1], facts[2], -facts[0], -facts[1], -facts[2]};
  detail::check(MPI_Allreduce(MPI_IN_PLACE, v, 6, MPI_INT64_T, MPI_MAX, comm), "MPI_Allreduce", op);
  for (int i = 0; i < 3; ++i)
    if (v[i] != -v[i + 3])
      throw DistributedError(op, fmt::format("the ranks passed different tensor lists (this rank: "
                                             "{} tensors, {} values). Every rank must build the "
                                             "same model and pass its parameters in the same order.",
                                             facts[0], facts[1]));
}

// Pairwise sum over ranks of `count` doubles laid out rank after rank in `all`, into `out`.
void sum_ranks(const double* all, int64_t count, int lo, int hi, double* out) {
  if (hi - lo == 1) {
    std::copy_n(all + static_cast<int64_t>(lo) * count, count, out);
    return;
  }
  const int mid = lo + (hi - lo + 1) / 2;
  sum_ranks(all, count, lo, mid, out);
  std::vector<double> right(static_cast<size_t>(count));
  sum_ranks(all, count, mid, hi, right.data());
  for (int64_t i = 0; i < count; ++i) out[i] += right[static_cast<size_t>(i)];
}

// The values of `tensors`, one after the other.
std::vector<double> flatten(const std::vector<Tensor>& tensors) {
  std::vector<double> flat;
  for (const Tensor& t : tensors) flat.insert(flat.end(), t.data().begin(), t.data().end());
  return flat;
}

}  // namespace

void broadcast_tensors(const std::vector<Tensor>& tensors, int root) {
  constexpr const char* op = "distributed::broadcast_parameters";
  MPI_Comm comm = detail::communicator(op);
  const int size = Context::current().size();
  if (root < 0 || root >= size)
    throw DomainError(op, fmt::format("root = {} is not a rank (0 to {}).", root, size - 1), "root");
  agree(tensors, comm, op);
  std::vector<double> flat = flatten(tensors);
  const int64_t bucket = bucket_doubles(AllreduceOptions{}.bucket_bytes), total = static_cast<int64_t>(flat.size());
  for (int64_t start = 0; start < total; start += bucket)
    detail::check(MPI_Bcast(flat.data() + start, static_cast<int>(std::min(bucket, total - start)),
                            MPI_DOUBLE, root, comm),
                  "MPI_Bcast", op);
  int64_t at = 0;
  for (Tensor t : tensors) {  // handles: writes reach the caller's tensors
    std::copy_n(flat.begin() + at, t.numel(), t.mutable_data().begin());
    at += t.numel();
  }
}

void broadcast_parameters(const nn::Module& module, int root) {
  broadcast_tensors(module.parameters(), root);
}

int64_t allreduce_values(std::span<double> values, const AllreduceOptions& options) {
  constexpr const char* op = "distributed::allreduce_values";
  MPI_Comm comm = detail::communicator(op);
  const int size = Context::current().size();
  const int64_t bucket = bucket_doubles(options.bucket_bytes), total = static_cast<int64_t>(values.size());
  int64_t calls = 0;
  std::vector<double> gathered;
  for (int64_t start = 0; start < total; start += bucket, ++calls) {
    const int64_t count = std::min(bucket, total - start);
    double* chunk = values.data() + start;
    if (!options.deterministic) {
      detail::check(MPI_Allreduce(MPI_IN_PLACE, chunk, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, comm),
                    "MPI_Allreduce", op);
      continue;
    }
    gathered.resize(static_cast<size_t>(count * size));
    detail::check(MPI_Allgather(chunk, static_cast<int>(count), MPI_DOUBLE, gathered.data(),
                                static_cast<int>(count), MPI_DOUBLE, comm),
                  "MPI_Allgather", op);
    sum_ranks(gathered.data(), count, 0, size, chunk);
  }
  if (options.average)
    for (double& v : values) v /= static_cast<double>(size);
  return calls;
}

int64_t allreduce_gradients(const std::vector<Tensor>& params, const AllreduceOptions& options) {
  constexpr const char* op = "distributed::allreduce_gradients";
  agree(params, detail::communicator(op), op);
  // One flat stream: every parameter's gradient (zeros where this rank has none), then one
  // flag per parameter saying whether this rank had one; a flag still zero after the sum
  // means no rank had a gradient for that parameter.
  std::vector<double> flat;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (g.defined()) flat.insert(flat.end(), g.data().begin(), g.data().end());
    else flat.resize(flat.size() + static_cast<size_t>(p.numel()), 0.0);
  }
  const size_t flags = flat.size();
  for (const Tensor& p : params) flat.push_back(p.grad().defined() ? 1.0 : 0.0);

  const int64_t calls = allreduce_values(flat, options);

  auto at = flat.begin();
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor param = params[i];  // a handle: set_grad reaches the caller's parameter
    const int64_t n = param.numel();
    if (flat[flags + i] > 0) {
      Tensor g = Tensor::empty(param.shape());  // new storage: never write into a shared gradient
      std::copy_n(at, n, g.mutable_data().begin());
      param.set_grad(g);
    }
    at += n;
  }
  return calls;
}

std::vector<Tensor> pairwise_sum(const std::vector<std::vector<Tensor>>& terms) {
  if (terms.empty()) return {};
  for (const auto& t : terms)
    if (t.size() != terms[0].size())
      throw ShapeError("distributed::pairwise_sum",
                       fmt::format("every term must hold as many tensors ({} and {}).", terms[0].size(), t.size()));
  NoGrad guard;
  auto sum = [&](auto&& self, size_t lo, size_t hi) -> std::vector<Tensor> {
    if (hi - lo == 1) return terms[lo];
    const size_t mid = lo + (hi - lo + 1) / 2;
    std::vector<Tensor> left = self(self, lo, mid), right = self(self, mid, hi);
    for (size_t i = 0; i < left.size(); ++i)
      if (!left[i].defined()) left[i] = right[i];
      else if (right[i].defined()) left[i] = left[i] + right[i];
    return left;
  };
  return sum(sum, 0, terms.size());
}

}  // namespace cholla::distributed
