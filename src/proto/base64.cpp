#include "proto/base64.hpp"

#include <array>

namespace wsx::proto {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::int8_t kInvalid = -1;

constexpr std::array<std::int8_t, 256> make_decode_table() noexcept {
    std::array<std::int8_t, 256> table{};
    table.fill(kInvalid);
    for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
        table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
    }
    return table;
}

constexpr std::array<std::int8_t, 256> kDecodeTable = make_decode_table();

std::int8_t sextet(char c) noexcept {
    return kDecodeTable[static_cast<unsigned char>(c)];
}

}  // namespace

std::size_t base64_encode(std::span<const std::uint8_t> in, std::span<char> out) noexcept {
    const std::size_t needed = base64_encoded_size(in.size());
    if (out.size() < needed) return 0;
    std::size_t o = 0;
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t group = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) |
                                    std::uint32_t{in[i + 2]};
        out[o++] = kAlphabet[(group >> 18) & 0x3F];
        out[o++] = kAlphabet[(group >> 12) & 0x3F];
        out[o++] = kAlphabet[(group >> 6) & 0x3F];
        out[o++] = kAlphabet[group & 0x3F];
    }
    const std::size_t rest = in.size() - i;
    if (rest > 0) {
        std::uint32_t group = std::uint32_t{in[i]} << 16;
        if (rest == 2) group |= std::uint32_t{in[i + 1]} << 8;
        out[o++] = kAlphabet[(group >> 18) & 0x3F];
        out[o++] = kAlphabet[(group >> 12) & 0x3F];
        out[o++] = rest == 2 ? kAlphabet[(group >> 6) & 0x3F] : '=';
        out[o++] = '=';
    }
    return o;
}

std::string base64_encode(std::span<const std::uint8_t> in) {
    std::string out(base64_encoded_size(in.size()), '\0');
    base64_encode(in, std::span<char>(out));
    return out;
}

std::string base64_encode(std::string_view bytes) {
    // Viewing chars as unsigned chars is always allowed (basic.lval aliasing rules).
    const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
    return base64_encode(std::span<const std::uint8_t>(data, bytes.size()));
}

std::optional<std::size_t> base64_decode(std::string_view in,
                                         std::span<std::uint8_t> out) noexcept {
    if (in.size() % 4 != 0) return std::nullopt;
    std::size_t padding = 0;
    if (!in.empty() && in.back() == '=') padding = in[in.size() - 2] == '=' ? 2 : 1;
    const std::size_t decoded = base64_decoded_max_size(in.size()) - padding;
    if (out.size() < decoded) return std::nullopt;

    std::size_t o = 0;
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        const std::size_t significant = last ? 4 - padding : 4;
        std::uint32_t group = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            if (k < significant) {
                const std::int8_t v = sextet(in[i + k]);
                if (v == kInvalid) return std::nullopt;
                group = (group << 6) | static_cast<std::uint32_t>(v);
            } else {
                group <<= 6;
            }
        }
        out[o++] = static_cast<std::uint8_t>(group >> 16);
        if (significant >= 3) out[o++] = static_cast<std::uint8_t>(group >> 8);
        if (significant == 4) out[o++] = static_cast<std::uint8_t>(group);
        // RFC 4648 §3.5: with padding, the low bits of the last character carry no data and
        // must be zero in the canonical encoding.
        if (significant == 2 && (group & 0xFFFF) != 0) return std::nullopt;
        if (significant == 3 && (group & 0xFF) != 0) return std::nullopt;
    }
    return o;
}

std::optional<std::string> base64_decode(std::string_view in) {
    std::string out(base64_decoded_max_size(in.size()), '\0');
    auto* data = reinterpret_cast<std::uint8_t*>(out.data());
    const auto n = base64_decode(in, std::span<std::uint8_t>(data, out.size()));
    if (!n) return std::nullopt;
    out.resize(*n);
    return out;
}

}  // namespace wsx::proto
