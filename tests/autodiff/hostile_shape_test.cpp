// Hostile shapes and sizes: every product of dimensions is checked, and a result larger than
// the machine is a ResourceError naming the op, the shape and the bytes — never a crash, a
// wrapped-around size or a std::bad_alloc.
#include <doctest/doctest.h>

#include <cholla.hpp>
#include <cmath>
#include <string>

using namespace cholla;

namespace {

// Runs f, requires it to throw E, and returns the message for further checks.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("wrong exception type: " << e.what());
  }
  FAIL("no exception");
  return {};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

constexpr int64_t k32 = int64_t{1} << 32;
constexpr int64_t k40 = int64_t{1} << 40;

}  // namespace

TEST_CASE("factories refuse shapes whose element count overflows") {
  auto m = message_of<ShapeError>([] { Tensor::zeros({k40, k40}); });
  CHECK(contains(m, "zeros"));
  CHECK(contains(m, "[1099511627776, 1099511627776]"));
  m = message_of<ShapeError>([] { Tensor::eye(k32); });
  CHECK(contains(m, "eye"));
  message_of<ShapeError>([] { Tensor::ones({3037000500, 3037000500}); });
  message_of<ShapeError>([] { Tensor::full({k32, k32, 0, -1}, 1.0); });  // negative beats empty
  message_of<ShapeError>([] { Tensor::arange(-1); });
  // A zero dimension makes the shape empty and valid, however large the others are.
  CHECK(Tensor::zeros({k40, 0, k40}).numel() == 0);
}

TEST_CASE("reshape, expand, broadcast and concat check their shape arithmetic") {
  auto m = message_of<ShapeError>([] { reshape(Tensor::zeros({0}), {k32, k32}); });
  CHECK(contains(m, "reshape"));
  message_of<ShapeError>([] { reshape(Tensor::zeros({4}), {-1, k40, k40}); });
  message_of<ShapeError>([] { reshape(Tensor::zeros({4}), {-1, -1}); });
  CHECK(reshape(Tensor::zeros({4, 3}), {-1, 2}).shape() == Shape{6, 2});
  m = message_of<ShapeError>([] { expand(Tensor::ones({1}), {k40, k40}); });
  CHECK(contains(m, "expand"));
  // Empty tensors with huge other dimensions: their concatenation would overflow the count.
  m = message_of<ShapeError>([] {
    const Tensor big = Tensor::zeros({int64_t{1} << 62, 0});
    concat({big, big}, 0);
  });
  CHECK(contains(m, "concat"));
}

TEST_CASE("a result larger than memory is a ResourceError with the op, shape and bytes") {
  auto m = message_of<ResourceError>(
      [] { Tensor::ones({100000, 1}) + Tensor::ones({1, 100000}); });
  CHECK(contains(m, "add: the result [100000, 100000] needs 74.5 GiB"));
  m = message_of<ResourceError>([] { Tensor::zeros({int64_t{1} << 61}); });
  CHECK(contains(m, "zeros"));
  CHECK(contains(m, "EiB"));
  // The failed allocation changed nothing: the next one works.
  CHECK(Tensor::ones({2, 2}).numel() == 4);
}

TEST_CASE("at() on a valid tensor checks indices; Rng::below(0) is a DomainError") {
  const Tensor t = Tensor::zeros({2, 3});
  message_of<ShapeError>([&] { (void)t.at({2, 0}); });
  Rng rng(1);
  auto m = message_of<DomainError>([&] { rng.below(0); });
  CHECK(contains(m, "Rng::below"));
  CHECK(rng.below(1) == 0);
}

TEST_CASE("check helpers: typed errors with op, argument, shapes and batch index") {
  try {
    check_square(Tensor::zeros({2, 3, 4}), "my_op", "A");
    FAIL("no exception");
  } catch (const ShapeError& e) {
    CHECK(e.op() == "my_op");
    CHECK(e.argument() == "A");
    CHECK(e.shapes() == std::vector<Shape>{{2, 3, 4}});
  }
  CHECK_THROWS_AS(check_defined(Tensor(), "my_op", "x"), GraphError);
  CHECK_THROWS_AS(add(Tensor(), Tensor::ones({1})), GraphError);
  // An undefined argument is reported as the op's own (it used to say "shape").
  for (auto [op, call] : std::vector<std::pair<std::string, Tensor (*)(const Tensor&)>>{
           {"exp", [](const Tensor& x) { return exp(x); }},
           {"square", [](const Tensor& x) { return square(x); }},
           {"tanh", [](const Tensor& x) { return tanh(x); }},
           {"affine", [](const Tensor& x) { return x * 2.0; }}}) {
    try {
      (void)call(Tensor());
      FAIL("no exception");
    } catch (const GraphError& e) {
      CHECK(e.op() == op);
      CHECK(e.argument() == "x");
    }
  }
  Tensor t = Tensor::zeros({2, 3, 2, 2});
  t.mutable_data()[1 * 12 + 2 * 4 + 3] = std::nan("");
  try {
    check_finite(t, "my_op", "A", 2);
    FAIL("no exception");
  } catch (const DomainError& e) {
    CHECK(e.batch_index() == std::vector<int64_t>{1, 2});
    CHECK(contains(e.what(), "NaN at index [1, 2, 1, 1]"));
  }
  CHECK_NOTHROW(check_finite(Tensor::zeros({0, 2, 2}), "my_op", "A", 2));
  CHECK_THROWS_AS(check_same_batch(Tensor::zeros({2, 3, 3}), 2, Tensor::zeros({3, 3}), 1, "my_op",
                                   "A", "b"),
                  ShapeError);
  CHECK_NOTHROW(check_same_batch(Tensor::zeros({2, 3, 3}), 2, Tensor::zeros({2, 3}), 1, "my_op",
                                 "A", "b"));
  CHECK_THROWS_AS(check_in_range(1.0, 0.0, 1.0, true, "adam", "beta1"), DomainError);
  CHECK_NOTHROW(check_in_range(0.9, 0.0, 1.0, true, "adam", "beta1"));
  CHECK_THROWS_AS(check_positive(std::nan(""), "adam", "lr"), DomainError);
  CHECK_THROWS_AS(check_positive(0.0, "adam", "lr"), DomainError);
  CHECK_NOTHROW(check_nonnegative(0.0, "adam", "weight_decay"));
}
