#include "support.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace wsx::fuzz {

namespace {

// Only the replay test sets it, from one thread; libFuzzer runs one input at a time.
std::string& input_label() {
    static std::string label;
    return label;
}

// RFC 3629 §3: the smallest code point each sequence length may encode (shorter ones are
// overlong).
constexpr std::array<std::uint32_t, 5> kMinCodePoint = {0, 0, 0x80, 0x800, 0x10000};

// Whether a sequence of `length` bytes whose first `have` bytes decoded to `prefix` can still end
// as a valid code point: the completions span one contiguous range of code points, which must
// meet [min, U+D7FF] or [U+E000, U+10FFFF].
bool can_complete(std::uint32_t prefix, std::size_t have, std::size_t length) noexcept {
    const std::size_t missing_bits = 6 * (length - have);
    const std::uint64_t low = std::uint64_t{prefix} << missing_bits;
    const std::uint64_t high = low | ((std::uint64_t{1} << missing_bits) - 1);
    const std::uint64_t from = std::max<std::uint64_t>(low, kMinCodePoint[length]);
    if (from > high) return false;
    if (from <= 0xD7FF) return true;
    return std::max<std::uint64_t>(from, 0xE000) <= std::min<std::uint64_t>(high, 0x10FFFF);
}

}  // namespace

void invariant_failed(const char* condition, const char* file, int line) noexcept {
    std::fprintf(stderr, "\n%s:%d: fuzz invariant broken: %s\n", file, line, condition);
    if (!input_label().empty()) std::fprintf(stderr, "input: %s\n", input_label().c_str());
    std::fflush(stderr);
    std::abort();
}

void set_input_label(std::string_view label) noexcept {
    input_label().assign(label.data(), label.size());
}

Splitter::Splitter(std::uint16_t seed) noexcept : state_(seed * 2654435761U | 1U) {
    static constexpr std::array<std::size_t, 8> kMaxPiece = {0, 1, 2, 3, 7, 16, 64, 1000};
    max_piece_ = kMaxPiece[seed & 7];
}

std::size_t Splitter::next(std::size_t remaining) noexcept {
    if (max_piece_ == 0 || remaining == 0) return remaining;
    // xorshift32: any cheap sequence will do, it only has to differ between seeds.
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return std::min(remaining, 1 + state_ % max_piece_);
}

proto::Utf8Status ReferenceUtf8::status_after(std::size_t prefix) const noexcept {
    if (invalid && prefix > error_offset) return proto::Utf8Status::invalid;
    return boundary[prefix] ? proto::Utf8Status::complete : proto::Utf8Status::partial;
}

ReferenceUtf8 reference_utf8(std::span<const std::uint8_t> bytes) {
    ReferenceUtf8 r;
    r.boundary.assign(bytes.size() + 1, false);
    r.boundary[0] = true;
    std::size_t i = 0;
    while (i < bytes.size()) {
        const std::uint8_t lead = bytes[i];
        std::size_t length = 0;
        if (lead < 0x80) {
            length = 1;
        } else if (lead >= 0xC0 && lead < 0xE0) {
            length = 2;
        } else if (lead >= 0xE0 && lead < 0xF0) {
            length = 3;
        } else if (lead >= 0xF0 && lead < 0xF8) {
            length = 4;
        }
        if (length == 0) {  // a continuation byte, or a lead byte of no UTF-8 length
            r.invalid = true;
            r.error_offset = i;
            return r;
        }
        std::uint32_t code_point = length == 1 ? lead : lead & (0x7FU >> length);
        for (std::size_t k = 0; k < length; ++k) {
            if (k > 0) {
                if (i + k == bytes.size()) return r;  // truncated, but valid so far
                const std::uint8_t next = bytes[i + k];
                if ((next & 0xC0) != 0x80) {
                    r.invalid = true;
                    r.error_offset = i + k;
                    return r;
                }
                code_point = code_point << 6 | (next & 0x3FU);
            }
            if (!can_complete(code_point, k + 1, length)) {
                r.invalid = true;
                r.error_offset = i + k;
                return r;
            }
        }
        i += length;
        r.boundary[i] = true;
    }
    return r;
}

bool reference_utf8_valid(std::span<const std::uint8_t> bytes) {
    const ReferenceUtf8 r = reference_utf8(bytes);
    return !r.invalid && r.boundary[bytes.size()];
}

bool reference_is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
    return std::all_of(s.begin(), s.end(), [&](char c) {
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        return alpha || digit || kSymbols.find(c) != std::string_view::npos;
    });
}

}  // namespace wsx::fuzz
