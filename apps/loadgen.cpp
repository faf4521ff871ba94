#include "loadgen.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>

#include "net/reactor.hpp"
#include "proto/connection.hpp"
#include "proto/deflate.hpp"
#include "proto/handshake.hpp"

namespace wsx::apps {

// ---- LatencyHistogram

namespace {
constexpr unsigned kSubBits = 5;  // 32 buckets per power of two
constexpr std::size_t kSub = std::size_t{1} << kSubBits;
constexpr std::size_t kBucketCount = 2 * kSub + (64 - kSubBits - 1) * kSub;
}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kBucketCount, 0) {}

std::size_t LatencyHistogram::bucket_of(std::uint64_t ns) noexcept {
    if (ns < 2 * kSub) return static_cast<std::size_t>(ns);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(ns));
    const unsigned shift = msb - kSubBits;
    const std::uint64_t top = ns >> shift;  // in [kSub, 2 kSub)
    return 2 * kSub + (shift - 1) * kSub + static_cast<std::size_t>(top - kSub);
}

std::uint64_t LatencyHistogram::bucket_low(std::size_t index) noexcept {
    if (index < 2 * kSub) return index;
    const std::size_t shift = (index - 2 * kSub) / kSub + 1;
    const std::uint64_t top = kSub + (index - 2 * kSub) % kSub;
    return top << shift;
}

std::uint64_t LatencyHistogram::bucket_high(std::size_t index) noexcept {
    return index + 1 < kBucketCount ? bucket_low(index + 1) - 1
                                    : std::numeric_limits<std::uint64_t>::max();
}

