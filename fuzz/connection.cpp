// proto::Connection after the handshake (RFC 6455 §5-§7), server and client role. The input picks
// the options (small limits, so 1009 is reachable), the handler kind (whole messages or
// streaming), what the handler does (echo by copy, by reference or as a shared frame; close the
// connection after a few events; answer pongs with 20 KiB frames; try a forbidden send call at
// every event), how the wire bytes are cut into reads and how much of the output the "socket"
// takes each time. Then it checks what the application sees and what goes out on the wire:
//   - consumed == read size while the connection is open, and never more;
//   - forbidden send calls are refused and queue nothing;
//   - on_close exactly once, and no event after it; text messages are valid UTF-8; sizes are
//     within the limits; the close info matches the rule that failed (1002/1007/1009);
//   - the output decodes into frames of the right role (server: unmasked, client: masked), with
//     no RSV bits, minimal lengths and no trailing bytes, and is exactly, in order, the pongs, the
//     echoes and the close frame the rules call for: at most one close frame, and it is the last.
#include "proto/connection.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "harnesses.hpp"
#include "support.hpp"

namespace wsx::fuzz {

namespace {

using proto::CloseInfo;
using proto::Connection;
using proto::ConnectionOptions;
using proto::DataChunk;
using proto::Error;
using proto::FrameHeader;
using proto::IoSlice;
using proto::Opcode;
using proto::Role;
using proto::SharedBuffer;
using proto::State;
using Bytes = std::vector<std::uint8_t>;

constexpr std::array<std::uint64_t, 8> kLimits = {0, 1, 20, 125, 126, 1000, 65536, 16 << 20};
constexpr std::array<std::size_t, 4> kFragmentSizes = {0, 1, 7, 125};

enum class Echo : std::uint8_t { none, copy, reference, shared };

struct Config {
    ConnectionOptions options;
    Echo echo = Echo::none;
    unsigned close_after = 0;  // the handler calls close() after this many events (0: never)
    bool burst = false;        // the handler answers each pong with a large frame
    unsigned misuse = 0;       // which refused send-API call the handler tries at each event
    std::uint16_t split_seed = 0;
    std::uint16_t drain_seed = 0;
};

Config config_from(InputReader& in) {
    Config c;
    const std::uint8_t limits = in.byte();
    const std::uint8_t actions = in.byte();
    const std::uint8_t extra = in.byte();
    c.options.max_frame_size = kLimits[limits & 7];
    c.options.max_message_size = kLimits[(limits >> 3) & 7];
    c.options.auto_pong = (limits & 0x40) == 0;
    // Bit 7 of the first byte picks the handler kind; see run_connection_server.
    c.echo = static_cast<Echo>(actions & 3);
    c.options.auto_fragment_size = kFragmentSizes[(actions >> 2) & 3];
    c.close_after = (actions >> 4) & 7;
    // As if an extension had claimed RSV1 (RFC 7692): such frames pass through untouched.
    c.options.extension_rsv_bits = (actions & 0x80) != 0 ? 0x4 : 0;
    c.burst = (extra & 1) != 0;
    c.misuse = (extra >> 1) & 7;
    c.split_seed = in.u16();
    c.drain_seed = static_cast<std::uint16_t>(c.split_seed ^ 0x5A5A);
    return c;
}

Bytes to_bytes(std::span<const std::uint8_t> s) {
    return Bytes(s.begin(), s.end());
}

// What the connection must have written, in order: single frames (pongs, closes, streamed echo
// fragments) and whole messages (which auto_fragment_size may cut into several frames).
struct Expected {
    bool message = false;
    Opcode opcode = Opcode::binary;
    bool fin = true;
    bool single_frame = false;  // a shared frame: never re-fragmented
    Bytes payload;
};

// The errors the receive side fails a connection with (RFC 6455 §5-§8).
bool is_receive_error(Error e) noexcept {
    switch (e) {
        case Error::reserved_opcode:
        case Error::reserved_bits_set:
        case Error::control_frame_too_long:
        case Error::control_frame_fragmented:
        case Error::length_msb_set:
        case Error::unmasked_client_frame:
        case Error::masked_server_frame:
        case Error::unexpected_continuation:
        case Error::expected_continuation:
        case Error::invalid_utf8:
        case Error::frame_too_big:
        case Error::message_too_big:
        case Error::close_payload_one_byte:
        case Error::invalid_close_code:
        case Error::close_reason_invalid_utf8:
            return true;
        default:
            return false;
    }
}

Bytes close_payload(std::uint16_t code, std::string_view reason) {
    if (code == 0) return {};
    std::array<std::uint8_t, 125> out{};
    const std::size_t n = proto::write_close_payload(out, code, reason);
    return Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
}

// Everything both handler kinds do: check each event and act on it.
class Observer {
  public:
    Observer(Connection& conn, const Config& config) : conn_(conn), config_(config) {}

