// wss:// end to end over loopback, on every reactor backend: the wsx client and server through
// TLS (large messages, partial writes), SNI, certificate reload under open connections,
// verification failures reported precisely, and bad input on the TLS port (plain HTTP, garbage,
// a stalled handshake) answered with a clean close while others are still served.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "client_test_support.hpp"
#include "net/client.hpp"
#include "net/server.hpp"
#include "net/tls.hpp"
#include "server_test_support.hpp"
#include "tls_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::Client;
using wsx::net::ClientOptions;
using wsx::net::ConnectErrc;
using wsx::net::ServerOptions;
using wsx::net::TlsState;
using wsx::net::TlsStream;
using wsx::net::WsSession;
using wsx::net::testing::bytes_of;
using wsx::net::testing::connect_loopback;
using wsx::net::testing::EchoRecorder;
using wsx::net::testing::eventually;
using wsx::net::testing::Failures;
using wsx::net::testing::make_reactor;
using wsx::net::testing::peer_common_name;
using wsx::net::testing::quick_options;
using wsx::net::testing::read_until_eof;
using wsx::net::testing::Recorder;
using wsx::net::testing::run_until;
using wsx::net::testing::send_all;
using wsx::net::testing::test_options;
using wsx::net::testing::TestCertificates;
using wsx::net::testing::TestServer;
using wsx::net::testing::wait_readable;
using wsx::proto::Opcode;

namespace {

// Echoes, and remembers what TLS each session ran on and every handshake failure reported.
class TlsEcho : public EchoRecorder {
  public:
    void on_open(WsSession& session) override {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            versions_.push_back(session.tls() != nullptr
                                    ? std::string(session.tls()->version()) + " " +
                                          std::string(session.tls()->alpn())
                                    : "plain");
        }
        EchoRecorder::on_open(session);
    }
    void failed(std::string_view reason) {
        const std::lock_guard<std::mutex> lock(mutex_);
        failures_.emplace_back(reason);
    }
    std::vector<std::string> versions() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return versions_;
    }
    std::vector<std::string> failures() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return failures_;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::string> versions_;
    std::vector<std::string> failures_;
};

ServerOptions tls_server_options(wsx::net::Backend backend, const TestCertificates& certs,
                                 TlsEcho& echo, const std::string& name = "server") {
    ServerOptions options = test_options(backend);
    options.tls = certs.server_options(name);
    options.tls->on_handshake_error = [&echo](std::string_view, std::string_view reason) {
        echo.failed(reason);
    };
    options.session.max_buffered_bytes = 16u << 20;  // echoes of a few MiB
    return options;
}

ClientOptions tls_client_options(const TestCertificates& certs, const std::string& ca = "ca") {
    ClientOptions options = quick_options();
    options.tls = certs.client_options(ca);
    return options;
}

std::string wss_url(std::uint16_t port, const std::string& host = "127.0.0.1") {
    return "wss://" + host + ":" + std::to_string(port) + "/";
}

// A TLS client driven by hand over a blocking socket: the handshake only, for what the wsx
// client does not let a test choose (the SNI name) or to look at the certificate.
struct RawTlsClient {
    int fd;
    std::shared_ptr<const wsx::net::TlsContext> context;
    std::unique_ptr<TlsStream> stream;

    RawTlsClient(std::uint16_t port, const TestCertificates& certs, const std::string& host) {
        fd = connect_loopback(port);
        REQUIRE(fd >= 0);
        wsx::net::TlsContextResult made = wsx::net::make_client_context(certs.client_options());
        REQUIRE(made.ok());
        context = made.context;
        stream = TlsStream::client(context, host);
    }
    ~RawTlsClient() { ::close(fd); }

    bool handshake() {
        std::vector<std::uint8_t> buffer(65536);
        for (;;) {
            if (stream->wants_write()) {
                if (!send_all(fd, stream->pending_output())) return false;
                stream->consume_output(stream->buffered());
            }
            if (stream->state() != TlsState::handshaking) return stream->handshake_done();
            if (!wait_readable(fd, 5000ms)) return false;
            const ssize_t n = ::read(fd, buffer.data(), buffer.size());
            if (n <= 0) return false;
            static_cast<void>(stream->receive(buffer, static_cast<std::size_t>(n)));
        }
    }

