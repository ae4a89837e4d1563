// data_parallel: mean_cov_regression's model (seed 3) trained data-parallel over MPI ranks.
//
//   mpirun -np 2 build/examples/data_parallel --check
//
// Every rank builds the same data and model; rank 0's initial parameters are broadcast. Each
// optimiser step takes one global batch of 100 rows (the same rows whatever the number of
// ranks: data::DistributedSampler), each rank computes the gradient of its part, the ranks sum
// their gradients (distributed::allreduce_gradients), and every rank applies the same Adam
// step, so the models stay identical.
//
// Same result for any number of ranks: each global batch is cut into --shards fixed pieces
// (default 4), each piece's gradient is computed on its own, and the pieces are added in one
// fixed pairwise order: on a rank with pairwise_sum, across ranks by the deterministic
// allreduce. One process with every piece and two ranks with two pieces each therefore add
// exactly the same numbers in exactly the same order. --check replays the training in one
// process on rank 0 and requires the final loss to agree within 1e-9 (relative); it also
// requires the model to beat the constant-covariance Gaussian.
#include <chrono>
#include <cmath>
#include <fmt/core.h>
#include <string>
#include <vector>

#include <cholla.hpp>

#include "common/cli.hpp"
#include "common/mean_cov_model.hpp"
#include "common/training.hpp"
#include "distributed/distributed.hpp"

using namespace cholla;
namespace dd = cholla::distributed;

namespace {

constexpr int64_t kGlobalBatch = 100;

struct Run {
  int64_t ranks = 1, rank = 0;  // the ranks this training is split over (1: one process)
  int64_t shards = 4;
  int64_t epochs = 100;
  uint64_t seed = 3;
};

struct Result {
  double final_loss = 0;       // mean NLL over the training rows after training
  double seconds_per_epoch = 0;
  double allreduce_seconds_per_epoch = 0;  // of which in allreduce_gradients (waiting included)
};

// Gradient of sum(-log_prob(rows)) / batch_rows for one piece of a global batch; undefined
// entries for an empty piece (it still takes its place in the pairwise order).
std::vector<Tensor> piece_gradient(examples::Model& model, const Tensor& x, const Tensor& y, double batch_rows) {
  const auto params = model.parameters();
  if (x.size(0) == 0) return std::vector<Tensor>(params.size());
  model.zero_grad();
  (-sum(model.forward(x).log_prob(y)) / batch_rows).backward();
  std::vector<Tensor> grads;
  for (const Tensor& p : params) grads.push_back(p.grad());
  return grads;
}

Result train(const Run& run, const Tensor& X, const Tensor& Y, bool over_mpi) {
  Rng rng(run.seed + 1);
  examples::Model model(X.size(1), Y.size(1), rng);
  if (over_mpi) dd::broadcast_parameters(model, 0);
  const auto params = model.parameters();
  optim::Adam opt(params, {.lr = 3e-3});
  data::DistributedSampler sampler(X.size(0), {.num_replicas = run.ranks, .rank = run.rank,
                                               .global_batch_size = kGlobalBatch,
                                               .seed = static_cast<int64_t>(run.seed)});
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  Clock::duration in_allreduce{};
  for (int64_t epoch = 0; epoch < run.epochs; ++epoch) {
    if (epoch == run.epochs * 6 / 10 || epoch == run.epochs * 85 / 100) opt.options().lr *= 0.3;
    sampler.set_epoch(epoch);
    auto [Xr, Yr] = sampler.select(X, Y);
    int64_t step = 0;
    for (auto [xb, yb] : data::DataLoader(Xr, Yr, {.batch_size = kGlobalBatch / run.ranks, .shuffle = false})) {
      const data::BatchPart part = sampler.part(step++);
      const int64_t n = part.batch_size;
      // The pieces of this global batch that this rank holds: [s n / S, (s + 1) n / S).
      std::vector<std::vector<Tensor>> pieces;
      for (int64_t s = run.rank * run.shards / run.ranks; s < (run.rank + 1) * run.shards / run.ranks; ++s) {
        const int64_t lo = s * n / run.shards - part.begin, hi = (s + 1) * n / run.shards - part.begin;
        pieces.push_back(piece_gradient(model, slice(xb, 0, lo, hi), slice(yb, 0, lo, hi), static_cast<double>(n)));
      }
      const auto local = dd::pairwise_sum(pieces);
      for (size_t i = 0; i < params.size(); ++i) {
        Tensor p = params[i];
        p.set_grad(local[i]);
      }
      if (over_mpi) {
        const auto t0 = Clock::now();
        dd::allreduce_gradients(params, {.average = false, .deterministic = true});
        in_allreduce += Clock::now() - t0;
      }
      opt.step();
    }
  }
  Result r;
  auto per_epoch = [&](Clock::duration d) { return std::chrono::duration<double>(d).count() / static_cast<double>(run.epochs); };
  r.seconds_per_epoch = per_epoch(Clock::now() - start);
  r.allreduce_seconds_per_epoch = per_epoch(in_allreduce);
  NoGrad guard;
  r.final_loss = -mean(model.forward(X).log_prob(Y)).item();
  return r;
}

int run(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "data_parallel: mean_cov_regression's model (6 -> 24 -> 12 -> MultivariateNormalHead(5)) trained\n"
      "over MPI ranks: run as `mpirun -np N build/examples/data_parallel`, N dividing --shards.\n"
      "Global batch 100 rows, split over the ranks; prints `final loss` (mean training NLL).\n\n"
      "--check passes when the final loss equals, within 1e-9 relative, that of the same training\n"
      "replayed in one process (rank 0 replays it), and beats the constant-covariance Gaussian.\n\n"
      "options:\n  --shards S   pieces per global batch (a power of two, default 4); the number of\n"
      "               ranks must divide it",
      3, {"shards"});
  dd::Context ctx(argc, argv);  // after parse_cli, which may exit (--help)
  Run setup;
  setup.ranks = ctx.size();
  setup.rank = ctx.rank();
  setup.shards = std::stoll(cli.get("shards", "4"));
  setup.epochs = cli.quick ? 10 : 100;
  setup.seed = cli.seed;
  if (setup.shards < 1 || (setup.shards & (setup.shards - 1)) != 0 || setup.shards % setup.ranks != 0 ||
      kGlobalBatch % setup.ranks != 0) {
    if (ctx.is_root())
      fmt::print(stderr, "--shards {} must be a power of two that the number of ranks ({}) divides, "
                         "and the ranks must divide the global batch ({})\n",
                 setup.shards, setup.ranks, kGlobalBatch);
    return 2;
  }

