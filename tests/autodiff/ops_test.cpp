// Every elementwise, reduction and shape op: values against independently computed numbers,
// then gradcheck and gradgradcheck over several shapes, broadcasting and size-1 dims included.
#include <cmath>

#include "autodiff/detail/storage.hpp"
#include "helpers.hpp"

using namespace cholla;
using test::check_gradients;
using test::check_values;
using test::uniform;
using Fn = std::vector<Tensor>;

TEST_CASE("arithmetic: values with broadcasting") {
  Tensor a = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::from({3}, {10, 20, 30});
  check_values(a + b, {11, 22, 33, 14, 25, 36});
  check_values(a - b, {-9, -18, -27, -6, -15, -24});
  check_values(a * b, {10, 40, 90, 40, 100, 180});
  check_values(b / a, {10, 10, 10, 2.5, 4, 5});
  Tensor c = Tensor::from({2, 1}, {1, -1});
  CHECK((c * b).shape() == Shape{2, 3});
  check_values(c * b, {10, 20, 30, -10, -20, -30});
  check_values(2.0 - a, {1, 0, -1, -2, -3, -4});
  check_values(3.0 / b, {0.3, 0.15, 0.1});
  check_values(-a, {-1, -2, -3, -4, -5, -6});
}

TEST_CASE("arithmetic: gradcheck with broadcasting and size-1 dims") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3}, {3}}, {{2, 3}, {3}}, {{2, 1}, {1, 4}}, {{4, 1, 3}, {2, 3}}, {{}, {2, 2}}, {{1}, {1}}};
  for (const auto& pair : shapes) {
    const Shape& sa = pair.first;  // named, not bound: clang 14 lambdas cannot capture bindings
    const Shape& sb = pair.second;
    CAPTURE(format_shape(sa));
    CAPTURE(format_shape(sb));
    Tensor a = uniform(sa, 0.5, 2.0, 1), b = uniform(sb, 0.5, 2.0, 2);
    check_gradients([](const Fn& x) { return x[0] + x[1]; }, {a, b});
    check_gradients([](const Fn& x) { return x[0] - x[1]; }, {a, b});
    check_gradients([](const Fn& x) { return x[0] * x[1]; }, {a, b});
    check_gradients([](const Fn& x) { return x[0] / x[1]; }, {a, b});
    check_gradients([](const Fn& x) { return pow(x[0], x[1]); }, {a, b});
    check_gradients([](const Fn& x) { return maximum(x[0], x[1]) * minimum(x[0], x[1]); }, {a, b});
  }
}

TEST_CASE("unary: values against the C library") {
  const std::vector<double> v = {-2.5, -0.3, 0.0, 0.7, 3.0};
  Tensor x = Tensor::from({5}, v);
  for (size_t i = 0; i < v.size(); ++i) {
    const double t = v[i];
    CAPTURE(t);
    CHECK(exp(x).data()[i] == doctest::Approx(std::exp(t)));
    CHECK(abs(x).data()[i] == doctest::Approx(std::fabs(t)));
    CHECK(tanh(x).data()[i] == doctest::Approx(std::tanh(t)));
    CHECK(sigmoid(x).data()[i] == doctest::Approx(1.0 / (1.0 + std::exp(-t))));
    CHECK(relu(x).data()[i] == doctest::Approx(t > 0 ? t : 0.0));
    CHECK(elu(x).data()[i] == doctest::Approx(t > 0 ? t : std::exp(t) - 1.0));
    CHECK(softplus(x).data()[i] == doctest::Approx(std::log(1.0 + std::exp(t))));
    CHECK(square(x).data()[i] == doctest::Approx(t * t));
    CHECK(clamp(x, -1.0, 1.0).data()[i] == doctest::Approx(std::min(1.0, std::max(-1.0, t))));
  }
  Tensor p = Tensor::from({3}, {0.25, 1.0, 4.0});
  check_values(sqrt(p), {0.5, 1.0, 2.0});
  check_values(log(p), {std::log(0.25), 0.0, std::log(4.0)});
  check_values(log1p(p), {std::log(1.25), std::log(2.0), std::log(5.0)});
  check_values(pow(p, 1.5), {0.125, 1.0, 8.0});
  check_values(pow(p, -0.5), {2.0, 1.0, 0.5});
}

