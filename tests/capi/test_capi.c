/* The C API (src/capi/wsx.h) driven from C99: a client and a server connection talk through
 * memory, and the server side of the opening handshake runs on a sample request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi/wsx.h"

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            ++checks_passed;                                                         \
        } else {                                                                     \
            ++checks_failed;                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* One endpoint and what its callbacks saw. */
typedef struct peer {
    wsx_connection* conn;
    int echo; /* send every message back */
    int messages;
    wsx_opcode last_opcode;
    uint8_t* last;
    size_t last_size;
    int pongs;
    uint8_t last_pong[125];
    size_t last_pong_size;
    int closes;
    wsx_close_info close; /* reason pointer not kept: valid during the callback only */
    char close_reason[124];
} peer;

static void on_message(void* user_data, wsx_opcode opcode, const uint8_t* data, size_t size) {
    peer* p = (peer*)user_data;
    ++p->messages;
    p->last_opcode = opcode;
    free(p->last);
    p->last = (uint8_t*)malloc(size + 1);
    if (size > 0) memcpy(p->last, data, size);
    p->last_size = size;
    if (p->echo) {
        /* Sending from inside a callback is allowed. */
        wsx_error e = opcode == WSX_OPCODE_TEXT ? wsx_send_text(p->conn, (const char*)data, size)
                                                : wsx_send_binary(p->conn, data, size);
        CHECK(e == WSX_OK);
    }
}

static void on_pong(void* user_data, const uint8_t* data, size_t size) {
    peer* p = (peer*)user_data;
    ++p->pongs;
    memcpy(p->last_pong, data, size);
    p->last_pong_size = size;
}

static void on_close(void* user_data, const wsx_close_info* info) {
    peer* p = (peer*)user_data;
    ++p->closes;
    p->close = *info;
    memcpy(p->close_reason, info->reason, info->reason_size);
    p->close_reason[info->reason_size] = '\0';
    p->close.reason = NULL;
}

static void peer_init(peer* p, wsx_role role, const wsx_options* options, int echo) {
    wsx_callbacks callbacks = {0};
    memset(p, 0, sizeof *p);
    p->echo = echo;
    callbacks.on_message = on_message;
    callbacks.on_pong = on_pong;
    callbacks.on_close = on_close;
    CHECK(wsx_connection_create(role, options, &callbacks, p, &p->conn) == WSX_OK);
    CHECK(p->conn != NULL);
}

static void peer_free(peer* p) {
    wsx_connection_destroy(p->conn);
    free(p->last);
}

/* Moves everything `from` queued into `to`, 1000 bytes per read so frames arrive split. Uses
 * wsx_take_output; returns the last receive error. */
static wsx_error pump_take(peer* from, peer* to) {
    uint8_t chunk[1000];
    wsx_error last = WSX_OK;
    size_t n;
    while ((n = wsx_take_output(from->conn, chunk, sizeof chunk)) > 0) {
        size_t consumed = 0;
        wsx_error e = wsx_receive(to->conn, chunk, n, &consumed);
        if (e != WSX_OK) last = e;
    }
    return last;
}

/* The same through the zero-copy slices, as a writev caller would: copy a gather into one read. */
static wsx_error pump_slices(peer* from, peer* to) {
    wsx_error last = WSX_OK;
    while (wsx_buffered_amount(from->conn) > 0) {
        wsx_slice slices[8];
        size_t count = wsx_output_slices(from->conn, slices, 8);
        size_t total = 0;
        size_t i;
        uint8_t* buffer;
        for (i = 0; i < count; ++i)
            total += slices[i].size;
        buffer = (uint8_t*)malloc(total);
        total = 0;
        for (i = 0; i < count; ++i) {
            memcpy(buffer + total, slices[i].data, slices[i].size);
            total += slices[i].size;
        }
        wsx_consume_output(from->conn, total);
        {
            wsx_error e = wsx_receive(to->conn, buffer, total, NULL);
            if (e != WSX_OK) last = e;
        }
        free(buffer);
    }
    return last;
}

