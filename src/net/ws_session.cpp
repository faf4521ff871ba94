#include "net/ws_session.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace wsx::net {

namespace {

// Slices per writev: enough to drain many small queued messages in one system call.
constexpr std::size_t kMaxSlices = 64;
// Largest frame header (RFC 6455 §5.2: 2 + 8 length + 4 mask), counted against the cap.
constexpr std::size_t kFrameOverhead = 14;

}  // namespace

const char* send_status_name(SendStatus status) noexcept {
    switch (status) {
        case SendStatus::ok:
            return "ok";
        case SendStatus::not_open:
            return "not open";
        case SendStatus::invalid:
            return "invalid";
        case SendStatus::over_limit:
            return "over the buffered-bytes limit";
    }
    return "unknown";
}

// ---- SessionHandle

void SessionHandle::send_text(std::string text) const {
    SessionHost* host = host_;
    const std::uint64_t id = id_;
    host->reactor().post([host, id, text = std::move(text)] {
        if (WsSession* session = host->find(id)) session->send_text(text);
    });
}

void SessionHandle::send_binary(std::vector<std::uint8_t> data) const {
    SessionHost* host = host_;
    const std::uint64_t id = id_;
    host->reactor().post([host, id, data = std::move(data)] {
        if (WsSession* session = host->find(id)) session->send_binary(data);
    });
}

void SessionHandle::send_shared(proto::SharedBuffer frame) const {
    SessionHost* host = host_;
    const std::uint64_t id = id_;
    host->reactor().post([host, id, frame = std::move(frame)] {
        if (WsSession* session = host->find(id)) session->send_shared(frame);
    });
}

void SessionHandle::close(std::uint16_t code, std::string reason) const {
    SessionHost* host = host_;
    const std::uint64_t id = id_;
    host->reactor().post([host, id, code, reason = std::move(reason)] {
        if (WsSession* session = host->find(id)) session->close(code, reason);
    });
}

void SessionHandle::post(std::function<void(WsSession&)> function) const {
    SessionHost* host = host_;
    const std::uint64_t id = id_;
    host->reactor().post([host, id, function = std::move(function)] {
        if (WsSession* session = host->find(id)) function(*session);
    });
}

// ---- WsSession: proto events

void WsSession::Events::on_message(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
    session->last_message_ = session->reactor().now().count();
    session->handler_.on_message(*session, opcode, payload);
}

void WsSession::Events::on_ping(std::span<const std::uint8_t> payload) {
    session->handler_.on_ping(*session, payload);
}

void WsSession::Events::on_pong(std::span<const std::uint8_t> payload) {
    session->handler_.on_pong(*session, payload);
}

void WsSession::Events::on_close(const proto::CloseInfo& info) {
    // The reason points into the read buffer; on_close reaches the application later.
    Extras& cold = session->extras();
    cold.close_reason.assign(info.reason);
    cold.close_info = info;
    cold.close_info.reason = cold.close_reason;
}

// ---- WsSession: life cycle

WsSession::WsSession(SessionHost& host, std::uint64_t id, const SessionStart& start)
    : host_(host),
      options_(*start.options),
      handler_(*start.handler),
      conn_(start.role, &start.options->connection, start.deflate),
      tls_(std::move(start.tls)),
      id_(id),
      fd_(start.fd),
      target_(start.target) {
    if (!start.preamble.empty()) extras().preamble = start.preamble;
    if (!start.protocol.empty()) extras().protocol = start.protocol;
    if (start.peer.size() <= sizeof peer_) {
        std::memcpy(&peer_, start.peer.data(), start.peer.size());
        peer_size_ = static_cast<std::uint8_t>(start.peer.size());
    }
    timer_.bind<&WsSession::on_timer>(this);
}

WsSession::~WsSession() {
    if (fd_ >= 0) {
        static_cast<void>(reactor().remove(fd_));
        static_cast<void>(close_fd(fd_));
    }
}

