// permessage-deflate (RFC 7692) through the net layer, on every reactor backend: the wsx client
// and server negotiate it and echo byte-exact; the server's echo is compressed on the wire (RSV1,
// fewer bytes); a server without it declines the offer; a client refuses answers that break its
// offer (RFC 7692 §5.1, RFC 6455 §4.1).
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "client_test_support.hpp"
#include "net/client.hpp"
#include "net/server.hpp"
#include "proto/deflate.hpp"
#include "proto/handshake.hpp"
#include "server_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::Client;
using wsx::net::ClientOptions;
using wsx::net::ConnectErrc;
using wsx::net::SendStatus;
using wsx::net::SocketAddress;
using wsx::net::SysResult;
using wsx::net::testing::bytes_of;
using wsx::net::testing::connect_loopback;
using wsx::net::testing::EchoRecorder;
using wsx::net::testing::Failures;
using wsx::net::testing::local_url;
using wsx::net::testing::make_reactor;
using wsx::net::testing::quick_options;
using wsx::net::testing::read_until_eof;
using wsx::net::testing::Recorder;
using wsx::net::testing::run_until;
using wsx::net::testing::send_all;
using wsx::net::testing::test_options;
using wsx::net::testing::TestServer;
using wsx::net::testing::upgrade_request;
using wsx::net::testing::wait_readable;
using wsx::proto::Error;
using wsx::proto::Opcode;

namespace {

wsx::net::ServerOptions deflate_server_options(wsx::net::Backend backend) {
    wsx::net::ServerOptions options = test_options(backend);
    options.deflate.emplace();
    // An echo of 1 MiB holds the message in its output.
    options.session.max_buffered_bytes = 8u << 20;
    return options;
}

// Reads from `fd` until `done(bytes)` or 5 s of silence.
std::string read_until(int fd, const std::function<bool(const std::string&)>& done) {
    std::string in;
    char buffer[65536];
    while (!done(in) && wait_readable(fd, 5000ms)) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        in.append(buffer, static_cast<std::size_t>(n));
    }
    return in;
}