static void test_version_and_errors(void) {
    CHECK(strcmp(wsx_version(), WSX_VERSION_STRING) == 0);
    CHECK(WSX_VERSION_NUMBER ==
          WSX_VERSION_MAJOR * 10000 + WSX_VERSION_MINOR * 100 + WSX_VERSION_PATCH);
    CHECK(strcmp(wsx_error_message(WSX_OK), "no error") == 0);
    CHECK(strlen(wsx_error_message(WSX_ERR_INVALID_UTF8)) > 0);
    CHECK(strcmp(wsx_error_message(WSX_ERR_INVALID_ARGUMENT), "invalid argument") == 0);
    CHECK(strcmp(wsx_error_message((wsx_error)-1), "unknown error") == 0);
    CHECK(wsx_error_close_code(WSX_ERR_UNMASKED_CLIENT_FRAME) == 1002);
    CHECK(wsx_error_close_code(WSX_ERR_INVALID_UTF8) == 1007);
    CHECK(wsx_error_close_code(WSX_ERR_MESSAGE_TOO_BIG) == 1009);
    CHECK(wsx_error_close_code(WSX_ERR_HTTP_BAD_KEY) == 0);
    CHECK(wsx_error_close_code(WSX_OK) == 0);
}

static void test_echo_round_trips(void) {
    peer client;
    peer server;
    uint8_t* big;
    size_t i;
    const size_t big_size = (size_t)1 << 20;
    static const uint8_t ping_payload[] = {'p', 'i', 'n', 'g'};

    peer_init(&client, WSX_ROLE_CLIENT, NULL, 0);
    peer_init(&server, WSX_ROLE_SERVER, NULL, 1);

    CHECK(wsx_send_text(client.conn, "hello", 5) == WSX_OK);
    CHECK(pump_take(&client, &server) == WSX_OK);
    CHECK(server.messages == 1 && server.last_opcode == WSX_OPCODE_TEXT);
    CHECK(server.last_size == 5 && memcmp(server.last, "hello", 5) == 0);
    CHECK(pump_slices(&server, &client) == WSX_OK);
    CHECK(client.messages == 1 && client.last_size == 5 && memcmp(client.last, "hello", 5) == 0);

    /* 1 MiB of binary: split into 1000-byte reads on the way in, gathered on the way back. */
    big = (uint8_t*)malloc(big_size);
    for (i = 0; i < big_size; ++i)
        big[i] = (uint8_t)(i * 7 + 3);
    CHECK(wsx_send_binary(client.conn, big, big_size) == WSX_OK);
    CHECK(pump_take(&client, &server) == WSX_OK);
    CHECK(pump_slices(&server, &client) == WSX_OK);
    CHECK(client.messages == 2 && client.last_opcode == WSX_OPCODE_BINARY);
    CHECK(client.last_size == big_size && memcmp(client.last, big, big_size) == 0);
    free(big);

    /* A fragmented message with a ping between its fragments (RFC 6455 §5.4, §5.5.2). */
    CHECK(wsx_send_frame(client.conn, WSX_OPCODE_TEXT, "frag", 4, 0) == WSX_OK);
    CHECK(wsx_ping(client.conn, ping_payload, sizeof ping_payload) == WSX_OK);
    CHECK(wsx_send_frame(client.conn, WSX_OPCODE_CONTINUATION, "mented", 6, 1) == WSX_OK);
    CHECK(pump_take(&client, &server) == WSX_OK);
    CHECK(server.messages == 3 && server.last_size == 10 &&
          memcmp(server.last, "fragmented", 10) == 0);
    CHECK(pump_take(&server, &client) == WSX_OK);
    CHECK(client.pongs == 1 && client.last_pong_size == 4 &&
          memcmp(client.last_pong, "ping", 4) == 0);
    CHECK(client.messages == 3 && client.last_size == 10);

    /* Close handshake: the server echoes the code, both see a clean close exactly once. */
    CHECK(wsx_close(client.conn, 4001, "bye", 3) == WSX_OK);
    CHECK(wsx_get_state(client.conn) == WSX_STATE_CLOSING);
    CHECK(wsx_send_text(client.conn, "late", 4) == WSX_ERR_NOT_OPEN);
    CHECK(pump_take(&client, &server) == WSX_OK);
    CHECK(server.closes == 1 && server.close.code == 4001 && server.close.clean);
    CHECK(strcmp(server.close_reason, "bye") == 0);
    CHECK(wsx_get_state(server.conn) == WSX_STATE_CLOSED);
    CHECK(pump_take(&server, &client) == WSX_OK);
    CHECK(client.closes == 1 && client.close.code == 4001 && client.close.clean);
    CHECK(client.close.error == WSX_OK);
    CHECK(wsx_close_transport_now(server.conn));
    /* §7.1.1: after a clean close the client waits for the server to close TCP. */
    CHECK(!wsx_close_transport_now(client.conn));
    wsx_transport_closed(client.conn);
    CHECK(client.closes == 1);

    peer_free(&client);
    peer_free(&server);
}

