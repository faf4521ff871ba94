// Every way a peer can break RFC 6455 / RFC 7692, as one value type.
//
// An Error says which rule broke; close_code_for() and http_status_for() say what to answer.
// The engine never throws on the data path: functions return an Error (Error::none = success).
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>

namespace wsx::proto {

enum class Error : std::uint8_t {
    none = 0,

    // Frame layer (RFC 6455 §5.2).
    reserved_opcode,           // opcodes 3-7 and 11-15
    reserved_bits_set,         // RSV1-3 set without an extension that defines them
    control_frame_too_long,    // §5.5: control payload > 125 bytes
    control_frame_fragmented,  // §5.5: control frame without FIN
    length_msb_set,            // §5.2: most significant bit of the 64-bit length must be 0
    unmasked_client_frame,     // §5.1: a server must fail on an unmasked frame
    masked_server_frame,       // §5.1: a client must fail on a masked frame

    // Message layer (§5.4, §5.6, §8.1).
    unexpected_continuation,  // continuation frame with no message started
    expected_continuation,    // new data frame while a fragmented message is open
    invalid_utf8,             // text payload that is not UTF-8
    frame_too_big,            // frame payload over the configured limit
    message_too_big,          // message over the configured limit

    // Close frames (§5.5.1, §7.4).
    close_payload_one_byte,     // a close payload must be empty or at least two bytes
    invalid_close_code,         // code that may not appear on the wire
    close_reason_invalid_utf8,  // close reason that is not UTF-8

    // permessage-deflate (RFC 7692).
    inflate_failed,  // compressed data zlib rejects
    deflate_failed,  // zlib could not allocate its state (an internal error, 1011)

    // Opening handshake, server side (§4.2.1) — each maps to an HTTP status.
    http_malformed,                   // request line or header syntax
    http_method_not_get,              // 405
    http_version_too_old,             // below HTTP/1.1
    http_missing_host,                // 400
    http_missing_upgrade,             // Upgrade: websocket absent
    http_missing_connection_upgrade,  // Connection: upgrade absent
    http_bad_version,                 // Sec-WebSocket-Version missing or not 13 → 426
    http_bad_key,                     // Sec-WebSocket-Key missing or not 16 bytes of base64
    http_origin_forbidden,            // 403
    http_headers_too_large,           // 431
    http_too_many_connections,        // 503

    // Opening handshake, client side (§4.2.2, validating the server's answer).
    http_bad_status,              // not 101
    http_bad_accept,              // Sec-WebSocket-Accept does not match the key
    http_unrequested_extension,   // extension the client did not offer
    http_unrequested_protocol,    // subprotocol the client did not offer
    http_bad_extension_response,  // permessage-deflate answer the offer does not allow (RFC 7692)

    // The transport ended without a close handshake (reported as 1006, never sent).
    abnormal_closure,

    // Local misuse of the send API: the call is refused and nothing is queued.
    not_open,                 // send after the close handshake started
    send_invalid_close_code,  // close code an application may not send (§7.4.1)
    send_control_too_long,    // ping/pong/close payload over 125 bytes
    send_no_message_open,     // continuation with no fragmented send started
    send_message_open,        // new message while a fragmented send is still open
    send_invalid_utf8,        // text message or close reason that is not UTF-8
    send_not_a_message,       // send() of a control opcode: use ping(), pong() or close()
    shared_frame_client,      // a client must mask each frame, so it cannot send shared frames
    shared_frame_compressed,  // compressed (RSV1) shared frame without permessage-deflate
};

// The close code an endpoint sends when it fails the connection for this error (RFC 6455 §7.4.1),
// or 0 for errors that are not WebSocket-level (handshake errors, none).
constexpr std::uint16_t close_code_for(Error e) noexcept {
    switch (e) {
        case Error::none:
            return 0;
        case Error::invalid_utf8:
        case Error::close_reason_invalid_utf8:
        case Error::inflate_failed:
            return 1007;
        case Error::frame_too_big:
        case Error::message_too_big:
            return 1009;
        case Error::deflate_failed:
            return 1011;
        case Error::reserved_opcode:
        case Error::reserved_bits_set:
        case Error::control_frame_too_long:
        case Error::control_frame_fragmented:
        case Error::length_msb_set:
        case Error::unmasked_client_frame:
        case Error::masked_server_frame:
        case Error::unexpected_continuation:
        case Error::expected_continuation:
        case Error::close_payload_one_byte:
        case Error::invalid_close_code:
            return 1002;
        default:
            return 0;
    }
}

// The HTTP status a server answers a rejected upgrade request with, or 0 for non-HTTP errors.
constexpr int http_status_for(Error e) noexcept {
    switch (e) {
        case Error::http_malformed:
        case Error::http_version_too_old:
        case Error::http_missing_host:
        case Error::http_missing_upgrade:
        case Error::http_missing_connection_upgrade:
        case Error::http_bad_key:
            return 400;
        case Error::http_method_not_get:
            return 405;
        case Error::http_bad_version:
            return 426;
        case Error::http_origin_forbidden:
            return 403;
        case Error::http_headers_too_large:
            return 431;
        case Error::http_too_many_connections:
            return 503;
        default:
            return 0;
    }
}

// A short, stable, human-readable description ("control frame longer than 125 bytes").
std::string_view describe(Error e) noexcept;

// The category of std::error_code values made from Error (name "wsx", message describe()).
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(Error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

}  // namespace wsx::proto

template <>
struct std::is_error_code_enum<wsx::proto::Error> : std::true_type {};