    void message(Opcode opcode, std::span<const std::uint8_t> payload) {
        begin_event();
        WSX_FUZZ_CHECK(opcode == Opcode::text || opcode == Opcode::binary);
        WSX_FUZZ_CHECK(payload.size() <= config_.options.max_message_size);
        if (opcode == Opcode::text) WSX_FUZZ_CHECK(reference_utf8_valid(payload));
        echo_message(opcode, payload);
        end_event();
    }

    void data(const DataChunk& chunk) {
        begin_event();
        WSX_FUZZ_CHECK(chunk.opcode == Opcode::text || chunk.opcode == Opcode::binary);
        if (chunk.first) {
            WSX_FUZZ_CHECK(!message_open_);
            message_open_ = true;
            message_opcode_ = chunk.opcode;
            message_.clear();
            checked_ = 0;
        } else {
            WSX_FUZZ_CHECK(message_open_ && chunk.opcode == message_opcode_);
        }
        message_.insert(message_.end(), chunk.data.begin(), chunk.data.end());
        WSX_FUZZ_CHECK(message_.size() <= config_.options.max_message_size);
        if (message_opcode_ == Opcode::text) {
            // Fail fast (RFC 6455 §8.1, Autobahn 6.4): no chunk carries an impossible byte. Only
            // the bytes from the last code point boundary on need checking again.
            const ReferenceUtf8 ref = reference_utf8(std::span(message_).subspan(checked_));
            WSX_FUZZ_CHECK(!ref.invalid);
            const std::size_t tail = message_.size() - checked_;
            if (chunk.last) WSX_FUZZ_CHECK(ref.boundary[tail]);
            std::size_t last_boundary = tail;
            while (!ref.boundary[last_boundary])
                --last_boundary;
            checked_ += last_boundary;
        }
        if (chunk.last) message_open_ = false;
        if (config_.echo != Echo::none) {
            const Opcode op = chunk.first ? chunk.opcode : Opcode::continuation;
            const bool open = conn_.state() == State::open;
            const Error e = conn_.send_frame(op, chunk.data, chunk.last);
            WSX_FUZZ_CHECK(e == (open ? Error::none : Error::not_open));
            if (open) expect_frame(op, chunk.last, chunk.data);
        }
        end_event();
    }

    void ping(std::span<const std::uint8_t> payload) {
        begin_event();
        WSX_FUZZ_CHECK(payload.size() <= proto::kMaxControlPayload);
        // RFC 6455 §5.5.2: the pong went out before the handler heard of the ping.
        if (config_.options.auto_pong && conn_.state() == State::open) {
            expect_frame(Opcode::pong, true, payload);
        }
        end_event();
    }

    void pong(std::span<const std::uint8_t> payload) {
        begin_event();
        WSX_FUZZ_CHECK(payload.size() <= proto::kMaxControlPayload);
        if (config_.burst) send_burst();
        end_event();
    }

