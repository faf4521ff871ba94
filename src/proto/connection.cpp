#include "proto/connection.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

namespace wsx::proto {

namespace {

constexpr std::size_t kRetainedMessageCapacity = 64 * 1024;

// permessage-deflate: streaming handlers get inflated pieces of at most this size; a reassembled
// message starts with this much room and grows geometrically.
constexpr std::size_t kInflateChunk = 16 * 1024;
constexpr std::size_t kMinInflateRoom = 4 * 1024;

constexpr std::uint8_t kRsv1 = 0x4;

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

constexpr bool is_data_opcode(Opcode op) noexcept {
    return op == Opcode::text || op == Opcode::binary;
}

std::size_t write_header_into(std::uint8_t* out, Opcode opcode, std::size_t length, bool fin,
                              bool rsv1, const MaskKey* key) noexcept {
    FrameHeader h;
    h.fin = fin;
    h.rsv1 = rsv1;
    h.opcode = opcode;
    h.payload_length = length;
    h.masked = key != nullptr;
    if (key) h.mask_key = *key;
    return write_frame_header(
        std::span<std::uint8_t, kMaxFrameHeaderSize>(out, kMaxFrameHeaderSize), h);
}

}  // namespace

SharedBuffer encode_shared_frame(Opcode opcode, std::span<const std::uint8_t> payload, bool fin,
                                 bool rsv1) {
    const std::size_t header = frame_header_size(payload.size(), false);
    return SharedBuffer::create(header + payload.size(), [&](std::span<std::uint8_t> out) {
        std::uint8_t tmp[kMaxFrameHeaderSize];
        write_header_into(tmp, opcode, payload.size(), fin, rsv1, nullptr);
        std::memcpy(out.data(), tmp, header);
        if (!payload.empty()) std::memcpy(out.data() + header, payload.data(), payload.size());
    });
}

SharedBuffer encode_shared_frame(Opcode opcode, std::span<const std::uint8_t> payload,
                                 Deflater& deflater) {
    // Every receiver must be able to inflate it whatever it received before: no shared history.
    deflater.reset();
    std::span<const std::uint8_t> compressed;
    if (deflater.compress_message(payload, compressed) != Error::none) return {};
    deflater.reset();
    return encode_shared_frame(opcode, compressed, true, true);
}

Connection::Connection(Role role, const ConnectionOptions& options)
    : owned_options_(std::make_unique<const ConnectionOptions>(options)),
      fast_path_limit_(std::min(options.max_frame_size, options.max_message_size)),
      role_(role) {
    options_ = owned_options_.get();
    if (role == Role::client) mask_keys_ = std::make_unique<MaskKeySource>();
    start_deflate(options.deflate);
}

Connection::Connection(Role role, const ConnectionOptions* options,
                       std::optional<DeflateConfig> deflate)
    : options_(options),
      fast_path_limit_(std::min(options->max_frame_size, options->max_message_size)),
      role_(role) {
    if (role == Role::client) mask_keys_ = std::make_unique<MaskKeySource>();
    start_deflate(std::move(deflate));
}

void Connection::start_deflate(std::optional<DeflateConfig> deflate) {
    if (!deflate) return;
    const DeflateParams& p = deflate->params;
    const DeflateTuning& tuning = deflate->tuning;
    const bool server = role_ == Role::server;
    // RFC 7692 §7.1: the server_* parameters govern what the server compresses, client_* what
    // the client compresses.
    deflate_ = std::make_unique<DeflateStreams>(DeflateStreams{
        *deflate,
        Deflater(server ? p.server_max_window_bits : p.client_max_window_bits,
                 !(server ? p.server_no_context_takeover : p.client_no_context_takeover), tuning),
        Inflater(server ? p.client_max_window_bits : p.server_max_window_bits,
                 !(server ? p.client_no_context_takeover : p.server_no_context_takeover), tuning),
        nullptr, ByteBuffer()});
    // Incompressible data grows a little when deflated (stored blocks: 5 bytes per 64 KiB), so
    // a message whose inflated size is within the limit may arrive slightly larger.
    const std::uint64_t max = options_->max_message_size;
    compressed_message_limit_ = saturating_add(max, max / 1024 + 1024);
}

// ---- Receiving.

Connection::Event Connection::step(std::span<std::uint8_t> in, std::size_t& pos, bool streaming) {
    if (inflating_) return inflate_step(streaming);
    if (rx_ == RxState::payload) return take_payload(in, pos, streaming);

    FrameHeader h;
    if (header_have_ == 0) {
        const auto r = parse_frame_header(in.subspan(pos), h);
        if (r.status == ParseStatus::error) return fail(r.error);
        if (r.status == ParseStatus::need_more) {
            // A header split across reads: keep its first bytes (fewer than 14) for next time.
            const std::size_t rest = in.size() - pos;
            std::memcpy(header_buf_, in.data() + pos, rest);
            header_have_ = static_cast<std::uint8_t>(rest);
            pos = in.size();
            return {};
        }
        pos += h.header_length;
    } else {
        const std::size_t take = std::min(kMaxFrameHeaderSize - header_have_, in.size() - pos);
        std::memcpy(header_buf_ + header_have_, in.data() + pos, take);
        const auto r = parse_frame_header({header_buf_, header_have_ + take}, h);
        if (r.status == ParseStatus::error) return fail(r.error);
        if (r.status == ParseStatus::need_more) {
            header_have_ = static_cast<std::uint8_t>(header_have_ + take);
            pos += take;
            return {};
        }
        pos += h.header_length - header_have_;
        header_have_ = 0;
    }

    Event ev = begin_frame(h);
    if (ev.kind != Event::Kind::progress) return ev;
    return take_payload(in, pos, streaming);
}

Connection::Event Connection::begin_frame(const FrameHeader& h) {
    const std::uint8_t rsv = static_cast<std::uint8_t>((h.rsv1 << 2) | (h.rsv2 << 1) | h.rsv3);
    // Extensions may claim RSV bits on data frames only (RFC 7692 §6: never on control frames).
    std::uint8_t allowed = is_control(h.opcode) ? 0 : options_->extension_rsv_bits;
    if (deflate_ && !is_control(h.opcode)) {
        // RFC 7692 §6.1: RSV1 marks a compressed message on its first frame, and only there.
        allowed = h.opcode == Opcode::continuation ? static_cast<std::uint8_t>(allowed & ~kRsv1)
                                                   : static_cast<std::uint8_t>(allowed | kRsv1);
    }
    if ((rsv & ~allowed) != 0) return fail(Error::reserved_bits_set);
    // §5.1: clients mask every frame, servers none.
    if (role_ == Role::server && !h.masked) return fail(Error::unmasked_client_frame);
    if (role_ == Role::client && h.masked) return fail(Error::masked_server_frame);
    if (h.payload_length > options_->max_frame_size) return fail(Error::frame_too_big);

    if (!is_control(h.opcode)) {
        // §5.4: a message is one start frame (text/binary) and continuations up to FIN.
        if (h.opcode == Opcode::continuation) {
            if (!message_open_) return fail(Error::unexpected_continuation);
        } else {
            if (message_open_) return fail(Error::expected_continuation);
            message_open_ = true;
            message_first_chunk_ = true;
            message_opcode_ = h.opcode;
            message_size_ = 0;
            message_buf_.clear();
            // A connection that once reassembled a big message should not keep that memory for
            // the rest of its life: start small again (growth is geometric, so this is cheap).
            if (message_buf_.capacity() > kRetainedMessageCapacity) {
                std::vector<std::uint8_t>().swap(message_buf_);
            }
            utf8_.reset();
            message_compressed_ = h.rsv1 && deflate_;
            if (message_compressed_) {
                inflated_size_ = 0;
                inflate_tail_fed_ = false;
                ByteBuffer& inflated = deflate_->message;
                inflated.clear();
                if (inflated.capacity() > kRetainedMessageCapacity) inflated.release();
            }
        }
        // A compressed message is held to the limit once inflated too (inflate_step).
        const std::uint64_t limit =
            message_compressed_ ? compressed_message_limit_ : options_->max_message_size;
        if (h.payload_length > limit - message_size_) return fail(Error::message_too_big);
        message_size_ += h.payload_length;
    }

    frame_ = h;
    frame_received_ = 0;
    control_have_ = 0;
    rx_ = RxState::payload;
    Event ev;
    ev.kind = Event::Kind::progress;
    return ev;
}

Connection::Event Connection::take_payload(std::span<std::uint8_t> in, std::size_t& pos,
                                           bool streaming) {
    const std::uint64_t remaining = frame_.payload_length - frame_received_;
    const std::size_t avail =
        static_cast<std::size_t>(std::min<std::uint64_t>(remaining, in.size() - pos));
    std::uint8_t* data = in.data() + pos;
    if (frame_.masked && avail > 0) apply_mask({data, avail}, frame_.mask_key, frame_received_);
    const bool whole_frame_here = frame_received_ == 0 && avail == frame_.payload_length;
    pos += avail;
    frame_received_ += avail;
    const bool frame_done = frame_received_ == frame_.payload_length;

    if (is_control(frame_.opcode)) {
        if (whole_frame_here) {
            rx_ = RxState::header;
            return control_frame({data, avail});
        }
        std::memcpy(control_buf_ + control_have_, data, avail);
        control_have_ = static_cast<std::uint8_t>(control_have_ + avail);
        if (!frame_done) return {};
        rx_ = RxState::header;
        return control_frame({control_buf_, control_have_});
    }

    if (message_compressed_) {
        // The inflater reads the payload where it lies; inflate_step drains it before step()
        // returns for more input, so the pointer never outlives `in`.
        if (frame_done) rx_ = RxState::header;
        deflate_->inflater.feed({data, avail});
        inflating_ = true;
        return inflate_step(streaming);
    }

    // Text is checked as it arrives, so an impossible byte fails the connection at once, not
    // when the message ends (Autobahn 6.4.x).
    if (message_opcode_ == Opcode::text && avail > 0 &&
        utf8_.feed({data, avail}) == Utf8Status::invalid) {
        return fail(Error::invalid_utf8);
    }
    const bool message_done = frame_done && frame_.fin;
    if (frame_done) rx_ = RxState::header;
    if (message_done) {
        message_open_ = false;
        if (message_opcode_ == Opcode::text && utf8_.status() != Utf8Status::complete) {
            return fail(Error::invalid_utf8);  // message ends inside a code point
        }
    }

    Event ev;
    ev.opcode = message_opcode_;
    if (streaming) {
        if (avail == 0 && !frame_done) return {};
        ev.kind = Event::Kind::chunk;
        ev.payload = {data, avail};
        ev.first = message_first_chunk_;
        ev.last = message_done;
        message_first_chunk_ = false;
        return ev;
    }
    if (message_done && whole_frame_here && message_buf_.empty() && message_size_ == avail) {
        // The whole message is this one frame, all in the caller's buffer: deliver in place.
        ev.kind = Event::Kind::message;
        ev.payload = {data, avail};
        return ev;
    }
    // Grow with the bytes that arrived, not with the length a header announced: a peer that
    // announces 16 MiB and sends one byte must not make us allocate 16 MiB.
    if (avail > 0) message_buf_.insert(message_buf_.end(), data, data + avail);
    if (!message_done) {
        ev.kind = frame_done ? Event::Kind::progress : Event::Kind::need_more;
        return ev;
    }
    ev.kind = Event::Kind::message;
    ev.payload = {message_buf_.data(), message_buf_.size()};
    return ev;
}

Connection::Event Connection::inflate_step(bool streaming) {
    Inflater& inflater = deflate_->inflater;
    const bool frame_done = frame_received_ == frame_.payload_length;
    const bool message_end = frame_done && frame_.fin;
    for (;;) {
        // Room for at most one byte past the limit: that byte proves the message too big, so a
        // compression bomb is cut off there instead of being inflated (1009).
        const std::uint64_t allowance = options_->max_message_size - inflated_size_;
        const std::uint64_t room_cap = saturating_add(allowance, 1);
        std::span<std::uint8_t> out;
        std::size_t base = 0;
        if (streaming) {
            if (!deflate_->chunk)
                deflate_->chunk = std::make_unique_for_overwrite<std::uint8_t[]>(kInflateChunk);
            out = {deflate_->chunk.get(),
                   static_cast<std::size_t>(std::min<std::uint64_t>(kInflateChunk, room_cap))};
        } else {
            ByteBuffer& inflated = deflate_->message;
            base = inflated.size();
            if (inflated.capacity() - base < kMinInflateRoom) {
                const std::uint64_t grow = std::min<std::uint64_t>(
                    std::max<std::uint64_t>({kMinInflateRoom, base, message_size_ * 2}), room_cap);
                inflated.reserve(base + static_cast<std::size_t>(grow));
            }
            const std::size_t room = static_cast<std::size_t>(
                std::min<std::uint64_t>(inflated.capacity() - base, room_cap));
            inflated.resize(base + room);
            out = {inflated.data() + base, room};
        }
        const Inflater::Result r = inflater.inflate(out);
        if (!streaming) deflate_->message.resize(base + r.produced);
        if (r.status == Inflater::Status::error) return fail(inflater.error());
        if (r.produced > allowance) return fail(Error::message_too_big);
        inflated_size_ += r.produced;
        const std::span<const std::uint8_t> produced = out.first(r.produced);
        // UTF-8 is a property of the inflated text, checked as it comes out (fail fast).
        if (message_opcode_ == Opcode::text && !produced.empty() &&
            utf8_.feed(produced) == Utf8Status::invalid) {
            return fail(Error::invalid_utf8);
        }

        bool done = false;
        if (r.status == Inflater::Status::need_input) {
            if (!message_end) {
                inflating_ = false;
            } else if (!inflate_tail_fed_ && message_size_ != 0) {
                // §7.2.2: put back the 00 00 FF FF the sender removed. (A compressed message with
                // no payload at all is taken as empty: the tail alone is no DEFLATE data.)
                inflater.feed_tail();
                inflate_tail_fed_ = true;
                if (!streaming || produced.empty()) continue;
            } else {
                done = true;
            }
        }
        if (done) {
            inflating_ = false;
            message_open_ = false;
            inflater.end_message();
            if (message_opcode_ == Opcode::text && utf8_.status() != Utf8Status::complete) {
                return fail(Error::invalid_utf8);  // message ends inside a code point
            }
        }

        Event ev;
        ev.opcode = message_opcode_;
        if (streaming) {
            if (produced.empty() && !done) {
                if (inflating_) continue;
                ev.kind = frame_done ? Event::Kind::progress : Event::Kind::need_more;
                return ev;
            }
            ev.kind = Event::Kind::chunk;
            ev.payload = produced;
            ev.first = message_first_chunk_;
            ev.last = done;
            message_first_chunk_ = false;
            return ev;
        }
        if (done) {
            ev.kind = Event::Kind::message;
            ev.payload = deflate_->message.span();
            return ev;
        }
        if (!inflating_) {
            ev.kind = frame_done ? Event::Kind::progress : Event::Kind::need_more;
            return ev;
        }
    }
}

Connection::Event Connection::control_frame(std::span<const std::uint8_t> payload) {
    Event ev;
    ev.payload = payload;
    switch (frame_.opcode) {
        case Opcode::ping:
            // §5.5.2: answer with a pong of the same payload, unless we already sent a close.
            if (options_->auto_pong && state_ == State::open) {
                write_frame(Opcode::pong, payload, true, false);
            }
            ev.kind = Event::Kind::ping;
            return ev;
        case Opcode::pong:
            ev.kind = Event::Kind::pong;
            return ev;
        case Opcode::close:
            break;
        default:
            return fail(Error::reserved_opcode);  // unreachable: the parser rejects these
    }

    ClosePayload cp;
    if (const Error e = parse_close_payload(payload, cp); e != Error::none) return fail(e);
    // §5.5.1: echo the close (same code) unless we started the handshake ourselves.
    if (state_ == State::open) write_close_frame(cp.has_code ? cp.code : 0, {});
    state_ = State::closed;
    rx_ = RxState::closed;
    close_reported_ = true;
    ev.kind = Event::Kind::close;
    ev.close = CloseInfo{cp.code, cp.reason, true, Error::none};
    return ev;
}

Connection::Event Connection::fail(Error e) {
    const std::uint16_t code = close_code_for(e);
    // §7.1.7: fail the connection — send a close if we have not already, then stop reading.
    if (state_ == State::open) write_close_frame(code, describe(e));
    state_ = State::closed;
    rx_ = RxState::closed;
    failed_ = true;
    close_reported_ = true;
    Event ev;
    ev.kind = Event::Kind::close;
    ev.close = CloseInfo{code, describe(e), false, e};
    return ev;
}

Connection::Event Connection::abnormal_close() {
    out_.clear();  // the transport is gone: nothing queued can be written any more
    state_ = State::closed;
    rx_ = RxState::closed;
    failed_ = true;
    close_reported_ = true;
    Event ev;
    ev.kind = Event::Kind::close;
    ev.close = CloseInfo{close_code::kAbnormal, describe(Error::abnormal_closure), false,
                         Error::abnormal_closure};
    return ev;
}

// ---- Sending.

Error Connection::check_can_send(Opcode opcode, std::size_t payload_size) const noexcept {
    if (state_ != State::open) return Error::not_open;
    if (is_control(opcode)) {
        // §5.2: 0xB-0xF are reserved control opcodes; a peer must fail on them.
        if (opcode != Opcode::ping && opcode != Opcode::pong && opcode != Opcode::close) {
            return Error::reserved_opcode;
        }
        return payload_size > kMaxControlPayload ? Error::send_control_too_long : Error::none;
    }
    if (opcode == Opcode::continuation) {
        return send_message_open_ ? Error::none : Error::send_no_message_open;
    }
    if (!is_data_opcode(opcode)) return Error::reserved_opcode;
    return send_message_open_ ? Error::send_message_open : Error::none;
}

void Connection::write_frame(Opcode opcode, std::span<const std::uint8_t> payload, bool fin,
                             bool rsv1) {
    const bool masked = role_ == Role::client;
    const std::size_t header = frame_header_size(payload.size(), masked);
    // Header and payload go into the queue together: one contiguous slice for writev.
    std::uint8_t* out = out_.append_uninitialized(header + payload.size());
    if (masked) {
        const MaskKey key = mask_keys_->next();
        write_header_into(out, opcode, payload.size(), fin, rsv1, &key);
        copy_masked(out + header, payload.data(), payload.size(), key);
    } else {
        write_header_into(out, opcode, payload.size(), fin, rsv1, nullptr);
        if (!payload.empty()) std::memcpy(out + header, payload.data(), payload.size());
    }
}

void Connection::write_message(Opcode opcode, std::span<const std::uint8_t> payload,
                               bool compressed) {
    const std::size_t limit = options_->auto_fragment_size;
    if (limit == 0 || payload.size() <= limit) {
        write_frame(opcode, payload, true, compressed);
        return;
    }
    Opcode op = opcode;
    while (!payload.empty()) {
        const std::size_t n = std::min(limit, payload.size());
        // RFC 7692 §6.1: RSV1 on the first frame of a compressed message only.
        write_frame(op, payload.first(n), n == payload.size(), compressed && op == opcode);
        payload = payload.subspan(n);
        op = Opcode::continuation;
    }
}

bool Connection::should_compress(Compress compress, std::size_t size) const noexcept {
    if (!deflate_ || compress == Compress::never) return false;
    return compress == Compress::always || size >= deflate_->config.tuning.min_compress_size;
}

void Connection::write_close_frame(std::uint16_t code, std::string_view reason) {
    if (code == 0) {
        write_frame(Opcode::close, {}, true, false);
        return;
    }
    std::uint8_t payload[kMaxControlPayload];
    const std::size_t n = write_close_payload(std::span<std::uint8_t, 125>(payload), code, reason);
    write_frame(Opcode::close, {payload, n}, true, false);
}

Error Connection::send(Opcode opcode, std::span<const std::uint8_t> payload, Compress compress) {
    if (state_ != State::open) return Error::not_open;
    switch (opcode) {
        case Opcode::ping:
        case Opcode::pong:
        case Opcode::close:
            return Error::send_not_a_message;  // control frames: ping(), pong(), close()
        case Opcode::continuation:
            return Error::send_no_message_open;  // fragments go through send_frame()
        default:
            break;
    }
    if (const Error e = check_can_send(opcode, payload.size()); e != Error::none) return e;
    if (opcode == Opcode::text && options_->validate_outgoing_utf8 && !is_valid_utf8(payload)) {
        return Error::send_invalid_utf8;
    }
    if (should_compress(compress, payload.size())) {
        std::span<const std::uint8_t> compressed;
        if (const Error e = deflate_->deflater.compress_message(payload, compressed);
            e != Error::none) {
            return e;
        }
        write_message(opcode, compressed, true);
        return Error::none;
    }
    write_message(opcode, payload, false);
    return Error::none;
}

Error Connection::send_text(std::string_view text, Compress compress) {
    return send(Opcode::text, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()},
                compress);
}

