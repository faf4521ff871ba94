// proto::Connection — one WebSocket endpoint (RFC 6455 after the opening handshake), either role,
// with no I/O: bytes in → events out; application sends → bytes out.
//
//   wsx::proto::Connection conn{wsx::proto::Role::server};
//   auto r = conn.receive(bytes_read, handler);   // handler.on_message / on_ping / on_close ...
//   conn.send_text("hello");
//   IoSlice iov[16]; auto n = conn.pending_output(iov);  // writev(fd, iov, n) → written
//   conn.consume_output(written);
//
// Receive path: a frame that is whole in the input, unfragmented, is unmasked in place and handed
// to the handler as a span into the caller's buffer — no copy, no allocation. Only fragmented or
// split messages go through the reassembly buffer (reused, grows geometrically).
//
// Handler (chosen at compile time; every member but one of on_message/on_data is optional):
//   void on_message(Opcode opcode, std::span<const std::uint8_t> payload);  // text or binary
//   void on_data(const DataChunk& chunk);   // streaming mode: parts of messages as they arrive
//   void on_ping(std::span<const std::uint8_t> payload);
//   void on_pong(std::span<const std::uint8_t> payload);
//   void on_close(const CloseInfo& info);   // exactly once per connection
// Spans passed to the handler are valid only during the call. The handler may call send_*,
// close() and the output functions from inside a callback.
//
// permessage-deflate (RFC 7692), when ConnectionOptions::deflate is set: messages arriving with
// RSV1 are inflated as their frames arrive (handlers see the inflated bytes; the size limit and the
// UTF-8 check apply to them), and send_* compress messages of at least min_compress_size bytes.
// Uncompressed messages still take the zero-copy path; compressed ones never do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "proto/close.hpp"
#include "proto/deflate.hpp"
#include "proto/error.hpp"
#include "proto/frame.hpp"
#include "proto/mask.hpp"
#include "proto/mask_key_source.hpp"
#include "proto/output_queue.hpp"
#include "proto/shared_buffer.hpp"
#include "proto/utf8.hpp"

