// permessage-deflate on the wire (RFC 7692, CONFORMANCE.md §12-13): a raw peer sends compressed
// frames made byte by byte or by zlib used directly, and pairs of Connections (server and client,
// each configured from a real negotiation) echo Autobahn-style traffic through both directions.
#include <doctest/doctest.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "../support/heap_counter.hpp"
#include "peer.hpp"
#include "proto/deflate.hpp"

using namespace wsx::conformance;
using wsx::proto::Compress;
using wsx::proto::DataChunk;
using wsx::proto::DeflateConfig;
using wsx::proto::DeflateOptions;
using wsx::proto::DeflateParams;
using wsx::proto::Deflater;
using wsx::proto::DeflateTuning;
using wsx::proto::ExtensionOffer;
using wsx::proto::SharedBuffer;
using wsx::testing::heap_largest_allocation;
using wsx::testing::heap_live_bytes;

namespace {

// ---- The peer's compressor: zlib used directly, independent of proto::Deflater.
class PeerDeflater {
  public:
    explicit PeerDeflater(int bits = 15, bool takeover = true) : takeover_(takeover) {
        REQUIRE(deflateInit2(&z_, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    }
    PeerDeflater(const PeerDeflater&) = delete;
    PeerDeflater& operator=(const PeerDeflater&) = delete;
    ~PeerDeflater() { deflateEnd(&z_); }

    // §7.2.1: sync-flushed, with the 00 00 FF FF removed when `last`.
    Bytes compress(std::span<const std::uint8_t> data, bool last = true) {
        Bytes out(deflateBound(&z_, static_cast<uLong>(data.size())) + 64);
        z_.next_in = const_cast<Bytef*>(data.data());
        z_.avail_in = static_cast<uInt>(data.size());
        z_.next_out = out.data();
        z_.avail_out = static_cast<uInt>(out.size());
        const int r = deflate(&z_, Z_SYNC_FLUSH);
        REQUIRE((r == Z_OK || r == Z_BUF_ERROR));
        REQUIRE(z_.avail_out > 0);
        out.resize(out.size() - z_.avail_out);
        if (last) {
            REQUIRE(out.size() >= 4);
            out.resize(out.size() - 4);
            if (!takeover_) deflateReset(&z_);
        }
        return out;
    }

  private:
    z_stream z_{};
    bool takeover_;
};

// The peer's inflater, to check what a Connection compressed.
class PeerInflater {
  public:
    explicit PeerInflater(int bits = 15) { REQUIRE(inflateInit2(&z_, -bits) == Z_OK); }
    PeerInflater(const PeerInflater&) = delete;
    PeerInflater& operator=(const PeerInflater&) = delete;
    ~PeerInflater() { inflateEnd(&z_); }

    Bytes inflate_message(Bytes data) {
        data.insert(data.end(), {0x00, 0x00, 0xFF, 0xFF});
        Bytes out;
        z_.next_in = data.data();
        z_.avail_in = static_cast<uInt>(data.size());
        std::uint8_t buf[4096];
        do {
            z_.next_out = buf;
            z_.avail_out = sizeof buf;
            const int r = ::inflate(&z_, Z_SYNC_FLUSH);
            REQUIRE((r == Z_OK || r == Z_BUF_ERROR));
            out.insert(out.end(), buf, buf + (sizeof buf - z_.avail_out));
        } while (z_.avail_out == 0);
        return out;
    }

  private:
    z_stream z_{};
};

ConnectionOptions with_deflate(DeflateParams params = {}, DeflateTuning tuning = {}) {
    ConnectionOptions o;
    o.deflate = DeflateConfig{params, tuning};
    return o;
}

// For Scenario: deflate negotiated, but the recorder's echoes go out uncompressed, as the plain
// frames Scenario expects.
ConnectionOptions echo_plain() {
    DeflateTuning t;
    t.min_compress_size = SIZE_MAX;
    return with_deflate({}, t);
}

Bytes compressed_hello() {
    return {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
}

RawFrame compressed_frame(std::uint8_t opcode, Bytes payload, bool fin = true) {
    RawFrame f = frame_of(opcode, std::move(payload), fin);
    f.rsv = kRsv1;
    return f;
}

// A corpus the Autobahn-style traffic is cut from, as the suite cuts its messages from files:
// JSON-like records (valid UTF-8, multi-byte code points included) over a vocabulary of a few
// thousand words, so matches come at all distances as in real text.
const Bytes& corpus() {
    static const Bytes c = [] {
        std::mt19937 rng(42);
        static constexpr std::string_view kPieces[] = {
            "a", "e", "o", "n", "r", "st", "ch", "ü", "κ", "ó", "\xF0\x9F\x98\x80", "€", "qu", "i"};
        std::vector<std::string> words(3000);
        for (std::string& w : words) {
            const std::size_t n = 2 + rng() % 5;
            for (std::size_t i = 0; i < n; ++i)
                w += kPieces[rng() % std::size(kPieces)];
        }
        static constexpr std::string_view kKeys[] = {"id",    "name",    "value", "tags",
                                                     "owner", "created", "text"};
        std::string out;
        while (out.size() < 300 * 1024) {
            out += "{\"";
            out += kKeys[rng() % std::size(kKeys)];
            out += "\":";
            out += std::to_string(rng() % 1000000);
            out += ",\"";
            out += kKeys[rng() % std::size(kKeys)];
            out += "\":\"";
            for (std::size_t i = 0, n = 1 + rng() % 8; i < n; ++i) {
                out += words[rng() % words.size()];
                out += ' ';
            }
            out += "\"},\n";
        }
        return Bytes(out.begin(), out.end());
    }();
    return c;
}

// `n` bytes of the corpus from `at`, cut on a UTF-8 boundary at both ends for text.
Bytes corpus_slice(std::size_t at, std::size_t n, bool text) {
    const Bytes& c = corpus();
    const auto boundary = [&](std::size_t i) {
        while (i < c.size() && (c[i] & 0xC0) == 0x80)
            ++i;
        return i;
    };
    std::size_t from = text ? boundary(at % (c.size() - n - 8)) : at % (c.size() - n);
    Bytes out(c.begin() + static_cast<long>(from), c.begin() + static_cast<long>(from + n));
    if (text) {
        // Replace a code point cut at the end by ASCII, keeping the length.
        std::size_t i = out.size();
        while (i > 0 && (out[i - 1] & 0xC0) == 0x80)
            --i;
        if (i > 0 && out[i - 1] >= 0xC0) {
            const std::size_t len = out[i - 1] >= 0xF0 ? 4 : out[i - 1] >= 0xE0 ? 3 : 2;
            if (out.size() - (i - 1) < len)
                std::fill(out.begin() + static_cast<long>(i - 1), out.end(), 'z');
        }
    } else {
        for (std::size_t i = 0; i < out.size(); i += 7)
            out[i] = static_cast<std::uint8_t>(out[i] * 31 + i);
    }
    return out;
}

// Moves what `from` wrote into `to`, in chops of `chop` bytes (each a fresh heap copy).
template <typename Handler>
void transfer(Connection& from, Connection& to, Handler& handler, std::size_t chop = SIZE_MAX) {
    Bytes wire;
    drain(from, wire);
    std::size_t at = 0;
    while (at < wire.size()) {
        const std::size_t n = std::min(chop, wire.size() - at);
        Bytes chunk(wire.begin() + static_cast<long>(at), wire.begin() + static_cast<long>(at + n));
        const auto r = to.receive(std::span<std::uint8_t>(chunk), handler);
        REQUIRE(r.error == Error::none);
        REQUIRE(r.consumed == n);
        at += n;
    }
}

// A server and a client configured from one negotiation: the client's offer, the server's
// choice, the client's check of the answer.
struct Negotiated {
    ConnectionOptions server;
    ConnectionOptions client;
    std::string answer;
};

Negotiated negotiate(const DeflateOptions& client, const DeflateOptions& server) {
    std::vector<ExtensionOffer> offered;
    REQUIRE(wsx::proto::parse_extension_list(wsx::proto::write_deflate_offer(client), offered));
    const std::optional<DeflateConfig> s = wsx::proto::negotiate_deflate(offered, server);
    REQUIRE(s);
    Negotiated n;
    n.answer = wsx::proto::write_deflate_response(s->params);
    std::vector<ExtensionOffer> answered;
    REQUIRE(wsx::proto::parse_extension_list(n.answer, answered));
    std::optional<DeflateConfig> c;
    REQUIRE(wsx::proto::accept_deflate_response(answered, client, c) == Error::none);
    REQUIRE(c);
    CHECK(c->params.server_max_window_bits == s->params.server_max_window_bits);
    CHECK(c->params.client_max_window_bits == s->params.client_max_window_bits);
    CHECK(c->params.server_no_context_takeover == s->params.server_no_context_takeover);
    CHECK(c->params.client_no_context_takeover == s->params.client_no_context_takeover);
    n.server.deflate = s;
    n.client.deflate = c;
    return n;
}

// Collects a streaming handler's pieces.
struct StreamCollector {
    bool keep = true;  // assemble messages (off: only count, to bound memory)
    std::vector<DataChunk> chunks;
    std::vector<Bytes> messages;
    std::size_t largest_chunk = 0;
    std::size_t delivered = 0;
    std::vector<Event> closes;
    Bytes current;
    void on_data(const DataChunk& c) {
        largest_chunk = std::max(largest_chunk, c.data.size());
        delivered += c.data.size();
        chunks.push_back(c);
        if (!keep) return;
        if (c.first) current.clear();
        current.insert(current.end(), c.data.begin(), c.data.end());
        if (c.last) messages.push_back(current);
    }
    void on_close(const CloseInfo& info) {
        closes.push_back(Event::close(info.code, info.reason, info.clean, info.error));
    }
};

}  // namespace

// ======================= RFC 7692 §7.2.3 examples on the wire =======================

TEST_CASE("§7.2.3.1 a compressed \"Hello\" (RSV1) is delivered inflated, both roles") {
    for (Role role : kBothRoles) {
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(op::kText, compressed_hello()));
        s.expect_message(Opcode::text, bytes_of("Hello"));
        s.run();
    }
}

TEST_CASE("§7.2.3.2 with context takeover the second \"Hello\" refers to the first") {
    for (Role role : kBothRoles) {
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(op::kText, compressed_hello()));
        s.frame(compressed_frame(op::kText, {0xf2, 0x00, 0x11, 0x00, 0x00}));
        s.expect_message(Opcode::text, bytes_of("Hello"));
        s.expect_message(Opcode::text, bytes_of("Hello"));
        s.run();
    }
}

TEST_CASE("§7.2.3.3-5 stored blocks, a BFINAL block and two blocks all inflate") {
    for (Role role : kBothRoles) {
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(
            op::kBinary, {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}));
        s.frame(compressed_frame(op::kText, {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00}));
        s.frame(compressed_frame(op::kText, {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca,
                                             0xc9, 0xc9, 0x07, 0x00}));
        s.expect_message(Opcode::binary, bytes_of("Hello"));
        s.expect_message(Opcode::text, bytes_of("Hello"));
        s.expect_message(Opcode::text, bytes_of("Hello"));
        s.run();
    }
}