    // After the handshake: sends `request`, returns the plaintext until the server's
    // close_notify or end of TCP.
    std::string exchange(const std::string& request) {
        REQUIRE(stream->send(bytes_of(request)) == request.size());
        std::string answer;
        std::vector<std::uint8_t> buffer(65536);
        for (;;) {
            if (stream->wants_write()) {
                if (!send_all(fd, stream->pending_output())) break;
                stream->consume_output(stream->buffered());
            }
            if (stream->state() != TlsState::open || !wait_readable(fd, 5000ms)) break;
            const ssize_t n = ::read(fd, buffer.data(), buffer.size());
            if (n <= 0) break;
            TlsStream::Received got = stream->receive(buffer, static_cast<std::size_t>(n));
            answer.append(reinterpret_cast<const char*>(buffer.data()), got.plaintext);
            while (got.more) {
                got = stream->receive(buffer, 0);
                answer.append(reinterpret_cast<const char*>(buffer.data()), got.plaintext);
            }
        }
        return answer;
    }
};

// Opens one wss session to `port`; the session is in app.session afterwards.
void open_session(wsx::net::Reactor& reactor, Client& client, Recorder& app, std::uint16_t port) {
    Failures failures;
    client.connect({.url = wss_url(port)}, app, failures.callback());
    REQUIRE(run_until(reactor, [&] { return app.opened == 1 || failures.calls > 0; }));
    REQUIRE_MESSAGE(app.opened == 1, failures.last.message());
}

bool echoes(wsx::net::Reactor& reactor, Recorder& app, const std::string& text) {
    const std::size_t before = app.messages.size();
    if (app.session == nullptr || app.session->send_text(text) != wsx::net::SendStatus::ok) {
        return false;
    }
    if (!run_until(
            reactor, [&] { return app.messages.size() > before; }, 10000ms))
        return false;
    return app.messages.back().second == text;
}

}  // namespace

TEST_CASE_TEMPLATE("the wsx client and server echo over wss:// from 0 B to 3 MiB", B,
                   WSX_NET_TEST_BACKENDS) {
    TestCertificates certs;
    TlsEcho echo;
    TestServer server(tls_server_options(B::value, certs, echo), echo);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Client client(*reactor, tls_client_options(certs));
    open_session(*reactor, client, app, server.port());
    REQUIRE(app.session->tls() != nullptr);
    CHECK(app.session->tls()->version() == "TLSv1.3");
    CHECK(app.session->tls()->alpn() == "http/1.1");

    // Larger than any socket buffer: writes stop short on both sides and resume.
    const std::size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 1 << 20, 3 << 20};
    for (const std::size_t size : sizes) {
        std::string text(size, '\0');
        for (std::size_t i = 0; i < size; ++i)
            text[i] = static_cast<char>('a' + (i * 7) % 26);
        CHECK_MESSAGE(echoes(*reactor, app, text), "text echo of " << size << " bytes");
        std::vector<std::uint8_t> binary(size);
        for (std::size_t i = 0; i < size; ++i)
            binary[i] = static_cast<std::uint8_t>(i * 131 + 7);
        const std::size_t before = app.messages.size();
        REQUIRE(app.session->send_binary(binary) == wsx::net::SendStatus::ok);
        REQUIRE(run_until(
            *reactor, [&] { return app.messages.size() > before; }, 10000ms));
        CHECK(app.messages.back().first == Opcode::binary);
        CHECK((app.messages.back().second == std::string(binary.begin(), binary.end())));
    }
    REQUIRE(app.session->ping(bytes_of("tls ping")) == wsx::net::SendStatus::ok);
    REQUIRE(app.session->close(4001, "done") == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.closed == 1; }));
    CHECK(app.clean);
    CHECK(app.close_code == 4001);
    REQUIRE(eventually([&] { return echo.closed.load() == 1; }));
    CHECK(echo.closes()[0].code == 4001);
    CHECK(echo.closes()[0].clean);
    CHECK(echo.versions() == std::vector<std::string>{"TLSv1.3 http/1.1"});
    CHECK(echo.failures().empty());
}

TEST_CASE_TEMPLATE("SNI picks the certificate for the host name over the network", B,
                   WSX_NET_TEST_BACKENDS) {
    TestCertificates certs;
    TlsEcho echo;
    ServerOptions options = tls_server_options(B::value, certs, echo);
    options.tls->sni.push_back({"other.test", certs.path("other.pem"), certs.path("other.key")});
    TestServer server(options, echo);
    RawTlsClient other(server.port(), certs, "other.test");
    REQUIRE(other.handshake());
    CHECK(peer_common_name(*other.stream) == "wsx other.test");
    RawTlsClient local(server.port(), certs, "localhost");
    REQUIRE(local.handshake());
    CHECK(peer_common_name(*local.stream) == "wsx test server");
}

