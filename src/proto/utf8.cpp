// Incremental UTF-8 validation (RFC 3629 §4 syntax) for RFC 6455 §8.1 text messages.
//
// Two layers. A DFA decides every byte exactly and is the only thing that reports an error, so the
// fail-fast point and error offset never depend on the CPU. In front of it, a per-ISA kernel skips
// a prefix it can prove valid and complete: plain ASCII (8-byte words, SSE2) or any UTF-8 (AVX2,
// NEON: nibble lookup tables). A kernel only ever stops early; the DFA then resumes at a code point
// boundary the kernel returns, and finds the exact offending byte within the next few bytes.
#include "proto/utf8.hpp"

#include <array>
#include <bit>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#define WSX_UTF8_X86 1
#define WSX_UTF8_LOOKUP 1
#define WSX_TARGET_AVX2 __attribute__((target("avx2")))
#elif defined(__aarch64__)
#include <arm_neon.h>
#define WSX_UTF8_NEON 1
#define WSX_UTF8_LOOKUP 1
#endif

namespace wsx::proto {
namespace {

// ---------------------------------------------------------------------------------------------
// The DFA. A state is a bit offset into a 64-bit row per input byte: the next state is
// (row[byte] >> state) & 63, a single shift on the loop-carried dependency, since the row load
// depends only on the input. Nine states of 6 bits fit in one row.
constexpr std::uint32_t kAccept = 0;    // on a code point boundary
constexpr std::uint32_t kReject = 6;    // absorbing
constexpr std::uint32_t kNeed1 = 12;    // one more continuation byte 80..BF
constexpr std::uint32_t kNeed2 = 18;    // two more
constexpr std::uint32_t kNeed3 = 24;    // three more
constexpr std::uint32_t kAfterE0 = 30;  // A0..BF next: E0 80..9F would be overlong
constexpr std::uint32_t kAfterED = 36;  // 80..9F next: ED A0..BF would be a surrogate D800..DFFF
constexpr std::uint32_t kAfterF0 = 42;  // 90..BF next: F0 80..8F would be overlong
constexpr std::uint32_t kAfterF4 = 48;  // 80..8F next: F4 90..BF would be above U+10FFFF
constexpr std::array<std::uint32_t, 9> kStates = {kAccept,  kReject,  kNeed1,   kNeed2,  kNeed3,
                                                  kAfterE0, kAfterED, kAfterF0, kAfterF4};

constexpr bool in_range(unsigned byte, unsigned low, unsigned high) {
    return byte >= low && byte <= high;
}

// RFC 3629 §4: the UTF8-char grammar, one byte at a time.
constexpr std::uint32_t next_state(std::uint32_t state, unsigned byte) {
    const bool continuation = in_range(byte, 0x80, 0xBF);
    switch (state) {
        case kAccept:
            if (byte < 0x80) return kAccept;
            if (in_range(byte, 0xC2, 0xDF)) return kNeed1;
            if (byte == 0xE0) return kAfterE0;
            if (byte == 0xED) return kAfterED;
            if (in_range(byte, 0xE1, 0xEF)) return kNeed2;
            if (byte == 0xF0) return kAfterF0;
            if (in_range(byte, 0xF1, 0xF3)) return kNeed3;
            if (byte == 0xF4) return kAfterF4;
            // C0 and C1 only start overlong forms, F5..FF only code points above U+10FFFF.
            return kReject;
        case kNeed1:
            return continuation ? kAccept : kReject;
        case kNeed2:
            return continuation ? kNeed1 : kReject;
        case kNeed3:
            return continuation ? kNeed2 : kReject;
        case kAfterE0:
            return in_range(byte, 0xA0, 0xBF) ? kNeed1 : kReject;
        case kAfterED:
            return in_range(byte, 0x80, 0x9F) ? kNeed1 : kReject;
        case kAfterF0:
            return in_range(byte, 0x90, 0xBF) ? kNeed2 : kReject;
        case kAfterF4:
            return in_range(byte, 0x80, 0x8F) ? kNeed2 : kReject;
        default:
            return kReject;
    }
}

constexpr std::array<std::uint64_t, 256> kTransitions = [] {
    std::array<std::uint64_t, 256> rows{};
    for (unsigned byte = 0; byte < 256; ++byte) {
        for (const std::uint32_t state : kStates) {
            rows[byte] |= std::uint64_t{next_state(state, byte)} << state;
        }
    }
    return rows;
}();

constexpr std::uint64_t kHighBits = 0x8080808080808080;

// Runs the DFA over data[pos, end). Returns end, or, when `state` ends as kReject, the index of the
// byte that made the stream invalid.
std::size_t run_dfa(const std::uint8_t* data, std::size_t pos, std::size_t end,
                    std::uint32_t& state) noexcept {
    std::uint64_t s = state;
    while (end - pos >= 8) {
        std::uint64_t word;
        std::memcpy(&word, data + pos, 8);
        if (s == kAccept && (word & kHighBits) == 0) {  // ASCII words between code points
            pos += 8;
            continue;
        }
        // Eight bytes without a per-byte exit: kReject is absorbing, so one check after them
        // tells whether to redo them byte by byte below to find the offender.
        std::uint64_t t = s;
#pragma GCC unroll 8
        for (std::size_t k = 0; k < 8; ++k)
            t = kTransitions[data[pos + k]] >> (t & 63);
        if ((t & 63) == kReject) break;
        s = t & 63;
        pos += 8;
    }
    for (; pos < end; ++pos) {
        s = kTransitions[data[pos]] >> (s & 63);
        if ((s & 63) == kReject) break;
    }
    state = static_cast<std::uint32_t>(s & 63);
    return pos;
}

// ---------------------------------------------------------------------------------------------
// Kernels: (data, size) -> length of a prefix that is valid UTF-8 ending on a code point boundary.
// data starts on a boundary. Returning less than the longest such prefix is always allowed.
using PrefixFn = std::size_t (*)(const std::uint8_t* data, std::size_t size) noexcept;

// Bytes the DFA takes before the kernel gets another try. The lookup kernels stop only at an
// error or a short tail, so this covers the block where they stopped (64 bytes plus a sequence
// started just before it) in one pass; the ASCII ones get another try after each non-ASCII run.
constexpr std::size_t kDfaChunk = 64 + 3;

std::size_t first_high_byte(std::uint64_t high_bits) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        return static_cast<std::size_t>(std::countr_zero(high_bits)) / 8;
    } else {
        return static_cast<std::size_t>(std::countl_zero(high_bits)) / 8;
    }
}

