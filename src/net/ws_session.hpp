// WebSocket over a socket: binds one proto::Connection to one non-blocking TCP fd on a Reactor,
// after the opening handshake, in either role. The server and the client run the same code from
// here on; only proto::Role differs (masking, who closes TCP first).
//
//   SessionHost host{reactor};                     // one per reactor thread
//   WsSession* s = host.adopt({.fd = fd, .role = proto::Role::server, .handler = &app,
//                              .options = &options, .preamble = accept_response,
//                              .early_bytes = bytes_after_the_request});
//
// Threading: a session belongs to the thread running its host's reactor, for its whole life.
// Every WsSession member function must be called on that thread. From any other thread use a
// SessionHandle, which posts the call to the owning reactor (a session gone by then is skipped).
//
// Lifetime: on_open(session) is the first callback and on_close(session, info) the last; each is
// called exactly once, always in pairs. The session object is valid from on_open until on_close
// returns; keep a SessionHandle, not a pointer, past that. on_close is delivered from the
// reactor (never from inside a call the application made), once the transport is closed.
//
// Reads go into the host's single read buffer (one per thread): proto::Connection parses and
// unmasks in place and keeps any partial frame itself, so the buffer is free again after every
// receive. Writes go straight from the Connection's output queue to writev.
//
// Backpressure: buffered_amount() counts bytes queued and not yet taken by the kernel. Above
// high_watermark the session stops reading (the peer's sends then back up in TCP); at or below
// low_watermark it reads again and calls on_drain. A send that would take the queue past
// max_buffered_bytes is refused and the session closes with 1008, so memory per connection is
// bounded by that cap plus one close frame.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "net/reactor.hpp"
#include "net/socket.hpp"
#include "net/timer_wheel.hpp"
#include "net/tls.hpp"
#include "proto/connection.hpp"

namespace wsx::net {

class SessionHost;
class WsSession;

// Per-session settings. One instance usually serves many sessions and must outlive them.
struct SessionOptions {
    // Frame and message limits (exceeding one fails the connection with 1009), auto-pong, UTF-8
    // checks of outgoing text, auto-fragmentation: see proto::ConnectionOptions.
    proto::ConnectionOptions connection{};

