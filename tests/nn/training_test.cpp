// End to end: a small MLP learns y = sin(x) with the DataLoader, from a fixed seed.
#include <cmath>

#include "../autodiff/helpers.hpp"

using namespace cholla;

namespace {

struct Mlp : nn::Module {
  Rng rng;
  nn::Sequential body;
  explicit Mlp(uint64_t seed) : rng(seed) {
    const nn::LinearOptions xavier{.init = nn::Init::XavierUniform};
    body.emplace<nn::Linear>(1, 32, rng, xavier);
    body.emplace<nn::Tanh>();
    body.emplace<nn::Linear>(32, 32, rng, xavier);
    body.emplace<nn::Tanh>();
    body.emplace<nn::Linear>(32, 1, rng, xavier);
    register_module("body", body);
  }
  Tensor forward(const Tensor& x) { return body(x); }
};

struct Data {
  Tensor X, Y;
};

Data sine_data() {
  Rng rng(42);
  Tensor X = Tensor::uniform({256, 1}, -3, 3, rng);
  std::vector<double> y;
  for (double x : X.data()) y.push_back(std::sin(x));
  return {X, Tensor::from({256, 1}, y)};
}

// Trains with the optimiser `make` builds; returns the full-data MSE before and after.
template <class MakeOpt>
std::pair<double, double> fit(uint64_t seed, int epochs, MakeOpt make) {
  const auto [X, Y] = sine_data();
  Mlp model(seed);
  auto opt = make(model.parameters());
  double initial;
  {
    NoGrad guard;
    initial = nn::mse_loss(model.forward(X), Y).item();
  }
  for (int epoch = 0; epoch < epochs; ++epoch)
    for (auto [xb, yb] : data::DataLoader(X, Y, {.batch_size = 32, .seed = epoch})) {
      Tensor loss = nn::mse_loss(model.forward(xb), yb);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  CHECK(Tape::current().size() == 0);  // backward released every entry
  NoGrad guard;
  return {initial, nn::mse_loss(model.forward(X), Y).item()};
}

}  // namespace

TEST_CASE("training: MLP regression with Adam reaches a known loss, reproducibly") {
  auto adam = [](std::vector<Tensor> p) { return optim::Adam(std::move(p), {.lr = 1e-2}); };
  const auto [initial, final_loss] = fit(7, 150, adam);
  MESSAGE("Adam: MSE ", initial, " -> ", final_loss);
  CHECK(initial > 0.1);
  CHECK(final_loss < 2e-3);
  // Same seeds, same everything: the result is bit-identical.
  CHECK(fit(7, 150, adam).second == final_loss);
}

TEST_CASE("training: the same MLP with SGD + Nesterov momentum") {
  auto sgd = [](std::vector<Tensor> p) {
    return optim::SGD(std::move(p), {.lr = 0.05, .momentum = 0.9, .nesterov = true});
  };
  const auto [initial, final_loss] = fit(7, 150, sgd);
  MESSAGE("SGD: MSE ", initial, " -> ", final_loss);
  CHECK(final_loss < 2e-3);
}
