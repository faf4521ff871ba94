// The counting replacement of the global operator new/delete (see heap_counter.hpp). Forwarding
// to malloc/free keeps ASan's heap checks (it intercepts malloc), and new/delete stay paired.
#include "heap_counter.hpp"

#include <malloc.h>

#include <cstdlib>
#include <new>

namespace wsx::testing {
std::atomic<std::size_t> heap_allocations{0};
std::atomic<std::size_t> heap_largest_allocation{0};
std::atomic<std::size_t> heap_live_bytes{0};
}  // namespace wsx::testing

namespace {
using wsx::testing::heap_allocations;
using wsx::testing::heap_largest_allocation;
using wsx::testing::heap_live_bytes;

void count(void* p, std::size_t n) noexcept {
    heap_allocations.fetch_add(1, std::memory_order_relaxed);
    std::size_t largest = heap_largest_allocation.load(std::memory_order_relaxed);
    while (n > largest && !heap_largest_allocation.compare_exchange_weak(largest, n)) {
    }
    if (p) heap_live_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
}

// Out of line, so the compiler does not see malloc/free meet operator new/delete after inlining
// and call that a mismatch (g++'s -Wmismatched-new-delete).
[[gnu::noinline]] void* counted_alloc(std::size_t n) noexcept {
    void* p = std::malloc(n == 0 ? 1 : n);
    count(p, n);
    return p;
}

[[gnu::noinline]] void* counted_aligned_alloc(std::size_t n, std::align_val_t al) noexcept {
    const auto align = static_cast<std::size_t>(al);
    // aligned_alloc wants a size that is a multiple of the alignment.
    void* p = std::aligned_alloc(align, ((n == 0 ? 1 : n) + align - 1) / align * align);
    count(p, n);
    return p;
}

[[gnu::noinline]] void release(void* p) noexcept {
    if (!p) return;
    heap_live_bytes.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
    std::free(p);
}

void* throwing(void* p) {
    if (!p) throw std::bad_alloc();
    return p;
}
}  // namespace

void* operator new(std::size_t n) {
    return throwing(counted_alloc(n));
}
void* operator new[](std::size_t n) {
    return throwing(counted_alloc(n));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    return counted_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return counted_alloc(n);
}
void* operator new(std::size_t n, std::align_val_t al) {
    return throwing(counted_aligned_alloc(n, al));
}
void* operator new[](std::size_t n, std::align_val_t al) {
    return throwing(counted_aligned_alloc(n, al));
}
void* operator new(std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
    return counted_aligned_alloc(n, al);
}
void* operator new[](std::size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
    return counted_aligned_alloc(n, al);
}
void operator delete(void* p) noexcept {
    release(p);
}
void operator delete[](void* p) noexcept {
    release(p);
}
void operator delete(void* p, std::size_t) noexcept {
    release(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    release(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    release(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    release(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    release(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    release(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    release(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    release(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    release(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    release(p);
}