TEST_CASE("§7.2.3.6 an empty compressed message (00), or an empty RSV1 payload, is empty") {
    for (Role role : kBothRoles) {
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(op::kText, {0x00}));
        s.frame(compressed_frame(op::kBinary, {}));
        s.frame(compressed_frame(op::kText, compressed_hello()));  // the context is intact
        s.expect_message(Opcode::text, {});
        s.expect_message(Opcode::binary, {});
        s.expect_message(Opcode::text, bytes_of("Hello"));
        s.run();
    }
}

TEST_CASE("uncompressed messages still flow when deflate is negotiated") {
    for (Role role : kBothRoles) {
        Scenario s(role, echo_plain());
        s.text("plain");
        s.frame(compressed_frame(op::kText, compressed_hello()));
        s.frame(op::kBinary, binary_pattern(300));
        s.expect_message(Opcode::text, bytes_of("plain"));
        s.expect_message(Opcode::text, bytes_of("Hello"));
        s.expect_message(Opcode::binary, binary_pattern(300));
        s.run();
    }
}

// ======================= Fragmentation and RSV1 rules (§6.1) =======================

TEST_CASE("a compressed message in fragments, RSV1 on the first only, pings between") {
    for (Role role : kBothRoles) {
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(op::kText, {0xf2, 0x48, 0xcd}, false));
        s.frame(op::kPing, bytes_of("p"));
        s.frame(op::kContinuation, {0xc9, 0xc9}, false);
        s.frame(op::kContinuation, {}, false);
        s.frame(op::kContinuation, {0x07, 0x00}, true);
        s.expect_ping(bytes_of("p"));
        s.expect_message(Opcode::text, bytes_of("Hello"));
        s.run();
    }
}

