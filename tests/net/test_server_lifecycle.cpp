// Session life cycles over loopback TCP: the handshake timeout, the heartbeat (ping interval,
// pong wait), the idle timeout, graceful shutdown, and on_open/on_close balance when peers
// vanish at random moments.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "net/server.hpp"
#include "server_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::ServerOptions;
using wsx::net::WsSession;
using wsx::net::testing::bytes_of;
using wsx::net::testing::ClientEvent;
using wsx::net::testing::connect_loopback;
using wsx::net::testing::EchoRecorder;
using wsx::net::testing::eventually;
using wsx::net::testing::read_until_eof;
using wsx::net::testing::send_all;
using wsx::net::testing::test_options;
using wsx::net::testing::TestClient;
using wsx::net::testing::TestServer;
using wsx::net::testing::upgrade_request;
using wsx::proto::Opcode;

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

}  // namespace

TEST_CASE_TEMPLATE("server closes a connection that sends no complete request in time", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    ServerOptions options = test_options(B::value);
    options.handshake_timeout = 200ms;
    TestServer server(options, handler);

    for (const std::string& sent : {std::string(), std::string("GET / HTTP/1.1\r\nHost: x")}) {
        CAPTURE(sent);
        const int fd = connect_loopback(server.port());
        REQUIRE(fd >= 0);
        REQUIRE(send_all(fd, bytes_of(sent)));
        const auto start = Clock::now();
        const std::string got = read_until_eof(fd, 4000ms);
        const auto waited = since(start);
        CHECK(got.empty());
        CHECK(waited >= 150ms);
        CHECK(waited < 3000ms);  // ended by the server, not by the read timeout
        ::close(fd);
    }
    CHECK(handler.opened.load() == 0);
}

TEST_CASE_TEMPLATE("server pings every ping_interval and drops a peer silent for pong_wait", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    ServerOptions options = test_options(B::value);
    options.session.ping_interval = 100ms;
    options.session.pong_wait = 400ms;
    TestServer server(options, handler);

    // A live peer answers the pings (auto-pong) and stays connected past pong_wait.
    TestClient live(server.port());
    REQUIRE(live.handshake() == 101);
    int pings = 0;
    const auto start = Clock::now();
    while (since(start) < 1000ms) {
        const ClientEvent e = live.next(100ms);
        REQUIRE(e.kind != ClientEvent::Kind::close);
        REQUIRE(e.kind != ClientEvent::Kind::eof);
        if (e.kind == ClientEvent::Kind::ping) ++pings;
    }
    CHECK(pings >= 4);
    CHECK(handler.closed.load() == 0);
    live.close();
    CHECK(live.next_non_control().kind == ClientEvent::Kind::close);
    CHECK(live.next().kind == ClientEvent::Kind::eof);
    REQUIRE(eventually([&] { return handler.closed.load() == 1; }));

    // A peer that never answers: the first ping comes after ping_interval, then the server gives
    // up once nothing has arrived for pong_wait.
    wsx::proto::ConnectionOptions no_pong;
    no_pong.auto_pong = false;
    TestClient silent(server.port(), no_pong);
    REQUIRE(silent.handshake() == 101);
    const auto opened = Clock::now();
    CHECK(silent.next(2000ms).kind == ClientEvent::Kind::ping);
    CHECK(since(opened) >= 80ms);
    ClientEvent e;
    do {
        e = silent.next(3000ms);
    } while (e.kind == ClientEvent::Kind::ping);
    CHECK(e.kind == ClientEvent::Kind::eof);
    CHECK(since(opened) >= 350ms);
    REQUIRE(eventually([&] { return handler.closed.load() == 2; }));
    CHECK(handler.closes().at(1).code == 1006);
    CHECK(handler.closes().at(1).reason == "no pong or data within pong_wait");
}

namespace {

// Echoes, except "close me": the server starts the close handshake with 4000 "bye".
class ClosingRecorder : public EchoRecorder {
  public:
    void on_message(WsSession& session, wsx::proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        if (std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()) ==
            "close me") {
            static_cast<void>(session.close(4000, "bye"));
            return;
        }
        EchoRecorder::on_message(session, opcode, payload);
    }
};

}  // namespace

TEST_CASE_TEMPLATE("a close the peer never answers fails after close_timeout with 1006", B,
                   WSX_NET_TEST_BACKENDS) {
    ClosingRecorder handler;
    ServerOptions options = test_options(B::value);
    options.session.close_timeout = 300ms;
    TestServer server(options, handler);

    TestClient client(server.port());
    REQUIRE(client.handshake() == 101);
    const auto asked = Clock::now();
    client.send_text("close me");
    // The client reads nothing, so it never answers the close.
    REQUIRE(eventually([&] { return handler.closed.load() == 1; }, 3000ms));
    CHECK(since(asked) >= 250ms);
    CHECK(handler.closes().at(0).code == 1006);
    CHECK(handler.closes().at(0).reason == "close handshake timed out");
    const ClientEvent e = client.next_non_control(2000ms);
    CHECK(e.kind == ClientEvent::Kind::close);
    CHECK(e.close_code == 4000);
    CHECK(client.next().kind == ClientEvent::Kind::eof);
}

