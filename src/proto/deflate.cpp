#include "proto/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>
#include <utility>

namespace wsx::proto {

// ---------------------------------------------------------------------------------------------
// Negotiation

namespace {

constexpr std::string_view kServerNoContextTakeover = "server_no_context_takeover";
constexpr std::string_view kClientNoContextTakeover = "client_no_context_takeover";
constexpr std::string_view kServerMaxWindowBits = "server_max_window_bits";
constexpr std::string_view kClientMaxWindowBits = "client_max_window_bits";

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

// §7.1.2.1: a decimal integer 8..15 without leading zeroes.
std::optional<std::uint8_t> parse_window_bits(std::string_view v) noexcept {
    if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return static_cast<std::uint8_t>(v[0] - '0');
    if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') {
        return static_cast<std::uint8_t>(10 + (v[1] - '0'));
    }
    return std::nullopt;
}

enum class Side : std::uint8_t { offer, response };

struct WireParams {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    std::optional<std::uint8_t> server_max_window_bits;
    bool client_max_window_bits = false;  // present, with or without a value
    std::optional<std::uint8_t> client_max_window_bits_value;
};

// The parameters of one permessage-deflate element; nullopt for an unknown, duplicated (§7: "MUST
// NOT include more than one") or malformed parameter.
std::optional<WireParams> parse_params(const ExtensionOffer& element, Side side) {
    WireParams p;
    bool seen_server_window = false;
    for (const ExtensionParam& param : element.params) {
        const std::string_view name = param.name;
        if (iequals(name, kServerNoContextTakeover) || iequals(name, kClientNoContextTakeover)) {
            bool& flag = iequals(name, kServerNoContextTakeover) ? p.server_no_context_takeover
                                                                 : p.client_no_context_takeover;
            if (flag || param.value) return std::nullopt;  // §7.1.1: these have no value
            flag = true;
        } else if (iequals(name, kServerMaxWindowBits)) {
            if (seen_server_window || !param.value) return std::nullopt;
            seen_server_window = true;
            p.server_max_window_bits = parse_window_bits(*param.value);
            if (!p.server_max_window_bits) return std::nullopt;
        } else if (iequals(name, kClientMaxWindowBits)) {
            if (p.client_max_window_bits) return std::nullopt;
            p.client_max_window_bits = true;
            // §7.1.2.2: optional in an offer; a server that includes it gives a value.
            if (param.value) {
                p.client_max_window_bits_value = parse_window_bits(*param.value);
                if (!p.client_max_window_bits_value) return std::nullopt;
            } else if (side == Side::response) {
                return std::nullopt;
            }
        } else {
            return std::nullopt;  // §7: an unknown parameter declines the offer
        }
    }
    return p;
}

std::uint8_t clamp_window_bits(std::uint8_t bits) noexcept {
    return std::clamp(bits, kMinWindowBits, kMaxWindowBits);
}

// One offer against the server's options, or nullopt when the server cannot honour it.
std::optional<DeflateParams> accept_offer(const WireParams& offer, const DeflateOptions& options) {
    DeflateParams p;
    // §7.1.1.1: a requested server_no_context_takeover must be accepted; a server may also
    // impose it on itself.
    p.server_no_context_takeover =
        offer.server_no_context_takeover || options.server_no_context_takeover;
    // §7.1.1.2: the client's hint holds either way; the server may require it too.
    p.client_no_context_takeover =
        offer.client_no_context_takeover || options.client_no_context_takeover;
    // §7.1.2.1: the server's window may be smaller than asked, never larger.
    p.server_max_window_bits = clamp_window_bits(options.server_max_window_bits);
    if (offer.server_max_window_bits) {
        p.server_max_window_bits =
            std::min(p.server_max_window_bits, *offer.server_max_window_bits);
    }
    // §7.1.2.2: the client's window can be limited only when the offer says the client can do it.
    const std::uint8_t client_limit = clamp_window_bits(options.client_max_window_bits);
    p.client_max_window_bits_offered = offer.client_max_window_bits;
    if (offer.client_max_window_bits) {
        p.client_max_window_bits =
            std::min(client_limit, offer.client_max_window_bits_value.value_or(kMaxWindowBits));
    } else if (client_limit < kMaxWindowBits) {
        return std::nullopt;
    }
    return p;
}

void append_param(std::string& out, std::string_view name) {
    out.append("; ").append(name);
}

void append_param(std::string& out, std::string_view name, std::uint8_t value) {
    out.append("; ").append(name).append("=").append(std::to_string(value));
}

}  // namespace

