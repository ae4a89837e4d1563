// Shapes, numpy broadcasting and batch-index formatting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/errors.hpp"

namespace cholla {

// Number of elements. ShapeError naming `op` and the shape when a dimension is negative or the
// product does not fit in int64 (so no shape arithmetic can overflow silently downstream).
int64_t numel(const Shape& shape, const char* op = "shape");

// a * b, or ShapeError naming `op` and `what` when the product overflows int64 (a, b >= 0).
int64_t checked_mul(int64_t a, int64_t b, const char* op, const char* what);

// "74.5 GiB", "12 KiB": a byte count for messages.
std::string format_bytes(double bytes);

// "[4, 2, 3]"
std::string format_shape(const Shape& shape);

// Row-major strides in elements.
std::vector<int64_t> strides_of(const Shape& shape);

// numpy broadcasting of two shapes; ShapeError naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Multi-index of the flat row-major position `flat` within `shape`.
std::vector<int64_t> unravel_index(int64_t flat, const Shape& shape);

// Dimension `dim` (negative counts from the end) normalised to [0, rank); ShapeError otherwise.
int64_t normalize_dim(int64_t dim, int64_t rank, const char* op);

// "matrix 5 of batch shape [4, 2] (index [2, 1])", or "the matrix" when there is no batch.
std::string describe_batch_element(int64_t flat, const Shape& batch_shape);

}  // namespace cholla
