// Counts heap allocations made through operator new in this program, so a benchmark can show that
// a path allocates nothing per frame. The replacement operators live in alloc_counter.cpp; linking
// that file into a program replaces the global ones for the whole program.
#pragma once

#include <cstdint>

namespace wsx::bench {

// Allocations (any form of operator new) since the program started.
std::uint64_t allocation_count() noexcept;

}  // namespace wsx::bench
