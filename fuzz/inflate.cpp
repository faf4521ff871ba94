// permessage-deflate (RFC 7692) under fuzzing. The first input byte picks one of three targets:
//   0. Inflater fed fuzzed DEFLATE data, message by message, with a size limit the caller enforces
//      by pulling output in pieces (what Connection does for max_message_size): every call
//      produces at most the room it was given, a bomb is cut at the limit without anything past
//      it being inflated, and the bytes and the verdict do not depend on the piece size;
//   1. round trip: a Deflater (any window 8-15, level, memLevel, takeover, whole messages or
//      flushed fragments) and an Inflater configured alike give back every message exactly;
//   2. proto::Connection (server role) with deflate negotiated from fuzzed parameters, fed
//      fuzzed frames (RSV1 on any of them, fuzzed compressed payloads) cut into fuzzed reads. It
//      echoes every message (compressed per the tuning), and the harness checks: messages within
//      max_message_size and text valid UTF-8; on_close exactly once with the code its error
//      maps to (1009 for a bomb, 1007 for bad DEFLATE data, 1002 for misplaced RSV1), nothing
//      after it; the output is unmasked server frames, RSV1 only on the first frame of a data
//      message, and every echo inflates (as the client would) to the message delivered.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "harnesses.hpp"
#include "proto/close.hpp"
#include "proto/connection.hpp"
#include "proto/deflate.hpp"
#include "proto/frame.hpp"
#include "support.hpp"

