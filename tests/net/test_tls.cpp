// The sans-IO TLS layer through memory: two TlsStreams wired back to back, no sockets.
#include <doctest/doctest.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "net/tls.hpp"
#include "tls_test_support.hpp"

namespace {

using wsx::net::TlsClientOptions;
using wsx::net::TlsContextResult;
using wsx::net::TlsServerOptions;
using wsx::net::TlsState;
using wsx::net::TlsStream;
using wsx::net::testing::peer_common_name;
using wsx::net::testing::TestCertificates;

std::span<const std::uint8_t> bytes_of(const std::string& text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// Moves what `from` wants written into `to`, `chunk` bytes per receive() (0: all at once), each
// in a buffer just that large (the tightest room), and appends the plaintext `to` produced to
// `sink`. Returns the ciphertext bytes moved.
std::size_t transfer(TlsStream& from, TlsStream& to, std::string& sink, std::size_t chunk = 0) {
    std::vector<std::uint8_t> wire(from.pending_output().begin(), from.pending_output().end());
    from.consume_output(wire.size());
    const std::size_t step = chunk == 0 ? std::max<std::size_t>(wire.size(), 1) : chunk;
    for (std::size_t at = 0; at < wire.size(); at += step) {
        const std::size_t n = std::min(step, wire.size() - at);
        std::vector<std::uint8_t> buffer(wire.begin() + static_cast<std::ptrdiff_t>(at),
                                         wire.begin() + static_cast<std::ptrdiff_t>(at + n));
        TlsStream::Received got = to.receive(buffer, n);
        sink.append(reinterpret_cast<const char*>(buffer.data()), got.plaintext);
        while (got.more) {
            got = to.receive(buffer, 0);
            REQUIRE(got.plaintext > 0);
            sink.append(reinterpret_cast<const char*>(buffer.data()), got.plaintext);
        }
        CHECK_FALSE(to.has_pending());
    }
    return wire.size();
}

// Runs the handshake to its end (or a failure) in memory.
void handshake(TlsStream& client, TlsStream& server, std::size_t chunk = 0) {
    std::string ignored;
    for (int round = 0; round < 10; ++round) {
        const std::size_t moved =
            transfer(client, server, ignored, chunk) + transfer(server, client, ignored, chunk);
        if (moved == 0) break;
    }
    CHECK(ignored.empty());
}

struct Pair {
    std::shared_ptr<const wsx::net::TlsContext> server_context;
    std::shared_ptr<const wsx::net::TlsContext> client_context;
    std::unique_ptr<TlsStream> server;
    std::unique_ptr<TlsStream> client;

    Pair(const TlsServerOptions& server_options, const TlsClientOptions& client_options,
         const std::string& host = "localhost") {
        TlsContextResult s = wsx::net::make_server_context(server_options);
        REQUIRE_MESSAGE(s.ok(), s.error);
        TlsContextResult c = wsx::net::make_client_context(client_options);
        REQUIRE_MESSAGE(c.ok(), c.error);
        server_context = s.context;
        client_context = c.context;
        server = TlsStream::server(server_context);
        client = TlsStream::client(client_context, host);
    }
};

}  // namespace

TEST_CASE("a client and a server complete a TLS 1.3 handshake in memory with ALPN http/1.1") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    CHECK(pair.client->state() == TlsState::handshaking);
    CHECK(pair.client->wants_write());  // the ClientHello, at once
    handshake(*pair.client, *pair.server);
    REQUIRE(pair.client->handshake_done());
    REQUIRE(pair.server->handshake_done());
    CHECK(pair.client->version() == "TLSv1.3");
    CHECK(pair.client->alpn() == "http/1.1");
    CHECK(pair.server->alpn() == "http/1.1");
    CHECK(pair.server->server_name() == "localhost");
    CHECK(peer_common_name(*pair.client) == "wsx test server");
}

