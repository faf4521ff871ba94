// One load-generator connection (see loadgen_worker.hpp): connect, TLS, upgrade, echo traffic
// with every echo checked and timed, the close handshake, and the next cycle in handshakes mode.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen_worker.hpp"
#include "net/socket.hpp"

namespace wsx::apps::loadgen_detail {

bool BenchConn::start() {
    const BenchOptions& options = worker_.options();
    const int fd = ::socket(options.server.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail("socket", errno, false);
        return false;
    }
    fd_ = fd;
    static_cast<void>(net::set_no_delay(fd));
    if (options.sources > 1 && options.server.family() == AF_INET) {
        // Source 127.0.0.k: each address has its own 64k ports towards the server's one port.
        // IP_BIND_ADDRESS_NO_PORT leaves the port choice to connect(), which knows the 4-tuple.
        const int one = 1;
        ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr = htonl(0x7F000001u + index_ % options.sources);
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
            fail("bind", errno, false);
            return false;
        }
    }
    cycle_start_ = now_ns();
    if (::connect(fd, options.server.data(), options.server.size()) != 0 && errno != EINPROGRESS) {
        fail("connect", errno, false);
        return false;
    }
    if (const auto added = worker_.reactor().add(fd, net::Interest::write, *this); !added.ok()) {
        fail("epoll", added.error, false);
        return false;
    }
    write_interest_ = true;
    phase_ = Phase::connecting;
    return true;
}

void BenchConn::on_error(int, int error) {
    fail(phase_ == Phase::connecting ? "connect" : "socket", error);
}

void BenchConn::on_writable(int) {
    if (phase_ == Phase::connecting) {
        if (const auto result = net::connect_result(fd_); !result.ok()) {
            fail("connect", result.error);
            return;
        }
        if (worker_.options().tls) {
            // The ClientHello is waiting in the stream's output at once.
            tls_ = net::TlsStream::client(worker_.options().tls, worker_.options().tls_host);
            phase_ = Phase::securing;
            if (tls_->state() == net::TlsState::failed) {
                if (worker_.first_error().empty()) worker_.first_error() = "TLS: " + tls_->error();
                fail("TLS", 0);
                return;
            }
            flush_tls();
            return;
        }
        start_upgrade();
        return;
    }
    if (phase_ == Phase::securing) {
        flush_tls();
        return;
    }
    if (phase_ == Phase::upgrading) {
        send_request();
        return;
    }
    flush();
}

void BenchConn::start_upgrade() {
    const BenchOptions& options = worker_.options();
    proto::ClientOptions hs;
    hs.host = options.host_header;
    hs.target = options.target;
    if (options.deflate) {
        offered_.emplace();
        hs.extensions = proto::write_deflate_offer(*offered_);
    }
    handshake_ = proto::ClientHandshake::create(std::move(hs));
    if (!handshake_) {
        fail("handshake key", EIO);
        return;
    }
    request_ = handshake_->request();
    request_sent_ = 0;
    response_.clear();
    phase_ = Phase::upgrading;
    send_request();
}

void BenchConn::send_request() {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(request_.data());
    const std::span<const std::uint8_t> rest{bytes + request_sent_,
                                             request_.size() - request_sent_};
    if (tls_) {
        request_sent_ += tls_->send(rest);
        flush_tls();
        return;
    }
    const auto written = net::write_some(fd_, rest);
    if (!written.ok() && written.error != EAGAIN) {
        fail("write", written.error);
        return;
    }
    if (written.ok()) request_sent_ += written.value;
    set_write_interest(request_sent_ != request_.size());
}

void BenchConn::set_write_interest(bool want) {
    if (want == write_interest_) return;
    write_interest_ = want;
    static_cast<void>(
        worker_.reactor().modify(fd_, want ? net::Interest::read_write : net::Interest::read));
}

void BenchConn::on_readable(int) {
    worker_.tick();
    const auto buffer = worker_.read_buffer();
    const auto got = net::read_some(fd_, buffer);
    if (!got.ok()) {
        if (got.error != EAGAIN) fail("read", got.error);
        return;
    }
    if (got.value == 0) {
        on_eof();
        return;
    }
    if (tls_) {
        on_tls_records(buffer, got.value);
    } else {
        on_plaintext(buffer.first(got.value));
    }
}

void BenchConn::on_plaintext(std::span<std::uint8_t> data) {
    if (phase_ == Phase::upgrading) {
        on_response(data);
    } else if (phase_ == Phase::open || phase_ == Phase::closing) {
        on_frames(data);
    }
}