Error Connection::send_binary(std::span<const std::uint8_t> data, Compress compress) {
    return send(Opcode::binary, data, compress);
}

Error Connection::send_reference(Opcode opcode, std::span<const std::uint8_t> payload,
                                 SharedBuffer keep_alive, Compress compress) {
    if (role_ == Role::client || options_->auto_fragment_size != 0 ||
        should_compress(compress, payload.size())) {
        return send(opcode, payload, compress);
    }
    if (is_control(opcode) || opcode == Opcode::continuation) return send(opcode, payload);
    if (const Error e = check_can_send(opcode, payload.size()); e != Error::none) return e;
    if (opcode == Opcode::text && options_->validate_outgoing_utf8 && !is_valid_utf8(payload)) {
        return Error::send_invalid_utf8;
    }
    std::uint8_t* out = out_.append_uninitialized(frame_header_size(payload.size(), false));
    write_header_into(out, opcode, payload.size(), true, false, nullptr);
    out_.append_reference(payload, std::move(keep_alive));
    return Error::none;
}

Error Connection::send_shared(const SharedBuffer& frame) {
    if (role_ == Role::client) return Error::shared_frame_client;
    if (state_ != State::open) return Error::not_open;
    if (send_message_open_) return Error::send_message_open;
    const bool compressed = frame.size() > 0 && (frame.data()[0] & 0x40) != 0;
    if (compressed) {
        if (!deflate_) return Error::shared_frame_compressed;
        // The peer's window now holds a message our compressor never saw: back-references
        // from our next message would be off by it, so start that one from an empty window.
        deflate_->deflater.reset();
    }
    out_.append_reference(frame.bytes(), frame);
    return Error::none;
}

