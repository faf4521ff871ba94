// WsSession and SessionHost without the server: both roles on one reactor over a socketpair,
// the preamble, host teardown, and a client-role session against the real Server.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "net/reactor.hpp"
#include "net/server.hpp"
#include "net/ws_session.hpp"
#include "net_test_support.hpp"
#include "server_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::SessionHandler;
using wsx::net::SessionHost;
using wsx::net::SessionOptions;
using wsx::net::SessionStart;
using wsx::net::WsSession;
using wsx::net::testing::bytes_of;
using wsx::net::testing::make_reactor;
using wsx::net::testing::run_until;
using wsx::net::testing::text_of;
using wsx::proto::Opcode;
using wsx::proto::Role;

namespace {

// Records everything one session sees; optionally greets on open and closes after N messages.
struct Recorder : SessionHandler {
    std::string greeting;
    int close_after = -1;
    bool echo = false;
    int opens = 0;
    int closes = 0;
    std::vector<std::string> messages;
    wsx::proto::CloseInfo info{};
    std::string reason;

    void on_open(WsSession& session) override {
        ++opens;
        if (!greeting.empty()) session.send_text(greeting);
    }
    void on_message(WsSession& session, Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        messages.push_back(text_of(payload));
        if (echo) session.send(opcode, payload);
        if (static_cast<int>(messages.size()) == close_after) session.close(1000, "enough");
    }
    void on_close(WsSession& session, const wsx::proto::CloseInfo& closed) override {
        static_cast<void>(session);
        ++closes;
        info = closed;
        reason = std::string(closed.reason);
    }
};

struct Pair {
    int fds[2] = {-1, -1};
    Pair() {
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    }
};

SessionStart start_for(int fd, Role role, SessionHandler& handler, const SessionOptions& options) {
    SessionStart start;
    start.fd = fd;
    start.role = role;
    start.handler = &handler;
    start.options = &options;
    return start;
}

}  // namespace

TEST_CASE_TEMPLATE("a client-role and a server-role session talk and close cleanly", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Recorder server;
    server.echo = true;
    Recorder client;
    client.greeting = "hello";
    client.close_after = 1;
    SessionHost host(*reactor);
    SessionOptions options;
    Pair pair;

    REQUIRE(host.adopt(start_for(pair.fds[0], Role::server, server, options)) != nullptr);
    REQUIRE(host.adopt(start_for(pair.fds[1], Role::client, client, options)) != nullptr);
    CHECK(host.size() == 2);
    REQUIRE(run_until(*reactor, [&] { return host.size() == 0; }));

    CHECK(server.messages == std::vector<std::string>{"hello"});
    CHECK(client.messages == std::vector<std::string>{"hello"});
    for (const Recorder* r : {&server, &client}) {
        CHECK(r->opens == 1);
        CHECK(r->closes == 1);
        CHECK(r->info.clean);
        CHECK(r->info.code == 1000);
    }
    CHECK(server.reason == "enough");  // the client's close frame; the reply carries no reason
}

TEST_CASE_TEMPLATE("a session writes its preamble before any frame queued in on_open", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Recorder server;  // handlers outlive the host, which reports on_close as it goes
    server.greeting = "hi";
    SessionHost host(*reactor);
    SessionOptions options;
    Pair pair;
    SessionStart start = start_for(pair.fds[0], Role::server, server, options);
    start.preamble = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
    REQUIRE(host.adopt(start) != nullptr);

    std::string wire(256, '\0');
    const ssize_t n = ::read(pair.fds[1], wire.data(), wire.size());
    REQUIRE(n > 0);
    wire.resize(static_cast<std::size_t>(n));
    CHECK(wire == start.preamble + std::string("\x81\x02hi", 4));
    ::close(pair.fds[1]);
}