namespace wsx::proto {

enum class Role : std::uint8_t { server, client };

struct ConnectionOptions {
    // Largest frame payload accepted. A header announcing more fails the connection with 1009
    // before any of the payload is buffered.
    std::uint64_t max_frame_size = 16 * 1024 * 1024;
    // Largest message (sum of its frames) accepted; 1009 as soon as a header would exceed it.
    std::uint64_t max_message_size = 16 * 1024 * 1024;
    // Answer pings with a pong carrying the same payload (RFC 6455 §5.5.2). The handler still
    // sees every ping.
    bool auto_pong = true;
    // Check that text messages and close reasons the application sends are UTF-8, refusing
    // them with Error::send_invalid_utf8 rather than putting a protocol violation on the wire.
    bool validate_outgoing_utf8 = true;
    // Split outgoing messages into frames of at most this many payload bytes (0: never).
    std::size_t auto_fragment_size = 0;
    // RSV bits an extension negotiated for this connection (0x4 = RSV1, 0x2 = RSV2, 0x1 = RSV3);
    // any other RSV bit on a received frame fails the connection with 1002 (§5.2).
    // permessage-deflate claims RSV1 by itself (see `deflate`).
    std::uint8_t extension_rsv_bits = 0;
    // permessage-deflate as negotiated in the handshake (negotiate_deflate() on a server,
    // accept_deflate_response() on a client); nullopt: not in use. Received messages count
    // against max_message_size once inflated.
    std::optional<DeflateConfig> deflate;
};

// Whether one outgoing message is compressed, when permessage-deflate is in use (without it,
// every message goes out uncompressed).
enum class Compress : std::uint8_t {
    automatic,  // when the message (for send_frame: its first fragment) has min_compress_size bytes
    always,
    never,
};

enum class State : std::uint8_t {
    open,     // messages flow both ways
    closing,  // we sent a close frame and wait for the peer's (arm a close timeout)
    closed,   // the close handshake is over or the connection failed: nothing more is read;
              // flush the pending output, then close the transport (see close_transport_now())
};

struct CloseInfo {
    // The peer's close code (1005 when its close frame had none), the code we sent when we
    // failed the connection, or 1006 when the transport ended without a close handshake.
    std::uint16_t code = close_code::kAbnormal;
    std::string_view reason;    // valid during on_close only
    bool clean = false;         // true when the close handshake completed
    Error error = Error::none;  // why we failed the connection, or abnormal_closure
};

// Streaming-mode event: a piece of a message, in order. `first` on the first piece of a message,
// `last` on its final piece (text is UTF-8 checked before `last` is delivered, but a piece may end
// inside a code point). Compressed messages arrive inflated, in pieces of at most 16 KiB; their
// last piece may be empty.
struct DataChunk {
    Opcode opcode;  // text or binary: the message's type, also for continuation frames
    std::span<const std::uint8_t> data;
    bool first;
    bool last;
};

struct ReceiveResult {
    std::size_t consumed;  // bytes of the input processed (all of it, unless the connection closed)
    Error error;           // why the connection failed during this call, or none
};

namespace detail {
template <typename H>
concept StreamingHandler = requires(H& h, const DataChunk& c) {
    h.on_data(c);
};
template <typename H>
concept MessageHandler = requires(H& h, std::span<const std::uint8_t> p) {
    h.on_message(Opcode::text, p);
};
}  // namespace detail

// Encodes one server-to-client frame (unmasked) into a shareable buffer: encode a broadcast once,
// then send_shared() it on any number of server connections.
SharedBuffer encode_shared_frame(Opcode opcode, std::span<const std::uint8_t> payload,
                                 bool fin = true, bool rsv1 = false);

// The same, compressed once by `deflater` (RSV1 set, RFC 7692 §7.2.1) and starting from an empty
// window, so any server connection with permessage-deflate can send_shared() it, provided its
// negotiated server_max_window_bits is at least deflater.window_bits(). Empty when zlib cannot
// allocate its state.
SharedBuffer encode_shared_frame(Opcode opcode, std::span<const std::uint8_t> payload,
                                 Deflater& deflater);

class Connection {
  public:
    // A connection in the open state: the opening handshake is done (proto/handshake.hpp).
    // Keeps its own copy of `options` (on the heap: see the next constructor).
    explicit Connection(Role role, const ConnectionOptions& options = {});
    // The same without a copy: `*options` must outlive the connection (a server's one
    // ConnectionOptions serves all its connections, so an idle connection does not carry its own
    // ~100 bytes of them). `deflate` is what this connection's handshake negotiated; it replaces
    // options->deflate, which is ignored (deflate_params() reports what is in force).
    Connection(Role role, const ConnectionOptions* options, std::optional<DeflateConfig> deflate);

    // Consumes `in`: parses every frame in it (frames may be split anywhere across calls),
    // unmasks payloads in place, and calls the handler. Stops early only when the connection
    // closes (bytes after a close frame are ignored).
    template <typename Handler>
    ReceiveResult receive(std::span<std::uint8_t> in, Handler& handler);

    // The transport ended (EOF, reset, close timeout). Reports 1006 to the handler unless on_close
    // was already delivered, so on_close is always called exactly once.
    template <typename Handler>
    void transport_closed(Handler& handler);

    // ---- Sending. Each returns Error::none or why nothing was queued.
    Error send_text(std::string_view text, Compress compress = Compress::automatic);
    Error send_binary(std::span<const std::uint8_t> data, Compress compress = Compress::automatic);
    Error send(Opcode opcode, std::span<const std::uint8_t> payload,
               Compress compress = Compress::automatic);
    // Like send(), but a server references `payload` instead of copying it: `keep_alive` owns the
    // bytes, or (when empty) the caller keeps them alive until they are consumed from the output.
    // A client must mask, and a compressed message is new bytes, so those copy anyway.
    Error send_reference(Opcode opcode, std::span<const std::uint8_t> payload,
                         SharedBuffer keep_alive = {}, Compress compress = Compress::automatic);
    // Queues a frame made by encode_shared_frame() (server role only). A compressed one needs
    // permessage-deflate; with context takeover our compressor then restarts from an empty window,
    // since the peer's window now holds a message our compressor never saw.
    Error send_shared(const SharedBuffer& frame);
    // One frame of a fragmented message: opcode text/binary starts it, continuation goes on;
    // fin = true ends it. Control frames may be sent between fragments. Whether the message is
    // compressed is decided on its first frame (`compress` is ignored on continuations); each
    // compressed fragment is flushed, so the peer can inflate it at once.
    Error send_frame(Opcode opcode, std::span<const std::uint8_t> payload, bool fin,
                     Compress compress = Compress::automatic);
    // Control frames (RFC 6455 §5.5.2, §5.5.3): at most 125 bytes of payload; a pong nobody
    // asked for is a one-way heartbeat.
    Error ping(std::span<const std::uint8_t> payload = {});
    Error pong(std::span<const std::uint8_t> payload = {});
    // Starts the close handshake. code 0 sends a close frame with no payload.
    Error close(std::uint16_t code = close_code::kNormal, std::string_view reason = {});