void BenchConn::on_response(std::span<std::uint8_t> data) {
    response_.append(reinterpret_cast<const char*>(data.data()), data.size());
    const auto parsed = handshake_->parse(response_);
    if (parsed.status == proto::ParseStatus::need_more) return;
    if (parsed.status != proto::ParseStatus::ok) {
        fail("upgrade refused", 0);
        return;
    }
    // Bytes after the 101 are already frames (RFC 6455 §4.1): hand them over after opening.
    // They came with this read, so they fit where it was read.
    const std::size_t head = handshake_->consumed();
    const std::size_t early = response_.size() - head;
    const auto buffer = worker_.read_buffer();
    std::memcpy(buffer.data(), response_.data() + head, early);
    on_open(buffer.first(early));
}

void BenchConn::on_eof() {
    if (phase_ == Phase::securing) {
        fail("TLS handshake: connection closed", 0);
    } else if (phase_ == Phase::upgrading) {
        fail("upgrade: connection closed", 0);
    } else if (phase_ == Phase::closing || conn_->state() != proto::State::open) {
        finish_cycle();
    } else {
        fail("connection closed by the server", 0);
    }
}

void BenchConn::on_open(std::span<std::uint8_t> early) {
    proto::ConnectionOptions options;
    options.max_frame_size = kMaxMessage;
    options.max_message_size = kMaxMessage;
    if (offered_) {
        std::optional<proto::DeflateConfig> config;
        if (proto::accept_deflate_response(handshake_->extensions(), *offered_, config) !=
            proto::Error::none) {
            fail("bad permessage-deflate answer", 0);
            return;
        }
        options.deflate = std::move(config);
    }
    handshake_.reset();
    response_ = std::string();
    conn_.emplace(proto::Role::client, options);
    phase_ = Phase::open;
    worker_.stats().opened.add();
    worker_.slot_freed();
    const BenchMode mode = worker_.options().mode;
    if (mode == BenchMode::handshakes) {
        conn_->close(proto::close_code::kNormal);
        phase_ = Phase::closing;
        flush();
        return;
    }
    if (mode == BenchMode::echo && worker_.sending()) begin_sending();
    if (!early.empty()) {
        Events events{this};
        conn_->receive(early, events);
        flush();
    }
}

void BenchConn::on_frames(std::span<std::uint8_t> data) {
    Events events{this};
    const auto result = conn_->receive(data, events);
    if (result.error != proto::Error::none) {
        fail("protocol error", 0);
        return;
    }
    if (conn_->state() == proto::State::closed && !conn_->wants_write()) {
        // The close handshake is over: no need to wait for the server's FIN.
        finish_cycle();
        return;
    }
    flush();
}

void BenchConn::on_tls_records(std::span<std::uint8_t> buffer, std::size_t received) {
    const std::uint32_t generation = generation_;
    auto r = tls_->receive(buffer, received);
    for (;;) {
        if (r.state == net::TlsState::failed) {
            if (worker_.first_error().empty() && phase_ != Phase::closing)
                worker_.first_error() = "TLS: " + tls_->error();
            fail("TLS", 0);
            return;
        }
        if (phase_ == Phase::securing && r.state == net::TlsState::open) {
            start_upgrade();
            if (generation != generation_) return;
        }
        if (r.plaintext > 0) {
            on_plaintext(buffer.first(r.plaintext));
            if (generation != generation_) return;
        }
        if (r.state == net::TlsState::closed) {  // close_notify: the same as the end of the stream
            on_eof();
            return;
        }
        if (!r.more) break;
        r = tls_->receive(buffer, 0);
    }
    flush_tls();  // the handshake's answers, if nothing else wrote since
}

bool BenchConn::write_tls() {
    while (tls_->wants_write()) {
        const auto written = net::write_some(fd_, tls_->pending_output());
        if (!written.ok()) {
            if (written.error == EAGAIN) return true;
            fail("write", written.error);
            return false;
        }
        tls_->consume_output(written.value);
    }
    return true;
}

void BenchConn::flush_tls() {
    proto::IoSlice slices[64];
    for (;;) {
        std::size_t taken = 0;
        if (conn_ && conn_->wants_write()) {
            const std::size_t n = conn_->pending_output(slices);
            taken = tls_->send({slices, n});
            conn_->consume_output(taken);
        }
        if (!write_tls()) return;
        // Stop when the socket is full, or nothing more can be encrypted (all of it, or the
        // stream takes no more after a close or failure).
        if (tls_->wants_write() || taken == 0 || !conn_->wants_write()) break;
    }
    const bool request_left = phase_ == Phase::upgrading && request_sent_ < request_.size();
    set_write_interest(tls_->wants_write() || request_left || (conn_ && conn_->wants_write()));
}

void BenchConn::mark_finished() noexcept {
    if (finished_) return;
    finished_ = true;
    worker_.stats().finished.add();
}