namespace wsx::fuzz {

namespace {

using proto::CloseInfo;
using proto::Connection;
using proto::ConnectionOptions;
using proto::Deflater;
using proto::DeflateTuning;
using proto::Error;
using proto::Inflater;
using proto::Opcode;
using proto::Role;
using proto::State;
using Bytes = std::vector<std::uint8_t>;

constexpr std::array<std::size_t, 6> kLimits = {0, 1, 100, 4096, 65536, 1 << 20};
constexpr std::array<std::size_t, 5> kPieces = {1, 7, 512, 16384, 65536};
// Past this much output, a harness run stops inflating: fuzzing speed, not a property.
constexpr std::size_t kHarnessCap = 2 << 20;

std::uint8_t window_bits_from(std::uint8_t b) noexcept {
    return static_cast<std::uint8_t>(8 + b % 8);
}

// The rest of the input as messages: a 16-bit length, then that many bytes (cut at the end).
std::vector<std::span<const std::uint8_t>> split_messages(InputReader& in) {
    std::vector<std::span<const std::uint8_t>> out;
    while (!in.rest().empty()) {
        const std::size_t n = std::min<std::size_t>(in.u16(), in.rest().size());
        out.push_back(in.rest().first(n));
        for (std::size_t i = 0; i < n; ++i)
            in.byte();
    }
    return out;
}

struct InflateRun {
    std::vector<Bytes> messages;  // what was inflated of each message (up to the cut)
    bool failed = false;          // the data was not DEFLATE
    bool cut = false;             // a message passed the limit: the stream was abandoned
};

// Inflates `messages` in pieces of `piece` bytes, never asking for more than limit + 1 bytes of a
// message: one byte past the limit proves it too big (Connection then fails with 1009).
InflateRun inflate_all(const std::vector<std::span<const std::uint8_t>>& messages,
                       std::uint8_t window_bits, bool takeover, std::size_t limit,
                       std::size_t piece) {
    InflateRun run;
    Inflater inflater(window_bits, takeover, DeflateTuning{});
    Bytes buffer(piece);
    std::size_t total_all = 0;
    for (const auto& compressed : messages) {
        Bytes& out = run.messages.emplace_back();
        // Pulls until zlib needs input; false when the message is over the limit or bad.
        auto pull = [&]() -> bool {
            for (;;) {
                const std::size_t room = std::min(piece, limit + 1 - out.size());
                const Inflater::Result r = inflater.inflate(std::span(buffer).first(room));
                WSX_FUZZ_CHECK(r.produced <= room);
                out.insert(out.end(), buffer.begin(),
                           buffer.begin() + static_cast<std::ptrdiff_t>(r.produced));
                total_all += r.produced;
                if (r.status == Inflater::Status::error) {
                    WSX_FUZZ_CHECK(inflater.error() == Error::inflate_failed);
                    run.failed = true;
                    return false;
                }
                if (out.size() > limit || total_all > kHarnessCap) {
                    WSX_FUZZ_CHECK(out.size() == limit + 1 || total_all > kHarnessCap);
                    run.cut = true;
                    return false;
                }
                if (r.status == Inflater::Status::need_input) return true;
                WSX_FUZZ_CHECK(r.produced == room);  // output_full: the room was filled
            }
        };
        inflater.feed(compressed);
        if (!pull()) return run;
        inflater.feed_tail();
        if (!pull()) return run;
        inflater.end_message();
    }
    return run;
}

void run_inflate_limit(InputReader& in) {
    const std::uint8_t config = in.byte();
    const std::uint8_t window_bits = window_bits_from(config);
    const bool takeover = (config & 0x08) == 0;
    const std::size_t limit = kLimits[(config >> 4) % kLimits.size()];
    const std::size_t piece = kPieces[in.byte() % kPieces.size()];
    const auto messages = split_messages(in);

    const InflateRun small = inflate_all(messages, window_bits, takeover, limit, piece);
    for (const Bytes& m : small.messages)
        WSX_FUZZ_CHECK(m.size() <= limit + 1);
    // The same stream pulled in the largest pieces: same bytes, same verdict. (Window 8 runs zlib
    // at 9 precisely so that this holds, see Inflater.)
    const InflateRun large = inflate_all(messages, window_bits, takeover, limit, 65536);
    if (small.messages.size() > 0 && large.messages.size() > 0 && !small.cut && !large.cut) {
        WSX_FUZZ_CHECK(small.failed == large.failed);
        WSX_FUZZ_CHECK(small.messages == large.messages);
    }
    if (small.cut && large.cut) WSX_FUZZ_CHECK(small.messages == large.messages);
}

void run_round_trip(InputReader& in) {
    const std::uint8_t config = in.byte();
    const std::uint8_t window_bits = window_bits_from(config);
    const bool takeover = (config & 0x08) == 0;
    const bool fragments = (config & 0x10) != 0;
    DeflateTuning tuning;
    const std::uint8_t levels = in.byte();
    tuning.compression_level = 1 + levels % 9;
    tuning.mem_level = 1 + (levels >> 4) % 9;
    tuning.release_idle_streams = (config & 0x20) != 0;
    const std::uint16_t split_seed = in.u16();
    const auto messages = split_messages(in);

    Deflater deflater(window_bits, takeover, tuning);
    Inflater inflater(window_bits, takeover, tuning);
    Splitter splitter(split_seed);
    Bytes buffer(4096);
    for (const auto& message : messages) {
        Bytes compressed;
        if (!fragments || message.empty()) {
            std::span<const std::uint8_t> out;
            WSX_FUZZ_CHECK(deflater.compress_message(message, out) == Error::none);
            compressed.assign(out.begin(), out.end());
        } else {
            for (std::size_t at = 0; at < message.size();) {
                const std::size_t n = splitter.next(message.size() - at);
                std::span<const std::uint8_t> out;
                const bool last = at + n == message.size();
                WSX_FUZZ_CHECK(deflater.compress_fragment(message.subspan(at, n), last, out) ==
                               Error::none);
                compressed.insert(compressed.end(), out.begin(), out.end());
                at += n;
            }
        }
        // §7.2.1: the 00 00 FF FF tail is removed; a message never ends with it.
        if (compressed.size() >= 4) {
            WSX_FUZZ_CHECK(!std::equal(compressed.end() - 4, compressed.end(),
                                       std::array<std::uint8_t, 4>{0, 0, 0xFF, 0xFF}.begin()));
        }
        if (tuning.release_idle_streams && !takeover) WSX_FUZZ_CHECK(!deflater.has_stream());

        Bytes back;
        auto pull = [&] {
            for (;;) {
                const Inflater::Result r = inflater.inflate(buffer);
                WSX_FUZZ_CHECK(r.status != Inflater::Status::error);
                back.insert(back.end(), buffer.begin(),
                            buffer.begin() + static_cast<std::ptrdiff_t>(r.produced));
                WSX_FUZZ_CHECK(back.size() <= message.size());
                if (r.status == Inflater::Status::need_input) return;
            }
        };
        inflater.feed(compressed);
        pull();
        inflater.feed_tail();
        pull();
        inflater.end_message();
        WSX_FUZZ_CHECK(std::equal(back.begin(), back.end(), message.begin(), message.end()));
    }
}

// ---- Connection with deflate negotiated.

constexpr std::array<std::uint64_t, 6> kMessageLimits = {0, 1, 125, 1000, 65536, 1 << 20};
constexpr std::array<std::size_t, 4> kMinCompress = {0, 1, 64, SIZE_MAX};
constexpr proto::MaskKey kKey = {0x37, 0xFA, 0x21, 0x3D};

struct Delivered {
    Opcode opcode;
    Bytes payload;
};

class Handler {
  public:
    Handler(Connection& conn, const ConnectionOptions& options) : conn_(conn), options_(options) {}

