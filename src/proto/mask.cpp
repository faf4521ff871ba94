#include "proto/mask.hpp"

#include <atomic>
#include <bit>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#define WSX_MASK_X86 1
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define WSX_MASK_NEON 1
#endif

namespace wsx::proto {

namespace {

// Every kernel masks dst[i] = src[i] ^ key bytes, where `key` holds the four key bytes in memory
// order already rotated to the phase of src[0]. In-place masking passes dst == src: each kernel
// reads every byte before it writes that byte, so both uses share one body.
using Kernel = void (*)(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                        std::uint32_t key) noexcept;

// Advances a key word by `bytes` payload bytes: byte i of the result is byte (i + bytes) % 4 of
// the input, in memory order.
std::uint32_t rotate_key(std::uint32_t key, std::size_t bytes) noexcept {
    const int bits = static_cast<int>(bytes % 4) * 8;
    if constexpr (std::endian::native == std::endian::little) return std::rotr(key, bits);
    return std::rotl(key, bits);
}

// RFC 6455 §5.3: payload byte i is XORed with key[i % 4]; a piece that starts `offset` bytes into
// the payload starts at key[offset % 4].
std::uint32_t key_word(MaskKey key, std::size_t offset) noexcept {
    std::uint32_t word;
    std::memcpy(&word, key.data(), sizeof word);
    return rotate_key(word, offset);
}

// Both halves are the same 4 bytes, so the word repeats the key in memory order on any endianness.
std::uint64_t key_word64(std::uint32_t key) noexcept {
    return (static_cast<std::uint64_t>(key) << 32) | key;
}

template <class T>
T load(const std::uint8_t* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <class T>
void store(std::uint8_t* p, T v) noexcept {
    std::memcpy(p, &v, sizeof v);
}

// First offset past `dst` at which stores are `width`-aligned, in (0, width]: the kernels mask
// [0, width) separately, so the aligned loop never starts at 0.
std::size_t aligned_start(const std::uint8_t* dst, std::size_t width) noexcept {
    return width - (reinterpret_cast<std::uintptr_t>(dst) & (width - 1));
}

// The scalar kernel, also inlined into apply_mask for buffers too short to pay for a dispatch.
// For size >= 8 the first and last 8 bytes are loaded before anything is stored and written
// last; they overlap the middle, but with the same values, so no byte-at-a-time tail is needed.
[[gnu::always_inline]] inline void mask_scalar_inline(std::uint8_t* dst, const std::uint8_t* src,
                                                      std::size_t size,
                                                      std::uint32_t key) noexcept {
    if (size < 8) {
        if (size >= 4) {
            const auto head = load<std::uint32_t>(src) ^ key;
            const auto tail = load<std::uint32_t>(src + size - 4) ^ rotate_key(key, size);
            store(dst, head);
            store(dst + size - 4, tail);
            return;
        }
        std::uint8_t key_bytes[4];
        std::memcpy(key_bytes, &key, sizeof key);
        for (std::size_t i = 0; i < size; ++i)
            dst[i] = src[i] ^ key_bytes[i];
        return;
    }
    const std::uint64_t k = key_word64(key);
    const auto head = load<std::uint64_t>(src) ^ k;
    const auto tail = load<std::uint64_t>(src + size - 8) ^ key_word64(rotate_key(key, size));
    for (std::size_t i = 8; i + 8 <= size; i += 8)
        store(dst + i, load<std::uint64_t>(src + i) ^ k);
    store(dst, head);
    store(dst + size - 8, tail);
}

void mask_scalar(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                 std::uint32_t key) noexcept {
    mask_scalar_inline(dst, src, size, key);
}

// The vector kernels share one shape: mask the first and last vector from the original bytes
// and keep them in registers, run an aligned (for dst) loop over the middle, then store the
// first and last vector. Stores never straddle a cache line in the loop, no scalar tail is
// needed, and since the edges are read before the loop writes anything, dst == src works.

#if defined(WSX_MASK_X86)

template <class V>
const V* as_vector(const std::uint8_t* p) noexcept {
    return static_cast<const V*>(static_cast<const void*>(p));
}

template <class V>
V* as_vector(std::uint8_t* p) noexcept {
    return static_cast<V*>(static_cast<void*>(p));
}

// One overload per vector width, so the x86 kernels below read the same. SSE2 is part of
// x86-64, so the 128-bit code needs no target attribute and no CPU check.
[[gnu::always_inline]] inline __m128i broadcast128(std::uint32_t key) noexcept {
    return _mm_set1_epi32(static_cast<int>(key));
}
[[gnu::always_inline]] inline __m128i load_xor(const std::uint8_t* p, __m128i key) noexcept {
    return _mm_xor_si128(_mm_loadu_si128(as_vector<__m128i>(p)), key);
}
[[gnu::always_inline]] inline void store_vector(std::uint8_t* p, __m128i v) noexcept {
    _mm_storeu_si128(as_vector<__m128i>(p), v);
}

#elif defined(WSX_MASK_NEON)

// Built from memory rather than with vdupq_n_u32 so the lanes hold the key bytes in memory order
// on big-endian AArch64 too.
inline uint8x16_t broadcast128(std::uint32_t key) noexcept {
    std::uint8_t bytes[16];
    for (std::size_t j = 0; j < sizeof bytes; j += sizeof key)
        std::memcpy(bytes + j, &key, 4);
    return vld1q_u8(bytes);
}
[[gnu::always_inline]] inline uint8x16_t load_xor(const std::uint8_t* p, uint8x16_t key) noexcept {
    return veorq_u8(vld1q_u8(p), key);
}
[[gnu::always_inline]] inline void store_vector(std::uint8_t* p, uint8x16_t v) noexcept {
    vst1q_u8(p, v);
}

#endif

#if defined(WSX_MASK_X86) || defined(WSX_MASK_NEON)

// SSE2 and NEON: 16-byte vectors, one kernel over the overloads above.
inline void mask_vector16(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                          std::uint32_t key) noexcept {
    constexpr std::size_t kWidth = 16;
    if (size < kWidth) {
        mask_scalar_inline(dst, src, size, key);
        return;
    }
    const auto head = load_xor(src, broadcast128(key));
    const auto tail = load_xor(src + size - kWidth, broadcast128(rotate_key(key, size)));
    std::size_t i = aligned_start(dst, kWidth);
    const auto k = broadcast128(rotate_key(key, i));
    for (; i + 4 * kWidth <= size; i += 4 * kWidth) {
        const auto a = load_xor(src + i, k);
        const auto b = load_xor(src + i + kWidth, k);
        const auto c = load_xor(src + i + 2 * kWidth, k);
        const auto d = load_xor(src + i + 3 * kWidth, k);
        store_vector(dst + i, a);
        store_vector(dst + i + kWidth, b);
        store_vector(dst + i + 2 * kWidth, c);
        store_vector(dst + i + 3 * kWidth, d);
    }
    for (; i + kWidth <= size; i += kWidth)
        store_vector(dst + i, load_xor(src + i, k));
    store_vector(dst, head);
    store_vector(dst + size - kWidth, tail);
}

void mask_vector16_kernel(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                          std::uint32_t key) noexcept {
    mask_vector16(dst, src, size, key);
}

#endif

#if defined(WSX_MASK_X86)

// The wider x86 kernels carry their own loops: each is compiled for its own target, and a
// shared template without that target could not inline their intrinsics.

__attribute__((target("avx2"), always_inline)) inline __m256i broadcast256(
    std::uint32_t key) noexcept {
    return _mm256_set1_epi32(static_cast<int>(key));
}
__attribute__((target("avx2"), always_inline)) inline __m256i load_xor(const std::uint8_t* p,
                                                                       __m256i key) noexcept {
    return _mm256_xor_si256(_mm256_loadu_si256(as_vector<__m256i>(p)), key);
}
__attribute__((target("avx2"), always_inline)) inline void store_vector(std::uint8_t* p,
                                                                        __m256i v) noexcept {
    _mm256_storeu_si256(as_vector<__m256i>(p), v);
}

__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i broadcast512(
    std::uint32_t key) noexcept {
    return _mm512_set1_epi32(static_cast<int>(key));
}
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __m512i load_xor(
    const std::uint8_t* p, __m512i key) noexcept {
    return _mm512_xor_si512(_mm512_loadu_si512(p), key);
}
__attribute__((target("avx512f,avx512bw"), always_inline)) inline void store_vector(
    std::uint8_t* p, __m512i v) noexcept {
    _mm512_storeu_si512(p, v);
}

// The AVX2 kernel for size >= 32. With kAscii it also ORs every unmasked vector together and
// says whether all bytes are ASCII, so one pass unmasks a text payload and tells whether it needs
// the UTF-8 validator at all; without, the OR is dead code and compiled away.
template <bool kAscii>
__attribute__((target("avx2"), always_inline)) inline bool mask_avx2_body(
    std::uint8_t* dst, const std::uint8_t* src, std::size_t size, std::uint32_t key) noexcept {
    constexpr std::size_t kWidth = 32;
    const __m256i k0 = broadcast256(key);
    const __m256i kt = broadcast256(rotate_key(key, size));
    const __m256i head = load_xor(src, k0);
    const __m256i tail = load_xor(src + size - kWidth, kt);
    __m256i acc = _mm256_or_si256(head, tail);
    if (size <= 4 * kWidth) {
        // Up to four vectors need no loop: the second one is at key phase 0, the third at the
        // tail's phase. Short frames are the common case, where loop set-up costs more than the
        // XOR. Everything is loaded before anything is stored, so dst == src works.
        if (size > 2 * kWidth) {
            const __m256i second = load_xor(src + kWidth, k0);
            const __m256i third = load_xor(src + size - 2 * kWidth, kt);
            acc = _mm256_or_si256(acc, _mm256_or_si256(second, third));
            store_vector(dst + kWidth, second);
            store_vector(dst + size - 2 * kWidth, third);
        }
    } else {
        std::size_t i = aligned_start(dst, kWidth);
        const __m256i k = broadcast256(rotate_key(key, i));
        for (; i + 4 * kWidth <= size; i += 4 * kWidth) {
            const __m256i a = load_xor(src + i, k);
            const __m256i b = load_xor(src + i + kWidth, k);
            const __m256i c = load_xor(src + i + 2 * kWidth, k);
            const __m256i d = load_xor(src + i + 3 * kWidth, k);
            store_vector(dst + i, a);
            store_vector(dst + i + kWidth, b);
            store_vector(dst + i + 2 * kWidth, c);
            store_vector(dst + i + 3 * kWidth, d);
            if constexpr (kAscii) {
                acc = _mm256_or_si256(
                    acc, _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)));
            }
        }
        for (; i + kWidth <= size; i += kWidth) {
            const __m256i a = load_xor(src + i, k);
            store_vector(dst + i, a);
            if constexpr (kAscii) acc = _mm256_or_si256(acc, a);
        }
    }
    store_vector(dst, head);
    store_vector(dst + size - kWidth, tail);
    if constexpr (kAscii) return _mm256_movemask_epi8(acc) == 0;
    return false;
}

__attribute__((target("avx2"))) void mask_avx2(std::uint8_t* dst, const std::uint8_t* src,
                                               std::size_t size, std::uint32_t key) noexcept {
    if (size < 32) {
        mask_vector16(dst, src, size, key);
        return;
    }
    mask_avx2_body<false>(dst, src, size, key);
}

// In place; size >= 32.
__attribute__((target("avx2"))) bool mask_avx2_ascii(std::uint8_t* data, std::size_t size,
                                                     std::uint32_t key) noexcept {
    return mask_avx2_body<true>(data, data, size, key);
}

// AVX-512BW masks the ragged edges with byte-masked loads and stores instead: lanes outside the
// mask are not accessed at all (and fault-suppressed), so one op covers any edge of 0..64 bytes.
__attribute__((target("avx512f,avx512bw"), always_inline)) inline __mmask64 first_lanes(
    std::size_t count) noexcept {
    return count == 0 ? 0 : ~std::uint64_t{0} >> (64 - count);
}

__attribute__((target("avx512f,avx512bw"))) void mask_avx512(std::uint8_t* dst,
                                                             const std::uint8_t* src,
                                                             std::size_t size,
                                                             std::uint32_t key) noexcept {
    constexpr std::size_t kWidth = 64;
    const __m512i key0 = broadcast512(key);
    if (size <= kWidth) {
        const __mmask64 lanes = first_lanes(size);
        _mm512_mask_storeu_epi8(dst, lanes,
                                _mm512_xor_si512(_mm512_maskz_loadu_epi8(lanes, src), key0));
        return;
    }
    // The head is stored last: a load soon after a masked store to the same lines stalls badly
    // (measured on Zen 4), and the loop below never touches the head's bytes.
    const std::size_t head_size = aligned_start(dst, kWidth) % kWidth;
    const __mmask64 head_lanes = first_lanes(head_size);
    const __m512i head = _mm512_xor_si512(_mm512_maskz_loadu_epi8(head_lanes, src), key0);
    std::size_t i = head_size;
    const __m512i k = broadcast512(rotate_key(key, i));
    for (; i + 4 * kWidth <= size; i += 4 * kWidth) {
        const __m512i a = load_xor(src + i, k);
        const __m512i b = load_xor(src + i + kWidth, k);
        const __m512i c = load_xor(src + i + 2 * kWidth, k);
        const __m512i d = load_xor(src + i + 3 * kWidth, k);
        store_vector(dst + i, a);
        store_vector(dst + i + kWidth, b);
        store_vector(dst + i + 2 * kWidth, c);
        store_vector(dst + i + 3 * kWidth, d);
    }
    for (; i + kWidth <= size; i += kWidth)
        store_vector(dst + i, load_xor(src + i, k));
    const __mmask64 tail_lanes = first_lanes(size - i);
    _mm512_mask_storeu_epi8(dst + i, tail_lanes,
                            _mm512_xor_si512(_mm512_maskz_loadu_epi8(tail_lanes, src + i), k));
    _mm512_mask_storeu_epi8(dst, head_lanes, head);
}

#endif  // WSX_MASK_X86

// Hands impl's kernel to make.operator()<K>() as a template argument (so wrappers around it are
// instantiated per kernel); nullptr when impl is not built for this CPU architecture.
template <class Result, class Make>
Result for_kernel(MaskImpl impl, Make make) noexcept {
    switch (impl) {
        case MaskImpl::scalar:
            return make.template operator()<&mask_scalar>();
#if defined(WSX_MASK_X86)
        case MaskImpl::sse2:
            return make.template operator()<&mask_vector16_kernel>();
        case MaskImpl::avx2:
            return make.template operator()<&mask_avx2>();
        case MaskImpl::avx512:
            return make.template operator()<&mask_avx512>();
#endif
#if defined(WSX_MASK_NEON)
        case MaskImpl::neon:
            return make.template operator()<&mask_vector16_kernel>();
#endif
        default:
            return nullptr;
    }
}

Kernel kernel_for(MaskImpl impl) noexcept {
    return for_kernel<Kernel>(impl, []<Kernel K>() { return K; });
}

template <Kernel K>
void apply_with(std::uint8_t* data, std::size_t size, MaskKey key,
                std::size_t key_offset) noexcept {
    K(data, data, size, key_word(key, key_offset));
}

template <Kernel K>
void copy_with(std::uint8_t* dst, const std::uint8_t* src, std::size_t size, MaskKey key,
               std::size_t key_offset) noexcept {
    K(dst, src, size, key_word(key, key_offset));
}

// Below this size the scalar code runs inline: measured on Zen 4, 16-31 bytes take ~2.2 ns inline
// and ~3.3 ns through the indirect call to a vector kernel; from 32 bytes on the vectors win.
constexpr std::size_t kDispatchThreshold = 32;

void resolve_kernel(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                    std::uint32_t key) noexcept;

// Starts at the resolver, which replaces itself with the selected kernel on the first call.
// Constant-initialised, so it is valid even when masking runs during static initialisation;
// threads racing through the resolver store the same value.
constinit std::atomic<Kernel> selected_kernel{&resolve_kernel};

void resolve_kernel(std::uint8_t* dst, const std::uint8_t* src, std::size_t size,
                    std::uint32_t key) noexcept {
    const Kernel kernel = kernel_for(mask_impl_selected());
    selected_kernel.store(kernel, std::memory_order_relaxed);
    kernel(dst, src, size, key);
}

MaskImpl select_impl() noexcept {
    for (const MaskImpl impl : {MaskImpl::avx2, MaskImpl::sse2, MaskImpl::neon}) {
        if (mask_impl_available(impl)) return impl;
    }
    return MaskImpl::scalar;
}

}  // namespace

