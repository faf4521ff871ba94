// Reconnection with exponential backoff on top of Client, for long-lived client connections
// (a feed, a chat) that should come back after the server restarts or the network drops.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>

#include "net/client.hpp"
#include "net/timer_wheel.hpp"
#include "net/ws_session.hpp"

namespace wsx::net {

// Reconnects with exponential backoff: after a failed connect or a closed session it waits
// (initial_delay, doubling up to max_delay, with ±jitter) and connects again, until stop().
// The delay goes back to initial_delay once a session opened. `handler` sees every session.
struct ReconnectPolicy {
    std::chrono::milliseconds initial_delay{500};
    std::chrono::milliseconds max_delay{30'000};
    double jitter = 0.2;  // each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    // Attempts in a row without an open session before giving up (0: never give up).
    unsigned max_attempts = 0;
};

class Reconnector {
  public:
    // `client` and `handler` must outlive the Reconnector. `on_failure` (optional) sees every
    // failed attempt; `give_up` (optional) is called once when max_attempts is reached.
    Reconnector(Client& client, ConnectRequest request, SessionHandler& handler,
                ReconnectPolicy policy = {}, Client::FailureCallback on_failure = {},
                std::function<void()> give_up = {});
    ~Reconnector();
    Reconnector(const Reconnector&) = delete;
    Reconnector& operator=(const Reconnector&) = delete;

    // Connects now (from the reactor, as every connect).
    void start();
    // No more attempts; a session still open stays open (close it through its handle).
    void stop();

    // Between start() and stop() (or giving up).
    bool running() const noexcept { return running_; }
    // Failed attempts since the last open session.
    unsigned failures() const noexcept { return failures_; }
    // The session open right now, if any.
    WsSession* session() const noexcept;
    // The delay before the next attempt after `failures` failures in a row (no jitter).
    std::chrono::milliseconds delay_after(unsigned failures) const noexcept;

  private:
    // Sits between the client's sessions and the application's handler, to see them end. It
    // outlives a Reconnector destroyed while its session is open (it then only forwards, and
    // deletes itself after on_close), because a session must never outlive its handler.
    struct Relay final : SessionHandler {
        Reconnector* owner;
        SessionHandler& application;
        Relay(Reconnector* o, SessionHandler& a) : owner(o), application(a) {}
        void on_open(WsSession& session) override;
        void on_message(WsSession& session, proto::Opcode opcode,
                        std::span<const std::uint8_t> payload) override;
        void on_close(WsSession& session, const proto::CloseInfo& info) override;
        void on_drain(WsSession& session) override;
        void on_ping(WsSession& session, std::span<const std::uint8_t> payload) override;
        void on_pong(WsSession& session, std::span<const std::uint8_t> payload) override;
    };

    void attempt();
    void schedule();
    void on_timer();

    Client& client_;
    ConnectRequest request_;
    ReconnectPolicy policy_;
    Client::FailureCallback on_failure_;
    std::function<void()> give_up_;
    Relay* relay_;
    Timer timer_;
    Client::AttemptId attempt_ = 0;  // the attempt in flight, or 0
    std::uint64_t session_id_ = 0;   // the open session, or 0
    unsigned failures_ = 0;
    bool running_ = false;
    std::uint64_t random_state_;
};

}  // namespace wsx::net