TEST_CASE_TEMPLATE("a session takes the bytes that arrived with the handshake", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Recorder server;
    SessionHost host(*reactor);
    SessionOptions options;
    Pair pair;
    wsx::proto::Connection framer(Role::client);
    REQUIRE(framer.send_text("first") == wsx::proto::Error::none);
    REQUIRE(framer.send_text("second") == wsx::proto::Error::none);
    std::vector<std::uint8_t> early;
    wsx::proto::IoSlice slices[4];
    const std::size_t count = framer.pending_output(slices);
    for (std::size_t i = 0; i < count; ++i) {
        const auto* p = static_cast<const std::uint8_t*>(slices[i].data);
        early.insert(early.end(), p, p + slices[i].size);
    }
    SessionStart start = start_for(pair.fds[0], Role::server, server, options);
    start.early_bytes = early;
    REQUIRE(host.adopt(start) != nullptr);
    CHECK(server.messages == std::vector<std::string>{"first", "second"});
    ::close(pair.fds[1]);
    REQUIRE(run_until(*reactor, [&] { return host.size() == 0; }));
    CHECK(server.closes == 1);
    CHECK(server.info.code == 1006);
}

TEST_CASE_TEMPLATE("destroying a host reports 1006 to every session still open", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    SessionOptions options;
    Pair first;
    Pair second;
    Recorder a;
    Recorder b;
    {
        SessionHost host(*reactor);
        REQUIRE(host.adopt(start_for(first.fds[0], Role::server, a, options)) != nullptr);
        REQUIRE(host.adopt(start_for(second.fds[0], Role::client, b, options)) != nullptr);
    }
    for (const Recorder* r : {&a, &b}) {
        CHECK(r->opens == 1);
        CHECK(r->closes == 1);
        CHECK(r->info.code == 1006);
        CHECK_FALSE(r->info.clean);
    }
    ::close(first.fds[1]);
    ::close(second.fds[1]);
}

TEST_CASE_TEMPLATE("a client-role session talks to the server and ends after its FIN", B,
                   WSX_NET_TEST_BACKENDS) {
    wsx::net::testing::EchoRecorder server_handler;
    wsx::net::testing::TestServer server(wsx::net::testing::test_options(B::value), server_handler);

    // Handshake by hand on a blocking socket, then hand the socket to a client-role session.
    const int fd = wsx::net::testing::connect_loopback(server.port());
    REQUIRE(fd >= 0);
    wsx::proto::ClientOptions client_options;
    client_options.host = "127.0.0.1:" + std::to_string(server.port());
    auto hs = wsx::proto::ClientHandshake::create(client_options);
    REQUIRE(hs.has_value());
    REQUIRE(wsx::net::testing::send_all(fd, bytes_of(hs->request())));
    std::string in;
    while (hs->parse(in).status == wsx::proto::ParseStatus::need_more) {
        REQUIRE(wsx::net::testing::wait_readable(fd, 5000ms));
        char buffer[1024];
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        REQUIRE(n > 0);
        in.append(buffer, static_cast<std::size_t>(n));
    }
    REQUIRE(hs->parse(in).status == wsx::proto::ParseStatus::ok);
    REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);

    auto reactor = make_reactor(B::value);
    Recorder client;
    client.greeting = "over tcp";
    client.close_after = 1;
    SessionHost host(*reactor);
    SessionOptions options;
    SessionStart start = start_for(fd, Role::client, client, options);
    start.early_bytes = bytes_of(std::string_view(in).substr(hs->consumed()));
    REQUIRE(host.adopt(start) != nullptr);
    REQUIRE(run_until(*reactor, [&] { return host.size() == 0; }));

    CHECK(client.messages == std::vector<std::string>{"over tcp"});
    CHECK(client.info.clean);
    CHECK(client.info.code == 1000);
    REQUIRE(wsx::net::testing::eventually([&] { return server_handler.closed.load() == 1; }));
    CHECK(server_handler.closes().at(0).code == 1000);
    CHECK(server_handler.closes().at(0).clean);
}
