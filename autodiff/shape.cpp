#include "autodiff/shape.hpp"

#include <iterator>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace cholla {

int64_t numel(const Shape& shape, const char* op) {
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0)
      throw ShapeError(op, fmt::format("shape {} has a negative dimension.", format_shape(shape)),
                       "shape", {shape});
    empty = empty || d == 0;
  }
  if (empty) return 0;  // a zero dimension makes any product of the others harmless
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw ShapeError(op,
                       fmt::format("shape {} has more elements than a 64-bit count can hold; "
                                   "check the dimensions (a size computed from a negative or "
                                   "uninitialised value?).",
                                   format_shape(shape)),
                       "shape", {shape});
  return n;
}

int64_t checked_mul(int64_t a, int64_t b, const char* op, const char* what) {
  int64_t out = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &out))
    throw ShapeError(op, fmt::format("{} = {} x {} does not fit in a 64-bit count.", what, a, b),
                     what);
  return out;
}

std::string format_bytes(double bytes) {
  constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t unit = 0;
  while (bytes >= 1024.0 && unit + 1 < std::size(kUnits)) bytes /= 1024.0, ++unit;
  return unit == 0 ? fmt::format("{:.0f} bytes", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[unit]);
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
