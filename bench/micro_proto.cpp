// wsx micro benchmarks: each step of the receive path alone (header parse, unmask, UTF-8
// validation) and together (Connection::receive), the send path, the opening handshake, and
// memcpy of the same sizes as the machine's own yardstick. How and why: bench/README.md.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "alloc_counter.hpp"
#include "frame_batch.hpp"
#include "micro_report.hpp"
#include "proto/connection.hpp"
#include "proto/frame.hpp"
#include "proto/handshake.hpp"
#include "proto/mask.hpp"
#include "proto/utf8.hpp"

namespace wsx::bench {
namespace {

using benchmark::State;
using proto::Connection;
using proto::Error;
using proto::Role;

constexpr std::array<std::size_t, 6> kPayloadSizes = {0, 16, 125, 1024, 16 * 1024, 1024 * 1024};

struct Settings {
    // Wire bytes per batch: what one read from a busy connection hands the parser. Mostly in L2
    // (L1d is 32 KiB per core on Zen 4), as after a real read of that size.
    std::size_t batch_bytes = 256 * 1024;
    // Wire bytes the hot variants reuse every iteration: small enough to stay in L1.
    std::size_t hot_bytes = 16 * 1024;
};

// Bytes a sender queues between two drains, as one writev into a typical socket send buffer
// takes them. Below the 64 KiB the output queue keeps when it drains, so steady sending reuses
// its storage.
constexpr std::size_t kSendDrainBytes = 32 * 1024;

using Clock = std::chrono::steady_clock;

// What one iteration did. Checked after the loop; computing it costs a few adds per batch.
struct Outcome {
    std::uint64_t frames;
    std::uint64_t bytes;
    bool ok;
};

struct Tally {
    std::uint64_t frames = 0;
    std::uint64_t bytes = 0;
    std::uint64_t allocations = 0;
    bool ok = true;

    void add(const Outcome& o) noexcept {
        frames += o.frames;
        bytes += o.bytes;
        ok = ok && o.ok;
    }
};

// `unit` names the counters: "frame" gives frames (a rate) and allocs_per_frame.
void report(State& state, const Tally& tally, const std::string& unit = "frame") {
    state.SetBytesProcessed(static_cast<std::int64_t>(tally.bytes));
    state.counters[unit + "s"] =
        benchmark::Counter(static_cast<double>(tally.frames), benchmark::Counter::kIsRate);
    const double per_unit = tally.frames == 0 ? 0.0
                                              : static_cast<double>(tally.allocations) /
                                                    static_cast<double>(tally.frames);
    state.counters["allocs_per_" + unit] = benchmark::Counter(per_unit);
    if (!tally.ok) state.SkipWithError("the benchmarked code gave a wrong result (see the source)");
}

// Timed by the library, on this thread's CPU time: for work whose input needs no restoring.
// CPU time leaves out the time other processes hold the core, so a busy machine slows the
// benchmark without skewing it (beyond what they do to the caches).
template <class Work>
void run_loop(State& state, Work&& work, const std::string& unit = "frame") {
    Tally tally;
    const std::uint64_t allocations = allocation_count();
    for (auto _ : state)
        tally.add(work());
    tally.allocations = allocation_count() - allocations;
    report(state, tally, unit);
}

// Context switches of this thread so far (getrusage is a system call: never inside a timed
// region).
std::uint64_t context_switches() noexcept {
    rusage usage{};
    getrusage(RUSAGE_THREAD, &usage);
    return static_cast<std::uint64_t>(usage.ru_nvcsw) + static_cast<std::uint64_t>(usage.ru_nivcsw);
}

// Timed by hand, for receive: `prepare` restores the batch the previous receive unmasked, then
// only `work` is timed, by two steady_clock reads (about 25 ns here, against several µs per
// batch). PauseTiming would read the thread CPU clock instead, a 1 µs system call on this VM,
// twice per batch. The restore touches the whole batch right before the receive, as the read
// that filled a receive buffer would. Wall time also counts time another process held the core,
// so a batch during which this thread was switched out is done again (restored and received
// anew) and only the clean attempt is timed; `retried` counts the discarded ones.
template <class Prepare, class Work>
void run_restoring(State& state, Prepare&& prepare, Work&& work) {
    constexpr int kMaxAttempts = 100;
    Tally tally;
    std::uint64_t retried = 0;
    for (auto _ : state) {
        for (int attempt = 1;; ++attempt) {
            prepare();
            const std::uint64_t switches = context_switches();
            const std::uint64_t allocations = allocation_count();
            const auto start = Clock::now();
            const Outcome outcome = work();
            const auto stop = Clock::now();
            if (context_switches() != switches && attempt < kMaxAttempts) {
                ++retried;
                continue;
            }
            tally.allocations += allocation_count() - allocations;
            tally.add(outcome);
            state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
            break;
        }
    }
    report(state, tally);
    state.counters["retried"] = benchmark::Counter(static_cast<double>(retried));
}

// ---- memcpy: the yardstick, over the same layout as the receive benchmarks' input.

void bm_memcpy(State& state, std::size_t bytes) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const FrameBatch src = make_batch(Payload::binary, size, frames_for(size, bytes), true);
    FrameBatch dst = src;
    benchmark::DoNotOptimize(dst.wire.data());
    run_loop(state, [&] {
        for (std::size_t i = 0; i < src.frame_count; ++i)
            std::memcpy(dst.payload(i), src.payload(i), size);
        benchmark::ClobberMemory();
        return Outcome{src.frame_count, src.payload_bytes(), true};
    });
}

// ---- Receive-path steps alone.

void bm_parse_header(State& state, std::size_t bytes) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const FrameBatch batch = make_batch(Payload::binary, size, frames_for(size, bytes), true);
    run_loop(state, [&] {
        const std::span<const std::uint8_t> wire(batch.wire);
        std::size_t pos = 0;
        std::uint64_t frames = 0;
        std::uint64_t payload = 0;
        while (pos < wire.size()) {
            proto::FrameHeader h;
            if (proto::parse_frame_header(wire.subspan(pos), h).status != proto::ParseStatus::ok) {
                break;
            }
            pos += h.header_length + h.payload_length;
            payload += h.payload_length;
            ++frames;
        }
        return Outcome{frames, payload, frames == batch.frame_count};
    });
}

