// wsx permessage-deflate benchmarks (RFC 7692): compress and inflate speed of proto::Deflater and
// proto::Inflater per message size, for text-like and random payloads, with and without context
// takeover, with the tuning a Connection uses by default. How and why: bench/README.md.
//
//   deflate/<compress,inflate>/<text,random>/<takeover,no_takeover>/<message bytes>
//
// Bytes/s count message (uncompressed) bytes in both directions; `ratio` is compressed bytes per
// message byte; `allocs_per_msg` counts operator new per message (zlib's own malloc calls are not
// counted: Deflater/Inflater keep their zlib state between messages).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "alloc_counter.hpp"
#include "proto/deflate.hpp"

namespace wsx::bench {
namespace {

using benchmark::State;
using proto::Deflater;
using proto::DeflateTuning;
using proto::Error;
using proto::Inflater;

constexpr std::array<std::size_t, 6> kMessageSizes = {16,        125,       1024,
                                                      16 * 1024, 64 * 1024, 128 * 1024};

// With context takeover each message is compressed against the ones before it, so the benchmark
// cycles through distinct messages; at least this many message bytes per cycle, so that the
// 32 KiB window (RFC 7692 §7.1.2) never holds a copy of the message being compressed.
constexpr std::size_t kMinCycleBytes = 64 * 1024;
constexpr std::size_t kMinMessages = 16;

enum class Payload : std::uint8_t { text, random };

// Text-like: JSON chat events built from a small vocabulary, as a chat or ticker service sends
// them. Each message differs (ids, word choice), so they compress like real traffic, not like
// repeats.
std::vector<std::uint8_t> text_message(std::size_t size, std::mt19937_64& rng) {
    static constexpr std::string_view kWords[] = {
        "the",    "market", "opened", "higher", "price", "update", "order", "filled", "user",
        "joined", "room",   "hello",  "world",  "quote", "trade",  "bid",   "ask",    "volume",
        "closed", "lower",  "alert",  "status", "ok",    "error",  "retry", "level",  "server"};
    std::string out;
    while (out.size() < size) {
        out += R"({"id":)" + std::to_string(rng() % 1000000) + R"(,"user":")";
        out += kWords[rng() % std::size(kWords)];
        out += R"(","ts":)" + std::to_string(1700000000000 + rng() % 100000000) + R"(,"text":")";
        const std::size_t words = 3 + rng() % 12;
        for (std::size_t w = 0; w < words; ++w) {
            if (w != 0) out += ' ';
            out += kWords[rng() % std::size(kWords)];
        }
        out += "\"}\n";
    }
    out.resize(size);
    return {out.begin(), out.end()};
}

std::vector<std::uint8_t> random_message(std::size_t size, std::mt19937_64& rng) {
    std::vector<std::uint8_t> out(size);
    for (auto& b : out)
        b = static_cast<std::uint8_t>(rng());
    return out;
}

struct Corpus {
    std::vector<std::vector<std::uint8_t>> messages;
    std::size_t bytes = 0;
};

Corpus make_corpus(Payload kind, std::size_t size) {
    std::mt19937_64 rng(size * 2 + static_cast<std::size_t>(kind));
    Corpus c;
    while (c.messages.size() < kMinMessages || c.bytes < kMinCycleBytes) {
        c.messages.push_back(kind == Payload::text ? text_message(size, rng)
                                                   : random_message(size, rng));
        c.bytes += size;
    }
    return c;
}

// What a Connection runs with by default: level 6, memLevel 8, 15-bit windows.
DeflateTuning default_tuning() {
    return DeflateTuning{};
}

void report(State& state, std::uint64_t messages, std::uint64_t message_bytes,
            std::uint64_t compressed_bytes, std::uint64_t allocations, bool ok) {
    state.SetBytesProcessed(static_cast<std::int64_t>(message_bytes));
    state.SetItemsProcessed(static_cast<std::int64_t>(messages));
    state.counters["ratio"] =
        benchmark::Counter(message_bytes == 0 ? 0.0
                                              : static_cast<double>(compressed_bytes) /
                                                    static_cast<double>(message_bytes));
    state.counters["allocs_per_msg"] = benchmark::Counter(
        messages == 0 ? 0.0 : static_cast<double>(allocations) / static_cast<double>(messages));
    if (!ok) state.SkipWithError("deflate/inflate failed or did not round-trip (see the source)");
}

void bm_compress(State& state, Payload kind, bool takeover) {
    const Corpus corpus = make_corpus(kind, static_cast<std::size_t>(state.range(0)));
    Deflater deflater(proto::kMaxWindowBits, takeover, default_tuning());
    // Warm up: zlib's state exists and, with takeover, the window holds earlier messages.
    bool ok = true;
    std::span<const std::uint8_t> out;
    for (const auto& m : corpus.messages)
        ok = ok && deflater.compress_message(m, out) == Error::none;

    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t compressed = 0;
    std::size_t next = 0;
    const std::uint64_t allocations = allocation_count();
    for (auto _ : state) {
        const auto& m = corpus.messages[next];
        next = next + 1 == corpus.messages.size() ? 0 : next + 1;
        ok = ok && deflater.compress_message(m, out) == Error::none;
        benchmark::DoNotOptimize(out.data());
        ++messages;
        bytes += m.size();
        compressed += out.size();
    }
    report(state, messages, bytes, compressed, allocation_count() - allocations, ok);
}

// The compressed form of every corpus message, in the order the benchmark inflates them. With
// takeover the stream of the second pass over the corpus is kept: the inflater, primed with the
// first pass, then sees at every wrap-around the same window the deflater saw (a cycle holds more
// than the window), so the cycle can be inflated again and again.
std::vector<std::vector<std::uint8_t>> compress_corpus(const Corpus& corpus, bool takeover,
                                                       bool& ok) {
    Deflater deflater(proto::kMaxWindowBits, takeover, default_tuning());
    std::vector<std::vector<std::uint8_t>> first;
    std::vector<std::vector<std::uint8_t>> second;
    for (auto* pass : {&first, &second}) {
        for (const auto& m : corpus.messages) {
            std::span<const std::uint8_t> out;
            ok = ok && deflater.compress_message(m, out) == Error::none;
            pass->emplace_back(out.begin(), out.end());
        }
    }
    if (!takeover) return second;
    first.insert(first.end(), second.begin(), second.end());
    return first;  // both passes: the caller primes with the first
}

// One whole message: feed, tail (§7.2.2), inflate until zlib wants input. Returns the bytes made,
// or SIZE_MAX on an error or when `out` is too small.
std::size_t inflate_message(Inflater& inflater, std::span<const std::uint8_t> compressed,
                            std::span<std::uint8_t> out) {
    inflater.feed(compressed);
    std::size_t produced = 0;
    bool tail_fed = false;
    for (;;) {
        const Inflater::Result r = inflater.inflate(out.subspan(produced));
        produced += r.produced;
        if (r.status == Inflater::Status::error) return SIZE_MAX;
        if (r.status == Inflater::Status::output_full) {
            if (produced == out.size()) return SIZE_MAX;
            continue;
        }
        if (tail_fed) break;
        inflater.feed_tail();
        tail_fed = true;
    }
    inflater.end_message();
    return produced;
}

void bm_inflate(State& state, Payload kind, bool takeover) {
    const std::size_t size = static_cast<std::size_t>(state.range(0));
    const Corpus corpus = make_corpus(kind, size);
    bool ok = true;
    std::vector<std::vector<std::uint8_t>> compressed = compress_corpus(corpus, takeover, ok);
    Inflater inflater(proto::kMaxWindowBits, takeover, default_tuning());
    // One spare byte: a message that inflates to more than it should is caught, not cut off.
    std::vector<std::uint8_t> out(size + 1);
    const std::size_t n = corpus.messages.size();
    // Prime (with takeover: the first pass) and check that every message round-trips exactly.
    for (std::size_t i = 0; i < compressed.size(); ++i) {
        const std::size_t made = inflate_message(inflater, compressed[i], out);
        const auto& m = corpus.messages[i % n];
        ok = ok && made == m.size() && std::equal(m.begin(), m.end(), out.begin());
    }
    if (takeover)
        compressed.erase(compressed.begin(), compressed.begin() + static_cast<std::ptrdiff_t>(n));

    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t compressed_bytes = 0;
    std::size_t next = 0;
    const std::uint64_t allocations = allocation_count();
    for (auto _ : state) {
        const auto& c = compressed[next];
        next = next + 1 == n ? 0 : next + 1;
        const std::size_t made = inflate_message(inflater, c, out);
        ok = ok && made == size;
        benchmark::DoNotOptimize(out.data());
        ++messages;
        bytes += made;
        compressed_bytes += c.size();
    }
    report(state, messages, bytes, compressed_bytes, allocation_count() - allocations, ok);
}

void register_benchmarks() {
    for (const bool compress : {true, false}) {
        for (const auto& [kind, kind_name] :
             {std::pair{Payload::text, "text"}, std::pair{Payload::random, "random"}}) {
            for (const bool takeover : {true, false}) {
                const std::string name = std::string("deflate/") +
                                         (compress ? "compress/" : "inflate/") + kind_name +
                                         (takeover ? "/takeover" : "/no_takeover");
                auto* b = benchmark::RegisterBenchmark(name.c_str(), [=, k = kind](State& st) {
                    if (compress) {
                        bm_compress(st, k, takeover);
                    } else {
                        bm_inflate(st, k, takeover);
                    }
                });
                for (const std::size_t size : kMessageSizes)
                    b->Arg(static_cast<std::int64_t>(size));
            }
        }
    }
}

// Google Benchmark stops a run at the first error but still exits 0: remember errors ourselves so
// the smoke test fails on a broken round trip.
class ErrorTrackingReporter : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs)
            failed_ = failed_ || run.error_occurred;
        ConsoleReporter::ReportRuns(runs);
    }
    bool failed() const noexcept { return failed_; }

  private:
    bool failed_ = false;
};

}  // namespace
}  // namespace wsx::bench

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    wsx::bench::register_benchmarks();
    wsx::bench::ErrorTrackingReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return reporter.failed() ? 1 : 0;
}
