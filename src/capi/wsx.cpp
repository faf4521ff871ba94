// The C API (wsx.h) over proto::Connection and proto::ServerHandshake. Every entry point catches
// what the engine can throw (std::bad_alloc from a growing buffer): C callers cannot unwind.
#include "capi/wsx.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <new>
#include <span>
#include <string>
#include <string_view>

#include "proto/connection.hpp"
#include "proto/error.hpp"
#include "proto/handshake.hpp"
#include "proto/output_queue.hpp"

using wsx::proto::Error;

// The C enum is the engine's error numbering.
static_assert(WSX_OK == static_cast<int>(Error::none));
static_assert(WSX_ERR_RESERVED_OPCODE == static_cast<int>(Error::reserved_opcode));
static_assert(WSX_ERR_RESERVED_BITS_SET == static_cast<int>(Error::reserved_bits_set));
static_assert(WSX_ERR_CONTROL_FRAME_TOO_LONG == static_cast<int>(Error::control_frame_too_long));
static_assert(WSX_ERR_CONTROL_FRAME_FRAGMENTED ==
              static_cast<int>(Error::control_frame_fragmented));
static_assert(WSX_ERR_LENGTH_MSB_SET == static_cast<int>(Error::length_msb_set));
static_assert(WSX_ERR_UNMASKED_CLIENT_FRAME == static_cast<int>(Error::unmasked_client_frame));
static_assert(WSX_ERR_MASKED_SERVER_FRAME == static_cast<int>(Error::masked_server_frame));
static_assert(WSX_ERR_UNEXPECTED_CONTINUATION == static_cast<int>(Error::unexpected_continuation));
static_assert(WSX_ERR_EXPECTED_CONTINUATION == static_cast<int>(Error::expected_continuation));
static_assert(WSX_ERR_INVALID_UTF8 == static_cast<int>(Error::invalid_utf8));
static_assert(WSX_ERR_FRAME_TOO_BIG == static_cast<int>(Error::frame_too_big));
static_assert(WSX_ERR_MESSAGE_TOO_BIG == static_cast<int>(Error::message_too_big));
static_assert(WSX_ERR_CLOSE_PAYLOAD_ONE_BYTE == static_cast<int>(Error::close_payload_one_byte));
static_assert(WSX_ERR_INVALID_CLOSE_CODE == static_cast<int>(Error::invalid_close_code));
static_assert(WSX_ERR_CLOSE_REASON_INVALID_UTF8 ==
              static_cast<int>(Error::close_reason_invalid_utf8));
static_assert(WSX_ERR_INFLATE_FAILED == static_cast<int>(Error::inflate_failed));
static_assert(WSX_ERR_DEFLATE_FAILED == static_cast<int>(Error::deflate_failed));
static_assert(WSX_ERR_HTTP_MALFORMED == static_cast<int>(Error::http_malformed));
static_assert(WSX_ERR_HTTP_METHOD_NOT_GET == static_cast<int>(Error::http_method_not_get));
static_assert(WSX_ERR_HTTP_VERSION_TOO_OLD == static_cast<int>(Error::http_version_too_old));
static_assert(WSX_ERR_HTTP_MISSING_HOST == static_cast<int>(Error::http_missing_host));
static_assert(WSX_ERR_HTTP_MISSING_UPGRADE == static_cast<int>(Error::http_missing_upgrade));
static_assert(WSX_ERR_HTTP_MISSING_CONNECTION_UPGRADE ==
              static_cast<int>(Error::http_missing_connection_upgrade));
static_assert(WSX_ERR_HTTP_BAD_VERSION == static_cast<int>(Error::http_bad_version));
static_assert(WSX_ERR_HTTP_BAD_KEY == static_cast<int>(Error::http_bad_key));
static_assert(WSX_ERR_HTTP_ORIGIN_FORBIDDEN == static_cast<int>(Error::http_origin_forbidden));
static_assert(WSX_ERR_HTTP_HEADERS_TOO_LARGE == static_cast<int>(Error::http_headers_too_large));
static_assert(WSX_ERR_HTTP_TOO_MANY_CONNECTIONS ==
              static_cast<int>(Error::http_too_many_connections));