void apply_mask(std::span<std::uint8_t> data, MaskKey key, std::size_t key_offset) noexcept {
    const std::uint32_t word = key_word(key, key_offset);
    if (data.size() < kDispatchThreshold) {
        mask_scalar_inline(data.data(), data.data(), data.size(), word);
        return;
    }
    selected_kernel.load(std::memory_order_relaxed)(data.data(), data.data(), data.size(), word);
}

bool detail::unmask_is_ascii_long(std::span<std::uint8_t> data, MaskKey key) noexcept {
#if defined(WSX_MASK_X86)
    // The single-pass kernel exists for AVX2 only, the kernel apply_mask selects on any x86-64 CPU
    // that has it; elsewhere this unmasks and leaves the ASCII question to the validator.
    static const bool avx2 = mask_impl_selected() == MaskImpl::avx2;
    if (avx2) return mask_avx2_ascii(data.data(), data.size(), key_word(key, 0));
#endif
    apply_mask(data, key);
    return false;
}

void copy_masked(std::uint8_t* dst, const std::uint8_t* src, std::size_t size, MaskKey key,
                 std::size_t key_offset) noexcept {
    const std::uint32_t word = key_word(key, key_offset);
    if (size < kDispatchThreshold) {
        mask_scalar_inline(dst, src, size, word);
        return;
    }
    selected_kernel.load(std::memory_order_relaxed)(dst, src, size, word);
}

