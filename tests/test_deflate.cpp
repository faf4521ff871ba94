// permessage-deflate (RFC 7692): negotiation in both roles, the Deflater and Inflater against the
// RFC's byte examples and against zlib used directly as an independent peer, window sizes 8-15,
// the window-8 quirks, final blocks with context takeover, and zlib memory through the allocator
// hooks.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "proto/deflate.hpp"
#include "proto/handshake.hpp"

using namespace wsx::proto;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytes_of(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

std::span<const std::uint8_t> as_span(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::vector<ExtensionOffer> offers(std::string_view header) {
    std::vector<ExtensionOffer> out;
    REQUIRE(parse_extension_list(header, out));
    return out;
}

// The Sec-WebSocket-Extensions answer for `header`, or "" when no offer is accepted.
std::string answer(std::string_view header, const DeflateOptions& options = {}) {
    const std::optional<DeflateConfig> c = negotiate_deflate(offers(header), options);
    return c ? write_deflate_response(c->params) : std::string();
}

Error client_accepts(std::string_view response, const DeflateOptions& options,
                     std::optional<DeflateConfig>& out) {
    return accept_deflate_response(offers(response), options, out);
}

// Text that compresses like real traffic: JSON-ish records with repeats at varied distances.
Bytes sample_text(std::size_t n, std::uint32_t seed = 1) {
    static constexpr std::string_view kWords[] = {"{\"id\":",
                                                  "\"name\":\"",
                                                  "alpha",
                                                  "beta",
                                                  "gamma",
                                                  "\"},",
                                                  "\"value\":",
                                                  "delta",
                                                  "epsilon",
                                                  "[1,2,3]",
                                                  "true",
                                                  "null",
                                                  "\"tags\":[\"x\",\"y\"]",
                                                  "zeta"};
    std::mt19937 rng(seed);
    Bytes out;
    out.reserve(n);
    while (out.size() < n) {
        std::string_view w = kWords[rng() % std::size(kWords)];
        if (rng() % 5 == 0) {
            const std::string num = std::to_string(rng() % 100000);
            out.insert(out.end(), num.begin(), num.end());
        }
        out.insert(out.end(), w.begin(), w.end());
    }
    out.resize(n);
    return out;
}

Bytes random_bytes(std::size_t n, std::uint32_t seed = 7) {
    std::mt19937 rng(seed);
    Bytes out(n);
    for (auto& b : out)
        b = static_cast<std::uint8_t>(rng());
    return out;
}

Bytes compress(Deflater& d, std::span<const std::uint8_t> message) {
    std::span<const std::uint8_t> out;
    REQUIRE(d.compress_message(message, out) == Error::none);
    return Bytes(out.begin(), out.end());
}

// Inflates one message with an Inflater, feeding the compressed bytes in chunks of `in_chunk`
// and pulling output in pieces of `out_chunk`.
std::optional<Bytes> inflate_message(Inflater& inf, std::span<const std::uint8_t> data,
                                     std::size_t in_chunk = SIZE_MAX,
                                     std::size_t out_chunk = 4096) {
    Bytes out;
    Bytes piece(out_chunk);
    const auto drain = [&]() -> bool {
        for (;;) {
            const Inflater::Result r = inf.inflate(piece);
            out.insert(out.end(), piece.begin(), piece.begin() + static_cast<long>(r.produced));
            if (r.status == Inflater::Status::error) return false;
            if (r.status == Inflater::Status::need_input) return true;
        }
    };
    std::size_t at = 0;
    do {
        const std::size_t n = std::min(in_chunk, data.size() - at);
        inf.feed(data.subspan(at, n));
        if (!drain()) return std::nullopt;
        at += n;
    } while (at < data.size());
    inf.feed_tail();
    if (!drain()) return std::nullopt;
    inf.end_message();
    return out;
}

// zlib used directly, as the peer: a raw inflater with exactly `bits` of window, pulling output
// one byte at a time so every distance is checked against the window alone.
std::optional<Bytes> zlib_strict_inflate(int bits, std::span<const std::uint8_t> data) {
    z_stream z{};
    REQUIRE(inflateInit2(&z, -bits) == Z_OK);
    Bytes in(data.begin(), data.end());
    in.insert(in.end(), {0x00, 0x00, 0xFF, 0xFF});
    z.next_in = in.data();
    z.avail_in = static_cast<uInt>(in.size());
    Bytes out;
    int r = Z_OK;
    while (r == Z_OK) {
        std::uint8_t b;
        z.next_out = &b;
        z.avail_out = 1;
        r = inflate(&z, Z_SYNC_FLUSH);
        if (z.avail_out == 0) out.push_back(b);
        if (r == Z_BUF_ERROR && z.avail_in == 0) break;
    }
    inflateEnd(&z);
    if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END) return std::nullopt;
    return out;
}

// Raw DEFLATE of `data` by zlib at `bits`, sync-flushed, tail removed (what a peer sends).
Bytes zlib_deflate(int bits, std::span<const std::uint8_t> data) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -bits, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&z, static_cast<uLong>(data.size())) + 64);
    z.next_in = const_cast<Bytef*>(data.data());
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
    out.resize(out.size() - z.avail_out - 4);
    deflateEnd(&z);
    return out;
}