static void test_protocol_errors_close_with_their_code(void) {
    peer server;
    wsx_options options;
    uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
    uint8_t out[16];
    size_t consumed = 0;
    size_t n;

    peer_init(&server, WSX_ROLE_SERVER, NULL, 0);
    CHECK(wsx_receive(server.conn, unmasked, sizeof unmasked, &consumed) ==
          WSX_ERR_UNMASKED_CLIENT_FRAME);
    CHECK(consumed == sizeof unmasked);
    CHECK(server.closes == 1 && server.close.code == 1002 && !server.close.clean);
    CHECK(server.close.error == WSX_ERR_UNMASKED_CLIENT_FRAME);
    n = wsx_take_output(server.conn, out, sizeof out);
    /* A close frame (0x88) whose payload starts with 1002 (0x03EA). */
    CHECK(n >= 4 && out[0] == 0x88 && out[2] == 0x03 && out[3] == 0xEA);
    CHECK(wsx_close_transport_now(server.conn));
    peer_free(&server);

    /* A message over max_message_size fails with 1009 (RFC 6455 §7.4.1). */
    {
        peer client;
        wsx_options_init(&options);
        CHECK(options.max_message_size == 16u * 1024 * 1024 && options.auto_pong == 1);
        options.max_message_size = 10;
        peer_init(&server, WSX_ROLE_SERVER, &options, 0);
        peer_init(&client, WSX_ROLE_CLIENT, NULL, 0);
        CHECK(wsx_send_text(client.conn, "eleven byte", 11) == WSX_OK);
        CHECK(pump_take(&client, &server) == WSX_ERR_MESSAGE_TOO_BIG);
        CHECK(server.messages == 0 && server.closes == 1 && server.close.code == 1009);
        peer_free(&client);
        peer_free(&server);
    }
}

static void test_misuse_is_refused_with_a_code(void) {
    peer p;
    wsx_connection* conn = (wsx_connection*)&p;
    static const uint8_t long_payload[126] = {0};

    CHECK(wsx_connection_create(WSX_ROLE_SERVER, NULL, NULL, NULL, NULL) ==
          WSX_ERR_INVALID_ARGUMENT);
    CHECK(wsx_connection_create((wsx_role)7, NULL, NULL, NULL, &conn) == WSX_ERR_INVALID_ARGUMENT);
    CHECK(conn == NULL);
    CHECK(wsx_send_text(NULL, "x", 1) == WSX_ERR_INVALID_ARGUMENT);
    CHECK(wsx_receive(NULL, NULL, 0, NULL) == WSX_ERR_INVALID_ARGUMENT);

    peer_init(&p, WSX_ROLE_CLIENT, NULL, 0);
    CHECK(wsx_send_binary(p.conn, NULL, 5) == WSX_ERR_INVALID_ARGUMENT);
    CHECK(wsx_send_binary(p.conn, NULL, 0) == WSX_OK);
    CHECK(wsx_send_text(p.conn, "\xff", 1) == WSX_ERR_SEND_INVALID_UTF8);
    CHECK(wsx_ping(p.conn, long_payload, sizeof long_payload) == WSX_ERR_SEND_CONTROL_TOO_LONG);
    CHECK(wsx_send_frame(p.conn, WSX_OPCODE_CONTINUATION, "x", 1, 1) ==
          WSX_ERR_SEND_NO_MESSAGE_OPEN);
    CHECK(wsx_close(p.conn, 1005, NULL, 0) == WSX_ERR_SEND_INVALID_CLOSE_CODE);
    /* The transport ending without a close handshake reports 1006 once. */
    wsx_transport_closed(p.conn);
    wsx_transport_closed(p.conn);
    CHECK(p.closes == 1 && p.close.code == 1006 && !p.close.clean);
    CHECK(p.close.error == WSX_ERR_ABNORMAL_CLOSURE);
    peer_free(&p);
    wsx_connection_destroy(NULL);
}