    void close(const CloseInfo& info) {
        WSX_FUZZ_CHECK(closes_ == 0);
        ++closes_;
        WSX_FUZZ_CHECK(conn_.state() == State::closed && !conn_.wants_read());
        last_close_ = info.error;
        if (info.error == Error::none) {
            // The peer's close: its code (1005 for none) and a UTF-8 reason (§5.5.1, §7.4).
            WSX_FUZZ_CHECK(info.clean);
            WSX_FUZZ_CHECK(info.code == proto::close_code::kNoStatus ||
                           proto::is_valid_wire_close_code(info.code));
            WSX_FUZZ_CHECK(info.reason.size() <= proto::kMaxCloseReason);
            WSX_FUZZ_CHECK(reference_utf8_valid(as_bytes(info.reason)));
            // §5.5.1: echoed with the same code, unless we had sent our close already.
            if (!we_closed_) {
                const std::uint16_t code =
                    info.code == proto::close_code::kNoStatus ? std::uint16_t{0} : info.code;
                expected_.push_back({false, Opcode::close, true, false, close_payload(code, {})});
            }
        } else if (info.error == Error::abnormal_closure) {
            WSX_FUZZ_CHECK(in_transport_closed_);
            WSX_FUZZ_CHECK(!info.clean && info.code == proto::close_code::kAbnormal);
        } else {
            // §7.1.7: the connection failed with the code its error maps to.
            WSX_FUZZ_CHECK(!in_transport_closed_);
            WSX_FUZZ_CHECK(is_receive_error(info.error));
            WSX_FUZZ_CHECK(!info.clean);
            WSX_FUZZ_CHECK(info.code == proto::close_code_for(info.error));
            WSX_FUZZ_CHECK(info.code == 1002 || info.code == 1007 || info.code == 1009);
            WSX_FUZZ_CHECK(info.reason == proto::describe(info.error));
            if (!we_closed_) {
                expected_.push_back(
                    {false, Opcode::close, true, false, close_payload(info.code, info.reason)});
            }
        }
        if (!in_transport_closed_) call_error_ = info.error;
        // Nothing can be sent once closed.
        WSX_FUZZ_CHECK(conn_.ping() == Error::not_open);
        WSX_FUZZ_CHECK(conn_.send_text("late") == Error::not_open);
        WSX_FUZZ_CHECK(conn_.close() == Error::not_open);
    }

    void start_call() noexcept { call_error_ = Error::none; }
    Error call_error() const noexcept { return call_error_; }
    void set_in_transport_closed() noexcept { in_transport_closed_ = true; }
    unsigned closes() const noexcept { return closes_; }
    Error last_close() const noexcept { return last_close_; }
    const std::vector<Expected>& expected() const noexcept { return expected_; }

  private:
    void begin_event() {
        WSX_FUZZ_CHECK(closes_ == 0);  // no event after on_close
        WSX_FUZZ_CHECK(conn_.state() != State::closed);
        ++events_;
    }

    // The handler starts the close handshake after `close_after` events (§7.1.2).
    void end_event() {
        try_misuse();
        if (config_.close_after == 0 || events_ != config_.close_after) return;
        const bool open = conn_.state() == State::open;
        const std::uint16_t code = config_.close_after % 2 == 1 ? 1000 : 0;
        const std::string_view reason = code == 0 ? "" : "bye";
        const Error e = conn_.close(code, reason);
        WSX_FUZZ_CHECK(e == (open ? Error::none : Error::not_open));
        if (open) {
            WSX_FUZZ_CHECK(conn_.state() == State::closing);
            expected_.push_back({false, Opcode::close, true, false, close_payload(code, reason)});
            we_closed_ = true;
        }
    }

    // A frame large enough that, with short writes, the output queue grows past the point where
    // it compacts its storage.
    void send_burst() {
        Bytes payload(kBurstSize);
        for (std::size_t i = 0; i < payload.size(); ++i)
            payload[i] = static_cast<std::uint8_t>(i * 7 + bursts_);
        ++bursts_;
        const bool open = conn_.state() == State::open;
        const std::size_t before = conn_.buffered_amount();
        const Error e = conn_.send_frame(Opcode::binary, payload, true);
        if (e == Error::none) {
            WSX_FUZZ_CHECK(open);
            expect_frame(Opcode::binary, true, payload);
            return;
        }
        // Refused only when closed or inside a fragmented echo (§5.4: no interleaving).
        WSX_FUZZ_CHECK(e == (open ? Error::send_message_open : Error::not_open));
        WSX_FUZZ_CHECK(conn_.buffered_amount() == before);
    }

