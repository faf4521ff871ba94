#include "loadgen.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <thread>

#include "loadgen_worker.hpp"

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
}  // namespace

std::vector<std::uint8_t> loadgen_detail::make_pattern(std::size_t size) {
    std::vector<std::uint8_t> pattern(size);
    for (std::size_t i = 0; i < size; ++i)
        pattern[i] = static_cast<std::uint8_t>('A' + (i * 7 + i / 26) % 58);
    return pattern;
}

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

using loadgen_detail::BenchConn;
using loadgen_detail::now_ns;
using loadgen_detail::Worker;
using loadgen_detail::WorkerStats;

double cpu_seconds() noexcept {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& tv) {
        return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
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
