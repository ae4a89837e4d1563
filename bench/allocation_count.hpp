// Counts calls of the global operator new in a benchmark binary that links
// allocation_count.cpp (which replaces operator new/delete with counting forwards to malloc).
#pragma once

#include <cstdint>

namespace cholla::bench {

uint64_t allocations();

}  // namespace cholla::bench
