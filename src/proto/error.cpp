#include "proto/error.hpp"

#include <string>

namespace wsx::proto {

std::string_view describe(Error e) noexcept {
    switch (e) {
        case Error::none:
            return "no error";
        case Error::reserved_opcode:
            return "reserved opcode";
        case Error::reserved_bits_set:
            return "reserved bits set without a negotiated extension";
        case Error::control_frame_too_long:
            return "control frame payload longer than 125 bytes";
        case Error::control_frame_fragmented:
            return "fragmented control frame";
        case Error::length_msb_set:
            return "64-bit payload length with the most significant bit set";
        case Error::unmasked_client_frame:
            return "unmasked frame from a client";
        case Error::masked_server_frame:
            return "masked frame from a server";
        case Error::unexpected_continuation:
            return "continuation frame with no message started";
        case Error::expected_continuation:
            return "new data frame inside a fragmented message";
        case Error::invalid_utf8:
            return "text message is not valid UTF-8";
        case Error::frame_too_big:
            return "frame payload exceeds the limit";
        case Error::message_too_big:
            return "message exceeds the limit";
        case Error::close_payload_one_byte:
            return "close payload of one byte";
        case Error::invalid_close_code:
            return "close code not allowed on the wire";
        case Error::close_reason_invalid_utf8:
            return "close reason is not valid UTF-8";
        case Error::inflate_failed:
            return "compressed payload could not be inflated";
        case Error::deflate_failed:
            return "compressor could not allocate its state";
        case Error::http_malformed:
            return "malformed HTTP request";
        case Error::http_method_not_get:
            return "method is not GET";
        case Error::http_version_too_old:
            return "HTTP version below 1.1";
        case Error::http_missing_host:
            return "missing Host header";
        case Error::http_missing_upgrade:
            return "missing 'Upgrade: websocket'";
        case Error::http_missing_connection_upgrade:
            return "missing 'Connection: Upgrade'";
        case Error::http_bad_version:
            return "Sec-WebSocket-Version missing or not 13";
        case Error::http_bad_key:
            return "Sec-WebSocket-Key missing or not 16 bytes of base64";
        case Error::http_origin_forbidden:
            return "Origin not allowed";
        case Error::http_headers_too_large:
            return "request headers too large";
        case Error::http_too_many_connections:
            return "too many connections";
        case Error::http_bad_status:
            return "server did not answer 101 Switching Protocols";
        case Error::http_bad_accept:
            return "Sec-WebSocket-Accept does not match the key";
        case Error::http_unrequested_extension:
            return "server accepted an extension not offered";
        case Error::http_unrequested_protocol:
            return "server chose a subprotocol not offered";
        case Error::http_bad_extension_response:
            return "server's permessage-deflate answer does not match the offer";
        case Error::abnormal_closure:
            return "connection closed without a close handshake";
        case Error::not_open:
            return "connection is closing or closed";
        case Error::send_invalid_close_code:
            return "close code may not be sent";
        case Error::send_control_too_long:
            return "control payload longer than 125 bytes";
        case Error::send_no_message_open:
            return "no fragmented message is open";
        case Error::send_message_open:
            return "a fragmented message is still open";
        case Error::send_invalid_utf8:
            return "text to send is not valid UTF-8";
        case Error::send_not_a_message:
            return "control frames are sent with ping(), pong() and close()";
        case Error::shared_frame_client:
            return "a client cannot send pre-encoded frames";
        case Error::shared_frame_compressed:
            return "compressed frame on a connection without permessage-deflate";
    }
    return "unknown error";
}

namespace {
class Category final : public std::error_category {
  public:
    const char* name() const noexcept override { return "wsx"; }
    std::string message(int code) const override {
        return std::string(describe(static_cast<Error>(code)));
    }
};
}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace wsx::proto