TEST_CASE("unary: stable at extreme arguments") {
  Tensor x = Tensor::from({4}, {-1000.0, -40.0, 40.0, 1000.0});
  check_values(softplus(x), {0.0, std::log1p(std::exp(-40.0)), 40.0 + std::log1p(std::exp(-40.0)), 1000.0});
  check_values(sigmoid(x), {0.0, 1.0 / (1.0 + std::exp(40.0)), 1.0 / (1.0 + std::exp(-40.0)), 1.0});
  CHECK(logsumexp(x).item() == doctest::Approx(1000.0));
}

TEST_CASE("unary: gradcheck and gradgradcheck") {
  for (Shape s : {Shape{}, Shape{1}, Shape{5}, Shape{2, 3}, Shape{2, 1, 3}}) {
    CAPTURE(format_shape(s));
    Tensor any = uniform(s, -2.0, 2.0, 3);
    Tensor positive = uniform(s, 0.3, 3.0, 4);
    // Keep kinks (relu, abs, clamp, elu at 0) away from the finite-difference stencil.
    Tensor away = any + where(greater(any, Tensor::zeros({})), Tensor::full({}, 0.1), Tensor::full({}, -0.1));
    check_gradients([](const Fn& x) { return exp(x[0]); }, {any});
    check_gradients([](const Fn& x) { return log(x[0]); }, {positive});
    check_gradients([](const Fn& x) { return log1p(x[0]); }, {positive});
    check_gradients([](const Fn& x) { return sqrt(x[0]); }, {positive});
    check_gradients([](const Fn& x) { return square(x[0]); }, {any});
    check_gradients([](const Fn& x) { return pow(x[0], 2.5); }, {positive});
    check_gradients([](const Fn& x) { return pow(x[0], -1.5); }, {positive});
    check_gradients([](const Fn& x) { return reciprocal(x[0]); }, {positive});
    check_gradients([](const Fn& x) { return 1.0 / x[0]; }, {positive});
    check_gradients([](const Fn& x) { return tanh(x[0]); }, {any});
    check_gradients([](const Fn& x) { return sigmoid(x[0]); }, {any});
    check_gradients([](const Fn& x) { return softplus(x[0]); }, {any});
    check_gradients([](const Fn& x) { return abs(x[0]) * x[0]; }, {away});
    check_gradients([](const Fn& x) { return relu(x[0]) * x[0]; }, {away});
    check_gradients([](const Fn& x) { return elu(x[0], 0.7); }, {away});
    check_gradients([](const Fn& x) { return clamp(x[0], -1.0, 1.0) * x[0]; }, {away});
    check_gradients([](const Fn& x) { return 3.0 * x[0] - 2.0 + x[0] / 4.0; }, {any});
  }
}

TEST_CASE("reductions: values") {
  Tensor x = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(sum(x).item() == 21);
  CHECK(sum(x).shape() == Shape{});
  check_values(sum(x, {0}), {5, 7, 9});
  check_values(sum(x, {1}), {6, 15});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1});
  CHECK(sum(x, {-1, 0}).shape() == Shape{});
  CHECK(mean(x).item() == 3.5);
  check_values(mean(x, {1}), {2, 5});
  check_values(max(x, {0}), {4, 5, 6});
  const double l1 = std::log(std::exp(1) + std::exp(2) + std::exp(3));
  check_values(logsumexp(x, {1}), {l1, l1 + 3});
  Tensor sm = softmax(x, 1);
  const double z = std::exp(1) + std::exp(2) + std::exp(3);
  check_values(sm, {std::exp(1) / z, std::exp(2) / z, std::exp(3) / z, std::exp(1) / z,
                    std::exp(2) / z, std::exp(3) / z});
  check_values(log_softmax(x, 0), {std::log(1 / (1 + std::exp(3))), std::log(1 / (1 + std::exp(3))),
                                   std::log(1 / (1 + std::exp(3))), std::log(1 / (1 + std::exp(-3))),
                                   std::log(1 / (1 + std::exp(-3))), std::log(1 / (1 + std::exp(-3)))});
}