    // ---- Output for the I/O layer.
    std::size_t pending_output(std::span<IoSlice> out) const noexcept { return out_.gather(out); }
    // Drops the first `n` queued bytes once the transport took them (n <= buffered_amount()).
    void consume_output(std::size_t n) noexcept { out_.consume(n); }
    // Bytes queued and not yet consumed: what backpressure watermarks compare against.
    std::size_t buffered_amount() const noexcept { return out_.size(); }
    bool wants_write() const noexcept { return !out_.empty(); }

    // ---- State for the I/O layer.
    State state() const noexcept { return state_; }
    Role role() const noexcept { return role_; }
    // False once nothing more will be parsed (a close frame arrived, or the connection failed).
    bool wants_read() const noexcept { return rx_ != RxState::closed; }
    // Once state() is closed and the output is flushed: true when this side should close the
    // transport now. RFC 6455 §7.1.1: the server closes TCP first; after a clean close a client
    // waits for the server's FIN (with a timeout) instead. A failed connection closes at once.
    bool close_transport_now() const noexcept {
        return state_ == State::closed && (role_ == Role::server || failed_);
    }
    // The options the connection was made with (for the borrowing constructor: options->deflate
    // is not necessarily what is in force; see deflate_params()).
    const ConnectionOptions& options() const noexcept { return *options_; }
    // The permessage-deflate parameters in force, or nullptr (e.g. to group connections that can
    // share one compressed broadcast frame).
    const DeflateParams* deflate_params() const noexcept {
        return deflate_ ? &deflate_->config.params : nullptr;
    }

  private:
    enum class RxState : std::uint8_t { header, payload, closed };

    struct Event {
        enum class Kind : std::uint8_t { need_more, progress, message, chunk, ping, pong, close };
        Kind kind = Kind::need_more;
        Opcode opcode = Opcode::binary;
        bool first = false;
        bool last = false;
        std::span<const std::uint8_t> payload;
        CloseInfo close;
    };

    // The whole-frame fast path: a complete, unfragmented text/binary frame with a 7- or 16-bit
    // length at in[pos], masked when kMasked (we are the server), of at most `limit` payload
    // bytes. On success sets opcode/payload (unmasked in place) and advances pos. Static, with the
    // limit passed in: unmasking stores bytes, which the compiler must assume alias any member,
    // so members would be reloaded after every frame.
    enum class WholeFrame : std::uint8_t {
        none,        // no whole fast-path frame at pos
        taken,       // a frame (text still to be UTF-8 checked)
        ascii_text,  // a text frame whose payload is all ASCII, hence valid UTF-8
    };
    template <bool kMasked>
    static WholeFrame take_whole_frame(std::span<std::uint8_t> in, std::size_t& pos,
                                       std::uint64_t limit, Opcode& opcode,
                                       std::span<const std::uint8_t>& payload) noexcept;
    // Delivers whole frames from in[pos] on until one is not (advancing pos); false when a text
    // frame was not UTF-8 (pos is then past it). One instance per role, so the masking is known
    // at compile time.
    template <bool kMasked, typename Handler>
    bool deliver_whole_frames(std::span<std::uint8_t> in, std::size_t& pos, Handler& handler);
    // Everything else: split headers and payloads, fragments, control frames, errors.
    Event step(std::span<std::uint8_t> in, std::size_t& pos, bool streaming);
    Event begin_frame(const FrameHeader& h);
    Event take_payload(std::span<std::uint8_t> in, std::size_t& pos, bool streaming);
    Event control_frame(std::span<const std::uint8_t> payload);
    Event inflate_step(bool streaming);
    Event fail(Error e);
    Event abnormal_close();

    template <typename Handler>
    void dispatch(const Event& ev, Handler& handler);

