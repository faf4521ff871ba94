// permessage-deflate (RFC 7692): parameter negotiation for both roles, and the zlib streams that
// compress and inflate messages.
//
//   Server:  auto agreed = negotiate_deflate(handshake.request().extensions, deflate_options);
//            handshake.accept_response(agreed ? write_deflate_response(agreed->params) : "");
//            ConnectionOptions o; o.deflate = agreed;
//   Client:  client_options.extensions = write_deflate_offer(deflate_options);
//            ... after ClientHandshake::parse() says ok:
//            std::optional<DeflateConfig> agreed;
//            if (accept_deflate_response(hs.extensions(), deflate_options, agreed) != Error::none)
//                fail the handshake;
//            ConnectionOptions o; o.deflate = agreed;
//
// zlib streams are created on first use and may be released after every message when the
// negotiation resets the context anyway (DeflateTuning::release_idle_streams), so an idle
// connection holds no zlib memory.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proto/error.hpp"
#include "proto/handshake.hpp"  // ExtensionOffer

namespace wsx::proto {

inline constexpr std::string_view kPerMessageDeflate = "permessage-deflate";

// RFC 7692 §7.1.2: LZ77 window sizes are 2^8 ... 2^15 bytes.
inline constexpr std::uint8_t kMinWindowBits = 8;
inline constexpr std::uint8_t kMaxWindowBits = 15;

// A growable byte buffer for zlib output: growth neither zero-fills the spare room (zlib writes
// it next) nor copies byte by byte (as std::vector does with a custom allocator).
class ByteBuffer {
  public:
    std::uint8_t* data() noexcept { return bytes_.get(); }
    const std::uint8_t* data() const noexcept { return bytes_.get(); }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return capacity_; }
    bool empty() const noexcept { return size_ == 0; }
    void clear() noexcept { size_ = 0; }
    // Frees the storage.
    void release() noexcept {
        bytes_.reset();
        size_ = capacity_ = 0;
    }
    void reserve(std::size_t n) {
        if (n <= capacity_) return;
        auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(n);
        if (size_ > 0) std::memcpy(bigger.get(), bytes_.get(), size_);
        bytes_ = std::move(bigger);
        capacity_ = n;
    }
    // New bytes are uninitialised; growth is geometric.
    void resize(std::size_t n) {
        if (n > capacity_) reserve(std::max(n, capacity_ * 2));
        size_ = n;
    }
    void push_back(std::uint8_t b) {
        resize(size_ + 1);
        bytes_[size_ - 1] = b;
    }
    std::span<const std::uint8_t> span() const noexcept { return {bytes_.get(), size_}; }

