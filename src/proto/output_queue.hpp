// The bytes a connection wants written, in order, ready for writev.
//
// Small writes (headers, pongs, short messages) are copied into one owned buffer and coalesce
// into a single slice; large payloads can instead be referenced — kept alive by a SharedBuffer or
// by the caller's promise — so a broadcast frame is never copied per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <utility>
#include <vector>

#include "proto/shared_buffer.hpp"

namespace wsx::proto {

// Layout-compatible with POSIX struct iovec (a pointer and a length), without including it:
// src/proto stays free of system headers. The net layer static_asserts the match.
struct IoSlice {
    const void* data;
    std::size_t size;
};

namespace detail {
// Leaves new elements default-initialised (indeterminate for bytes) where std::allocator would
// zero them: append_uninitialized's caller overwrites them at once, so zeroing is a wasted pass.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitializedAllocator<U>;
    };
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};
}  // namespace detail

class OutputQueue {
  public:
    // Copies `bytes` to the end of the queue.
    void append(std::span<const std::uint8_t> bytes);

    // Reserves `n` bytes at the end of the queue for the caller to fill at once (e.g. a frame
    // header followed by a masked payload). The pointer is valid until the next call on the queue.
    std::uint8_t* append_uninitialized(std::size_t n);

    // Appends a reference to `bytes` without copying. `keep_alive` owns the bytes (may be empty
    // when the caller guarantees they outlive their consumption).
    void append_reference(std::span<const std::uint8_t> bytes, SharedBuffer keep_alive = {});

    // Fills `out` with slices from the front of the queue; returns how many were filled.
    std::size_t gather(std::span<IoSlice> out) const noexcept;

    // Drops the first `n` bytes (a write, possibly partial, took them). n <= size().
    void consume(std::size_t n) noexcept;

    std::size_t size() const noexcept { return pending_bytes_; }
    bool empty() const noexcept { return pending_bytes_ == 0; }

    // Drops everything and releases the storage (e.g. after the transport died).
    void clear() noexcept;

  private:
    struct Segment {
        const std::uint8_t* external;  // nullptr: the bytes live in owned_ at `offset`
        std::size_t offset;            // owned: offset into owned_; external: bytes already sent
        std::size_t size;              // bytes not yet sent
        SharedBuffer keep_alive;
    };

    Segment& open_owned_segment();
    void compact() noexcept;

    std::vector<std::uint8_t, detail::UninitializedAllocator<std::uint8_t>> owned_;
    std::vector<Segment> segments_;
    std::size_t first_segment_ = 0;  // segments before this index are fully consumed
    std::size_t pending_bytes_ = 0;
};

}  // namespace wsx::proto