std::optional<DeflateConfig> negotiate_deflate(std::span<const ExtensionOffer> offers,
                                               const DeflateOptions& options) {
    for (const ExtensionOffer& offer : offers) {
        if (!iequals(offer.name, kPerMessageDeflate)) continue;
        const std::optional<WireParams> wire = parse_params(offer, Side::offer);
        if (!wire) continue;  // §5.1 lets a server decline a malformed offer and try the next
        if (std::optional<DeflateParams> p = accept_offer(*wire, options)) {
            return DeflateConfig{*p, options.tuning};
        }
    }
    return std::nullopt;
}

std::string write_deflate_response(const DeflateParams& p) {
    std::string out(kPerMessageDeflate);
    if (p.server_no_context_takeover) append_param(out, kServerNoContextTakeover);
    if (p.client_no_context_takeover) append_param(out, kClientNoContextTakeover);
    if (p.server_max_window_bits < kMaxWindowBits) {
        append_param(out, kServerMaxWindowBits, p.server_max_window_bits);
    }
    if (p.client_max_window_bits_offered && p.client_max_window_bits < kMaxWindowBits) {
        append_param(out, kClientMaxWindowBits, p.client_max_window_bits);
    }
    return out;
}

std::string write_deflate_offer(const DeflateOptions& options) {
    std::string out(kPerMessageDeflate);
    if (options.server_no_context_takeover) append_param(out, kServerNoContextTakeover);
    if (options.client_no_context_takeover) append_param(out, kClientNoContextTakeover);
    const std::uint8_t server_bits = clamp_window_bits(options.server_max_window_bits);
    if (server_bits < kMaxWindowBits) append_param(out, kServerMaxWindowBits, server_bits);
    const std::uint8_t client_bits = clamp_window_bits(options.client_max_window_bits);
    if (client_bits < kMaxWindowBits) {
        append_param(out, kClientMaxWindowBits, client_bits);
    } else if (options.offer_client_max_window_bits) {
        append_param(out, kClientMaxWindowBits);
    }
    return out;
}

Error accept_deflate_response(std::span<const ExtensionOffer> accepted,
                              const DeflateOptions& options, std::optional<DeflateConfig>& out) {
    out.reset();
    const ExtensionOffer* answer = nullptr;
    for (const ExtensionOffer& e : accepted) {
        if (!iequals(e.name, kPerMessageDeflate)) continue;
        // One offer was made, so at most one can be accepted.
        if (answer) return Error::http_bad_extension_response;
        answer = &e;
    }
    if (!answer) return Error::none;

    const std::optional<WireParams> wire = parse_params(*answer, Side::response);
    if (!wire) return Error::http_bad_extension_response;
    const std::uint8_t offered_server_bits = clamp_window_bits(options.server_max_window_bits);
    const std::uint8_t offered_client_bits = clamp_window_bits(options.client_max_window_bits);
    // §7.1.1.1: a server accepts server_no_context_takeover by including it.
    if (options.server_no_context_takeover && !wire->server_no_context_takeover) {
        return Error::http_bad_extension_response;
    }
    // §7.1.2.1: ... and server_max_window_bits by answering the same or a smaller value. Unasked,
    // a server may still announce the window it limits itself to.
    if (offered_server_bits < kMaxWindowBits &&
        (!wire->server_max_window_bits || *wire->server_max_window_bits > offered_server_bits)) {
        return Error::http_bad_extension_response;
    }
    // §7.1.2.2: client_max_window_bits only when offered, never above the offered value.
    const bool offered_client_window =
        options.offer_client_max_window_bits || offered_client_bits < kMaxWindowBits;
    if (wire->client_max_window_bits &&
        (!offered_client_window || *wire->client_max_window_bits_value > offered_client_bits)) {
        return Error::http_bad_extension_response;
    }

    DeflateParams p;
    p.server_no_context_takeover = wire->server_no_context_takeover;
    p.client_no_context_takeover =
        wire->client_no_context_takeover || options.client_no_context_takeover;
    p.server_max_window_bits = wire->server_max_window_bits.value_or(kMaxWindowBits);
    p.client_max_window_bits = wire->client_max_window_bits_value.value_or(offered_client_bits);
    p.client_max_window_bits_offered = offered_client_window;
    out = DeflateConfig{p, options.tuning};
    return Error::none;
}

