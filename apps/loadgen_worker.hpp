// Internal to the load generator (apps/loadgen.cpp, apps/bench_conn.cpp): one Worker per
// thread, owning a reactor and its BenchConn connections, each a raw non-blocking socket driving a
// proto::Connection in client role (optionally through a TlsStream).
#pragma once

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "loadgen.hpp"
#include "net/reactor.hpp"
#include "net/tls.hpp"
#include "proto/connection.hpp"
#include "proto/deflate.hpp"
#include "proto/handshake.hpp"

namespace wsx::apps::loadgen_detail {

inline std::uint64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

// ASCII so that the same bytes are valid text; varied so a shifted or stale echo cannot match.
std::vector<std::uint8_t> make_pattern(std::size_t size);

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

}  // namespace wsx::apps::loadgen_detail