std::size_t ascii_prefix_scalar(const std::uint8_t* data, std::size_t size) noexcept {
    std::size_t i = 0;
    for (; i + 16 <= size; i += 16) {
        std::uint64_t a;
        std::uint64_t b;
        std::memcpy(&a, data + i, 8);
        std::memcpy(&b, data + i + 8, 8);
        if (((a | b) & kHighBits) != 0) break;
    }
    for (; i + 8 <= size; i += 8) {
        std::uint64_t word;
        std::memcpy(&word, data + i, 8);
        if (const std::uint64_t high = word & kHighBits; high != 0) {
            return i + first_high_byte(high);
        }
    }
    return i;
}

#if defined(WSX_UTF8_LOOKUP)

// For a prefix data[0, end) whose every byte passed the block checks: the last code point
// boundary at or before end. Only a sequence that started in the last three bytes can be cut.
std::size_t last_boundary(const std::uint8_t* data, std::size_t end) noexcept {
    for (std::size_t back = 1; back <= 3 && back <= end; ++back) {
        const std::uint8_t byte = data[end - back];
        if (byte < 0x80) return end;
        if (byte >= 0xC0) {
            const std::size_t length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2;
            return length > back ? end - back : end;
        }
    }
    return end;
}

// Error flags of the block check, one bit each, looked up from (previous byte's high nibble,
// previous byte's low nibble, this byte's high nibble) and ANDed: a bit survives only if all
// three agree. Bit 6 serves two rules whose nibbles never overlap (F0 80..8F, F5..FF 80..8F).
constexpr std::uint8_t kTooShort = 1 << 0;          // lead byte, then no continuation
constexpr std::uint8_t kTooLong = 1 << 1;           // ASCII, then a continuation
constexpr std::uint8_t kOverlong3 = 1 << 2;         // E0 80..9F
constexpr std::uint8_t kTooLarge = 1 << 3;          // F4..FF 90..BF
constexpr std::uint8_t kSurrogate = 1 << 4;         // ED A0..BF
constexpr std::uint8_t kOverlong2 = 1 << 5;         // C0/C1, then a continuation
constexpr std::uint8_t kF0OrAbove4 = 1 << 6;        // F0 80..8F (overlong) or F5..FF 80..8F
constexpr std::uint8_t kTwoContinuations = 1 << 7;  // must match "2nd/3rd continuation expected"

