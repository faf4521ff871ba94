/* wsx C API: the sans-IO WebSocket engine (proto::Connection) and the server side of the opening
 * handshake, for C and for any language with a C FFI. Plain C99; no exceptions cross it.
 *
 * One wsx_connection is one WebSocket endpoint after the handshake, either role, with no I/O:
 * give it the bytes your transport read (wsx_receive), and it calls your callbacks; your sends
 * queue frames, which you take as bytes (wsx_take_output, or wsx_output_slices +
 * wsx_consume_output for writev) and write to your transport yourself.
 *
 *     wsx_callbacks cb = {0};
 *     cb.on_message = my_on_message;            (void* user_data, opcode, data, size)
 *     wsx_connection* conn;
 *     if (wsx_connection_create(WSX_ROLE_SERVER, NULL, &cb, my_state, &conn) != WSX_OK) ...
 *     wsx_receive(conn, buf, n, &consumed);     buf is unmasked in place
 *     n = wsx_take_output(conn, out, sizeof out);   then write out[0..n) to the socket
 *
 * Threads: a connection (or handshake) may be used from one thread at a time; different ones
 * from different threads. Callbacks run inside wsx_receive / wsx_transport_closed, on the
 * caller's thread, and may call the send and output functions of the same connection (not
 * wsx_receive, not wsx_connection_destroy). A callback must not throw or longjmp out.
 *
 * Errors: every fallible function returns a wsx_error: WSX_OK (0), one of the engine's protocol
 * errors (wsx_error_close_code gives the close code it maps to), or a WSX_ERR_* of the C API
 * itself (200 and up). wsx_error_message gives a short, stable description of any code. */
#ifndef WSX_CAPI_WSX_H
#define WSX_CAPI_WSX_H

#include <stddef.h>
#include <stdint.h>

#include "wsx/version.hpp"

#if defined(__GNUC__)
#define WSX_API __attribute__((visibility("default")))
#else
#define WSX_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Values equal those of wsx::proto::Error (src/proto/error.hpp), which a later version may extend
 * (wsx_error_message describes any code). */
