// What every harness shares: the invariant check, the split pattern a fuzzer input chooses, and
// reference implementations deliberately simpler than the engine's, to compare against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "proto/utf8.hpp"

namespace wsx::fuzz {

// Reports a broken invariant and aborts: libFuzzer saves the input as a crash, the replay test
// dies with the message.
[[noreturn]] void invariant_failed(const char* condition, const char* file, int line) noexcept;

// Names the input being run (the replay test sets the corpus file), printed with a failure.
void set_input_label(std::string_view label) noexcept;

#define WSX_FUZZ_CHECK(condition)                                                        \
    do {                                                                                 \
        if (!(condition)) ::wsx::fuzz::invariant_failed(#condition, __FILE__, __LINE__); \
    } while (false)

// Reads the fuzzer input front to back; past the end every read yields zeros, so a harness never
// has to reject a short input.
class InputReader {
  public:
    InputReader(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}

    std::uint8_t byte() noexcept { return pos_ < size_ ? data_[pos_++] : 0; }
    std::uint16_t u16() noexcept {
        const std::uint16_t high = byte();
        return static_cast<std::uint16_t>(high << 8 | byte());
    }
    // Everything not read yet.
    std::span<const std::uint8_t> rest() const noexcept {
        return {data_ + pos_, pos_ < size_ ? size_ - pos_ : 0};
    }

  private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

// Cuts a byte stream into reads, as a socket would deliver it. The seed (two input bytes) picks
// the largest piece (1, 2, 3, 7, 16, 64, 1000 bytes, or everything at once) and the sizes below it.
class Splitter {
  public:
    explicit Splitter(std::uint16_t seed) noexcept;
    // The size of the next piece, 1..remaining (0 only when remaining is 0).
    std::size_t next(std::size_t remaining) noexcept;

  private:
    std::uint32_t state_;
    std::size_t max_piece_;
};

// RFC 3629 by the definition: a byte sequence is valid when it decodes to code points in
// U+0000..U+10FFFF outside the surrogates, each in its shortest form. Decodes code point by code
// point with plain arithmetic; shares nothing with the engine's DFA or SIMD kernels.
struct ReferenceUtf8 {
    bool invalid = false;
    // The first byte after which no continuation can make the input valid (when invalid).
    std::size_t error_offset = 0;
    // boundary[i]: a code point ends right before byte i (boundary[0] is true). Size + 1 entries.
    std::vector<bool> boundary;

    // What an incremental validator must say after the first `prefix` bytes.
    proto::Utf8Status status_after(std::size_t prefix) const noexcept;
};

ReferenceUtf8 reference_utf8(std::span<const std::uint8_t> bytes);
bool reference_utf8_valid(std::span<const std::uint8_t> bytes);

// RFC 9110 §5.6.2 token, spelled out independently of the engine's parser.
bool reference_is_token(std::string_view s) noexcept;

inline std::span<const std::uint8_t> as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string_view as_chars(std::span<const std::uint8_t> s) noexcept {
    return {reinterpret_cast<const char*>(s.data()), s.size()};
}

// True when `part` lies entirely within `whole` (a view that must point into a parsed buffer).
inline bool points_into(std::string_view part, std::string_view whole) noexcept {
    if (part.empty()) return true;
    const auto* begin = whole.data();
    return part.data() >= begin && part.data() + part.size() <= begin + whole.size();
}

}  // namespace wsx::fuzz