// Counts zlib's memory through the allocator hooks.
struct ZlibMeter {
    std::map<void*, std::size_t> live;
    std::size_t bytes = 0;
    std::size_t peak = 0;
    std::size_t allocations = 0;

    static void* allocate(void* opaque, std::size_t n) {
        auto* m = static_cast<ZlibMeter*>(opaque);
        void* p = std::malloc(n);
        m->live[p] = n;
        m->bytes += n;
        m->peak = std::max(m->peak, m->bytes);
        ++m->allocations;
        return p;
    }
    static void release(void* opaque, void* p) {
        auto* m = static_cast<ZlibMeter*>(opaque);
        m->bytes -= m->live.at(p);
        m->live.erase(p);
        std::free(p);
    }
    ZlibAllocator hooks() { return {&ZlibMeter::allocate, &ZlibMeter::release, this}; }
};

}  // namespace

// ======================= Server negotiation =======================

TEST_CASE("a plain offer is accepted and answered with the bare extension name") {
    CHECK(answer("permessage-deflate") == "permessage-deflate");
    const auto c = negotiate_deflate(offers("permessage-deflate"), {});
    REQUIRE(c);
    CHECK(c->params == DeflateParams{});
}

TEST_CASE("no permessage-deflate offer, no answer") {
    CHECK(answer("") == "");
    CHECK(answer("x-webkit-deflate-frame, foo; bar=1") == "");
}

TEST_CASE("server_no_context_takeover requested is accepted and echoed (§7.1.1.1)") {
    CHECK(answer("permessage-deflate; server_no_context_takeover") ==
          "permessage-deflate; server_no_context_takeover");
    const auto c = negotiate_deflate(offers("permessage-deflate; server_no_context_takeover"), {});
    REQUIRE(c);
    CHECK(c->params.server_no_context_takeover);
}

TEST_CASE("client_no_context_takeover offered is in force and answered (§7.1.1.2)") {
    CHECK(answer("permessage-deflate; client_no_context_takeover") ==
          "permessage-deflate; client_no_context_takeover");
}

