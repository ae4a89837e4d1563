// Biased reference counts across threads (autodiff/ownership.cpp, docs/engine.md): a handle
// may be copied on one thread and dropped on another, and a tensor may outlive the thread
// that made it. Each case checks the count exactly and that the tensor is destroyed exactly
// when its last handle goes: a destroyed tensor drops its .grad() handle, which is observable
// on a tensor this thread keeps.
#include <chrono>
#include <thread>
#include <vector>

#include "autodiff/parallel.hpp"

#include "autodiff/detail/ownership.hpp"
#include "helpers.hpp"

using namespace cholla;

namespace {

int32_t handles_of(const Tensor& t) { return detail::impl_of(t)->handle_count(); }

// A tensor whose destruction shows as one handle less on `witness`.
Tensor watched_by(const Tensor& witness, double value) {
  Tensor t = Tensor::full(witness.shape(), value);
  t.set_grad(witness);
  return t;
}

}  // namespace

TEST_CASE("reference counts: copies made on this thread and dropped on others are reconciled") {
  Tensor witness = Tensor::full({2}, 1.0);
  Tensor t = watched_by(witness, 3.0);
  CHECK(handles_of(witness) == 2);
  std::vector<std::thread> threads;
  std::vector<int64_t> wrong(4, 0);
  for (size_t k = 0; k < 4; ++k)
    threads.emplace_back([copy = t, &wrong, k] {  // copied here (the owner's plain count), dropped there
      for (int i = 0; i < 10000; ++i) {
        Tensor again = copy;
        wrong[k] += again.data()[1] != 3.0;
      }
    });
  for (std::thread& th : threads) th.join();
  for (int64_t w : wrong) CHECK(w == 0);
  CHECK(handles_of(t) == 1);
  t = Tensor();
  // The owner's plain part still counts the four dropped copies: the tensor waits in this
  // thread's queue until the next reconciliation (every tape release does one).
  CHECK(handles_of(witness) == 2);
  detail::reconcile_dropped_elsewhere();
  CHECK(handles_of(witness) == 1);
}

TEST_CASE("reference counts: the only handle, moved to another thread and dropped there") {
  Tensor witness = Tensor::full({3}, 1.0);
  Tensor t = watched_by(witness, 2.0);
  std::thread th([moved = std::move(t)]() mutable { moved = Tensor(); });
  th.join();
  CHECK(handles_of(witness) == 2);
  Tape::current().release();  // reconciles
  CHECK(handles_of(witness) == 1);
}

TEST_CASE("reference counts: a tensor made on a thread that has exited") {
  Tensor witness = Tensor::full({3}, 1.0);
  Tensor t;
  std::thread([&] { t = Tensor::full({3}, 5.0); }).join();
  t.set_grad(witness);
  CHECK(handles_of(witness) == 2);
  {
    std::vector<Tensor> copies(100, t);
    for (const Tensor& c : copies) CHECK(c.data()[2] == 5.0);
  }
  CHECK(t.data()[0] == 5.0);
  // Its owner is gone, so the count it kept is frozen: dropping the last handle here folds it
  // in and destroys the tensor at once.
  t = Tensor();
  CHECK(handles_of(witness) == 1);
}

TEST_CASE("reference counts: four threads copy and drop handles of one tensor at once") {
  Tensor witness = Tensor::full({1}, 1.0);
  Tensor t = watched_by(witness, 7.0);
  std::vector<std::thread> threads;
  std::vector<int64_t> wrong(4, 0);
  for (size_t k = 0; k < 4; ++k)
    threads.emplace_back([&t, &wrong, k] {  // copies of the same handle, on four threads
      std::vector<Tensor> held;
      for (int i = 0; i < 20000; ++i) {
        held.push_back(t);
        if (held.size() == 64) held.clear();
        wrong[k] += t.data()[0] != 7.0;
      }
    });
  for (int i = 0; i < 20000; ++i) {  // and on the owner, racing with them
    Tensor c = t;
    Tensor d = c;
  }
  for (std::thread& th : threads) th.join();
  for (int64_t w : wrong) CHECK(w == 0);
  CHECK(handles_of(t) == 1);
  t = Tensor();
  CHECK(handles_of(witness) == 1);
}

TEST_CASE("reference counts: a graph recorded, dropped and differentiated on worker threads") {
  // Each worker records on its own tape with leaves made by this thread (their handles cross
  // threads both ways); the results are checked against the closed form d(x^3)/dx = 3x^2.
  Tensor x = Tensor::from({2}, {0.5, -1.5}).requires_grad(true);
  std::vector<std::thread> threads;
  std::vector<double> got(8, 0.0);
  for (size_t k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 50; ++rep) {
        Tensor xk = x.detach().requires_grad(true);
        { Tensor dropped = xk * xk; }  // recorded, never differentiated
        Tensor y = sum(xk * xk * xk);
        std::vector<Tensor> g = grad({y}, {xk});
        got[2 * k] = g[0].data()[0];
        got[2 * k + 1] = g[0].data()[1];
      }
    });
  for (std::thread& th : threads) th.join();
  for (size_t k = 0; k < 4; ++k) {
    CHECK(got[2 * k] == doctest::Approx(3 * 0.25));
    CHECK(got[2 * k + 1] == doctest::Approx(3 * 2.25));
  }
  CHECK(handles_of(x) == 1);
}

TEST_CASE("reference counts: tensors made by pool workers and dropped by the caller are freed") {
  // The pool's workers own what their chunks make; they reconcile after every job.
  const int64_t saved = num_threads();
  set_num_threads(2);
  Tensor witness = Tensor::full({1}, 1.0);
  {
    std::vector<Tensor> made(64);
    parallel_for(64, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        made[static_cast<size_t>(i)] = watched_by(witness, static_cast<double>(i));
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // let both threads take chunks
      }
    });
    CHECK(handles_of(witness) == 65);
    for (size_t i = 0; i < made.size(); ++i) CHECK(made[i].data()[0] == static_cast<double>(i));
  }
  // Dropped here; the caller's own are freed at once, the workers' at their next job's end.
  detail::reconcile_dropped_elsewhere();
  for (int attempt = 0; attempt < 1000 && handles_of(witness) != 1; ++attempt) {
    parallel_for(64, 1, [](int64_t, int64_t) {});
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(handles_of(witness) == 1);
  set_num_threads(saved);
}