TEST_CASE_TEMPLATE("reload_tls serves the new certificate to new connections and keeps open ones",
                   B, WSX_NET_TEST_BACKENDS) {
    TestCertificates certs;
    namespace fs = std::filesystem;
    fs::copy_file(certs.path("server.pem"), certs.path("live.pem"));
    fs::copy_file(certs.path("server.key"), certs.path("live.key"));
    TlsEcho echo;
    TestServer server(tls_server_options(B::value, certs, echo, "live"), echo);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Client client(*reactor, tls_client_options(certs));
    open_session(*reactor, client, app, server.port());
    CHECK(echoes(*reactor, app, "before the reload"));

    fs::copy_file(certs.path("server2.pem"), certs.path("live.pem"),
                  fs::copy_options::overwrite_existing);
    fs::copy_file(certs.path("server2.key"), certs.path("live.key"),
                  fs::copy_options::overwrite_existing);
    std::string error;
    REQUIRE_MESSAGE(server.server().reload_tls(&error), error);

    CHECK(echoes(*reactor, app, "after the reload, same connection"));
    RawTlsClient fresh(server.port(), certs, "localhost");
    REQUIRE(fresh.handshake());
    CHECK(peer_common_name(*fresh.stream) == "wsx reloaded server");

    // A broken file keeps the certificates in use, and says why.
    fs::copy_file(certs.path("other.key"), certs.path("live.key"),
                  fs::copy_options::overwrite_existing);
    CHECK_FALSE(server.server().reload_tls(&error));
    CHECK(error.find(certs.path("live.key")) != std::string::npos);
    RawTlsClient after(server.port(), certs, "localhost");
    REQUIRE(after.handshake());
    CHECK(peer_common_name(*after.stream) == "wsx reloaded server");
    CHECK(echoes(*reactor, app, "still open"));
    CHECK(echo.closed.load() == 0);
}

TEST_CASE_TEMPLATE("a server certificate from an unknown CA fails the connect with the reason", B,
                   WSX_NET_TEST_BACKENDS) {
    TestCertificates certs;
    TlsEcho echo;
    TestServer server(tls_server_options(B::value, certs, echo), echo);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Client client(*reactor, tls_client_options(certs, "ca2"));
    Failures failures;
    client.connect({.url = wss_url(server.port())}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(app.opened == 0);
    CHECK(failures.last.code == ConnectErrc::tls_verify_failed);
    CHECK(failures.last.detail ==
          "certificate verify failed: unable to get local issuer certificate");
    CHECK(failures.last.message().find("cannot trust 127.0.0.1:") == 0);
    // The server heard the client's alert, logged it, and goes on.
    REQUIRE(eventually([&] { return !echo.failures().empty(); }));
    CHECK(echo.failures()[0] == "tlsv1 alert unknown ca");
}

TEST_CASE_TEMPLATE("a certificate for another host fails the connect with hostname mismatch", B,
                   WSX_NET_TEST_BACKENDS) {
    TestCertificates certs;
    TlsEcho echo;
    // The default certificate names other.test only.
    TestServer server(tls_server_options(B::value, certs, echo, "other"), echo);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Client client(*reactor, tls_client_options(certs));
    Failures failures;
    client.connect({.url = wss_url(server.port(), "localhost")}, app, failures.callback());
    client.connect({.url = wss_url(server.port())}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 2; }));
    CHECK(app.opened == 0);
    CHECK(failures.last.code == ConnectErrc::tls_verify_failed);
    // One of the two names each: which finishes first is up to the scheduler.
    CHECK((failures.last.detail == "certificate verify failed: hostname mismatch" ||
           failures.last.detail == "certificate verify failed: IP address mismatch"));
}

TEST_CASE_TEMPLATE("an insecure client connects whatever the certificate", B,
                   WSX_NET_TEST_BACKENDS) {
    TestCertificates certs;
    TlsEcho echo;
    TestServer server(tls_server_options(B::value, certs, echo, "other"), echo);
    auto reactor = make_reactor(B::value);
    ClientOptions options = quick_options();
    options.tls.insecure = true;
    Recorder app;
    Client client(*reactor, options);
    open_session(*reactor, client, app, server.port());
    CHECK(echoes(*reactor, app, "unverified"));
}

