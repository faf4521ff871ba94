// The client end to end over loopback TCP, on every reactor backend: the wsx server as the peer,
// and a scripted raw-socket server for the answers the wsx server never gives (masked frames,
// bad accept keys, silence). Every failure must arrive as one precise ConnectError.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "client_test_support.hpp"
#include "net/client.hpp"
#include "net/server.hpp"
#include "proto/connection.hpp"
#include "proto/handshake.hpp"
#include "server_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::Client;
using wsx::net::ClientOptions;
using wsx::net::ConnectErrc;
using wsx::net::ConnectError;
using wsx::net::ConnectRequest;
using wsx::net::Reactor;
using wsx::net::SessionHandler;
using wsx::net::SocketAddress;
using wsx::net::SysResult;
using wsx::net::WsSession;
using wsx::net::testing::bytes_of;
using wsx::net::testing::EchoRecorder;
using wsx::net::testing::Failures;
using wsx::net::testing::free_port;
using wsx::net::testing::local_url;
using wsx::net::testing::make_reactor;
using wsx::net::testing::quick_options;
using wsx::net::testing::read_until_eof;
using wsx::net::testing::Recorder;
using wsx::net::testing::run_until;
using wsx::net::testing::send_all;
using wsx::net::testing::test_options;
using wsx::net::testing::TestServer;
using wsx::net::testing::text_of;
using wsx::net::testing::wait_readable;
using wsx::proto::Error;
using wsx::proto::Opcode;

namespace {

// RFC 1035 §2.3.4 caps a label at 63 octets, so the resolver refuses this name locally, without
// asking a DNS server (and .invalid never resolves anyway, RFC 6761 §6.4).
const std::string kUnresolvableHost = std::string(64, 'a') + ".invalid";

// A listener that accepts nothing (the kernel still completes TCP handshakes into its queue).
struct SilentListener {
    int fd = -1;
    std::uint16_t port = 0;
    explicit SilentListener(int backlog = SOMAXCONN) {
        wsx::net::ListenOptions options;
        options.backlog = backlog;
        const SysResult<int> listening =
            wsx::net::listen_tcp(SocketAddress::loopback_v4(0), options);
        REQUIRE(listening.ok());
        fd = listening.value;
        port = SocketAddress::local_of(fd).value.port();
    }
    ~SilentListener() { static_cast<void>(wsx::net::close_fd(fd)); }
    SilentListener(const SilentListener&) = delete;
    SilentListener& operator=(const SilentListener&) = delete;
};

// A one-connection raw server on its own thread: reads the request head, answers with what
// `script` returns for it, then (unless told to hang up) records what the client sends until it
// ends TCP. Every wait is bounded.
class ScriptedServer {
  public:
    using Script = std::function<std::string(const std::string& request)>;

    explicit ScriptedServer(Script script, bool hang_up = false)
        : listener_(), script_(std::move(script)), hang_up_(hang_up) {
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedServer() { finish(); }
    ScriptedServer(const ScriptedServer&) = delete;
    ScriptedServer& operator=(const ScriptedServer&) = delete;

    std::uint16_t port() const noexcept { return listener_.port; }
    // Both wait for the connection to end (the client's on_close or failure comes first).
    std::string request() {
        finish();
        return request_;
    }
    std::string received_after_head() {
        finish();
        return after_;
    }

  private:
    void finish() {
        if (thread_.joinable()) thread_.join();
    }

    void serve() {
        if (!wait_readable(listener_.fd, 5000ms)) return;
        const int fd = ::accept(listener_.fd, nullptr, nullptr);
        if (fd < 0) return;
        std::string in;
        char buffer[4096];
        while (in.find("\r\n\r\n") == std::string::npos && wait_readable(fd, 5000ms)) {
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) break;
            in.append(buffer, static_cast<std::size_t>(n));
        }
        const std::size_t head_end = in.find("\r\n\r\n");
        if (head_end != std::string::npos) {
            request_ = in.substr(0, head_end + 4);
            const std::string reply = script_(request_);
            static_cast<void>(send_all(fd, bytes_of(reply)));
            if (!hang_up_) after_ = in.substr(head_end + 4) + read_until_eof(fd, 5000ms);
        }
        ::close(fd);
    }