std::string head_of(int fd, std::string& rest) {
    std::string in = read_until(
        fd, [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
    const std::size_t end = in.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    rest = in.substr(end + 4);
    return in.substr(0, end + 4);
}

// A masked client frame (mask key 0: RFC 6455 §5.3 allows any key, and it leaves the payload as
// is) with FIN set and RSV1 clear.
std::string client_frame(Opcode opcode, const std::string& payload) {
    std::string frame;
    frame.push_back(static_cast<char>(0x80 | static_cast<int>(opcode)));
    if (payload.size() < 126) {
        frame.push_back(static_cast<char>(0x80 | payload.size()));
    } else {
        REQUIRE(payload.size() <= 0xFFFF);
        frame.push_back(static_cast<char>(0x80 | 126));
        frame.push_back(static_cast<char>(payload.size() >> 8));
        frame.push_back(static_cast<char>(payload.size() & 0xFF));
    }
    frame.append(4, '\0');
    return frame + payload;
}

struct ServerFrame {
    bool complete = false;
    std::uint8_t first = 0;
    std::size_t wire_size = 0;
};

// The header of the server's first frame in `in` (servers never mask, RFC 6455 §5.1).
ServerFrame first_frame(const std::string& in) {
    ServerFrame frame;
    if (in.size() < 2) return frame;
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(in[i]); };
    std::size_t header = 2;
    std::uint64_t length = byte(1) & 0x7F;
    if (length == 126) {
        if (in.size() < 4) return frame;
        header = 4;
        length = (std::uint64_t{byte(2)} << 8) | byte(3);
    } else if (length == 127) {
        if (in.size() < 10) return frame;
        header = 10;
        length = 0;
        for (std::size_t i = 2; i < 10; ++i)
            length = (length << 8) | byte(i);
    }
    frame.first = byte(0);
    frame.wire_size = header + static_cast<std::size_t>(length);
    frame.complete = in.size() >= frame.wire_size;
    return frame;
}

// A one-connection raw server on its own thread: reads the request head and answers with what
// `script` returns, then waits for the client to end TCP.
class ScriptedServer {
  public:
    using Script = std::function<std::string(const std::string& request)>;

    explicit ScriptedServer(Script script) : script_(std::move(script)) {
        const SysResult<int> listening = wsx::net::listen_tcp(SocketAddress::loopback_v4(0));
        REQUIRE(listening.ok());
        listener_ = listening.value;
        port_ = SocketAddress::local_of(listener_).value.port();
        thread_ = std::thread([this] { serve(); });
    }
    ~ScriptedServer() {
        thread_.join();
        static_cast<void>(wsx::net::close_fd(listener_));
    }
    ScriptedServer(const ScriptedServer&) = delete;
    ScriptedServer& operator=(const ScriptedServer&) = delete;

    std::uint16_t port() const noexcept { return port_; }

  private:
    void serve() {
        if (!wait_readable(listener_, 5000ms)) return;
        const int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) return;
        std::string rest;
        const std::string request = head_of(fd, rest);
        static_cast<void>(send_all(fd, bytes_of(script_(request))));
        static_cast<void>(read_until_eof(fd, 5000ms));
        ::close(fd);
    }

    Script script_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

// A correct 101 for `request`, carrying `extensions` as Sec-WebSocket-Extensions.
std::string accept_with(const std::string& request, const std::string& extensions) {
    const std::string name = "\r\nSec-WebSocket-Key: ";
    const std::size_t start = request.find(name);
    if (start == std::string::npos) return "HTTP/1.1 400 Bad Request\r\n\r\n";
    const std::size_t from = start + name.size();
    const std::string key = request.substr(from, request.find("\r\n", from) - from);
    return wsx::proto::write_accept_response(key, {}, extensions);
}

std::vector<std::uint8_t> pattern(std::size_t size, unsigned seed) {
    std::vector<std::uint8_t> bytes(size);
    // Some repetition (compressible) with enough variety to exercise the back-references.
    for (std::size_t i = 0; i < size; ++i)
        bytes[i] = static_cast<std::uint8_t>((i / 7 + seed) % 251 ^ (i % 13));
    return bytes;
}

}  // namespace

