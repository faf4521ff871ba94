// RFC 4648 §4 base64 (standard alphabet, '=' padding): what Sec-WebSocket-Key and
// Sec-WebSocket-Accept are written in (RFC 6455 §4.1, §4.2.2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace wsx::proto {

// Characters needed to encode `n` bytes, padding included.
constexpr std::size_t base64_encoded_size(std::size_t n) noexcept {
    return (n + 2) / 3 * 4;
}

// Upper bound of the bytes `n` characters decode to (exact when there is no padding).
constexpr std::size_t base64_decoded_max_size(std::size_t n) noexcept {
    return n / 4 * 3;
}

// Writes base64_encoded_size(in.size()) characters to the start of `out` and returns that count.
// Writes nothing and returns 0 when `out` is too small.
std::size_t base64_encode(std::span<const std::uint8_t> in, std::span<char> out) noexcept;

// The same into a new string.
std::string base64_encode(std::span<const std::uint8_t> in);
std::string base64_encode(std::string_view bytes);

// Strict decoding: the length must be a multiple of 4, only the alphabet is allowed (no
// whitespace, no URL-safe '-' '_'), '=' only as one or two final characters, and the bits the
// padding leaves unused must be zero (RFC 4648 §3.5 lets decoders reject them; we do, so every
// value has exactly one accepted spelling). Writes the bytes to the start of `out` and returns
// their count, or nullopt when the input is invalid or `out` is too small.
std::optional<std::size_t> base64_decode(std::string_view in, std::span<std::uint8_t> out) noexcept;

// The same into a new string; nullopt when the input is invalid.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace wsx::proto