TEST_CASE("a large compressed message fragmented by zlib flushes is reassembled") {
    for (Role role : kBothRoles) {
        PeerDeflater peer;
        Scenario s(role, echo_plain());
        const Bytes message = corpus_slice(1000, 100000, true);
        for (std::size_t at = 0; at < message.size(); at += 30000) {
            const std::size_t n = std::min<std::size_t>(30000, message.size() - at);
            const bool last = at + n == message.size();
            Bytes part = peer.compress(slice(message, at, at + n), last);
            if (at == 0) {
                s.frame(compressed_frame(op::kText, std::move(part), last));
            } else {
                s.frame(op::kContinuation, std::move(part), last);
            }
        }
        s.expect_message(Opcode::text, message);
        s.run({Feeding::whole(), Feeding::random(1), Feeding::fixed(997)});
    }
}

TEST_CASE("RSV1 on a continuation frame fails with 1002") {
    for (Role role : kBothRoles) {
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(op::kText, {0xf2, 0x48, 0xcd}, false));
        const std::size_t at =
            s.frame(compressed_frame(op::kContinuation, {0xc9, 0xc9, 0x07, 0x00}));
        s.expect_failure(Error::reserved_bits_set, at - 1, false);
        s.run();
    }
}

TEST_CASE("RSV1 on a control frame fails with 1002 (§6: never compressed)") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {op::kPing, op::kPong, op::kClose}) {
            CAPTURE(int(opcode));
            Scenario s(role, echo_plain());
            s.text("before");
            s.expect_message(Opcode::text, bytes_of("before"));
            s.frame(compressed_frame(opcode, opcode == op::kClose ? close_payload(1000) : Bytes{}));
            s.expect_failure(Error::reserved_bits_set);
            s.run();
        }
    }
}

TEST_CASE("RSV2 and RSV3 still fail with 1002 when only deflate is negotiated") {
    for (Role role : kBothRoles) {
        for (std::uint8_t rsv : {kRsv2, kRsv3, std::uint8_t(kRsv1 | kRsv2)}) {
            Scenario s(role, echo_plain());
            RawFrame f = frame_of(op::kText, compressed_hello());
            f.rsv = rsv;
            s.frame(f);
            s.expect_failure(Error::reserved_bits_set);
            s.run();
        }
    }
}

TEST_CASE("RSV1 without deflate negotiated fails with 1002") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(compressed_frame(op::kText, compressed_hello()));
        s.expect_failure(Error::reserved_bits_set);
        s.run();
    }
}

// ======================= Invalid compressed data =======================

TEST_CASE("compressed data that is not DEFLATE fails with 1007") {
    for (Role role : kBothRoles) {
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(op::kBinary, {0xff, 0xff, 0xff, 0xff, 0x00}));
        s.expect_failure(Error::inflate_failed);
        s.run();
    }
}

