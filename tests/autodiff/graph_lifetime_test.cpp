// A graph that nobody can differentiate any more is freed at once: the tape releases itself
// when the last tensor with history held outside the tape is dropped (docs/engine.md).
#include "helpers.hpp"

using namespace cholla;

TEST_CASE("a dropped graph releases the tape; a held one keeps it") {
  Tape::current().release();
  Tensor x = Tensor::from({3}, {0.5, -1.0, 2.0}).requires_grad(true);
  {
    Tensor y = sum(exp(x) * x);
    CHECK(Tape::current().size() > 0);
  }
  CHECK(Tape::current().size() == 0);

  // Holding any intermediate keeps the whole tape: it can still be differentiated.
  Tensor h = exp(x);
  { Tensor y = sum(h * x); }
  CHECK(Tape::current().size() > 0);
  Tensor y = sum(h * x);
  y.backward();
  for (int i = 0; i < 3; ++i) {
    const double v = x.data()[static_cast<size_t>(i)];
    CHECK(x.grad().data()[static_cast<size_t>(i)] == doctest::Approx(std::exp(v) * (1 + v)));
  }
  CHECK(Tape::current().size() == 0);
  h = Tensor();
  x.zero_grad();

  // Tensors captured by backward closures (here exp's output and mul's inputs) are the tape's
  // own handles and do not keep it alive.
  { Tensor z = mul(exp(x), tanh(x)) / (x + 3.0); }
  CHECK(Tape::current().size() == 0);
}

TEST_CASE("retain_graph and create_graph: the tape lives as long as its tensors") {
  Tensor x = Tensor::scalar(0.3).requires_grad(true);
  {
    Tensor y = x * x * x;
    y.backward({.retain_graph = true});
    CHECK(Tape::current().size() > 0);
    y.backward();
    CHECK(x.grad().item() == doctest::Approx(2 * 3 * 0.09));
  }
  x.zero_grad();
  {
    Tensor y = x * x * x;
    y.backward({.retain_graph = true});
  }
  CHECK(Tape::current().size() == 0);  // retained, then dropped: freed
  x.zero_grad();
  Tensor d2;
  {
    Tensor y = exp(2.0 * x);
    Tensor d1 = grad({y}, {x}, {.create_graph = true})[0];
    d2 = grad({d1}, {x}, {.create_graph = true})[0];
  }
  CHECK(Tape::current().size() > 0);  // d2 has history
  CHECK(grad({d2}, {x})[0].item() == doctest::Approx(8 * std::exp(0.6)));
  CHECK(Tape::current().size() == 0);
}

TEST_CASE("detach and reshape share values without keeping history alive") {
  Tensor x = Tensor::from({4}, {1.0, 2.0, 3.0, 4.0}).requires_grad(true);
  Tensor kept;
  {
    Tensor y = exp(x);
    kept = reshape(y, {2, 2}).detach();  // values of y, no history
  }
  CHECK(Tape::current().size() == 0);
  CHECK(kept.at({1, 1}) == doctest::Approx(std::exp(4.0)));
  CHECK_FALSE(kept.requires_grad());
}

TEST_CASE("an evaluation loop that forgot NoGrad runs in constant memory") {
  Rng rng(3);
  nn::Linear hidden(3, 16);
  nn::MultivariateNormalHead head(16, 2);
  const Tensor x = Tensor::randn({64, 3}, rng);
  const Tensor y = Tensor::randn({64, 2}, rng);
  long start = 0;
  double total = 0.0;
  const int iterations = 4000;
  for (int i = 0; i < iterations; ++i) {
    if (i == iterations / 10) start = test::resident_kib();
    Tensor loss = -mean(head(tanh(hidden(x))).log_prob(y));
    total += loss.item();
  }
  CHECK(std::isfinite(total));
  CHECK(Tape::current().size() == 0);
  const long growth = test::resident_kib() - start;
#ifndef __SANITIZE_ADDRESS__
  // Each iteration's graph is ~100 KiB; kept, 3,600 of them would be hundreds of MiB.
  CHECK_MESSAGE(growth < 4096, "resident memory grew by ", growth, " KiB");
#else
  (void)growth;  // ASan quarantines freed memory: RSS grows by design (tape size checked above)
#endif
}

TEST_CASE("the values of a temporary with history outlive it") {
  // The temporary is the last external handle of its graph: it dies, and the tape (which
  // held its values) is released, at the end of the range-for's initialiser. data() on an
  // rvalue therefore returns a copy, not a view (ASan reports a use-after-free otherwise).
  static_assert(std::is_same_v<decltype(std::declval<Tensor>().data()), std::vector<double>>);
  static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().data()),
                               std::span<const double>>);
  Tape::current().release();
  Tensor x = Tensor::from({2}, {0.25, -1.5}).requires_grad(true);
  std::vector<double> seen;
  for (double v : (exp(x) * 2.0).data()) seen.push_back(v);
  CHECK(Tape::current().size() == 0);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == doctest::Approx(2 * std::exp(0.25)));
  CHECK(seen[1] == doctest::Approx(2 * std::exp(-1.5)));

  // The same for shape(): a temporary's shape is returned by value (no allocation: inline).
  static_assert(std::is_same_v<decltype(std::declval<Tensor>().shape()), Shape>);
  static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().shape()), const Shape&>);
  const Shape& s = (exp(x) * 2.0).shape();  // bound to a copy that lives as long as `s`
  CHECK(Tape::current().size() == 0);
  CHECK(s == Shape{2});
}
