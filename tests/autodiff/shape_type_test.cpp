// cholla::Shape (autodiff/shape_type.hpp) behaves as std::vector<int64_t> does, inline and
// spilled to the heap alike: every operation is checked against std::vector doing the same.
#include <vector>

#include "helpers.hpp"

using namespace cholla;

namespace {

std::vector<int64_t> as_vector(const Shape& s) { return {s.begin(), s.end()}; }

// Shapes of every length around the inline capacity.
std::vector<std::vector<int64_t>> lengths_around_inline() {
  std::vector<std::vector<int64_t>> out;
  for (size_t n = 0; n <= Shape::kInline + 3; ++n) {
    std::vector<int64_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<int64_t>(10 * i + 1);
    out.push_back(v);
  }
  return out;
}

}  // namespace

TEST_CASE("Shape: construction, copy and move, inline and on the heap") {
  for (const auto& v : lengths_around_inline()) {
    CAPTURE(v.size());
    const Shape s(v.begin(), v.end());
    CHECK(as_vector(s) == v);
    CHECK(s.size() == v.size());
    CHECK(s.empty() == v.empty());
    Shape copy = s;
    CHECK(copy == s);
    Shape moved = std::move(copy);
    CHECK(as_vector(moved) == v);
    CHECK(copy.empty());  // NOLINT: a moved-from Shape is empty, as documented
    Shape assigned{7};
    assigned = moved;
    CHECK(assigned == s);
    assigned = std::move(moved);
    CHECK(as_vector(assigned) == v);
    CHECK(static_cast<std::vector<int64_t>>(assigned) == v);
    CHECK(Shape(v) == s);
  }
  CHECK(as_vector(Shape(3, 1)) == std::vector<int64_t>{1, 1, 1});
  CHECK(as_vector(Shape{2, 3}) == std::vector<int64_t>{2, 3});
}

TEST_CASE("Shape: growing, inserting and erasing match std::vector") {
  for (const auto& v : lengths_around_inline()) {
    CAPTURE(v.size());
    for (size_t at = 0; at <= v.size(); ++at) {
      Shape s(v.begin(), v.end());
      std::vector<int64_t> expected = v;
      s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), 99);
      expected.insert(expected.begin() + static_cast<std::ptrdiff_t>(at), 99);
      CHECK(as_vector(s) == expected);
      s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), size_t{3}, -1);
      expected.insert(expected.begin() + static_cast<std::ptrdiff_t>(at), size_t{3}, -1);
      CHECK(as_vector(s) == expected);
      // A range taken from the shape itself (may move while inserting).
      s.insert(s.begin(), s.begin(), s.end());
      const std::vector<int64_t> before = expected;
      expected.insert(expected.begin(), before.begin(), before.end());
      CHECK(as_vector(s) == expected);
      s.erase(s.begin() + static_cast<std::ptrdiff_t>(at));
      expected.erase(expected.begin() + static_cast<std::ptrdiff_t>(at));
      CHECK(as_vector(s) == expected);
      s.erase(s.begin(), s.begin() + 2);
      expected.erase(expected.begin(), expected.begin() + 2);
      CHECK(as_vector(s) == expected);
    }
    Shape s(v.begin(), v.end());
    std::vector<int64_t> expected = v;
    for (int64_t k = 0; k < 9; ++k) s.push_back(k), expected.push_back(k);
    CHECK(as_vector(s) == expected);
    s.assign(s.begin() + 1, s.end());  // a suffix of itself
    expected.assign(expected.begin() + 1, expected.end());
    CHECK(as_vector(s) == expected);
    s.resize(2, 5), expected.resize(2, 5);
    CHECK(as_vector(s) == expected);
    s.resize(12, 5), expected.resize(12, 5);
    CHECK(as_vector(s) == expected);
    s.pop_back(), expected.pop_back();
    CHECK(s.back() == expected.back());
    s.clear();
    CHECK(s.empty());
  }
}

TEST_CASE("Shape: comparison is element-wise and lexicographic") {
  CHECK(Shape{2, 3} == Shape{2, 3});
  CHECK(Shape{2, 3} != Shape{2, 3, 1});
  CHECK(Shape{} != Shape{1});
  CHECK(Shape{2, 3} < Shape{2, 4});
  CHECK(Shape{2} < Shape{2, 0});
  CHECK(Shape{1, 2, 3, 4, 5, 6, 7} == Shape{1, 2, 3, 4, 5, 6, 7});
  CHECK(Shape{1, 2, 3, 4, 5, 6, 7} > Shape{1, 2, 3, 4, 5, 6});
  CHECK(Shape{2, 3} == std::vector<int64_t>{2, 3});
}

TEST_CASE("Shape: tensors of rank beyond the inline capacity work end to end") {
  Shape big(Shape::kInline + 2, 1);
  big.back() = 3;
  Tensor x = Tensor::full(big, 2.0).requires_grad(true);
  Tensor y = sum(x * x);
  y.backward();
  CHECK(x.grad().shape() == big);
  for (double g : x.grad().data()) CHECK(g == 4.0);
  CHECK(reshape(x, {3}).shape() == Shape{3});
}