// ---------------------------------------------------------------------------------------------
// zlib streams

struct ZlibStream {
    z_stream z{};
    ZlibAllocator allocator;
    bool is_deflate = false;
    bool initialised = false;

    ZlibStream() = default;
    ZlibStream(const ZlibStream&) = delete;
    ZlibStream& operator=(const ZlibStream&) = delete;
    ~ZlibStream() {
        if (!initialised) return;
        if (is_deflate) {
            deflateEnd(&z);
        } else {
            inflateEnd(&z);
        }
    }
};

namespace {

// The 4 bytes a sender strips from the end of a message (RFC 7692 §7.2.1) and a receiver puts
// back (§7.2.2): LEN and NLEN of the empty stored block a sync flush ends with.
constexpr std::uint8_t kTail[4] = {0x00, 0x00, 0xFF, 0xFF};

// zlib's counters are unsigned int; feed it at most this much per call.
constexpr std::size_t kMaxZlibChunk = std::size_t{1} << 30;

// Keep a compressor's output buffer across messages only up to this size.
constexpr std::size_t kRetainedBufferCapacity = 64 * 1024;

voidpf zlib_alloc(voidpf opaque, uInt items, uInt size) {
    const auto* a = static_cast<const ZlibAllocator*>(opaque);
    const std::size_t bytes = std::size_t{items} * size;
    return a->allocate(a->opaque, bytes);
}

void zlib_free(voidpf opaque, voidpf pointer) {
    const auto* a = static_cast<const ZlibAllocator*>(opaque);
    a->release(a->opaque, pointer);
}

void install_allocator(ZlibStream& s, const ZlibAllocator& allocator) {
    s.allocator = allocator;
    if (allocator.allocate && allocator.release) {
        s.z.zalloc = zlib_alloc;
        s.z.zfree = zlib_free;
        s.z.opaque = &s.allocator;
    }
}

// zlib runs at 9 for a negotiated 8 (see the class comments in deflate.hpp).
int zlib_window_bits(std::uint8_t bits) noexcept {
    return std::max<int>(clamp_window_bits(bits), 9);
}

}  // namespace

Deflater::Deflater(std::uint8_t window_bits, bool context_takeover, const DeflateTuning& tuning)
    : tuning_(tuning),
      window_bits_(clamp_window_bits(window_bits)),
      context_takeover_(context_takeover) {}

Deflater::Deflater(Deflater&&) noexcept = default;
Deflater& Deflater::operator=(Deflater&&) noexcept = default;
Deflater::~Deflater() = default;