TEST_CASE("a server may impose either no_context_takeover on its own") {
    DeflateOptions o;
    o.server_no_context_takeover = true;
    o.client_no_context_takeover = true;
    CHECK(answer("permessage-deflate", o) ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
}

TEST_CASE("server_max_window_bits 8-15 is honoured with the same value (§7.1.2.1)") {
    for (int bits = 8; bits <= 15; ++bits) {
        CAPTURE(bits);
        const std::string offer =
            "permessage-deflate; server_max_window_bits=" + std::to_string(bits);
        const auto c = negotiate_deflate(offers(offer), {});
        REQUIRE(c);
        CHECK(c->params.server_max_window_bits == bits);
        CHECK(answer(offer) == (bits < 15 ? offer : std::string("permessage-deflate")));
    }
}

TEST_CASE("the server's own window limit lowers what it answers") {
    DeflateOptions o;
    o.server_max_window_bits = 10;
    CHECK(answer("permessage-deflate", o) == "permessage-deflate; server_max_window_bits=10");
    CHECK(answer("permessage-deflate; server_max_window_bits=12", o) ==
          "permessage-deflate; server_max_window_bits=10");
    CHECK(answer("permessage-deflate; server_max_window_bits=9", o) ==
          "permessage-deflate; server_max_window_bits=9");
}

TEST_CASE("client_max_window_bits without a value lets the server choose (§7.1.2.2)") {
    CHECK(answer("permessage-deflate; client_max_window_bits") == "permessage-deflate");
    DeflateOptions o;
    o.client_max_window_bits = 9;
    CHECK(answer("permessage-deflate; client_max_window_bits", o) ==
          "permessage-deflate; client_max_window_bits=9");
    const auto c = negotiate_deflate(offers("permessage-deflate; client_max_window_bits"), o);
    REQUIRE(c);
    CHECK(c->params.client_max_window_bits == 9);
}

TEST_CASE("client_max_window_bits with a value is answered with at most that value") {
    for (int bits = 8; bits <= 15; ++bits) {
        CAPTURE(bits);
        const std::string v = std::to_string(bits);
        const auto c =
            negotiate_deflate(offers("permessage-deflate; client_max_window_bits=" + v), {});
        REQUIRE(c);
        CHECK(c->params.client_max_window_bits == bits);
        DeflateOptions o;
        o.client_max_window_bits = 11;
        CHECK(answer("permessage-deflate; client_max_window_bits=" + v, o) ==
              "permessage-deflate; client_max_window_bits=" + std::to_string(std::min(bits, 11)));
    }
}

TEST_CASE("an offer the server cannot limit is declined when it needs a smaller client window") {
    DeflateOptions o;
    o.client_max_window_bits = 10;
    // Without client_max_window_bits the answer may not carry it (§7.1.2.2): decline.
    CHECK(answer("permessage-deflate", o) == "");
    // ... and take the next offer that allows it.
    CHECK(answer("permessage-deflate, permessage-deflate; client_max_window_bits", o) ==
          "permessage-deflate; client_max_window_bits=10");
}

TEST_CASE("offers with malformed, unknown or duplicate parameters are ignored, not fatal") {
    const char* invalid[] = {
        "permessage-deflate; foo",
        "permessage-deflate; foo=1",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=true",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=1a",
        "permessage-deflate; server_max_window_bits=-9",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=9; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=\"16\"",
    };
    for (const char* offer : invalid) {
        CAPTURE(offer);
        CHECK(answer(offer) == "");
        // The next offer in the same header is still considered.
        CHECK(answer(std::string(offer) + ", permessage-deflate; server_no_context_takeover") ==
              "permessage-deflate; server_no_context_takeover");
    }
}

TEST_CASE("quoted parameter values count as their unquoted token (RFC 6455 §9.1)") {
    CHECK(answer("permessage-deflate; server_max_window_bits=\"10\"") ==
          "permessage-deflate; server_max_window_bits=10");
    CHECK(answer("permessage-deflate; client_max_window_bits=\"9\"") ==
          "permessage-deflate; client_max_window_bits=9");
}

TEST_CASE("the first acceptable offer wins, across several offers and several headers") {
    // Autobahn 13.7: (no takeover, 8), (no takeover), plain.
    CHECK(answer("permessage-deflate; client_no_context_takeover; client_max_window_bits; "
                 "server_no_context_takeover; server_max_window_bits=8, "
                 "permessage-deflate; server_no_context_takeover, permessage-deflate") ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
          "server_max_window_bits=8");

    const HttpHeader headers[] = {
        {"Sec-WebSocket-Extensions", "foo, permessage-deflate; bogus"},
        {"Host", "x"},
        {"sec-websocket-extensions", "permessage-deflate; server_max_window_bits=11"},
    };
    std::vector<ExtensionOffer> list;
    REQUIRE(parse_extensions(headers, list));
    const auto c = negotiate_deflate(list, {});
    REQUIRE(c);
    CHECK(write_deflate_response(c->params) == "permessage-deflate; server_max_window_bits=11");
}

TEST_CASE("the negotiated configuration carries the server's tuning") {
    DeflateOptions o;
    o.tuning.compression_level = 1;
    o.tuning.min_compress_size = 7;
    const auto c = negotiate_deflate(offers("permessage-deflate"), o);
    REQUIRE(c);
    CHECK(c->tuning.compression_level == 1);
    CHECK(c->tuning.min_compress_size == 7);
}

// ======================= Client negotiation =======================

TEST_CASE("the client offer says what the options ask for") {
    CHECK(write_deflate_offer({}) == "permessage-deflate; client_max_window_bits");
    DeflateOptions o;
    o.server_no_context_takeover = true;
    o.client_no_context_takeover = true;
    o.server_max_window_bits = 10;
    o.client_max_window_bits = 12;
    CHECK(write_deflate_offer(o) ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
          "server_max_window_bits=10; client_max_window_bits=12");
    // What we offer, a server of ours accepts as is.
    const auto c = negotiate_deflate(offers(write_deflate_offer(o)), {});
    REQUIRE(c);
    CHECK(c->params.server_max_window_bits == 10);
    CHECK(c->params.client_max_window_bits == 12);
}

TEST_CASE("the client configures itself from a valid answer") {
    std::optional<DeflateConfig> c;
    CHECK(client_accepts("", {}, c) == Error::none);
    CHECK_FALSE(c);  // declined: no compression, the handshake goes on

    CHECK(client_accepts("permessage-deflate", {}, c) == Error::none);
    REQUIRE(c);
    CHECK(c->params.server_max_window_bits == 15);
    CHECK(c->params.client_max_window_bits == 15);
    CHECK_FALSE(c->params.server_no_context_takeover);
    CHECK_FALSE(c->params.client_no_context_takeover);

    CHECK(client_accepts("permessage-deflate; server_no_context_takeover; "
                         "client_no_context_takeover; server_max_window_bits=9; "
                         "client_max_window_bits=8",
                         {}, c) == Error::none);
    REQUIRE(c);
    CHECK(c->params.server_no_context_takeover);  // a server may decide that unasked
    CHECK(c->params.client_no_context_takeover);
    CHECK(c->params.server_max_window_bits == 9);  // unasked is fine too
    CHECK(c->params.client_max_window_bits == 8);
}

TEST_CASE("the client keeps the window it offered when the server does not limit it") {
    DeflateOptions o;
    o.client_max_window_bits = 11;
    std::optional<DeflateConfig> c;
    CHECK(client_accepts("permessage-deflate", o, c) == Error::none);
    REQUIRE(c);
    CHECK(c->params.client_max_window_bits == 11);
    CHECK(client_accepts("permessage-deflate; client_max_window_bits=10", o, c) == Error::none);
    REQUIRE(c);
    CHECK(c->params.client_max_window_bits == 10);
}

TEST_CASE("the client fails the handshake on an answer its offer does not allow") {
    DeflateOptions o;
    o.client_max_window_bits = 12;
    const char* invalid[] = {
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover=x",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=09",
        "permessage-deflate; client_max_window_bits",     // a server's answer must give a value
        "permessage-deflate; client_max_window_bits=13",  // above the offered 12
        "permessage-deflate; client_max_window_bits=5",
        "permessage-deflate, permessage-deflate",  // one offer, two acceptances
    };
    for (const char* response : invalid) {
        CAPTURE(response);
        std::optional<DeflateConfig> c;
        CHECK(client_accepts(response, o, c) == Error::http_bad_extension_response);
        CHECK_FALSE(c);
    }
}

TEST_CASE("client_max_window_bits in an answer to an offer without it fails the handshake") {
    DeflateOptions o;
    o.offer_client_max_window_bits = false;
    CHECK(write_deflate_offer(o) == "permessage-deflate");
    std::optional<DeflateConfig> c;
    CHECK(client_accepts("permessage-deflate; client_max_window_bits=15", o, c) ==
          Error::http_bad_extension_response);
    CHECK(client_accepts("permessage-deflate; client_max_window_bits=10", o, c) ==
          Error::http_bad_extension_response);
    CHECK(client_accepts("permessage-deflate; server_max_window_bits=10", o, c) == Error::none);
    REQUIRE(c);
    CHECK(c->params.client_max_window_bits == 15);
    // A window below 15 is always offered, with its value.
    o.client_max_window_bits = 12;
    CHECK(write_deflate_offer(o) == "permessage-deflate; client_max_window_bits=12");
    CHECK(client_accepts("permessage-deflate; client_max_window_bits=10", o, c) == Error::none);
}

TEST_CASE("the client fails the handshake when the answer ignores what it asked of the server") {
    DeflateOptions o;
    o.server_no_context_takeover = true;
    o.server_max_window_bits = 10;
    std::optional<DeflateConfig> c;
    CHECK(client_accepts("permessage-deflate; server_max_window_bits=10", o, c) ==
          Error::http_bad_extension_response);
    CHECK(client_accepts("permessage-deflate; server_no_context_takeover", o, c) ==
          Error::http_bad_extension_response);
    CHECK(client_accepts("permessage-deflate; server_no_context_takeover; "
                         "server_max_window_bits=11",
                         o, c) == Error::http_bad_extension_response);
    CHECK(client_accepts("permessage-deflate; server_no_context_takeover; "
                         "server_max_window_bits=9",
                         o, c) == Error::none);
    REQUIRE(c);
    CHECK(c->params.server_max_window_bits == 9);
}

TEST_CASE("client handshake: offer in the request, answer validated and applied") {
    DeflateOptions o;
    o.client_no_context_takeover = true;
    ClientOptions co;
    co.host = "example.com";
    co.extensions = write_deflate_offer(o);
    ClientHandshake hs(co, "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK(hs.request().find("Sec-WebSocket-Extensions: permessage-deflate; "
                            "client_no_context_takeover; client_max_window_bits\r\n") !=
          std::string::npos);
    const std::string response =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9\r\n\r\n";
    REQUIRE(hs.parse(response).status == ParseStatus::ok);
    std::optional<DeflateConfig> c;
    CHECK(accept_deflate_response(hs.extensions(), o, c) == Error::none);
    REQUIRE(c);
    CHECK(c->params.client_max_window_bits == 9);
    CHECK(c->params.client_no_context_takeover);
}