Reactor& WsSession::reactor() const noexcept {
    return host_.reactor();
}

WsSession::Extras& WsSession::extras() {
    if (!extras_) extras_ = std::make_unique<Extras>();
    return *extras_;
}

void WsSession::preamble_written(std::size_t n) noexcept {
    Extras& cold = *extras_;
    cold.preamble_sent += n;
    if (cold.preamble_sent < cold.preamble.size()) return;
    std::string().swap(cold.preamble);
    cold.preamble_sent = 0;
    // Nothing else was put there yet (no subprotocol; no close, which comes with the engine
    // leaving the open state): give it back.
    if (cold.protocol.empty() && phase_ == Phase::open && conn_.state() == State::open) {
        extras_.reset();
    }
}

const std::string& WsSession::protocol() const noexcept {
    static const std::string none;
    return extras_ != nullptr ? extras_->protocol : none;
}

SocketAddress WsSession::peer() const noexcept {
    sockaddr_storage storage{};
    std::memcpy(&storage, &peer_, peer_size_);
    return SocketAddress::from_storage(storage, peer_size_);
}

SessionHandle WsSession::handle() const noexcept {
    return {&host_, id_};
}

void WsSession::open(std::span<const std::uint8_t> early_bytes) {
    enter();
    const std::int64_t now = reactor().now().count();
    last_received_ = last_write_progress_ = last_message_ = now;
    if (options_.ping_interval.count() > 0) due_ = now + options_.ping_interval.count();
    arm_by(next_deadline());

    opened_ = true;
    handler_.on_open(*this);
    if (!early_bytes.empty() && phase_ == Phase::open) {
        // Parsed from the read buffer like any read: Connection unmasks in place.
        const std::span<std::uint8_t> buffer = host_.read_buffer();
        const std::size_t n = std::min(early_bytes.size(), buffer.size());
        std::memmove(buffer.data(), early_bytes.data(), n);
        Events events{this};
        conn_.receive(buffer.first(n), events);
    }
    // Plaintext the handshake's reader had no room for: the first frames, already decrypted.
    if (tls_ != nullptr && tls_->has_pending() && phase_ == Phase::open) receive_tls(0);
    leave();
}

void WsSession::leave() {
    if (depth_ == 1 && phase_ != Phase::done) {
        flush();
        progress();
        update_interest();
    }
    if (--depth_ == 0 && phase_ == Phase::done) teardown();  // deletes this
}

void WsSession::after_api_call() {
    // Inside a callback, the entry point below us on the stack writes when the callback returns,
    // batching everything queued meanwhile into one writev.
    if (depth_ > 0) return;
    enter();
    if (phase_ != Phase::done) {
        flush();
        progress();
        update_interest();
    }
    --depth_;
    // The caller may still hold a reference: tear down from the loop, not from under it.
    if (phase_ == Phase::done) reactor().arm(timer_, std::chrono::milliseconds(0));
}

void WsSession::close_socket() {
    if (fd_ >= 0) {
        static_cast<void>(reactor().remove(fd_));
        static_cast<void>(close_fd(fd_));
        fd_ = -1;
    }
    phase_ = Phase::done;
    interest_ = Interest::none;
    timer_.cancel();
}

void WsSession::fail_transport(std::string_view reason) {
    Extras& cold = extras();
    if (cold.local_reason.empty()) cold.local_reason = reason;
    close_socket();
}

void WsSession::teardown() {
    close_socket();
    Events events{this};
    conn_.transport_closed(events);  // 1006 unless the close was already reported
    Extras& cold = extras();
    if (cold.close_info.error == proto::Error::abnormal_closure && !cold.local_reason.empty()) {
        cold.close_info.reason = cold.local_reason;
    }
    if (opened_) {
        opened_ = false;
        ++depth_;  // sends from on_close find the session closed and queue nothing
        handler_.on_close(*this, cold.close_info);
        --depth_;
    }
    host_.destroy(*this);
}