    SilentListener listener_;
    Script script_;
    bool hang_up_;
    std::string request_;
    std::string after_;
    std::thread thread_;
};

// The 101 a correct server sends for `request`.
std::string accept_for(const std::string& request,
                       const wsx::proto::ServerOptions& options = wsx::proto::ServerOptions{
                           {}, {}, wsx::proto::OriginPolicy::allow_any()}) {
    wsx::proto::ServerHandshake handshake(options);
    const auto parsed = handshake.parse(request);
    REQUIRE(parsed.status == wsx::proto::ParseStatus::ok);
    return handshake.accept_response();
}

// Decodes the frames a client sent (masked), as a server would, to check its close frame.
struct CloseSeen {
    std::uint16_t code = 0;
    bool seen = false;
    void on_message(Opcode, std::span<const std::uint8_t>) {}
    void on_close(const wsx::proto::CloseInfo& info) {
        seen = true;
        code = info.code;
    }
};

CloseSeen close_frame_in(std::string bytes) {
    wsx::proto::Connection server(wsx::proto::Role::server);
    CloseSeen seen;
    std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
    static_cast<void>(server.receive(data, seen));
    return seen;
}

}  // namespace

TEST_CASE_TEMPLATE("client connects to the wsx server and echoes text and binary", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    wsx::net::ServerOptions server_options = test_options(B::value);
    server_options.websocket_paths = {"/echo"};
    TestServer server(server_options, echo);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());

    client.connect({.url = local_url(server.port(), "/echo?x=1")}, app, failures.callback());
    CHECK(client.pending() == 1);
    REQUIRE(run_until(*reactor, [&] { return app.opened == 1 || failures.calls > 0; }));
    REQUIRE_MESSAGE(failures.calls == 0, failures.last.message());
    CHECK(client.pending() == 0);
    CHECK(app.target == "/echo?x=1");
    REQUIRE(app.session != nullptr);

    const std::vector<std::size_t> sizes = {0, 1, 125, 126, 65535, 65536, 1 << 20};
    for (const std::size_t size : sizes) {
        REQUIRE(app.session->send_text(std::string(size, 't')) == wsx::net::SendStatus::ok);
        std::vector<std::uint8_t> binary(size);
        for (std::size_t i = 0; i < size; ++i)
            binary[i] = static_cast<std::uint8_t>(i * 31);
        REQUIRE(app.session->send_binary(binary) == wsx::net::SendStatus::ok);
    }
    REQUIRE(run_until(*reactor, [&] { return app.messages.size() == 2 * sizes.size(); }));
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        CAPTURE(sizes[i]);
        CHECK(app.messages[2 * i].first == Opcode::text);
        CHECK(app.messages[2 * i].second == std::string(sizes[i], 't'));
        CHECK(app.messages[2 * i + 1].first == Opcode::binary);
        REQUIRE(app.messages[2 * i + 1].second.size() == sizes[i]);
        bool same = true;
        for (std::size_t j = 0; j < sizes[i]; ++j)
            same = same && static_cast<std::uint8_t>(app.messages[2 * i + 1].second[j]) ==
                               static_cast<std::uint8_t>(j * 31);
        CHECK(same);
    }

    REQUIRE(app.session->close(1000, "done") == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.closed == 1; }));
    CHECK(app.clean);
    CHECK(app.close_code == 1000);
    REQUIRE(wsx::net::testing::eventually([&] { return echo.closed.load() == 1; }));
    CHECK(echo.closes()[0].code == 1000);
    CHECK(echo.closes()[0].reason == "done");
}

