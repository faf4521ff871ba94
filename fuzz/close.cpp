// Close payloads (RFC 6455 §5.5.1, §7.4): the parser agrees with the rules written out here, and
// whatever write_close_payload produces parses back to the code and the (cut) reason.
#include "proto/close.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "harnesses.hpp"
#include "support.hpp"

namespace wsx::fuzz {

namespace {

using proto::ClosePayload;
using proto::Error;

// §7.4.1 and the IANA registry, spelled out code by code.
bool reference_wire_code(std::uint16_t code) noexcept {
    switch (code) {
        case 1000:
        case 1001:
        case 1002:
        case 1003:
        case 1007:
        case 1008:
        case 1009:
        case 1010:
        case 1011:
        case 1012:
        case 1013:
        case 1014:
            return true;
        default:
            return code >= 3000 && code <= 4999;
    }
}

Error reference_parse(std::span<const std::uint8_t> payload) {
    if (payload.empty()) return Error::none;
    if (payload.size() == 1) return Error::close_payload_one_byte;
    if (payload.size() > proto::kMaxControlPayload) return Error::control_frame_too_long;
    const auto code = static_cast<std::uint16_t>(payload[0] << 8 | payload[1]);
    if (!reference_wire_code(code)) return Error::invalid_close_code;
    if (!reference_utf8_valid(payload.subspan(2))) return Error::close_reason_invalid_utf8;
    return Error::none;
}

}  // namespace

int run_close(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);

    // The whole input as a received close payload.
    ClosePayload parsed;
    const Error e = proto::parse_close_payload(in, parsed);
    WSX_FUZZ_CHECK(e == reference_parse(in));
    if (e == Error::none) {
        WSX_FUZZ_CHECK(parsed.has_code == !in.empty());
        if (parsed.has_code) {
            WSX_FUZZ_CHECK(parsed.code == (data[0] << 8 | data[1]));
            WSX_FUZZ_CHECK(parsed.reason.data() == reinterpret_cast<const char*>(data + 2));
            WSX_FUZZ_CHECK(parsed.reason.size() == size - 2);
        } else {
            WSX_FUZZ_CHECK(parsed.code == proto::close_code::kNoStatus);
            WSX_FUZZ_CHECK(parsed.reason.empty());
        }
    } else {
        // A bad close payload fails the connection: 1007 for the reason's UTF-8, else 1002.
        const std::uint16_t expected = e == Error::close_reason_invalid_utf8 ? 1007 : 1002;
        WSX_FUZZ_CHECK(proto::close_code_for(e) == expected);
    }

    // The writer: the first two bytes as the code, the rest (of any length) as the reason.
    InputReader reader(data, size);
    const std::uint16_t code = reader.u16();
    WSX_FUZZ_CHECK(proto::is_valid_wire_close_code(code) == reference_wire_code(code));
    WSX_FUZZ_CHECK(proto::is_sendable_close_code(code) == reference_wire_code(code));
    const std::string_view reason = as_chars(reader.rest());
    std::array<std::uint8_t, 125> out{};
    const std::size_t n = proto::write_close_payload(out, code, reason);
    WSX_FUZZ_CHECK(n >= 2 && n <= 2 + proto::kMaxCloseReason);
    WSX_FUZZ_CHECK((out[0] << 8 | out[1]) == code);
    const std::string_view written = as_chars(std::span(out).subspan(2, n - 2));
    WSX_FUZZ_CHECK(reason.substr(0, written.size()) == written);
    if (reason.size() <= proto::kMaxCloseReason) WSX_FUZZ_CHECK(written.size() == reason.size());
    // The cut backs up to a code point boundary. Only a UTF-8 reason has one within three bytes;
    // callers check the reason first (Connection::close refuses one that is not UTF-8).
    if (reference_utf8_valid(as_bytes(reason))) {
        WSX_FUZZ_CHECK(written.size() + 3 >= std::min(reason.size(), proto::kMaxCloseReason));
        WSX_FUZZ_CHECK(reference_utf8_valid(as_bytes(written)));
        if (reference_wire_code(code)) {
            ClosePayload again;
            WSX_FUZZ_CHECK(proto::parse_close_payload(std::span(out).first(n), again) ==
                           Error::none);
            WSX_FUZZ_CHECK(again.has_code && again.code == code && again.reason == written);
        }
    }
    return 0;
}

}  // namespace wsx::fuzz