    // Calls the send API the way the rules forbid; each must be refused, queueing nothing and
    // leaving the state as it was.
    void try_misuse() {
        if (config_.misuse == 0) return;
        static constexpr std::array<std::uint8_t, 126> kBytes{};
        const std::span<const std::uint8_t> small(kBytes.data(), 3);
        const std::size_t before = conn_.buffered_amount();
        const State state = conn_.state();
        Error e = Error::none;
        switch (config_.misuse) {
            case 1:  // data only: control frames have their own calls
                e = conn_.send(Opcode::ping, small);
                break;
            case 2:  // §5.4: a continuation needs an open fragmented message (send() has none)
                e = conn_.send(Opcode::continuation, small);
                break;
            case 3:  // §5.5: control frames are never fragmented
                e = conn_.send_frame(Opcode::ping, small, false);
                break;
            case 4:  // a close frame goes through close(), which tracks the handshake
                e = conn_.send_frame(Opcode::close, small, true);
                break;
            case 5:  // §5.5: control payloads are at most 125 bytes
                e = conn_.ping(kBytes);
                break;
            case 6:  // §7.4.1: 1005 is never sent; a reason needs a code
                e = conn_.close(proto::close_code::kNoStatus);
                WSX_FUZZ_CHECK(e != Error::none);
                e = conn_.close(0, "reason");
                break;
            default:  // §8.1: text is UTF-8
                e = conn_.send_text("\xC0\xAF");
                break;
        }
        WSX_FUZZ_CHECK(e != Error::none);
        if (state != State::open) WSX_FUZZ_CHECK(e == Error::not_open || config_.misuse <= 2);
        WSX_FUZZ_CHECK(conn_.buffered_amount() == before);
        WSX_FUZZ_CHECK(conn_.state() == state);
    }

    void expect_frame(Opcode opcode, bool fin, std::span<const std::uint8_t> payload) {
        expected_.push_back({false, opcode, fin, false, to_bytes(payload)});
    }

    void echo_message(Opcode opcode, std::span<const std::uint8_t> payload) {
        if (config_.echo == Echo::none) return;
        const bool open = conn_.state() == State::open;
        const bool server = conn_.role() == Role::server;
        Error e = Error::none;
        bool single_frame = false;
        switch (config_.echo) {
            case Echo::copy:
                e = conn_.send(opcode, payload);
                break;
            case Echo::reference: {
                // The payload dies with the read buffer: the reference must point into a buffer
                // that `keep_alive` owns.
                const SharedBuffer owned = SharedBuffer::copy_of(payload);
                e = conn_.send_reference(opcode, owned.bytes(), owned);
                break;
            }
            case Echo::shared:
                if (server) {
                    e = conn_.send_shared(proto::encode_shared_frame(opcode, payload));
                    single_frame = true;
                } else {
                    // §5.3: a client masks every frame with a fresh key, so it cannot share one.
                    WSX_FUZZ_CHECK(conn_.send_shared(proto::encode_shared_frame(opcode, payload)) ==
                                   Error::shared_frame_client);
                    e = conn_.send(opcode, payload);
                }
                break;
            case Echo::none:
                break;
        }
        WSX_FUZZ_CHECK(e == (open ? Error::none : Error::not_open));
        if (open) expected_.push_back({true, opcode, true, single_frame, to_bytes(payload)});
    }

    Connection& conn_;
    const Config& config_;
    std::vector<Expected> expected_;
    static constexpr std::size_t kBurstSize = 20 * 1024;

