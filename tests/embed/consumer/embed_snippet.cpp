// Serves one WebSocket connection on a connected socket with blocking read/writev: the opening
// handshake, then an echo of every message until the close handshake is over. Any event loop
// drives proto the same way: bytes in (receive), bytes out (pending_output / consume_output).
#include <sys/uio.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "proto/connection.hpp"
#include "proto/handshake.hpp"

using namespace wsx::proto;

struct Echo {
    Connection* conn;
    void on_message(Opcode op, std::span<const std::uint8_t> data) { conn->send(op, data); }
};

void serve_websocket(int fd) {           // the caller closes fd afterwards
    static const ServerOptions options;  // same-origin policy, 8 KiB head, no subprotocol
    ServerHandshake handshake(options);
    std::string head;
    std::uint8_t buf[64 * 1024];
    HttpParseResult r;
    do {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return;
        head.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
    } while ((r = handshake.parse(head)).status == ParseStatus::need_more);
    bool ok = r.status == ParseStatus::ok;
    std::string answer = ok ? handshake.accept_response() : write_error_response(r.error);
    if (write(fd, answer.data(), answer.size()) < 0 || !ok) return;  // 101, or 400/405/426...

    Connection conn(Role::server);
    Echo echo{&conn};
    std::vector<std::uint8_t> rest(head.begin() + static_cast<long>(handshake.consumed()),
                                   head.end());  // frames that came with the request
    conn.receive(rest, echo);
    for (;;) {
        IoSlice out[16];  // layout-compatible with struct iovec
        while (std::size_t n = conn.pending_output(out)) {
            ssize_t written = writev(fd, reinterpret_cast<iovec*>(out), static_cast<int>(n));
            if (written < 0) return;
            conn.consume_output(static_cast<std::size_t>(written));
        }
        if (conn.state() == State::closed) return;  // RFC 6455 §7.1.1: the server closes TCP
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return conn.transport_closed(echo);  // on_close with 1006
        conn.receive({buf, static_cast<std::size_t>(n)}, echo);
    }
}