TEST_CASE("a client limited to TLS 1.2 gets an AEAD cipher suite") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    // A fresh client whose context stops at TLS 1.2.
    TlsContextResult capped = wsx::net::make_client_context(certs.client_options());
    REQUIRE(capped.ok());
    SSL_CTX_set_max_proto_version(capped.context->native(), TLS1_2_VERSION);
    pair.client = TlsStream::client(capped.context, "localhost");
    handshake(*pair.client, *pair.server);
    REQUIRE(pair.server->handshake_done());
    CHECK(pair.server->version() == "TLSv1.2");
    const std::string cipher = SSL_get_cipher_name(pair.server->native_handle());
    CHECK(cipher.find("GCM") + cipher.find("CHACHA20") != 2 * std::string::npos);
}

TEST_CASE("the handshake and application data survive input fed one byte at a time") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    handshake(*pair.client, *pair.server, 1);
    REQUIRE(pair.server->handshake_done());
    const std::string message = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    CHECK(pair.client->send(bytes_of(message)) == message.size());
    std::string received;
    transfer(*pair.client, *pair.server, received, 1);
    CHECK(received == message);
}

TEST_CASE("a 1 MiB message crosses in bounded pieces: send takes only what fits under the limit") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    handshake(*pair.client, *pair.server);
    std::string message(1 << 20, '\0');
    for (std::size_t i = 0; i < message.size(); ++i)
        message[i] = static_cast<char>('a' + i % 26);
    std::string received;
    std::size_t sent = 0;
    int rounds = 0;
    while (sent < message.size()) {
        const std::size_t taken = pair.client->send(bytes_of(message).subspan(sent));
        REQUIRE(taken > 0);
        CHECK(taken <= TlsStream::kOutputLimit);
        // Until the output is taken away, nothing more goes in.
        CHECK(pair.client->send(bytes_of(message).subspan(sent + taken)) == 0);
        CHECK(pair.client->buffered() <= TlsStream::kOutputLimit + 1024);
        sent += taken;
        // Odd-sized reads split records at arbitrary points.
        transfer(*pair.client, *pair.server, received, 4999);
        ++rounds;
    }
    CHECK(rounds >= 16);
    CHECK(received.size() == message.size());
    CHECK((received == message));
}

TEST_CASE("gathered slices become one record stream and arrive in order") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    handshake(*pair.client, *pair.server);
    const std::string a = "\x81\x05", b = "hello", c(40000, 'x');
    const wsx::proto::IoSlice slices[] = {
        {a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
    CHECK(pair.server->send(slices) == a.size() + b.size() + c.size());
    std::string received;
    transfer(*pair.server, *pair.client, received);
    CHECK((received == a + b + c));
}

TEST_CASE("a client refuses a certificate from a CA it does not trust, saying so") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options("ca2"));
    handshake(*pair.client, *pair.server);
    CHECK(pair.client->state() == TlsState::failed);
    CHECK(pair.client->verify_failed());
    CHECK(pair.client->error() ==
          "certificate verify failed: unable to get local issuer certificate");
    // The alert reached the server, which fails too, with the alert's name.
    CHECK(pair.server->state() == TlsState::failed);
    CHECK(pair.server->error() == "tlsv1 alert unknown ca");
}

TEST_CASE("a client refuses a certificate for another host name, saying so") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options(), "example.org");
    handshake(*pair.client, *pair.server);
    CHECK(pair.client->state() == TlsState::failed);
    CHECK(pair.client->verify_failed());
    CHECK(pair.client->error() == "certificate verify failed: hostname mismatch");
}

TEST_CASE("a client checks an IP address literal against the certificate's IP names") {
    TestCertificates certs;
    Pair good(certs.server_options(), certs.client_options(), "127.0.0.1");
    handshake(*good.client, *good.server);
    CHECK(good.client->handshake_done());
    CHECK(good.server->server_name().empty());  // RFC 6066 §3: no IP literal in SNI
    Pair bad(certs.server_options(), certs.client_options(), "127.0.0.2");
    handshake(*bad.client, *bad.server);
    CHECK(bad.client->error() == "certificate verify failed: IP address mismatch");
}

TEST_CASE("an insecure client accepts any certificate") {
    TestCertificates certs;
    TlsClientOptions insecure;
    insecure.insecure = true;
    Pair pair(certs.server_options(), insecure, "example.org");
    handshake(*pair.client, *pair.server);
    CHECK(pair.client->handshake_done());
}