TEST_CASE_TEMPLATE("wsx client and server agree on permessage-deflate and echo 0 B..1 MiB exactly",
                   B, WSX_NET_TEST_BACKENDS) {
    struct Variant {
        const char* name;
        wsx::proto::DeflateOptions client;
        wsx::proto::DeflateOptions server;
    };
    wsx::proto::DeflateOptions no_takeover;
    no_takeover.server_no_context_takeover = true;
    no_takeover.client_no_context_takeover = true;
    wsx::proto::DeflateOptions small_windows;
    small_windows.server_max_window_bits = 9;
    small_windows.client_max_window_bits = 8;
    const std::vector<Variant> variants = {
        {"defaults", {}, {}},
        {"no context takeover asked by the client", no_takeover, {}},
        {"small windows asked by the client", small_windows, {}},
        {"server limits the client's window", {}, small_windows},
    };
    for (const Variant& variant : variants) {
        CAPTURE(variant.name);
        EchoRecorder echo;
        wsx::net::ServerOptions server_options = deflate_server_options(B::value);
        server_options.deflate = variant.server;
        TestServer server(server_options, echo);
        auto reactor = make_reactor(B::value);
        Recorder app;
        Failures failures;
        ClientOptions options = quick_options();
        options.session.max_buffered_bytes = 8u << 20;
        Client client(*reactor, options);
        client.connect({.url = local_url(server.port()), .deflate = variant.client}, app,
                       failures.callback());
        REQUIRE(run_until(*reactor, [&] { return app.opened == 1 || failures.calls > 0; }));
        REQUIRE_MESSAGE(failures.calls == 0, failures.last.message());
        REQUIRE(app.session != nullptr);
        const wsx::proto::DeflateParams* params = app.session->deflate_params();
        REQUIRE(params != nullptr);
        CHECK(params->server_no_context_takeover == variant.client.server_no_context_takeover);
        CHECK(params->client_no_context_takeover == variant.client.client_no_context_takeover);
        CHECK(params->server_max_window_bits == std::min(variant.client.server_max_window_bits,
                                                         variant.server.server_max_window_bits));
        CHECK(params->client_max_window_bits == std::min(variant.client.client_max_window_bits,
                                                         variant.server.client_max_window_bits));

        const std::vector<std::size_t> sizes = {0, 1, 63, 64, 125, 126, 65535, 65536, 1 << 20};
        std::vector<std::pair<Opcode, std::string>> sent;
        for (const std::size_t size : sizes) {
            std::string text(size, 'x');
            for (std::size_t i = 0; i < size; ++i)
                text[i] = static_cast<char>('a' + (i / 5) % 26);
            REQUIRE(app.session->send_text(text) == SendStatus::ok);
            sent.emplace_back(Opcode::text, text);
            const std::vector<std::uint8_t> binary = pattern(size, static_cast<unsigned>(size));
            REQUIRE(app.session->send_binary(binary) == SendStatus::ok);
            sent.emplace_back(Opcode::binary, std::string(binary.begin(), binary.end()));
        }
        REQUIRE(run_until(
            *reactor, [&] { return app.messages.size() == sent.size(); }, 20000ms));
        for (std::size_t i = 0; i < sent.size(); ++i) {
            CAPTURE(i);
            CHECK(app.messages[i].first == sent[i].first);
            CHECK(app.messages[i].second == sent[i].second);
        }
        REQUIRE(app.session->close(1000, "done") == SendStatus::ok);
        REQUIRE(run_until(*reactor, [&] { return app.closed == 1; }));
        CHECK(app.clean);
        CHECK(app.close_code == 1000);
    }
}

TEST_CASE_TEMPLATE("a server with permessage-deflate compresses its echo (RSV1 set, fewer bytes)",
                   B, WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    TestServer server(deflate_server_options(B::value), echo);
    const int fd = connect_loopback(server.port());
    REQUIRE(fd >= 0);
    REQUIRE(send_all(fd, bytes_of(upgrade_request(server.port(), "/",
                                                  "Sec-WebSocket-Extensions: permessage-deflate; "
                                                  "client_max_window_bits\r\n"))));
    std::string rest;
    const std::string head = head_of(fd, rest);
    CHECK(head.rfind("HTTP/1.1 101 ", 0) == 0);
    CHECK(head.find("\r\nSec-WebSocket-Extensions: permessage-deflate") != std::string::npos);

    // Sent uncompressed (RSV1 clear is allowed, RFC 7692 §6); echoed compressed (§6.1).
    const std::string message(60000, 'z');
    REQUIRE(send_all(fd, bytes_of(client_frame(Opcode::text, message))));
    const std::string in =
        rest + read_until(fd, [](const std::string& s) { return first_frame(s).complete; });
    const ServerFrame frame = first_frame(in);
    REQUIRE(frame.complete);
    CHECK((frame.first & 0x0F) == static_cast<int>(Opcode::text));
    CHECK((frame.first & 0x80) != 0);  // FIN
    CHECK((frame.first & 0x40) != 0);  // RSV1: compressed
    CHECK(frame.wire_size < message.size() / 20);
    ::close(fd);
}

