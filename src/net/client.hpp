// The WebSocket client: ws:// or wss:// URL → name resolution (off the reactor thread) →
// non-blocking TCP connect → for wss://, the TLS handshake (certificate and host name verified) →
// RFC 6455 §4.1 opening handshake → a WsSession in client role, driven by the same SessionHandler
// interface as the server's sessions.
//
//   Client client(reactor);                                   // one per reactor thread
//   client.connect({.url = "ws://127.0.0.1:8080/chat", .protocols = {"chat"}}, handler,
//                  [](const ConnectError& e) { std::puts(e.message().c_str()); });
//   reactor.run();
//
// Outcome: each connect() ends in exactly one of handler.on_open (and later on_close, see
// ws_session.hpp) or on_failure, always called from the reactor, never inside connect(); unless
// cancel() or the Client's destruction ends the attempt first, silently.
//
// Threading: a Client and its sessions belong to the thread running its reactor; call it there.
// Lookups run on a Resolver's threads (the Client starts its own unless given one).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/reactor.hpp"
#include "net/resolver.hpp"
#include "net/tls.hpp"
#include "net/ws_session.hpp"
#include "proto/deflate.hpp"
#include "proto/error.hpp"
#include "proto/handshake.hpp"

namespace wsx::net {

// Settings shared by every connection of one Client.
struct ClientOptions {
    // Limits (→ 1009), heartbeat, timeouts and backpressure of every session (ws_session.hpp).
    SessionOptions session{};
    // From the start of each TCP connect to its completion, per address tried.
    std::chrono::milliseconds connect_timeout{10'000};
    // From TCP connected to a complete 101 response.
    std::chrono::milliseconds handshake_timeout{10'000};
    // Size limits of the server's response head (an oversized one fails the handshake).
    proto::HttpLimits response_limits{};
    // The sessions' shared read buffer.
    std::size_t read_buffer_size = SessionHost::kDefaultReadBufferSize;
    // permessage-deflate (RFC 7692) offered on every connection; nullopt: no offer. A request's
    // own `deflate` takes precedence.
    std::optional<proto::DeflateOptions> deflate{};
    // wss://: trust store (system, or ca_file) and verification. The context is made at the
    // first wss:// connect and shared by every later one.
    TlsClientOptions tls{};
};

// One connection to open.
struct ConnectRequest {
    // Members have initializers so that designated initialization may leave any of them out.
    std::string url{};                     // ws:// or wss://host[:port][/path][?query]
    std::string origin{};                  // sent as Origin when not empty (RFC 6455 §4.1 item 8)
    std::vector<std::string> protocols{};  // Sec-WebSocket-Protocol offers, most preferred first
    // Extra request headers (cookies, authorization ...), written as given: valid field syntax,
    // no CR or LF, and none of the handshake's own headers.
    std::vector<std::pair<std::string, std::string>> headers{};
    // permessage-deflate to offer on this connection; nullopt: ClientOptions::deflate applies.
    // An answer that breaks the offer fails the connect (bad_response, with
    // http_bad_extension_response); a server that declines leaves the session uncompressed.
    std::optional<proto::DeflateOptions> deflate{};
};

enum class ConnectErrc : std::uint8_t {
    invalid_url,         // the URL does not parse (ConnectError::detail says why)
    resolve_failed,      // getaddrinfo failed (resolve_error, EAI_*)
    connection_refused,  // every address refused the TCP connection (ECONNREFUSED)
    connect_failed,      // TCP connect failed otherwise (sys_error: ENETUNREACH, ...)
    connect_timeout,     // TCP connect did not complete within connect_timeout
    connection_lost,     // the server ended or reset TCP during the opening handshake
    handshake_timeout,   // no complete response within handshake_timeout
    http_status,         // the server answered with a status other than 101 (http_status)
    bad_response,        // a 101 that RFC 6455 §4.2.2 makes us refuse (handshake_error)
    tls_verify_failed,   // the server's certificate failed verification (detail: why, e.g.
                         // "certificate verify failed: hostname mismatch")
    tls_failed,          // any other TLS failure: an alert, no common version or cipher, not a
                         // TLS server, the trust store would not load (detail: OpenSSL's reason)
    system,              // a local failure: socket(), the reactor, the CSPRNG (sys_error)
};

// The enumerator's name, for logs.
const char* connect_errc_name(ConnectErrc code) noexcept;

struct ConnectError {
    ConnectErrc code = ConnectErrc::system;
    int sys_error = 0;  // errno, for connection_refused, connect_failed, connection_lost, system
    int resolve_error = 0;                              // EAI_* code, for resolve_failed
    proto::Error handshake_error = proto::Error::none;  // for http_status and bad_response
    int http_status = 0;                                // for http_status
    std::string http_reason;                            // the status line's reason phrase
    std::string target;  // what it concerns: the URL, or the address being connected to
    std::string detail;  // the specific reason in words (URL error, resolver message ...)

    // One line for people: "connection refused by 127.0.0.1:9", "HTTP 403 Forbidden from ..."
    std::string message() const;
};

// An IPv4 address as "1.2.3.4:80", an IPv6 one as "[::1]:80".
std::string address_to_string(const SocketAddress& address);

class Client {
  public:
    using AttemptId = std::uint64_t;
    using FailureCallback = std::function<void(const ConnectError& error)>;

    // `reactor` must outlive the Client. `resolver` (optional) must too; without one the Client
    // starts a single resolver thread at its first name lookup.
    explicit Client(Reactor& reactor, ClientOptions options = {}, Resolver* resolver = nullptr);
    // Ends pending attempts silently and drops open sessions (on_close with 1006). Call close()
    // on sessions first, and run the reactor, for clean close handshakes.
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Starts connecting; `handler` must outlive the session. See the outcome rule at the top.
    AttemptId connect(ConnectRequest request, SessionHandler& handler, FailureCallback on_failure);

    // Ends a pending attempt without any callback; false if it already ended.
    bool cancel(AttemptId id);

    // Attempts still resolving, connecting or in the handshake.
    std::size_t pending() const noexcept;
    // The host of this client's sessions (size(), close_all(), find()).
    SessionHost& host() noexcept;
    Reactor& reactor() noexcept;
    const ClientOptions& options() const noexcept;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace wsx::net
