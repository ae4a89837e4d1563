#include "autodiff/rng.hpp"

#include "autodiff/errors.hpp"

#include <cmath>

namespace cholla {

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u = 0.0, v = 0.0, s = 0.0;
  do {
    u = uniform(-1.0, 1.0);
    v = uniform(-1.0, 1.0);
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double factor = std::sqrt(-2.0 * std::log(s) / s);
  spare_ = v * factor;
  has_spare_ = true;
  return u * factor;
}

uint64_t Rng::below(uint64_t n) {
  if (n == 0)
    throw DomainError("Rng::below", "n is 0: there is no integer in [0, 0). Pass n >= 1.", "n");
  // Rejection sampling: no modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x = 0;
  do x = engine_(); while (x >= limit);
  return x % n;
}

}  // namespace cholla