// `fn` is one MaskImpl's function, or nullptr for the dispatched apply_mask. Masking twice gives
// the input back, so no iteration needs its input restored. Each key is read from its header, as
// a parser reads it.
void bm_unmask(State& state, proto::MaskFn fn, std::size_t bytes) {
    const auto size = static_cast<std::size_t>(state.range(0));
    FrameBatch batch = make_batch(Payload::binary, size, frames_for(size, bytes), true);
    run_loop(state, [&] {
        for (std::size_t i = 0; i < batch.frame_count; ++i) {
            if (fn != nullptr) {
                fn(batch.payload(i), size, batch.key(i), 0);
            } else {
                proto::apply_mask({batch.payload(i), size}, batch.key(i));
            }
        }
        benchmark::ClobberMemory();
        return Outcome{batch.frame_count, batch.payload_bytes(), true};
    });
}

// unmask_is_ascii, the text fast path's unmask: ASCII payloads under keys that keep them ASCII,
// so every round sees ASCII text, masked or not. Checks the answer: true below 32 bytes (inline)
// and, from 32 on, when the AVX2 kernel is the one selected.
void bm_unmask_is_ascii(State& state, std::size_t bytes) {
    const auto size = static_cast<std::size_t>(state.range(0));
    FrameBatch batch =
        make_batch(Payload::ascii, size, frames_for(size, bytes), true, Keys::ascii_preserving);
    const bool answers = size < 32 || proto::mask_impl_selected() == proto::MaskImpl::avx2;
    run_loop(state, [&] {
        std::uint64_t ascii = 0;
        for (std::size_t i = 0; i < batch.frame_count; ++i)
            ascii += proto::unmask_is_ascii({batch.payload(i), size}, batch.key(i));
        benchmark::ClobberMemory();
        return Outcome{batch.frame_count, batch.payload_bytes(),
                       ascii == (answers ? batch.frame_count : 0)};
    });
}

