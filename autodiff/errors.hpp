// cholla errors: every user mistake is a typed exception carrying the facts a test (or a
// training loop) can read: the op, the argument, the shapes and the batch element.
//
// Messages are one sentence of fact and one of remedy, e.g.
//   "potrf: matrix 5 of batch shape [4, 2] (index [2, 1]) is not positive definite (leading
//    minor of order 3). Parameterise by a Cholesky factor (from_scale_tril, fill_scale_tril)
//    or add jitter."
// Library code never prints, asserts or aborts on user input.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "autodiff/shape_type.hpp"

namespace cholla {

class Error : public std::runtime_error {
 public:
  Error(std::string op, std::string message, std::string argument = {},
        std::vector<Shape> shapes = {}, std::vector<int64_t> batch_index = {});

  // The op that raised ("potrf", "add", "backward"); used verbatim as the message prefix.
  const std::string& op() const { return op_; }
  // The argument at fault ("A", "B", "x"), empty when the error is not about one argument.
  const std::string& argument() const { return argument_; }
  // The shapes involved, in argument order.
  const std::vector<Shape>& shapes() const { return shapes_; }
  // Multi-index of the failing matrix within the batch shape; empty when not batch-specific.
  const std::vector<int64_t>& batch_index() const { return batch_index_; }

 private:
  std::string op_, argument_;
  std::vector<Shape> shapes_;
  std::vector<int64_t> batch_index_;
};

// Incompatible or invalid shapes.
class ShapeError : public Error {
  using Error::Error;
};
// Values outside an op's domain: NaN/Inf in a factorisation, a zero on a triangular diagonal.
class DomainError : public Error {
  using Error::Error;
};
// Misuse of the tape: released graph, non-scalar backward without a seed, no grad path.
class GraphError : public Error {
  using Error::Error;
};
// Reading or writing files: missing, truncated, corrupted, malformed.
class IoError : public Error {
  using Error::Error;
};
// A result or buffer larger than this machine can hold ("add: the result [100000, 100000]
// needs 74.5 GiB"). Make the batch smaller, or check the shapes that broadcast into it.
class ResourceError : public Error {
  using Error::Error;
};
// A bug in cholla itself (e.g. LAPACK reporting an illegal argument). Please report it.
class InternalError : public Error {
  using Error::Error;
};

// A matrix that a Cholesky factorisation rejected.
class NotPositiveDefinite : public Error {
 public:
  NotPositiveDefinite(std::string op, std::string message, std::string argument,
                      std::vector<Shape> shapes, std::vector<int64_t> batch_index,
                      int64_t flat_batch_index, int64_t minor_order);
  // Row-major position of the failing matrix among the flattened batch.
  int64_t flat_batch_index() const { return flat_batch_index_; }
  // Order of the leading minor that is not positive (LAPACK's info > 0).
  int64_t minor_order() const { return minor_order_; }

 private:
  int64_t flat_batch_index_, minor_order_;
};

}  // namespace cholla