constexpr std::array<std::uint8_t, 16> kPrevHighNibble = [] {
    std::array<std::uint8_t, 16> t{};
    for (unsigned n = 0; n < 8; ++n)
        t[n] = kTooLong;
    for (unsigned n = 8; n < 12; ++n)
        t[n] = kTwoContinuations;
    t[0xC] = kTooShort | kOverlong2;
    t[0xD] = kTooShort;
    t[0xE] = kTooShort | kOverlong3 | kSurrogate;
    t[0xF] = kTooShort | kTooLarge | kF0OrAbove4;
    return t;
}();

constexpr std::array<std::uint8_t, 16> kPrevLowNibble = [] {
    std::array<std::uint8_t, 16> t{};
    for (unsigned n = 0; n < 16; ++n) {
        std::uint8_t v = kTooShort | kTooLong | kTwoContinuations;
        if (n <= 1) v |= kOverlong2;
        if (n == 0) v |= kOverlong3 | kF0OrAbove4;
        if (n == 0xD) v |= kSurrogate;
        if (n >= 4) v |= kTooLarge;
        if (n >= 5) v |= kF0OrAbove4;
        t[n] = v;
    }
    return t;
}();

constexpr std::array<std::uint8_t, 16> kThisHighNibble = [] {
    std::array<std::uint8_t, 16> t{};
    for (unsigned n = 0; n < 16; ++n)
        t[n] = kTooShort;
    constexpr std::uint8_t kAnyContinuation = kTooLong | kOverlong2 | kTwoContinuations;
    t[0x8] = kAnyContinuation | kOverlong3 | kF0OrAbove4;
    t[0x9] = kAnyContinuation | kOverlong3 | kTooLarge;
    t[0xA] = kAnyContinuation | kSurrogate | kTooLarge;
    t[0xB] = kAnyContinuation | kSurrogate | kTooLarge;
    return t;
}();

// Subtracting these (saturating) from the last bytes of a block leaves a nonzero byte exactly
// when a sequence starting there needs bytes from the next block.
template <std::size_t kWidth>
constexpr std::array<std::uint8_t, kWidth> incomplete_below() {
    std::array<std::uint8_t, kWidth> t{};
    t.fill(0xFF);
    t[kWidth - 3] = 0xEF;
    t[kWidth - 2] = 0xDF;
    t[kWidth - 1] = 0xBF;
    return t;
}

#endif  // WSX_UTF8_LOOKUP

#if defined(WSX_UTF8_X86)

std::size_t ascii_prefix_sse2(const std::uint8_t* data, std::size_t size) noexcept {
    std::size_t i = 0;
    for (; i + 32 <= size; i += 32) {
        const __m128i a =
            _mm_loadu_si128(static_cast<const __m128i*>(static_cast<const void*>(data + i)));
        const __m128i b =
            _mm_loadu_si128(static_cast<const __m128i*>(static_cast<const void*>(data + i + 16)));
        const int high = _mm_movemask_epi8(_mm_or_si128(a, b));
        if (high != 0) {
            const int high_a = _mm_movemask_epi8(a);
            return high_a != 0 ? i + static_cast<std::size_t>(
                                         std::countr_zero(static_cast<unsigned>(high_a)))
                               : i + 16 +
                                     static_cast<std::size_t>(std::countr_zero(
                                         static_cast<unsigned>(_mm_movemask_epi8(b))));
        }
    }
    return i + ascii_prefix_scalar(data + i, size - i);
}

WSX_TARGET_AVX2 inline __m256i load256(const std::uint8_t* p) noexcept {
    return _mm256_loadu_si256(static_cast<const __m256i*>(static_cast<const void*>(p)));
}

WSX_TARGET_AVX2 inline __m256i broadcast_table(const std::array<std::uint8_t, 16>& table) noexcept {
    __m128i v;
    std::memcpy(&v, table.data(), sizeof v);
    return _mm256_broadcastsi128_si256(v);
}

inline const int* as_ints(const std::uint8_t* p) noexcept {
    return static_cast<const int*>(static_cast<const void*>(p));
}

struct Avx2Tables {
    __m256i prev_high;
    __m256i prev_low;
    __m256i this_high;
};