// `impl` is a kernel for Utf8Validator::feed, or nullopt for is_valid_utf8. One validator per
// frame, as the connection resets its validator for each message.
void bm_utf8(State& state, Payload kind, std::optional<proto::Utf8Impl> impl, std::size_t bytes) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const FrameBatch batch = make_batch(kind, size, frames_for(size, bytes), false);
    run_loop(state, [&] {
        std::uint64_t valid = 0;
        for (std::size_t i = 0; i < batch.frame_count; ++i) {
            const std::span<const std::uint8_t> text(batch.payload(i), size);
            if (impl) {
                proto::Utf8Validator validator;
                valid += validator.feed(text, *impl) == proto::Utf8Status::complete;
            } else {
                valid += proto::is_valid_utf8(text);
            }
        }
        return Outcome{batch.frame_count, batch.payload_bytes(), valid == batch.frame_count};
    });
}

// ---- The whole receive path.

struct CountingHandler {
    std::uint64_t frames = 0;
    std::uint64_t bytes = 0;
    void on_message(proto::Opcode, std::span<const std::uint8_t> payload) noexcept {
        ++frames;
        bytes += payload.size();
    }
};

// Compares every delivered payload with what the batch was built from.
struct CheckingHandler {
    Payload kind;
    std::size_t size;
    std::uint64_t frames = 0;
    bool ok = true;
    void on_message(proto::Opcode, std::span<const std::uint8_t> payload) {
        const std::vector<std::uint8_t> expected = make_payload(kind, size, ++frames);
        ok = ok && std::equal(payload.begin(), payload.end(), expected.begin(), expected.end());
    }
};

// Once, before timing: receive delivers exactly the payloads sent, and remask() restores the
// input it unmasked, so every timed iteration parses the frames a client sent.
bool receive_and_restore_are_exact(FrameBatch& batch, Payload kind) {
    const std::vector<std::uint8_t> pristine = batch.wire;
    Connection conn(Role::server);
    CheckingHandler handler{kind, batch.payload_size};
    const proto::ReceiveResult r = conn.receive(batch.wire, handler);
    batch.remask();
    return r.error == Error::none && handler.ok && handler.frames == batch.frame_count &&
           batch.wire == pristine;
}

Outcome receive_batch(Connection& conn, FrameBatch& batch, CountingHandler& handler) {
    const std::uint64_t frames = handler.frames;
    const std::uint64_t bytes = handler.bytes;
    const proto::ReceiveResult r = conn.receive(batch.wire, handler);
    const std::uint64_t delivered = handler.frames - frames;
    return {delivered, handler.bytes - bytes,
            r.error == Error::none && r.consumed == batch.wire.size() &&
                delivered == batch.frame_count};
}

// A server receiving a batch of masked client frames. receive() unmasks in place; each iteration
// first re-masks the batch, untimed (see run_restoring).
void bm_receive(State& state, Payload kind, std::size_t bytes) {
    const auto size = static_cast<std::size_t>(state.range(0));
    FrameBatch batch = make_batch(kind, size, frames_for(size, bytes), true);
    if (!receive_and_restore_are_exact(batch, kind)) {
        state.SkipWithError("receive did not deliver the frames sent");
        return;
    }
    Connection conn(Role::server);
    CountingHandler handler;
    bool consumed = false;
    run_restoring(
        state,
        [&] {
            if (consumed) batch.remask();
            consumed = true;
        },
        [&] { return receive_batch(conn, batch, handler); });
}

// The same with no restore at all, timed by the library: the same bytes are received again and
// again, so the payloads flip between masked and clear. The work per frame is the same either
// way (the XOR does not care, nor does binary delivery), and text batches use ASCII-preserving
// keys so that their payloads are valid UTF-8 in both states; mixed UTF-8 cannot be done so.
// With hot_bytes this is the usual "parser on an L1-hot buffer" number; with batch_bytes it
// cross-checks bm_receive on CPU time.
void bm_receive_again(State& state, Payload kind, std::size_t bytes) {
    const auto size = static_cast<std::size_t>(state.range(0));
    FrameBatch batch = make_batch(kind, size, frames_for(size, bytes), true,
                                  kind == Payload::binary ? Keys::random : Keys::ascii_preserving);
    Connection conn(Role::server);
    CountingHandler handler;
    run_loop(state, [&] { return receive_batch(conn, batch, handler); });
}

// ---- Send path: encode frames into the output queue, then drain it as a full write would.

