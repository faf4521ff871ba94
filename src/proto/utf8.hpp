// Incremental UTF-8 validation (RFC 3629, as RFC 6455 §8.1 requires for text messages).
//
// State survives across calls, so a code point may be split across reads, frames and fragments.
// The validator fails fast: feed() reports invalid as soon as a byte makes the sequence
// impossible, even mid-frame (Autobahn 6.x checks for that). Noncharacters (U+FFFE, U+FFFF,
// U+10FFFF, ...) are valid; overlong forms, surrogates, code points above U+10FFFF, stray
// continuation bytes and truncated sequences are not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace wsx::proto {

enum class Utf8Status : std::uint8_t {
    complete,  // everything so far is valid and ends on a code point boundary
    partial,   // valid so far, but the last code point is unfinished
    invalid,   // a byte that can never be valid UTF-8 here was seen
};

// The kernels behind feed(): each skips ahead over input it can prove valid and leaves the rest to
// one exact DFA, so every one gives the same verdict and error offset. Exposed so tests and
// benchmarks can run each directly.
enum class Utf8Impl : std::uint8_t { scalar, sse2, avx2, neon };

// True when this build and this CPU can run `impl`.
bool utf8_impl_available(Utf8Impl impl) noexcept;
// The implementation feed() uses on this CPU (the fastest available).
Utf8Impl utf8_impl_selected() noexcept;
// "scalar", "sse2", "avx2" or "neon".
const char* utf8_impl_name(Utf8Impl impl) noexcept;

class Utf8Validator {
  public:
    // Validates the next bytes of the stream. Once invalid, stays invalid until reset().
    Utf8Status feed(std::span<const std::uint8_t> bytes) noexcept;
    // The same with a chosen kernel; only call it when utf8_impl_available(impl).
    Utf8Status feed(std::span<const std::uint8_t> bytes, Utf8Impl impl) noexcept;

    // The status after everything fed so far (complete for an empty stream).
    Utf8Status status() const noexcept;

    // For an invalid stream: offset, from the start of the stream since the last reset(), of the
    // first byte that made it invalid.
    std::uint64_t error_offset() const noexcept { return error_offset_; }

    void reset() noexcept { *this = Utf8Validator{}; }

  private:
    std::uint64_t consumed_ = 0;      // bytes fed since reset
    std::uint64_t error_offset_ = 0;  // valid when state_ is the reject state
    std::uint32_t state_ = 0;         // DFA state (a bit offset, see utf8.cpp); 0 = on a boundary
};

// Whole-buffer check: true when `bytes` is complete, valid UTF-8.
bool is_valid_utf8(std::span<const std::uint8_t> bytes) noexcept;

}  // namespace wsx::proto