typedef enum wsx_error {
    WSX_OK = 0,

    /* Frame layer (RFC 6455 §5.2). */
    WSX_ERR_RESERVED_OPCODE = 1,          /* opcodes 3-7 and 11-15 */
    WSX_ERR_RESERVED_BITS_SET = 2,        /* RSV1-3 set without an extension that defines them */
    WSX_ERR_CONTROL_FRAME_TOO_LONG = 3,   /* §5.5: control payload > 125 bytes */
    WSX_ERR_CONTROL_FRAME_FRAGMENTED = 4, /* §5.5: control frame without FIN */
    WSX_ERR_LENGTH_MSB_SET = 5, /* §5.2: most significant bit of the 64-bit length must be 0 */
    WSX_ERR_UNMASKED_CLIENT_FRAME = 6, /* §5.1: a server must fail on an unmasked frame */
    WSX_ERR_MASKED_SERVER_FRAME = 7,   /* §5.1: a client must fail on a masked frame */

    /* Message layer (§5.4, §5.6, §8.1). */
    WSX_ERR_UNEXPECTED_CONTINUATION = 8, /* continuation frame with no message started */
    WSX_ERR_EXPECTED_CONTINUATION = 9,   /* new data frame while a fragmented message is open */
    WSX_ERR_INVALID_UTF8 = 10,           /* text payload that is not UTF-8 */
    WSX_ERR_FRAME_TOO_BIG = 11,          /* frame payload over the configured limit */
    WSX_ERR_MESSAGE_TOO_BIG = 12,        /* message over the configured limit */

    /* Close frames (§5.5.1, §7.4). */
    WSX_ERR_CLOSE_PAYLOAD_ONE_BYTE = 13, /* a close payload must be empty or at least two bytes */
    WSX_ERR_INVALID_CLOSE_CODE = 14,     /* code that may not appear on the wire */
    WSX_ERR_CLOSE_REASON_INVALID_UTF8 = 15, /* close reason that is not UTF-8 */

    /* permessage-deflate (RFC 7692). */
    WSX_ERR_INFLATE_FAILED = 16, /* compressed data zlib rejects */
    WSX_ERR_DEFLATE_FAILED = 17, /* zlib could not allocate its state (an internal error, 1011) */

    /* Opening handshake, server side (§4.2.1) — each maps to an HTTP status. */
    WSX_ERR_HTTP_MALFORMED = 18,                  /* request line or header syntax */
    WSX_ERR_HTTP_METHOD_NOT_GET = 19,             /* 405 */
    WSX_ERR_HTTP_VERSION_TOO_OLD = 20,            /* below HTTP/1.1 */
    WSX_ERR_HTTP_MISSING_HOST = 21,               /* 400 */
    WSX_ERR_HTTP_MISSING_UPGRADE = 22,            /* Upgrade: websocket absent */
    WSX_ERR_HTTP_MISSING_CONNECTION_UPGRADE = 23, /* Connection: upgrade absent */
    WSX_ERR_HTTP_BAD_VERSION = 24,       /* Sec-WebSocket-Version missing or not 13 → 426 */
    WSX_ERR_HTTP_BAD_KEY = 25,           /* Sec-WebSocket-Key missing or not 16 bytes of base64 */
    WSX_ERR_HTTP_ORIGIN_FORBIDDEN = 26,  /* 403 */
    WSX_ERR_HTTP_HEADERS_TOO_LARGE = 27, /* 431 */
    WSX_ERR_HTTP_TOO_MANY_CONNECTIONS = 28, /* 503 */

    /* Opening handshake, client side (§4.2.2, validating the server's answer). */
    WSX_ERR_HTTP_BAD_STATUS = 29,            /* not 101 */
    WSX_ERR_HTTP_BAD_ACCEPT = 30,            /* Sec-WebSocket-Accept does not match the key */
    WSX_ERR_HTTP_UNREQUESTED_EXTENSION = 31, /* extension the client did not offer */
    WSX_ERR_HTTP_UNREQUESTED_PROTOCOL = 32,  /* subprotocol the client did not offer */
    WSX_ERR_HTTP_BAD_EXTENSION_RESPONSE =
        33, /* permessage-deflate answer the offer does not allow (RFC 7692) */

    /* The transport ended without a close handshake (reported as 1006, never sent). */
    WSX_ERR_ABNORMAL_CLOSURE = 34,

    /* Local misuse of the send API: the call is refused and nothing is queued. */
    WSX_ERR_NOT_OPEN = 35,                /* send after the close handshake started */
    WSX_ERR_SEND_INVALID_CLOSE_CODE = 36, /* close code an application may not send (§7.4.1) */
    WSX_ERR_SEND_CONTROL_TOO_LONG = 37,   /* ping/pong/close payload over 125 bytes */
    WSX_ERR_SEND_NO_MESSAGE_OPEN = 38,    /* continuation with no fragmented send started */
    WSX_ERR_SEND_MESSAGE_OPEN = 39,       /* new message while a fragmented send is still open */
    WSX_ERR_SEND_INVALID_UTF8 = 40,       /* text message or close reason that is not UTF-8 */
    WSX_ERR_SEND_NOT_A_MESSAGE = 41, /* send() of a control opcode: use ping(), pong() or close() */
    WSX_ERR_SHARED_FRAME_CLIENT =
        42, /* a client must mask each frame, so it cannot send shared frames */
    WSX_ERR_SHARED_FRAME_COMPRESSED =
        43, /* compressed (RSV1) shared frame without permessage-deflate */

    /* The C API's own errors. */
    WSX_ERR_INVALID_ARGUMENT = 200, /* a NULL handle, or NULL data with a non-zero size */
    WSX_ERR_NO_MEMORY = 201,        /* an allocation failed; the connection is now broken */
    WSX_ERR_BROKEN = 202            /* an earlier call failed inside the engine; destroy it */
} wsx_error;

typedef enum wsx_role { WSX_ROLE_SERVER = 0, WSX_ROLE_CLIENT = 1 } wsx_role;

/* RFC 6455 §5.2 data opcodes. CONTINUATION is for wsx_send_frame only. */
typedef enum wsx_opcode {
    WSX_OPCODE_CONTINUATION = 0,
    WSX_OPCODE_TEXT = 1,
    WSX_OPCODE_BINARY = 2
} wsx_opcode;