    void on_message(Opcode opcode, std::span<const std::uint8_t> payload) {
        begin_event();
        WSX_FUZZ_CHECK(opcode == Opcode::text || opcode == Opcode::binary);
        WSX_FUZZ_CHECK(payload.size() <= options_.max_message_size);
        if (opcode == Opcode::text) WSX_FUZZ_CHECK(reference_utf8_valid(payload));
        const Error e = conn_.send(opcode, payload);
        WSX_FUZZ_CHECK(e == Error::none);
        echoed.push_back({opcode, Bytes(payload.begin(), payload.end())});
    }
    void on_ping(std::span<const std::uint8_t> payload) {
        begin_event();
        WSX_FUZZ_CHECK(payload.size() <= 125);
    }
    void on_pong(std::span<const std::uint8_t> payload) {
        begin_event();
        WSX_FUZZ_CHECK(payload.size() <= 125);
    }
    void on_close(const CloseInfo& info) {
        WSX_FUZZ_CHECK(closes == 0);
        ++closes;
        error = info.error;
        if (info.error == Error::none) {
            WSX_FUZZ_CHECK(info.clean);
            WSX_FUZZ_CHECK(info.code == proto::close_code::kNoStatus ||
                           proto::is_valid_wire_close_code(info.code));
        } else if (info.error != Error::abnormal_closure) {
            WSX_FUZZ_CHECK(info.code == proto::close_code_for(info.error));
            WSX_FUZZ_CHECK(info.code == 1002 || info.code == 1007 || info.code == 1009);
            // A bomb is a size error, bad DEFLATE data an invalid payload (RFC 7692 §8.2.3.4
            // leaves it to the endpoint; CONFORMANCE.md §13 picks 1007).
            if (info.error == Error::message_too_big) WSX_FUZZ_CHECK(info.code == 1009);
            if (info.error == Error::inflate_failed) WSX_FUZZ_CHECK(info.code == 1007);
        }
    }

    std::vector<Delivered> echoed;
    int closes = 0;
    Error error = Error::none;

  private:
    void begin_event() const {
        WSX_FUZZ_CHECK(closes == 0);
        WSX_FUZZ_CHECK(conn_.state() != State::closed);
    }

