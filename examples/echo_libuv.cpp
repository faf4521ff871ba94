// A WebSocket echo server on libuv that drives wsx's sans-IO engine itself: libuv owns the loop
// and the sockets, proto::ServerHandshake reads the HTTP upgrade request, and proto::Connection
// turns received bytes into messages and sends into bytes.
//
//   echo_libuv [PORT]     listens on 127.0.0.1 (port 0 or none: a free one, printed on stderr)
#include <uv.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proto/connection.hpp"
#include "proto/handshake.hpp"

namespace proto = wsx::proto;

namespace {

// Shared by every handshake (it must outlive them): same-origin policy, 8 KiB request head.
const proto::ServerOptions kHandshakeOptions{};

// Sends every message back. The engine answers pings and the peer's close frame by itself.
struct EchoHandler {
    proto::Connection* conn = nullptr;
    void on_message(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
        conn->send(opcode, payload);
    }
};

struct Client {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown;
    proto::ServerHandshake handshake{kHandshakeOptions};
    std::string head;  // the request as received so far: the parser's views point into it
    std::optional<proto::Connection> conn;
    EchoHandler handler;
    bool closing = false;
    char read_buffer[64 * 1024];
};

// libuv keeps the bytes of a write until its callback, so each write owns a copy: the engine's
// output queue may move its storage when the next frame is queued.
struct WriteRequest {
    uv_write_t req;
    std::vector<char> bytes;
};

uv_stream_t* stream_of(Client* c) {
    return reinterpret_cast<uv_stream_t*>(&c->tcp);
}

void write_bytes(Client* c, std::vector<char> bytes) {
    auto* w = new WriteRequest{{}, std::move(bytes)};
    w->req.data = w;
    const uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    const int rc = uv_write(&w->req, stream_of(c), &buf, 1, [](uv_write_t* req, int) {
        delete static_cast<WriteRequest*>(req->data);
    });
    if (rc != 0) delete w;
}

void close_now(Client* c) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp)) != 0) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { delete static_cast<Client*>(h->data); });
}

// Sends FIN once every queued write is out, then closes the socket.
void close_after_writes(Client* c) {
    if (c->closing) return;
    c->closing = true;
    uv_read_stop(stream_of(c));
    if (uv_shutdown(&c->shutdown, stream_of(c), [](uv_shutdown_t* req, int) {
            close_now(static_cast<Client*>(req->handle->data));
        }) != 0)
        close_now(c);
}

// Hands the engine's output to libuv and closes the socket once the engine is done. (A server
// facing slow readers would also stop reading while uv_stream_get_write_queue_size() is high.)
void flush(Client* c) {
    proto::Connection& conn = *c->conn;
    if (conn.wants_write()) {
        std::vector<char> bytes;
        bytes.reserve(conn.buffered_amount());
        proto::IoSlice slices[16];
        while (const std::size_t n = conn.pending_output(slices)) {
            std::size_t taken = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const char* data = static_cast<const char*>(slices[i].data);
                bytes.insert(bytes.end(), data, data + slices[i].size);
                taken += slices[i].size;
            }
            conn.consume_output(taken);
        }
        write_bytes(c, std::move(bytes));
    }
    // RFC 6455 §7.1.1: after the close handshake (or a protocol error) the server closes TCP.
    if (conn.close_transport_now()) close_after_writes(c);
}

// The opening handshake: false while the request is incomplete or after it was refused.
bool upgrade(Client* c, const char* data, std::size_t size) {
    c->head.append(data, size);
    const proto::HttpParseResult r = c->handshake.parse(c->head);
    if (r.status == proto::ParseStatus::need_more) return false;
    if (r.status == proto::ParseStatus::error) {
        const std::string answer = proto::write_error_response(r.error);  // 400, 405, 426 ...
        write_bytes(c, {answer.begin(), answer.end()});
        close_after_writes(c);
        return false;
    }
    const std::string answer = c->handshake.accept_response();
    write_bytes(c, {answer.begin(), answer.end()});
    c->conn.emplace(proto::Role::server);
    c->handler.conn = &*c->conn;
    // Bytes after the request are already WebSocket frames.
    std::vector<std::uint8_t> rest(c->head.begin() + static_cast<long>(c->handshake.consumed()),
                                   c->head.end());
    c->conn->receive(rest, c->handler);
    return true;
}

void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t*) {
    auto* c = static_cast<Client*>(stream->data);
    if (n < 0) {  // EOF or a reset: on_close (1006 unless the close handshake was done)
        if (c->conn) c->conn->transport_closed(c->handler);
        close_now(c);
        return;
    }
    const auto size = static_cast<std::size_t>(n);
    if (!c->conn) {
        if (!upgrade(c, c->read_buffer, size)) return;
    } else {
        // Payloads are unmasked in place in read_buffer and echoed from there.
        c->conn->receive({reinterpret_cast<std::uint8_t*>(c->read_buffer), size}, c->handler);
    }
    flush(c);
}

void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    auto* c = new Client;
    c->tcp.data = c;
    uv_tcp_init(server->loop, &c->tcp);
    if (uv_accept(server, stream_of(c)) != 0) {
        close_now(c);
        return;
    }
    uv_read_start(
        stream_of(c),
        [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
            auto* client = static_cast<Client*>(h->data);
            *buf = uv_buf_init(client->read_buffer, sizeof client->read_buffer);
        },
        on_read);
}

}  // namespace

int main(int argc, char** argv) {
    const int port = argc > 1 ? std::atoi(argv[1]) : 0;
    uv_loop_t* loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", port, &addr);
    int rc = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server), 128, on_connection);
    if (rc != 0) {
        std::fprintf(stderr, "echo_libuv: %s\n", uv_strerror(rc));
        return 1;
    }
    int length = sizeof addr;
    uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&addr), &length);
    std::fprintf(stderr, "listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    return uv_run(loop, UV_RUN_DEFAULT);
}