TEST_CASE_TEMPLATE("server closes a session idle for idle_timeout with 1000", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    ServerOptions options = test_options(B::value);
    options.session.idle_timeout = 200ms;
    TestServer server(options, handler);

    TestClient client(server.port());
    REQUIRE(client.handshake() == 101);
    const auto start = Clock::now();
    const ClientEvent e = client.next_non_control(3000ms);
    REQUIRE(e.kind == ClientEvent::Kind::close);
    CHECK(e.close_code == 1000);
    CHECK(e.text() == "idle timeout");
    CHECK(since(start) >= 150ms);
    CHECK(client.next().kind == ClientEvent::Kind::eof);
    REQUIRE(eventually([&] { return handler.closed.load() == 1; }));
    CHECK(handler.closes().at(0).clean);
}

TEST_CASE_TEMPLATE("graceful shutdown delivers everything queued, then 1001, then exits", B,
                   WSX_NET_TEST_BACKENDS) {
    struct Burst : EchoRecorder {
        std::atomic<bool> queued{false};
        void on_message(WsSession& session, Opcode, std::span<const std::uint8_t>) override {
            const std::vector<std::uint8_t> chunk(64 * 1024, 5);
            for (int i = 0; i < 64; ++i)
                session.send_binary(chunk);
            queued = true;
        }
    } handler;
    ServerOptions options = test_options(B::value);
    auto server = std::make_unique<wsx::net::Server>(options, handler);
    REQUIRE(server->start().ok());
    const std::uint16_t port = server->port();

    TestClient busy(port);
    TestClient idle(port);
    REQUIRE(busy.handshake() == 101);
    REQUIRE(idle.handshake() == 101);
    busy.send_text("burst");
    REQUIRE(eventually([&] { return handler.queued.load(); }));

    const auto start = Clock::now();
    server->stop();
    int received = 0;
    ClientEvent e;
    while ((e = busy.next_non_control()).kind == ClientEvent::Kind::message)
        ++received;
    CHECK(received == 64);
    REQUIRE(e.kind == ClientEvent::Kind::close);
    CHECK(e.close_code == 1001);
    CHECK(busy.next().kind == ClientEvent::Kind::eof);
    e = idle.next_non_control();
    CHECK(e.close_code == 1001);
    CHECK(idle.next().kind == ClientEvent::Kind::eof);

    server->wait();
    CHECK(since(start) < 3000ms);
    CHECK(handler.opened.load() == 2);
    CHECK(handler.closed.load() == 2);
    for (const auto& closed : handler.closes()) {
        CHECK(closed.code == 1001);
        CHECK(closed.clean);
    }
    // The listeners are gone.
    CHECK(connect_loopback(port) < 0);
    server.reset();
}

TEST_CASE_TEMPLATE("on_open and on_close stay balanced when peers vanish at random moments", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    TestServer server(test_options(B::value), handler);

    constexpr int kThreads = 3;
    constexpr int kClients = 30;
    std::atomic<int> upgraded{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937 random(static_cast<unsigned>(1234 + t));
            for (int c = 0; c < kClients; ++c) {
                const int behaviour = static_cast<int>(random() % 8);
                if (behaviour == 0) {  // connect and leave before any request
                    const int fd = connect_loopback(server.port());
                    if (fd >= 0) ::close(fd);
                    continue;
                }
                if (behaviour == 1) {  // half a request
                    const int fd = connect_loopback(server.port());
                    if (fd < 0) continue;
                    const std::string request = upgrade_request(server.port());
                    send_all(fd, bytes_of(request.substr(0, request.size() / 2)));
                    ::close(fd);
                    continue;
                }
                TestClient client(server.port());
                if (client.handshake() != 101) continue;
                upgraded.fetch_add(1);
                switch (behaviour) {
                    case 2:  // orderly close
                        client.send_text("hello");
                        client.next();
                        client.close();
                        client.next();
                        break;
                    case 3:  // TCP ends without a close frame
                        break;
                    case 4: {  // reset
                        const linger abortive{1, 0};
                        ::setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &abortive,
                                     sizeof(abortive));
                        break;
                    }
                    case 5: {  // half a frame header
                        const std::uint8_t partial[] = {0x81, 0xfe, 0x01};
                        send_all(client.fd(), partial);
                        break;
                    }
                    case 6:  // a big message whose echo meets a closed socket
                        client.send_binary(std::vector<std::uint8_t>(200 * 1024, 1));
                        break;
                    default:  // a close frame, without waiting for the reply
                        client.close(1000);
                        break;
                }
            }
        });
    }
    for (std::thread& t : threads)
        t.join();
    REQUIRE(eventually([&] { return server.server().connection_count() == 0; }));
    CHECK(handler.opened.load() == upgraded.load());
    CHECK(handler.closed.load() == handler.opened.load());
}