    unsigned events_ = 0;
    unsigned bursts_ = 0;
    unsigned closes_ = 0;
    bool we_closed_ = false;
    bool in_transport_closed_ = false;
    Error call_error_ = Error::none;
    Error last_close_ = Error::none;
    bool message_open_ = false;
    Opcode message_opcode_ = Opcode::binary;
    Bytes message_;
    std::size_t checked_ = 0;  // message_ bytes up to a code point boundary, known valid
};

struct MessageHandler {
    Observer& observer;
    void on_message(Opcode opcode, std::span<const std::uint8_t> p) { observer.message(opcode, p); }
    void on_ping(std::span<const std::uint8_t> p) { observer.ping(p); }
    void on_pong(std::span<const std::uint8_t> p) { observer.pong(p); }
    void on_close(const CloseInfo& info) { observer.close(info); }
};

struct StreamingHandler {
    Observer& observer;
    void on_data(const DataChunk& chunk) { observer.data(chunk); }
    void on_ping(std::span<const std::uint8_t> p) { observer.ping(p); }
    void on_pong(std::span<const std::uint8_t> p) { observer.pong(p); }
    void on_close(const CloseInfo& info) { observer.close(info); }
};

// Takes part of the pending output, as a socket accepting a short write would.
void drain(Connection& conn, Splitter& splitter, Bytes& wire, bool everything) {
    while (conn.buffered_amount() > 0) {
        std::array<IoSlice, 3> slices{};
        const std::size_t n = conn.pending_output(slices);
        WSX_FUZZ_CHECK(n >= 1 && n <= slices.size());
        std::size_t gathered = 0;
        for (std::size_t i = 0; i < n; ++i) {
            WSX_FUZZ_CHECK(slices[i].size > 0 && slices[i].data != nullptr);
            gathered += slices[i].size;
        }
        const std::size_t before = conn.buffered_amount();
        WSX_FUZZ_CHECK(n < slices.size() ? gathered == before : gathered <= before);
        std::size_t take = everything ? gathered : splitter.next(gathered);
        const std::size_t taken = take;
        for (std::size_t i = 0; i < n && take > 0; ++i) {
            const auto* p = static_cast<const std::uint8_t*>(slices[i].data);
            const std::size_t k = std::min(take, slices[i].size);
            wire.insert(wire.end(), p, p + k);
            take -= k;
        }
        conn.consume_output(taken);
        WSX_FUZZ_CHECK(conn.buffered_amount() == before - taken);
        WSX_FUZZ_CHECK(conn.wants_write() == (conn.buffered_amount() > 0));
        if (!everything) return;
    }
}

struct WireFrame {
    Opcode opcode;
    bool fin;
    Bytes payload;
};

// Decodes what the connection wrote, checking each header against the sender's rules.
std::vector<WireFrame> decode_output(const Bytes& wire, Role role) {
    std::vector<WireFrame> frames;
    std::size_t pos = 0;
    while (pos < wire.size()) {
        FrameHeader h;
        const auto r = proto::parse_frame_header(std::span(wire).subspan(pos), h);
        WSX_FUZZ_CHECK(r.status == proto::ParseStatus::ok);
        WSX_FUZZ_CHECK(!h.rsv1 && !h.rsv2 && !h.rsv3);
        WSX_FUZZ_CHECK(h.masked == (role == Role::client));  // §5.1
        WSX_FUZZ_CHECK(h.header_length == proto::frame_header_size(h.payload_length, h.masked));
        pos += h.header_length;
        WSX_FUZZ_CHECK(h.payload_length <= wire.size() - pos);
        const auto length = static_cast<std::size_t>(h.payload_length);
        WireFrame f{h.opcode, h.fin,
                    Bytes(wire.begin() + static_cast<std::ptrdiff_t>(pos),
                          wire.begin() + static_cast<std::ptrdiff_t>(pos + length))};
        for (std::size_t i = 0; i < length && h.masked; ++i)
            f.payload[i] ^= h.mask_key[i % 4];
        frames.push_back(std::move(f));
        pos += length;
    }
    return frames;
}

void check_output(const std::vector<WireFrame>& frames, const std::vector<Expected>& expected,
                  const Config& config) {
    // At most one close frame, and nothing after it (RFC 6455 §5.5.1); its payload is one a
    // sender may send: empty, or a wire-valid code and a UTF-8 reason.
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (frames[i].opcode != Opcode::close) continue;
        WSX_FUZZ_CHECK(i + 1 == frames.size());
        const Bytes& p = frames[i].payload;
        WSX_FUZZ_CHECK(p.size() != 1);
        if (p.size() >= 2) {
            WSX_FUZZ_CHECK(
                proto::is_valid_wire_close_code(static_cast<std::uint16_t>(p[0] << 8 | p[1])));
            WSX_FUZZ_CHECK(reference_utf8_valid(std::span(p).subspan(2)));
        }
    }