// The error flags of each byte of `in`, given the block before it: nonzero where a byte cannot
// follow its predecessors (the Keiser-Lemire lookup method).
WSX_TARGET_AVX2 inline __m256i block_errors(__m256i in, __m256i prev,
                                            const Avx2Tables& tables) noexcept {
    // Per 128-bit lane, alignr needs the 16 bytes before the lane: prev's high lane for in's low.
    const __m256i before = _mm256_permute2x128_si256(prev, in, 0x21);
    const __m256i prev1 = _mm256_alignr_epi8(in, before, 15);
    const __m256i prev2 = _mm256_alignr_epi8(in, before, 14);
    const __m256i prev3 = _mm256_alignr_epi8(in, before, 13);
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    const __m256i prev1_high = _mm256_and_si256(_mm256_srli_epi16(prev1, 4), nibble);
    const __m256i prev1_low = _mm256_and_si256(prev1, nibble);
    const __m256i in_high = _mm256_and_si256(_mm256_srli_epi16(in, 4), nibble);
    const __m256i flags =
        _mm256_and_si256(_mm256_and_si256(_mm256_shuffle_epi8(tables.prev_high, prev1_high),
                                          _mm256_shuffle_epi8(tables.prev_low, prev1_low)),
                         _mm256_shuffle_epi8(tables.this_high, in_high));
    // A byte two after E0..FF or three after F0..FF must be a continuation following a
    // continuation; exactly then kTwoContinuations is expected, so XOR clears it.
    const __m256i third = _mm256_subs_epu8(prev2, _mm256_set1_epi8(0xE0 - 0x80));
    const __m256i fourth = _mm256_subs_epu8(prev3, _mm256_set1_epi8(0xF0 - 0x80));
    const __m256i expected =
        _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(static_cast<char>(0x80)));
    return _mm256_xor_si256(flags, expected);
}