TEST_CASE("invalid UTF-8 in inflated text fails with 1007 as soon as it is inflated") {
    for (Role role : kBothRoles) {
        PeerDeflater peer;
        Bytes text = corpus_slice(0, 60000, true);
        text[100] = 0xFF;  // in the first fragment
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(op::kText, peer.compress(slice(text, 0, 20000), false), false));
        const std::size_t second =
            s.frame(op::kContinuation, peer.compress(slice(text, 20000, 60000), true));
        // Found while the first fragment is read, before the second one arrives.
        s.expect_failure(Error::invalid_utf8, second - 10, false);
        s.run();
    }
}

TEST_CASE("compressed text that ends inside a code point fails with 1007") {
    for (Role role : kBothRoles) {
        PeerDeflater peer;
        Scenario s(role, echo_plain());
        s.frame(compressed_frame(op::kText, peer.compress(bytes_of("Hell\xC3"))));
        s.expect_failure(Error::invalid_utf8);
        s.run();
    }
}

// ======================= Size limit: compression bombs =======================

TEST_CASE("a message that inflates past max_message_size fails with 1009") {
    for (Role role : kBothRoles) {
        PeerDeflater peer;
        ConnectionOptions o = echo_plain();
        o.max_message_size = 1000;
        Scenario s(role, o);
        s.frame(compressed_frame(op::kBinary, peer.compress(Bytes(1000, 'a'))));
        s.expect_message(Opcode::binary, Bytes(1000, 'a'));  // exactly the limit is fine
        s.frame(compressed_frame(op::kBinary, peer.compress(Bytes(1001, 'a'))));
        s.expect_failure(Error::message_too_big);
        s.run();
    }
}

TEST_CASE("a 10 MB bomb against a 1 MB limit fails with 1009 and bounded memory") {
    PeerDeflater peer(15, false);
    const Bytes bomb = peer.compress(Bytes(10 * 1024 * 1024, 0));
    CHECK(bomb.size() < 16 * 1024);
    for (Role role : kBothRoles) {
        CAPTURE(role_name(role));
        RawFrame f = compressed_frame(op::kBinary, bomb);
        if (role == Role::server) f.mask = MaskKey{1, 2, 3, 4};
        const Bytes wire = encode(f);
        ConnectionOptions o = with_deflate();
        o.max_message_size = 1024 * 1024;
        {
            // Message mode: at most the limit (plus growth slack) is ever held.
            Connection conn(role, o);
            Recorder rec(conn, false);
            Bytes in = wire;
            heap_largest_allocation = 0;
            const auto r = conn.receive(std::span<std::uint8_t>(in), rec);
            CHECK(r.error == Error::message_too_big);
            REQUIRE(rec.events.size() == 1);
            CHECK(rec.events[0].code == 1009);
            CHECK(heap_largest_allocation.load() <= 2 * 1024 * 1024 + 64 * 1024);
            Bytes out;
            drain(conn, out);
            const DecodeResult d = decode_all(out);
            REQUIRE(d.frames.size() == 1);
            CHECK(d.frames[0].opcode == op::kClose);
        }
        {
            // Streaming mode: pieces of 16 KiB, nothing larger allocated, 1 MiB delivered.
            Connection conn(role, o);
            StreamCollector sc;
            sc.keep = false;
            sc.chunks.reserve(100);
            Bytes in = wire;
            heap_largest_allocation = 0;
            const auto r = conn.receive(std::span<std::uint8_t>(in), sc);
            CHECK(r.error == Error::message_too_big);
            CHECK(heap_largest_allocation.load() <= 64 * 1024);
            CHECK(sc.largest_chunk <= 16 * 1024);
            CHECK(sc.delivered == 1024 * 1024);
            REQUIRE(sc.closes.size() == 1);
            CHECK(sc.closes[0].code == 1009);
        }
    }
}

// ======================= Streaming handlers =======================

TEST_CASE("a streaming handler gets the inflated message in pieces of at most 16 KiB") {
    for (Role role : kBothRoles) {
        PeerDeflater peer;
        const Bytes message = corpus_slice(5, 200000, true);
        RawFrame f = compressed_frame(op::kText, peer.compress(message));
        if (role == Role::server) f.mask = MaskKey{9, 8, 7, 6};
        const Bytes wire = encode(f);
        for (std::size_t chop : {std::size_t{1}, std::size_t{1000}, wire.size()}) {
            CAPTURE(chop);
            Connection conn(role, with_deflate());
            StreamCollector sc;
            for (std::size_t at = 0; at < wire.size(); at += chop) {
                Bytes chunk = slice(wire, at, std::min(wire.size(), at + chop));
                REQUIRE(conn.receive(std::span<std::uint8_t>(chunk), sc).error == Error::none);
            }
            REQUIRE(sc.messages.size() == 1);
            CHECK(sc.messages[0] == message);
            CHECK(sc.largest_chunk <= 16 * 1024);
            CHECK(sc.chunks.front().first);
            CHECK(sc.chunks.back().last);
            for (const DataChunk& c : sc.chunks)
                CHECK(c.opcode == Opcode::text);
        }
    }
}

// ======================= Sending =======================