    std::size_t next = 0;
    for (const Expected& e : expected) {
        if (!e.message) {
            WSX_FUZZ_CHECK(next < frames.size());
            const WireFrame& f = frames[next++];
            WSX_FUZZ_CHECK(f.opcode == e.opcode && f.fin == e.fin && f.payload == e.payload);
            continue;
        }
        // A message: one frame, or fragments of at most auto_fragment_size bytes (§5.4).
        const std::size_t limit = config.options.auto_fragment_size;
        Bytes got;
        for (bool first = true;; first = false) {
            WSX_FUZZ_CHECK(next < frames.size());
            const WireFrame& f = frames[next++];
            WSX_FUZZ_CHECK(f.opcode == (first ? e.opcode : Opcode::continuation));
            if (limit != 0 && !e.single_frame) WSX_FUZZ_CHECK(f.payload.size() <= limit);
            got.insert(got.end(), f.payload.begin(), f.payload.end());
            if (f.fin) break;
            WSX_FUZZ_CHECK(!e.single_frame);
        }
        WSX_FUZZ_CHECK(got == e.payload);
    }
    WSX_FUZZ_CHECK(next == frames.size());
}

template <typename Handler>
void run_connection(Role role, const std::uint8_t* data, std::size_t size) {
    InputReader reader(data, size);
    const Config config = config_from(reader);
    const std::span<const std::uint8_t> input = reader.rest();

    Connection conn(role, config.options);
    WSX_FUZZ_CHECK(conn.role() == role && conn.state() == State::open && conn.wants_read());
    Observer observer(conn, config);
    Handler handler{observer};
    Splitter reads(config.split_seed);
    Splitter writes(config.drain_seed);
    Bytes wire;

    std::size_t pos = 0;
    while (pos < input.size()) {
        const std::size_t n = reads.next(input.size() - pos);
        // Each read in its own exact-size buffer, so ASan sees any access past its end.
        Bytes chunk(input.begin() + static_cast<std::ptrdiff_t>(pos),
                    input.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
        observer.start_call();
        const proto::ReceiveResult r = conn.receive(std::span(chunk), handler);
        WSX_FUZZ_CHECK(r.consumed <= n);
        if (conn.state() != State::closed) WSX_FUZZ_CHECK(r.consumed == n);
        WSX_FUZZ_CHECK(r.error == observer.call_error());
        WSX_FUZZ_CHECK(conn.wants_read() == (conn.state() != State::closed));
        drain(conn, writes, wire, false);
    }

    // An empty read changes nothing.
    observer.start_call();
    const State before = conn.state();
    Bytes empty;
    const proto::ReceiveResult r = conn.receive(std::span(empty), handler);
    WSX_FUZZ_CHECK(r.consumed == 0 && r.error == Error::none && conn.state() == before);

    // Everything queued goes out before the transport ends (after that nothing can be written,
    // and transport_closed() drops what is still queued).
    drain(conn, writes, wire, true);

    // The transport ends: on_close now if it was not called yet, and never a second time.
    observer.set_in_transport_closed();
    conn.transport_closed(handler);
    conn.transport_closed(handler);
    WSX_FUZZ_CHECK(observer.closes() == 1);
    WSX_FUZZ_CHECK(conn.state() == State::closed && !conn.wants_read());
    // §7.1.1: the server closes TCP first; a client waits for it unless the connection failed.
    WSX_FUZZ_CHECK(conn.close_transport_now() ==
                   (role == Role::server || observer.last_close() != Error::none));

    WSX_FUZZ_CHECK(!conn.wants_write());
    check_output(decode_output(wire, role), observer.expected(), config);
}

}  // namespace

int run_connection_server(const std::uint8_t* data, std::size_t size) {
    if (size > 0 && (data[0] & 0x80) != 0) {
        run_connection<StreamingHandler>(Role::server, data, size);
    } else {
        run_connection<MessageHandler>(Role::server, data, size);
    }
    return 0;
}

int run_connection_client(const std::uint8_t* data, std::size_t size) {
    if (size > 0 && (data[0] & 0x80) != 0) {
        run_connection<StreamingHandler>(Role::client, data, size);
    } else {
        run_connection<MessageHandler>(Role::client, data, size);
    }
    return 0;
}

}  // namespace wsx::fuzz