void LatencyHistogram::record(std::uint64_t ns) noexcept {
    ++buckets_[bucket_of(ns)];
    ++count_;
    max_ = std::max(max_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
    for (std::size_t i = 0; i < kBucketCount; ++i)
        buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::quantile(double q) const noexcept {
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBucketCount; ++i) {
        seen += buckets_[i];
        if (seen >= rank) {
            const std::uint64_t low = bucket_low(i);
            return std::min(max_, low + (bucket_high(i) - low) / 2);
        }
    }
    return max_;
}

// ---- Payloads

namespace {
constexpr std::size_t kSeqDigits = 16;
constexpr char kHex[] = "0123456789abcdef";

// ASCII so that the same bytes are valid text; varied so a shifted or stale echo cannot match.
std::vector<std::uint8_t> make_pattern(std::size_t size) {
    std::vector<std::uint8_t> pattern(size);
    for (std::size_t i = 0; i < size; ++i)
        pattern[i] = static_cast<std::uint8_t>('A' + (i * 7 + i / 26) % 58);
    return pattern;
}
}  // namespace

void write_bench_payload(std::uint8_t* out, std::size_t size, std::uint64_t seq) noexcept {
    const std::size_t digits = std::min(size, kSeqDigits);
    for (std::size_t i = digits; i-- > 0;) {
        out[i] = static_cast<std::uint8_t>(kHex[seq & 0xF]);
        seq >>= 4;
    }
}

bool check_bench_payload(const std::uint8_t* data, std::size_t size, const std::uint8_t* pattern,
                         std::uint64_t seq) noexcept {
    const std::size_t digits = std::min(size, kSeqDigits);
    for (std::size_t i = digits; i-- > 0;) {
        if (data[i] != static_cast<std::uint8_t>(kHex[seq & 0xF])) return false;
        seq >>= 4;
    }
    return size == digits || std::memcmp(data + digits, pattern + digits, size - digits) == 0;
}

// ---- The generator

namespace {

std::uint64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

double cpu_seconds() noexcept {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Written only by the owning worker thread and read by the progress printer: a relaxed load and
// store (no locked instruction) is enough for a counter with a single writer.
struct Counter {
    std::atomic<std::uint64_t> value{0};
    void add(std::uint64_t n = 1) noexcept {
        value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
};

struct WorkerStats {
    Counter sent, received, bytes, errors, mismatches, handshakes, opened, failed, finished;
};

// Simultaneous connects and handshakes per thread: enough to keep the server's accept queue busy
// without overflowing its SYN backlog (which would stall connects for a retransmit second).
constexpr unsigned kMaxPendingPerThread = 256;
constexpr std::size_t kReadBufferSize = 256 * 1024;
constexpr std::uint64_t kMaxMessage = 64 * 1024 * 1024;

class Worker;

class BenchConn final : public net::IoHandler {
  public:
    // securing: the TLS handshake of a wss:// connection, between connecting and upgrading.
    enum class Phase : std::uint8_t { idle, connecting, securing, upgrading, open, closing, done };

    BenchConn(Worker& worker, unsigned index) : worker_(worker), index_(index) {}
    ~BenchConn() override { drop(); }

    bool start();  // false: could not even create the socket (counted as a failure)
    void begin_sending();
    void stop_sending() noexcept { quota_ = next_seq_; }
    void close_websocket();
    void drop() noexcept;
    Phase phase() const noexcept { return phase_; }
    bool drained() const noexcept { return expect_seq_ == next_seq_; }
    void set_quota(std::uint64_t quota) noexcept { quota_ = quota; }

  private:
    struct Events {
        BenchConn* self;
        void on_message(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
            self->on_echo(opcode, payload);
        }
        void on_close(const proto::CloseInfo&) {}
    };

    void on_readable(int fd) override;
    void on_writable(int fd) override;
    void on_error(int fd, int error) override;

    void start_upgrade();
    void send_request();
    // What was read (plaintext, at the front of the worker's read buffer), by phase.
    void on_plaintext(std::span<std::uint8_t> data);
    void on_response(std::span<std::uint8_t> data);
    void on_frames(std::span<std::uint8_t> data);
    void on_eof();
    // wss://: decrypt what was read, deliver the plaintext; encrypt the connection's output and
    // write.
    void on_tls_records(std::span<std::uint8_t> buffer, std::size_t received);
    void flush_tls();
    bool write_tls();  // false: the write failed and the connection is gone
    void set_write_interest(bool want);
    void on_open(std::span<std::uint8_t> early);
    void on_echo(proto::Opcode opcode, std::span<const std::uint8_t> payload);
    void send_next();
    void flush();
    // `retry`: a handshakes run starts the slot's next cycle (never from inside start()).
    void fail(const char* what, int error, bool retry = true);
    void finish_cycle();
    // This connection will not deliver more echoes: its quota came back, or it died.
    void mark_finished() noexcept;

    Worker& worker_;
    unsigned index_;
    int fd_ = -1;
    Phase phase_ = Phase::idle;
    bool write_interest_ = false;
    std::optional<proto::ClientHandshake> handshake_;
    std::optional<proto::DeflateOptions> offered_;
    std::string request_;
    std::size_t request_sent_ = 0;
    std::string response_;
    std::optional<proto::Connection> conn_;
    std::unique_ptr<net::TlsStream> tls_;
    // Changes whenever the socket is dropped, so a loop over decrypted records notices that a
    // callback ended (or restarted) the connection under it.
    std::uint32_t generation_ = 0;
    std::uint64_t cycle_start_ = 0;
    std::uint64_t next_seq_ = 0;    // next sequence number to send
    std::uint64_t expect_seq_ = 0;  // next echo expected
    std::uint64_t quota_ = 0;       // send while next_seq_ < quota_
    std::vector<std::uint64_t> sent_at_;
    bool finished_ = false;  // counted in WorkerStats::finished (a --messages run waits for all)
};

class Worker {
  public:
    Worker(const BenchOptions& options, unsigned first_index, unsigned count)
        : options_(options),
          read_buffer_(kReadBufferSize),
          pattern_(make_pattern(options.size)),
          scratch_(pattern_) {
        auto reactor = net::Reactor::create(net::Backend::automatic);
        if (reactor.ok()) reactor_ = std::move(reactor.value);
        conns_.reserve(count);
        for (unsigned i = 0; i < count; ++i)
            conns_.push_back(std::make_unique<BenchConn>(*this, first_index + i));
    }

    bool ready() const noexcept { return reactor_ != nullptr; }
    // The loop stopped on a failed wait: tasks posted to it will never run.
    bool dead() const noexcept { return dead_.load(std::memory_order_acquire); }
    net::Reactor& reactor() noexcept { return *reactor_; }
    const BenchOptions& options() const noexcept { return options_; }
    WorkerStats& stats() noexcept { return stats_; }
    LatencyHistogram& latency() noexcept { return latency_; }
    std::span<std::uint8_t> read_buffer() noexcept { return read_buffer_; }
    const std::uint8_t* pattern() const noexcept { return pattern_.data(); }
    std::vector<std::uint8_t>& scratch() noexcept { return scratch_; }
    std::uint64_t now() const noexcept { return now_; }
    void tick() noexcept { now_ = now_ns(); }
    bool sending() const noexcept { return sending_; }
    unsigned size() const noexcept { return static_cast<unsigned>(conns_.size()); }
    std::string& first_error() noexcept { return first_error_; }

    void run() {
        tick();
        open_more();
        while (!quit_) {
            const auto r = reactor_->run_once(std::chrono::milliseconds(100));
            if (!r.ok() && r.error != EINTR) {
                stats_.errors.add();
                if (first_error_.empty())
                    first_error_ = std::string("reactor: ") + std::strerror(r.error);
                // Set last: once it is seen, this thread runs no more posted tasks.
                dead_.store(true, std::memory_order_release);
                break;
            }
        }
        for (auto& conn : conns_)
            conn->drop();
    }

    // The rest run on the worker's thread (posted by the main thread).
    void begin_sending(std::uint64_t messages_total, unsigned connections_total) {
        tick();
        sending_ = true;
        for (auto& conn : conns_) {
            if (conn->phase() != BenchConn::Phase::open) continue;
            if (messages_total == 0) {
                conn->set_quota(std::numeric_limits<std::uint64_t>::max());
            } else {
                const unsigned index = static_cast<unsigned>(&conn - conns_.data()) + first_of();
                conn->set_quota(messages_total / connections_total +
                                (index < messages_total % connections_total ? 1 : 0));
            }
            conn->begin_sending();
        }
    }
    void stop_sending() {
        sending_ = false;
        for (auto& conn : conns_)
            conn->stop_sending();
    }
    void close_all() {
        closing_ = true;
        for (auto& conn : conns_)
            conn->close_websocket();
    }
    void quit() { quit_ = true; }
    bool drained() const {
        return std::all_of(conns_.begin(), conns_.end(), [](const auto& c) {
            return c->phase() != BenchConn::Phase::open || c->drained();
        });
    }
    bool closing() const noexcept { return closing_; }

    // A connect or handshake finished (either way): start the next ones.
    void slot_freed() {
        if (pending_ > 0) --pending_;
        open_more();
    }
    void slot_taken() { ++pending_; }

    void set_first(unsigned first) noexcept { first_ = first; }

  private:
    unsigned first_of() const noexcept { return first_; }
    void open_more() {
        while (pending_ < kMaxPendingPerThread && next_to_open_ < conns_.size() && !closing_) {
            auto& conn = conns_[next_to_open_++];
            if (conn->start()) ++pending_;
        }
    }

    const BenchOptions& options_;
    std::unique_ptr<net::Reactor> reactor_;
    std::vector<std::unique_ptr<BenchConn>> conns_;
    std::vector<std::uint8_t> read_buffer_;
    std::vector<std::uint8_t> pattern_;
    std::vector<std::uint8_t> scratch_;  // the pattern with the current sequence number on top
    WorkerStats stats_;
    LatencyHistogram latency_;
    std::string first_error_;
    std::uint64_t now_ = 0;
    std::size_t next_to_open_ = 0;
    unsigned pending_ = 0;
    unsigned first_ = 0;
    bool sending_ = false;
    bool closing_ = false;
    bool quit_ = false;
    std::atomic<bool> dead_{false};
};

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

struct Totals {
    std::uint64_t sent = 0, received = 0, bytes = 0, errors = 0, mismatches = 0, handshakes = 0,
                  opened = 0, failed = 0, finished = 0;
};

Totals sum(const std::vector<std::unique_ptr<Worker>>& workers) {
    Totals t;
    for (const auto& w : workers) {
        WorkerStats& s = w->stats();
        t.sent += s.sent.get();
        t.received += s.received.get();
        t.bytes += s.bytes.get();
        t.errors += s.errors.get();
        t.mismatches += s.mismatches.get();
        t.handshakes += s.handshakes.get();
        t.opened += s.opened.get();
        t.failed += s.failed.get();
        t.finished += s.finished.get();
    }
    return t;
}

// Runs `function` on every worker's thread and waits for all of them (a worker whose loop died
// never runs it; the reactor discards the task without calling it).
template <typename F>
void on_every_worker(std::vector<std::unique_ptr<Worker>>& workers, F function) {
    std::vector<std::atomic<bool>> ran(workers.size());
    for (std::size_t i = 0; i < workers.size(); ++i) {
        Worker* worker = workers[i].get();
        std::atomic<bool>* flag = &ran[i];
        worker->reactor().post([worker, &function, flag] {
            function(*worker);
            flag->store(true, std::memory_order_release);
        });
    }
    for (std::size_t i = 0; i < workers.size(); ++i) {
        while (!ran[i].load(std::memory_order_acquire) && !workers[i]->dead())
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

template <typename P>
bool all_workers(std::vector<std::unique_ptr<Worker>>& workers, P predicate) {
    std::atomic<std::size_t> yes{0};
    on_every_worker(workers, [&](Worker& w) {
        if (predicate(w)) yes.fetch_add(1, std::memory_order_relaxed);
    });
    return yes.load() == workers.size();
}

void raise_fd_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

void print_progress(double t, const Totals& now, const Totals& before, double dt) {
    std::fprintf(stderr,
                 "bench: %5.1fs  %10.0f msg/s  %9.2f MB/s  %8.0f handshakes/s  open %llu  "
                 "errors %llu\n",
                 t, static_cast<double>(now.received - before.received) / dt,
                 static_cast<double>(now.bytes - before.bytes) / dt / 1e6,
                 static_cast<double>(now.handshakes - before.handshakes) / dt,
                 static_cast<unsigned long long>(now.opened),
                 static_cast<unsigned long long>(now.errors));
}

}  // namespace

BenchReport run_bench(const BenchOptions& options, const std::atomic<bool>& stop) {
    BenchReport report;
    raise_fd_limit();
    const unsigned threads = std::max(1u, std::min(options.threads, options.connections));
    std::vector<std::unique_ptr<Worker>> workers;
    unsigned first = 0;
    for (unsigned t = 0; t < threads; ++t) {
        const unsigned count = options.connections / threads + (t < options.connections % threads);
        workers.push_back(std::make_unique<Worker>(options, first, count));
        workers.back()->set_first(first);
        first += count;
        if (!workers.back()->ready()) {
            report.first_error = "cannot create a reactor";
            ++report.errors;
            return report;
        }
    }
    std::vector<std::thread> running;
    for (auto& w : workers)
        running.emplace_back([worker = w.get()] { worker->run(); });

    const auto seconds_since = [](std::uint64_t start) {
        return static_cast<double>(now_ns() - start) / 1e9;
    };
    const auto interruptible_sleep = [&stop](std::uint64_t until) {
        while (!stop.load() && now_ns() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(
                std::min<std::uint64_t>(50, (until - now_ns()) / 1'000'000 + 1)));
    };

    // Open everything first (except in handshakes mode, where opening is the measurement).
    const std::uint64_t open_start = now_ns();
    if (options.mode != BenchMode::handshakes) {
        std::uint64_t next_report = open_start + 1'000'000'000u;
        Totals last{};
        for (;;) {
            const Totals t = sum(workers);
            if (t.opened + t.failed >= options.connections || stop.load()) break;
            if (seconds_since(open_start) > 60) break;
            if (options.progress && now_ns() >= next_report) {
                std::fprintf(stderr, "bench: opening, %llu of %u open, %llu failed\n",
                             static_cast<unsigned long long>(t.opened), options.connections,
                             static_cast<unsigned long long>(t.failed));
                next_report += 1'000'000'000u;
            }
            last = t;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        static_cast<void>(last);
    }
    const Totals at_open = sum(workers);
    if (options.mode == BenchMode::idle)
        std::fprintf(stderr, "bench: idle: %llu connections open, %llu failed\n",
                     static_cast<unsigned long long>(at_open.opened),
                     static_cast<unsigned long long>(at_open.failed));

    const double cpu_start = cpu_seconds();
    const std::uint64_t start = now_ns();
    if (options.mode == BenchMode::echo && at_open.opened > 0) {
        on_every_worker(workers,
                        [&](Worker& w) { w.begin_sending(options.messages, options.connections); });
    }
    const std::uint64_t end_by = start + static_cast<std::uint64_t>(options.duration_s * 1e9);
    std::uint64_t next_report = start + 1'000'000'000u;
    Totals before = sum(workers);
    std::uint64_t before_at = start;
    Totals at_end{};
    std::uint64_t end = 0;
    std::uint64_t last_received = 0;
    std::uint64_t last_progress = start;
    bool stalled = false;
    for (;;) {
        const std::uint64_t t = now_ns();
        const Totals totals = sum(workers);
        if (totals.received != last_received) {
            last_received = totals.received;
            last_progress = t;
        }
        // A --messages run has no deadline of its own: give up when echoes stop coming back.
        stalled = options.messages > 0 && t - last_progress > 10'000'000'000u;
        const bool all_done = options.mode == BenchMode::echo && options.messages > 0 &&
                              totals.finished >= at_open.opened;
        const bool out_of_time =
            (options.messages == 0 || options.mode != BenchMode::echo) && t >= end_by;
        const bool nothing_open = options.mode == BenchMode::echo && at_open.opened == 0;
        if (all_done || out_of_time || stop.load() || nothing_open || stalled) {
            at_end = totals;
            end = t;
            break;
        }
        if (options.progress && t >= next_report) {
            print_progress(static_cast<double>(t - start) / 1e9, totals, before,
                           static_cast<double>(t - before_at) / 1e9);
            before = totals;
            before_at = t;
            next_report += 1'000'000'000u;
        }
        const std::uint64_t wake = std::min({next_report, end_by, t + 2'000'000u});
        interruptible_sleep(options.messages > 0 ? t + 1'000'000u : wake);
    }
    const double cpu_end = cpu_seconds();

    // Wind down: let the echoes in flight come back (they are checked, not counted in the rate),
    // then close every connection with 1000 and wait briefly for the close handshakes.
    on_every_worker(workers, [](Worker& w) { w.stop_sending(); });
    const std::uint64_t drain_until = now_ns() + 3'000'000'000u;
    while (now_ns() < drain_until && !all_workers(workers, [](Worker& w) { return w.drained(); }))
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    on_every_worker(workers, [](Worker& w) { w.close_all(); });
    std::this_thread::sleep_for(
        std::chrono::milliseconds(options.mode == BenchMode::idle ? 0 : 100));
    on_every_worker(workers, [](Worker& w) { w.quit(); });
    for (auto& thread : running)
        thread.join();

    const Totals final_totals = sum(workers);
    report.elapsed_s = static_cast<double>(end - start) / 1e9;
    report.sent = final_totals.sent;
    report.received = options.messages > 0 ? final_totals.received : at_end.received;
    report.bytes = options.messages > 0 ? final_totals.bytes : at_end.bytes;
    report.errors = final_totals.errors;
    report.mismatches = final_totals.mismatches;
    report.handshakes = at_end.handshakes;
    report.opened = static_cast<unsigned>(at_open.opened);
    report.connect_failures = static_cast<unsigned>(final_totals.failed);
    report.cpu_s = cpu_end - cpu_start;
    for (auto& w : workers) {
        report.latency.merge(w->latency());
        if (report.first_error.empty()) report.first_error = w->first_error();
    }
    // Echoes still missing after the drain are lost messages.
    if (options.mode == BenchMode::echo &&
        final_totals.received + final_totals.mismatches < final_totals.sent) {
        const std::uint64_t lost =
            final_totals.sent - final_totals.received - final_totals.mismatches;
        report.errors += lost;
        if (report.first_error.empty()) report.first_error = "echoes never arrived";
    }
    if (stalled) {
        ++report.errors;
        if (report.first_error.empty()) report.first_error = "no echo arrived for 10 s";
    }
    return report;
}

}  // namespace wsx::apps