void bm_send(State& state, Role role) {
    const auto size = static_cast<std::size_t>(state.range(0));
    const std::vector<std::uint8_t> payload = make_payload(Payload::binary, size, 1);
    const std::size_t per_drain = frames_for(size, kSendDrainBytes);
    Connection conn(role);
    const auto send_and_drain = [&] {
        bool ok = true;
        for (std::size_t i = 0; i < per_drain; ++i)
            ok = conn.send_binary(payload) == Error::none && ok;
        conn.consume_output(conn.buffered_amount());
        return Outcome{per_drain, per_drain * size, ok};
    };
    // Once untimed, so the output queue has grown to its working size: allocs_per_frame then
    // counts what steady sending allocates, not the first growth.
    if (!send_and_drain().ok) {
        state.SkipWithError("send_binary refused a valid frame");
        return;
    }
    run_loop(state, send_and_drain);
}

// ---- Opening handshake, server side: parse, validate (§4.2.1), accept key, 101 response.

// What a current browser sends (RFC 6455 §4.1), about 500 bytes.
constexpr std::string_view kUpgradeRequest =
    "GET /chat?room=42 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: https://example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

void bm_handshake(State& state) {
    const proto::ServerOptions options;
    run_loop(
        state,
        [&] {
            proto::ServerHandshake handshake(options);
            const bool parsed = handshake.parse(kUpgradeRequest).status == proto::ParseStatus::ok;
            const std::string response = handshake.accept_response();
            benchmark::DoNotOptimize(response.data());
            // RFC 6455 §1.3: the accept value for the sample key.
            const bool accepted =
                response.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos;
            return Outcome{1, kUpgradeRequest.size(), parsed && accepted};
        },
        "handshake");
}

// ---- Registration.

enum class Timing : std::uint8_t { cpu, by_hand };

template <class Fn>
void for_each_size(const std::string& name, Fn fn, Timing timing = Timing::cpu) {
    auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
    for (const std::size_t size : kPayloadSizes)
        b->Arg(static_cast<std::int64_t>(size));
    if (timing == Timing::by_hand) b->UseManualTime();
}

void register_benchmarks(const Settings& s) {
    const std::size_t batch = s.batch_bytes;
    const std::size_t hot = s.hot_bytes;

    for_each_size("memcpy", [=](State& st) { bm_memcpy(st, batch); });
    for_each_size("memcpy_hot", [=](State& st) { bm_memcpy(st, hot); });
    // The 64 KiB copy the peer reference numbers quote.
    benchmark::RegisterBenchmark("memcpy_hot", [=](State& st) {
        bm_memcpy(st, hot);
    })->Arg(64 * 1024);

    for_each_size("parse_header", [=](State& st) { bm_parse_header(st, batch); });

    for (const proto::MaskImpl impl :
         {proto::MaskImpl::scalar, proto::MaskImpl::sse2, proto::MaskImpl::avx2,
          proto::MaskImpl::avx512, proto::MaskImpl::neon}) {
        if (!proto::mask_impl_available(impl)) continue;
        const proto::MaskFn fn = proto::mask_impl_function(impl);
        for_each_size(std::string("unmask/") + proto::mask_impl_name(impl),
                      [=](State& st) { bm_unmask(st, fn, batch); });
    }
    for_each_size("unmask/apply_mask", [=](State& st) { bm_unmask(st, nullptr, batch); });
    for_each_size("unmask/is_ascii", [=](State& st) { bm_unmask_is_ascii(st, batch); });

    for (const auto& [kind, kind_name] :
         {std::pair{Payload::ascii, "ascii"}, std::pair{Payload::mixed_utf8, "mixed"}}) {
        for (const proto::Utf8Impl impl : {proto::Utf8Impl::scalar, proto::Utf8Impl::sse2,
                                           proto::Utf8Impl::avx2, proto::Utf8Impl::neon}) {
            if (!proto::utf8_impl_available(impl)) continue;
            for_each_size(std::string("utf8/") + kind_name + "/" + proto::utf8_impl_name(impl),
                          [=, k = kind](State& st) { bm_utf8(st, k, impl, batch); });
        }
        for_each_size(std::string("utf8/") + kind_name + "/is_valid_utf8",
                      [=, k = kind](State& st) { bm_utf8(st, k, std::nullopt, batch); });
    }

    for (const auto& [kind, kind_name] :
         {std::pair{Payload::binary, "binary"}, std::pair{Payload::ascii, "text_ascii"},
          std::pair{Payload::mixed_utf8, "text_mixed"}}) {
        for_each_size(
            std::string("receive/") + kind_name,
            [=, k = kind](State& st) { bm_receive(st, k, batch); }, Timing::by_hand);
    }
    for (const auto& [kind, kind_name] :
         {std::pair{Payload::binary, "binary"}, std::pair{Payload::ascii, "text_ascii"}}) {
        for_each_size(std::string("receive_again/") + kind_name,
                      [=, k = kind](State& st) { bm_receive_again(st, k, batch); });
        for_each_size(std::string("receive_hot/") + kind_name,
                      [=, k = kind](State& st) { bm_receive_again(st, k, hot); });
    }

    for_each_size("send/server", [](State& st) { bm_send(st, Role::server); });
    for_each_size("send/client", [](State& st) { bm_send(st, Role::client); });

    benchmark::RegisterBenchmark("handshake/server", bm_handshake);
}