TEST_CASE("messages below min_compress_size go out uncompressed; Compress forces either way") {
    for (Role role : kBothRoles) {
        DeflateTuning t;
        t.min_compress_size = 64;
        Connection conn(role, with_deflate({}, t));
        PeerInflater peer;
        const Bytes small = bytes_of("short message");
        const Bytes big = corpus_slice(0, 1000, true);
        REQUIRE(conn.send_binary(small) == Error::none);
        REQUIRE(conn.send_binary(big) == Error::none);
        REQUIRE(conn.send_binary(small, Compress::always) == Error::none);
        REQUIRE(conn.send_binary(big, Compress::never) == Error::none);
        REQUIRE(conn.send_text("", Compress::always) == Error::none);
        Bytes out;
        drain(conn, out);
        const DecodeResult d = decode_all(out);
        REQUIRE(d.frames.size() == 5);
        CHECK(d.frames[0].rsv == 0);
        CHECK(d.frames[0].payload == small);
        CHECK(d.frames[1].rsv == kRsv1);
        CHECK(d.frames[1].payload.size() < big.size() * 3 / 4);
        CHECK(peer.inflate_message(d.frames[1].payload) == big);
        CHECK(d.frames[2].rsv == kRsv1);
        CHECK(peer.inflate_message(d.frames[2].payload) == small);
        CHECK(d.frames[3].rsv == 0);
        CHECK(d.frames[3].payload == big);
        CHECK(d.frames[4].rsv == kRsv1);
        CHECK(d.frames[4].payload == Bytes{0x00});  // §7.2.3.6
    }
}

TEST_CASE("without deflate negotiated nothing is compressed, whatever Compress says") {
    Connection conn(Role::server);
    REQUIRE(conn.send_binary(Bytes(1000, 'a'), Compress::always) == Error::none);
    Bytes out;
    drain(conn, out);
    const DecodeResult d = decode_all(out);
    REQUIRE(d.frames.size() == 1);
    CHECK(d.frames[0].rsv == 0);
    CHECK(d.frames[0].payload == Bytes(1000, 'a'));
}

TEST_CASE("control frames are never compressed") {
    for (Role role : kBothRoles) {
        DeflateTuning t;
        t.min_compress_size = 0;
        Connection conn(role, with_deflate({}, t));
        REQUIRE(conn.ping(Bytes(125, 'p')) == Error::none);
        REQUIRE(conn.pong(Bytes(100, 'q')) == Error::none);
        REQUIRE(conn.close(1000, std::string(100, 'r')) == Error::none);
        Bytes out;
        drain(conn, out);
        const DecodeResult d = decode_all(out);
        REQUIRE(d.frames.size() == 3);
        for (const DecodedFrame& f : d.frames)
            CHECK(f.rsv == 0);
        CHECK(d.frames[0].payload == Bytes(125, 'p'));
    }
}

TEST_CASE("auto-fragmented compressed messages carry RSV1 on the first frame only") {
    for (Role role : kBothRoles) {
        ConnectionOptions o = with_deflate();
        o.auto_fragment_size = 256;
        Connection conn(role, o);
        const Bytes message = corpus_slice(77, 20000, false);
        REQUIRE(conn.send_binary(message) == Error::none);
        Bytes out;
        drain(conn, out);
        const DecodeResult d = decode_all(out);
        REQUIRE(d.frames.size() > 2);
        Bytes compressed;
        for (std::size_t i = 0; i < d.frames.size(); ++i) {
            CHECK(d.frames[i].rsv == (i == 0 ? kRsv1 : 0));
            CHECK(d.frames[i].opcode == (i == 0 ? op::kBinary : op::kContinuation));
            CHECK(d.frames[i].fin == (i + 1 == d.frames.size()));
            CHECK(d.frames[i].payload.size() <= 256);
            compressed.insert(compressed.end(), d.frames[i].payload.begin(),
                              d.frames[i].payload.end());
        }
        PeerInflater peer;
        CHECK(peer.inflate_message(compressed) == message);
    }
}

TEST_CASE("send_frame compresses a fragmented message decided on its first frame") {
    for (Role role : kBothRoles) {
        const Role other = role == Role::server ? Role::client : Role::server;
        Connection sender(role, with_deflate());
        Connection receiver(other, with_deflate());
        Recorder rec(receiver, false);
        const Bytes a = corpus_slice(10, 5000, true);
        const Bytes b = corpus_slice(9000, 7000, true);
        for (int round = 0; round < 3; ++round) {
            REQUIRE(sender.send_frame(Opcode::text, a, false) == Error::none);
            REQUIRE(sender.ping(bytes_of("between")) == Error::none);
            // `compress` is ignored on continuations: the message stays compressed.
            REQUIRE(sender.send_frame(Opcode::continuation, b, false, Compress::never) ==
                    Error::none);
            REQUIRE(sender.send_frame(Opcode::continuation, {}, true) == Error::none);
            // A small first fragment: not compressed, the whole message goes out plain.
            REQUIRE(sender.send_frame(Opcode::binary, bytes_of("tiny"), false) == Error::none);
            REQUIRE(sender.send_frame(Opcode::continuation, b, true) == Error::none);
        }
        Bytes wire;
        drain(sender, wire);
        const DecodeResult d = decode_all(wire);
        REQUIRE(d.frames.size() == 18);
        CHECK(d.frames[0].rsv == kRsv1);
        CHECK(d.frames[1].rsv == 0);  // the ping
        CHECK(d.frames[2].rsv == 0);
        CHECK(d.frames[4].rsv == 0);  // "tiny"
        CHECK(d.frames[5].payload == b);
        Bytes copy = wire;
        REQUIRE(receiver.receive(std::span<std::uint8_t>(copy), rec).error == Error::none);
        Bytes ab = a;
        ab.insert(ab.end(), b.begin(), b.end());
        Bytes tb = bytes_of("tiny");
        tb.insert(tb.end(), b.begin(), b.end());
        std::vector<Event> expected;
        for (int round = 0; round < 3; ++round) {
            expected.push_back(Event::ping(bytes_of("between")));
            expected.push_back(Event::message(Opcode::text, ab));
            expected.push_back(Event::message(Opcode::binary, tb));
        }
        CHECK(summarize(rec.events) == summarize(expected));
    }
}

