// Internal to distributions/: numerical constants shared by the densities.
#pragma once

namespace cholla::dist::detail {

inline constexpr double kHalfLog2Pi = 0.918938533204672741780329736406;  // log(2 pi) / 2

}  // namespace cholla::dist::detail