TEST_CASE_TEMPLATE("client resolves localhost off the reactor thread and connects", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    TestServer server(test_options(B::value), echo);
    auto reactor = make_reactor(B::value);
    wsx::net::Resolver resolver;
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options(), &resolver);

    client.connect({.url = "ws://localhost:" + std::to_string(server.port()) + "/"}, app,
                   failures.callback());
    REQUIRE(run_until(*reactor, [&] { return app.opened == 1 || failures.calls > 0; }));
    REQUIRE_MESSAGE(failures.calls == 0, failures.last.message());
    CHECK(resolver.pending() == 0);
    REQUIRE(app.session->send_text("via localhost") == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.messages.size() == 1; }));
    CHECK(app.messages[0].second == "via localhost");
}

TEST_CASE_TEMPLATE("client connects to an IPv6 literal in brackets", B, WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    wsx::net::ServerOptions server_options = test_options(B::value);
    server_options.address = "::1";
    wsx::net::Server server(server_options, echo);
    if (const wsx::net::SysStatus started = server.start(); !started.ok()) {
        // A host without IPv6 loopback cannot run this case; nothing about the client is wrong.
        REQUIRE((started.error == EADDRNOTAVAIL || started.error == EAFNOSUPPORT));
        MESSAGE("no IPv6 loopback here: ", std::strerror(started.error));
        return;
    }
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = "ws://[::1]:" + std::to_string(server.port()) + "/"}, app,
                   failures.callback());
    REQUIRE(run_until(*reactor, [&] { return app.opened == 1 || failures.calls > 0; }));
    REQUIRE_MESSAGE(failures.calls == 0, failures.last.message());
    CHECK(app.session->peer().family() == AF_INET6);
    REQUIRE(app.session->send_text("over IPv6") == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.messages.size() == 1; }));
    CHECK(app.messages[0].second == "over IPv6");
    REQUIRE(app.session->close() == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.closed == 1; }));
    server.stop();
    server.wait();
}

TEST_CASE_TEMPLATE("client sends Origin, subprotocol offers and extra headers in its request", B,
                   WSX_NET_TEST_BACKENDS) {
    wsx::proto::ServerOptions server_handshake{
        {}, {"v2", "v1"}, wsx::proto::OriginPolicy::allow_any()};
    ScriptedServer peer(
        [&](const std::string& request) { return accept_for(request, server_handshake); });
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    ClientOptions options = quick_options();
    options.session.close_timeout = 200ms;  // the scripted peer never answers the close
    Client client(*reactor, options);
    client.connect({.url = local_url(peer.port(), "/chat"),
                    .origin = "http://app.example",
                    .protocols = {"v1", "v2"},
                    .headers = {{"Authorization", "Bearer t0k3n"}}},
                   app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return app.opened == 1 || failures.calls > 0; }));
    REQUIRE_MESSAGE(failures.calls == 0, failures.last.message());
    CHECK(app.protocol == "v2");  // the server's preference decides
    REQUIRE(app.session->close() == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.closed == 1; }));

    const std::string request = peer.request();
    CHECK(request.rfind("GET /chat HTTP/1.1\r\n", 0) == 0);
    CHECK(request.find("\r\nHost: 127.0.0.1:" + std::to_string(peer.port()) + "\r\n") !=
          std::string::npos);
    CHECK(request.find("\r\nOrigin: http://app.example\r\n") != std::string::npos);
    CHECK(request.find("\r\nSec-WebSocket-Protocol: v1, v2\r\n") != std::string::npos);
    CHECK(request.find("\r\nAuthorization: Bearer t0k3n\r\n") != std::string::npos);
}

TEST_CASE_TEMPLATE("a refused port fails with connection_refused and the address", B,
                   WSX_NET_TEST_BACKENDS) {
    const std::uint16_t port = free_port();
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = local_url(port)}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(app.opened == 0);
    CHECK(failures.last.code == ConnectErrc::connection_refused);
    CHECK(failures.last.sys_error == ECONNREFUSED);
    CHECK(failures.last.message() == "connection refused by 127.0.0.1:" + std::to_string(port));
    CHECK(client.pending() == 0);
}

