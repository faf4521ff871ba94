// RFC 6455 §5.5.1 and §7.4: close codes and close frame payloads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "proto/error.hpp"
#include "proto/frame.hpp"

namespace wsx::proto {

// Close codes with names (RFC 6455 §7.4.1 and the IANA registry).
namespace close_code {
inline constexpr std::uint16_t kNormal = 1000;
inline constexpr std::uint16_t kGoingAway = 1001;
inline constexpr std::uint16_t kProtocolError = 1002;
inline constexpr std::uint16_t kUnsupportedData = 1003;
inline constexpr std::uint16_t kNoStatus = 1005;  // never on the wire: "no code was received"
inline constexpr std::uint16_t kAbnormal = 1006;  // never on the wire: "closed without a close"
inline constexpr std::uint16_t kInvalidPayload = 1007;
inline constexpr std::uint16_t kPolicyViolation = 1008;
inline constexpr std::uint16_t kMessageTooBig = 1009;
inline constexpr std::uint16_t kMandatoryExtension = 1010;
inline constexpr std::uint16_t kInternalError = 1011;
inline constexpr std::uint16_t kServiceRestart = 1012;
inline constexpr std::uint16_t kTryAgainLater = 1013;
inline constexpr std::uint16_t kBadGateway = 1014;
inline constexpr std::uint16_t kTlsHandshake = 1015;  // never on the wire
}  // namespace close_code

// True when `code` may appear in a received close frame: 1000-1003, 1007-1014 and 3000-4999.
// 1004 (reserved), 1005, 1006 and 1015 (local-only) and everything else are a protocol error.
constexpr bool is_valid_wire_close_code(std::uint16_t code) noexcept {
    if (code >= 3000 && code <= 4999) return true;
    if (code >= 1000 && code <= 1003) return true;
    return code >= 1007 && code <= 1014;
}

// True when an application may send `code`: the wire-valid codes.
constexpr bool is_sendable_close_code(std::uint16_t code) noexcept {
    return is_valid_wire_close_code(code);
}

// Longest close reason that fits a control frame: 125 - 2 bytes of code.
inline constexpr std::size_t kMaxCloseReason = 123;

struct ClosePayload {
    bool has_code = false;  // false for an empty close payload
    std::uint16_t code = close_code::kNoStatus;
    std::string_view reason;  // view into the parsed payload; UTF-8 checked
};

// Parses and validates a received close payload: empty, or a wire-valid code followed by a UTF-8
// reason, at most 125 bytes in all. Errors: close_payload_one_byte, control_frame_too_long,
// invalid_close_code, close_reason_invalid_utf8.
Error parse_close_payload(std::span<const std::uint8_t> payload, ClosePayload& out) noexcept;

// Writes code (big-endian) and as much of `reason` as fits (cut at kMaxCloseReason bytes, on a
// UTF-8 boundary). `out` must hold 125 bytes. Returns the payload size.
std::size_t write_close_payload(std::span<std::uint8_t, 125> out, std::uint16_t code,
                                std::string_view reason) noexcept;

}  // namespace wsx::proto
