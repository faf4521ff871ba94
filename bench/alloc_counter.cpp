#include "alloc_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {

// Relaxed: a counter read by the same thread that allocates; no ordering is implied.
std::atomic<std::uint64_t> allocations{0};

void* counted_allocate(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    // operator new(0) must return a unique pointer; malloc(0) may return nullptr.
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}

}  // namespace

namespace wsx::bench {

std::uint64_t allocation_count() noexcept {
    return allocations.load(std::memory_order_relaxed);
}

}  // namespace wsx::bench

// The replaceable global forms (C++20 [new.delete.single], [new.delete.array]). The nothrow forms
// call these in libstdc++ and libc++; the aligned forms are left alone, since nothing on the paths
// measured uses over-aligned types, and they pair with their own deletes.
void* operator new(std::size_t size) {
    return counted_allocate(size);
}

void* operator new[](std::size_t size) {
    return counted_allocate(size);
}

void operator delete(void* p) noexcept {
    std::free(p);
}

void operator delete[](void* p) noexcept {
    std::free(p);
}

void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
