// The tape: accumulation, release, retain_graph, NoGrad, grad() with create_graph (second
// derivatives), misuse as GraphError, flat memory over many steps, two threads.
#include <cmath>
#include <fstream>
#include <thread>

#include "helpers.hpp"

using namespace cholla;

TEST_CASE("backward: closed-form gradient and accumulation into leaves") {
  Tensor x = Tensor::from({3}, {0.5, -1.0, 2.0}).requires_grad(true);
  Tensor y = sum(exp(x) * x);  // dy/dx = exp(x) (1 + x)
  y.backward();
  for (int i = 0; i < 3; ++i) {
    const double v = x.data()[static_cast<size_t>(i)];
    CHECK(x.grad().data()[static_cast<size_t>(i)] == doctest::Approx(std::exp(v) * (1 + v)));
  }
  // A second backward on a fresh graph adds to the existing gradient.
  sum(3.0 * x).backward();
  for (int i = 0; i < 3; ++i) {
    const double v = x.data()[static_cast<size_t>(i)];
    CHECK(x.grad().data()[static_cast<size_t>(i)] == doctest::Approx(std::exp(v) * (1 + v) + 3.0));
  }
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("backward: fan-out sums contributions; tape is empty afterwards") {
  Tensor x = Tensor::scalar(1.5).requires_grad(true);
  Tensor a = x * x;
  Tensor y = a * x + a + x;  // y = x^3 + x^2 + x, dy/dx = 3x^2 + 2x + 1
  CHECK(Tape::current().size() > 0);
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(3 * 2.25 + 3 + 1));
  CHECK(Tape::current().size() == 0);
}

TEST_CASE("backward: misuse is a GraphError") {
  Tensor x = Tensor::from({2}, {1.0, 2.0}).requires_grad(true);
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("the output has shape [2], not one element"),
                       GraphError);
  // With a seed it works.
  y = x * 2.0;
  y.backward(Tensor::from({2}, {1.0, 10.0}), {});
  CHECK(x.grad().data()[1] == doctest::Approx(20.0));

  // Reusing a released graph.
  x.zero_grad();
  Tensor h = exp(x);
  Tensor l1 = sum(h);
  l1.backward();
  Tensor l2 = sum(h * 2.0);
  CHECK_THROWS_WITH_AS(l2.backward(), doctest::Contains("released"), GraphError);

  // A tensor that needs no grad.
  Tensor c = Tensor::ones({});
  CHECK_THROWS_WITH_AS(c.backward(), doctest::Contains("does not require grad"), GraphError);
  // requires_grad on a non-leaf.
  Tensor z = x * 1.0;
  CHECK_THROWS_AS(z.requires_grad(true), GraphError);
  Tape::current().release();
}

TEST_CASE("backward: retain_graph allows a second pass") {
  Tensor x = Tensor::scalar(2.0).requires_grad(true);
  Tensor y = x * x * x;
  y.backward({.retain_graph = true});
  CHECK(x.grad().item() == doctest::Approx(12.0));
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(24.0));
}

TEST_CASE("NoGrad records nothing and nests") {
  Tensor x = Tensor::scalar(2.0).requires_grad(true);
  {
    NoGrad outer;
    Tensor y = x * x;
    CHECK_FALSE(y.requires_grad());
    {
      NoGrad inner;
    }
    CHECK_FALSE(grad_enabled());
  }
  CHECK(grad_enabled());
  CHECK(Tape::current().size() == 0);
}

TEST_CASE("grad: does not touch .grad(), works for intermediates") {
  Tensor x = Tensor::from({2}, {1.0, 3.0}).requires_grad(true);
  Tensor h = x * x;
  Tensor y = sum(h * 5.0);
  auto g = grad({y}, {x, h});
  CHECK_FALSE(x.grad().defined());
  test::check_values(g[0], {10.0, 30.0});
  test::check_values(g[1], {5.0, 5.0});
  Tensor unused = Tensor::ones({2}).requires_grad(true);
  Tensor y2 = sum(x * 2.0);
  CHECK_THROWS_WITH_AS(grad({y2}, {unused}), doctest::Contains("not used"), GraphError);
  Tensor y3 = sum(x * 2.0);
  auto g3 = grad({y3}, {unused}, {.allow_unused = true});
  test::check_values(g3[0], {0.0, 0.0});
}

TEST_CASE("grad with create_graph: Hessian-vector product of a closed form") {
  // f(x) = sum_i x_i^3 + x_0 x_1 ; H = diag(6 x) + [[0,1],[1,0]]
  Tensor x = Tensor::from({2}, {0.7, -1.2}).requires_grad(true);
  Tensor v = Tensor::from({2}, {2.0, 0.5});
  Tensor f = sum(x * x * x) + select(x, 0, 0) * select(x, 0, 1);
  auto g = grad({f}, {x}, {.create_graph = true});
  CHECK(g[0].requires_grad());
  Tensor gv = sum(g[0] * v);
  auto hv = grad({gv}, {x});
  test::check_values(hv[0], {6 * 0.7 * 2.0 + 0.5, 6 * -1.2 * 0.5 + 2.0});
  CHECK(Tape::current().size() == 0);
}