void BenchConn::begin_sending() {
    sent_at_.assign(worker_.options().in_flight, 0);
    if (quota_ == 0) mark_finished();  // fewer --messages than connections
    const unsigned burst = worker_.options().in_flight;
    for (unsigned i = 0; i < burst; ++i)
        send_next();
    flush();
}

void BenchConn::send_next() {
    if (next_seq_ >= quota_ || conn_->state() != proto::State::open) return;
    const BenchOptions& options = worker_.options();
    auto& scratch = worker_.scratch();
    write_bench_payload(scratch.data(), scratch.size(), next_seq_);
    const auto opcode = options.text ? proto::Opcode::text : proto::Opcode::binary;
    if (conn_->send(opcode, scratch) != proto::Error::none) {
        fail("send refused", 0);
        return;
    }
    sent_at_[next_seq_ % sent_at_.size()] = worker_.now();
    ++next_seq_;
    worker_.stats().sent.add();
}

void BenchConn::on_echo(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
    WorkerStats& stats = worker_.stats();
    const BenchOptions& options = worker_.options();
    if (expect_seq_ >= next_seq_) {
        stats.mismatches.add();
        stats.errors.add();
        return;
    }
    const bool ok =
        opcode == (options.text ? proto::Opcode::text : proto::Opcode::binary) &&
        payload.size() == options.size &&
        check_bench_payload(payload.data(), payload.size(), worker_.pattern(), expect_seq_);
    if (ok) {
        worker_.latency().record(worker_.now() - sent_at_[expect_seq_ % sent_at_.size()]);
        stats.received.add();
        stats.bytes.add(payload.size());
    } else {
        stats.mismatches.add();
        stats.errors.add();
        if (worker_.first_error().empty())
            worker_.first_error() = "echo differs from what was sent";
    }
    ++expect_seq_;
    if (expect_seq_ == quota_) mark_finished();
    send_next();
}

void BenchConn::flush() {
    if (!conn_) return;
    if (tls_) {
        flush_tls();
        return;
    }
    proto::IoSlice slices[64];
    while (conn_->wants_write()) {
        const std::size_t n = conn_->pending_output(slices);
        const auto written = net::write_slices(fd_, {slices, n});
        if (!written.ok()) {
            if (written.error != EAGAIN) {
                fail("write", written.error);
                return;
            }
            break;
        }
        conn_->consume_output(written.value);
    }
    set_write_interest(conn_->wants_write());
}

void BenchConn::close_websocket() {
    if (phase_ == Phase::open) {
        conn_->close(proto::close_code::kNormal);
        phase_ = Phase::closing;
        flush();
    } else if (phase_ == Phase::connecting || phase_ == Phase::securing ||
               phase_ == Phase::upgrading) {
        drop();
    }
}

void BenchConn::finish_cycle() {
    if (worker_.options().mode == BenchMode::echo) {
        mark_finished();
        if (!worker_.closing()) {  // the server closed a connection in the middle of the run
            fail("connection closed by the server", 0);
            return;
        }
    }
    if (worker_.options().mode == BenchMode::handshakes) {
        worker_.stats().handshakes.add();
        worker_.latency().record(now_ns() - cycle_start_);
    }
    drop();
    phase_ = Phase::done;
    if (worker_.options().mode == BenchMode::handshakes && !worker_.closing()) {
        // Another cycle on the same slot; it counts as pending again until its upgrade ends.
        if (start()) worker_.slot_taken();
    }
}

void BenchConn::fail(const char* what, int error, bool retry) {
    WorkerStats& stats = worker_.stats();
    const bool pending =
        phase_ == Phase::connecting || phase_ == Phase::securing || phase_ == Phase::upgrading;
    const bool before_open = pending || !retry;  // !retry: start() itself failed
    const bool expected = worker_.closing() && phase_ == Phase::closing;
    if (!expected) {
        stats.errors.add();
        if (before_open) stats.failed.add();
        if (worker_.first_error().empty()) {
            worker_.first_error() = what;
            if (error != 0) (worker_.first_error() += ": ") += std::strerror(error);
        }
    }
    if (phase_ == Phase::open || phase_ == Phase::closing) mark_finished();
    drop();
    phase_ = Phase::done;
    if (pending) worker_.slot_freed();
    // A handshakes run keeps every slot cycling: one failed cycle is counted, not fatal.
    if (retry && worker_.options().mode == BenchMode::handshakes && !worker_.closing() && start())
        worker_.slot_taken();
}

void BenchConn::drop() noexcept {
    if (fd_ < 0) return;
    static_cast<void>(worker_.reactor().remove(fd_));
    static_cast<void>(net::close_fd(fd_));
    fd_ = -1;
    conn_.reset();
    tls_.reset();
    ++generation_;
    write_interest_ = false;
    next_seq_ = expect_seq_ = 0;
}

}  // namespace wsx::apps::loadgen_detail