typedef enum wsx_state {
    WSX_STATE_OPEN = 0,    /* messages flow both ways */
    WSX_STATE_CLOSING = 1, /* we sent a close frame and wait for the peer's */
    WSX_STATE_CLOSED = 2   /* nothing more is read: flush the output, then see
                              wsx_close_transport_now */
} wsx_state;

/* Limits and behaviour; wsx_options_init fills in the safe defaults. */
typedef struct wsx_options {
    /* Largest frame payload / message accepted; over it the connection fails with 1009.
     * Default 16 MiB each. */
    uint64_t max_frame_size;
    uint64_t max_message_size;
    /* Non-zero: answer pings with a pong carrying the same payload (RFC 6455 §5.5.2). Default 1. */
    int auto_pong;
    /* Non-zero: refuse to send text or a close reason that is not UTF-8. Default 1. */
    int validate_outgoing_utf8;
    /* Split outgoing messages into frames of at most this many payload bytes (0: never). */
    size_t auto_fragment_size;
} wsx_options;

/* What on_close reports; `reason` (not NUL-terminated) is valid during the call only. */
typedef struct wsx_close_info {
    uint16_t code;      /* the peer's code (1005: none), the code we failed with, or 1006 */
    const char* reason; /* UTF-8, reason_size bytes */
    size_t reason_size;
    int clean;       /* non-zero when the close handshake completed */
    wsx_error error; /* why the connection failed, WSX_ERR_ABNORMAL_CLOSURE, or WSX_OK */
} wsx_close_info;

/* Every member may be NULL (then the event is dropped). Payload pointers are valid during the
 * call only. on_close is called exactly once per connection, and nothing after it. */
typedef struct wsx_callbacks {
    void (*on_message)(void* user_data, wsx_opcode opcode, const uint8_t* data, size_t size);
    void (*on_ping)(void* user_data, const uint8_t* data, size_t size);
    void (*on_pong)(void* user_data, const uint8_t* data, size_t size);
    void (*on_close)(void* user_data, const wsx_close_info* info);
} wsx_callbacks;

/* Layout-compatible with POSIX struct iovec, so an array of them can be passed to writev. */
typedef struct wsx_slice {
    const void* data;
    size_t size;
} wsx_slice;

typedef struct wsx_connection wsx_connection;

/* The library's version, e.g. "0.1.0" (WSX_VERSION_STRING is the headers'). */
WSX_API const char* wsx_version(void);

/* A short, stable English description of `error` (never NULL). */
WSX_API const char* wsx_error_message(wsx_error error);

/* The close code an endpoint sends when it fails a connection for `error` (1002, 1007, 1009,
 * 1011), or 0 when the error is not a WebSocket-level one. */
WSX_API uint16_t wsx_error_close_code(wsx_error error);

WSX_API void wsx_options_init(wsx_options* options);

/* A new connection in the open state. `options` NULL: the defaults. `callbacks` is copied;
 * `user_data` is passed to every callback. On failure *out is NULL. */
WSX_API wsx_error wsx_connection_create(wsx_role role, const wsx_options* options,
                                        const wsx_callbacks* callbacks, void* user_data,
                                        wsx_connection** out);

/* Frees the connection (NULL is ignored). Pending output is dropped. */
WSX_API void wsx_connection_destroy(wsx_connection* conn);

/* Parses `size` received bytes (frames may be split anywhere across calls) and calls the
 * callbacks. The bytes are modified: payloads are unmasked in place. *consumed (may be NULL) is
 * how many were processed: all of them unless the connection closed. Returns why the connection
 * failed during this call (a close frame with that code is queued), or WSX_OK. */
WSX_API wsx_error wsx_receive(wsx_connection* conn, uint8_t* data, size_t size, size_t* consumed);

/* The transport ended (EOF, reset, timeout): reports 1006 through on_close unless on_close was
 * already called. */
WSX_API void wsx_transport_closed(wsx_connection* conn);

/* Queue a message. Text must be UTF-8 (WSX_ERR_SEND_INVALID_UTF8 otherwise). After the close
 * handshake started: WSX_ERR_NOT_OPEN. Nothing is queued on an error. */