TEST_CASE("third derivative through create_graph twice") {
  // y = exp(2x): y''' = 8 exp(2x)
  Tensor x = Tensor::scalar(0.3).requires_grad(true);
  Tensor y = exp(2.0 * x);
  Tensor d1 = grad({y}, {x}, {.create_graph = true})[0];
  Tensor d2 = grad({d1}, {x}, {.create_graph = true})[0];
  Tensor d3 = grad({d2}, {x})[0];
  CHECK(d1.item() == doctest::Approx(2 * std::exp(0.6)));
  CHECK(d2.item() == doctest::Approx(4 * std::exp(0.6)));
  CHECK(d3.item() == doctest::Approx(8 * std::exp(0.6)));
}

namespace {

// A small regression model trained by plain gradient descent; returns the final loss.
double train_small_model(uint64_t seed, int steps, long* growth_kib = nullptr) {
  Rng rng(seed);
  Tensor X = Tensor::randn({32, 3}, rng);
  Tensor w_true = Tensor::from({3}, {0.5, -1.0, 2.0});
  Tensor y = sum(X * w_true, {1});
  Tensor w = Tensor::zeros({3}).requires_grad(true);
  Tensor b = Tensor::zeros({}).requires_grad(true);
  double loss_value = 0.0;
  long start = 0;
  for (int step = 0; step < steps; ++step) {
    if (step == steps / 10) start = test::resident_kib();
    Tensor pred = tanh(sum(X * w, {1}) + b) * 4.0;
    Tensor loss = mean(square(pred - y));
    loss.backward();
    loss_value = loss.item();
    NoGrad guard;
    for (Tensor* p : {&w, &b}) {
      auto v = p->mutable_data();
      auto g = p->grad().data();
      for (size_t i = 0; i < v.size(); ++i) v[i] -= 0.05 * g[i];
      p->zero_grad();
    }
  }
  if (growth_kib) *growth_kib = test::resident_kib() - start;
  return loss_value;
}

}  // namespace

TEST_CASE("memory stays flat over 10,000 training steps") {
  long growth = 0;
  const double loss = train_small_model(1, 10000, &growth);
  CHECK(loss < 0.5);
  CHECK(Tape::current().size() == 0);
#ifndef __SANITIZE_ADDRESS__
  // Anything that leaked per step (a tape entry, a tensor) would cost >= 10 MiB here.
  CHECK_MESSAGE(growth < 2048, "resident memory grew by ", growth, " KiB");
#else
  // AddressSanitizer quarantines freed memory, so RSS grows by design; LeakSanitizer checks
  // for leaks at exit instead.
  (void)growth;
#endif
}

TEST_CASE("two threads train two models exactly as one after the other") {
  const double a_alone = train_small_model(7, 500);
  const double b_alone = train_small_model(8, 500);
  double a = 0.0, b = 0.0;
  std::thread ta([&] { a = train_small_model(7, 500); });
  std::thread tb([&] { b = train_small_model(8, 500); });
  ta.join();
  tb.join();
  CHECK(a == a_alone);
  CHECK(b == b_alone);
  CHECK(a != b);
}

TEST_CASE("a tensor recorded on another thread cannot be differentiated here") {
  Tensor shared;
  Tensor x = Tensor::scalar(1.0).requires_grad(true);
  std::thread t([&] { shared = x * 3.0; });
  t.join();
  Tensor y = shared * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("another thread"), GraphError);
}

// A leaf is held once per tape however many entries use it (tape.cpp, hold_leaf); the
// gradient still reaches it from every entry, also when its remembered place is stale (it
// was held at another place by an earlier tape) or the leaf belongs to another thread.
TEST_CASE("a leaf used by many entries is held once per tape") {
  Tape::current().release();
  Tensor x = Tensor::from({2}, {0.5, -1.5}).requires_grad(true);
  const detail::TensorImpl& xi = *detail::impl_of(x);
  CHECK(xi.handle_count() == 1);
  Tensor y = x * 1.0;
  for (int i = 0; i < 1000; ++i) y = y + x;  // y = 1001 x
  CHECK(xi.handle_count() == 2);             // the user's and the tape's, not 1,001
  sum(y * y).backward();                     // d/dx sum((1001 x)^2) = 2 * 1001^2 x
  for (size_t i = 0; i < 2; ++i)
    CHECK(x.grad().data()[i] == doctest::Approx(2.0 * 1001.0 * 1001.0 * x.data()[i]).epsilon(1e-13));
  CHECK(xi.handle_count() == 1);  // released with the tape

  // Next tape: another leaf takes x's old place first, so x's hint points at it.
  Tensor w = Tensor::scalar(3.0).requires_grad(true);
  x.zero_grad();
  Tensor z = w * 2.0;
  Tensor v = sum(x * z) + w;  // d/dx = z = 6, d/dw = 2 sum(x) + 1 = -1
  v.backward();
  CHECK(x.grad().data()[0] == 6.0);
  CHECK(x.grad().data()[1] == 6.0);
  CHECK(w.grad().item() == -1.0);

  // A leaf made on another thread: used here, its gradient arrives all the same.
  Tensor foreign;
  std::thread maker([&] { foreign = Tensor::scalar(2.0).requires_grad(true); });
  maker.join();
  Tensor s = foreign * 1.0;
  for (int i = 0; i < 10; ++i) s = s * foreign;  // foreign^11
  s.backward();
  CHECK(foreign.grad().item() == doctest::Approx(11.0 * 1024.0).epsilon(1e-14));
}
