// Masking (RFC 6455 §5.3) as a differential target: every SIMD kernel, in place and copying, at
// any alignment, key offset and length, gives exactly what the one-line definition gives, and
// writes nothing outside its buffer.
#include "proto/mask.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "harnesses.hpp"
#include "support.hpp"

namespace wsx::fuzz {

namespace {

using proto::MaskImpl;
using proto::MaskKey;

constexpr std::array<MaskImpl, 5> kAllImpls = {MaskImpl::scalar, MaskImpl::sse2, MaskImpl::avx2,
                                               MaskImpl::avx512, MaskImpl::neon};
// Room on both sides of the bytes under test: for alignment shifts and to catch stray writes.
constexpr std::size_t kGuard = 64;
constexpr std::uint8_t kGuardByte = 0xA5;

// A buffer holding `bytes` at `align` bytes past a 64-byte boundary, with guard bytes around.
class GuardedBuffer {
  public:
    GuardedBuffer(std::span<const std::uint8_t> bytes, std::size_t align)
        : storage_(bytes.size() + 3 * kGuard, kGuardByte), size_(bytes.size()) {
        const auto base = reinterpret_cast<std::uintptr_t>(storage_.data());
        offset_ = kGuard + (align - base % kGuard + kGuard) % kGuard;
        if (!bytes.empty()) std::memcpy(data(), bytes.data(), bytes.size());
    }

    std::uint8_t* data() noexcept { return storage_.data() + offset_; }
    std::span<const std::uint8_t> bytes() const noexcept {
        return {storage_.data() + offset_, size_};
    }
    bool guards_intact() const noexcept {
        for (std::size_t i = 0; i < storage_.size(); ++i) {
            if ((i < offset_ || i >= offset_ + size_) && storage_[i] != kGuardByte) return false;
        }
        return true;
    }

  private:
    std::vector<std::uint8_t> storage_;
    std::size_t size_;
    std::size_t offset_;
};

std::vector<std::uint8_t> reference_mask(std::span<const std::uint8_t> in, MaskKey key,
                                         std::size_t key_offset) {
    std::vector<std::uint8_t> out(in.begin(), in.end());
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] ^= key[(key_offset % 4 + i) % 4];
    return out;
}

bool equal(std::span<const std::uint8_t> a, const std::vector<std::uint8_t>& b) noexcept {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

}  // namespace

int run_mask(const std::uint8_t* data, std::size_t size) {
    InputReader reader(data, size);
    MaskKey key;
    for (auto& k : key)
        k = reader.byte();
    // Small offsets, and offsets near SIZE_MAX where a careless (offset + i) % 4 would wrap.
    const std::uint8_t offset_byte = reader.byte();
    const std::size_t key_offset =
        (offset_byte & 0x80) != 0 ? std::numeric_limits<std::size_t>::max() - (offset_byte & 0x7F)
                                  : offset_byte;
    const std::size_t src_align = reader.byte() % kGuard;
    const std::size_t dst_align = reader.byte() % kGuard;
    const std::uint8_t split_byte = reader.byte();
    const std::span<const std::uint8_t> payload = reader.rest();
    const std::vector<std::uint8_t> expected = reference_mask(payload, key, key_offset);

    for (const MaskImpl impl : kAllImpls) {
        if (!proto::mask_impl_available(impl)) continue;
        const proto::MaskFn in_place = proto::mask_impl_function(impl);
        const proto::CopyMaskFn copying = proto::mask_impl_copy_function(impl);
        WSX_FUZZ_CHECK(in_place != nullptr && copying != nullptr);

        GuardedBuffer buffer(payload, src_align);
        in_place(buffer.data(), payload.size(), key, key_offset);
        WSX_FUZZ_CHECK(equal(buffer.bytes(), expected));
        WSX_FUZZ_CHECK(buffer.guards_intact());

        const GuardedBuffer source(payload, src_align);
        GuardedBuffer destination(std::vector<std::uint8_t>(payload.size(), 0), dst_align);
        copying(destination.data(), source.bytes().data(), payload.size(), key, key_offset);
        WSX_FUZZ_CHECK(equal(destination.bytes(), expected));
        WSX_FUZZ_CHECK(destination.guards_intact());
        WSX_FUZZ_CHECK(source.guards_intact());
    }

    // The public entry points, whole and in two pieces (a frame arriving in two reads).
    GuardedBuffer whole(payload, src_align);
    proto::apply_mask({whole.data(), payload.size()}, key, key_offset);
    WSX_FUZZ_CHECK(equal(whole.bytes(), expected));
    WSX_FUZZ_CHECK(whole.guards_intact());

    GuardedBuffer pieces(payload, src_align);
    const std::size_t split = payload.empty() ? 0 : split_byte * payload.size() / 255;
    proto::apply_mask({pieces.data(), split}, key, key_offset);
    proto::apply_mask({pieces.data() + split, payload.size() - split}, key, key_offset + split);
    WSX_FUZZ_CHECK(equal(pieces.bytes(), expected));
    WSX_FUZZ_CHECK(pieces.guards_intact());

    // The text fast path's unmask (key offset 0): exact bytes, and "ASCII" only when it is so;
    // below 32 bytes, and with the AVX2 kernel selected, the answer is exact both ways.
    const std::vector<std::uint8_t> expected_from_0 = reference_mask(payload, key, 0);
    GuardedBuffer text(payload, dst_align);
    const bool ascii = proto::unmask_is_ascii({text.data(), payload.size()}, key);
    WSX_FUZZ_CHECK(equal(text.bytes(), expected_from_0));
    WSX_FUZZ_CHECK(text.guards_intact());
    bool all_ascii = true;
    for (const std::uint8_t b : expected_from_0)
        all_ascii = all_ascii && b < 0x80;
    WSX_FUZZ_CHECK(!ascii || all_ascii);
    if (payload.size() < 32 || proto::mask_impl_selected() == MaskImpl::avx2) {
        WSX_FUZZ_CHECK(ascii == all_ascii);
    }

    const GuardedBuffer source(payload, src_align);
    GuardedBuffer destination(std::vector<std::uint8_t>(payload.size(), 0), dst_align);
    proto::copy_masked(destination.data(), source.bytes().data(), payload.size(), key, key_offset);
    WSX_FUZZ_CHECK(equal(destination.bytes(), expected));
    WSX_FUZZ_CHECK(destination.guards_intact());
    return 0;
}

}  // namespace wsx::fuzz
