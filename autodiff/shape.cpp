#include "autodiff/shape.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace cholla {

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string format_shape(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::vector<int64_t> strides_of(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError(op,
                       fmt::format("shapes {} and {} do not broadcast (dimension {} is {} vs {}). "
                                   "Sizes must match or be 1, aligned from the last dimension.",
                                   format_shape(a), format_shape(b), i, da, db),
                       "", {a, b});
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> unravel_index(int64_t flat, const Shape& shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    index[i] = shape[i] == 0 ? 0 : flat % shape[i];
    if (shape[i] != 0) flat /= shape[i];
  }
  return index;
}

int64_t normalize_dim(int64_t dim, int64_t rank, const char* op) {
  const int64_t d = dim < 0 ? dim + rank : dim;
  if (d < 0 || d >= rank)
    throw ShapeError(op, fmt::format("dimension {} is out of range for a tensor of rank {}; "
                                     "use 0..{} or -{}..-1.",
                                     dim, rank, rank - 1, rank));
  return d;
}

std::string describe_batch_element(int64_t flat, const Shape& batch_shape) {
  if (batch_shape.empty()) return "the matrix";
  return fmt::format("matrix {} of batch shape {} (index {})", flat, format_shape(batch_shape),
                     format_shape(unravel_index(flat, batch_shape)));
}

}  // namespace cholla