Error Connection::send_frame(Opcode opcode, std::span<const std::uint8_t> payload, bool fin,
                             Compress compress) {
    if (const Error e = check_can_send(opcode, payload.size()); e != Error::none) return e;
    if (is_control(opcode)) {
        if (!fin) return Error::control_frame_fragmented;  // §5.5: never fragmented
        if (opcode == Opcode::close) return Error::send_invalid_close_code;  // use close()
        write_frame(opcode, payload, fin, false);
        return Error::none;
    }
    const bool starts = opcode != Opcode::continuation;
    const bool compressed = starts ? should_compress(compress, payload.size()) : send_compressed_;
    std::span<const std::uint8_t> data = payload;
    if (compressed) {
        if (const Error e = deflate_->deflater.compress_fragment(payload, fin, data);
            e != Error::none) {
            return e;
        }
    }
    // A fragment may end inside a code point, so only whole-message validity could be checked;
    // fragments are the application's responsibility.
    if (starts) send_message_opcode_ = opcode;
    send_message_open_ = !fin;
    send_compressed_ = compressed;
    write_frame(opcode, data, fin, compressed && starts);
    return Error::none;
}

Error Connection::ping(std::span<const std::uint8_t> payload) {
    if (const Error e = check_can_send(Opcode::ping, payload.size()); e != Error::none) return e;
    write_frame(Opcode::ping, payload, true, false);
    return Error::none;
}

Error Connection::pong(std::span<const std::uint8_t> payload) {
    if (const Error e = check_can_send(Opcode::pong, payload.size()); e != Error::none) return e;
    write_frame(Opcode::pong, payload, true, false);
    return Error::none;
}

Error Connection::close(std::uint16_t code, std::string_view reason) {
    if (state_ != State::open) return Error::not_open;
    if (code == 0 && !reason.empty()) return Error::send_invalid_close_code;
    if (code != 0 && !is_sendable_close_code(code)) return Error::send_invalid_close_code;
    if (reason.size() > kMaxCloseReason) return Error::send_control_too_long;
    if (!is_valid_utf8({reinterpret_cast<const std::uint8_t*>(reason.data()), reason.size()})) {
        return Error::send_invalid_utf8;
    }
    write_close_frame(code, reason);
    state_ = State::closing;
    return Error::none;
}

}  // namespace wsx::proto