TEST_CASE_TEMPLATE("a server without permessage-deflate declines the offer: no extension in 101", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    TestServer server(test_options(B::value), echo);
    const int fd = connect_loopback(server.port());
    REQUIRE(fd >= 0);
    REQUIRE(
        send_all(fd, bytes_of(upgrade_request(
                         server.port(), "/", "Sec-WebSocket-Extensions: permessage-deflate\r\n"))));
    std::string rest;
    const std::string head = head_of(fd, rest);
    CHECK(head.rfind("HTTP/1.1 101 ", 0) == 0);
    CHECK(head.find("Sec-WebSocket-Extensions") == std::string::npos);
    const std::string message(1000, 'z');
    REQUIRE(send_all(fd, bytes_of(client_frame(Opcode::text, message))));
    const std::string in =
        rest + read_until(fd, [](const std::string& s) { return first_frame(s).complete; });
    const ServerFrame frame = first_frame(in);
    REQUIRE(frame.complete);
    CHECK((frame.first & 0x40) == 0);  // RSV1 clear: sent as is
    CHECK(in.substr(4, message.size()) == message);
    ::close(fd);

    // The wsx client then runs its session without compression.
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = local_url(server.port()), .deflate = wsx::proto::DeflateOptions{}}, app,
                   failures.callback());
    REQUIRE(run_until(*reactor, [&] { return app.opened == 1 || failures.calls > 0; }));
    REQUIRE_MESSAGE(failures.calls == 0, failures.last.message());
    CHECK(app.session->deflate_params() == nullptr);
    REQUIRE(app.session->send_text(message) == SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.messages.size() == 1; }));
    CHECK(app.messages[0].second == message);
    REQUIRE(app.session->close() == SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.closed == 1; }));
}

TEST_CASE_TEMPLATE("a malformed Sec-WebSocket-Extensions header is declined, not refused", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    TestServer server(deflate_server_options(B::value), echo);
    const int fd = connect_loopback(server.port());
    REQUIRE(fd >= 0);
    REQUIRE(send_all(
        fd, bytes_of(upgrade_request(server.port(), "/",
                                     "Sec-WebSocket-Extensions: permessage-deflate;;=\r\n"))));
    std::string rest;
    const std::string head = head_of(fd, rest);
    CHECK(head.rfind("HTTP/1.1 101 ", 0) == 0);
    CHECK(head.find("Sec-WebSocket-Extensions") == std::string::npos);
    ::close(fd);
}

TEST_CASE_TEMPLATE("client fails a server that answers an extension it did not offer", B,
                   WSX_NET_TEST_BACKENDS) {
    ScriptedServer peer(
        [](const std::string& request) { return accept_with(request, "permessage-deflate"); });
    auto reactor = make_reactor(B::value);
    Recorder app;
    Failures failures;
    Client client(*reactor, quick_options());
    client.connect({.url = local_url(peer.port())}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(failures.last.code == ConnectErrc::bad_response);
    CHECK(failures.last.handshake_error == Error::http_unrequested_extension);
    CHECK(app.opened == 0);
}

TEST_CASE_TEMPLATE("client fails a permessage-deflate answer that breaks its offer", B,
                   WSX_NET_TEST_BACKENDS) {
    // Each answer is one RFC 7692 §5.1 reason to fail the handshake.
    const std::vector<std::string> answers = {
        "permessage-deflate; server_max_window_bits=16",  // out of range (§7.1.2.1)
        "permessage-deflate; unknown_parameter",          // unknown parameter (§5.1)
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate, permessage-deflate",  // two answers to one offer
    };
    for (const std::string& answer : answers) {
        CAPTURE(answer);
        ScriptedServer peer([&](const std::string& request) {
            CHECK(request.find("\r\nSec-WebSocket-Extensions: permessage-deflate") !=
                  std::string::npos);
            return accept_with(request, answer);
        });
        auto reactor = make_reactor(B::value);
        Recorder app;
        Failures failures;
        ClientOptions options = quick_options();
        options.deflate.emplace();
        Client client(*reactor, options);
        client.connect({.url = local_url(peer.port())}, app, failures.callback());
        REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
        CHECK(failures.last.code == ConnectErrc::bad_response);
        CHECK(failures.last.handshake_error == Error::http_bad_extension_response);
        CHECK(failures.last.message().find("permessage-deflate answer") != std::string::npos);
        CHECK(app.opened == 0);
    }
}