// ======================= RFC 7692 §7.2.3 examples =======================

TEST_CASE("§7.2.3.1 \"Hello\" compresses to f2 48 cd c9 c9 07 00") {
    Deflater d(15, true, {});
    CHECK(compress(d, as_span("Hello")) == Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
    Inflater inf(15, true, {});
    CHECK(inflate_message(inf, Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}) ==
          bytes_of("Hello"));
}

TEST_CASE("§7.2.3.2 with context takeover the second \"Hello\" is f2 00 11 00 00") {
    Deflater d(15, true, {});
    CHECK(compress(d, as_span("Hello")) == Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
    CHECK(compress(d, as_span("Hello")) == Bytes{0xf2, 0x00, 0x11, 0x00, 0x00});
    Inflater inf(15, true, {});
    CHECK(inflate_message(inf, Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}) ==
          bytes_of("Hello"));
    CHECK(inflate_message(inf, Bytes{0xf2, 0x00, 0x11, 0x00, 0x00}) == bytes_of("Hello"));
}

TEST_CASE("without context takeover every \"Hello\" compresses the same") {
    Deflater d(15, false, {});
    for (int i = 0; i < 3; ++i)
        CHECK(compress(d, as_span("Hello")) == Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
    // An inflater without takeover cannot resolve the takeover form.
    Inflater inf(15, false, {});
    CHECK(inflate_message(inf, Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}) ==
          bytes_of("Hello"));
    CHECK_FALSE(inflate_message(inf, Bytes{0xf2, 0x00, 0x11, 0x00, 0x00}));
    CHECK(inf.error() == Error::inflate_failed);
}