TEST_CASE("context takeover makes a repeated message smaller; no takeover does not") {
    const Bytes message = corpus_slice(333, 3000, true);
    for (bool no_takeover : {false, true}) {
        DeflateParams p;
        p.server_no_context_takeover = no_takeover;
        Connection server(Role::server, with_deflate(p));
        REQUIRE(server.send_text({reinterpret_cast<const char*>(message.data()), message.size()}) ==
                Error::none);
        REQUIRE(server.send_binary(message) == Error::none);
        Bytes out;
        drain(server, out);
        const DecodeResult d = decode_all(out);
        REQUIRE(d.frames.size() == 2);
        if (no_takeover) {
            CHECK(d.frames[1].payload == d.frames[0].payload);
        } else {
            CHECK(d.frames[1].payload.size() * 10 < d.frames[0].payload.size());
        }
        // A client with the matching parameters reads both.
        Connection client(Role::client, with_deflate(p));
        Recorder rec(client, false);
        REQUIRE(client.receive(std::span<std::uint8_t>(out), rec).error == Error::none);
        REQUIRE(rec.events.size() == 2);
        CHECK(rec.events[0].data == message);
        CHECK(rec.events[1].data == message);
    }
}

// ======================= Shared (broadcast) frames =======================

TEST_CASE("a compressed shared frame is encoded once and read by every connection") {
    DeflateTuning tuning;
    Deflater broadcast(15, false, tuning);
    const Bytes news = corpus_slice(4242, 4000, true);
    const SharedBuffer frame = wsx::proto::encode_shared_frame(Opcode::text, news, broadcast);
    REQUIRE(frame);
    CHECK((frame.data()[0] & 0x40) != 0);
    CHECK(frame.size() < news.size() / 2);
    // Also on a connection with context takeover: its compressor restarts after the frame.
    for (bool server_no_takeover : {true, false}) {
        CAPTURE(server_no_takeover);
        DeflateParams p;
        p.server_no_context_takeover = server_no_takeover;
        Connection server(Role::server, with_deflate(p));
        Connection client(Role::client, with_deflate(p));
        Recorder rec(client, false);
        const Bytes mine = corpus_slice(4000, 3000, true);
        REQUIRE(server.send_binary(mine) == Error::none);
        REQUIRE(server.send_shared(frame) == Error::none);
        REQUIRE(server.send_binary(mine) == Error::none);
        REQUIRE(server.send_shared(frame) == Error::none);
        REQUIRE(server.send_binary(news) == Error::none);
        transfer(server, client, rec, 333);
        REQUIRE(rec.events.size() == 5);
        CHECK(rec.events[0].data == mine);
        CHECK(rec.events[1].data == news);
        CHECK(rec.events[2].data == mine);
        CHECK(rec.events[3].data == news);
        CHECK(rec.events[4].data == news);
        CHECK(rec.events[1].opcode == op::kText);
    }
    // A smaller window suits connections that negotiated at least that window.
    Deflater small(10, false, tuning);
    const SharedBuffer small_frame = wsx::proto::encode_shared_frame(Opcode::binary, news, small);
    DeflateParams p;
    p.server_max_window_bits = 10;
    Connection server(Role::server, with_deflate(p));
    Connection client(Role::client, with_deflate(p));
    Recorder rec(client, false);
    REQUIRE(server.send_shared(small_frame) == Error::none);
    transfer(server, client, rec);
    REQUIRE(rec.events.size() == 1);
    CHECK(rec.events[0].data == news);
}

TEST_CASE("a compressed shared frame is refused without deflate") {
    Deflater broadcast(15, false, {});
    const SharedBuffer frame =
        wsx::proto::encode_shared_frame(Opcode::text, bytes_of("hello hello"), broadcast);
    Connection server(Role::server);
    CHECK(server.send_shared(frame) == Error::shared_frame_compressed);
    CHECK_FALSE(server.wants_write());
    // An uncompressed shared frame is still fine there.
    CHECK(server.send_shared(wsx::proto::encode_shared_frame(Opcode::text, bytes_of("x"))) ==
          Error::none);
}

// ======================= The zero-copy path =======================