    Connection& conn_;
    const ConnectionOptions& options_;
};

// The peer's frames: per record a flags byte (opcode, FIN, RSV1), a length byte, the payload.
Bytes frames_from(InputReader& in) {
    static constexpr std::array<std::uint8_t, 8> kOpcodes = {1, 2, 0, 0, 1, 2, 9, 8};
    Bytes wire;
    while (!in.rest().empty()) {
        const std::uint8_t flags = in.byte();
        std::size_t n = in.byte();
        if ((flags & 0x40) != 0) n = n * 64 + in.byte();  // up to ~16 KiB
        n = std::min(n, in.rest().size());
        const std::uint8_t opcode = kOpcodes[flags % kOpcodes.size()];
        const bool fin = (flags & 0x08) == 0;
        const bool rsv1 = (flags & 0x10) != 0;
        wire.push_back(static_cast<std::uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode));
        if (n < 126) {
            wire.push_back(static_cast<std::uint8_t>(0x80 | n));
        } else {
            wire.push_back(0x80 | 126);
            wire.push_back(static_cast<std::uint8_t>(n >> 8));
            wire.push_back(static_cast<std::uint8_t>(n & 0xFF));
        }
        wire.insert(wire.end(), kKey.begin(), kKey.end());
        for (std::size_t i = 0; i < n; ++i)
            wire.push_back(static_cast<std::uint8_t>(in.byte() ^ kKey[i % 4]));
    }
    return wire;
}

// What the client would do with the server's output: check each header (RFC 6455 §5.1-5.2,
// RFC 7692 §6.1), inflate compressed messages, and compare them with what was echoed.
void check_output(const Bytes& wire, const proto::DeflateConfig& deflate,
                  const std::vector<Delivered>& echoed) {
    Inflater inflater(deflate.params.server_max_window_bits,
                      !deflate.params.server_no_context_takeover, DeflateTuning{});
    std::size_t pos = 0;
    std::size_t next_echo = 0;
    bool seen_close = false;
    bool in_message = false;
    Opcode message = Opcode::text;
    bool compressed = false;
    Bytes payload;
    Bytes buffer(16384);
    while (pos < wire.size()) {
        WSX_FUZZ_CHECK(!seen_close);
        proto::FrameHeader h;
        const auto r = proto::parse_frame_header(std::span(wire).subspan(pos), h);
        WSX_FUZZ_CHECK(r.status == proto::ParseStatus::ok);
        WSX_FUZZ_CHECK(!h.masked && !h.rsv2 && !h.rsv3);
        pos += h.header_length;
        WSX_FUZZ_CHECK(h.payload_length <= wire.size() - pos);
        const auto body = std::span(wire).subspan(pos, static_cast<std::size_t>(h.payload_length));
        pos += body.size();
        if (proto::is_control(h.opcode)) {
            WSX_FUZZ_CHECK(!h.rsv1 && h.fin);  // §6.1: control frames are never compressed
            if (h.opcode == Opcode::close) seen_close = true;
            continue;
        }
        if (h.opcode == Opcode::continuation) {
            WSX_FUZZ_CHECK(in_message && !h.rsv1);
        } else {
            WSX_FUZZ_CHECK(!in_message);
            in_message = true;
            message = h.opcode;
            compressed = h.rsv1;
            payload.clear();
        }
        if (compressed) {
            inflater.feed(body);
            for (;;) {
                const Inflater::Result ir = inflater.inflate(buffer);
                WSX_FUZZ_CHECK(ir.status != Inflater::Status::error);
                payload.insert(payload.end(), buffer.begin(),
                               buffer.begin() + static_cast<std::ptrdiff_t>(ir.produced));
                if (ir.status == Inflater::Status::need_input) break;
            }
        } else {
            payload.insert(payload.end(), body.begin(), body.end());
        }
        if (!h.fin) continue;
        if (compressed) {
            inflater.feed_tail();
            for (;;) {
                const Inflater::Result ir = inflater.inflate(buffer);
                WSX_FUZZ_CHECK(ir.status != Inflater::Status::error);
                payload.insert(payload.end(), buffer.begin(),
                               buffer.begin() + static_cast<std::ptrdiff_t>(ir.produced));
                if (ir.status == Inflater::Status::need_input) break;
            }
            inflater.end_message();
        }
        WSX_FUZZ_CHECK(next_echo < echoed.size());
        WSX_FUZZ_CHECK(echoed[next_echo].opcode == message);
        WSX_FUZZ_CHECK(echoed[next_echo].payload == payload);
        ++next_echo;
        in_message = false;
    }
    WSX_FUZZ_CHECK(!in_message);
    WSX_FUZZ_CHECK(next_echo == echoed.size());
}

void run_connection_deflate(InputReader& in) {
    const std::uint8_t negotiated = in.byte();
    const std::uint8_t bits = in.byte();
    const std::uint8_t tuning_byte = in.byte();
    proto::DeflateConfig deflate;
    deflate.params.server_no_context_takeover = (negotiated & 0x01) != 0;
    deflate.params.client_no_context_takeover = (negotiated & 0x02) != 0;
    deflate.params.server_max_window_bits = window_bits_from(bits);
    deflate.params.client_max_window_bits = window_bits_from(bits >> 4);
    deflate.tuning.release_idle_streams = (negotiated & 0x04) != 0;
    deflate.tuning.compression_level = 1 + tuning_byte % 9;
    deflate.tuning.mem_level = 1 + (tuning_byte >> 4) % 9;
    deflate.tuning.min_compress_size = kMinCompress[(negotiated >> 3) % kMinCompress.size()];
    ConnectionOptions options;
    options.max_message_size = kMessageLimits[(negotiated >> 5) % kMessageLimits.size()];
    options.max_frame_size = 1 << 20;
    options.deflate = deflate;
    const std::uint16_t split_seed = in.u16();
    const Bytes input = frames_from(in);

    Connection conn(Role::server, options);
    Handler handler(conn, options);
    Splitter reads(split_seed);
    Bytes wire;
    for (std::size_t pos = 0; pos < input.size();) {
        const std::size_t n = reads.next(input.size() - pos);
        Bytes chunk(input.begin() + static_cast<std::ptrdiff_t>(pos),
                    input.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
        const proto::ReceiveResult r = conn.receive(std::span(chunk), handler);
        WSX_FUZZ_CHECK(r.consumed <= n);
        if (conn.state() != State::closed) WSX_FUZZ_CHECK(r.consumed == n);
        while (conn.wants_write()) {
            proto::IoSlice iov[4];
            const std::size_t k = conn.pending_output(iov);
            std::size_t total = 0;
            for (std::size_t i = 0; i < k; ++i) {
                const auto* p = static_cast<const std::uint8_t*>(iov[i].data);
                wire.insert(wire.end(), p, p + iov[i].size);
                total += iov[i].size;
            }
            conn.consume_output(total);
        }
        if (conn.state() == State::closed) break;
    }
    conn.transport_closed(handler);
    WSX_FUZZ_CHECK(handler.closes == 1);
    check_output(wire, deflate, handler.echoed);
}

}  // namespace

int run_inflate(const std::uint8_t* data, std::size_t size) {
    InputReader in(data, size);
    switch (in.byte() % 3) {
        case 0:
            run_inflate_limit(in);
            break;
        case 1:
            run_round_trip(in);
            break;
        default:
            run_connection_deflate(in);
            break;
    }
    return 0;
}

}  // namespace wsx::fuzz
