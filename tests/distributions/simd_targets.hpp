// Running a test body under every SIMD target compiled in and supported by this machine.
#pragma once

#include <string>
#include <vector>

#include "../linalg/linalg_helpers.hpp"
#include "distributions/detail/mvn_simd.hpp"

namespace cholla::test {

// Runs `body` once per SIMD target (AVX-512, AVX2, SSE4, ..., the scalar baseline), then
// restores the best one.
template <class Body>
void for_each_target(Body&& body) {
  const std::vector<int64_t> targets = dist::detail::simd_targets();
  REQUIRE(!targets.empty());
  for (int64_t t : targets) {
    dist::detail::simd_use_target(t);
    const std::string target = dist::detail::simd_target_name(t);
    CAPTURE(target);
    body();
  }
  dist::detail::simd_use_target(0);
}

}  // namespace cholla::test
