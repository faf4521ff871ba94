// The load generator behind `wsx bench`: many client connections per thread on wsx's own
// Reactor, each a raw non-blocking socket driving a proto::Connection in client role (no
// SessionHost, timers or handler indirection: the generator must cost less than the servers it
// measures).
//
// Modes:
//   echo        each connection keeps `in_flight` messages outstanding and sends the next one
//               when an echo returns; every echo is checked byte for byte (a sequence number in
//               the first bytes, the rest compared with the connection's template) and timed.
//   handshakes  each connection loops: TCP connect, upgrade, close handshake, again.
//   idle        opens `connections` connections (from several 127.0.0.x source addresses when
//               asked, to pass the 64k ports of one address) and holds them without traffic.
// Any mode runs over TLS (wss://) when options.tls is set.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/socket.hpp"
#include "net/tls.hpp"

namespace wsx::apps {

enum class BenchMode : std::uint8_t { echo, handshakes, idle };

struct BenchOptions {
    BenchMode mode = BenchMode::echo;
    net::SocketAddress server;  // numeric address and port to connect to
    std::string host_header;    // Host header of the upgrade request
    std::string target = "/";
    // wss://: every connection runs a TLS handshake (a full one, no session resumption) before
    // the upgrade, with this client context and SNI / verified name `tls_host`. Null: ws://.
    std::shared_ptr<const net::TlsContext> tls;
    std::string tls_host;
    unsigned connections = 100;
    std::size_t size = 16;  // payload bytes per message
    unsigned in_flight = 1;
    double duration_s = 10;      // echo and handshakes: length of the run; idle: how long to hold
    std::uint64_t messages = 0;  // echo: total messages to send instead of a duration (0: none)
    bool text = false;
    bool deflate = false;  // offer permessage-deflate
    unsigned threads = 1;
    // idle: bind source addresses 127.0.0.1 .. 127.0.0.<sources>, round robin.
    unsigned sources = 1;
    bool progress = true;  // a line per second on stderr
};

// Round-trip latency histogram: log-linear buckets, exact below 64 ns, then 32 per power of two
// (about 3% resolution), so merging threads and taking percentiles is cheap and bounded.
class LatencyHistogram {
  public:
    LatencyHistogram();
    void record(std::uint64_t ns) noexcept;
    void merge(const LatencyHistogram& other) noexcept;
    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t max() const noexcept { return max_; }
    // The value at quantile q in [0, 1], as the middle of its bucket (0 when empty).
    std::uint64_t quantile(double q) const noexcept;

    static std::size_t bucket_of(std::uint64_t ns) noexcept;
    static std::uint64_t bucket_low(std::size_t index) noexcept;
    static std::uint64_t bucket_high(std::size_t index) noexcept;

  private:
    std::vector<std::uint64_t> buckets_;
    std::uint64_t count_ = 0;
    std::uint64_t max_ = 0;
};

struct BenchReport {
    double elapsed_s = 0;  // the measured window (all connections open until the end)
    std::uint64_t sent = 0;
    std::uint64_t received = 0;  // echoes received and verified
    std::uint64_t errors = 0;    // mismatched echoes, failed or lost connections
    std::uint64_t mismatches = 0;
    std::uint64_t bytes = 0;  // payload bytes of the verified echoes
    std::uint64_t handshakes = 0;
    unsigned opened = 0;  // connections that completed the upgrade
    unsigned connect_failures = 0;
    double cpu_s = 0;  // user + system CPU of this process over the window
    LatencyHistogram latency;
    std::string first_error;

    double messages_per_s() const noexcept { return elapsed_s > 0 ? received / elapsed_s : 0; }
    double bytes_per_s() const noexcept { return elapsed_s > 0 ? bytes / elapsed_s : 0; }
    double handshakes_per_s() const noexcept { return elapsed_s > 0 ? handshakes / elapsed_s : 0; }
};

// Runs the benchmark to its end (or until `stop` becomes true) and returns what it measured.
// Progress lines go to stderr when options.progress is set.
BenchReport run_bench(const BenchOptions& options, const std::atomic<bool>& stop);

// Payload checks, exposed for tests: the message with sequence number `seq` for a connection
// whose template is `pattern` (ASCII, so valid as text too), and its verification.
void write_bench_payload(std::uint8_t* out, std::size_t size, std::uint64_t seq) noexcept;
bool check_bench_payload(const std::uint8_t* data, std::size_t size, const std::uint8_t* pattern,
                         std::uint64_t seq) noexcept;

}  // namespace wsx::apps