TEST_CASE("uncompressed frames keep the zero-copy path; compressed ones never take it") {
    struct WhereHandler {
        const std::uint8_t* begin;
        const std::uint8_t* end;
        std::vector<bool> in_place;
        std::vector<Bytes> payloads;
        void on_message(Opcode, std::span<const std::uint8_t> p) {
            in_place.push_back(p.data() >= begin && p.data() + p.size() <= end);
            payloads.emplace_back(p.begin(), p.end());
        }
    };
    Connection conn(Role::server, with_deflate());
    RawFrame plain = frame_of(op::kText, bytes_of("Hello"));
    plain.mask = MaskKey{1, 2, 3, 4};
    RawFrame packed = compressed_frame(op::kText, compressed_hello());
    packed.mask = MaskKey{5, 6, 7, 8};
    Bytes in = concat({encode(plain), encode(packed)});
    WhereHandler h{in.data(), in.data() + in.size(), {}, {}};
    REQUIRE(conn.receive(std::span<std::uint8_t>(in), h).error == Error::none);
    REQUIRE(h.in_place.size() == 2);
    CHECK(h.in_place[0]);
    CHECK_FALSE(h.in_place[1]);
    CHECK(h.payloads[0] == bytes_of("Hello"));
    CHECK(h.payloads[1] == bytes_of("Hello"));
}

// ======================= Windows 8-15 through both roles =======================

TEST_CASE("every window 8-15, each direction, with and without takeover, in 1-byte chops") {
    for (int bits = 8; bits <= 15; ++bits) {
        for (bool no_takeover : {false, true}) {
            CAPTURE(bits);
            CAPTURE(no_takeover);
            DeflateOptions client;
            client.server_max_window_bits = static_cast<std::uint8_t>(bits);
            client.client_no_context_takeover = no_takeover;
            DeflateOptions server;
            server.client_max_window_bits = static_cast<std::uint8_t>(bits);
            server.server_no_context_takeover = no_takeover;
            const Negotiated n = negotiate(client, server);
            CHECK(n.server.deflate->params.server_max_window_bits == bits);
            CHECK(n.server.deflate->params.client_max_window_bits == bits);
            Connection s(Role::server, n.server);
            Connection c(Role::client, n.client);
            Recorder echo(s, true);
            Recorder got(c, false);
            std::vector<Bytes> sent;
            for (std::size_t i = 0; i < 6; ++i) {
                const bool text = i % 2 == 0;
                Bytes m = corpus_slice(i * 700, 100 + i * 400, text);
                REQUIRE(c.send(text ? Opcode::text : Opcode::binary, m) == Error::none);
                sent.push_back(std::move(m));
            }
            transfer(c, s, echo, 1);
            transfer(s, c, got, 1);
            REQUIRE(got.events.size() == sent.size());
            for (std::size_t i = 0; i < sent.size(); ++i)
                CHECK(got.events[i].data == sent[i]);
            CHECK(echo.send_errors.empty());
        }
    }
}

// ======================= Autobahn §12 / §13 =======================

namespace {

struct Variant {
    const char* name;
    DeflateOptions client;
    DeflateOptions server;
    std::size_t auto_fragment = 0;
};

DeflateOptions opts(bool server_nct, bool client_nct, std::uint8_t server_bits,
                    std::uint8_t client_bits) {
    DeflateOptions o;
    o.server_no_context_takeover = server_nct;
    o.client_no_context_takeover = client_nct;
    o.server_max_window_bits = server_bits;
    o.client_max_window_bits = client_bits;
    return o;
}

}  // namespace

TEST_CASE("§12/§13 1000 messages of 16 B-128 KiB echoed through a server, every offer variant") {
    // The suite's offers (client side) and accepts (server side), 13.1-13.6, plus 12.x defaults,
    // a low-memory server and the suite's auto-fragmentation.
    DeflateOptions low_memory = opts(true, true, 9, 9);
    low_memory.tuning.mem_level = 1;
    low_memory.tuning.release_idle_streams = true;
    const Variant variants[] = {
        {"12: defaults", {}, {}},
        {"13.1: client no takeover hint", opts(false, true, 15, 15), {}},
        {"13.2: server no takeover, server asks client's", opts(true, true, 15, 15),
         opts(false, true, 15, 15)},
        {"13.3: server window 8, client window 8", opts(false, true, 8, 15),
         opts(false, false, 15, 8)},
        {"13.4: windows 15", opts(false, true, 15, 15), opts(false, false, 15, 15)},
        {"13.5: no takeover, windows 8", opts(true, true, 8, 15), opts(false, true, 15, 8)},
        {"13.6: no takeover, windows 15", opts(true, true, 15, 15), opts(false, true, 15, 15)},
        {"low-memory server", {}, low_memory},
        {"12.x.11+: auto-fragment 256", {}, {}, 256},
    };
    static constexpr std::size_t kSizes[] = {16,   64,    256,   1024,  4096,
                                             8192, 16384, 32768, 65536, 131072};
    for (const Variant& variant : variants) {
        CAPTURE(variant.name);
        Variant v = variant;
        // zlib's level 6 runs at ~20 MB/s here, level 1 at ~120 MB/s: the defaults case keeps 6,
        // the others use 1 so the test stays quick (the engine's code paths are the same).
        if (&variant != &variants[0]) {
            v.client.tuning.compression_level = 1;
            v.server.tuning.compression_level = 1;
        }
        const Negotiated n = negotiate(v.client, v.server);
        ConnectionOptions client_options = n.client;
        client_options.auto_fragment_size = v.auto_fragment;
        Connection server(Role::server, n.server);
        Connection client(Role::client, client_options);
        Recorder echo(server, true);
        Recorder got(client, false);
        std::size_t wire_bytes = 0;
        std::size_t payload_bytes = 0;
        std::size_t mismatches = 0;
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < 1000; ++i) {
            const bool text = (i / 10) % 2 == 0;
            const std::size_t size = kSizes[i % std::size(kSizes)];
            const Bytes m = corpus_slice(i * 7919, size, text);
            REQUIRE(client.send(text ? Opcode::text : Opcode::binary, m) == Error::none);
            wire_bytes += client.buffered_amount();
            payload_bytes += size;
            transfer(client, server, echo, 65536);
            transfer(server, client, got, 65536);
            REQUIRE(got.events.size() == i + 1);
            if (got.events[i].data != m ||
                got.events[i].opcode != (text ? op::kText : op::kBinary)) {
                ++mismatches;
            }
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        CHECK(mismatches == 0);
        CHECK(echo.send_errors.empty());
        CHECK(wire_bytes < payload_bytes);
        std::printf("%-45s ratio %.3f, %.1f MB echoed in %.2f s\n", v.name,
                    static_cast<double>(wire_bytes) / static_cast<double>(payload_bytes),
                    static_cast<double>(payload_bytes) / 1e6, seconds);
    }
}

