// The WebSocket server: N reactor threads, shared-nothing. Each thread has its own listener on
// the same port (SO_REUSEPORT: the kernel spreads connections), or thread 0 accepts and hands fds
// out round-robin; either way a connection belongs to one thread for its whole life.
//
//   struct Echo : wsx::net::SessionHandler {
//       void on_message(WsSession& s, proto::Opcode op, std::span<const std::uint8_t> p) override {
//           s.send(op, p);
//       }
//   } echo;
//   wsx::net::Server server({.port = 8080}, echo);
//   if (!server.start().ok()) ...;
//   ...                     // server.stop() from any thread (e.g. on SIGINT)
//   server.wait();
//
// Per connection: the HTTP request is read (handshake_timeout), routed, and either upgraded to a
// WsSession (see ws_session.hpp for the session API, callbacks and timeouts) or answered as plain
// HTTP. Routing of a request for path P:
//   - it asks for an upgrade (Upgrade, Sec-WebSocket-Key or Sec-WebSocket-Version present):
//     P a WebSocket path → RFC 6455 §4.2.1 validation; a refusal gets the exact status of
//     proto::write_error_response (400, 403, 405, 426, 431), too many sessions 503; else 404;
//   - plain HTTP: /healthz → 200; a static file → 200 (or 403/404/405); a WebSocket path with
//     nothing else there → 426 with Upgrade: websocket; anything else → 404.
//
// With options.tls, every connection speaks TLS first (src/net/tls.hpp): the TLS handshake, the
// HTTP request and the answer all go through it, and the session inherits it.
//
// Graceful shutdown (stop()): listeners close, pending handshakes are dropped, every session gets
// a 1001 close frame after everything already queued for it, the server waits for the close
// replies (each session's close_timeout, all bounded by shutdown_timeout), then the threads end.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/reactor.hpp"
#include "net/sys_result.hpp"
#include "net/tls.hpp"
#include "net/ws_session.hpp"
#include "proto/deflate.hpp"
#include "proto/handshake.hpp"

namespace wsx::net {

// A server reactor thread, as the thread hooks see it (on that thread).
struct ServerThread {
    unsigned index;  // 0 .. thread_count() - 1; also host.thread_index()
    Reactor& reactor;
    SessionHost& host;
};

// The answer of an application HTTP route (see ServerOptions::http_route).
struct HttpRouteResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

struct ServerOptions {
    // Numeric IPv4 or IPv6 address to bind. Loopback by default: exposing a server is a choice.
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;  // 0: the kernel picks one (see Server::port())
    unsigned threads = 0;    // reactor threads; 0: one per core
    Backend backend = Backend::automatic;
    // One SO_REUSEPORT listener per thread; false: thread 0 accepts and hands connections out.
    bool reuse_port = true;

    // Paths (without query) that accept WebSocket upgrades; "*" accepts every path.
    std::vector<std::string> websocket_paths{"/"};
    // Open WebSocket sessions across all threads; an upgrade beyond it is answered 503.
    std::size_t max_connections = 10'000;
    // Connections still in their HTTP phase, per thread. Beyond it a thread with its own listener
    // stops accepting (new connections wait in the kernel's accept queue) until one finishes;
    // with a single acceptor handing connections out, the excess is closed at once.
    std::size_t max_pending_handshakes = 1024;
    // Opening handshake: header limits (431), subprotocols (server's preference order), Origin
    // policy (403; the default allows same-origin and non-browser clients). A custom origin check
    // is called from every server thread.
    proto::ServerOptions handshake{};
    // Limits (→ 1009), heartbeat, timeouts and backpressure of every session.
    SessionOptions session{};
    // permessage-deflate (RFC 7692): what the server agrees to when a client offers it; nullopt:
    // offers are ignored (the 101 carries no extension). Off by default: compression costs CPU
    // and memory per connection, and compressed secrets next to attacker-chosen data leak
    // through the size (CRIME/BREACH).
    std::optional<proto::DeflateOptions> deflate{};

    // From accept to a complete request; a silent or slow client is disconnected after it.
    std::chrono::milliseconds handshake_timeout{10'000};
    // stop(): how long to wait for close replies before dropping what is left.
    std::chrono::milliseconds shutdown_timeout{10'000};

    // Directory served for plain GET/HEAD requests; empty: no static files.
    std::string static_root;
    // Answer GET /healthz with 200 "ok".
    bool health_check = true;

    // Application routes for plain GET and HEAD requests (not upgrades), asked before /healthz
    // and static files with the path (no query); nullopt falls through. Called from every server
    // thread at once. The answer closes the connection like every plain HTTP answer.
    std::function<std::optional<HttpRouteResponse>(std::string_view path)> http_route;
    // Per-thread state of the application (e.g. a hub's subscription tables): on_thread_start
    // runs on each server thread before its loop, on_thread_stop on it after the loop ended and
    // its sessions are gone (the Reactor still exists until the Server is destroyed).
    std::function<void(const ServerThread&)> on_thread_start;
    std::function<void(const ServerThread&)> on_thread_stop;
    // wss://: TLS on every connection (certificates, SNI, ciphers, a handshake error hook);
    // nullopt: plain TCP. The TLS handshake runs inside handshake_timeout, with the HTTP request.
    std::optional<TlsServerOptions> tls{};
};

class Server {
  public:
    // `handler` serves every session on every thread and must outlive the server.
    Server(ServerOptions options, SessionHandler& handler);
    // stop() and wait().
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the listeners and starts the threads. On failure nothing is left running and the
    // errno says why (EADDRINUSE, EINVAL for a bad address or TLS files that do not load (see
    // make_server_context for the reason), ENOTDIR for a bad static root ...).
    SysStatus start();

    // The bound port (after start()).
    std::uint16_t port() const noexcept;
    // Reactor threads serving connections (ServerOptions::threads, or one per core).
    unsigned thread_count() const noexcept;

    // Any thread, any number of times: begins the graceful shutdown and returns at once.
    void stop() noexcept;
    // Blocks until every server thread has ended (after stop(), or a fatal reactor error).
    void wait();

    // Open WebSocket sessions right now, across threads.
    std::size_t connection_count() const noexcept;

    // Any thread (e.g. on SIGHUP): loads options.tls's certificate and key files again. New
    // connections get the new certificates; open ones keep theirs and are not interrupted. On
    // failure (error says why) the old certificates stay in use.
    bool reload_tls(std::string* error = nullptr);

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace wsx::net
