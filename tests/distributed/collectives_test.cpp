// cholla::distributed under mpirun -np 1 and -np 2: Context, allreduce_gradients (sum,
// average, buckets, missing gradients, the deterministic order), broadcast, checkpoints.
// Expected values are written from each rank's known inputs, never read back from MPI.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <string>

#include <cholla.hpp>

#include "distributed/distributed.hpp"
#include "distributed/detail/mpi_call.hpp"

using namespace cholla;
namespace dd = cholla::distributed;

namespace {

const dd::Context& ctx() { return dd::Context::current(); }

// A zero leaf that requires grad (its values do not matter to the collectives).
Tensor param(const Shape& shape) { return Tensor::zeros(shape).requires_grad(true); }

// values[i] = scale * (i + 1)
Tensor ramp(const Shape& shape, double scale) {
  Tensor t = Tensor::empty(shape);
  auto v = t.mutable_data();
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * static_cast<double>(i + 1);
  return t;
}

struct Net : nn::Module {
  nn::Linear a, b;
  explicit Net(uint64_t seed) : Net(Rng(seed)) {}
  explicit Net(Rng rng) : a(3, 4, rng), b(4, 2, rng) {
    register_module("a", a);
    register_module("b", b);
  }
};

bool same_values(const std::vector<Tensor>& x, const std::vector<Tensor>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].to_vector() != y[i].to_vector()) return false;
  return true;
}

// A file name chosen by rank 0 and shared with every rank (through broadcast_tensors).
std::string shared_temp_path(const char* stem) {
  Tensor stamp = Tensor::scalar(static_cast<double>(
      std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007));
  dd::broadcast_tensors({stamp}, 0);
  return (std::filesystem::temp_directory_path() /
          fmt::format("cholla_{}_{}.ckpt", stem, static_cast<int64_t>(stamp.item())))
      .string();
}

}  // namespace

TEST_CASE("Context: rank, size, one per process, MPI errors as DistributedError") {
  CHECK(ctx().size() >= 1);
  CHECK(ctx().rank() >= 0);
  CHECK(ctx().rank() < ctx().size());
  CHECK(ctx().is_root() == (ctx().rank() == 0));
  CHECK_THROWS_AS(dd::Context(), dd::DistributedError);
  ctx().barrier();
  try {
    dd::detail::check(MPI_ERR_COUNT, "MPI_Send", "test");
    FAIL("no exception");
  } catch (const dd::DistributedError& e) {
    CHECK(e.op() == "test");
    CHECK(std::string(e.what()).find("MPI_Send failed") != std::string::npos);
  }
}

TEST_CASE("allreduce_gradients sums or averages every parameter's gradient over the ranks") {
  const double p = ctx().size(), r = ctx().rank();
  for (bool deterministic : {false, true})
    for (bool average : {false, true}) {
      Tensor w = param({2, 3}), b = param({5});
      w.set_grad(ramp({2, 3}, r + 1));  // rank r contributes (r + 1) * (1, 2, 3, ...)
      b.set_grad(ramp({5}, -(r + 1)));
      dd::allreduce_gradients({w, b}, {.average = average, .deterministic = deterministic});
      // sum over ranks of (r + 1) = p (p + 1) / 2; small integers, so exact in any order.
      const double factor = average ? (p + 1) / 2 : p * (p + 1) / 2;
      CHECK(w.grad().to_vector() == ramp({2, 3}, factor).to_vector());
      CHECK(b.grad().to_vector() == ramp({5}, -factor).to_vector());
    }
}

TEST_CASE("gradients travel in buckets: few large calls, not one per parameter") {
  // 11 gradient values and one has-a-gradient flag per parameter: a stream of 14 doubles.
  std::vector<Tensor> params = {param({2, 3}), param({1}), param({4})};
  for (auto& t : params) t.set_grad(Tensor::ones(t.shape()));
  CHECK(dd::allreduce_gradients(params) == 1);                                        // 1 MB
  CHECK(dd::allreduce_gradients(params, {.bucket_bytes = 4 * sizeof(double)}) == 4);  // 4+4+4+2
  CHECK(dd::allreduce_gradients(params, {.bucket_bytes = 1}) == 14);                  // >= 1 value
  for (const auto& t : params) CHECK(t.grad().to_vector() == std::vector<double>(t.numel(), 1.0));
}

TEST_CASE("a parameter without a gradient counts as zero; one with none anywhere keeps none") {
  Tensor some = param({3}), none = param({2});
  if (ctx().is_root()) some.set_grad(ramp({3}, 1.0));
  dd::allreduce_gradients({some, none}, {.average = false});
  REQUIRE(some.grad().defined());
  CHECK(some.grad().to_vector() == ramp({3}, 1.0).to_vector());
  CHECK_FALSE(none.grad().defined());
}