// The tail of valid_prefix_avx2, data[i, size) with size - i < 64, kept out of line so that
// its registers do not push the main loop's tables onto the stack.
WSX_TARGET_AVX2 __attribute__((noinline)) std::size_t valid_prefix_avx2_tail(
    const std::uint8_t* data, std::size_t i, std::size_t size, __m256i prev,
    __m256i prev_incomplete, const Avx2Tables& tables) noexcept {
    // The tail gets the same check, read whole dwords at a time with masked loads, which never
    // touch memory past the end. Errors in the zeroed lanes after it (from a sequence the end
    // cuts) are ignored; the DFA takes the last 0..3 bytes and any sequence left open.
    const std::size_t words = (size - i) / 4;
    if (words != 0) {
        const auto count = _mm256_set1_epi32(static_cast<int>(words));
        const __m256i a = _mm256_maskload_epi32(
            as_ints(data + i),
            _mm256_cmpgt_epi32(count, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
        const __m256i b =
            words > 8
                ? _mm256_maskload_epi32(
                      as_ints(data + i + 32),
                      _mm256_cmpgt_epi32(count, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15)))
                : _mm256_setzero_si256();
        const std::size_t end = i + words * 4;
        if (_mm256_movemask_epi8(_mm256_or_si256(a, b)) == 0 &&
            _mm256_testz_si256(prev_incomplete, prev_incomplete)) {
            return end;
        }
        const __m256i zero = _mm256_setzero_si256();
        const auto clean_a = static_cast<std::uint32_t>(
            _mm256_movemask_epi8(_mm256_cmpeq_epi8(block_errors(a, prev, tables), zero)));
        const auto clean_b = static_cast<std::uint32_t>(
            _mm256_movemask_epi8(_mm256_cmpeq_epi8(block_errors(b, a, tables), zero)));
        const std::uint64_t clean = std::uint64_t{clean_b} << 32 | clean_a;
        const std::uint64_t real = (std::uint64_t{1} << (words * 4)) - 1;
        if ((~clean & real) == 0) return last_boundary(data, end);
    }
    return last_boundary(data, i);
}

WSX_TARGET_AVX2 std::size_t valid_prefix_avx2(const std::uint8_t* data, std::size_t size) noexcept {
    const Avx2Tables tables{broadcast_table(kPrevHighNibble), broadcast_table(kPrevLowNibble),
                            broadcast_table(kThisHighNibble)};
    constexpr auto kIncompleteBelow = incomplete_below<32>();
    const __m256i incomplete = load256(kIncompleteBelow.data());
    __m256i prev = _mm256_setzero_si256();  // data starts on a boundary: as if after ASCII
    __m256i prev_incomplete = _mm256_setzero_si256();
    std::size_t i = 0;
    for (; i + 64 <= size; i += 64) {
        const __m256i a = load256(data + i);
        const __m256i b = load256(data + i + 32);
        if (_mm256_movemask_epi8(_mm256_or_si256(a, b)) == 0) {
            // All ASCII: valid unless the block before left a sequence open.
            if (!_mm256_testz_si256(prev_incomplete, prev_incomplete)) break;
        } else {
            const __m256i errors =
                _mm256_or_si256(block_errors(a, prev, tables), block_errors(b, a, tables));
            if (!_mm256_testz_si256(errors, errors)) break;
            prev_incomplete = _mm256_subs_epu8(b, incomplete);
        }
        prev = b;
    }
    if (i + 64 > size) return valid_prefix_avx2_tail(data, i, size, prev, prev_incomplete, tables);
    return last_boundary(data, i);
}

bool cpu_has_avx2() noexcept {
    return __builtin_cpu_supports("avx2") != 0;
}

#endif  // WSX_UTF8_X86

#if defined(WSX_UTF8_NEON)

struct NeonTables {
    uint8x16_t prev_high;
    uint8x16_t prev_low;
    uint8x16_t this_high;
};

// The NEON twin of block_errors above, on 16-byte blocks.
inline uint8x16_t block_errors(uint8x16_t in, uint8x16_t prev, const NeonTables& tables) noexcept {
    const uint8x16_t prev1 = vextq_u8(prev, in, 15);
    const uint8x16_t prev2 = vextq_u8(prev, in, 14);
    const uint8x16_t prev3 = vextq_u8(prev, in, 13);
    const uint8x16_t flags =
        vandq_u8(vandq_u8(vqtbl1q_u8(tables.prev_high, vshrq_n_u8(prev1, 4)),
                          vqtbl1q_u8(tables.prev_low, vandq_u8(prev1, vdupq_n_u8(0x0F)))),
                 vqtbl1q_u8(tables.this_high, vshrq_n_u8(in, 4)));
    const uint8x16_t third = vqsubq_u8(prev2, vdupq_n_u8(0xE0 - 0x80));
    const uint8x16_t fourth = vqsubq_u8(prev3, vdupq_n_u8(0xF0 - 0x80));
    const uint8x16_t expected = vandq_u8(vorrq_u8(third, fourth), vdupq_n_u8(0x80));
    return veorq_u8(flags, expected);
}

std::size_t valid_prefix_neon(const std::uint8_t* data, std::size_t size) noexcept {
    const NeonTables tables{vld1q_u8(kPrevHighNibble.data()), vld1q_u8(kPrevLowNibble.data()),
                            vld1q_u8(kThisHighNibble.data())};
    constexpr auto kIncompleteBelow = incomplete_below<16>();
    const uint8x16_t incomplete = vld1q_u8(kIncompleteBelow.data());
    uint8x16_t prev = vdupq_n_u8(0);  // data starts on a boundary: as if after ASCII
    uint8x16_t prev_incomplete = vdupq_n_u8(0);
    std::size_t i = 0;
    for (; i + 64 <= size; i += 64) {
        const uint8x16_t a = vld1q_u8(data + i);
        const uint8x16_t b = vld1q_u8(data + i + 16);
        const uint8x16_t c = vld1q_u8(data + i + 32);
        const uint8x16_t d = vld1q_u8(data + i + 48);
        if (vmaxvq_u8(vorrq_u8(vorrq_u8(a, b), vorrq_u8(c, d))) < 0x80) {
            if (vmaxvq_u8(prev_incomplete) != 0) break;
        } else {
            const uint8x16_t errors =
                vorrq_u8(vorrq_u8(block_errors(a, prev, tables), block_errors(b, a, tables)),
                         vorrq_u8(block_errors(c, b, tables), block_errors(d, c, tables)));
            if (vmaxvq_u8(errors) != 0) break;
            prev_incomplete = vqsubq_u8(d, incomplete);
        }
        prev = d;
    }
    if (i + 64 > size) {
        for (; i + 16 <= size; i += 16) {
            const uint8x16_t a = vld1q_u8(data + i);
            if (vmaxvq_u8(block_errors(a, prev, tables)) != 0) break;
            prev = a;
        }
    }
    return last_boundary(data, i);
}

#endif  // WSX_UTF8_NEON

constexpr PrefixFn kernel_for(Utf8Impl impl) noexcept {
    switch (impl) {
#if defined(WSX_UTF8_X86)
        case Utf8Impl::sse2:
            return ascii_prefix_sse2;
        case Utf8Impl::avx2:
            return valid_prefix_avx2;
#endif
#if defined(WSX_UTF8_NEON)
        case Utf8Impl::neon:
            return valid_prefix_neon;
#endif
        default:
            return ascii_prefix_scalar;
    }
}

Utf8Impl detect_impl() noexcept {
#if defined(WSX_UTF8_X86)
    return cpu_has_avx2() ? Utf8Impl::avx2 : Utf8Impl::sse2;
#elif defined(WSX_UTF8_NEON)
    return Utf8Impl::neon;
#else
    return Utf8Impl::scalar;
#endif
}

}  // namespace