// ---- WsSession: I/O

void WsSession::on_readable(int) {
    enter();
    read_once();
    leave();
}

void WsSession::on_writable(int) {
    enter();
    write_blocked_ = false;
    leave();
}

void WsSession::on_error(int, int) {
    enter();
    fail_transport("socket error");
    leave();
}

void WsSession::read_once() {
    const std::span<std::uint8_t> buffer = host_.read_buffer();
    const SysResult<std::size_t> got = read_some(fd_, buffer);
    if (!got.ok()) {
        if (!would_block(got.error)) fail_transport("read failed (connection reset)");
        return;
    }
    if (got.value == 0) {
        if (phase_ == Phase::lingering) {
            close_socket();  // the peer's end of TCP, as the close handshake wants
        } else {
            fail_transport("the peer ended TCP without a close handshake");
        }
        return;
    }
    if (phase_ == Phase::lingering) return;  // after the close handshake input is discarded
    last_received_ = reactor().now().count();
    if (tls_ != nullptr) {
        receive_tls(got.value);
        return;
    }
    Events events{this};
    conn_.receive(buffer.first(got.value), events);
}

void WsSession::receive_tls(std::size_t ciphertext_size) {
    const std::span<std::uint8_t> buffer = host_.read_buffer();
    TlsStream::Received got = tls_->receive(buffer, ciphertext_size);
    for (;;) {
        if (got.plaintext > 0 && phase_ == Phase::open) {
            Events events{this};
            conn_.receive(buffer.first(got.plaintext), events);
        }
        if (!got.more || phase_ != Phase::open) break;
        got = tls_->receive(buffer, 0);
    }
    if (got.state == TlsState::closed && phase_ == Phase::open && conn_.state() != State::closed) {
        // close_notify before the WebSocket close handshake ended: the peer's end of the stream.
        // (After it, progress() answers with our close_notify and ends TCP as usual.)
        fail_transport("the peer ended TLS without a close handshake");
    } else if (got.state == TlsState::failed && phase_ != Phase::done) {
        // The alert, best effort: the socket is closed right after.
        if (tls_->wants_write()) static_cast<void>(write_some(fd_, tls_->pending_output()));
        // The reason outlives on_close: tls_ goes with the session.
        fail_transport(tls_->error());
    }
}

void WsSession::flush() {
    if (fd_ < 0 || write_blocked_) return;
    if (!(tls_ != nullptr ? flush_tls() : flush_plain())) return;
    if (write_blocked_ && options_.write_wait.count() > 0) {
        // The stall is timed from now: this write either made progress now or found the
        // socket full right away (the last progress may be long past: the output was empty).
        last_write_progress_ = reactor().now().count();
        arm_by(last_write_progress_ + options_.write_wait.count());
    }
    check_watermarks();
}

bool WsSession::flush_plain() {
    proto::IoSlice slices[kMaxSlices];
    for (;;) {
        std::size_t count = 0;
        const std::size_t preamble = preamble_left();
        if (preamble > 0) {
            slices[count++] = {extras_->preamble.data() + extras_->preamble_sent, preamble};
        }
        count += conn_.pending_output(std::span(slices).subspan(count));
        if (count == 0) break;
        std::size_t total = 0;
        for (std::size_t i = 0; i < count; ++i)
            total += slices[i].size;

        const SysResult<std::size_t> wrote = write_slices(fd_, {slices, count});
        if (!wrote.ok()) {
            if (!would_block(wrote.error)) {
                fail_transport("write failed (connection reset)");
                return false;
            }
            write_blocked_ = true;
            break;
        }
        const std::size_t from_preamble = std::min(wrote.value, preamble);
        if (preamble > 0) preamble_written(from_preamble);
        conn_.consume_output(wrote.value - from_preamble);
        if (wrote.value > 0) last_write_progress_ = reactor().now().count();
        if (wrote.value < total) {
            write_blocked_ = true;  // a short write: the socket buffer is full
            break;
        }
    }
    return true;
}

