#include "autodiff/errors.hpp"

#include <utility>

namespace cholla {

Error::Error(std::string op, std::string message, std::string argument, std::vector<Shape> shapes,
             std::vector<int64_t> batch_index)
    : std::runtime_error(op.empty() ? message : op + ": " + message),
      op_(std::move(op)),
      argument_(std::move(argument)),
      shapes_(std::move(shapes)),
      batch_index_(std::move(batch_index)) {}

NotPositiveDefinite::NotPositiveDefinite(std::string op, std::string message, std::string argument,
                                         std::vector<Shape> shapes,
                                         std::vector<int64_t> batch_index,
                                         int64_t flat_batch_index, int64_t minor_order)
    : Error(std::move(op), std::move(message), std::move(argument), std::move(shapes),
            std::move(batch_index)),
      flat_batch_index_(flat_batch_index),
      minor_order_(minor_order) {}

}  // namespace cholla