    Error check_can_send(Opcode opcode, std::size_t payload_size) const noexcept;
    void write_frame(Opcode opcode, std::span<const std::uint8_t> payload, bool fin, bool rsv1);
    void write_message(Opcode opcode, std::span<const std::uint8_t> payload, bool compressed);
    bool should_compress(Compress compress, std::size_t size) const noexcept;
    void write_close_frame(std::uint16_t code, std::string_view reason);

    void start_deflate(std::optional<DeflateConfig> deflate);

    const ConnectionOptions* options_ = nullptr;              // owned_options_, or borrowed
    std::unique_ptr<const ConnectionOptions> owned_options_;  // null when borrowed
    std::uint64_t fast_path_limit_;  // min(max_frame_size, max_message_size)
    Role role_;
    State state_ = State::open;
    RxState rx_ = RxState::header;
    bool failed_ = false;
    bool close_reported_ = false;

    // Frame being received (rx_ == payload).
    FrameHeader frame_{};
    std::uint64_t frame_received_ = 0;  // payload bytes of frame_ seen so far (mask offset)
    std::uint8_t header_have_ = 0;      // bytes of a split header held in header_buf_
    std::uint8_t control_have_ = 0;     // bytes of a split control payload in control_buf_

    // Message being received (a fragmented one, or one whose frame arrived split).
    bool message_open_ = false;
    bool message_first_chunk_ = false;  // streaming: next chunk is the message's first
    Opcode message_opcode_ = Opcode::binary;
    std::uint64_t message_size_ = 0;
    Utf8Validator utf8_;
    std::vector<std::uint8_t> message_buf_;

    // permessage-deflate, receive side.
    bool message_compressed_ = false;  // the open message arrived with RSV1
    bool inflating_ = false;           // the inflater holds input it has not finished with
    bool inflate_tail_fed_ = false;
    std::uint64_t inflated_size_ = 0;
    std::uint64_t compressed_message_limit_ = 0;

    // Send side.
    bool send_message_open_ = false;
    bool send_compressed_ = false;  // the fragmented message being sent is compressed
    Opcode send_message_opcode_ = Opcode::binary;
    OutputQueue out_;
    // RFC 6455 §5.3: only a client masks, so a server connection carries no key pool.
    std::unique_ptr<MaskKeySource> mask_keys_;

    struct DeflateStreams {
        DeflateConfig config;                   // as negotiated
        Deflater deflater;                      // our direction
        Inflater inflater;                      // the peer's direction
        std::unique_ptr<std::uint8_t[]> chunk;  // streaming-mode output, made on first use
        ByteBuffer message;                     // a compressed message, inflated
    };
    std::unique_ptr<DeflateStreams> deflate_;  // only when permessage-deflate is in use