static_assert(WSX_ERR_HTTP_BAD_STATUS == static_cast<int>(Error::http_bad_status));
static_assert(WSX_ERR_HTTP_BAD_ACCEPT == static_cast<int>(Error::http_bad_accept));
static_assert(WSX_ERR_HTTP_UNREQUESTED_EXTENSION ==
              static_cast<int>(Error::http_unrequested_extension));
static_assert(WSX_ERR_HTTP_UNREQUESTED_PROTOCOL ==
              static_cast<int>(Error::http_unrequested_protocol));
static_assert(WSX_ERR_HTTP_BAD_EXTENSION_RESPONSE ==
              static_cast<int>(Error::http_bad_extension_response));
static_assert(WSX_ERR_ABNORMAL_CLOSURE == static_cast<int>(Error::abnormal_closure));
static_assert(WSX_ERR_NOT_OPEN == static_cast<int>(Error::not_open));
static_assert(WSX_ERR_SEND_INVALID_CLOSE_CODE == static_cast<int>(Error::send_invalid_close_code));
static_assert(WSX_ERR_SEND_CONTROL_TOO_LONG == static_cast<int>(Error::send_control_too_long));
static_assert(WSX_ERR_SEND_NO_MESSAGE_OPEN == static_cast<int>(Error::send_no_message_open));
static_assert(WSX_ERR_SEND_MESSAGE_OPEN == static_cast<int>(Error::send_message_open));
static_assert(WSX_ERR_SEND_INVALID_UTF8 == static_cast<int>(Error::send_invalid_utf8));
static_assert(WSX_ERR_SEND_NOT_A_MESSAGE == static_cast<int>(Error::send_not_a_message));
static_assert(WSX_ERR_SHARED_FRAME_CLIENT == static_cast<int>(Error::shared_frame_client));
static_assert(WSX_ERR_SHARED_FRAME_COMPRESSED == static_cast<int>(Error::shared_frame_compressed));

static_assert(WSX_STATE_OPEN == static_cast<int>(wsx::proto::State::open) &&
              WSX_STATE_CLOSING == static_cast<int>(wsx::proto::State::closing) &&
              WSX_STATE_CLOSED == static_cast<int>(wsx::proto::State::closed));
static_assert(WSX_OPCODE_CONTINUATION == static_cast<int>(wsx::proto::Opcode::continuation) &&
              WSX_OPCODE_TEXT == static_cast<int>(wsx::proto::Opcode::text) &&
              WSX_OPCODE_BINARY == static_cast<int>(wsx::proto::Opcode::binary));
static_assert(sizeof(wsx_slice) == sizeof(wsx::proto::IoSlice) &&
              alignof(wsx_slice) == alignof(wsx::proto::IoSlice));

namespace {

// Dispatches the engine's events to the C function pointers.
struct CallbackHandler {
    wsx_callbacks callbacks;
    void* user_data;

    void on_message(wsx::proto::Opcode opcode, std::span<const std::uint8_t> payload) {
        if (callbacks.on_message != nullptr)
            callbacks.on_message(user_data, static_cast<wsx_opcode>(opcode), payload.data(),
                                 payload.size());
    }
    void on_ping(std::span<const std::uint8_t> payload) {
        if (callbacks.on_ping != nullptr)
            callbacks.on_ping(user_data, payload.data(), payload.size());
    }
    void on_pong(std::span<const std::uint8_t> payload) {
        if (callbacks.on_pong != nullptr)
            callbacks.on_pong(user_data, payload.data(), payload.size());
    }
    void on_close(const wsx::proto::CloseInfo& info) {
        if (callbacks.on_close == nullptr) return;
        const wsx_close_info c{info.code, info.reason.data(), info.reason.size(),
                               info.clean ? 1 : 0, static_cast<wsx_error>(info.error)};
        callbacks.on_close(user_data, &c);
    }
};

wsx_error to_c(Error e) noexcept {
    return static_cast<wsx_error>(e);
}

std::span<const std::uint8_t> bytes(const void* data, std::size_t size) noexcept {
    return {static_cast<const std::uint8_t*>(data), size};
}

// A C caller may pass any int in an enum parameter. In C++ an enum without a fixed underlying
// type only holds the values of its enumerators' range, so reading another value as the enum is
// undefined: the argument's bytes are read as the int they are instead.
template <typename Enum>
int raw_value(const Enum& value) noexcept {
    static_assert(sizeof(Enum) == sizeof(int));
    int raw;
    std::memcpy(&raw, &value, sizeof raw);
    return raw;
}

// NULL is a valid pointer for zero bytes only.
bool valid_buffer(const void* data, std::size_t size) noexcept {
    return data != nullptr || size == 0;
}

}  // namespace