TEST_CASE("§7.2.3.3 a stored (uncompressed) block inflates") {
    Inflater inf(15, true, {});
    CHECK(inflate_message(inf, Bytes{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f,
                                     0x00}) == bytes_of("Hello"));
}

TEST_CASE("§7.2.3.4 a block with BFINAL set inflates, and takeover survives it") {
    Inflater inf(15, true, {});
    CHECK(inflate_message(inf, Bytes{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}) ==
          bytes_of("Hello"));
    // The next message refers back into the first one: the window must have been kept.
    CHECK(inflate_message(inf, Bytes{0xf2, 0x00, 0x11, 0x00, 0x00}) == bytes_of("Hello"));
    // And once more with 1-byte chops and 1-byte output.
    Inflater chopped(15, true, {});
    CHECK(inflate_message(chopped, Bytes{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}, 1, 1) ==
          bytes_of("Hello"));
    CHECK(inflate_message(chopped, Bytes{0xf2, 0x00, 0x11, 0x00, 0x00}, 1, 1) == bytes_of("Hello"));
}

TEST_CASE("data after a block with BFINAL set is refused") {
    Inflater inf(15, true, {});
    CHECK_FALSE(
        inflate_message(inf, Bytes{0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0xf2, 0x00}));
    CHECK(inf.error() == Error::inflate_failed);
}