  Rng data_rng(cli.seed);
  const examples::Table all = examples::generate(cli.quick ? 3000 : 10000, data_rng);
  const int64_t n_train = all.X.size(0) * 8 / 10;
  const Tensor X = slice(all.X, 0, 0, n_train), Y = slice(all.Y, 0, 0, n_train);

  const Result parallel = train(setup, X, Y, true);
  // The verdict is rank 0's; the other ranks receive it so that every exit status agrees.
  Tensor verdict = Tensor::scalar(1.0);
  if (ctx.is_root()) {
    fmt::print("ranks {}, {} pieces per global batch of {}: {:.3f} s per epoch, {:.3f} s of it in "
               "allreduce_gradients\n",
               setup.ranks, setup.shards, kGlobalBatch, parallel.seconds_per_epoch,
               parallel.allreduce_seconds_per_epoch);
    fmt::print("final loss {:.17g}\n", parallel.final_loss);
    bool ok = std::isfinite(parallel.final_loss);
    if (cli.check) {
      Run serial = setup;
      serial.ranks = 1;
      serial.rank = 0;
      const Result one = train(serial, X, Y, false);
      const double rel = std::abs(parallel.final_loss - one.final_loss) / std::abs(one.final_loss);
      const double baseline = examples::constant_gaussian_nll(Y, Y);
      fmt::print("one process: final loss {:.17g} (relative difference {:.3g}); constant-covariance "
                 "Gaussian {:.6f}\n",
                 one.final_loss, rel, baseline);
      ok = ok && rel <= 1e-9 && parallel.final_loss < baseline;
    }
    verdict = Tensor::scalar(ok ? 1.0 : 0.0);
    examples::verdict(cli, ok, "final loss equal to one process within 1e-9 and below the constant-covariance Gaussian");
  }
  dd::broadcast_tensors({verdict}, 0);
  return cli.check && verdict.item() != 1.0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }
