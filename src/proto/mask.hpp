// RFC 6455 §5.3 masking: XOR with a 4-byte key, from any key offset, in place or while copying.
// This is the hot loop of every byte a server receives, so it has SIMD variants chosen at run
// time; every variant gives exactly the scalar result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/frame.hpp"

namespace wsx::proto {

// XORs data[i] with key[(key_offset + i) % 4]. key_offset is the number of payload bytes of this
// frame already processed (frames arrive in pieces); only key_offset % 4 matters.
void apply_mask(std::span<std::uint8_t> data, MaskKey key, std::size_t key_offset = 0) noexcept;

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