TEST_CASE("§7.2.3.5 two DEFLATE blocks in one message inflate") {
    Inflater inf(15, true, {});
    CHECK(inflate_message(inf, Bytes{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9,
                                     0xc9, 0x07, 0x00}) == bytes_of("Hello"));
}

TEST_CASE("§7.2.3.6 an empty message is the single byte 00, both ways") {
    for (bool takeover : {true, false}) {
        Deflater d(15, takeover, {});
        CHECK(compress(d, {}) == Bytes{0x00});
        CHECK_FALSE(d.has_stream());  // no zlib state for it
        CHECK(compress(d, as_span("Hello")) == Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});
        CHECK(compress(d, {}) == Bytes{0x00});
        Inflater inf(15, takeover, {});
        CHECK(inflate_message(inf, Bytes{0x00}) == Bytes{});
        CHECK(inflate_message(inf, Bytes{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}) ==
              bytes_of("Hello"));
        CHECK(inflate_message(inf, Bytes{0x00}) == Bytes{});
    }
}

TEST_CASE("data that is not DEFLATE fails with inflate_failed") {
    Inflater inf(15, true, {});
    CHECK_FALSE(inflate_message(inf, Bytes{0xff, 0xff, 0xff, 0xff}));
    CHECK(inf.error() == Error::inflate_failed);
}

// ======================= Round trips, windows 8-15 =======================

TEST_CASE("round trip at every window size 8-15, with and without context takeover") {
    for (int bits = 8; bits <= 15; ++bits) {
        for (bool takeover : {true, false}) {
            CAPTURE(bits);
            CAPTURE(takeover);
            const auto b = static_cast<std::uint8_t>(bits);
            Deflater d(b, takeover, {});
            Inflater inf(b, takeover, {});
            Inflater chopped(b, takeover, {});
            std::size_t first_size = 0;
            for (std::uint32_t m = 0; m < 12; ++m) {
                const Bytes message =
                    m % 3 == 2 ? random_bytes(700 + m * 97, m) : sample_text(50 + m * 1500, 3);
                const Bytes c = compress(d, message);
                if (m == 0) first_size = c.size();
                CHECK(inflate_message(inf, c) == message);
                CHECK(inflate_message(chopped, c, 1, 7) == message);
            }
            // Same message twice: with takeover the second refers to the first.
            const Bytes again = sample_text(3000, 3);
            Deflater d2(b, takeover, {});
            const std::size_t one = compress(d2, again).size();
            const std::size_t two = compress(d2, again).size();
            if (takeover && bits >= 12) {
                CHECK(two < one / 4);
            } else if (!takeover) {
                CHECK(two == one);
            }
            CHECK(first_size > 0);
        }
    }
}