  private:
    std::unique_ptr<std::uint8_t[]> bytes_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// Where zlib takes its memory from (all null: malloc/free). For accounting or arenas.
struct ZlibAllocator {
    void* (*allocate)(void* opaque, std::size_t bytes) = nullptr;
    void (*release)(void* opaque, void* pointer) = nullptr;
    void* opaque = nullptr;
};

// Local choices that are not negotiated.
struct DeflateTuning {
    // zlib level 1 (fastest) ... 9 (smallest).
    int compression_level = 6;
    // zlib memLevel 1 ... 9: the compressor's hash table and pending buffer take 2^(memLevel+8)
    // bytes each (memLevel 8: 64 KiB + 64 KiB ... memLevel 1: 512 B + 512 B), plus 4 bytes per
    // window byte. Capped at window bits - 5 (a larger table only slows a small window down).
    int mem_level = 8;
    // Messages shorter than this are sent uncompressed (RSV1 clear): below it the deflate block
    // overhead outweighs the gain. Connection::send(..., Compress::always) overrides it.
    std::size_t min_compress_size = 64;
    // When a direction resets its context after every message (no_context_takeover), free that
    // direction's zlib stream after each message instead of resetting it: an idle connection then
    // holds no zlib memory, at the cost of one allocation per compressed message.
    bool release_idle_streams = false;
    ZlibAllocator allocator;
};

// What this endpoint is willing to negotiate. The names are the RFC 7692 §7.1 parameters; what
// each means depends on the role:
struct DeflateOptions {
    // Server: always reset the compressor after each message, and say so (lets one compressed
    //   broadcast frame serve every connection). Client: ask the server to do that.
    bool server_no_context_takeover = false;
    // Server: require the client to reset its compressor after each message (we can then drop the
    //   inflater between messages). Client: promise to do that.
    bool client_no_context_takeover = false;
    // Server: largest window for our compressor (lowered further if the client asks).
    //   Client: ask the server to compress with at most this window (offered when < 15).
    std::uint8_t server_max_window_bits = kMaxWindowBits;
    // Server: largest window we accept for the client's compressor (bounds our inflater). An
    //   offer without client_max_window_bits cannot be limited (§7.1.2.2), so when this is < 15
    //   such an offer is declined. Client: the window we offer to compress with at most.
    std::uint8_t client_max_window_bits = kMaxWindowBits;
    // Client: offer client_max_window_bits even at 15 (without a value), so a server may still
    // ask for a smaller window. Off: an answer that limits our window fails the handshake
    // (§7.1.2.2). Ignored by a server, and when client_max_window_bits < 15 (always offered).
    bool offer_client_max_window_bits = true;
    DeflateTuning tuning;
};

// The parameters in force on a connection once negotiated.
struct DeflateParams {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    std::uint8_t server_max_window_bits = kMaxWindowBits;
    std::uint8_t client_max_window_bits = kMaxWindowBits;
    // The server answers client_max_window_bits only when the offer had it (§7.1.2.2).
    bool client_max_window_bits_offered = false;

    friend bool operator==(const DeflateParams&, const DeflateParams&) = default;
};

// What a Connection needs: the negotiated parameters and the local tuning.
struct DeflateConfig {
    DeflateParams params;
    DeflateTuning tuning;
};

// ---- Negotiation

// Server (RFC 7692 §5, §7.1): the first permessage-deflate offer, in the client's order, that
// `options` can honour. An offer with an unknown, duplicate or malformed parameter is ignored, not
// fatal. nullopt: answer without the extension.
std::optional<DeflateConfig> negotiate_deflate(std::span<const ExtensionOffer> offers,
                                               const DeflateOptions& options);

// The Sec-WebSocket-Extensions value a server answers with: exactly the parameters in force.
std::string write_deflate_response(const DeflateParams& params);

// Client: the Sec-WebSocket-Extensions value to offer (one permessage-deflate offer).
std::string write_deflate_offer(const DeflateOptions& options);

// Client: checks the server's answer (ClientHandshake::extensions()) against the offer written by
// write_deflate_offer(options). Sets `out` to nullopt when the server declined, to the parameters
// in force when it accepted. Error::http_bad_extension_response (fail the handshake, §5.1) for a
// parameter that is unknown, duplicated, malformed, out of range, larger than offered, or
// client_max_window_bits when not offered; and for a request the answer ignores.
Error accept_deflate_response(std::span<const ExtensionOffer> accepted,
                              const DeflateOptions& options, std::optional<DeflateConfig>& out);

// ---- Compression

struct ZlibStream;  // the zlib state, allocated on first use

// Compresses messages for one direction (RFC 7692 §7.2.1). Usable without a Connection: a server
// with no context takeover can compress a broadcast once (see encode_shared_frame).
class Deflater {
  public:
    // window_bits 8..15. zlib's deflate refuses 8 for raw streams, so 8 runs zlib at 9; zlib never
    // emits a distance above 2^9 - 262 = 250 there (MAX_DIST), so the output still fits the
    // 256-byte window the peer was promised.
    Deflater(std::uint8_t window_bits, bool context_takeover, const DeflateTuning& tuning);
    Deflater(Deflater&&) noexcept;
    Deflater& operator=(Deflater&&) noexcept;
    ~Deflater();

