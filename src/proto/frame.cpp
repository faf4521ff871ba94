#include "proto/frame.hpp"

#include <bit>
#include <cassert>
#include <cstring>

namespace wsx::proto {

namespace {

// RFC 6455 §5.2: multibyte lengths are in network byte order. memcpy keeps the loads legal at any
// alignment and compiles to a single load (plus a bswap on little-endian hosts).
std::uint16_t load_be16(const std::uint8_t* p) noexcept {
    std::uint16_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
    return v;
}

std::uint64_t load_be64(const std::uint8_t* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    return v;
}

void store_be16(std::uint8_t* p, std::uint16_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
    std::memcpy(p, &v, sizeof v);
}

void store_be64(std::uint8_t* p, std::uint64_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    std::memcpy(p, &v, sizeof v);
}

constexpr std::uint8_t kFinBit = 0x80;
constexpr std::uint8_t kRsv1Bit = 0x40;
constexpr std::uint8_t kRsv2Bit = 0x20;
constexpr std::uint8_t kRsv3Bit = 0x10;
constexpr std::uint8_t kOpcodeBits = 0x0F;
constexpr std::uint8_t kMaskBit = 0x80;
constexpr std::uint8_t kLengthBits = 0x7F;
constexpr std::uint8_t kLength16 = 126;
constexpr std::uint8_t kLength64 = 127;

// One bit per opcode RFC 6455 §5.2 defines: 0x0-0x2 (data) and 0x8-0xA (control).
constexpr std::uint16_t kDefinedOpcodes = 0x0707;

// The rules the first byte decides alone, so a bad frame fails before its length arrives.
Error check_first_byte(std::uint8_t b0) noexcept {
    const unsigned opcode = b0 & kOpcodeBits;
    if (((kDefinedOpcodes >> opcode) & 1U) == 0) return Error::reserved_opcode;
    // RFC 6455 §5.5: control frames must not be fragmented.
    if ((opcode & 0x8U) != 0 && (b0 & kFinBit) == 0) return Error::control_frame_fragmented;
    return Error::none;
}

}  // namespace

HeaderParseResult parse_frame_header(std::span<const std::uint8_t> in, FrameHeader& out) noexcept {
    if (in.size() < 2) [[unlikely]] {
        if (!in.empty()) {
            if (const Error e = check_first_byte(in[0]); e != Error::none) {
                return {ParseStatus::error, e};
            }
        }
        return {ParseStatus::need_more};
    }

    const std::uint8_t b0 = in[0];
    const std::uint8_t b1 = in[1];
    if (const Error e = check_first_byte(b0); e != Error::none) [[unlikely]] {
        return {ParseStatus::error, e};
    }

    const std::uint8_t length7 = b1 & kLengthBits;
    const bool masked = (b1 & kMaskBit) != 0;
    const std::size_t extended = length7 < kLength16 ? 0 : length7 == kLength16 ? 2 : 8;
    const std::size_t header_length = 2 + extended + (masked ? 4 : 0);
    if (in.size() < header_length) return {ParseStatus::need_more};

    const std::uint8_t* p = in.data() + 2;
    std::uint64_t payload_length = length7;
    if (length7 == kLength16) {
        payload_length = load_be16(p);
    } else if (length7 == kLength64) {
        payload_length = load_be64(p);
        // RFC 6455 §5.2: the most significant bit of the 64-bit length must be 0.
        if ((payload_length >> 63) != 0) [[unlikely]] {
            return {ParseStatus::error, Error::length_msb_set};
        }
    }

    const auto opcode = static_cast<Opcode>(b0 & kOpcodeBits);
    // RFC 6455 §5.5: control payloads are at most 125 bytes. The decoded length decides, so a
    // non-minimal encoding of a short control payload is accepted like any other.
    if (is_control(opcode) && payload_length > kMaxControlPayload) [[unlikely]] {
        return {ParseStatus::error, Error::control_frame_too_long};
    }

    out.fin = (b0 & kFinBit) != 0;
    out.rsv1 = (b0 & kRsv1Bit) != 0;
    out.rsv2 = (b0 & kRsv2Bit) != 0;
    out.rsv3 = (b0 & kRsv3Bit) != 0;
    out.opcode = opcode;
    out.masked = masked;
    if (masked) {
        std::memcpy(out.mask_key.data(), p + extended, out.mask_key.size());
    } else {
        out.mask_key = {};
    }
    out.payload_length = payload_length;
    out.header_length = static_cast<std::uint8_t>(header_length);
    return {ParseStatus::ok};
}

std::size_t write_frame_header(std::span<std::uint8_t, kMaxFrameHeaderSize> out,
                               const FrameHeader& h) noexcept {
    // RFC 6455 §5.2: a length with the top bit set cannot be sent; every receiver rejects it.
    assert((h.payload_length >> 63) == 0);

    std::uint8_t* p = out.data();
    p[0] = static_cast<std::uint8_t>((h.fin ? kFinBit : 0) | (h.rsv1 ? kRsv1Bit : 0) |
                                     (h.rsv2 ? kRsv2Bit : 0) | (h.rsv3 ? kRsv3Bit : 0) |
                                     (static_cast<std::uint8_t>(h.opcode) & kOpcodeBits));
    const std::uint8_t mask_bit = h.masked ? kMaskBit : 0;

    // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
    std::size_t n;
    if (h.payload_length < kLength16) {
        p[1] = static_cast<std::uint8_t>(mask_bit | h.payload_length);
        n = 2;
    } else if (h.payload_length <= 0xFFFF) {
        p[1] = mask_bit | kLength16;
        store_be16(p + 2, static_cast<std::uint16_t>(h.payload_length));
        n = 4;
    } else {
        p[1] = mask_bit | kLength64;
        store_be64(p + 2, h.payload_length);
        n = 10;
    }
    if (h.masked) {
        std::memcpy(p + n, h.mask_key.data(), h.mask_key.size());
        n += h.mask_key.size();
    }
    return n;
}

}  // namespace wsx::proto