TEST_CASE("pairwise_sum adds in the fixed order ((a + b) + (c + d)), split at ceil(n / 2)") {
  auto term = [](double v) { return std::vector<Tensor>{Tensor::scalar(v)}; };
  // Left to right, (((1e16 + 1) - 1e16) + 1) = 1; pairwise, (1e16 + 1) + (-1e16 + 1) = 0.
  CHECK(dd::pairwise_sum({term(1e16), term(1), term(-1e16), term(1)})[0].item() == 0.0);
  // Three terms split as (a + b) + c: (1 + 1e16) - 1e16 = 0, where a + (b + c) would give 1.
  CHECK(dd::pairwise_sum({term(1), term(1e16), term(-1e16)})[0].item() == 0.0);
  // Undefined entries are absent terms.
  auto sum = dd::pairwise_sum({{Tensor(), Tensor::scalar(2)}, {Tensor(), Tensor::scalar(3)}});
  CHECK_FALSE(sum[0].defined());
  CHECK(sum[1].item() == 5.0);
  CHECK_THROWS_AS(dd::pairwise_sum({term(1), {}}), ShapeError);
}

TEST_CASE("deterministic allreduce gives every rank the pairwise sum over ranks, bit for bit") {
  // Contributions whose sum depends on the order: each rank can compute every rank's term.
  auto contribution = [](int rank) {
    Tensor g = Tensor::empty({4});
    auto v = g.mutable_data();
    for (int i = 0; i < 4; ++i) v[static_cast<size_t>(i)] = std::pow(10.0, 15 + i) * (rank % 2 ? -1 : 1) + 0.1 * (rank + 1) + i / 3.0;
    return g;
  };
  std::vector<std::vector<Tensor>> terms;
  for (int r = 0; r < ctx().size(); ++r) terms.push_back({contribution(r)});
  const Tensor expected = dd::pairwise_sum(terms)[0];
  Tensor w = param({4});
  w.set_grad(contribution(ctx().rank()));
  dd::allreduce_gradients({w}, {.average = false, .deterministic = true});
  CHECK(w.grad().to_vector() == expected.to_vector());
}

TEST_CASE("ranks passing different parameter lists get a DistributedError, all of them") {
  if (ctx().size() < 2) return;
  Tensor w = param(ctx().is_root() ? Shape{2, 3} : Shape{3, 2});  // same count, other shape
  w.set_grad(Tensor::ones(w.shape()));
  CHECK_THROWS_AS(dd::allreduce_gradients({w}), dd::DistributedError);
  CHECK_THROWS_AS(dd::broadcast_tensors({w}), dd::DistributedError);
}

TEST_CASE("broadcast_parameters gives every rank the root's initial values") {
  Net net(100 + static_cast<uint64_t>(ctx().rank()));  // different on every rank
  dd::broadcast_parameters(net, 0);
  Net root_net(100);
  CHECK(same_values(net.parameters(), root_net.parameters()));
  CHECK_THROWS_AS(dd::broadcast_parameters(net, ctx().size()), DomainError);
}

TEST_CASE("checkpoints: written by rank 0 only, loaded on every rank, failures on every rank") {
  const std::string path = shared_temp_path("ckpt");
  Net net(7);
  optim::Adam opt(net.parameters(), {.lr = 0.1});
  Tensor x = Tensor::from({2, 3}, {1, 2, 3, -1, 0, 1});
  sum(square(net.b(tanh(net.a(x))))).backward();
  opt.step();
  dd::save_checkpoint(net, opt, path);
  if (ctx().is_root()) CHECK(std::filesystem::exists(path));

  Net fresh(8);
  optim::Adam fresh_opt(fresh.parameters(), {.lr = 0.5});
  dd::load_checkpoint(fresh, fresh_opt, path);
  CHECK(same_values(fresh.parameters(), net.parameters()));
  const auto want = opt.state_dict(), got = fresh_opt.state_dict();
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(want[i].first == got[i].first);
    CHECK(want[i].second.to_vector() == got[i].second.to_vector());
  }
  ctx().barrier();
  if (ctx().is_root()) std::filesystem::remove(path);

  try {
    dd::load_checkpoint(fresh, path + ".missing");
    FAIL("no exception");
  } catch (const IoError& e) {
    CHECK(e.op() == "distributed::load_checkpoint");
    CHECK(std::string(e.what()).find("on rank 0") != std::string::npos);
  }
  CHECK(same_values(fresh.parameters(), net.parameters()));  // untouched by the failed load
}

TEST_CASE("allreduce_values reduces plain numbers the same way") {
  const double p = ctx().size(), r = ctx().rank();
  std::vector<double> v = {r + 1, -2 * (r + 1), 0.5};
  CHECK(dd::allreduce_values(v, {.average = false}) == 1);
  CHECK(v == std::vector<double>{p * (p + 1) / 2, -p * (p + 1), 0.5 * p});
  std::vector<double> w = {r + 1};
  dd::allreduce_values(w, {.deterministic = true});
  CHECK(w[0] == (p + 1) / 2);
  std::vector<double> none;
  CHECK(dd::allreduce_values(none) == 0);
}