    // One whole message: the DEFLATE data without the final 00 00 FF FF (§7.2.1). The span points
    // into this Deflater's buffer, valid until the next call. Error::deflate_failed when zlib
    // cannot allocate its state.
    Error compress_message(std::span<const std::uint8_t> message,
                           std::span<const std::uint8_t>& out);

    // One fragment of a message: each fragment is flushed so the peer can inflate it at once; the
    // last one also drops the 00 00 FF FF tail and ends the message.
    Error compress_fragment(std::span<const std::uint8_t> fragment, bool last,
                            std::span<const std::uint8_t>& out);

    // Forgets the context: the next message starts with an empty window (used after a message the
    // peer received from another compressor, e.g. a shared broadcast frame).
    void reset() noexcept;

    std::uint8_t window_bits() const noexcept { return window_bits_; }
    bool context_takeover() const noexcept { return context_takeover_; }
    // True once zlib's state exists (it is allocated at the first message, not here).
    bool has_stream() const noexcept { return stream_ != nullptr; }

  private:
    Error ensure_stream();
    Error run(std::span<const std::uint8_t> in);
    void end_message() noexcept;

    std::unique_ptr<ZlibStream> stream_;
    ByteBuffer buffer_;
    DeflateTuning tuning_;
    std::uint8_t window_bits_;
    bool context_takeover_;
    bool reset_pending_ = false;
};

// Inflates messages for one direction (RFC 7692 §7.2.2), incrementally: feed compressed bytes as
// frames arrive, pull output in pieces of any size (so a size limit cuts a bomb off without
// inflating it).
class Inflater {
  public:
    enum class Status : std::uint8_t {
        need_input,   // everything fed so far is inflated; nothing is pending
        output_full,  // `out` was filled; call again for more
        error,        // the data is not valid DEFLATE (or zlib could not allocate: see error())
    };
    struct Result {
        std::size_t produced;
        Status status;
    };

    // window_bits 8..15. 8 runs zlib's inflater at 9: with 8, zlib checks distances against the
    // window plus the output of the current call, so a too-far distance is accepted or refused
    // depending on how the output happens to be chunked (and zlib's own advice for streams a
    // deflater made with "8" is to inflate them with 9).
    Inflater(std::uint8_t window_bits, bool context_takeover, const DeflateTuning& tuning);
    Inflater(Inflater&&) noexcept;
    Inflater& operator=(Inflater&&) noexcept;
    ~Inflater();

    // Compressed bytes of the current message; they must stay valid until inflate() returns
    // need_input (or error).
    void feed(std::span<const std::uint8_t> compressed) noexcept;
    // After the message's last byte: the 00 00 FF FF the sender removed (§7.2.2).
    void feed_tail() noexcept;
    // Inflates what was fed into `out`, at most out.size() bytes per call.
    Result inflate(std::span<std::uint8_t> out);
    // Once inflate() returned need_input after feed_tail(): ends the message (resets the context
    // when there is no takeover).
    void end_message() noexcept;

    // Why the last error happened: inflate_failed or deflate_failed (out of memory).
    Error error() const noexcept { return error_; }
    // True once zlib's state exists (it is allocated at the first message, not here).
    bool has_stream() const noexcept { return stream_ != nullptr; }

  private:
    Error ensure_stream();
    Error restart_keeping_window();

    std::unique_ptr<ZlibStream> stream_;
    DeflateTuning tuning_;
    const std::uint8_t* next_ = nullptr;
    std::size_t avail_ = 0;
    std::uint8_t window_bits_;
    bool context_takeover_;
    bool tail_ = false;            // the input being fed is the 00 00 FF FF tail
    bool stream_ended_ = false;    // a block with BFINAL set ended the last DEFLATE stream
    bool pending_output_ = false;  // the last call filled `out`: zlib may hold more
    Error error_ = Error::none;
};

}  // namespace wsx::proto
