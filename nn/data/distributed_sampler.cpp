#include "nn/data/distributed_sampler.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <numeric>
#include <utility>

#include "autodiff/ops.hpp"
#include "autodiff/rng.hpp"
#include "autodiff/shape.hpp"

namespace cholla::data {
namespace {

constexpr const char* kOp = "DistributedSampler";

// splitmix64: decorrelates the streams of (seed, epoch) and (seed, epoch + 1).
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

DistributedSampler::DistributedSampler(int64_t rows, const DistributedSamplerOptions& options)
    : rows_(rows), options_(options) {
  if (rows < 0) throw DomainError(kOp, fmt::format("rows = {} cannot be negative.", rows), "rows");
  if (options.num_replicas < 1)
    throw DomainError(kOp, fmt::format("num_replicas = {} must be at least 1 (the number of ranks, "
                                       "Context::size()).", options.num_replicas), "num_replicas");
  if (options.rank < 0 || options.rank >= options.num_replicas)
    throw DomainError(kOp, fmt::format("rank = {} must be in [0, num_replicas = {}) (Context::rank()).",
                                       options.rank, options.num_replicas), "rank");
  if (options.global_batch_size < 0)
    throw DomainError(kOp, fmt::format("global_batch_size = {} cannot be negative (0: the whole epoch).",
                                       options.global_batch_size), "global_batch_size");
  set_epoch(0);
}

void DistributedSampler::set_epoch(int64_t epoch) {
  epoch_ = epoch;
  order_.resize(static_cast<size_t>(rows_));
  std::iota(order_.begin(), order_.end(), int64_t{0});
  if (!options_.shuffle) return;
  // Fisher-Yates with cholla::Rng, so the order is the same on every platform and rank.
  Rng rng(mix(static_cast<uint64_t>(options_.seed) ^ mix(static_cast<uint64_t>(epoch))));
  for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[static_cast<size_t>(rng.below(i))]);
}

int64_t DistributedSampler::num_batches() const {
  const int64_t b = options_.global_batch_size == 0 ? std::max<int64_t>(rows_, 1) : options_.global_batch_size;
  if (rows_ == 0) return 0;
  return options_.drop_last ? rows_ / b : (rows_ + b - 1) / b;
}

BatchPart DistributedSampler::part(int64_t step) const {
  if (step < 0 || step >= num_batches())
    throw ShapeError(kOp, fmt::format("step {} is out of range ({} global batches this epoch).", step, num_batches()));
  const int64_t b = options_.global_batch_size == 0 ? rows_ : options_.global_batch_size;
  const int64_t size = std::min(b, rows_ - step * b), p = options_.num_replicas, r = options_.rank;
  return {size * r / p, size * (r + 1) / p, size};
}

std::vector<int64_t> DistributedSampler::batch(int64_t step) const {
  const BatchPart pt = part(step);
  const int64_t b = options_.global_batch_size == 0 ? rows_ : options_.global_batch_size;
  const auto first = order_.begin() + step * b;
  return {first + pt.begin, first + pt.end};
}

std::vector<int64_t> DistributedSampler::indices() const {
  std::vector<int64_t> out;
  for (int64_t step = 0; step < num_batches(); ++step) {
    const auto rows = batch(step);
    out.insert(out.end(), rows.begin(), rows.end());
  }
  return out;
}

Batch DistributedSampler::select(const Tensor& X, const Tensor& Y) const {
  for (const Tensor* t : {&X, &Y})
    if (!t->defined() || t->dim() == 0 || t->size(0) != rows_)
      throw ShapeError(kOp, fmt::format("X and Y must have the sampler's {} rows in dimension 0; got {} and {}.",
                                        rows_, X.defined() ? format_shape(X.shape()) : "undefined",
                                        Y.defined() ? format_shape(Y.shape()) : "undefined"),
                       t == &X ? "X" : "Y");
  const auto rows = indices();
  return {index_select(X, 0, rows), index_select(Y, 0, rows)};
}

}  // namespace cholla::data
