// An immutable, atomically reference-counted byte buffer: one encoded frame shared by every
// connection it is sent to (encode once, write many). Copying a SharedBuffer is a refcount
// increment; the bytes are freed when the last copy goes, on whichever thread that happens.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace wsx::proto {

class SharedBuffer {
  public:
    SharedBuffer() noexcept = default;

    // A buffer of `size` bytes, filled by fill(std::span<std::uint8_t>) before anyone can share it.
    template <typename Fill>
    static SharedBuffer create(std::size_t size, Fill&& fill) {
        void* raw = ::operator new(sizeof(Block) + size);
        Block* block = new (raw) Block{{1}, size};
        fill(std::span<std::uint8_t>(data_of(block), size));
        return SharedBuffer(block);
    }

    // A buffer holding a copy of `bytes`.
    static SharedBuffer copy_of(std::span<const std::uint8_t> bytes) {
        return create(bytes.size(), [&](std::span<std::uint8_t> out) {
            if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
        });
    }

    SharedBuffer(const SharedBuffer& other) noexcept : block_(other.block_) {
        // Relaxed is enough for an increment: the caller already holds a reference.
        if (block_) block_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    SharedBuffer(SharedBuffer&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
    SharedBuffer& operator=(SharedBuffer other) noexcept {
        std::swap(block_, other.block_);
        return *this;
    }
    ~SharedBuffer() { release(); }

    // The bytes (empty for a default-constructed buffer); valid while any copy lives.
    std::span<const std::uint8_t> bytes() const noexcept {
        return block_ ? std::span<const std::uint8_t>(data_of(block_), block_->size)
                      : std::span<const std::uint8_t>();
    }
    const std::uint8_t* data() const noexcept { return block_ ? data_of(block_) : nullptr; }
    std::size_t size() const noexcept { return block_ ? block_->size : 0; }
    explicit operator bool() const noexcept { return block_ != nullptr; }

    // Number of live references (for tests and metrics; racy by nature across threads).
    std::uint32_t use_count() const noexcept {
        return block_ ? block_->refs.load(std::memory_order_relaxed) : 0;
    }

  private:
    struct Block {
        std::atomic<std::uint32_t> refs;
        std::size_t size;
    };

    explicit SharedBuffer(Block* block) noexcept : block_(block) {}

    static std::uint8_t* data_of(Block* block) noexcept {
        return reinterpret_cast<std::uint8_t*>(block + 1);
    }

    void release() noexcept {
        // acq_rel: the thread that frees must see every other owner's last use of the bytes.
        if (block_ && block_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            block_->~Block();
            ::operator delete(block_);
        }
        block_ = nullptr;
    }

    Block* block_ = nullptr;
};

}  // namespace wsx::proto
