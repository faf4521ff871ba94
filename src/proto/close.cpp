#include "proto/close.hpp"

#include <cstring>

#include "proto/utf8.hpp"

namespace wsx::proto {

Error parse_close_payload(std::span<const std::uint8_t> payload, ClosePayload& out) noexcept {
    out = ClosePayload{};
    if (payload.empty()) return Error::none;  // §5.5.1: the body is optional
    if (payload.size() == 1) return Error::close_payload_one_byte;
    if (payload.size() > kMaxControlPayload) return Error::control_frame_too_long;

    const auto code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
    if (!is_valid_wire_close_code(code)) return Error::invalid_close_code;

    // §5.5.1: the reason is UTF-8 but "not necessarily human readable".
    const auto reason = payload.subspan(2);
    if (!is_valid_utf8(reason)) return Error::close_reason_invalid_utf8;

    out.has_code = true;
    out.code = code;
    out.reason = {reinterpret_cast<const char*>(reason.data()), reason.size()};
    return Error::none;
}

std::size_t write_close_payload(std::span<std::uint8_t, 125> out, std::uint16_t code,
                                std::string_view reason) noexcept {
    out[0] = static_cast<std::uint8_t>(code >> 8);
    out[1] = static_cast<std::uint8_t>(code & 0xFF);
    std::size_t n = reason.size() < kMaxCloseReason ? reason.size() : kMaxCloseReason;
    // A cut reason must stay valid UTF-8: back up over continuation bytes (10xxxxxx) to the
    // start of the code point that did not fit.
    if (n < reason.size()) {
        while (n > 0 && (static_cast<std::uint8_t>(reason[n]) & 0xC0) == 0x80)
            --n;
    }
    if (n > 0) std::memcpy(out.data() + 2, reason.data(), n);
    return 2 + n;
}

}  // namespace wsx::proto