WSX_API wsx_error wsx_send_text(wsx_connection* conn, const char* text, size_t size);
WSX_API wsx_error wsx_send_binary(wsx_connection* conn, const void* data, size_t size);

/* One frame of a fragmented message: TEXT or BINARY starts it, CONTINUATION goes on, fin
 * non-zero ends it. Pings, pongs and close may go between the fragments. */
WSX_API wsx_error wsx_send_frame(wsx_connection* conn, wsx_opcode opcode, const void* data,
                                 size_t size, int fin);

/* Control frames: at most 125 bytes of payload (WSX_ERR_SEND_CONTROL_TOO_LONG). */
WSX_API wsx_error wsx_ping(wsx_connection* conn, const void* data, size_t size);
WSX_API wsx_error wsx_pong(wsx_connection* conn, const void* data, size_t size);

/* Starts the close handshake: a close frame with `code` and a UTF-8 reason of at most 123
 * bytes; code 0 sends a close frame without payload. */
WSX_API wsx_error wsx_close(wsx_connection* conn, uint16_t code, const char* reason,
                            size_t reason_size);

/* Bytes queued for the transport. */
WSX_API size_t wsx_buffered_amount(const wsx_connection* conn);

/* Copies up to `capacity` queued bytes to `buffer` and drops them from the queue; returns how
 * many. */
WSX_API size_t wsx_take_output(wsx_connection* conn, void* buffer, size_t capacity);

/* Zero-copy output: fills up to `max` slices from the front of the queue (valid until the next
 * call on the connection) and returns how many; write them (writev), then drop what was written
 * with wsx_consume_output (n <= wsx_buffered_amount). */
WSX_API size_t wsx_output_slices(const wsx_connection* conn, wsx_slice* out, size_t max);
WSX_API void wsx_consume_output(wsx_connection* conn, size_t n);

WSX_API wsx_state wsx_get_state(const wsx_connection* conn);

/* Non-zero once the state is CLOSED and this side should close the transport when the output is
 * flushed: RFC 6455 §7.1.1, the server closes TCP first; a client waits for the server's FIN
 * after a clean close (with a timeout of its own). A failed connection closes at once. */
WSX_API int wsx_close_transport_now(const wsx_connection* conn);

/* ---- The opening handshake, server side (RFC 6455 §4.2): parse the client's HTTP upgrade
 * request and produce the answer. Default policy: HTTP head of at most 8 KiB and 64 headers; an
 * Origin header must match Host (a request without Origin is allowed); no subprotocol, no
 * extension is accepted. */

typedef struct wsx_server_handshake wsx_server_handshake;

typedef enum wsx_handshake_status {
    WSX_HANDSHAKE_NEED_MORE = 0, /* feed more bytes */
    WSX_HANDSHAKE_ACCEPTED = 1,  /* send the response (101), then create the connection */
    WSX_HANDSHAKE_REJECTED = 2   /* send the response (4xx/5xx), then close the transport */
} wsx_handshake_status;

WSX_API wsx_error wsx_server_handshake_create(wsx_server_handshake** out);
WSX_API void wsx_server_handshake_destroy(wsx_server_handshake* handshake);

/* Appends `size` received bytes (copied) and parses the request so far. On REJECTED, *error
 * (may be NULL) says why (its HTTP status is in the response). Once accepted or rejected, more
 * bytes are not parsed: they stay for wsx_server_handshake_rest. */
WSX_API wsx_handshake_status wsx_server_handshake_feed(wsx_server_handshake* handshake,
                                                       const void* data, size_t size,
                                                       wsx_error* error);

/* The HTTP response to send, once accepted or rejected (NULL before); *size is its length. */
WSX_API const char* wsx_server_handshake_response(const wsx_server_handshake* handshake,
                                                  size_t* size);

/* After ACCEPTED: the request-target ("/chat?room=1") and the bytes received after the request,
 * which are already WebSocket frames for wsx_receive. Valid until the next call on the
 * handshake. */
WSX_API const char* wsx_server_handshake_target(const wsx_server_handshake* handshake,
                                                size_t* size);
WSX_API uint8_t* wsx_server_handshake_rest(wsx_server_handshake* handshake, size_t* size);

#ifdef __cplusplus
}
#endif

#endif /* WSX_CAPI_WSX_H */
