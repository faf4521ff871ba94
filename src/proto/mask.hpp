// RFC 6455 §5.3 masking: XOR with a 4-byte key, from any key offset, in place or while copying.
// This is the hot loop of every byte a server receives, so it has SIMD variants chosen at run
// time; every variant gives exactly the scalar result.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "proto/frame.hpp"

namespace wsx::proto {

// XORs data[i] with key[(key_offset + i) % 4]. key_offset is the number of payload bytes of this
// frame already processed (frames arrive in pieces); only key_offset % 4 matters.
void apply_mask(std::span<std::uint8_t> data, MaskKey key, std::size_t key_offset = 0) noexcept;

namespace detail {
// unmask_is_ascii for 32 bytes and more.
bool unmask_is_ascii_long(std::span<std::uint8_t> data, MaskKey key) noexcept;

// Under 32 bytes the XOR runs inline: for a short frame a call into mask.cpp costs as much as the
// work. Every byte passes through a register anyway, so the ASCII answer is exact and nearly free.
inline bool unmask_is_ascii_short(std::uint8_t* p, std::size_t size, MaskKey key) noexcept {
    std::uint32_t k;
    std::memcpy(&k, key.data(), sizeof k);
    // The key advanced by `bytes` payload bytes, in memory order (§5.3: byte i uses key[i % 4]).
    const auto rotated = [k](std::size_t bytes) {
        const int bits = static_cast<int>(bytes % 4) * 8;
        return std::endian::native == std::endian::little ? std::rotr(k, bits) : std::rotl(k, bits);
    };
    if (size >= 8) {
        // First and last word are read before anything is written and stored last: they overlap
        // the middle words with the same values, so no byte-wise tail is needed.
        const std::uint64_t k64 = (std::uint64_t{k} << 32) | k;
        const std::uint32_t kt = rotated(size);
        std::uint64_t head, tail;
        std::memcpy(&head, p, 8);
        std::memcpy(&tail, p + size - 8, 8);
        head ^= k64;
        tail ^= (std::uint64_t{kt} << 32) | kt;
        std::uint64_t bits = head | tail;
        for (std::size_t i = 8; i + 8 <= size; i += 8) {
            std::uint64_t w;
            std::memcpy(&w, p + i, 8);
            w ^= k64;
            bits |= w;
            std::memcpy(p + i, &w, 8);
        }
        std::memcpy(p, &head, 8);
        std::memcpy(p + size - 8, &tail, 8);
        return (bits & 0x8080808080808080ULL) == 0;
    }
    if (size >= 4) {
        std::uint32_t head, tail;
        std::memcpy(&head, p, 4);
        std::memcpy(&tail, p + size - 4, 4);
        head ^= k;
        tail ^= rotated(size);
        std::memcpy(p, &head, 4);
        std::memcpy(p + size - 4, &tail, 4);
        return ((head | tail) & 0x80808080U) == 0;
    }
    unsigned bits = 0;
    for (std::size_t i = 0; i < size; ++i) {
        p[i] ^= key[i];
        bits |= p[i];
    }
    return (bits & 0x80U) == 0;
}
}  // namespace detail

// apply_mask(data, key) for a whole payload (key offset 0) that also tells whether the unmasked
// bytes are all ASCII, for the text fast path: an ASCII payload is valid UTF-8 (RFC 3629), so the
// validator need not read it a second time. true: all bytes are below 0x80. false: some byte is
// not, or (from 32 bytes on, on a CPU without AVX2) nobody looked.
inline bool unmask_is_ascii(std::span<std::uint8_t> data, MaskKey key) noexcept {
    if (data.size() < 32) return detail::unmask_is_ascii_short(data.data(), data.size(), key);
    return detail::unmask_is_ascii_long(data, key);
}

// dst[i] = src[i] ^ key[(key_offset + i) % 4]; dst and src have the same size and do not overlap.
// The client send path uses it to mask while copying a payload into its output buffer.
void copy_masked(std::uint8_t* dst, const std::uint8_t* src, std::size_t size, MaskKey key,
                 std::size_t key_offset = 0) noexcept;

// The implementations behind apply_mask, so tests and benchmarks can call each one directly.
enum class MaskImpl : std::uint8_t { scalar, sse2, avx2, avx512, neon };

using MaskFn = void (*)(std::uint8_t* data, std::size_t size, MaskKey key,
                        std::size_t key_offset) noexcept;

// The same, copying: what copy_masked runs for each implementation.
using CopyMaskFn = void (*)(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                            MaskKey key, std::size_t key_offset) noexcept;

// True when this build and this CPU can run `impl`.
bool mask_impl_available(MaskImpl impl) noexcept;
// The function for `impl`; only call it when mask_impl_available(impl). nullptr when this build
// does not contain `impl` at all (NEON on x86, the x86 variants elsewhere).
MaskFn mask_impl_function(MaskImpl impl) noexcept;
CopyMaskFn mask_impl_copy_function(MaskImpl impl) noexcept;
// The implementation apply_mask and copy_masked use on this CPU for buffers of 32 bytes or more
// (shorter ones run the scalar code inline): AVX2, else SSE2 on x86-64; NEON on AArch64; else
// scalar. AVX-512 is never chosen by default: on the machine it was measured on (Zen 4) it was no
// faster than AVX2 from 1 KiB up, so it stays callable for tests and benchmarks only.
MaskImpl mask_impl_selected() noexcept;
// "scalar", "sse2", "avx2", "avx512" or "neon".
const char* mask_impl_name(MaskImpl impl) noexcept;

}  // namespace wsx::proto
