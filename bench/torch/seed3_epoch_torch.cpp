// The libtorch twin of bench/nn_bench.cpp (one epoch of the seed-3 model: 6 -> 24 relu -> 12
// relu -> 20 outputs -> loc (5) + scale_tril (15, softplus diagonal + 1e-5), -log_prob, Adam,
// batch 100, 10,000 rows), for a side-by-side time per epoch. libtorch's C++ API has no
// distributions, so the MVN negative log-likelihood is written from triangular_solve, the way
// torch.distributions.MultivariateNormal computes it. float64, one thread.
//
// Not part of the build (libtorch is a benchmark-only dependency); build and run with
//   bench/torch/run.sh
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

namespace {

struct Model : torch::nn::Module {
  torch::nn::Linear dense1{nullptr}, dense2{nullptr}, out{nullptr};
  Model() {
    dense1 = register_module("dense1", torch::nn::Linear(6, 24));
    dense2 = register_module("dense2", torch::nn::Linear(24, 12));
    out = register_module("out", torch::nn::Linear(12, 20));
  }
  torch::Tensor forward(const torch::Tensor& x) { return out(torch::relu(dense2(torch::relu(dense1(x))))); }
};

// Row-major lower-triangle positions (MXNet/cholla packing) of a 5x5 matrix.
torch::Tensor tril_indices() { return torch::tril_indices(5, 5, 0, torch::kLong); }

torch::Tensor nll(const torch::Tensor& params, const torch::Tensor& y, const torch::Tensor& idx) {
  const int64_t n = params.size(0);
  torch::Tensor loc = params.slice(1, 0, 5);
  torch::Tensor packed = params.slice(1, 5, 20);
  torch::Tensor L = torch::zeros({n, 5, 5}, params.options());
  L.index_put_({torch::indexing::Slice(), idx[0], idx[1]}, packed);
  torch::Tensor diag = torch::diagonal(L, 0, -2, -1);
  torch::Tensor scale = torch::tril(L, -1) + torch::diag_embed(torch::softplus(diag) + 1e-5);
  torch::Tensor diff = (y - loc).unsqueeze(-1);
  torch::Tensor z = std::get<0>(torch::triangular_solve(diff, scale, /*upper=*/false));
  torch::Tensor maha = z.squeeze(-1).pow(2).sum(-1);
  torch::Tensor half_logdet = torch::log(torch::diagonal(scale, 0, -2, -1)).sum(-1);
  return (0.5 * maha + half_logdet + 2.5 * std::log(2 * M_PI)).mean();
}

}  // namespace

int main() {
  torch::set_num_threads(1);
  torch::manual_seed(3);
  torch::set_default_dtype(caffe2::TypeMeta::Make<double>());
  torch::Tensor X = torch::rand({10000, 6}, torch::kDouble) * 2 - 1;
  torch::Tensor Y = X.matmul(torch::randn({6, 5}, torch::kDouble)) + 0.3 * torch::randn({10000, 5}, torch::kDouble);
  Model model;
  model.to(torch::kDouble);
  torch::optim::Adam opt(model.parameters(), torch::optim::AdamOptions(1e-3));
  const torch::Tensor idx = tril_indices();
  std::vector<double> seconds;
  for (int epoch = 0; epoch < 7; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    torch::Tensor perm = torch::randperm(10000, torch::kLong);
    for (int64_t b = 0; b < 100; ++b) {
      torch::Tensor rows = perm.slice(0, b * 100, (b + 1) * 100);
      torch::Tensor loss = nll(model.forward(X.index_select(0, rows)), Y.index_select(0, rows), idx);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin() + 1, seconds.end());  // epoch 0 warms up
  std::printf("libtorch seed-3 epoch: median %.2f ms (%.1f us per step) over %zu epochs\n",
              1e3 * seconds[seconds.size() / 2 + 0], 1e4 * seconds[seconds.size() / 2], seconds.size() - 1);
}
