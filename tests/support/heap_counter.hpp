// Heap accounting for tests: linking tests/support/heap_counter.cpp into a test program replaces
// every global operator new/delete with one that counts, so a test can prove a path allocates
// nothing, bound the largest single allocation (a compression bomb must not be inflated into
// memory), or measure the live heap a connection holds.
#pragma once

#include <atomic>
#include <cstddef>

namespace wsx::testing {

// Calls to any operator new since the program started.
extern std::atomic<std::size_t> heap_allocations;
// The largest size asked of operator new; tests reset it to 0 before the code they bound.
extern std::atomic<std::size_t> heap_largest_allocation;
// Bytes held by live blocks from operator new (malloc_usable_size, so allocator rounding counts).
extern std::atomic<std::size_t> heap_live_bytes;

}  // namespace wsx::testing