TEST_CASE("every window's output inflates with a strict zlib inflater of that window") {
    // zlib's deflate refuses a 256-byte window for raw streams and we run it at 9: its distances
    // still never exceed 250, so a peer holding exactly 2^8 bytes of window inflates it, also
    // across messages with takeover and with output pulled one byte at a time.
    for (int bits = 8; bits <= 15; ++bits) {
        CAPTURE(bits);
        Deflater d(static_cast<std::uint8_t>(bits), false, {});
        for (std::uint32_t m = 0; m < 4; ++m) {
            Bytes message = sample_text(6000, m);
            // Repeats at distance 300 and 600: a larger window would use them.
            for (std::size_t i = 600; i < message.size(); i += 3)
                message[i] = message[i - (i % 2 ? 300 : 600)];
            CHECK(zlib_strict_inflate(bits, compress(d, message)) == message);
        }
    }
}

TEST_CASE("window 8: a too-far distance inflates the same however the input is chopped") {
    // A peer that negotiated 8 but deflates with a larger window (zlib's manual suggests 9 for
    // 8; not every deflater keeps zlib's 250-byte distance cap) refers further back. zlib's
    // inflater at 8 accepts or refuses such a stream depending on how much output one call has room
    // for; this is the quirk:
    Bytes message = random_bytes(300, 5);
    const Bytes head = message;
    message.insert(message.end(), head.begin(), head.end());  // a match at distance 300
    const Bytes stream = zlib_deflate(15, message);
    CHECK_FALSE(zlib_strict_inflate(8, stream));  // 1-byte output: "distance too far back"
    {
        z_stream z{};
        REQUIRE(inflateInit2(&z, -8) == Z_OK);
        Bytes in = stream;
        in.insert(in.end(), {0x00, 0x00, 0xFF, 0xFF});
        Bytes out(4096);
        z.next_in = in.data();
        z.avail_in = static_cast<uInt>(in.size());
        z.next_out = out.data();
        z.avail_out = static_cast<uInt>(out.size());
        CHECK(inflate(&z, Z_SYNC_FLUSH) == Z_OK);  // one big output buffer: accepted
        CHECK(out.size() - z.avail_out == message.size());
        inflateEnd(&z);
    }
    // Ours runs zlib at 9 for 8 and gives one answer for every chunking (up to 512 back).
    for (std::size_t out_chunk : {std::size_t{1}, std::size_t{5}, std::size_t{4096}}) {
        for (std::size_t in_chunk : {std::size_t{1}, SIZE_MAX}) {
            Inflater inf(8, true, {});
            CHECK(inflate_message(inf, stream, in_chunk, out_chunk) == message);
        }
    }
}

TEST_CASE("fragments compress one by one and inflate as one message") {
    for (bool takeover : {true, false}) {
        Deflater d(15, takeover, {});
        Inflater inf(15, takeover, {});
        for (int round = 0; round < 3; ++round) {
            const Bytes message = sample_text(20000, static_cast<std::uint32_t>(round));
            Bytes wire;
            std::span<const std::uint8_t> out;
            const std::size_t cuts[] = {0, 1, 5000, 5000, 19999, 20000};
            for (std::size_t i = 0; i + 1 < std::size(cuts); ++i) {
                const bool last = i + 2 == std::size(cuts);
                REQUIRE(
                    d.compress_fragment(std::span(message).subspan(cuts[i], cuts[i + 1] - cuts[i]),
                                        last, out) == Error::none);
                wire.insert(wire.end(), out.begin(), out.end());
            }
            CHECK(inflate_message(inf, wire) == message);
        }
        // An empty last fragment still ends the message properly.
        std::span<const std::uint8_t> out;
        Bytes wire;
        REQUIRE(d.compress_fragment(as_span("Hello"), false, out) == Error::none);
        wire.insert(wire.end(), out.begin(), out.end());
        REQUIRE(d.compress_fragment({}, true, out) == Error::none);
        wire.insert(wire.end(), out.begin(), out.end());
        CHECK(inflate_message(inf, wire) == bytes_of("Hello"));
        CHECK(inflate_message(inf, compress(d, as_span("Hello"))) == bytes_of("Hello"));
    }
}