TEST_CASE("SNI picks the certificate for the host name; other names get the default") {
    TestCertificates certs;
    TlsServerOptions server = certs.server_options();
    server.sni.push_back({"Other.Test", certs.path("other.pem"), certs.path("other.key")});
    {
        Pair pair(server, certs.client_options(), "other.test");
        handshake(*pair.client, *pair.server);
        REQUIRE(pair.client->handshake_done());
        CHECK(peer_common_name(*pair.client) == "wsx other.test");
        CHECK(pair.server->server_name() == "other.test");
    }
    {
        Pair pair(server, certs.client_options(), "localhost");
        handshake(*pair.client, *pair.server);
        REQUIRE(pair.client->handshake_done());
        CHECK(peer_common_name(*pair.client) == "wsx test server");
    }
}

TEST_CASE("a plain HTTP request fails a server stream with a precise reason") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    std::vector<std::uint8_t> wire(request.begin(), request.end());
    const TlsStream::Received got = pair.server->receive(wire, wire.size());
    CHECK(got.plaintext == 0);
    CHECK(got.state == TlsState::failed);
    CHECK(pair.server->error() == "a plain HTTP request on the TLS port");
    // Input after the failure is ignored.
    CHECK(pair.server->receive(wire, wire.size()).state == TlsState::failed);
}

TEST_CASE("garbage instead of a ClientHello fails the server stream and queues an alert") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    // A handshake record header announcing a 200-byte record, then noise.
    std::vector<std::uint8_t> wire = {0x16, 0x03, 0x01, 0x00, 0xc8};
    for (int i = 0; i < 200; ++i)
        wire.push_back(static_cast<std::uint8_t>(i * 37));
    CHECK(pair.server->receive(wire, wire.size()).state == TlsState::failed);
    CHECK_FALSE(pair.server->error().empty());
    CHECK(pair.server->wants_write());  // the fatal alert (RFC 8446 §6.2)
    CHECK(pair.server->send(bytes_of("late")) == 0);
}

TEST_CASE("a truncated handshake just waits for more input") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    std::vector<std::uint8_t> hello(pair.client->pending_output().begin(),
                                    pair.client->pending_output().end());
    CHECK(pair.server->receive(hello, hello.size() / 2).state == TlsState::handshaking);
    CHECK_FALSE(pair.server->wants_write());
}

TEST_CASE("close_notify ends the peer's stream as closed, after the data before it") {
    TestCertificates certs;
    Pair pair(certs.server_options(), certs.client_options());
    handshake(*pair.client, *pair.server);
    CHECK(pair.client->send(bytes_of("last words")) == 10);
    pair.client->close();
    CHECK(pair.client->close_sent());
    CHECK(pair.client->send(bytes_of("too late")) == 0);
    std::string received;
    transfer(*pair.client, *pair.server, received);
    CHECK(received == "last words");
    CHECK(pair.server->state() == TlsState::closed);
}

TEST_CASE("loading certificates reports the file and OpenSSL's reason") {
    TestCertificates certs;
    TlsServerOptions missing = certs.server_options();
    missing.cert_file = certs.path("nothing.pem");
    TlsContextResult result = wsx::net::make_server_context(missing);
    CHECK_FALSE(result.ok());
    CHECK(result.error.find("cannot load the certificate chain " + missing.cert_file) == 0);

    TlsServerOptions mismatched = certs.server_options();
    mismatched.key_file = certs.path("other.key");
    result = wsx::net::make_server_context(mismatched);
    CHECK_FALSE(result.ok());
    CHECK_MESSAGE(result.error.find(mismatched.key_file) != std::string::npos, result.error);
    CHECK_MESSAGE(result.error.find("mismatch") != std::string::npos, result.error);

    CHECK_FALSE(wsx::net::make_server_context({}).ok());
    TlsClientOptions bad_ca;
    bad_ca.ca_file = certs.path("nothing.pem");
    CHECK(wsx::net::make_client_context(bad_ca).error.find("cannot load CA certificates") == 0);
}