    // Send a ping this often (0: never). The peer's pong, or anything else it sends, proves it
    // alive. 54 s keeps NAT and proxy idle timers (often 60 s) from dropping the connection.
    std::chrono::milliseconds ping_interval{54'000};
    // With pings on: drop the connection (1006) when nothing at all arrived for this long.
    std::chrono::milliseconds pong_wait{60'000};
    // Drop the connection (1006) when output is pending and no byte of it went out for this
    // long: the peer stopped reading.
    std::chrono::milliseconds write_wait{10'000};
    // After sending a close frame: how long to wait for the peer's close frame, and then for its
    // end of TCP (RFC 6455 §7.1.1), before closing the socket regardless.
    std::chrono::milliseconds close_timeout{5'000};
    // Close (1000, "idle timeout") when no message went either way for this long (0: never).
    // Pings and pongs do not count as messages.
    std::chrono::milliseconds idle_timeout{0};

    // Receive-side backpressure: stop reading above high_watermark buffered output bytes,
    // resume (and call on_drain) at or below low_watermark.
    std::size_t high_watermark = 1024 * 1024;
    std::size_t low_watermark = 256 * 1024;
    // Hard cap on buffered output bytes: a send that would pass it is refused and the session is
    // closed with 1008. Must exceed the largest message sent plus high_watermark; the default
    // leaves room for a 16 MiB echo (the default message limit).
    std::size_t max_buffered_bytes = 32 * 1024 * 1024;
};

// The application's side of a session. One handler may serve sessions on many threads at once,
// so its own state must be thread-safe (or per session, see WsSession::set_user_data).
// Payload spans are valid only during the call.
class SessionHandler {
  public:
    virtual ~SessionHandler() = default;
    virtual void on_open(WsSession& session) { static_cast<void>(session); }
    // A whole text (UTF-8 checked) or binary message.
    virtual void on_message(WsSession& session, proto::Opcode opcode,
                            std::span<const std::uint8_t> payload) = 0;
    // Exactly once, after on_open, when the transport is gone. info.code is the peer's close
    // code on a clean close, the code we sent when we failed the connection, or 1006.
    virtual void on_close(WsSession& session, const proto::CloseInfo& info) {
        static_cast<void>(session);
        static_cast<void>(info);
    }
    // Buffered output fell to low_watermark after having passed high_watermark.
    virtual void on_drain(WsSession& session) { static_cast<void>(session); }
    // Pings are answered automatically (unless connection.auto_pong is off); these only observe.
    virtual void on_ping(WsSession& session, std::span<const std::uint8_t> payload) {
        static_cast<void>(session);
        static_cast<void>(payload);
    }
    virtual void on_pong(WsSession& session, std::span<const std::uint8_t> payload) {
        static_cast<void>(session);
        static_cast<void>(payload);
    }
};

enum class SendStatus : std::uint8_t {
    ok,          // queued; it goes out as the socket takes it
    not_open,    // the close handshake started or the session ended: nothing queued
    invalid,     // the engine refused it (text not UTF-8, control payload > 125 bytes, ...)
    over_limit,  // it would pass max_buffered_bytes: not queued; the session closes with 1008
};

// The enumerator's name, for logs.
const char* send_status_name(SendStatus status) noexcept;

// A thread-safe reference to a session: posts work to the session's reactor, where it runs if
// the session still exists. Copyable. Valid as long as the host (e.g. the Server) exists.
class SessionHandle {
  public:
    // An empty handle (false); hosts make real ones (WsSession::handle()).
    SessionHandle() noexcept = default;
    SessionHandle(SessionHost* host, std::uint64_t id) noexcept : host_(host), id_(id) {}

    explicit operator bool() const noexcept { return host_ != nullptr; }
    std::uint64_t id() const noexcept { return id_; }

    // Any thread. Each copies the payload and queues the call on the owning thread.
    void send_text(std::string text) const;
    void send_binary(std::vector<std::uint8_t> data) const;
    // Encode once with proto::encode_shared_frame and send to many sessions without copying.
    void send_shared(proto::SharedBuffer frame) const;
    void close(std::uint16_t code = 1000, std::string reason = {}) const;
    // Runs `function(session)` on the owning thread if the session still exists.
    void post(std::function<void(WsSession&)> function) const;

  private:
    SessionHost* host_ = nullptr;
    std::uint64_t id_ = 0;
};

// What adopt() needs to start a session on an fd whose handshake is done.
struct SessionStart {
    int fd = -1;  // connected, non-blocking; the session owns (and closes) it from now on
    proto::Role role = proto::Role::server;
    SessionHandler* handler = nullptr;        // must outlive the session
    const SessionOptions* options = nullptr;  // must outlive the session
    // Bytes to write before any frame: the server's 101 response, when it was not written yet.
    std::string preamble;
    // Bytes that arrived after the handshake (RFC 6455 §4.2.1: they belong to the WebSocket
    // stream); at most the host's read buffer size.
    std::span<const std::uint8_t> early_bytes;
    std::string protocol;  // the negotiated subprotocol, if any
    std::string target;    // the request target (path and query)
    SocketAddress peer;
    // permessage-deflate as negotiated in the handshake; it replaces
    // options->connection.deflate, which a handshake did not agree on.
    std::optional<proto::DeflateConfig> deflate;
    // TLS between the socket and the engine, its handshake done; null: plain TCP. adopt() takes
    // it over (hence mutable: the start record itself is passed by const reference).
    mutable std::unique_ptr<TlsStream> tls{};
};

class WsSession final : public IoHandler {
  public:
    WsSession(const WsSession&) = delete;
    WsSession& operator=(const WsSession&) = delete;
    ~WsSession() override;

    // ---- Identity.
    std::uint64_t id() const noexcept { return id_; }
    SessionHandle handle() const noexcept;
    proto::Role role() const noexcept { return conn_.role(); }
    // The negotiated subprotocol (empty for none) and the request target (path and query).
    const std::string& protocol() const noexcept;
    const std::string& target() const noexcept { return target_; }
    // The peer's address (IPv4 or IPv6; empty for other families, e.g. a Unix socket pair).
    SocketAddress peer() const noexcept;
    SessionHost& host() const noexcept { return host_; }
    Reactor& reactor() const noexcept;
    // The permessage-deflate parameters agreed in the handshake, or nullptr (not in use).
    const proto::DeflateParams* deflate_params() const noexcept { return conn_.deflate_params(); }
    // The TLS layer (version, ALPN, SNI name, peer certificate), or null on plain TCP.
    const TlsStream* tls() const noexcept { return tls_.get(); }
    // One pointer for the application, nullptr until set.
    void* user_data() const noexcept { return user_data_; }
    void set_user_data(void* data) noexcept { user_data_ = data; }

    // ---- Sending (owning thread). Inside a callback the output is written when the callback
    // returns, in one writev with everything else queued meanwhile; elsewhere at once.
    SendStatus send_text(std::string_view text);
    SendStatus send_binary(std::span<const std::uint8_t> data);
    SendStatus send(proto::Opcode opcode, std::span<const std::uint8_t> payload);
    SendStatus send_shared(const proto::SharedBuffer& frame);  // server role only
    SendStatus ping(std::span<const std::uint8_t> payload = {});
    // Starts the close handshake; on_close follows once the peer answered (or close_timeout).
    // Everything queued before is sent before the close frame.
    SendStatus close(std::uint16_t code = proto::close_code::kNormal, std::string_view reason = {});
    // Drops the connection now, without a close handshake: on_close reports 1006.
    void abort(std::string_view reason = "aborted by the application");

    // ---- State.
    std::size_t buffered_amount() const noexcept {
        return conn_.buffered_amount() + preamble_left() + (tls_ != nullptr ? tls_->buffered() : 0);
    }
    // True while reading is paused because buffered output passed high_watermark.
    bool above_high_watermark() const noexcept { return above_high_; }
    proto::State state() const noexcept { return conn_.state(); }
    bool is_open() const noexcept { return phase_ == Phase::open && conn_.state() == State::open; }

    // ---- Batching (owning thread). Between cork() and uncork() sends only queue; uncork()
    // writes everything queued meanwhile in as few writev calls as possible (as a callback's
    // sends are). Pairs nest. uncork() may end the session (on_close runs and the object is
    // destroyed), so the session must not be touched after it.
    void cork() noexcept { enter(); }
    void uncork() { leave(); }

  private:
    friend class SessionHost;
    using State = proto::State;

    enum class Phase : std::uint8_t {
        open,       // frames flow; may be closing at the proto level
        lingering,  // the close is flushed: wait for the peer's end of TCP, discarding input
        done,       // the socket is closed; on_close is due
    };

    // The proto::Connection handler: static dispatch into the session.
    struct Events {
        WsSession* session;
        void on_message(proto::Opcode opcode, std::span<const std::uint8_t> payload);
        void on_ping(std::span<const std::uint8_t> payload);
        void on_pong(std::span<const std::uint8_t> payload);
        void on_close(const proto::CloseInfo& info);
    };

    WsSession(SessionHost& host, std::uint64_t id, const SessionStart& start);

    void open(std::span<const std::uint8_t> early_bytes);

    void on_readable(int fd) override;
    void on_writable(int fd) override;
    void on_error(int fd, int error) override;

    // Every reactor entry point ends with leave(), which writes what was queued, updates the
    // interest set and, once the session is done, tears it down (deleting this).
    void enter() noexcept { ++depth_; }
    void leave();
    void after_api_call();
    void read_once();
    void flush();
    bool flush_plain();
    bool flush_tls();
    void receive_tls(std::size_t ciphertext_size);
    void progress();
    void update_interest();
    void check_watermarks();
    SendStatus queued(proto::Error error);
    SendStatus check_room(std::size_t wire_bytes);
    void fail_transport(std::string_view reason);
    void close_socket();
    void teardown();

    // One timer per session: it is armed for the earliest of the deadlines below; when it fires,
    // on_timer() acts on every deadline that passed and arms the next. A deadline that moves
    // later (data arrived, a message went out) leaves the timer alone and is found when it fires;
    // one that comes earlier (a blocked write, the close handshake) re-arms it at once. O(1) both.
    void on_timer();
    // Arms the timer for `deadline` (loop milliseconds) unless it is armed earlier already.
    void arm_by(std::int64_t deadline) noexcept;
    // The earliest deadline of the current state (INT64_MAX: none): ping_interval, pong_wait,
    // write_wait, close_timeout, idle_timeout.
    std::int64_t next_deadline() const noexcept;

    SessionHost& host_;
    const SessionOptions& options_;
    SessionHandler& handler_;
    proto::Connection conn_;
    std::unique_ptr<TlsStream> tls_;  // null on plain TCP: one pointer test per read and write
    std::uint64_t id_;
    int fd_;
    Phase phase_ = Phase::open;
    Interest interest_ = Interest::none;
    bool write_blocked_ = false;  // the last write stopped short: wait for writability
    bool above_high_ = false;
    bool opened_ = false;       // on_open was delivered, so on_close is owed
    bool close_timed_ = false;  // the close handshake started: due_ is its close_timeout
    int depth_ = 0;             // nesting of reactor entry points and callbacks on the stack

    std::string target_;
    // The peer as the sockaddr_in or sockaddr_in6 it is: 28 bytes, where a SocketAddress holds a
    // whole sockaddr_storage (128).
    sockaddr_in6 peer_{};
    std::uint8_t peer_size_ = 0;
    void* user_data_ = nullptr;

    // Loop-time stamps (milliseconds) the deadlines are computed from.
    std::int64_t last_received_ = 0;
    std::int64_t last_write_progress_ = 0;
    std::int64_t last_message_ = 0;
    // While the engine is open: when the next ping is due. Once we started the close handshake
    // (close_timed_), and while lingering for the peer's FIN: when close_timeout ends the wait.
    std::int64_t due_ = 0;

    // What most sessions never need, or only at their end: made on first use.
    struct Extras {
        std::string preamble;  // until written
        std::size_t preamble_sent = 0;
        std::string protocol;
        proto::CloseInfo close_info{};
        std::string close_reason;       // owns close_info.reason
        std::string_view local_reason;  // why we dropped the transport (static strings only)
    };
    Extras& extras();
    std::size_t preamble_left() const noexcept {
        return extras_ != nullptr ? extras_->preamble.size() - extras_->preamble_sent : 0;
    }
    void preamble_written(std::size_t n) noexcept;
    std::unique_ptr<Extras> extras_;

    Timer timer_;
};

// The sessions of one reactor thread and what they share: the read buffer and the reactor.
// Lives on that thread; must outlive every handle's use and be destroyed before its reactor.
class SessionHost {
  public:
    static constexpr std::size_t kDefaultReadBufferSize = 64 * 1024;

    explicit SessionHost(Reactor& reactor, std::size_t read_buffer_size = kDefaultReadBufferSize);
    // Drops every remaining session (on_close with 1006).
    ~SessionHost();
    SessionHost(const SessionHost&) = delete;
    SessionHost& operator=(const SessionHost&) = delete;

    // Starts a session: registers the fd, calls on_open, writes the preamble, then processes
    // early_bytes. Returns the session, or nullptr when it already ended inside those steps (its
    // on_close then ran too) or the fd could not be registered (the fd is closed, no handler
    // callback runs, the end observer does).
    WsSession* adopt(const SessionStart& start);

    WsSession* find(std::uint64_t id) noexcept;
    std::size_t size() const noexcept { return sessions_.size(); }
    Reactor& reactor() const noexcept { return reactor_; }
    std::span<std::uint8_t> read_buffer() noexcept { return read_buffer_; }

    // Starts the close handshake on every open session (e.g. 1001 at shutdown).
    void close_all(std::uint16_t code, std::string_view reason);
    // Drops every session now (on_close with 1006 for each).
    void abort_all();

    // Called after each session's on_close, e.g. to release a connection slot.
    void set_session_end_observer(std::function<void(WsSession&)> observer) {
        on_session_end_ = std::move(observer);
    }
    // More observers of session ends, called after the one above (e.g. a hub dropping the
    // session's subscriptions). The id removes it again.
    std::size_t add_session_end_listener(std::function<void(WsSession&)> listener);
    void remove_session_end_listener(std::size_t id);

    // Which thread of a multi-threaded owner this host is (the Server sets 0 .. threads - 1), so
    // per-thread application state can be found from a session: session.host().thread_index().
    unsigned thread_index() const noexcept { return thread_index_; }
    void set_thread_index(unsigned index) noexcept { thread_index_ = index; }

  private:
    friend class WsSession;
    void destroy(WsSession& session);

    Reactor& reactor_;
    std::vector<std::uint8_t> read_buffer_;
    std::unordered_map<std::uint64_t, std::unique_ptr<WsSession>> sessions_;
    std::uint64_t next_id_ = 1;
    std::function<void(WsSession&)> on_session_end_;
    std::vector<std::pair<std::size_t, std::function<void(WsSession&)>>> end_listeners_;
    std::size_t next_listener_id_ = 1;
    unsigned thread_index_ = 0;
};

}  // namespace wsx::net