TEST_CASE("the inflater hands out a bomb in bounded pieces") {
    const Bytes zeros(10 * 1024 * 1024, 0);
    Deflater d(15, false, {});
    const Bytes bomb = compress(d, zeros);
    CHECK(bomb.size() < 20 * 1024);
    Inflater inf(15, false, {});
    inf.feed(bomb);
    Bytes piece(64 * 1024);
    std::size_t total = 0;
    // A receiver stops at its limit; here we take 1 MiB and stop.
    while (total < 1024 * 1024) {
        const Inflater::Result r = inf.inflate(piece);
        REQUIRE(r.status == Inflater::Status::output_full);
        total += r.produced;
    }
    CHECK(total == 1024 * 1024);
}

// ======================= Memory =======================

TEST_CASE("zlib memory is allocated on first use, measured, and released with no takeover") {
    struct Case {
        std::uint8_t bits;
        int mem_level;
    };
    std::printf("zlib memory per direction (bytes): window memLevel deflate inflate\n");
    for (const Case c :
         {Case{15, 8}, Case{15, 9}, Case{12, 8}, Case{10, 4}, Case{9, 1}, Case{8, 1}}) {
        ZlibMeter dm;
        ZlibMeter im;
        DeflateTuning t;
        t.mem_level = c.mem_level;
        t.allocator = dm.hooks();
        Deflater d(c.bits, true, t);
        t.allocator = im.hooks();
        Inflater inf(c.bits, true, t);
        CHECK(dm.allocations == 0);  // created lazily
        CHECK(im.allocations == 0);
        const Bytes message = sample_text(100000);
        CHECK(inflate_message(inf, compress(d, message)) == message);
        std::printf("  %2d %d %7zu %7zu\n", c.bits, c.mem_level, dm.bytes, im.bytes);
        // deflate: window (2 * 2^w) + hash chains (2 * 2^w) + hash heads (2 * 2^(memLevel+7)) +
        // pending buffer (4 * 2^(memLevel+6)), plus ~6 KiB of state.
        const int w = std::max<int>(c.bits, 9);
        const int mem_level = std::min(c.mem_level, w - 5);
        const std::size_t expected = (std::size_t{4} << w) + (std::size_t{4} << (mem_level + 7));
        CHECK(dm.bytes >= expected);
        CHECK(dm.bytes < expected + 8 * 1024);
        CHECK(im.bytes >= (std::size_t{1} << w));
        CHECK(im.bytes < (std::size_t{1} << w) + 8 * 1024);
    }
    {
        ZlibMeter m;
        DeflateTuning t;
        t.release_idle_streams = true;
        t.allocator = m.hooks();
        Deflater d(15, false, t);
        Inflater inf(15, false, t);
        for (int i = 0; i < 3; ++i) {
            const Bytes message = sample_text(5000, static_cast<std::uint32_t>(i));
            CHECK(inflate_message(inf, compress(d, message)) == message);
            CHECK(m.bytes == 0);  // both streams freed after the message
        }
        CHECK(m.peak > 256 * 1024);
        CHECK(m.allocations >= 6);
    }
    {
        // With takeover the streams must live on.
        ZlibMeter m;
        DeflateTuning t;
        t.release_idle_streams = true;
        t.allocator = m.hooks();
        Deflater d(15, true, t);
        compress(d, sample_text(5000));
        CHECK(m.bytes > 256 * 1024);
    }
}