struct wsx_connection {
    wsx::proto::Connection conn;
    CallbackHandler handler;
    // Set when the engine threw mid-call: its state may be half-updated, so nothing more runs.
    bool broken = false;
};

struct wsx_server_handshake {
    wsx::proto::ServerOptions options;
    wsx::proto::ServerHandshake parser{options};
    std::string received;  // every byte fed so far: the parser's views point into it
    std::string response;
    std::string target;  // copied: a later feed may move `received`
    wsx_handshake_status status = WSX_HANDSHAKE_NEED_MORE;
};

namespace {

// Runs `send` on an open, unbroken connection, mapping exceptions to codes.
template <typename Send>
wsx_error guarded_send(wsx_connection* c, Send&& send) noexcept {
    if (c == nullptr) return WSX_ERR_INVALID_ARGUMENT;
    if (c->broken) return WSX_ERR_BROKEN;
    try {
        return to_c(send(c->conn));
    } catch (const std::bad_alloc&) {
        c->broken = true;
        return WSX_ERR_NO_MEMORY;
    } catch (...) {
        c->broken = true;
        return WSX_ERR_BROKEN;
    }
}

}  // namespace

extern "C" {

const char* wsx_version(void) {
    return WSX_VERSION_STRING;
}

const char* wsx_error_message(wsx_error error_arg) {
    const int error = raw_value(error_arg);
    switch (error) {
        case WSX_ERR_INVALID_ARGUMENT:
            return "invalid argument";
        case WSX_ERR_NO_MEMORY:
            return "out of memory";
        case WSX_ERR_BROKEN:
            return "connection broken by an earlier internal failure";
        default:
            break;
    }
    if (error < 0 || error > 255) return "unknown error";
    // describe() returns views of string literals, so data() is NUL-terminated.
    return wsx::proto::describe(static_cast<Error>(error)).data();
}

uint16_t wsx_error_close_code(wsx_error error_arg) {
    const int error = raw_value(error_arg);
    if (error <= 0 || error > 255) return 0;
    return wsx::proto::close_code_for(static_cast<Error>(error));
}

void wsx_options_init(wsx_options* options) {
    if (options == nullptr) return;
    const wsx::proto::ConnectionOptions defaults;
    options->max_frame_size = defaults.max_frame_size;
    options->max_message_size = defaults.max_message_size;
    options->auto_pong = defaults.auto_pong ? 1 : 0;
    options->validate_outgoing_utf8 = defaults.validate_outgoing_utf8 ? 1 : 0;
    options->auto_fragment_size = defaults.auto_fragment_size;
}

wsx_error wsx_connection_create(wsx_role role_arg, const wsx_options* options,
                                const wsx_callbacks* callbacks, void* user_data,
                                wsx_connection** out) {
    if (out == nullptr) return WSX_ERR_INVALID_ARGUMENT;
    *out = nullptr;
    const int role = raw_value(role_arg);
    if (role != WSX_ROLE_SERVER && role != WSX_ROLE_CLIENT) return WSX_ERR_INVALID_ARGUMENT;
    wsx::proto::ConnectionOptions o;
    if (options != nullptr) {
        o.max_frame_size = options->max_frame_size;
        o.max_message_size = options->max_message_size;
        o.auto_pong = options->auto_pong != 0;
        o.validate_outgoing_utf8 = options->validate_outgoing_utf8 != 0;
        o.auto_fragment_size = options->auto_fragment_size;
    }
    const wsx_callbacks no_callbacks{};
    try {
        *out = new wsx_connection{
            wsx::proto::Connection(
                role == WSX_ROLE_SERVER ? wsx::proto::Role::server : wsx::proto::Role::client, o),
            CallbackHandler{callbacks != nullptr ? *callbacks : no_callbacks, user_data}};
    } catch (...) {
        return WSX_ERR_NO_MEMORY;
    }
    return WSX_OK;
}

void wsx_connection_destroy(wsx_connection* conn) {
    delete conn;
}

wsx_error wsx_receive(wsx_connection* conn, uint8_t* data, size_t size, size_t* consumed) {
    if (consumed != nullptr) *consumed = 0;
    if (conn == nullptr || !valid_buffer(data, size)) return WSX_ERR_INVALID_ARGUMENT;
    if (conn->broken) return WSX_ERR_BROKEN;
    try {
        const auto result = conn->conn.receive({data, size}, conn->handler);
        if (consumed != nullptr) *consumed = result.consumed;
        return to_c(result.error);
    } catch (const std::bad_alloc&) {
        conn->broken = true;
        return WSX_ERR_NO_MEMORY;
    } catch (...) {
        conn->broken = true;
        return WSX_ERR_BROKEN;
    }
}

void wsx_transport_closed(wsx_connection* conn) {
    if (conn == nullptr || conn->broken) return;
    try {
        conn->conn.transport_closed(conn->handler);
    } catch (...) {
        conn->broken = true;
    }
}

wsx_error wsx_send_text(wsx_connection* conn, const char* text, size_t size) {
    if (!valid_buffer(text, size)) return WSX_ERR_INVALID_ARGUMENT;
    return guarded_send(
        conn, [&](wsx::proto::Connection& c) { return c.send_text(std::string_view(text, size)); });
}

wsx_error wsx_send_binary(wsx_connection* conn, const void* data, size_t size) {
    if (!valid_buffer(data, size)) return WSX_ERR_INVALID_ARGUMENT;
    return guarded_send(
        conn, [&](wsx::proto::Connection& c) { return c.send_binary(bytes(data, size)); });
}

wsx_error wsx_send_frame(wsx_connection* conn, wsx_opcode opcode_arg, const void* data, size_t size,
                         int fin) {
    const int opcode = raw_value(opcode_arg);
    if (!valid_buffer(data, size)) return WSX_ERR_INVALID_ARGUMENT;
    if (opcode != WSX_OPCODE_CONTINUATION && opcode != WSX_OPCODE_TEXT &&
        opcode != WSX_OPCODE_BINARY)
        return WSX_ERR_INVALID_ARGUMENT;
    return guarded_send(conn, [&](wsx::proto::Connection& c) {
        return c.send_frame(static_cast<wsx::proto::Opcode>(opcode), bytes(data, size), fin != 0);
    });
}

wsx_error wsx_ping(wsx_connection* conn, const void* data, size_t size) {
    if (!valid_buffer(data, size)) return WSX_ERR_INVALID_ARGUMENT;
    return guarded_send(conn, [&](wsx::proto::Connection& c) { return c.ping(bytes(data, size)); });
}

wsx_error wsx_pong(wsx_connection* conn, const void* data, size_t size) {
    if (!valid_buffer(data, size)) return WSX_ERR_INVALID_ARGUMENT;
    return guarded_send(conn, [&](wsx::proto::Connection& c) { return c.pong(bytes(data, size)); });
}

wsx_error wsx_close(wsx_connection* conn, uint16_t code, const char* reason, size_t reason_size) {
    if (!valid_buffer(reason, reason_size)) return WSX_ERR_INVALID_ARGUMENT;
    return guarded_send(conn, [&](wsx::proto::Connection& c) {
        return c.close(code, std::string_view(reason, reason_size));
    });
}

size_t wsx_buffered_amount(const wsx_connection* conn) {
    return conn != nullptr ? conn->conn.buffered_amount() : 0;
}

size_t wsx_take_output(wsx_connection* conn, void* buffer, size_t capacity) {
    if (conn == nullptr || buffer == nullptr) return 0;
    wsx::proto::IoSlice slices[16];
    std::size_t copied = 0;
    // Slices cover the queue front to back; refill until the buffer or the queue runs out.
    while (copied < capacity && conn->conn.wants_write()) {
        const std::size_t n = conn->conn.pending_output(slices);
        std::size_t taken = 0;
        for (std::size_t i = 0; i < n && copied + taken < capacity; ++i) {
            const std::size_t chunk = std::min(slices[i].size, capacity - copied - taken);
            std::memcpy(static_cast<char*>(buffer) + copied + taken, slices[i].data, chunk);
            taken += chunk;
        }
        conn->conn.consume_output(taken);
        copied += taken;
    }
    return copied;
}

size_t wsx_output_slices(const wsx_connection* conn, wsx_slice* out, size_t max) {
    if (conn == nullptr || out == nullptr) return 0;
    // Layout-compatible (static_assert above): the engine fills the caller's array directly.
    return conn->conn.pending_output({reinterpret_cast<wsx::proto::IoSlice*>(out), max});
}

void wsx_consume_output(wsx_connection* conn, size_t n) {
    if (conn == nullptr) return;
    conn->conn.consume_output(std::min(n, conn->conn.buffered_amount()));
}

wsx_state wsx_get_state(const wsx_connection* conn) {
    if (conn == nullptr) return WSX_STATE_CLOSED;
    return static_cast<wsx_state>(conn->conn.state());
}

int wsx_close_transport_now(const wsx_connection* conn) {
    return conn != nullptr && (conn->broken || conn->conn.close_transport_now()) ? 1 : 0;
}

wsx_error wsx_server_handshake_create(wsx_server_handshake** out) {
    if (out == nullptr) return WSX_ERR_INVALID_ARGUMENT;
    try {
        *out = new wsx_server_handshake;
    } catch (...) {
        *out = nullptr;
        return WSX_ERR_NO_MEMORY;
    }
    return WSX_OK;
}

void wsx_server_handshake_destroy(wsx_server_handshake* handshake) {
    delete handshake;
}

wsx_handshake_status wsx_server_handshake_feed(wsx_server_handshake* handshake, const void* data,
                                               size_t size, wsx_error* error) {
    if (error != nullptr) *error = WSX_OK;
    if (handshake == nullptr || !valid_buffer(data, size)) {
        if (error != nullptr) *error = WSX_ERR_INVALID_ARGUMENT;
        return WSX_HANDSHAKE_REJECTED;
    }
    try {
        handshake->received.append(static_cast<const char*>(data), size);
        if (handshake->status != WSX_HANDSHAKE_NEED_MORE) return handshake->status;
        const auto result = handshake->parser.parse(handshake->received);
        if (result.status == wsx::proto::ParseStatus::ok) {
            handshake->response = handshake->parser.accept_response();
            handshake->target = handshake->parser.request().target;
            handshake->status = WSX_HANDSHAKE_ACCEPTED;
        } else if (result.status == wsx::proto::ParseStatus::error) {
            handshake->response = wsx::proto::write_error_response(result.error);
            handshake->status = WSX_HANDSHAKE_REJECTED;
            if (error != nullptr) *error = to_c(result.error);
        }
        return handshake->status;
    } catch (...) {
        if (error != nullptr) *error = WSX_ERR_NO_MEMORY;
        return WSX_HANDSHAKE_REJECTED;
    }
}

const char* wsx_server_handshake_response(const wsx_server_handshake* handshake, size_t* size) {
    if (size != nullptr) *size = 0;
    if (handshake == nullptr || handshake->status == WSX_HANDSHAKE_NEED_MORE) return nullptr;
    if (size != nullptr) *size = handshake->response.size();
    return handshake->response.c_str();
}

const char* wsx_server_handshake_target(const wsx_server_handshake* handshake, size_t* size) {
    if (size != nullptr) *size = 0;
    if (handshake == nullptr || handshake->status != WSX_HANDSHAKE_ACCEPTED) return nullptr;
    if (size != nullptr) *size = handshake->target.size();
    return handshake->target.c_str();
}

uint8_t* wsx_server_handshake_rest(wsx_server_handshake* handshake, size_t* size) {
    if (size != nullptr) *size = 0;
    if (handshake == nullptr || handshake->status != WSX_HANDSHAKE_ACCEPTED) return nullptr;
    const std::size_t head = handshake->parser.consumed();
    if (size != nullptr) *size = handshake->received.size() - head;
    return reinterpret_cast<uint8_t*>(handshake->received.data() + head);
}

}  // extern "C"
