// A program outside wsx that uses it as its users do (installed, or as a meson subproject): the
// README's embedding snippet serves a WebSocket on one end of a socket pair while a client made
// of proto::ClientHandshake and proto::Connection talks to it from the other end; the net layer
// parses the URL. Exits 0 when every echo came back and the close handshake completed.
//
//   consumer EXPECTED_VERSION
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "net/url.hpp"
#include "proto/connection.hpp"
#include "proto/handshake.hpp"
#include "wsx/version.hpp"

void serve_websocket(int fd);  // embed_snippet.cpp

namespace {

using namespace wsx::proto;

struct Received {
    std::vector<std::string> messages;
    bool closed = false;
    std::uint16_t code = 0;
    bool clean = false;

    void on_message(Opcode, std::span<const std::uint8_t> data) {
        messages.emplace_back(reinterpret_cast<const char*>(data.data()), data.size());
    }
    void on_close(const CloseInfo& info) {
        closed = true;
        code = info.code;
        clean = info.clean;
    }
};

bool write_all(int fd, Connection& conn) {
    IoSlice out[16];
    while (std::size_t n = conn.pending_output(out)) {
        const ssize_t written = writev(fd, reinterpret_cast<iovec*>(out), static_cast<int>(n));
        if (written < 0) return false;
        conn.consume_output(static_cast<std::size_t>(written));
    }
    return true;
}

int fail(const char* what) {
    std::fprintf(stderr, "consumer: %s\n", what);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2 || std::strcmp(argv[1], WSX_VERSION_STRING) != 0 ||
        std::strcmp(wsx::version_string, argv[1]) != 0)
        return fail("wsx/version.hpp does not name the expected version");

    const auto url = wsx::net::parse_url("ws://127.0.0.1:9001/echo?x=1");
    if (!url.ok() || url.url.authority() != "127.0.0.1:9001") return fail("parse_url");

    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return fail("socketpair");
    std::thread server([fd = fds[0]] {
        serve_websocket(fd);
        close(fd);
    });

    int status = 0;
    ClientOptions options;
    options.host = url.url.authority();
    options.target = url.url.target;
    auto handshake = ClientHandshake::create(options);
    if (!handshake) return fail("no CSPRNG for the handshake key");
    std::string request = handshake->request();
    std::string head;
    char buf[64 * 1024];
    HttpParseResult r{};
    if (write(fds[1], request.data(), request.size()) < 0) status = fail("write");
    while (status == 0 && (r = handshake->parse(head)).status == ParseStatus::need_more) {
        const ssize_t n = read(fds[1], buf, sizeof buf);
        if (n <= 0)
            status = fail("connection lost during the handshake");
        else
            head.append(buf, static_cast<std::size_t>(n));
    }
    if (status == 0 && r.status != ParseStatus::ok) status = fail("handshake refused");

    Connection conn(Role::client);
    Received received;
    const std::string big(60000, 'w');
    if (status == 0) {
        conn.send_text("hello");
        conn.send_text(big);
        conn.close(1000, "done");
        if (!write_all(fds[1], conn)) status = fail("writev");
    }
    // §7.1.1: after the close handshake the client waits for the server to close TCP.
    while (status == 0) {
        const ssize_t n = read(fds[1], buf, sizeof buf);
        if (n <= 0) break;
        conn.receive({reinterpret_cast<std::uint8_t*>(buf), static_cast<std::size_t>(n)}, received);
    }
    conn.transport_closed(received);
    server.join();
    close(fds[1]);
    if (status != 0) return status;
    if (received.messages.size() != 2 || received.messages[0] != "hello" ||
        received.messages[1] != big)
        return fail("echoes differ from what was sent");
    if (!received.closed || received.code != 1000 || !received.clean)
        return fail("no clean close handshake");
    std::printf("consumer: wsx %s, 2 echoes and a clean close\n", wsx::version_string);
    return 0;
}