TEST_CASE_TEMPLATE("a TCP connect nobody completes fails with connect_timeout", B,
                   WSX_NET_TEST_BACKENDS) {
    // Backlog 0: the accept queue holds one connection. Fill it; further SYNs are dropped, so the
    // client's connect stays in progress until its timeout.
    SilentListener listener(0);
    std::vector<int> fillers;
    for (int i = 0; i < 2; ++i) {
        const SysResult<int> filler =
            wsx::net::connect_tcp(SocketAddress::loopback_v4(listener.port));
        REQUIRE(filler.ok());
        fillers.push_back(filler.value);
    }
    std::this_thread::sleep_for(50ms);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    ClientOptions options = quick_options();
    options.connect_timeout = 300ms;
    Client client(*reactor, options);
    const auto started = std::chrono::steady_clock::now();
    client.connect({.url = local_url(listener.port)}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(failures.last.code == ConnectErrc::connect_timeout);
    CHECK(took >= 250ms);
    CHECK(failures.last.message().find("timed out") != std::string::npos);
    for (const int fd : fillers)
        ::close(fd);
}

TEST_CASE_TEMPLATE("a server that never answers the request fails with handshake_timeout", B,
                   WSX_NET_TEST_BACKENDS) {
    SilentListener listener;
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    ClientOptions options = quick_options();
    options.handshake_timeout = 300ms;
    Client client(*reactor, options);
    client.connect({.url = local_url(listener.port)}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(failures.last.code == ConnectErrc::handshake_timeout);
    CHECK(app.opened == 0);
}

TEST_CASE_TEMPLATE("a forbidden Origin reaches the caller as HTTP 403", B, WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    wsx::net::ServerOptions server_options = test_options(B::value);
    server_options.handshake.origin =
        wsx::proto::OriginPolicy::allow_list({"http://allowed.example"});
    TestServer server(server_options, echo);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());

    client.connect({.url = local_url(server.port()), .origin = "http://evil.example"}, app,
                   failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(failures.last.code == ConnectErrc::http_status);
    CHECK(failures.last.http_status == 403);
    CHECK(failures.last.http_reason == "Forbidden");
    CHECK(failures.last.handshake_error == Error::http_bad_status);
    CHECK(failures.last.message().find("HTTP 403 Forbidden") != std::string::npos);

    client.connect({.url = local_url(server.port()), .origin = "http://allowed.example"}, app,
                   failures.callback());
    REQUIRE(run_until(*reactor, [&] { return app.opened == 1 || failures.calls == 2; }));
    CHECK(app.opened == 1);
}

TEST_CASE_TEMPLATE("a server at its connection limit reaches the caller as HTTP 503", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    wsx::net::ServerOptions server_options = test_options(B::value);
    server_options.max_connections = 1;
    TestServer server(server_options, echo);
    auto reactor = make_reactor(B::value);
    Recorder first;
    Recorder second;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = local_url(server.port())}, first, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return first.opened == 1 || failures.calls > 0; }));
    client.connect({.url = local_url(server.port())}, second, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1 || second.opened == 1; }));
    CHECK(second.opened == 0);
    CHECK(failures.last.code == ConnectErrc::http_status);
    CHECK(failures.last.http_status == 503);
}

TEST_CASE_TEMPLATE("client fails a masked frame from the server with 1002", B,
                   WSX_NET_TEST_BACKENDS) {
    ScriptedServer peer([](const std::string& request) {
        // RFC 6455 §5.1: a server must not mask; "Hello" masked with key 37 fa 21 3d (§5.7).
        const char frame[] = {'\x81', '\x85', '\x37', '\xfa', '\x21', '\x3d',
                              '\x7f', '\x9f', '\x4d', '\x51', '\x58'};
        return accept_for(request) + std::string(frame, sizeof frame);
    });
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = local_url(peer.port())}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return app.closed == 1 || failures.calls > 0; }));
    CHECK(failures.calls == 0);
    CHECK(app.opened == 1);
    CHECK(app.messages.empty());
    CHECK(app.close_code == 1002);
    CHECK(app.close_error == Error::masked_server_frame);
    const CloseSeen sent = close_frame_in(peer.received_after_head());
    CHECK(sent.seen);
    CHECK(sent.code == 1002);
}