TEST_CASE("reductions: gradcheck and gradgradcheck") {
  Tensor x = uniform({3, 4, 2}, -1.5, 1.5, 5);
  check_gradients([](const Fn& v) { return sum(v[0]); }, {x});
  check_gradients([](const Fn& v) { return sum(v[0], {1}) * sum(v[0], {1}); }, {x});
  check_gradients([](const Fn& v) { return mean(v[0], {0, 2}, true) * v[0]; }, {x});
  check_gradients([](const Fn& v) { return logsumexp(v[0], {1}); }, {x});
  check_gradients([](const Fn& v) { return logsumexp(v[0]); }, {x});
  check_gradients([](const Fn& v) { return softmax(v[0], -1); }, {x});
  check_gradients([](const Fn& v) { return log_softmax(v[0], 1); }, {x});
  check_gradients([](const Fn& v) { return max(v[0], {2}) * 2.0; }, {x});
  check_gradients([](const Fn& v) { return expand(v[0], {3, 3, 4, 2}); }, {x});
  check_gradients([](const Fn& v) { return sum_to(v[0], {4, 1}); }, {x});
}

TEST_CASE("expand: each copy path against the broadcasting rule") {
  // One element (a fill), whole repeats along leading dims (block copies), and a size-1 inner
  // dim (the general walk): out[i, j, k] = x[i or 0, j or 0, k or 0].
  const Tensor x = Tensor::from({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  check_values(expand(Tensor::scalar(7.5), {2, 2}), {7.5, 7.5, 7.5, 7.5});
  check_values(expand(Tensor::from({1, 1}, {-2}), {2, 3}), {-2, -2, -2, -2, -2, -2});
  check_values(expand(Tensor::from({3}, {1, 2, 3}), {2, 3}), {1, 2, 3, 1, 2, 3});
  check_values(expand(Tensor::from({1, 2}, {8, 9}), {2, 2, 2}), {8, 9, 8, 9, 8, 9, 8, 9});
  check_values(expand(x, {2, 2, 3}), {1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6});
  check_values(expand(Tensor::from({2, 1}, {1, 2}), {2, 3}), {1, 1, 1, 2, 2, 2});
  check_gradients([](const Fn& v) { return expand(v[0], {4, 2, 3}); }, {uniform({2, 3}, -1, 1, 9)});
  check_gradients([](const Fn& v) { return expand(v[0], {3, 2}); }, {uniform({}, -1, 1, 10)});
}

TEST_CASE("shape ops: values") {
  Tensor x = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  check_values(transpose(x), {1, 4, 2, 5, 3, 6});
  CHECK(transpose(x).shape() == Shape{3, 2});
  CHECK(reshape(x, {3, -1}).shape() == Shape{3, 2});
  check_values(slice(x, 1, 1, 3), {2, 3, 5, 6});
  check_values(slice(x, 1, 0, 3, 2), {1, 3, 4, 6});
  check_values(slice(x, -1, -2, 3), {2, 3, 5, 6});
  check_values(select(x, 0, 1), {4, 5, 6});
  check_values(index_select(x, 1, {2, 0, 2}), {3, 1, 3, 6, 4, 6});
  check_values(concat({x, x}, 0), {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6});
  check_values(concat({x, slice(x, 1, 0, 1)}, 1), {1, 2, 3, 1, 4, 5, 6, 4});
  Tensor s = stack({x, 10.0 * x}, 1);
  CHECK(s.shape() == Shape{2, 2, 3});
  check_values(s, {1, 2, 3, 10, 20, 30, 4, 5, 6, 40, 50, 60});
  auto parts = split(x, {1, 2}, 1);
  REQUIRE(parts.size() == 2);
  check_values(parts[0], {1, 4});
  check_values(parts[1], {2, 3, 5, 6});
  CHECK(unsqueeze(x, 0).shape() == Shape{1, 2, 3});
  CHECK(squeeze(unsqueeze(x, 2), 2).shape() == Shape{2, 3});
}

TEST_CASE("shape ops: gradcheck and gradgradcheck") {
  Tensor x = uniform({2, 3, 4}, -1.0, 1.0, 6);
  Tensor y = uniform({2, 2, 4}, -1.0, 1.0, 7);
  check_gradients([](const Fn& v) { return square(reshape(v[0], {4, 6})); }, {x});
  check_gradients([](const Fn& v) { return square(transpose(v[0])); }, {x});
  check_gradients([](const Fn& v) { return square(slice(v[0], 1, 1, 3)); }, {x});
  check_gradients([](const Fn& v) { return square(slice(v[0], 2, 0, 4, 3)); }, {x});
  check_gradients([](const Fn& v) { return square(select(v[0], 2, -1)); }, {x});
  check_gradients([](const Fn& v) { return square(index_select(v[0], 1, {2, 2, 0})); }, {x});
  check_gradients([](const Fn& v) { return square(concat({v[0], v[1]}, 1)); }, {x, y});
  check_gradients([](const Fn& v) { return square(stack({v[0], v[0] * 2.0}, 3)); }, {x});
  check_gradients([](const Fn& v) {
    auto p = split(v[0], {1, 3}, 2);
    return square(p[0]) * p[1];
  }, {x});
  check_gradients([](const Fn& v) { return where(greater(v[0], Tensor::zeros({})), v[0] * v[0], v[1] * 3.0); },
                  {x, slice(y, 1, 0, 1)});
}

TEST_CASE("ops: shape errors name the op and both shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(a + b, doctest::Contains("add: shapes [2, 3] and [4] do not broadcast"),
                       ShapeError);
  try {
    (void)(a * b);
    FAIL("no throw");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "mul");
    REQUIRE(e.shapes().size() == 2);
    CHECK(e.shapes()[0] == Shape{2, 3});
    CHECK(e.shapes()[1] == Shape{4});
  }
  CHECK_THROWS_WITH_AS(reshape(a, {4, 2}), doctest::Contains("cannot reshape a tensor of shape [2, 3]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(transpose(b), doctest::Contains("transpose: needs at least 2 dimensions"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(sum(a, {2}), doctest::Contains("dimension 2 is out of range"), ShapeError);
  CHECK_THROWS_WITH_AS(index_select(a, 0, {2}), doctest::Contains("index 2 is out of range"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(concat({a, b}, 0), doctest::Contains("concat"), ShapeError);
  CHECK_THROWS_WITH_AS(split(a, {1, 1}, 1), doctest::Contains("sizes add up to 2"), ShapeError);
  CHECK_THROWS_WITH_AS(Tensor::from({2, 2}, {1, 2, 3}), doctest::Contains("3 values given for shape [2, 2]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(a.item(), doctest::Contains("item() needs exactly one"), ShapeError);
  CHECK_THROWS_AS((void)Tensor().shape(), GraphError);
}

TEST_CASE("elementwise ops: the in-place first-order backward gives the composed rule's bits") {
  // backward() uses the raw in-place rule; grad() with create_graph the op-composed one.
  struct Case {
    Tensor (*op)(const Tensor&);
    double (*derivative)(double);  // closed form
    bool derivative_has_history = true;  // false for a constant derivative
  };
  const Case cases[] = {
      {[](const Tensor& t) { return cholla::tanh(t); },
       [](double v) { return 1.0 - std::tanh(v) * std::tanh(v); }},
      {[](const Tensor& t) { return cholla::sigmoid(t); },
       [](double v) { const double s = 1.0 / (1.0 + std::exp(-v)); return s * (1.0 - s); }},
      {[](const Tensor& t) { return affine(t, -1.7, 0.3); }, [](double) { return -1.7; }, false},
      {[](const Tensor& t) { return cholla::exp(t); }, [](double v) { return std::exp(v); }},
      // Compositions keep log, log1p, sqrt and reciprocal inside their domains.
      {[](const Tensor& t) { return cholla::log(t * t + 0.5); },
       [](double v) { return 2 * v / (v * v + 0.5); }},
      {[](const Tensor& t) { return cholla::log1p(t * t); }, [](double v) { return 2 * v / (1 + v * v); }},
      {[](const Tensor& t) { return cholla::sqrt(t * t + 0.5); },
       [](double v) { return v / std::sqrt(v * v + 0.5); }},
      {[](const Tensor& t) { return square(t); }, [](double v) { return 2 * v; }},
      {[](const Tensor& t) { return reciprocal(t * t + 0.5); },
       [](double v) { return -2 * v / ((v * v + 0.5) * (v * v + 0.5)); }},
      {[](const Tensor& t) { return relu(t); }, [](double v) { return v > 0 ? 1.0 : 0.0; }, false},
      {[](const Tensor& t) { return abs(t); }, [](double v) { return v > 0 ? 1.0 : -1.0; }, false},
  };
  Rng rng(11);
  const Tensor values = Tensor::uniform({4, 5}, -4.0, 4.0, rng);
  const Tensor w = Tensor::uniform({4, 5}, -2.0, 2.0, rng);
  for (const Case& c : cases) {
    Tensor x = values.detach().requires_grad(true);
    sum(c.op(x) * w).backward();
    const std::vector<double> fused = x.grad().to_vector();
    std::vector<Tensor> composed = grad({sum(c.op(x) * w)}, {x}, {.create_graph = true});
    // The composed rule has history: it really ran.
    CHECK(composed[0].requires_grad() == c.derivative_has_history);
    CHECK(composed[0].to_vector() == fused);
    for (size_t i = 0; i < fused.size(); ++i)
      CHECK(fused[i] == doctest::Approx(w.data()[i] * c.derivative(values.data()[i])).epsilon(1e-13));
    Tape::current().release();
  }
}

TEST_CASE("an in-place backward never writes into values someone else holds") {
  Rng rng(12);
  const Tensor values = Tensor::uniform({5}, -2.0, 2.0, rng);
  auto dtanh = [](double v) { return 1.0 - std::tanh(v) * std::tanh(v); };

  // A seed the caller passes is theirs: tanh's rule works on a copy.
  Tensor x = values.detach().requires_grad(true);
  const Tensor seed = Tensor::from({5}, {1.0, -2.0, 0.5, 3.0, -0.25});
  const std::vector<double> seed_before = seed.to_vector();
  cholla::tanh(x * 2.0).backward(seed, {});
  CHECK(seed.to_vector() == seed_before);
  for (size_t i = 0; i < 5; ++i)
    CHECK(x.grad().data()[i] == doctest::Approx(seed_before[i] * 2.0 * dtanh(2.0 * values.data()[i])));

  // add hands the same gradient to both inputs: x's .grad() keeps it while tanh's rule runs.
  Tensor y = values.detach().requires_grad(true);
  sum(y + cholla::tanh(y)).backward();
  for (size_t i = 0; i < 5; ++i)
    CHECK(y.grad().data()[i] == doctest::Approx(1.0 + dtanh(values.data()[i])).epsilon(1e-14));

  // The same gradient reaching two in-place rules (two uses of one tensor).
  Tensor z = values.detach().requires_grad(true);
  Tensor h = z * 1.0;
  sum(cholla::tanh(h) + cholla::sigmoid(h)).backward();
  for (size_t i = 0; i < 5; ++i) {
    const double v = values.data()[i], s = 1.0 / (1.0 + std::exp(-v));
    CHECK(z.grad().data()[i] == doctest::Approx(dtanh(v) + s * (1.0 - s)).epsilon(1e-14));
  }
}

TEST_CASE("an intermediate nobody holds is freed when dropped, not at the tape's release") {
  if constexpr (detail::kPooledMemory) {  // counted through the per-thread object cache
    {
      std::vector<Tensor> warm(4000, Tensor());
      for (Tensor& t : warm) t = Tensor::scalar(0.0);
    }  // the cache now holds at least 4,000 objects
    Tensor x = Tensor::scalar(0.5).requires_grad(true);
    Tensor y = x * 1.0;
    const auto before = static_cast<int64_t>(detail::t_impl_cache.count);
    for (int i = 0; i < 1000; ++i) y = y * 1.0001 + 0.0001;
    const auto in_use = before - static_cast<int64_t>(detail::t_impl_cache.count);
    CHECK(in_use <= 2);  // y and a temporary, not 2,000 tensors held by the tape
    y.backward();
    CHECK(x.grad().item() == doctest::Approx(std::pow(1.0001, 1000)));
  }
}

TEST_CASE("sum and mean of all elements are one tape entry each, with the composed ops' values") {
  Tape::current().release();
  Tensor x = Tensor::from({2, 3}, {0.5, -1.25, 2.0, 3.5, -0.75, 1.0}).requires_grad(true);
  const Tensor s = sum(x);
  CHECK(Tape::current().size() == 1);
  const Tensor m = mean(x);
  CHECK(Tape::current().size() == 2);
  CHECK(s.shape() == Shape{});
  CHECK(s.item() == 5.0);
  CHECK(m.item() == 5.0 * (1.0 / 6.0));
  mean(x * x).backward();  // d/dx mean(x^2) = 2x / 6
  for (size_t i = 0; i < 6; ++i) CHECK(x.grad().data()[i] == doctest::Approx(x.data()[i] / 3.0));
  CHECK(gradgradcheck([](const std::vector<Tensor>& v) { return mean(v[0] * v[0] * v[0]); }, {x}).ok);
  // backward() takes the raw rule (one filled tensor), create_graph the composed one.
  for (Tensor (*reduce)(const Tensor&) : {+[](const Tensor& t) { return mean(t); },
                                          +[](const Tensor& t) { return sum(t); }}) {
    x.zero_grad();
    (reduce(x) * 3.0).backward();
    const std::vector<Tensor> composed = grad({reduce(x) * 3.0}, {x}, {.create_graph = true});
    CHECK(composed[0].to_vector() == x.grad().to_vector());
    Tape::current().release();
  }
  CHECK(x.grad().data()[0] == 3.0);  // sum's gradient, last
}

TEST_CASE("add passes its gradient on unchanged: to both inputs, twice to one, to one of two") {
  Rng rng(13);
  const Tensor values = Tensor::uniform({4}, -1.5, 1.5, rng);
  Tensor x = values.detach().requires_grad(true);
  sum(x + x).backward();  // the same handle reaches one leaf twice
  for (size_t i = 0; i < 4; ++i) CHECK(x.grad().data()[i] == 2.0);
  x.zero_grad();
  const Tensor constant = Tensor::from({4}, {1.0, 2.0, 3.0, 4.0});
  sum(cholla::tanh(x + constant) + x * 3.0).backward();  // one input takes no part
  for (size_t i = 0; i < 4; ++i) {
    const double t = std::tanh(values.data()[i] + constant.data()[i]);
    CHECK(x.grad().data()[i] == doctest::Approx(1.0 - t * t + 3.0).epsilon(1e-14));
  }
  CHECK(constant.to_vector() == std::vector<double>{1.0, 2.0, 3.0, 4.0});
  // The raw pass-through and the composed rule agree bit for bit.
  x.zero_grad();
  auto f = [&] { return sum(cholla::sigmoid(x + cholla::tanh(x)) * constant); };
  f().backward();
  const std::vector<Tensor> composed = grad({f()}, {x}, {.create_graph = true});
  CHECK(composed[0].to_vector() == x.grad().to_vector());
  Tape::current().release();
}

TEST_CASE("mul of one shape: the in-place rule gives the composed rule's bits") {
  Rng rng(14);
  const Tensor av = Tensor::uniform({3, 4}, -2.0, 2.0, rng), bv = Tensor::uniform({3, 4}, -2.0, 2.0, rng);
  Tensor a = av.detach().requires_grad(true), b = bv.detach().requires_grad(true);
  auto f = [&] { return sum(cholla::tanh(a * b) * a + a * a); };  // x * x reaches x twice
  f().backward();
  const std::vector<Tensor> composed = grad({f()}, {a, b}, {.create_graph = true});
  CHECK(composed[0].to_vector() == a.grad().to_vector());
  CHECK(composed[1].to_vector() == b.grad().to_vector());
  for (size_t i = 0; i < 12; ++i) {
    const double x = av.data()[i], y = bv.data()[i], t = std::tanh(x * y);
    CHECK(a.grad().data()[i] == doctest::Approx((1 - t * t) * y * x + t + 2 * x).epsilon(1e-13));
    CHECK(b.grad().data()[i] == doctest::Approx((1 - t * t) * x * x).epsilon(1e-13));
  }
  Tape::current().release();
  // Only one input takes part; a constant factor keeps its values.
  Tensor c = av.detach().requires_grad(true);
  sum(c * bv).backward();
  CHECK(c.grad().to_vector() == bv.to_vector());
  CHECK(gradgradcheck([&](const std::vector<Tensor>& v) { return sum(v[0] * v[1] * v[0]); },
                      {a.detach().requires_grad(true), b.detach().requires_grad(true)}).ok);
}