// The targets (reference: the uWebSockets parser on a 2-core AMD EPYC with AVX-512).
std::vector<Target> targets() {
    std::vector<Target> t;
    for (const char* family : {"receive/", "receive_again/", "receive_hot/"}) {
        const std::string f = family;
        t.push_back({f + "binary/16", 220e6, 0});
        t.push_back({f + "binary/125", 170e6, 0});
        t.push_back({f + "binary/16384", 0, 113e9});
        t.push_back({f + "text_ascii/16384", 0, 72e9});
    }
    t.push_back({"receive/text_mixed/16384", 0, 10e9});
    t.push_back({"receive/text_mixed/1048576", 0, 10e9});
    return t;
}

// Takes --wsx_batch_bytes=N and --wsx_hot_bytes=N out of argv; the rest is Google Benchmark's.
bool take_settings(int& argc, char** argv, Settings& s) {
    int kept = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::size_t* target = nullptr;
        std::string_view value;
        for (const auto& [flag, field] :
             {std::pair{std::string_view("--wsx_batch_bytes="), &s.batch_bytes},
              std::pair{std::string_view("--wsx_hot_bytes="), &s.hot_bytes}}) {
            if (arg.substr(0, flag.size()) == flag) {
                target = field;
                value = arg.substr(flag.size());
            }
        }
        if (target == nullptr) {
            argv[kept++] = argv[i];
            continue;
        }
        char* end = nullptr;
        const unsigned long long n = std::strtoull(std::string(value).c_str(), &end, 10);
        if (value.empty() || *end != '\0' || n == 0) return false;
        *target = static_cast<std::size_t>(n);
    }
    argc = kept;
    return true;
}

void print_usage() {
    benchmark::PrintDefaultHelp();
    std::fprintf(stdout,
                 "wsx options:\n"
                 "  --wsx_batch_bytes=<n>  wire bytes per receive batch (default 262144)\n"
                 "  --wsx_hot_bytes=<n>    wire bytes of the L1-hot variants (default 16384)\n");
}

}  // namespace
}  // namespace wsx::bench

int main(int argc, char** argv) {
    using namespace wsx::bench;
    Settings settings;
    if (!take_settings(argc, argv, settings)) {
        std::fprintf(stderr, "--wsx_batch_bytes and --wsx_hot_bytes take a positive integer\n");
        return 2;
    }
    benchmark::Initialize(&argc, argv, print_usage);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    register_benchmarks(settings);
    benchmark::AddCustomContext("wsx_mask_impl",
                                wsx::proto::mask_impl_name(wsx::proto::mask_impl_selected()));
    benchmark::AddCustomContext("wsx_utf8_impl",
                                wsx::proto::utf8_impl_name(wsx::proto::utf8_impl_selected()));
    benchmark::AddCustomContext("wsx_batch_bytes", std::to_string(settings.batch_bytes));
    benchmark::AddCustomContext("wsx_hot_bytes", std::to_string(settings.hot_bytes));

    RatioReporter reporter(benchmark::CreateDefaultDisplayReporter(), targets());
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return reporter.failed() ? 1 : 0;
}