TEST_CASE_TEMPLATE("frames in the same packet as the 101 are the session's first input", B,
                   WSX_NET_TEST_BACKENDS) {
    ScriptedServer peer([](const std::string& request) {
        const char frame[] = {'\x81', '\x05', 'e', 'a', 'r', 'l', 'y'};
        return accept_for(request) + std::string(frame, sizeof frame);
    });
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    ClientOptions options = quick_options();
    options.session.close_timeout = 200ms;  // the scripted peer never answers the close
    Client client(*reactor, options);
    client.connect({.url = local_url(peer.port())}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return !app.messages.empty() || failures.calls > 0; }));
    CHECK(app.messages[0].second == "early");
    REQUIRE(app.session->close() == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.closed == 1; }));
    CHECK(close_frame_in(peer.received_after_head()).code == 1000);
}

TEST_CASE_TEMPLATE("a 101 with a wrong Sec-WebSocket-Accept fails with bad_response", B,
                   WSX_NET_TEST_BACKENDS) {
    ScriptedServer peer([](const std::string&) {
        return std::string(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    });
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = local_url(peer.port())}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(failures.last.code == ConnectErrc::bad_response);
    CHECK(failures.last.handshake_error == Error::http_bad_accept);
    CHECK(app.opened == 0);
}

TEST_CASE_TEMPLATE("a server that hangs up during the handshake fails with connection_lost", B,
                   WSX_NET_TEST_BACKENDS) {
    ScriptedServer peer([](const std::string&) { return std::string("HTTP/1.1 101 Swi"); }, true);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = local_url(peer.port())}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(failures.last.code == ConnectErrc::connection_lost);
    CHECK(failures.last.message().find("during the opening handshake") != std::string::npos);
}

TEST_CASE_TEMPLATE(
    "URL errors and wss failures are reported from the reactor, never inside connect", B,
    WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = "http://127.0.0.1/"}, app, failures.callback());
    CHECK(failures.calls == 0);
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(failures.last.code == ConnectErrc::invalid_url);
    CHECK(failures.last.message().find("unsupported scheme") != std::string::npos);

    client.connect({.url = "wss://127.0.0.1:" + std::to_string(free_port()) + "/"}, app,
                   failures.callback());
    CHECK(failures.calls == 1);
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 2; }));
    CHECK(failures.last.code == ConnectErrc::connection_refused);
}

TEST_CASE_TEMPLATE("an unresolvable host fails with resolve_failed", B, WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = "ws://" + kUnresolvableHost + "/"}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(failures.last.code == ConnectErrc::resolve_failed);
    CHECK(failures.last.resolve_error != 0);
    CHECK(failures.last.message().find("cannot resolve " + kUnresolvableHost + ":80") == 0);
}

TEST_CASE_TEMPLATE("a cancelled attempt ends without any callback", B, WSX_NET_TEST_BACKENDS) {
    SilentListener listener;
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    ClientOptions options = quick_options();
    options.handshake_timeout = 100ms;
    Client client(*reactor, options);
    const Client::AttemptId id =
        client.connect({.url = local_url(listener.port)}, app, failures.callback());
    for (int i = 0; i < 3; ++i)
        static_cast<void>(reactor->run_once(10ms));
    CHECK(client.cancel(id));
    CHECK_FALSE(client.cancel(id));
    CHECK(client.pending() == 0);
    const auto until = std::chrono::steady_clock::now() + 300ms;
    while (std::chrono::steady_clock::now() < until)
        static_cast<void>(reactor->run_once(20ms));
    CHECK(failures.calls == 0);
    CHECK(app.opened == 0);
}

TEST_CASE_TEMPLATE("a failure callback may destroy the client", B, WSX_NET_TEST_BACKENDS) {
    const std::uint16_t port = free_port();
    auto reactor = make_reactor(B::value);
    Recorder app;
    auto client = std::make_unique<Client>(*reactor, quick_options());
    int calls = 0;
    client->connect({.url = local_url(port)}, app, [&](const ConnectError&) {
        ++calls;
        client.reset();
    });
    REQUIRE(run_until(*reactor, [&] { return calls == 1; }));
    CHECK(client == nullptr);
}