TEST_CASE_TEMPLATE("a wss client on a plain port fails with tls_failed", B, WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    TestServer server(test_options(B::value), echo);
    auto reactor = make_reactor(B::value);
    ClientOptions options = quick_options();
    options.tls.insecure = true;
    Recorder app;
    Client client(*reactor, options);
    Failures failures;
    client.connect({.url = wss_url(server.port())}, app, failures.callback());
    REQUIRE(run_until(*reactor, [&] { return failures.calls == 1; }));
    CHECK(failures.last.code == ConnectErrc::tls_failed);
    CHECK_FALSE(failures.last.detail.empty());
    CHECK(echo.opened.load() == 0);
}

TEST_CASE_TEMPLATE("bad input on the TLS port is cut off and logged; others are still served", B,
                   WSX_NET_TEST_BACKENDS) {
    TestCertificates certs;
    TlsEcho echo;
    ServerOptions options = tls_server_options(B::value, certs, echo);
    options.handshake_timeout = 400ms;
    TestServer server(options, echo);

    // A stalled client: half a ClientHello, then nothing.
    const int stalled = connect_loopback(server.port());
    {
        const wsx::net::TlsContextResult context =
            wsx::net::make_client_context(certs.client_options());
        REQUIRE(context.ok());
        const std::unique_ptr<TlsStream> hello_source = TlsStream::client(context.context, "x");
        const std::span<const std::uint8_t> hello = hello_source->pending_output();
        REQUIRE(send_all(stalled, hello.first(hello.size() / 2)));
    }
    // Plain HTTP on the TLS port.
    const int plain = connect_loopback(server.port());
    REQUIRE(send_all(plain, bytes_of("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")));
    // A handshake record of noise.
    const int garbage = connect_loopback(server.port());
    std::vector<std::uint8_t> noise = {0x16, 0x03, 0x01, 0x01, 0x00};
    for (int i = 0; i < 256; ++i)
        noise.push_back(static_cast<std::uint8_t>(i * 91 + 3));
    REQUIRE(send_all(garbage, noise));

    // Each ends with a TLS alert at most, then the end of the stream.
    for (const int fd : {plain, garbage}) {
        const std::string answer = read_until_eof(fd, 3000ms);
        CHECK(answer.size() < 64);
        CHECK(answer.find("HTTP") == std::string::npos);
        ::close(fd);
    }
    CHECK(read_until_eof(stalled, 3000ms).empty());
    ::close(stalled);

    // Meanwhile a real client is served.
    auto reactor = make_reactor(B::value);
    Recorder app;
    Client client(*reactor, tls_client_options(certs));
    open_session(*reactor, client, app, server.port());
    CHECK(echoes(*reactor, app, "still serving"));

    REQUIRE(eventually([&] { return echo.failures().size() >= 3; }));
    const std::vector<std::string> failures = echo.failures();
    const auto logged = [&](const std::string& reason) {
        return std::find(failures.begin(), failures.end(), reason) != failures.end();
    };
    CHECK(logged("a plain HTTP request on the TLS port"));
    CHECK(logged("the TLS handshake did not complete within the handshake timeout"));
    CHECK(failures.size() == 3);
}

TEST_CASE_TEMPLATE("plain HTTP answers and static files go out through TLS too", B,
                   WSX_NET_TEST_BACKENDS) {
    TestCertificates certs;
    TlsEcho echo;
    ServerOptions options = tls_server_options(B::value, certs, echo);
    std::string content(300 * 1024, '\0');
    for (std::size_t i = 0; i < content.size(); ++i)
        content[i] = static_cast<char>('A' + i % 23);
    {
        std::filesystem::create_directory(certs.path("www"));
        std::ofstream file(certs.path("www/big.txt"), std::ios::binary);
        file << content;
    }
    options.static_root = certs.path("www");
    TestServer server(options, echo);

    RawTlsClient health(server.port(), certs, "localhost");
    REQUIRE(health.handshake());
    const std::string ok = health.exchange("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    CHECK(wsx::net::testing::status_line(ok) == "HTTP/1.1 200 OK");
    CHECK(wsx::net::testing::body_of(ok) == "ok\n");
    CHECK(health.stream->state() == TlsState::closed);  // close_notify before TCP's end

    RawTlsClient file(server.port(), certs, "localhost");
    REQUIRE(file.handshake());
    const std::string got = file.exchange("GET /big.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    CHECK(wsx::net::testing::status_line(got) == "HTTP/1.1 200 OK");
    CHECK(wsx::net::testing::body_of(got).size() == content.size());
    CHECK((wsx::net::testing::body_of(got) == content));
    CHECK(echo.failures().empty());
}
