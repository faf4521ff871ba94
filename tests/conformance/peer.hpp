// A raw-frame WebSocket peer for conformance tests (CONFORMANCE.md §1-10, RFC 6455).
//
// Everything here is written independently of src/proto's frame code, so the engine is checked
// against a second implementation rather than against itself:
//   - encode(): frames built byte by byte, with any FIN/RSV/opcode, masking and length encoding
//     (including non-minimal ones and lengths that differ from the payload);
//   - decode_all(): a strict reader for what the engine writes back;
//   - Recorder: an Autobahn-style echo handler that records every event in order;
//   - run_feeding(): feeds one byte string to Connection::receive whole, in 1-byte chops, in fixed
//     chops or chopped at random (seeded) points, each chunk in a fresh heap copy (receive()
//     unmasks in place, and ASan then catches an engine that keeps pointers into old input);
//   - Scenario: the peer's bytes plus the expected events and output, checked under every feeding.
#pragma once

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/connection.hpp"

namespace wsx::conformance {

using proto::CloseInfo;
using proto::Connection;
using proto::ConnectionOptions;
using proto::Error;
using proto::MaskKey;
using proto::Opcode;
using proto::Role;
using proto::State;

using Bytes = std::vector<std::uint8_t>;

// Opcodes as plain numbers, so reserved ones (3-7, 11-15) can be put on the wire.
namespace op {
inline constexpr std::uint8_t kContinuation = 0x0;
inline constexpr std::uint8_t kText = 0x1;
inline constexpr std::uint8_t kBinary = 0x2;
inline constexpr std::uint8_t kClose = 0x8;
inline constexpr std::uint8_t kPing = 0x9;
inline constexpr std::uint8_t kPong = 0xA;
}  // namespace op

inline constexpr std::uint8_t kRsv1 = 0x4;
inline constexpr std::uint8_t kRsv2 = 0x2;
inline constexpr std::uint8_t kRsv3 = 0x1;

inline constexpr Role kBothRoles[] = {Role::server, Role::client};

inline const char* role_name(Role role) {
    return role == Role::server ? "server" : "client";
}

// ---- Byte helpers.

inline Bytes bytes_of(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

// Concatenation by appending (g++ 12 at -O3 warns falsely about `"literal" + std::string`).
inline std::string cat(std::initializer_list<std::string_view> parts) {
    std::string s;
    for (const std::string_view p : parts)
        s.append(p);
    return s;
}

inline Bytes concat(std::initializer_list<std::span<const std::uint8_t>> parts) {
    Bytes out;
    for (auto p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

inline Bytes slice(const Bytes& b, std::size_t from, std::size_t to) {
    return Bytes(b.begin() + static_cast<std::ptrdiff_t>(from),
                 b.begin() + static_cast<std::ptrdiff_t>(to));
}

// Deterministic binary payload covering every byte value.
inline Bytes binary_pattern(std::size_t n, std::uint32_t seed = 1) {
    Bytes out(n);
    std::uint32_t x = seed * 2654435761u + 12345u;
    for (std::size_t i = 0; i < n; ++i) {
        x = x * 1103515245u + 12345u;
        out[i] = static_cast<std::uint8_t>(x >> 16);
    }
    return out;
}

// Valid UTF-8 of exactly n bytes mixing 1-, 2-, 3- and 4-byte code points (so chops and fragment
// boundaries fall inside code points), including the noncharacters U+FFFE, U+FFFF, U+10FFFF.
inline Bytes text_pattern(std::size_t n) {
    static constexpr std::string_view kPieces[] = {"a",
                                                   "Hello, ",
                                                   "\xCE\xBA\xCF\x8C\xCF\x83\xCE\xBC\xCE\xB5",
                                                   "\xEF\xBF\xBE",
                                                   "\xEF\xBF\xBF",
                                                   "\xF4\x8F\xBF\xBF",
                                                   "\xF0\x9F\x98\x80",
                                                   "\xE2\x82\xAC",
                                                   "\xDF\xBF",
                                                   "\x7F"};
    Bytes out;
    out.reserve(n);
    std::size_t i = 0;
    while (out.size() < n) {
        const std::string_view piece = kPieces[i++ % std::size(kPieces)];
        if (out.size() + piece.size() > n) {
            out.push_back('z');  // pad with ASCII to hit the exact length
            continue;
        }
        out.insert(out.end(), piece.begin(), piece.end());
    }
    return out;
}

inline Bytes close_payload(std::uint16_t code, std::string_view reason = {}) {
    Bytes out{static_cast<std::uint8_t>(code >> 8), static_cast<std::uint8_t>(code & 0xFF)};
    out.insert(out.end(), reason.begin(), reason.end());
    return out;
}

// 64-bit FNV-1a, to print large payloads as a fingerprint.
inline std::uint64_t fingerprint(std::span<const std::uint8_t> b) {
    std::uint64_t h = 14695981039346656037ull;
    for (auto c : b) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

inline std::string summarize_payload(std::span<const std::uint8_t> b) {
    std::string s = cat({"(", std::to_string(b.size()), ")"});
    char buf[24];
    if (b.size() <= 40) {
        if (!b.empty()) s += " ";
        for (auto c : b) {
            std::snprintf(buf, sizeof buf, "%02x", c);
            s += buf;
        }
    } else {
        std::snprintf(buf, sizeof buf, " fnv=%016llx",
                      static_cast<unsigned long long>(fingerprint(b)));
        s += buf;
    }
    return s;
}

// ---- The peer's encoder.

enum class LengthForm : std::uint8_t {
    minimal,  // what RFC 6455 §5.2 asks senders for
    bits7,
    bits16,  // 126 + 16-bit length, also for lengths that would fit in 7 bits
    bits64,  // 127 + 64-bit length, also for short lengths
};

struct RawFrame {
    std::uint8_t opcode = op::kBinary;
    Bytes payload;
    bool fin = true;
    std::uint8_t rsv = 0;  // kRsv1 | kRsv2 | kRsv3
    LengthForm length_form = LengthForm::minimal;
    // A header length other than payload.size() (e.g. announcing more than is sent).
    std::optional<std::uint64_t> announced_length;
    std::optional<MaskKey> mask;  // nullopt: unmasked
};

inline RawFrame frame_of(std::uint8_t opcode, Bytes payload, bool fin = true) {
    RawFrame f;
    f.opcode = opcode;
    f.payload = std::move(payload);
    f.fin = fin;
    return f;
}

inline std::size_t header_size_of(const RawFrame& f) {
    const std::uint64_t len = f.announced_length.value_or(f.payload.size());
    LengthForm form = f.length_form;
    if (form == LengthForm::minimal) {
        form = len < 126       ? LengthForm::bits7
               : len <= 0xFFFF ? LengthForm::bits16
                               : LengthForm::bits64;
    }
    const std::size_t base = form == LengthForm::bits7 ? 2 : form == LengthForm::bits16 ? 4 : 10;
    return base + (f.mask ? 4 : 0);
}

inline void append_encoded(Bytes& out, const RawFrame& f) {
    out.push_back(
        static_cast<std::uint8_t>((f.fin ? 0x80 : 0) | ((f.rsv & 0x7) << 4) | (f.opcode & 0x0F)));
    const std::uint64_t len = f.announced_length.value_or(f.payload.size());
    LengthForm form = f.length_form;
    if (form == LengthForm::minimal) {
        form = len < 126       ? LengthForm::bits7
               : len <= 0xFFFF ? LengthForm::bits16
                               : LengthForm::bits64;
    }
    const std::uint8_t mask_bit = f.mask ? 0x80 : 0x00;
    switch (form) {
        case LengthForm::bits7:
            REQUIRE(len < 126);
            out.push_back(static_cast<std::uint8_t>(mask_bit | len));
            break;
        case LengthForm::bits16:
            REQUIRE(len <= 0xFFFF);
            out.push_back(static_cast<std::uint8_t>(mask_bit | 126));
            out.push_back(static_cast<std::uint8_t>(len >> 8));
            out.push_back(static_cast<std::uint8_t>(len & 0xFF));
            break;
        case LengthForm::bits64:
        case LengthForm::minimal:
            out.push_back(static_cast<std::uint8_t>(mask_bit | 127));
            for (int shift = 56; shift >= 0; shift -= 8)
                out.push_back(static_cast<std::uint8_t>((len >> shift) & 0xFF));
            break;
    }
    if (f.mask) {
        const MaskKey& key = *f.mask;
        out.insert(out.end(), key.begin(), key.end());
        for (std::size_t i = 0; i < f.payload.size(); ++i)
            out.push_back(static_cast<std::uint8_t>(f.payload[i] ^ key[i % 4]));
    } else {
        out.insert(out.end(), f.payload.begin(), f.payload.end());
    }
}

inline Bytes encode(const RawFrame& f) {
    Bytes out;
    append_encoded(out, f);
    return out;
}

// Masking keys for the simulated client: varied (including zero bytes), reproducible.
class KeySource {
  public:
    explicit KeySource(std::uint32_t seed = 7) : rng_(seed) {}
    MaskKey next() {
        const std::uint32_t v = rng_();
        return {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
                static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 24)};
    }

  private:
    std::mt19937 rng_;
};

// ---- The peer's decoder (for what the engine writes).

struct DecodedFrame {
    bool fin = false;
    std::uint8_t rsv = 0;
    std::uint8_t opcode = 0;
    bool masked = false;
    MaskKey key{};
    Bytes payload;  // unmasked
    bool minimal_length = true;
};

struct DecodeResult {
    std::vector<DecodedFrame> frames;
    std::size_t leftover = 0;  // bytes of an unfinished frame at the end
};

inline DecodeResult decode_all(std::span<const std::uint8_t> in) {
    DecodeResult r;
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::size_t avail = in.size() - pos;
        if (avail < 2) break;
        const std::uint8_t b0 = in[pos];
        const std::uint8_t b1 = in[pos + 1];
        DecodedFrame f;
        f.fin = (b0 & 0x80) != 0;
        f.rsv = static_cast<std::uint8_t>((b0 >> 4) & 0x7);
        f.opcode = b0 & 0x0F;
        f.masked = (b1 & 0x80) != 0;
        std::uint64_t len = b1 & 0x7F;
        std::size_t header = 2;
        if (len == 126) {
            if (avail < 4) break;
            len = (std::uint64_t{in[pos + 2]} << 8) | in[pos + 3];
            header = 4;
            f.minimal_length = len >= 126;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (std::size_t i = 0; i < 8; ++i)
                len = (len << 8) | in[pos + 2 + i];
            header = 10;
            f.minimal_length = len > 0xFFFF && (len >> 63) == 0;
        }
        if (f.masked) {
            if (avail < header + 4) break;
            for (std::size_t i = 0; i < 4; ++i)
                f.key[i] = in[pos + header + i];
            header += 4;
        }
        if (avail - header < len) break;
        f.payload.assign(in.begin() + static_cast<std::ptrdiff_t>(pos + header),
                         in.begin() + static_cast<std::ptrdiff_t>(pos + header + len));
        if (f.masked) {
            for (std::size_t i = 0; i < f.payload.size(); ++i)
                f.payload[i] = static_cast<std::uint8_t>(f.payload[i] ^ f.key[i % 4]);
        }
        pos += header + static_cast<std::size_t>(len);
        r.frames.push_back(std::move(f));
    }
    r.leftover = in.size() - pos;
    return r;
}

inline std::string opcode_name(std::uint8_t opcode) {
    switch (opcode) {
        case op::kContinuation:
            return "cont";
        case op::kText:
            return "text";
        case op::kBinary:
            return "binary";
        case op::kClose:
            return "close";
        case op::kPing:
            return "ping";
        case op::kPong:
            return "pong";
        default:
            return cat({"op", std::to_string(opcode)});
    }
}

// ---- Recording handler.

struct Event {
    enum class Kind : std::uint8_t { message, ping, pong, close };
    Kind kind = Kind::message;
    std::uint8_t opcode = 0;  // message: text or binary
    Bytes data;               // message or ping/pong payload
    std::uint16_t code = 0;   // close
    std::string reason;       // close
    bool clean = false;       // close
    Error error = Error::none;

    static Event message(Opcode opcode, Bytes data) {
        Event e;
        e.kind = Kind::message;
        e.opcode = static_cast<std::uint8_t>(opcode);
        e.data = std::move(data);
        return e;
    }
    static Event ping(Bytes data) {
        Event e;
        e.kind = Kind::ping;
        e.data = std::move(data);
        return e;
    }
    static Event pong(Bytes data) {
        Event e;
        e.kind = Kind::pong;
        e.data = std::move(data);
        return e;
    }
    static Event close(std::uint16_t code, std::string_view reason, bool clean, Error error) {
        Event e;
        e.kind = Kind::close;
        e.code = code;
        e.reason = std::string(reason);
        e.clean = clean;
        e.error = error;
        return e;
    }
    // What a connection reports when it fails the connection with `error` (RFC 6455 §7.1.7).
    static Event failure(Error error) {
        return close(proto::close_code_for(error), proto::describe(error), false, error);
    }
};

inline std::string summarize(const Event& e) {
    switch (e.kind) {
        case Event::Kind::message:
            return opcode_name(e.opcode) + summarize_payload(e.data);
        case Event::Kind::ping:
            return "ping" + summarize_payload(e.data);
        case Event::Kind::pong:
            return "pong" + summarize_payload(e.data);
        case Event::Kind::close:
            return cat({"close code=", std::to_string(e.code), " clean=", e.clean ? "1" : "0",
                        " error=", proto::describe(e.error), " reason=", e.reason});
    }
    return "?";
}

inline std::string summarize(const std::vector<Event>& events) {
    std::string s;
    for (const auto& e : events)
        s += summarize(e) + "\n";
    return s;
}

// Echoes every message back with Connection::send (what an Autobahn testee does) and records
// every event. auto_pong answers pings, so the handler only records them.
class Recorder {
  public:
    explicit Recorder(Connection& conn, bool echo = true) : conn_(conn), echo_(echo) {}

    void on_message(Opcode opcode, std::span<const std::uint8_t> payload) {
        events.push_back(Event::message(opcode, Bytes(payload.begin(), payload.end())));
        if (echo_) {
            const Error e = conn_.send(opcode, payload);
            if (e != Error::none) send_errors.push_back(e);
        }
    }
    void on_ping(std::span<const std::uint8_t> payload) {
        events.push_back(Event::ping(Bytes(payload.begin(), payload.end())));
    }
    void on_pong(std::span<const std::uint8_t> payload) {
        events.push_back(Event::pong(Bytes(payload.begin(), payload.end())));
    }
    void on_close(const CloseInfo& info) {
        ++close_calls;
        events.push_back(Event::close(info.code, info.reason, info.clean, info.error));
    }

    std::vector<Event> events;
    std::vector<Error> send_errors;
    int close_calls = 0;

  private:
    Connection& conn_;
    bool echo_;
};

// ---- Feeding.

struct Feeding {
    enum class Kind : std::uint8_t { whole, single_bytes, fixed, random };
    Kind kind = Kind::whole;
    std::size_t size = 0;    // fixed: chunk size; random: largest chunk
    std::uint32_t seed = 0;  // random

    static Feeding whole() { return {}; }
    static Feeding single_bytes() { return {Kind::single_bytes, 1, 0}; }
    static Feeding fixed(std::size_t size) { return {Kind::fixed, size, 0}; }
    static Feeding random(std::uint32_t seed, std::size_t max_chunk = 0) {
        return {Kind::random, max_chunk, seed};
    }

    std::string name() const {
        switch (kind) {
            case Kind::whole:
                return "whole";
            case Kind::single_bytes:
                return "1-byte chops";
            case Kind::fixed:
                return std::to_string(size) + "-byte chops";
            case Kind::random:
                return cat({"random chops, seed ", std::to_string(seed)});
        }
        return "?";
    }

    std::vector<std::size_t> chunks(std::size_t total) const {
        std::vector<std::size_t> out;
        if (total == 0) return out;
        switch (kind) {
            case Kind::whole:
                out.push_back(total);
                break;
            case Kind::single_bytes:
            case Kind::fixed:
                for (std::size_t at = 0; at < total; at += size)
                    out.push_back(std::min(size, total - at));
                break;
            case Kind::random: {
                // Mix tiny and large chunks: every few chunks the scale changes, so headers,
                // masks and payloads are split at varied places.
                std::mt19937 rng(seed);
                const std::size_t limit = size != 0 ? size : std::max<std::size_t>(total / 3, 1);
                std::size_t at = 0;
                std::size_t scale = 1;
                while (at < total) {
                    if (rng() % 4 == 0) {
                        static constexpr std::size_t kScales[] = {2, 5, 17, 130, 1500, 70000};
                        scale = kScales[rng() % std::size(kScales)];
                    }
                    std::size_t n = 1 + rng() % std::min(scale, limit);
                    n = std::min(n, total - at);
                    out.push_back(n);
                    at += n;
                }
                break;
            }
        }
        return out;
    }
};

inline std::vector<Feeding> standard_feedings() {
    return {Feeding::whole(), Feeding::single_bytes(), Feeding::random(1), Feeding::random(2),
            Feeding::random(3)};
}

// Takes all pending output in small gathers (3 slices at a time) and partial consumes, as a
// writev loop with short writes would.
inline void drain(Connection& conn, Bytes& sink) {
    while (conn.wants_write()) {
        proto::IoSlice iov[3];
        const std::size_t n = conn.pending_output(iov);
        REQUIRE(n > 0);
        std::size_t total = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const auto* p = static_cast<const std::uint8_t*>(iov[i].data);
            sink.insert(sink.end(), p, p + iov[i].size);
            total += iov[i].size;
        }
        conn.consume_output(total);
    }
}

struct Outcome {
    std::vector<Event> events;
    std::vector<Error> send_errors;
    int close_calls = 0;
    Bytes output;
    Error first_error = Error::none;  // first non-none ReceiveResult::error
    int error_results = 0;            // receive() calls that returned an error
    bool consumed_everything = true;  // every receive() reported its whole input consumed
    // The chunk whose receive() call delivered on_close: [close_chunk_begin, close_chunk_end).
    std::optional<std::size_t> close_chunk_begin;
    std::size_t close_chunk_end = 0;
    std::size_t output_at_close = 0;  // output bytes drained up to and including that call
    State state = State::open;
    bool close_transport_now = false;
    bool wants_read = true;
};

inline Outcome run_feeding(Role role, std::span<const std::uint8_t> input, const Feeding& feeding,
                           const ConnectionOptions& options = {}, bool echo = true) {
    Connection conn(role, options);
    Recorder rec(conn, echo);
    Outcome o;
    std::size_t at = 0;
    for (const std::size_t n : feeding.chunks(input.size())) {
        Bytes chunk(input.begin() + static_cast<std::ptrdiff_t>(at),
                    input.begin() + static_cast<std::ptrdiff_t>(at + n));
        const int closes_before = rec.close_calls;
        const auto r = conn.receive(std::span<std::uint8_t>(chunk), rec);
        if (r.consumed != n) o.consumed_everything = false;
        if (r.error != Error::none) {
            if (o.error_results == 0) o.first_error = r.error;
            ++o.error_results;
        }
        drain(conn, o.output);
        if (rec.close_calls != closes_before && !o.close_chunk_begin) {
            o.close_chunk_begin = at;
            o.close_chunk_end = at + n;
            o.output_at_close = o.output.size();
        }
        at += n;
    }
    o.events = std::move(rec.events);
    o.send_errors = std::move(rec.send_errors);
    o.close_calls = rec.close_calls;
    o.state = conn.state();
    o.close_transport_now = conn.close_transport_now();
    o.wants_read = conn.wants_read();
    return o;
}

// ---- Expected output.

struct ExpectedFrame {
    std::uint8_t opcode;
    Bytes payload;
    bool fin = true;
};

inline std::string summarize(std::uint8_t opcode, bool fin, std::uint8_t rsv,
                             std::span<const std::uint8_t> payload) {
    std::string s = opcode_name(opcode);
    if (!fin) s += " !fin";
    if (rsv != 0) s += cat({" rsv=", std::to_string(rsv)});
    return s + summarize_payload(payload);
}

inline std::string summarize(const std::vector<ExpectedFrame>& frames) {
    std::string s;
    for (const auto& f : frames)
        s += summarize(f.opcode, f.fin, 0, f.payload) + "\n";
    return s;
}

inline std::string summarize(const std::vector<DecodedFrame>& frames) {
    std::string s;
    for (const auto& f : frames)
        s += summarize(f.opcode, f.fin, f.rsv, f.payload) + "\n";
    return s;
}

// The close frame a connection sends when it fails with `error`: the code and the error's
// description as the reason, cut to the 123 bytes a control frame leaves for it.
inline ExpectedFrame failure_close_frame(Error error) {
    std::string_view reason = proto::describe(error);
    if (reason.size() > proto::kMaxCloseReason) reason = reason.substr(0, proto::kMaxCloseReason);
    return {op::kClose, close_payload(proto::close_code_for(error), reason)};
}

// Checks what a connection wrote against the expected frames. Server role: byte for byte against
// an unmasked minimal encoding. Client role (RFC 6455 §5.3): every frame masked, no key used
// twice, minimal lengths, and the unmasked content as expected.
inline void check_output(Role role, std::span<const std::uint8_t> output,
                         const std::vector<ExpectedFrame>& expected) {
    const DecodeResult d = decode_all(output);
    CHECK(d.leftover == 0);
    CHECK(summarize(d.frames) == summarize(expected));
    if (role == Role::server) {
        Bytes want;
        for (const auto& f : expected)
            append_encoded(want, frame_of(f.opcode, f.payload, f.fin));
        CHECK(Bytes(output.begin(), output.end()) == want);
        for (const auto& f : d.frames)
            CHECK_FALSE(f.masked);
    } else {
        // Random 32-bit keys collide by chance (about n^2 / 2^33 for n frames): no repeat is
        // allowed in a short run, one per 256 frames in a long one.
        std::set<MaskKey> keys;
        std::size_t repeats = 0;
        for (const auto& f : d.frames) {
            CHECK(f.masked);
            CHECK(f.minimal_length);
            if (!keys.insert(f.key).second) ++repeats;
        }
        CHECK_MESSAGE(repeats <= d.frames.size() / 256, "client reused masking keys");
    }
}

// ---- Over real sockets: the conformance_wire_* programs (wire.cpp) install a runner that
// replays every server-role scenario against the `wsx echo` binary over loopback TCP.

struct WireScenario {
    const ConnectionOptions& options;
    std::span<const std::uint8_t> input;    // the peer's bytes, valid frames after a close included
    std::span<const ExpectedFrame> output;  // what the server must write, in order
    bool closes;                            // the connection closes (the server then ends TCP)
    std::optional<std::size_t> fail_at;     // the connection fails once this byte has arrived
};
using WireRunner = void (*)(const WireScenario&);

inline WireRunner& wire_runner() {
    static WireRunner runner = nullptr;
    return runner;
}

// ---- Scenario: the peer's bytes, and what the connection must do with them.

enum class Masking : std::uint8_t { by_role, masked, unmasked };

class Scenario {
  public:
    explicit Scenario(Role role, ConnectionOptions options = {})
        : role_(role), options_(options), keys_(static_cast<std::uint32_t>(role) + 11) {}

    Role role() const { return role_; }
    const ConnectionOptions& options() const { return options_; }
    const Bytes& input() const { return input_; }
    std::size_t size() const { return input_.size(); }

    // Appends a frame the way the peer would send it: masked iff the peer is a client (§5.1),
    // unless `masking` says otherwise. Returns the stream offset of its first payload byte.
    std::size_t frame(RawFrame f, Masking masking = Masking::by_role) {
        const bool masked =
            masking == Masking::masked || (masking == Masking::by_role && role_ == Role::server);
        if (masked && !f.mask) f.mask = keys_.next();
        if (!masked) f.mask.reset();
        const std::size_t payload_at = input_.size() + header_size_of(f);
        append_encoded(input_, f);
        return payload_at;
    }
    std::size_t frame(std::uint8_t opcode, Bytes payload, bool fin = true) {
        return frame(frame_of(opcode, std::move(payload), fin));
    }
    std::size_t text(std::string_view s, bool fin = true) {
        return frame(op::kText, bytes_of(s), fin);
    }
    void raw(std::span<const std::uint8_t> bytes) {
        input_.insert(input_.end(), bytes.begin(), bytes.end());
    }

    // A message the connection delivers; the recorder echoes it as one frame.
    void expect_message(Opcode opcode, Bytes payload) {
        output_.push_back({static_cast<std::uint8_t>(opcode), payload});
        events_.push_back(Event::message(opcode, std::move(payload)));
    }
    // A ping reported and answered at once with a pong of the same payload (§5.5.2).
    void expect_ping(Bytes payload) {
        output_.push_back({op::kPong, payload});
        events_.push_back(Event::ping(std::move(payload)));
    }
    // An unsolicited pong: reported, never answered (§5.5.3).
    void expect_pong(Bytes payload) { events_.push_back(Event::pong(std::move(payload))); }
    // The peer's close, echoed with the same code and no reason, or an empty close when the peer's
    // had no payload (§5.5.1); the handshake is then complete.
    void expect_peer_close(std::optional<std::uint16_t> code, std::string_view reason = {}) {
        output_.push_back({op::kClose, code ? close_payload(*code) : Bytes{}});
        events_.push_back(
            Event::close(code.value_or(proto::close_code::kNoStatus), reason, true, Error::none));
        closes_ = true;
    }
    // The connection fails (§7.1.7): a close frame with the error's code, nothing delivered after.
    // With `at`, the failure must be found while the chunk holding stream byte `at` is fed — not
    // before it (exact) or not after it.
    void expect_failure(Error error, std::optional<std::size_t> at = {}, bool exact = true) {
        output_.push_back(failure_close_frame(error));
        events_.push_back(Event::failure(error));
        error_ = error;
        failed_ = true;
        closes_ = true;
        fail_at_ = at;
        fail_at_exact_ = exact;
    }
    void expect_output(ExpectedFrame f) { output_.push_back(std::move(f)); }
    void expect_event(Event e) { events_.push_back(std::move(e)); }

    // Runs every feeding and checks each against the expectations. When the connection is expected
    // to close, valid frames are appended after the input: none of them may be delivered or
    // answered. Returns the outcome of the first feeding for further checks.
    Outcome run(const std::vector<Feeding>& feedings = standard_feedings()) const {
        Bytes input = input_;
        if (closes_) {
            RawFrame after_text = frame_of(op::kText, bytes_of("after close"));
            RawFrame after_ping = frame_of(op::kPing, bytes_of("p"));
            RawFrame after_close = frame_of(op::kClose, close_payload(1000));
            for (RawFrame* f : {&after_text, &after_ping, &after_close}) {
                if (role_ == Role::server) f->mask = MaskKey{1, 2, 3, 4};
                append_encoded(input, *f);
            }
        }
        // Over the wire, the server-role scenario goes to `wsx echo`; in memory it then runs
        // whole only, for the Outcome the caller may inspect.
        std::vector<Feeding> memory_feedings = feedings;
        if (wire_runner() != nullptr) {
            if (role_ == Role::server) wire_runner()({options_, input, output_, closes_, fail_at_});
            memory_feedings = {Feeding::whole()};
        }
        std::optional<Outcome> first;
        for (const Feeding& feeding : memory_feedings) {
            const std::string role = role_name(role_);
            CAPTURE(role);
            const std::string feeding_name = feeding.name();
            CAPTURE(feeding_name);
            Outcome o = run_feeding(role_, input, feeding, options_);
            CHECK(summarize(o.events) == summarize(events_));
            check_output(role_, o.output, output_);
            CHECK(o.consumed_everything);
            CHECK(o.first_error == error_);
            CHECK(o.error_results == (failed_ ? 1 : 0));
            CHECK(o.close_calls == (closes_ ? 1 : 0));
            // §7.1.1: after the handshake (or a failure) nothing more is read; the server closes
            // the TCP connection first, a client waits for the server's FIN unless it failed.
            CHECK(o.state == (closes_ ? State::closed : State::open));
            CHECK(o.wants_read == !closes_);
            CHECK(o.close_transport_now == (closes_ && (role_ == Role::server || failed_)));
            if (fail_at_) {
                REQUIRE(o.close_chunk_begin.has_value());
                const std::size_t at = *fail_at_;
                CAPTURE(at);
                CAPTURE(*o.close_chunk_begin);
                CAPTURE(o.close_chunk_end);
                CHECK(*o.close_chunk_begin <= at);
                if (fail_at_exact_) CHECK(at < o.close_chunk_end);
                // The close frame is already in the output when that receive() returns.
                const DecodeResult d = decode_all(std::span(o.output).first(o.output_at_close));
                REQUIRE_FALSE(d.frames.empty());
                CHECK(d.frames.back().opcode == op::kClose);
            }
            if (!first) first = std::move(o);
        }
        return first ? std::move(*first) : Outcome{};
    }

  private:
    Role role_;
    ConnectionOptions options_;
    KeySource keys_;
    Bytes input_;
    std::vector<Event> events_;
    std::vector<ExpectedFrame> output_;
    Error error_ = Error::none;
    bool failed_ = false;
    bool closes_ = false;
    std::optional<std::size_t> fail_at_;
    bool fail_at_exact_ = true;
};

}  // namespace wsx::conformance
