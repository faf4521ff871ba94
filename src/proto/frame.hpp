// RFC 6455 §5.2 frame headers: parse from a partial buffer, write the smallest encoding.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/error.hpp"

namespace wsx::proto {

enum class Opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

// RFC 6455 §5.5: control frames have the high bit of the opcode set.
constexpr bool is_control(Opcode op) noexcept {
    return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

// The four masking-key bytes in wire order: payload byte i is XORed with key[i % 4].
using MaskKey = std::array<std::uint8_t, 4>;

// 2 bytes base + 8 bytes extended length + 4 bytes mask key.
inline constexpr std::size_t kMaxFrameHeaderSize = 14;
// RFC 6455 §5.5: control frame payloads are at most 125 bytes.
inline constexpr std::size_t kMaxControlPayload = 125;

struct FrameHeader {
    bool fin = true;
    bool rsv1 = false;
    bool rsv2 = false;
    bool rsv3 = false;
    Opcode opcode = Opcode::binary;
    bool masked = false;
    MaskKey mask_key{};
    std::uint64_t payload_length = 0;
    std::uint8_t header_length = 0;  // bytes the header took on the wire (set by the parser)
};

enum class ParseStatus : std::uint8_t {
    ok,         // header parsed; FrameHeader::header_length bytes were used
    need_more,  // the buffer holds only part of a header; call again with more bytes
    error,      // protocol error; see the Error
};

struct HeaderParseResult {
    ParseStatus status;
    Error error = Error::none;  // set when status == error
};

// Parses one frame header from the start of `in`. Checks what the header alone can tell: reserved
// opcodes, control frames that are fragmented or longer than 125 bytes, and a 64-bit length with
// its top bit set. Role rules (masking) and RSV bits belong to the connection, which knows the
// role and the extensions in force. Non-minimal length encodings are accepted (RFC 6455 allows
// receivers to); the 125-byte control limit applies to the decoded length. A reserved opcode or a
// fragmented control frame is reported as soon as the first byte is in, before the length is
// complete. `out` is written only when the status is ok.
HeaderParseResult parse_frame_header(std::span<const std::uint8_t> in, FrameHeader& out) noexcept;

// How many bytes a header with this length and masking takes (2, 4, 10; +4 when masked).
constexpr std::size_t frame_header_size(std::uint64_t payload_length, bool masked) noexcept {
    const std::size_t base = payload_length < 126 ? 2 : payload_length <= 0xFFFF ? 4 : 10;
    return base + (masked ? 4 : 0);
}

// Writes `h` (using h.payload_length, h.masked, h.mask_key; ignoring h.header_length) with the
// smallest length encoding. Returns the number of bytes written, frame_header_size(length, masked).
// The caller keeps payload_length below 2^63 (§5.2); control-frame rules are not checked here.
std::size_t write_frame_header(std::span<std::uint8_t, kMaxFrameHeaderSize> out,
                               const FrameHeader& h) noexcept;

}  // namespace wsx::proto
