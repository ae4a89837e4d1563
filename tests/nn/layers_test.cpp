// nn::Linear, activations, Sequential: values, shapes, initialisation, gradients.
#include <cmath>

#include "../autodiff/helpers.hpp"

using namespace cholla;
using test::check_values;

TEST_CASE("linear: y = x W^T + b for a batch and for a single vector") {
  nn::Linear layer(3, 2);
  {
    NoGrad guard;
    auto w = layer.weight.mutable_data();
    const double values[] = {1, 2, 3, -1, 0, 1};
    std::copy(std::begin(values), std::end(values), w.begin());
    layer.bias.mutable_data()[0] = 0.5;
    layer.bias.mutable_data()[1] = -0.5;
  }
  Tensor x = Tensor::from({2, 3}, {1, 1, 1, 2, 0, -1});
  Tensor y = layer(x);
  CHECK(y.shape() == Shape{2, 2});
  check_values(y, {6.5, -0.5, -0.5, -3.5});
  Tensor v = layer(Tensor::from({3}, {1, 1, 1}));
  CHECK(v.shape() == Shape{2});
  check_values(v, {6.5, -0.5});
  // Extra leading dimensions are batch dimensions too.
  CHECK(layer(Tensor::ones({4, 5, 3})).shape() == Shape{4, 5, 2});
  CHECK_THROWS_WITH_AS(layer(Tensor::ones({2, 4})), doctest::Contains("in_features = 3"),
                       ShapeError);
  CHECK_THROWS_AS(nn::Linear(0, 2), ShapeError);
}

TEST_CASE("linear: gradients through gemm2 and the bias") {
  nn::Linear layer(3, 2);
  Tensor x = test::uniform({4, 3}, -1, 1);
  auto result = gradcheck(
      [&](const std::vector<Tensor>& in) {
        // Route the parameters through the inputs so gradcheck perturbs them.
        return linalg::gemm2(in[0], in[1], {.transpose_b = true}) + in[2];
      },
      {x, layer.weight.detach(), layer.bias.detach()});
  CHECK_MESSAGE(result.ok, result.report);
  // The layer itself, as a function of its input (batch and single vector).
  test::check_gradients([&](const std::vector<Tensor>& in) { return layer(in[0]); }, {x});
  test::check_gradients([&](const std::vector<Tensor>& in) { return layer(in[0]); },
                        {test::uniform({3}, -1, 1, 5)});
  sum(layer(x)).backward();
  // d sum(x W^T + b) / dW[o, i] = sum over rows of x[:, i]; / db = number of rows.
  const Tensor colsum = sum(x, {0});
  for (int o = 0; o < 2; ++o)
    for (int i = 0; i < 3; ++i)
      CHECK(layer.weight.grad().at({o, i}) == doctest::Approx(colsum.at({i})));
  check_values(layer.bias.grad(), {4, 4});
}

TEST_CASE("linear: seeded initialisation is reproducible and has the right scale") {
  Rng a(7), b(7);
  nn::Linear l1(200, 100, a), l2(200, 100, b);
  CHECK(l1.weight.to_vector() == l2.weight.to_vector());
  check_values(l1.bias, std::vector<double>(100, 0.0));
  // Default thread generator: manual_seed resets it.
  nn::manual_seed(3);
  nn::Linear d1(5, 4);
  nn::manual_seed(3);
  nn::Linear d2(5, 4);
  CHECK(d1.weight.to_vector() == d2.weight.to_vector());

  struct Case {
    nn::Init init;
    double variance;
    double bound;  // 0: unbounded (normal)
  };
  const double in = 200, out = 100;
  for (Case c : {Case{nn::Init::KaimingUniform, 2 / in, std::sqrt(6 / in)},
                 Case{nn::Init::KaimingNormal, 2 / in, 0},
                 Case{nn::Init::XavierUniform, 2 / (in + out), std::sqrt(6 / (in + out))},
                 Case{nn::Init::XavierNormal, 2 / (in + out), 0}}) {
    Rng rng(11);
    nn::Linear l(200, 100, rng, {.init = c.init});
    const auto w = l.weight.data();
    double s = 0, s2 = 0, biggest = 0;
    for (double v : w) s += v, s2 += v * v, biggest = std::max(biggest, std::fabs(v));
    const double n = static_cast<double>(w.size());
    CHECK(std::fabs(s / n) < 0.05 * std::sqrt(c.variance) * 10);
    CHECK(s2 / n == doctest::Approx(c.variance).epsilon(0.05));
    if (c.bound > 0) CHECK(biggest <= c.bound);
  }
}

TEST_CASE("activations: modules match the functional forms") {
  Tensor x = Tensor::from({5}, {-2, -0.5, 0.1, 1, 3});
  nn::ReLU relu_m;
  nn::ELU elu_m(0.7);
  nn::Softplus softplus_m;
  nn::Tanh tanh_m;
  nn::Sigmoid sigmoid_m;
  CHECK(relu_m(x).to_vector() == nn::relu(x).to_vector());
  CHECK(elu_m(x).to_vector() == elu(x, 0.7).to_vector());
  CHECK(softplus_m(x).to_vector() == softplus(x).to_vector());
  CHECK(tanh_m(x).to_vector() == tanh(x).to_vector());
  CHECK(sigmoid_m(x).to_vector() == sigmoid(x).to_vector());
  CHECK(elu_m.alpha() == 0.7);
  CHECK(relu_m.parameters().empty());
}

TEST_CASE("sequential: applies layers in order, names them by position") {
  Rng rng(1);
  nn::Sequential mlp;
  auto& first = mlp.emplace<nn::Linear>(2, 4, rng);
  mlp.emplace<nn::Tanh>();
  mlp.push_back(std::make_shared<nn::Linear>(4, 1, rng));
  CHECK(mlp.size() == 3);
  Tensor x = test::uniform({3, 2}, -1, 1);
  auto& last = dynamic_cast<nn::Linear&>(mlp[2]);
  Tensor expected = last(tanh(first(x)));
  CHECK(mlp(x).to_vector() == expected.to_vector());
  std::vector<std::string> names;
  for (auto& [name, t] : mlp.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK_THROWS_AS(mlp[3], ShapeError);
  CHECK_THROWS_AS(mlp.push_back(nullptr), DomainError);

  nn::Sequential built({std::make_shared<nn::Linear>(2, 2, rng), std::make_shared<nn::ReLU>()});
  CHECK(built.size() == 2);
  CHECK(built.parameters().size() == 2);
}
