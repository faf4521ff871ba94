#include "net/reconnector.hpp"

#include <algorithm>
#include <utility>

namespace wsx::net {

Reconnector::Reconnector(Client& client, ConnectRequest request, SessionHandler& handler,
                         ReconnectPolicy policy, Client::FailureCallback on_failure,
                         std::function<void()> give_up)
    : client_(client),
      request_(std::move(request)),
      policy_(policy),
      on_failure_(std::move(on_failure)),
      give_up_(std::move(give_up)),
      relay_(new Relay(this, handler)),
      random_state_(
          static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
          reinterpret_cast<std::uintptr_t>(this)) {
    if (random_state_ == 0) random_state_ = 0x9E3779B97F4A7C15ULL;
    timer_.bind<&Reconnector::on_timer>(this);
}

Reconnector::~Reconnector() {
    stop();
    if (session() != nullptr) {
        relay_->owner = nullptr;  // it forwards until on_close, then deletes itself
    } else {
        delete relay_;
    }
}

void Reconnector::start() {
    running_ = true;
    failures_ = 0;
    if (attempt_ == 0 && session() == nullptr) attempt();
}

void Reconnector::stop() {
    running_ = false;
    timer_.cancel();
    if (attempt_ != 0) static_cast<void>(client_.cancel(attempt_));
    attempt_ = 0;
}

WsSession* Reconnector::session() const noexcept {
    return session_id_ == 0 ? nullptr : client_.host().find(session_id_);
}

std::chrono::milliseconds Reconnector::delay_after(unsigned failures) const noexcept {
    std::int64_t delay = policy_.initial_delay.count();
    for (unsigned i = 0; i < failures && delay < policy_.max_delay.count(); ++i)
        delay *= 2;
    return std::chrono::milliseconds(std::min(delay, policy_.max_delay.count()));
}

void Reconnector::attempt() {
    attempt_ = client_.connect(request_, *relay_, [this](const ConnectError& error) {
        attempt_ = 0;
        ++failures_;
        if (on_failure_) on_failure_(error);
        schedule();
    });
}

void Reconnector::schedule() {
    if (!running_) return;
    if (policy_.max_attempts != 0 && failures_ >= policy_.max_attempts) {
        running_ = false;
        if (give_up_) give_up_();
        return;
    }
    // xorshift64: jitter only spreads reconnecting clients apart; it needs no strong randomness.
    random_state_ ^= random_state_ << 13;
    random_state_ ^= random_state_ >> 7;
    random_state_ ^= random_state_ << 17;
    const double unit = static_cast<double>(random_state_ >> 11) * 0x1.0p-53;
    const double factor = 1.0 + policy_.jitter * (2.0 * unit - 1.0);
    const auto base = static_cast<double>(delay_after(failures_).count());
    client_.reactor().arm(
        timer_, std::chrono::milliseconds(static_cast<std::int64_t>(std::max(0.0, base * factor))));
}

void Reconnector::on_timer() {
    if (running_ && attempt_ == 0 && session() == nullptr) attempt();
}

void Reconnector::Relay::on_open(WsSession& session) {
    if (owner != nullptr) {
        owner->attempt_ = 0;
        owner->session_id_ = session.id();
        owner->failures_ = 0;
    }
    application.on_open(session);
}

void Reconnector::Relay::on_message(WsSession& session, proto::Opcode opcode,
                                    std::span<const std::uint8_t> payload) {
    application.on_message(session, opcode, payload);
}

void Reconnector::Relay::on_close(WsSession& session, const proto::CloseInfo& info) {
    application.on_close(session, info);
    if (owner == nullptr) {
        delete this;
        return;
    }
    owner->session_id_ = 0;
    owner->schedule();
}

void Reconnector::Relay::on_drain(WsSession& session) {
    application.on_drain(session);
}

void Reconnector::Relay::on_ping(WsSession& session, std::span<const std::uint8_t> payload) {
    application.on_ping(session, payload);
}

void Reconnector::Relay::on_pong(WsSession& session, std::span<const std::uint8_t> payload) {
    application.on_pong(session, payload);
}

}  // namespace wsx::net