bool WsSession::flush_tls() {
    proto::IoSlice slices[kMaxSlices];
    for (;;) {
        // Ciphertext first; more plaintext is encrypted only once it is all out, so at most
        // TlsStream::kOutputLimit of it waits here and the rest stays in the engine's queue
        // (where the watermarks and the hard cap see it).
        const std::span<const std::uint8_t> ciphertext = tls_->pending_output();
        if (!ciphertext.empty()) {
            const SysResult<std::size_t> wrote = write_some(fd_, ciphertext);
            if (!wrote.ok()) {
                if (!would_block(wrote.error)) {
                    fail_transport("write failed (connection reset)");
                    return false;
                }
                write_blocked_ = true;
                return true;
            }
            tls_->consume_output(wrote.value);
            if (wrote.value > 0) last_write_progress_ = reactor().now().count();
            if (wrote.value < ciphertext.size()) {
                write_blocked_ = true;
                return true;
            }
        }
        std::size_t count = 0;
        const std::size_t preamble = preamble_left();
        if (preamble > 0) {
            slices[count++] = {extras_->preamble.data() + extras_->preamble_sent, preamble};
        }
        count += conn_.pending_output(std::span(slices).subspan(count));
        if (count == 0) return true;
        // Taking a prefix of the slices works like a short writev.
        const std::size_t taken = tls_->send({slices, count});
        if (tls_->state() == TlsState::failed) {
            fail_transport(tls_->error());
            return false;
        }
        if (taken == 0) return true;  // close_notify went out: nothing more may follow
        const std::size_t from_preamble = std::min(taken, preamble);
        if (preamble > 0) preamble_written(from_preamble);
        conn_.consume_output(taken - from_preamble);
    }
}

void WsSession::check_watermarks() {
    const std::size_t buffered = buffered_amount();
    if (!above_high_) {
        above_high_ = buffered > options_.high_watermark;
        return;
    }
    if (buffered > options_.low_watermark) return;
    above_high_ = false;
    ++depth_;
    handler_.on_drain(*this);
    --depth_;
    // What on_drain queued goes out now rather than at the next readiness event.
    if (phase_ == Phase::open && conn_.wants_write()) flush();
}

void WsSession::progress() {
    if (phase_ != Phase::open) return;
    if (conn_.state() == State::closing && !close_timed_) {
        close_timed_ = true;  // due_ no longer times pings: the engine is not open any more
        due_ = reactor().now().count() + options_.close_timeout.count();
        arm_by(due_);
    }
    if (conn_.state() != State::closed || buffered_amount() > 0) return;
    if (tls_ != nullptr && !tls_->close_sent()) {
        // RFC 8446 §6.1: close_notify after the last data, before TCP ends.
        tls_->close();
        flush();
        if (phase_ != Phase::open || buffered_amount() > 0) return;
    }
    // The close frame (ours or the reply) is out. RFC 6455 §7.1.1: the server ends TCP first,
    // a client waits for it; either way wait for the peer's FIN (discarding input) so that our
    // last frames are not lost to a reset from unread data.
    if (conn_.close_transport_now()) ::shutdown(fd_, SHUT_WR);
    phase_ = Phase::lingering;
    due_ = reactor().now().count() + options_.close_timeout.count();
    reactor().arm(timer_, options_.close_timeout);
}

void WsSession::update_interest() {
    if (fd_ < 0) return;
    Interest want = Interest::none;
    if (phase_ == Phase::lingering || (conn_.wants_read() && !above_high_)) {
        want = want | Interest::read;
    }
    if (write_blocked_) want = want | Interest::write;
    if (want == interest_) return;
    if (!reactor().modify(fd_, want).ok()) {
        fail_transport("the reactor refused the socket");
        return;
    }
    interest_ = want;
}

// ---- WsSession: sending