bool mask_impl_available(MaskImpl impl) noexcept {
    switch (impl) {
        case MaskImpl::scalar:
            return true;
#if defined(WSX_MASK_X86)
        case MaskImpl::sse2:
            return true;
        case MaskImpl::avx2:
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx2");
        case MaskImpl::avx512:
            __builtin_cpu_init();
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
#if defined(WSX_MASK_NEON)
        case MaskImpl::neon:
            return true;
#endif
        default:
            return false;
    }
}

MaskFn mask_impl_function(MaskImpl impl) noexcept {
    return for_kernel<MaskFn>(impl, []<Kernel K>() { return &apply_with<K>; });
}

CopyMaskFn mask_impl_copy_function(MaskImpl impl) noexcept {
    return for_kernel<CopyMaskFn>(impl, []<Kernel K>() { return &copy_with<K>; });
}

MaskImpl mask_impl_selected() noexcept {
    static const MaskImpl selected = select_impl();
    return selected;
}

const char* mask_impl_name(MaskImpl impl) noexcept {
    switch (impl) {
        case MaskImpl::scalar:
            return "scalar";
        case MaskImpl::sse2:
            return "sse2";
        case MaskImpl::avx2:
            return "avx2";
        case MaskImpl::avx512:
            return "avx512";
        case MaskImpl::neon:
            return "neon";
    }
    return "unknown";
}

}  // namespace wsx::proto