Error Deflater::ensure_stream() {
    if (stream_) {
        if (reset_pending_ && deflateReset(&stream_->z) != Z_OK) return Error::deflate_failed;
        reset_pending_ = false;
        return Error::none;
    }
    reset_pending_ = false;
    auto s = std::make_unique<ZlibStream>();
    install_allocator(*s, tuning_.allocator);
    s->is_deflate = true;
    const int level = std::clamp(tuning_.compression_level, 0, 9);
    // A hash table larger than the window buys nothing and costs time: zlib rescans all of it
    // each time the window slides, which a small window does every few hundred bytes.
    const int mem_level = std::clamp(tuning_.mem_level, 1, zlib_window_bits(window_bits_) - 5);
    // Negative window bits: raw DEFLATE, no zlib header or checksum (§7.2.1).
    if (deflateInit2(&s->z, level, Z_DEFLATED, -zlib_window_bits(window_bits_), mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        return Error::deflate_failed;
    }
    s->initialised = true;
    stream_ = std::move(s);
    return Error::none;
}

Error Deflater::run(std::span<const std::uint8_t> in) {
    z_stream& z = stream_->z;
    std::size_t used = buffer_.size();
    std::size_t room =
        deflateBound(&z, static_cast<uLong>(std::min(in.size(), kMaxZlibChunk))) + 16;
    do {
        const std::size_t n = std::min(in.size(), kMaxZlibChunk);
        z.next_in = const_cast<Bytef*>(in.data());
        z.avail_in = static_cast<uInt>(n);
        in = in.subspan(n);
        // §7.2.1: a sync flush ends the data on a byte boundary with 00 00 FF FF. zlib may need
        // more than one call to finish the flush when the output space runs out.
        for (;;) {
            if (buffer_.size() - used < 64) buffer_.resize(used + std::max(room, buffer_.size()));
            const std::size_t space = std::min(buffer_.size() - used, kMaxZlibChunk);
            z.next_out = buffer_.data() + used;
            z.avail_out = static_cast<uInt>(space);
            const int r = deflate(&z, Z_SYNC_FLUSH);
            used += space - z.avail_out;
            if (r != Z_OK && r != Z_BUF_ERROR) {
                buffer_.resize(used);
                return Error::deflate_failed;
            }
            if (z.avail_out != 0 && z.avail_in == 0) break;
            room = std::max<std::size_t>(room, 4096);
        }
    } while (!in.empty());
    buffer_.resize(used);
    return Error::none;
}

void Deflater::end_message() noexcept {
    if (context_takeover_) return;
    // §7.1.1: without context takeover every message starts from an empty window.
    if (tuning_.release_idle_streams) {
        stream_.reset();
        reset_pending_ = false;
    } else {
        reset_pending_ = true;
    }
}

void Deflater::reset() noexcept {
    if (stream_) reset_pending_ = true;
}

Error Deflater::compress_message(std::span<const std::uint8_t> message,
                                 std::span<const std::uint8_t>& out) {
    return compress_fragment(message, true, out);
}

Error Deflater::compress_fragment(std::span<const std::uint8_t> fragment, bool last,
                                  std::span<const std::uint8_t>& out) {
    if (buffer_.capacity() > kRetainedBufferCapacity) buffer_.release();
    buffer_.clear();
    out = {};
    if (fragment.empty()) {
        // A flush with no new input makes zlib report Z_BUF_ERROR and write nothing; what the
        // peer needs is known anyway: an empty stored block, minus the tail it appends itself
        // (§7.2.3.6: an empty message is the single byte 0x00).
        if (last) {
            buffer_.push_back(0x00);
            end_message();
        }
        out = {buffer_.data(), buffer_.size()};
        return Error::none;
    }
    if (const Error e = ensure_stream(); e != Error::none) return e;
    if (const Error e = run(fragment); e != Error::none) return e;
    if (last) {
        if (buffer_.size() < 4 || std::memcmp(buffer_.data() + buffer_.size() - 4, kTail, 4) != 0) {
            return Error::deflate_failed;
        }
        buffer_.resize(buffer_.size() - 4);
        end_message();
    }
    out = {buffer_.data(), buffer_.size()};
    return Error::none;
}

// ---- Inflater

Inflater::Inflater(std::uint8_t window_bits, bool context_takeover, const DeflateTuning& tuning)
    : tuning_(tuning),
      window_bits_(clamp_window_bits(window_bits)),
      context_takeover_(context_takeover) {}

Inflater::Inflater(Inflater&&) noexcept = default;
Inflater& Inflater::operator=(Inflater&&) noexcept = default;
Inflater::~Inflater() = default;

Error Inflater::ensure_stream() {
    if (stream_) return Error::none;
    auto s = std::make_unique<ZlibStream>();
    install_allocator(*s, tuning_.allocator);
    if (inflateInit2(&s->z, -zlib_window_bits(window_bits_)) != Z_OK) return Error::deflate_failed;
    s->initialised = true;
    stream_ = std::move(s);
    return Error::none;
}

void Inflater::feed(std::span<const std::uint8_t> compressed) noexcept {
    next_ = compressed.data();
    avail_ = compressed.size();
    tail_ = false;
}

void Inflater::feed_tail() noexcept {
    next_ = kTail;
    avail_ = sizeof kTail;
    tail_ = true;
}

Error Inflater::restart_keeping_window() {
    ByteBuffer window;
    window.resize(std::size_t{1} << zlib_window_bits(window_bits_));
    uInt size = 0;
    z_stream& z = stream_->z;
    if (inflateGetDictionary(&z, window.data(), &size) != Z_OK || inflateReset(&z) != Z_OK ||
        (size > 0 && inflateSetDictionary(&z, window.data(), size) != Z_OK)) {
        stream_.reset();
        return Error::inflate_failed;
    }
    return Error::none;
}

Inflater::Result Inflater::inflate(std::span<std::uint8_t> out) {
    if (stream_ended_ && avail_ != 0) {
        // After a block with BFINAL set (§7.2.3.4) the tail put back by the receiver belongs to
        // no block: drop it. Anything else the sender put there is read as more DEFLATE data with
        // the same window, as a decoder that does not stop at BFINAL would.
        if (tail_) {
            avail_ = 0;
            return {0, Status::need_input};
        }
        stream_ended_ = false;
    }
    if (avail_ == 0 && !pending_output_) return {0, Status::need_input};
    if (const Error e = ensure_stream(); e != Error::none) {
        error_ = e;
        return {0, Status::error};
    }
    z_stream& z = stream_->z;
    std::size_t produced = 0;
    for (;;) {
        const std::size_t in_chunk = std::min(avail_, kMaxZlibChunk);
        const std::size_t out_chunk = std::min(out.size() - produced, kMaxZlibChunk);
        z.next_in = const_cast<Bytef*>(next_);
        z.avail_in = static_cast<uInt>(in_chunk);
        z.next_out = out.data() + produced;
        z.avail_out = static_cast<uInt>(out_chunk);
        const int r = ::inflate(&z, Z_SYNC_FLUSH);
        const std::size_t consumed = in_chunk - z.avail_in;
        next_ += consumed;
        avail_ -= consumed;
        produced += out_chunk - z.avail_out;
        switch (r) {
            case Z_OK:
            case Z_BUF_ERROR:  // no progress possible: input used up (or no room, handled below)
                break;
            case Z_STREAM_END:
                // zlib ends the stream here; the message (and with takeover the next ones) may
                // go on referring to what came before, so restart with the window kept.
                stream_ended_ = true;
                pending_output_ = false;
                if (const Error e = restart_keeping_window(); e != Error::none) {
                    error_ = e;
                    return {produced, Status::error};
                }
                if (avail_ != 0 && !tail_) {
                    stream_ended_ = false;
                    if (produced == out.size()) {
                        pending_output_ = true;
                        return {produced, Status::output_full};
                    }
                    continue;
                }
                avail_ = 0;
                return {produced, Status::need_input};
            case Z_MEM_ERROR:
                error_ = Error::deflate_failed;
                return {produced, Status::error};
            default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
                error_ = Error::inflate_failed;
                return {produced, Status::error};
        }
        if (produced == out.size()) {
            // Output may still be pending inside zlib even with no input left.
            pending_output_ = true;
            return {produced, Status::output_full};
        }
        pending_output_ = false;
        if (avail_ == 0) return {produced, Status::need_input};
    }
}

void Inflater::end_message() noexcept {
    tail_ = false;
    avail_ = 0;
    pending_output_ = false;
    stream_ended_ = false;
    if (!stream_ || context_takeover_) return;
    // §7.1.1: the peer starts every message from an empty window.
    if (tuning_.release_idle_streams || inflateReset(&stream_->z) != Z_OK) stream_.reset();
}

}  // namespace wsx::proto