// ======================= Memory per connection =======================

namespace {

struct ZlibMeter {
    std::size_t live = 0;
    static void* allocate(void* opaque, std::size_t n) {
        auto* p = static_cast<std::size_t*>(std::malloc(n + sizeof(std::max_align_t)));
        *p = n;
        static_cast<ZlibMeter*>(opaque)->live += n;
        return reinterpret_cast<std::uint8_t*>(p) + sizeof(std::max_align_t);
    }
    static void release(void* opaque, void* q) {
        auto* p = reinterpret_cast<std::size_t*>(static_cast<std::uint8_t*>(q) -
                                                 sizeof(std::max_align_t));
        static_cast<ZlibMeter*>(opaque)->live -= *p;
        std::free(p);
    }
};

}  // namespace

TEST_CASE("heap per connection with and without deflate, and release of idle zlib streams") {
    struct Config {
        const char* name;
        bool deflate;
        DeflateParams params;
        DeflateTuning tuning;
    };
    DeflateParams no_takeover;
    no_takeover.server_no_context_takeover = true;
    no_takeover.client_no_context_takeover = true;
    DeflateParams small_windows;
    small_windows.server_max_window_bits = 9;
    small_windows.client_max_window_bits = 9;
    DeflateTuning small_tuning;
    small_tuning.mem_level = 1;
    DeflateTuning release;
    release.release_idle_streams = true;
    const Config configs[] = {
        {"no deflate", false, {}, {}},
        {"deflate, defaults (takeover, windows 15, memLevel 8)", true, {}, {}},
        {"deflate, windows 9, memLevel 1", true, small_windows, small_tuning},
        {"deflate, no takeover, streams released", true, no_takeover, release},
    };
    constexpr std::size_t kConnections = 20;
    std::printf("per server connection after one 2 KiB echo (bytes): heap zlib total\n");
    std::size_t zlib_per_conn[std::size(configs)] = {};
    std::size_t heap_per_conn[std::size(configs)] = {};
    for (std::size_t ci = 0; ci < std::size(configs); ++ci) {
        const Config& cfg = configs[ci];
        ZlibMeter meter;
        DeflateTuning tuning = cfg.tuning;
        tuning.allocator = {&ZlibMeter::allocate, &ZlibMeter::release, &meter};
        ConnectionOptions o;
        if (cfg.deflate) o.deflate = DeflateConfig{cfg.params, tuning};
        ConnectionOptions peer_options;
        if (cfg.deflate) peer_options.deflate = DeflateConfig{cfg.params, {}};
        const Bytes m = corpus_slice(0, 2048, true);
        std::vector<std::unique_ptr<Connection>> conns;
        Connection peer(Role::client, peer_options);
        Recorder sink(peer, false);
        const std::size_t heap_before = heap_live_bytes.load();
        for (std::size_t i = 0; i < kConnections; ++i) {
            conns.push_back(std::make_unique<Connection>(Role::server, o));
            Connection client(Role::client, peer_options);
            REQUIRE(client.send_text({reinterpret_cast<const char*>(m.data()), m.size()}) ==
                    Error::none);
            Recorder echo(*conns.back(), true);
            transfer(client, *conns.back(), echo);
            transfer(*conns.back(), peer, sink);
            REQUIRE(echo.events.size() == 1);
        }
        heap_per_conn[ci] = (heap_live_bytes.load() - heap_before) / kConnections;
        zlib_per_conn[ci] = meter.live / kConnections;
        std::printf("  %-55s %7zu %7zu %7zu\n", cfg.name, heap_per_conn[ci], zlib_per_conn[ci],
                    heap_per_conn[ci] + zlib_per_conn[ci]);
        conns.clear();
        CHECK(meter.live == 0);  // everything zlib took is back once the connections are gone
    }
    CHECK(zlib_per_conn[0] == 0);
    CHECK(zlib_per_conn[1] > 300 * 1024);  // both directions' streams, full size
    CHECK(zlib_per_conn[2] < 24 * 1024);
    CHECK(zlib_per_conn[3] == 0);  // idle: nothing held between messages
    CHECK(heap_per_conn[1] < heap_per_conn[0] + 64 * 1024);
}