SendStatus WsSession::check_room(std::size_t wire_bytes) {
    if (!is_open()) return SendStatus::not_open;
    if (buffered_amount() + wire_bytes <= options_.max_buffered_bytes) return SendStatus::ok;
    // RFC 6455 §7.4.1, 1008: the peer does not read what it is sent (a policy the endpoint
    // enforces). The close frame goes out behind what is already queued.
    static_cast<void>(conn_.close(proto::close_code::kPolicyViolation, "send buffer limit"));
    after_api_call();
    return SendStatus::over_limit;
}

SendStatus WsSession::queued(proto::Error error) {
    if (error == proto::Error::not_open) return SendStatus::not_open;
    if (error != proto::Error::none) return SendStatus::invalid;
    if (buffered_amount() > options_.high_watermark) above_high_ = true;
    after_api_call();
    return SendStatus::ok;
}

SendStatus WsSession::send(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
    if (const SendStatus room = check_room(payload.size() + kFrameOverhead);
        room != SendStatus::ok) {
        return room;
    }
    last_message_ = reactor().now().count();
    return queued(conn_.send(opcode, payload));
}

SendStatus WsSession::send_text(std::string_view text) {
    return send(proto::Opcode::text,
                {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

SendStatus WsSession::send_binary(std::span<const std::uint8_t> data) {
    return send(proto::Opcode::binary, data);
}

SendStatus WsSession::send_shared(const proto::SharedBuffer& frame) {
    if (const SendStatus room = check_room(frame.size()); room != SendStatus::ok) return room;
    last_message_ = reactor().now().count();
    return queued(conn_.send_shared(frame));
}

SendStatus WsSession::ping(std::span<const std::uint8_t> payload) {
    if (!is_open()) return SendStatus::not_open;
    return queued(conn_.ping(payload));
}

SendStatus WsSession::close(std::uint16_t code, std::string_view reason) {
    if (!is_open()) return SendStatus::not_open;
    const SendStatus status = queued(conn_.close(code, reason));
    return status;
}

void WsSession::abort(std::string_view reason) {
    if (phase_ == Phase::done) return;
    fail_transport(reason);
    after_api_call();
}

// ---- WsSession: timers

void WsSession::arm_by(std::int64_t deadline) noexcept {
    if (deadline == INT64_MAX) return;
    const auto tick = static_cast<std::uint64_t>(std::max<std::int64_t>(deadline, 0));
    if (timer_.armed() && timer_.deadline() <= tick) return;
    reactor().timer_wheel().arm_at(timer_, tick);
}

std::int64_t WsSession::next_deadline() const noexcept {
    if (phase_ == Phase::lingering) return due_;
    if (phase_ != Phase::open) return INT64_MAX;
    std::int64_t next = INT64_MAX;
    const std::int64_t ping = options_.ping_interval.count();
    const std::int64_t pong_wait = options_.pong_wait.count();
    const std::int64_t write_wait = options_.write_wait.count();
    const std::int64_t idle = options_.idle_timeout.count();
    // pong_wait guards the whole open phase, the close handshake included.
    if (ping > 0 && pong_wait > 0) next = std::min(next, last_received_ + pong_wait);
    if (write_blocked_ && write_wait > 0) next = std::min(next, last_write_progress_ + write_wait);
    if (conn_.state() == State::open) {
        if (ping > 0) next = std::min(next, due_);
        if (idle > 0) next = std::min(next, last_message_ + idle);
    } else if (close_timed_) {
        next = std::min(next, due_);  // close_timeout
    }
    return next;
}

void WsSession::on_timer() {
    if (phase_ == Phase::done) {
        if (depth_ == 0) teardown();  // the reap after an API call ended the session; deletes this
        return;
    }
    enter();
    const std::int64_t now = reactor().now().count();
    if (phase_ == Phase::lingering) {
        // The close handshake is over; the peer just did not end TCP.
        if (now >= due_) close_socket();
    } else {
        const std::int64_t ping = options_.ping_interval.count();
        const std::int64_t pong_wait = options_.pong_wait.count();
        const std::int64_t write_wait = options_.write_wait.count();
        const std::int64_t idle = options_.idle_timeout.count();
        if (write_blocked_ && write_wait > 0 && now - last_write_progress_ >= write_wait) {
            fail_transport("no write progress within write_wait");
        }
        if (phase_ == Phase::open && ping > 0 && pong_wait > 0 &&
            now - last_received_ >= pong_wait) {
            if (above_high_) {
                // Not reading on purpose: silence proves nothing; the write wait guards this
                // state. Give the peer another pong_wait from now.
                last_received_ = now;
            } else {
                fail_transport("no pong or data within pong_wait");
            }
        }
        if (phase_ == Phase::open && close_timed_ && now >= due_) {
            fail_transport("close handshake timed out");
        }
        if (is_open() && ping > 0 && now >= due_) {
            static_cast<void>(conn_.ping());
            due_ = now + ping;
        }
        if (is_open() && idle > 0 && now - last_message_ >= idle) {
            static_cast<void>(conn_.close(proto::close_code::kNormal, "idle timeout"));
        }
    }
    // Write what the tick queued (a ping, a close).
    if (phase_ == Phase::open) flush();
    // leave() may end the session: arm first (a session that ends cancels its timer).
    arm_by(next_deadline());
    leave();
}

// ---- SessionHost

SessionHost::SessionHost(Reactor& reactor, std::size_t read_buffer_size)
    : reactor_(reactor), read_buffer_(read_buffer_size) {}

SessionHost::~SessionHost() {
    abort_all();
}

WsSession* SessionHost::adopt(const SessionStart& start) {
    const std::uint64_t id = next_id_++;
    std::unique_ptr<WsSession> owned(new WsSession(*this, id, start));
    WsSession* session = owned.get();
    // Small frames (pongs, close replies, short messages) must not wait for Nagle's timer.
    static_cast<void>(set_no_delay(start.fd));
    sessions_.emplace(id, std::move(owned));
    if (!reactor_.add(start.fd, Interest::read, *session).ok()) {
        // Never opened, so no callback; the end observer still runs (e.g. to free a slot).
        session->fail_transport("the reactor refused the socket");
        session->teardown();
        return nullptr;
    }
    session->interest_ = Interest::read;
    session->open(start.early_bytes);
    return find(id);
}

WsSession* SessionHost::find(std::uint64_t id) noexcept {
    const auto it = sessions_.find(id);
    return it != sessions_.end() ? it->second.get() : nullptr;
}

void SessionHost::close_all(std::uint16_t code, std::string_view reason) {
    std::vector<std::uint64_t> ids;
    ids.reserve(sessions_.size());
    for (const auto& entry : sessions_)
        ids.push_back(entry.first);
    for (const std::uint64_t id : ids) {
        if (WsSession* session = find(id)) static_cast<void>(session->close(code, reason));
    }
}

void SessionHost::abort_all() {
    std::vector<std::uint64_t> ids;
    ids.reserve(sessions_.size());
    for (const auto& entry : sessions_)
        ids.push_back(entry.first);
    for (const std::uint64_t id : ids) {
        WsSession* session = find(id);
        if (session == nullptr) continue;
        session->fail_transport("the host shut down");
        if (session->depth_ == 0) session->teardown();
    }
}

void SessionHost::destroy(WsSession& session) {
    auto node = sessions_.extract(session.id_);
    if (on_session_end_) on_session_end_(session);
    for (const auto& listener : end_listeners_)
        listener.second(session);
}

std::size_t SessionHost::add_session_end_listener(std::function<void(WsSession&)> listener) {
    const std::size_t id = next_listener_id_++;
    end_listeners_.emplace_back(id, std::move(listener));
    return id;
}

void SessionHost::remove_session_end_listener(std::size_t id) {
    std::erase_if(end_listeners_, [id](const auto& listener) { return listener.first == id; });
}

}  // namespace wsx::net