static void test_server_handshake(void) {
    /* The sample request of RFC 6455 §1.3 (key and accept value from there), fed in two parts,
     * with the client's first frame right behind it. */
    static const char request[] =
        "GET /chat?room=1 HTTP/1.1\r\n"
        "Host: server.example.com\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n";
    static const uint8_t frame[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    wsx_server_handshake* hs = NULL;
    wsx_error error = WSX_ERR_BROKEN;
    size_t size = 0;
    const char* response;
    const char* target;
    uint8_t* rest;
    const size_t half = 40;

    CHECK(wsx_server_handshake_create(&hs) == WSX_OK);
    CHECK(wsx_server_handshake_feed(hs, request, half, &error) == WSX_HANDSHAKE_NEED_MORE);
    CHECK(error == WSX_OK);
    CHECK(wsx_server_handshake_response(hs, &size) == NULL && size == 0);
    {
        size_t tail = sizeof request - 1 - half;
        uint8_t* buffer = (uint8_t*)malloc(tail + sizeof frame);
        memcpy(buffer, request + half, tail);
        memcpy(buffer + tail, frame, sizeof frame);
        CHECK(wsx_server_handshake_feed(hs, buffer, tail + sizeof frame, &error) ==
              WSX_HANDSHAKE_ACCEPTED);
        free(buffer);
    }
    response = wsx_server_handshake_response(hs, &size);
    CHECK(response != NULL && size == strlen(response));
    CHECK(strncmp(response, "HTTP/1.1 101", 12) == 0);
    CHECK(strstr(response, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    target = wsx_server_handshake_target(hs, &size);
    CHECK(size == 12 && memcmp(target, "/chat?room=1", 12) == 0);
    rest = wsx_server_handshake_rest(hs, &size);
    CHECK(size == sizeof frame && memcmp(rest, frame, sizeof frame) == 0);
    {
        /* The rest is the WebSocket stream: a server connection takes it from there. */
        peer server;
        peer_init(&server, WSX_ROLE_SERVER, NULL, 0);
        CHECK(wsx_receive(server.conn, rest, size, NULL) == WSX_OK);
        CHECK(server.messages == 1 && server.last_size == 2 && memcmp(server.last, "hi", 2) == 0);
        peer_free(&server);
    }
    wsx_server_handshake_destroy(hs);

    /* A refused request gets its precise HTTP answer: 405 for POST (RFC 6455 §4.2.1 item 1). */
    CHECK(wsx_server_handshake_create(&hs) == WSX_OK);
    CHECK(wsx_server_handshake_feed(hs, "POST / HTTP/1.1\r\nHost: a\r\n\r\n", 28, &error) ==
          WSX_HANDSHAKE_REJECTED);
    CHECK(error == WSX_ERR_HTTP_METHOD_NOT_GET);
    response = wsx_server_handshake_response(hs, &size);
    CHECK(response != NULL && strncmp(response, "HTTP/1.1 405", 12) == 0);
    CHECK(wsx_server_handshake_rest(hs, &size) == NULL && size == 0);
    wsx_server_handshake_destroy(hs);
}

int main(void) {
    test_version_and_errors();
    test_echo_round_trips();
    test_protocol_errors_close_with_their_code();
    test_misuse_is_refused_with_a_code();
    test_server_handshake();
    printf("capi: %d passed, %d failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