    std::uint8_t header_buf_[kMaxFrameHeaderSize];
    std::uint8_t control_buf_[kMaxControlPayload];
};

// ---- Inline hot path.

template <bool kMasked>
inline Connection::WholeFrame Connection::take_whole_frame(
    std::span<std::uint8_t> in, std::size_t& pos, std::uint64_t limit, Opcode& opcode,
    std::span<const std::uint8_t>& payload) noexcept {
    std::uint8_t* p = in.data() + pos;
    const std::size_t avail = in.size() - pos;
    if (avail < 2) return WholeFrame::none;
    // FIN set, RSV clear, opcode text (0x81) or binary (0x82); below 0x81 the subtraction wraps.
    const unsigned b0 = p[0];
    if (b0 - 0x81U > 1U) return WholeFrame::none;
    // Masked exactly when we are the server (§5.1): flipping the expected mask bit leaves the
    // 7-bit length, or a value above 127 when the bit was wrong.
    std::size_t length = p[1] ^ (kMasked ? 0x80U : 0U);
    std::size_t header = 2;
    if (length > 125) {
        // 127 is a 64-bit length: big frames, whose per-frame cost does not matter.
        if (length != 126 || avail < 4) return WholeFrame::none;
        length = (std::size_t{p[2]} << 8) | p[3];
        header = 4;
    }
    constexpr std::size_t kKeySize = kMasked ? 4 : 0;
    if (avail < header + kKeySize + length || length > limit) return WholeFrame::none;
    std::uint8_t* data = p + header + kKeySize;
    const bool text = b0 == 0x81;
    bool ascii = false;
    if constexpr (kMasked) {
        MaskKey key;
        std::memcpy(key.data(), p + header, key.size());
        // Text learns whether it is ASCII in the unmasking pass; binary needs no answer.
        if (text) {
            ascii = unmask_is_ascii({data, length}, key);
        } else if (length < 32) {
            detail::unmask_is_ascii_short(data, length, key);
        } else {
            apply_mask({data, length}, key);
        }
    }
    opcode = text ? Opcode::text : Opcode::binary;
    payload = {data, length};
    pos += header + kKeySize + length;
    return ascii ? WholeFrame::ascii_text : WholeFrame::taken;
}

template <bool kMasked, typename Handler>
bool Connection::deliver_whole_frames(std::span<std::uint8_t> in, std::size_t& pos,
                                      Handler& handler) {
    // `at` is a local the callees cannot see, so it stays in a register.
    const std::uint64_t limit = fast_path_limit_;
    std::size_t at = pos;
    Opcode opcode;
    std::span<const std::uint8_t> payload;
    bool valid = true;
    WholeFrame taken;
    // Only a handler that ends the connection (transport_closed) changes rx_.
    while (rx_ != RxState::closed && (taken = take_whole_frame<kMasked>(
                                          in, at, limit, opcode, payload)) != WholeFrame::none) {
        if (taken == WholeFrame::taken && opcode == Opcode::text && !is_valid_utf8(payload)) {
            valid = false;
            break;
        }
        handler.on_message(opcode, payload);
    }
    pos = at;
    return valid;
}

template <typename Handler>
ReceiveResult Connection::receive(std::span<std::uint8_t> in, Handler& handler) {
    constexpr bool streaming = detail::StreamingHandler<Handler>;
    static_assert(streaming || detail::MessageHandler<Handler>,
                  "a Connection handler needs on_message(Opcode, span) or on_data(DataChunk)");
    // An empty read has nothing to parse (and its data() may be null, which memcpy may not see).
    if (in.empty()) return {0, Error::none};
    std::size_t pos = 0;
    Error error = Error::none;
    while (rx_ != RxState::closed) {
        if constexpr (!streaming) {
            // Nothing half-received: try the zero-copy path for a whole unfragmented frame.
            if (rx_ == RxState::header && header_have_ == 0 && !message_open_) {
                // A run of whole frames changes no receive state, so the state above is checked
                // once per run.
                const bool valid = role_ == Role::server
                                       ? deliver_whole_frames<true>(in, pos, handler)
                                       : deliver_whole_frames<false>(in, pos, handler);
                if (!valid) {
                    const Event ev = fail(Error::invalid_utf8);
                    error = ev.close.error;
                    dispatch(ev, handler);
                    break;
                }
                if (pos == in.size() || rx_ == RxState::closed) break;
            }
        }
        const Event ev = step(in, pos, streaming);
        if (ev.kind == Event::Kind::need_more) break;
        if (ev.kind == Event::Kind::close) error = ev.close.error;
        dispatch(ev, handler);
    }
    // After a close frame the rest of the input is ignored (§5.5.1: no data after close).
    if (rx_ == RxState::closed) pos = in.size();
    return {pos, error};
}

template <typename Handler>
void Connection::transport_closed(Handler& handler) {
    if (close_reported_) return;
    dispatch(abnormal_close(), handler);
}

template <typename Handler>
void Connection::dispatch(const Event& ev, Handler& handler) {
    switch (ev.kind) {
        case Event::Kind::need_more:
        case Event::Kind::progress:
            return;
        case Event::Kind::message:
            if constexpr (detail::MessageHandler<Handler>)
                handler.on_message(ev.opcode, ev.payload);
            return;
        case Event::Kind::chunk:
            if constexpr (detail::StreamingHandler<Handler>) {
                handler.on_data(DataChunk{ev.opcode, ev.payload, ev.first, ev.last});
            }
            return;
        case Event::Kind::ping:
            if constexpr (requires { handler.on_ping(ev.payload); }) handler.on_ping(ev.payload);
            return;
        case Event::Kind::pong:
            if constexpr (requires { handler.on_pong(ev.payload); }) handler.on_pong(ev.payload);
            return;
        case Event::Kind::close:
            if constexpr (requires { handler.on_close(ev.close); }) handler.on_close(ev.close);
            return;
    }
}

}  // namespace wsx::proto