bool utf8_impl_available(Utf8Impl impl) noexcept {
    switch (impl) {
        case Utf8Impl::scalar:
            return true;
#if defined(WSX_UTF8_X86)
        case Utf8Impl::sse2:
            return true;  // part of the x86-64 baseline
        case Utf8Impl::avx2:
            return cpu_has_avx2();
#endif
#if defined(WSX_UTF8_NEON)
        case Utf8Impl::neon:
            return true;  // part of the AArch64 baseline
#endif
        default:
            return false;
    }
}

Utf8Impl utf8_impl_selected() noexcept {
    static const Utf8Impl impl = detect_impl();
    return impl;
}

const char* utf8_impl_name(Utf8Impl impl) noexcept {
    switch (impl) {
        case Utf8Impl::scalar:
            return "scalar";
        case Utf8Impl::sse2:
            return "sse2";
        case Utf8Impl::avx2:
            return "avx2";
        case Utf8Impl::neon:
            return "neon";
    }
    return "unknown";
}

namespace {

struct FeedResult {
    std::uint32_t state;
    std::size_t stop;  // the offending byte when state is kReject
};

FeedResult validate(PrefixFn valid_prefix, const std::uint8_t* data, std::size_t size,
                    std::uint32_t state) noexcept {
    std::size_t pos = 0;
    while (pos < size) {
        if (state == kAccept) {
            pos += valid_prefix(data + pos, size - pos);
            if (pos == size) break;
        }
        const std::size_t end = size - pos > kDfaChunk ? pos + kDfaChunk : size;
        pos = run_dfa(data, pos, end, state);
        if (state == kReject) break;
    }
    return {state, pos};
}

}  // namespace

Utf8Status Utf8Validator::feed(std::span<const std::uint8_t> bytes) noexcept {
    return feed(bytes, utf8_impl_selected());
}

Utf8Status Utf8Validator::feed(std::span<const std::uint8_t> bytes, Utf8Impl impl) noexcept {
    if (state_ == kReject) return Utf8Status::invalid;
    const FeedResult result = validate(kernel_for(impl), bytes.data(), bytes.size(), state_);
    if (result.state == kReject) error_offset_ = consumed_ + result.stop;
    state_ = result.state;
    consumed_ += bytes.size();
    return status();
}

Utf8Status Utf8Validator::status() const noexcept {
    if (state_ == kAccept) return Utf8Status::complete;
    return state_ == kReject ? Utf8Status::invalid : Utf8Status::partial;
}

bool is_valid_utf8(std::span<const std::uint8_t> bytes) noexcept {
    const std::size_t n = bytes.size();
    const std::uint8_t* p = bytes.data();
    // Up to 16 bytes of ASCII (most short text messages): two overlapping word loads decide.
    if (n < 16) {
        std::uint64_t bits = 0;
        if (n >= 8) {
            std::uint64_t a, b;
            std::memcpy(&a, p, 8);
            std::memcpy(&b, p + n - 8, 8);
            bits = a | b;
        } else if (n >= 4) {
            std::uint32_t a, b;
            std::memcpy(&a, p, 4);
            std::memcpy(&b, p + n - 4, 4);
            bits = a | b;
        } else {
            for (std::size_t i = 0; i < n; ++i)
                bits |= p[i];
        }
        if ((bits & kHighBits) == 0) return true;
    }
#if defined(WSX_UTF8_X86)
    // Up to 128 bytes of ASCII: overlapping 16-byte loads decide before any kernel is set up.
    if (n >= 16 && n <= 128) {
        __m128i acc =
            _mm_loadu_si128(static_cast<const __m128i*>(static_cast<const void*>(p + n - 16)));
        for (std::size_t i = 0; i + 16 <= n; i += 16)
            acc = _mm_or_si128(
                acc, _mm_loadu_si128(static_cast<const __m128i*>(static_cast<const void*>(p + i))));
        if (_mm_movemask_epi8(acc) == 0) return true;
    }
#endif
    return validate(kernel_for(utf8_impl_selected()), bytes.data(), bytes.size(), kAccept).state ==
           kAccept;
}

}  // namespace wsx::proto
