// proto::Connection: the send API and its misuse errors, zero-copy output (send_reference,
// send_shared), the on_close guarantee, streaming mode, a client/server round-trip property test,
// and a proof that the unfragmented receive path allocates nothing.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <new>
#include <random>

#include "conformance/peer.hpp"
#include "support/heap_counter.hpp"

using namespace wsx::conformance;
using wsx::proto::DataChunk;
using wsx::proto::encode_shared_frame;
using wsx::proto::IoSlice;
using wsx::proto::SharedBuffer;
using wsx::testing::heap_allocations;
using wsx::testing::heap_largest_allocation;
namespace close_code = wsx::proto::close_code;

namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Everything pending, without consuming it.
Bytes peek_output(const Connection& conn) {
    std::vector<IoSlice> iov(4096);
    const std::size_t n = conn.pending_output(iov);
    Bytes out;
    for (std::size_t i = 0; i < n; ++i) {
        const auto* p = static_cast<const std::uint8_t*>(iov[i].data);
        out.insert(out.end(), p, p + iov[i].size);
    }
    return out;
}

Bytes take_output(Connection& conn) {
    Bytes out;
    drain(conn, out);
    return out;
}

std::vector<DecodedFrame> take_frames(Connection& conn) {
    const Bytes out = take_output(conn);
    DecodeResult d = decode_all(out);
    CHECK(d.leftover == 0);
    return std::move(d.frames);
}

// Frames a client would send: masked.
Bytes client_frames(std::initializer_list<RawFrame> frames) {
    KeySource keys(99);
    Bytes out;
    for (RawFrame f : frames) {
        f.mask = keys.next();
        append_encoded(out, f);
    }
    return out;
}

// Feeds `bytes` (a fresh copy) to a connection.
template <typename Handler>
wsx::proto::ReceiveResult feed(Connection& conn, const Bytes& bytes, Handler& handler) {
    Bytes copy = bytes;
    return conn.receive(std::span<std::uint8_t>(copy), handler);
}

// Frames the peer of `role` sends: masked when we are the server.
Bytes peer_frames(Role role, std::initializer_list<RawFrame> frames) {
    if (role == Role::server) return client_frames(frames);
    Bytes out;
    for (const RawFrame& f : frames)
        append_encoded(out, f);
    return out;
}

}  // namespace

// ======================= Sending =======================

TEST_CASE("server sends unmasked frames with the smallest length encoding") {
    Connection conn(Role::server);
    CHECK(conn.send_text("hello") == Error::none);
    CHECK(take_output(conn) == Bytes{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'});

    for (std::size_t n : {0, 125, 126, 65535, 65536, 70000}) {
        CAPTURE(n);
        const Bytes payload = binary_pattern(n);
        CHECK(conn.send_binary(payload) == Error::none);
        CHECK(conn.buffered_amount() == wsx::proto::frame_header_size(n, false) + n);
        CHECK(take_output(conn) == encode(frame_of(op::kBinary, payload)));
    }
}

TEST_CASE("client masks each frame with its own key and the payload decodes exactly") {
    Connection conn(Role::client);
    std::set<MaskKey> keys;
    for (std::size_t i = 0; i < 200; ++i) {
        const Bytes payload = binary_pattern(i * 3, static_cast<std::uint32_t>(i));
        REQUIRE(conn.send_binary(payload) == Error::none);
        const auto frames = take_frames(conn);
        REQUIRE(frames.size() == 1);
        CHECK(frames[0].masked);
        CHECK(frames[0].minimal_length);
        CHECK(frames[0].opcode == op::kBinary);
        CHECK(frames[0].payload == payload);
        CHECK(keys.insert(frames[0].key).second);
    }
}

TEST_CASE("send_frame sends a fragmented message with control frames between fragments") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        CHECK(conn.send_frame(Opcode::text, as_bytes("frag1 "), false) == Error::none);
        CHECK(conn.ping(as_bytes("between")) == Error::none);
        CHECK(conn.send_frame(Opcode::continuation, as_bytes("frag2 "), false) == Error::none);
        CHECK(conn.pong(as_bytes("unsolicited")) == Error::none);
        CHECK(conn.send_frame(Opcode::continuation, as_bytes("frag3"), true) == Error::none);
        CHECK(conn.send_text("next") == Error::none);  // the message is closed
        const auto frames = take_frames(conn);
        CHECK(summarize(frames) ==
              summarize(std::vector<ExpectedFrame>{{op::kText, bytes_of("frag1 "), false},
                                                   {op::kPing, bytes_of("between")},
                                                   {op::kContinuation, bytes_of("frag2 "), false},
                                                   {op::kPong, bytes_of("unsolicited")},
                                                   {op::kContinuation, bytes_of("frag3"), true},
                                                   {op::kText, bytes_of("next")}}));
        for (const auto& f : frames)
            CHECK(f.masked == (role == Role::client));
    }
}

TEST_CASE("ping, pong and close put the right control frames on the wire") {
    Connection conn(Role::server);
    CHECK(conn.ping() == Error::none);
    CHECK(conn.ping(binary_pattern(125)) == Error::none);
    CHECK(conn.pong(as_bytes("p")) == Error::none);
    CHECK(conn.close(close_code::kGoingAway, "bye") == Error::none);
    check_output(Role::server, take_output(conn),
                 {{op::kPing, {}},
                  {op::kPing, binary_pattern(125)},
                  {op::kPong, bytes_of("p")},
                  {op::kClose, close_payload(1001, "bye")}});
    CHECK(conn.state() == State::closing);

    Connection plain(Role::server);
    CHECK(plain.close() == Error::none);
    check_output(Role::server, take_output(plain), {{op::kClose, close_payload(1000)}});

    Connection empty(Role::server);
    CHECK(empty.close(0) == Error::none);  // code 0: a close frame with no payload
    check_output(Role::server, take_output(empty), {{op::kClose, {}}});

    Connection longest(Role::server);
    const std::string reason(123, 'r');
    CHECK(longest.close(4000, reason) == Error::none);
    check_output(Role::server, take_output(longest), {{op::kClose, close_payload(4000, reason)}});
}

TEST_CASE("sending after close() is refused with not_open and queues nothing") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        REQUIRE(conn.close() == Error::none);
        const std::size_t queued = conn.buffered_amount();
        const Bytes payload = bytes_of("late");
        CHECK(conn.send_text("late") == Error::not_open);
        CHECK(conn.send_binary(payload) == Error::not_open);
        CHECK(conn.send(Opcode::binary, payload) == Error::not_open);
        CHECK(conn.send_reference(Opcode::binary, payload) == Error::not_open);
        CHECK(conn.send_frame(Opcode::text, payload, false) == Error::not_open);
        CHECK(conn.ping(payload) == Error::not_open);
        CHECK(conn.pong(payload) == Error::not_open);
        CHECK(conn.close() == Error::not_open);
        if (role == Role::server) {
            CHECK(conn.send_shared(encode_shared_frame(Opcode::text, payload)) == Error::not_open);
        }
        CHECK(conn.buffered_amount() == queued);
    }
}

TEST_CASE("sending after the peer's close or a failure is refused with not_open") {
    for (Role role : kBothRoles) {
        for (const Bytes& input : {peer_frames(role, {frame_of(op::kClose, {})}),
                                   peer_frames(role, {frame_of(3, {})})}) {
            Connection conn(role);
            Recorder rec(conn);
            feed(conn, input, rec);
            REQUIRE(conn.state() == State::closed);
            const std::size_t queued = conn.buffered_amount();
            CHECK(conn.send_text("late") == Error::not_open);
            CHECK(conn.ping() == Error::not_open);
            CHECK(conn.close() == Error::not_open);
            CHECK(conn.buffered_amount() == queued);
        }
    }
}

TEST_CASE("misuse of the send API is refused with a precise error and queues nothing") {
    for (Role role : kBothRoles) {
        CAPTURE(std::string(role_name(role)));
        Connection conn(role);
        const Bytes small = bytes_of("x");
        const Bytes too_long = binary_pattern(126);

        // §5.4: a continuation needs an open message; a new message needs none open.
        CHECK(conn.send_frame(Opcode::continuation, small, true) == Error::send_no_message_open);
        CHECK(conn.send_frame(Opcode::continuation, small, false) == Error::send_no_message_open);
        CHECK(conn.send(Opcode::continuation, small) == Error::send_no_message_open);
        // §5.5: control payloads are at most 125 bytes and never fragmented.
        CHECK(conn.ping(too_long) == Error::send_control_too_long);
        CHECK(conn.pong(too_long) == Error::send_control_too_long);
        CHECK(conn.send_frame(Opcode::ping, too_long, true) == Error::send_control_too_long);
        CHECK(conn.send_frame(Opcode::ping, small, false) == Error::control_frame_fragmented);
        CHECK(conn.send_frame(Opcode::close, close_payload(1000), true) ==
              Error::send_invalid_close_code);
        // Control and reserved opcodes are not messages.
        CHECK(conn.send(Opcode::ping, small) != Error::none);
        CHECK(conn.send(Opcode::close, small) != Error::none);
        CHECK(conn.send(static_cast<Opcode>(3), small) == Error::reserved_opcode);
        CHECK(conn.send_frame(static_cast<Opcode>(3), small, true) == Error::reserved_opcode);
        // §8.1: text must be UTF-8.
        CHECK(conn.send_text("\xC0\x80") == Error::send_invalid_utf8);
        CHECK(conn.send(Opcode::text, Bytes{0xED, 0xA0, 0x80}) == Error::send_invalid_utf8);
        CHECK(conn.send_reference(Opcode::text, Bytes{0xE2, 0x82}) == Error::send_invalid_utf8);
        // §7.4: close codes an application may not send, and reasons that do not fit or are not
        // UTF-8.
        for (std::uint16_t code : {1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000}) {
            CAPTURE(code);
            CHECK(conn.close(code) == Error::send_invalid_close_code);
        }
        CHECK(conn.close(0, "reason without a code") == Error::send_invalid_close_code);
        CHECK(conn.close(1000, std::string(124, 'r')) == Error::send_control_too_long);
        CHECK(conn.close(1000, "\xFF") == Error::send_invalid_utf8);
        CHECK(conn.buffered_amount() == 0);
        CHECK(conn.state() == State::open);

        // While a fragmented message is being sent, no other message may start.
        REQUIRE(conn.send_frame(Opcode::binary, small, false) == Error::none);
        const std::size_t queued = conn.buffered_amount();
        CHECK(conn.send_text("other") == Error::send_message_open);
        CHECK(conn.send_binary(small) == Error::send_message_open);
        CHECK(conn.send_reference(Opcode::binary, small) == Error::send_message_open);
        CHECK(conn.send_frame(Opcode::text, small, true) == Error::send_message_open);
        if (role == Role::server) {
            CHECK(conn.send_shared(encode_shared_frame(Opcode::text, small)) ==
                  Error::send_message_open);
        }
        CHECK(conn.buffered_amount() == queued);
        // ... but control frames may go between fragments.
        CHECK(conn.ping(small) == Error::none);
        CHECK(conn.send_frame(Opcode::continuation, small, true) == Error::none);
        CHECK(conn.send_text("other") == Error::none);
    }
}

// RFC 6455 §5.2: a peer must fail the connection on a reserved opcode, so never send one.
TEST_CASE("send_frame refuses the reserved control opcodes 11-15") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        for (std::uint8_t opcode = 11; opcode <= 15; ++opcode) {
            CAPTURE(static_cast<int>(opcode));
            CHECK(conn.send_frame(static_cast<Opcode>(opcode), as_bytes("x"), true) ==
                  Error::reserved_opcode);
        }
        for (std::uint8_t opcode = 3; opcode <= 7; ++opcode) {
            CAPTURE(static_cast<int>(opcode));
            CHECK(conn.send_frame(static_cast<Opcode>(opcode), as_bytes("x"), true) ==
                  Error::reserved_opcode);
        }
        CHECK(conn.buffered_amount() == 0);
    }
}

TEST_CASE("validate_outgoing_utf8 = false lets the application send any text payload") {
    ConnectionOptions options;
    options.validate_outgoing_utf8 = false;
    Connection conn(Role::server, options);
    CHECK(conn.send_text("\xC0\x80") == Error::none);
    check_output(Role::server, take_output(conn), {{op::kText, {0xC0, 0x80}}});
}

TEST_CASE("auto_fragment_size splits outgoing messages into frames of at most that size") {
    for (Role role : kBothRoles) {
        ConnectionOptions options;
        options.auto_fragment_size = 4096;
        Connection conn(role, options);
        const Bytes big = text_pattern(10000);
        CHECK(conn.send(Opcode::text, big) == Error::none);
        CHECK(conn.send_binary(binary_pattern(4096)) == Error::none);  // exactly one frame
        CHECK(conn.send_binary({}) == Error::none);
        CHECK(conn.send_reference(Opcode::binary, binary_pattern(4097)) == Error::none);
        const auto frames = take_frames(conn);
        CHECK(summarize(frames) == summarize(std::vector<ExpectedFrame>{
                                       {op::kText, slice(big, 0, 4096), false},
                                       {op::kContinuation, slice(big, 4096, 8192), false},
                                       {op::kContinuation, slice(big, 8192, 10000), true},
                                       {op::kBinary, binary_pattern(4096)},
                                       {op::kBinary, {}},
                                       {op::kBinary, slice(binary_pattern(4097), 0, 4096), false},
                                       {op::kContinuation, {binary_pattern(4097)[4096]}, true}}));
    }
}

TEST_CASE("server send_reference queues the caller's bytes without copying them") {
    Connection conn(Role::server);
    Bytes payload = binary_pattern(3000);
    REQUIRE(conn.send_reference(Opcode::binary, payload) == Error::none);
    IoSlice iov[8];
    const std::size_t n = conn.pending_output(iov);
    REQUIRE(n == 2);
    CHECK(iov[0].size == 4);  // the header, owned by the queue
    CHECK(iov[1].data == payload.data());
    CHECK(iov[1].size == payload.size());
    // The bytes are read at write time, not at send time.
    payload[0] ^= 0xFF;
    Bytes expected = payload;
    check_output(Role::server, take_output(conn), {{op::kBinary, expected}});
}

TEST_CASE("server send_reference with a keep-alive buffer holds a reference until written") {
    Connection conn(Role::server);
    const SharedBuffer owner = SharedBuffer::copy_of(text_pattern(500));
    REQUIRE(conn.send_reference(Opcode::text, owner.bytes(), owner) == Error::none);
    CHECK(owner.use_count() == 2);
    IoSlice iov[8];
    REQUIRE(conn.pending_output(iov) == 2);
    CHECK(iov[1].data == owner.data());
    conn.consume_output(conn.buffered_amount() - 1);
    CHECK(owner.use_count() == 2);  // one byte of it is still unwritten
    conn.consume_output(1);
    CHECK(owner.use_count() == 1);
    CHECK_FALSE(conn.wants_write());
}

TEST_CASE("client send_reference copies and masks instead of referencing") {
    Connection conn(Role::client);
    Bytes payload = binary_pattern(3000);
    REQUIRE(conn.send_reference(Opcode::binary, payload) == Error::none);
    IoSlice iov[8];
    const std::size_t n = conn.pending_output(iov);
    for (std::size_t i = 0; i < n; ++i) {
        const auto* p = static_cast<const std::uint8_t*>(iov[i].data);
        CHECK_FALSE((p >= payload.data() && p < payload.data() + payload.size()));
    }
    const Bytes original = payload;
    payload.assign(payload.size(), 0);  // the copy no longer depends on the caller's bytes
    const auto frames = take_frames(conn);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0].masked);
    CHECK(frames[0].payload == original);
}

TEST_CASE("send_shared queues one encoded frame on many server connections without copying") {
    const Bytes payload = binary_pattern(70000);
    const SharedBuffer frame = encode_shared_frame(Opcode::binary, payload);
    CHECK(Bytes(frame.bytes().begin(), frame.bytes().end()) ==
          encode(frame_of(op::kBinary, payload)));
    Connection a(Role::server);
    Connection b(Role::server);
    REQUIRE(a.send_text("first") == Error::none);
    REQUIRE(a.send_shared(frame) == Error::none);
    REQUIRE(b.send_shared(frame) == Error::none);
    CHECK(frame.use_count() == 3);
    for (Connection* conn : {&a, &b}) {
        IoSlice iov[8];
        const std::size_t n = conn->pending_output(iov);
        REQUIRE(n >= 1);
        CHECK(iov[n - 1].data == frame.data());
        CHECK(iov[n - 1].size == frame.size());
    }
    check_output(Role::server, take_output(a),
                 {{op::kText, bytes_of("first")}, {op::kBinary, payload}});
    CHECK(frame.use_count() == 2);
    check_output(Role::server, take_output(b), {{op::kBinary, payload}});
    CHECK(frame.use_count() == 1);

    const SharedBuffer text = encode_shared_frame(Opcode::text, as_bytes("part"), false);
    CHECK(Bytes(text.bytes().begin(), text.bytes().end()) ==
          encode(frame_of(op::kText, bytes_of("part"), false)));
}

TEST_CASE("send_shared is refused in the client role, which must mask every frame") {
    Connection conn(Role::client);
    const SharedBuffer frame = encode_shared_frame(Opcode::text, as_bytes("hello"));
    CHECK(conn.send_shared(frame) == Error::shared_frame_client);
    CHECK(conn.buffered_amount() == 0);
    CHECK(frame.use_count() == 1);
}

TEST_CASE("consume_output may stop at any byte and the rest follows unchanged") {
    const SharedBuffer shared = encode_shared_frame(Opcode::binary, binary_pattern(700, 3));
    const Bytes referenced = binary_pattern(900, 4);
    auto fill = [&](Connection& conn) {
        REQUIRE(conn.send_text("hello") == Error::none);
        REQUIRE(conn.send_reference(Opcode::binary, referenced) == Error::none);
        REQUIRE(conn.ping(as_bytes("ping")) == Error::none);
        REQUIRE(conn.send_shared(shared) == Error::none);
        REQUIRE(conn.send_binary(binary_pattern(1500, 5)) == Error::none);
        REQUIRE(conn.send_reference(Opcode::text, as_bytes("tail")) == Error::none);
        REQUIRE(conn.close(1000, "done") == Error::none);
    };
    Connection reference_conn(Role::server);
    fill(reference_conn);
    const Bytes all = peek_output(reference_conn);
    REQUIRE(all.size() == reference_conn.buffered_amount());

    // One byte at a time.
    Connection conn(Role::server);
    fill(conn);
    for (std::size_t i = 0; i < all.size(); ++i) {
        CHECK(conn.buffered_amount() == all.size() - i);
        const Bytes rest = peek_output(conn);
        if (rest != slice(all, i, all.size())) {
            FAIL_CHECK("pending output wrong after consuming " << i << " bytes");
            break;
        }
        conn.consume_output(1);
    }
    CHECK_FALSE(conn.wants_write());
    CHECK(conn.buffered_amount() == 0);

    // Every split point in one step, then everything that is left.
    for (std::size_t k = 0; k <= all.size(); k += 7) {
        Connection c(Role::server);
        fill(c);
        c.consume_output(k);
        CHECK(peek_output(c) == slice(all, k, all.size()));
    }
}

TEST_CASE("output queued after a partial consume follows what is left") {
    Connection conn(Role::server);
    const Bytes big = binary_pattern(5000);
    REQUIRE(conn.send_reference(Opcode::binary, big) == Error::none);
    REQUIRE(conn.send_text("one") == Error::none);
    const Bytes all = peek_output(conn);
    conn.consume_output(2500);
    REQUIRE(conn.send_text("two") == Error::none);
    conn.consume_output(10);
    REQUIRE(conn.ping(as_bytes("three")) == Error::none);
    const Bytes expected =
        concat({slice(all, 2510, all.size()), encode(frame_of(op::kText, bytes_of("two"))),
                encode(frame_of(op::kPing, bytes_of("three")))});
    CHECK(peek_output(conn) == expected);
    CHECK(conn.buffered_amount() == expected.size());
}

TEST_CASE("random sends interleaved with random partial writes give the exact byte stream") {
    for (std::uint32_t seed = 1; seed <= 6; ++seed) {
        CAPTURE(seed);
        std::mt19937 rng(seed);
        Connection conn(Role::server);
        std::deque<Bytes> referenced;  // stable storage for send_reference without keep-alive
        Bytes expected;
        Bytes written;
        // Odd seeds write often (the queue keeps draining); even seeds let a backlog of many
        // segments build up, so consumed ones are dropped while others are still pending.
        const std::uint32_t write_one_in = seed % 2 == 1 ? 3 : 12;
        for (int step = 0; step < 3000; ++step) {
            const std::uint32_t what = rng() % write_one_in == 0 ? 4 : rng() % 4;
            const std::size_t n = rng() % 8 == 0 ? rng() % 100000 : rng() % 300;
            if (what == 0) {
                const Bytes payload = binary_pattern(n, static_cast<std::uint32_t>(step));
                REQUIRE(conn.send_binary(payload) == Error::none);
                append_encoded(expected, frame_of(op::kBinary, payload));
            } else if (what == 1) {
                referenced.push_back(binary_pattern(n, static_cast<std::uint32_t>(step)));
                REQUIRE(conn.send_reference(Opcode::binary, referenced.back()) == Error::none);
                append_encoded(expected, frame_of(op::kBinary, referenced.back()));
            } else if (what == 2) {
                const Bytes payload = binary_pattern(n, static_cast<std::uint32_t>(step));
                REQUIRE(conn.send_shared(encode_shared_frame(Opcode::binary, payload)) ==
                        Error::none);
                append_encoded(expected, frame_of(op::kBinary, payload));
            } else if (what == 3) {
                const Bytes payload = binary_pattern(n % 126, static_cast<std::uint32_t>(step));
                REQUIRE(conn.ping(payload) == Error::none);
                append_encoded(expected, frame_of(op::kPing, payload));
            } else {
                // A short write: gather a few slices, write a random part of them.
                IoSlice iov[4];
                const std::size_t count = conn.pending_output(std::span(iov, 1 + rng() % 4));
                std::size_t total = 0;
                for (std::size_t i = 0; i < count; ++i)
                    total += iov[i].size;
                const std::size_t take = total == 0 ? 0 : rng() % (total + 1);
                std::size_t left = take;
                for (std::size_t i = 0; i < count && left > 0; ++i) {
                    const std::size_t part = std::min(left, iov[i].size);
                    const auto* p = static_cast<const std::uint8_t*>(iov[i].data);
                    written.insert(written.end(), p, p + part);
                    left -= part;
                }
                conn.consume_output(take);
            }
            REQUIRE(conn.buffered_amount() == expected.size() - written.size());
        }
        drain(conn, written);
        CHECK(written.size() == expected.size());
        CHECK(written == expected);
    }
}

// A queue that never drains (a slow reader) must not keep every byte and segment ever queued.
TEST_CASE("a queue that never drains keeps only what is pending, under partial writes") {
    // Steady streaming to a slow reader: every write takes all but the last few hundred bytes,
    // so the queue never empties and no write ends on a frame boundary. The memory held must
    // follow what is pending (a few KiB), not everything ever sent (20 MB here).
    for (bool referenced : {false, true}) {
        CAPTURE(referenced);
        Connection conn(Role::server);
        const Bytes payload = binary_pattern(1000);
        heap_largest_allocation.store(0);
        Bytes written;
        std::size_t total_written = 0;
        for (int i = 0; i < 20000; ++i) {
            if (referenced) {
                REQUIRE(conn.send_reference(Opcode::binary, payload) == Error::none);
            } else {
                REQUIRE(conn.send_binary(payload) == Error::none);
            }
            const std::size_t pending = conn.buffered_amount();
            if (pending > 700) {
                const std::size_t take = pending - 300 - static_cast<std::size_t>(i % 7);
                conn.consume_output(take);
                total_written += take;
            }
        }
        CHECK(total_written > 19'000'000);
        CHECK(conn.buffered_amount() < 2000);
        CHECK(heap_largest_allocation.load() < 1024 * 1024);
    }
}

// ======================= on_close =======================

namespace {

struct CloseCounter {
    std::vector<CloseInfo> closes;
    std::vector<std::string> reasons;  // copies: CloseInfo::reason is valid during on_close only
    int messages = 0;
    void on_message(Opcode, std::span<const std::uint8_t>) { ++messages; }
    void on_close(const CloseInfo& info) {
        closes.push_back(info);
        reasons.emplace_back(info.reason);
    }
};

}  // namespace

TEST_CASE("on_close is called once when the peer closes, and never again") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        CloseCounter h;
        feed(conn, peer_frames(role, {frame_of(op::kClose, close_payload(4001, "peer reason"))}),
             h);
        REQUIRE(h.closes.size() == 1);
        CHECK(h.closes[0].code == 4001);
        CHECK(h.reasons[0] == "peer reason");
        CHECK(h.closes[0].clean);
        CHECK(h.closes[0].error == Error::none);
        feed(conn, peer_frames(role, {frame_of(op::kClose, {}), frame_of(op::kText, {})}), h);
        conn.transport_closed(h);
        conn.transport_closed(h);
        CHECK(h.closes.size() == 1);
        CHECK(h.messages == 0);
    }
}

TEST_CASE("after our close, the peer's close completes the handshake with one on_close") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        CloseCounter h;
        REQUIRE(conn.close(close_code::kGoingAway, "shutting down") == Error::none);
        CHECK(conn.state() == State::closing);
        CHECK(conn.wants_read());
        CHECK_FALSE(conn.close_transport_now());
        const auto ours = take_frames(conn);
        REQUIRE(ours.size() == 1);
        CHECK(ours[0].payload == close_payload(1001, "shutting down"));

        feed(conn, peer_frames(role, {frame_of(op::kClose, close_payload(1000))}), h);
        REQUIRE(h.closes.size() == 1);
        CHECK(h.closes[0].code == 1000);  // the peer's code
        CHECK(h.closes[0].clean);
        CHECK(h.closes[0].error == Error::none);
        CHECK(conn.state() == State::closed);
        CHECK_FALSE(conn.wants_write());  // the close is not echoed a second time
        CHECK(conn.close_transport_now() == (role == Role::server));
        conn.transport_closed(h);
        CHECK(h.closes.size() == 1);
    }
}

TEST_CASE("after our close, the peer's messages are still read but pings are not answered") {
    // RFC 6455 §5.5.1: after sending a close, an endpoint sends no more data; it may still receive.
    for (Role role : kBothRoles) {
        Connection conn(role);
        Recorder rec(conn);
        REQUIRE(conn.close() == Error::none);
        take_output(conn);
        feed(conn,
             peer_frames(role, {frame_of(op::kText, bytes_of("in flight")),
                                frame_of(op::kPing, bytes_of("p")), frame_of(op::kClose, {})}),
             rec);
        CHECK(summarize(rec.events) ==
              summarize(std::vector<Event>{
                  Event::message(Opcode::text, bytes_of("in flight")), Event::ping(bytes_of("p")),
                  Event::close(close_code::kNoStatus, "", true, Error::none)}));
        CHECK(rec.send_errors == std::vector<Error>{Error::not_open});  // the echo was refused
        CHECK_FALSE(conn.wants_write());
    }
}

TEST_CASE("our close followed by the transport ending reports 1006 once") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        CloseCounter h;
        REQUIRE(conn.close() == Error::none);
        conn.transport_closed(h);
        REQUIRE(h.closes.size() == 1);
        CHECK(h.closes[0].code == close_code::kAbnormal);
        CHECK_FALSE(h.closes[0].clean);
        CHECK(h.closes[0].error == Error::abnormal_closure);
        CHECK(conn.state() == State::closed);
        feed(conn, peer_frames(role, {frame_of(op::kClose, {})}), h);
        conn.transport_closed(h);
        CHECK(h.closes.size() == 1);
    }
}

TEST_CASE("a protocol failure reports on_close once with the error and the code sent") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        CloseCounter h;
        const auto r = feed(
            conn,
            peer_frames(role, {frame_of(op::kText, bytes_of("ok")), frame_of(op::kText, {0xFF}),
                               frame_of(op::kText, bytes_of("never"))}),
            h);
        CHECK(r.error == Error::invalid_utf8);
        CHECK(h.messages == 1);
        REQUIRE(h.closes.size() == 1);
        CHECK(h.closes[0].code == 1007);
        CHECK_FALSE(h.closes[0].clean);
        CHECK(h.closes[0].error == Error::invalid_utf8);
        CHECK(conn.close_transport_now());
        CHECK_FALSE(conn.wants_read());
        const auto r2 = feed(conn, peer_frames(role, {frame_of(op::kClose, {})}), h);
        CHECK(r2.error == Error::none);
        conn.transport_closed(h);
        CHECK(h.closes.size() == 1);
        CHECK(h.messages == 1);
    }
}

TEST_CASE("a protocol failure after our close sends no second close frame") {
    // §5.5.1: an endpoint sends at most one close frame; the failure still ends the connection.
    for (Role role : kBothRoles) {
        Connection conn(role);
        CloseCounter h;
        REQUIRE(conn.close(1000) == Error::none);
        take_output(conn);
        const auto r = feed(conn,
                            peer_frames(role, {frame_of(op::kText, bytes_of("ok")),
                                               frame_of(5, bytes_of("reserved"))}),
                            h);
        CHECK(r.error == Error::reserved_opcode);
        CHECK(h.messages == 1);
        REQUIRE(h.closes.size() == 1);
        CHECK(h.closes[0].code == 1002);
        CHECK(h.closes[0].error == Error::reserved_opcode);
        CHECK_FALSE(h.closes[0].clean);
        CHECK(conn.state() == State::closed);
        CHECK(conn.close_transport_now());
        CHECK_FALSE(conn.wants_write());
    }
}

TEST_CASE("the transport ending before any close reports 1006 once and stops reading") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        CloseCounter h;
        // Half a message has arrived.
        feed(conn, peer_frames(role, {frame_of(op::kText, bytes_of("partial"), false)}), h);
        conn.transport_closed(h);
        REQUIRE(h.closes.size() == 1);
        CHECK(h.closes[0].code == close_code::kAbnormal);
        CHECK(h.closes[0].error == Error::abnormal_closure);
        CHECK_FALSE(h.closes[0].clean);
        CHECK(conn.state() == State::closed);
        CHECK_FALSE(conn.wants_read());
        CHECK(conn.close_transport_now());
        const Bytes more = peer_frames(role, {frame_of(op::kContinuation, bytes_of("!"), true)});
        const auto r = feed(conn, more, h);
        CHECK(r.consumed == more.size());
        conn.transport_closed(h);
        CHECK(h.closes.size() == 1);
        CHECK(h.messages == 0);
        CHECK(conn.send_text("x") == Error::not_open);
    }
}

TEST_CASE("the handler may close the connection from inside a callback") {
    struct Closer {
        Connection* conn;
        std::vector<std::string> messages;
        int closes = 0;
        void on_message(Opcode, std::span<const std::uint8_t> p) {
            messages.emplace_back(p.begin(), p.end());
            if (messages.size() == 1) CHECK(conn->close(1000, "enough") == Error::none);
        }
        void on_close(const CloseInfo& info) {
            ++closes;
            CHECK(info.clean);
        }
    };
    Connection conn(Role::server);
    Closer h{&conn, {}, 0};
    feed(conn,
         client_frames({frame_of(op::kText, bytes_of("one")), frame_of(op::kText, bytes_of("two")),
                        frame_of(op::kClose, close_payload(1000))}),
         h);
    CHECK(h.messages == std::vector<std::string>{"one", "two"});
    CHECK(h.closes == 1);
    check_output(Role::server, take_output(conn), {{op::kClose, close_payload(1000, "enough")}});
    CHECK(conn.close_transport_now());
}

// ======================= Receiving =======================

TEST_CASE("a whole unfragmented frame is delivered in place, as a span into the input") {
    struct InPlace {
        const std::uint8_t* begin = nullptr;
        const std::uint8_t* end = nullptr;
        bool inside = false;
        int messages = 0;
        void on_message(Opcode, std::span<const std::uint8_t> p) {
            ++messages;
            inside = p.data() >= begin && p.data() + p.size() <= end;
        }
    };
    for (Role role : kBothRoles) {
        for (std::size_t n : {1, 125, 1024, 65535}) {
            Connection conn(role);
            Bytes input = peer_frames(role, {frame_of(op::kBinary, binary_pattern(n))});
            InPlace h{input.data(), input.data() + input.size(), false, 0};
            conn.receive(std::span<std::uint8_t>(input), h);
            CHECK(h.messages == 1);
            CHECK(h.inside);
        }
    }
}

TEST_CASE("a run of whole text frames is UTF-8 checked frame by frame, ASCII or not") {
    // The fast path learns "all ASCII" while unmasking and skips the validator only then; every
    // other payload is validated, on both sides of the 32-byte inline/vector boundary.
    struct Collector {
        std::vector<Bytes> messages;
        std::vector<CloseInfo> closes;
        void on_message(Opcode, std::span<const std::uint8_t> p) {
            messages.emplace_back(p.begin(), p.end());
        }
        void on_close(const CloseInfo& info) { closes.push_back(info); }
    };
    const auto text_of = [](std::size_t n, std::string_view unit) {
        Bytes out;
        while (out.size() + unit.size() <= n)
            out.insert(out.end(), unit.begin(), unit.end());
        out.resize(n, 'a');
        return out;
    };
    for (Role role : kBothRoles) {
        for (const std::size_t n : {1, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 200, 1000, 70000}) {
            const Bytes ascii = text_of(n, "ok ");
            const Bytes multibyte = text_of(n, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
            for (const std::size_t at : {std::size_t{0}, n / 2, n - 1}) {
                for (const std::string_view bad : {"\xFF", "\xC0", "\xED\xA0\x80"}) {
                    Bytes invalid = ascii;
                    invalid.resize(at);
                    invalid.insert(invalid.end(), bad.begin(), bad.end());
                    invalid.resize(std::max(invalid.size(), n), 'b');
                    INFO("role " << (role == Role::server ? "server" : "client") << ", size " << n
                                 << ", bad bytes at " << at);
                    Connection conn(role);
                    Collector h;
                    const auto r =
                        feed(conn,
                             peer_frames(
                                 role, {frame_of(op::kText, ascii), frame_of(op::kText, multibyte),
                                        frame_of(op::kText, invalid), frame_of(op::kText, ascii)}),
                             h);
                    CHECK(r.error == Error::invalid_utf8);
                    REQUIRE(h.messages.size() == 2);
                    CHECK(h.messages[0] == ascii);
                    CHECK(h.messages[1] == multibyte);
                    REQUIRE(h.closes.size() == 1);
                    CHECK(h.closes[0].code == 1007);
                }
            }
        }
    }
}

TEST_CASE("a handler that ends the transport inside on_message gets no further frames") {
    struct Ender {
        Connection* conn;
        int messages = 0;
        int closes = 0;
        void on_message(Opcode, std::span<const std::uint8_t>) {
            if (++messages == 2) conn->transport_closed(*this);
        }
        void on_close(const CloseInfo& info) {
            ++closes;
            CHECK(info.code == close_code::kAbnormal);
        }
    };
    for (Role role : kBothRoles) {
        Connection conn(role);
        Ender h{&conn};
        const Bytes input = peer_frames(
            role, {frame_of(op::kBinary, bytes_of("1")), frame_of(op::kText, bytes_of("2")),
                   frame_of(op::kBinary, bytes_of("3")), frame_of(op::kText, bytes_of("4"))});
        const auto r = feed(conn, input, h);
        CHECK(r.consumed == input.size());
        CHECK(h.messages == 2);
        CHECK(h.closes == 1);
        CHECK_FALSE(conn.wants_read());
    }
}

TEST_CASE("receive reports the whole input consumed, also after the connection closes") {
    Connection conn(Role::server);
    CloseCounter h;
    const Bytes input = client_frames({frame_of(op::kText, bytes_of("a")), frame_of(op::kClose, {}),
                                       frame_of(op::kText, bytes_of("b"))});
    const auto r = feed(conn, input, h);
    CHECK(r.consumed == input.size());
    CHECK(r.error == Error::none);
    CHECK(h.messages == 1);
    const auto again = feed(conn, input, h);
    CHECK(again.consumed == input.size());
    CHECK(h.messages == 1);
}

TEST_CASE("receive accepts empty input in every state") {
    for (Role role : kBothRoles) {
        Connection conn(role);
        Recorder rec(conn);
        const Bytes input = peer_frames(role, {frame_of(op::kText, bytes_of("hello"))});
        // Empty reads between every byte: before a frame, inside its header and its payload.
        for (std::size_t i = 0; i < input.size(); ++i) {
            Bytes empty;
            const auto r0 = conn.receive(std::span<std::uint8_t>(empty), rec);
            CHECK(r0.consumed == 0);
            CHECK(r0.error == Error::none);
            Bytes one{input[i]};
            CHECK(conn.receive(std::span<std::uint8_t>(one), rec).consumed == 1);
        }
        CHECK(summarize(rec.events) ==
              summarize(Event::message(Opcode::text, bytes_of("hello"))) + "\n");
    }
}

TEST_CASE("auto_pong = false leaves pings to the handler") {
    ConnectionOptions options;
    options.auto_pong = false;
    Connection conn(Role::server, options);
    Recorder rec(conn);
    feed(conn, client_frames({frame_of(op::kPing, bytes_of("p"))}), rec);
    CHECK(summarize(rec.events) == summarize(Event::ping(bytes_of("p"))) + "\n");
    CHECK_FALSE(conn.wants_write());
}

TEST_CASE("accessors report role, options and state") {
    ConnectionOptions options;
    options.max_message_size = 1234;
    Connection conn(Role::client, options);
    CHECK(conn.role() == Role::client);
    CHECK(conn.options().max_message_size == 1234);
    CHECK(conn.state() == State::open);
    CHECK(conn.wants_read());
    CHECK_FALSE(conn.wants_write());
    CHECK_FALSE(conn.close_transport_now());
}

// ======================= Streaming mode =======================

namespace {

struct StreamRecorder {
    struct Message {
        Opcode opcode;
        Bytes data;
        bool complete = false;
        int chunks = 0;
    };
    std::vector<Message> messages;
    std::vector<std::string> order;  // "chunk", "ping", "close"
    std::vector<CloseInfo> closes;
    bool flags_ok = true;

    void on_data(const DataChunk& c) {
        order.emplace_back("chunk");
        // `first` exactly on the first piece of a message, `last` exactly on its final piece.
        const bool expect_first = messages.empty() || messages.back().complete;
        if (c.first != expect_first) flags_ok = false;
        if (c.first) messages.push_back({c.opcode, {}, false, 0});
        if (messages.empty()) return;
        Message& m = messages.back();
        if (c.opcode != m.opcode) flags_ok = false;
        m.data.insert(m.data.end(), c.data.begin(), c.data.end());
        ++m.chunks;
        m.complete = c.last;
    }
    void on_ping(std::span<const std::uint8_t>) { order.emplace_back("ping"); }
    void on_close(const CloseInfo& info) {
        order.emplace_back("close");
        closes.push_back(info);
    }
};

}  // namespace

TEST_CASE("streaming mode: chunks concatenate to each message, first and last flags exact") {
    for (Role role : kBothRoles) {
        const Bytes text = text_pattern(20000);
        const Bytes binary = binary_pattern(50000);
        Bytes input = peer_frames(
            role,
            {frame_of(op::kText, slice(text, 0, 7000), false), frame_of(op::kPing, bytes_of("p")),
             frame_of(op::kContinuation, slice(text, 7000, 7000), false),
             frame_of(op::kContinuation, slice(text, 7000, 20000), true),
             frame_of(op::kBinary, binary), frame_of(op::kText, {}),
             frame_of(op::kBinary, {}, false), frame_of(op::kContinuation, bytes_of("z"), true)});
        for (const Feeding& feeding : standard_feedings()) {
            CAPTURE(feeding.name());
            Connection conn(role);
            StreamRecorder h;
            std::size_t at = 0;
            for (std::size_t n : feeding.chunks(input.size())) {
                Bytes chunk = slice(input, at, at + n);
                CHECK(conn.receive(std::span<std::uint8_t>(chunk), h).error == Error::none);
                at += n;
            }
            CHECK(h.flags_ok);
            REQUIRE(h.messages.size() == 4);
            CHECK(h.messages[0].opcode == Opcode::text);
            CHECK(h.messages[0].data == text);
            CHECK(h.messages[1].opcode == Opcode::binary);
            CHECK(h.messages[1].data == binary);
            CHECK(h.messages[2].opcode == Opcode::text);
            CHECK(h.messages[2].data.empty());
            CHECK(h.messages[3].data == bytes_of("z"));
            for (const auto& m : h.messages)
                CHECK(m.complete);
            if (feeding.kind == Feeding::Kind::whole) {
                CHECK(h.messages[1].chunks == 1);  // a whole frame is one chunk
                // The ping between fragments comes between the message's chunks.
                CHECK(h.order[0] == "chunk");
                CHECK(h.order[1] == "ping");
            }
            check_output(role, take_output(conn), {{op::kPong, bytes_of("p")}});
        }
    }
}

TEST_CASE("streaming mode: invalid UTF-8 never completes the message and fails with 1007") {
    for (Role role : kBothRoles) {
        const Bytes good = text_pattern(3000);
        const Bytes input = peer_frames(
            role,
            {frame_of(op::kText, good, false),
             frame_of(op::kContinuation, concat({slice(good, 0, 100), Bytes{0xED, 0xA0}}), false),
             frame_of(op::kContinuation, bytes_of("rest"), true)});
        for (const Feeding& feeding : standard_feedings()) {
            CAPTURE(feeding.name());
            Connection conn(role);
            StreamRecorder h;
            std::size_t at = 0;
            for (std::size_t n : feeding.chunks(input.size())) {
                Bytes chunk = slice(input, at, at + n);
                conn.receive(std::span<std::uint8_t>(chunk), h);
                at += n;
            }
            REQUIRE(h.closes.size() == 1);
            CHECK(h.closes[0].code == 1007);
            REQUIRE(h.messages.size() == 1);
            CHECK_FALSE(h.messages[0].complete);
            // Nothing from the impossible byte (0xA0, at message offset 3101) on was delivered.
            CHECK(h.messages[0].data.size() <= 3101);
            CHECK(h.order.back() == "close");
        }
    }
}

TEST_CASE("streaming mode honours max_message_size with 1009") {
    ConnectionOptions options;
    options.max_message_size = 100;
    Connection conn(Role::server, options);
    StreamRecorder h;
    feed(conn,
         client_frames({frame_of(op::kBinary, binary_pattern(60), false),
                        frame_of(op::kContinuation, binary_pattern(41), true)}),
         h);
    REQUIRE(h.closes.size() == 1);
    CHECK(h.closes[0].code == 1009);
    CHECK(h.closes[0].error == Error::message_too_big);
}

// ======================= Property: client ⇄ server =======================

namespace {

// Random valid UTF-8 of about n bytes (code points of every length).
Bytes random_text(std::mt19937& rng, std::size_t n) {
    Bytes out;
    while (out.size() < n) {
        const std::uint32_t kind = rng() % 4;
        std::uint32_t cp = 0;
        if (kind == 0) cp = rng() % 0x80;
        if (kind == 1) cp = 0x80 + rng() % (0x800 - 0x80);
        if (kind == 2) {
            do {
                cp = 0x800 + rng() % (0x10000 - 0x800);
            } while (cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (kind == 3) cp = 0x10000 + rng() % (0x110000 - 0x10000);
        if (cp < 0x80) {
            out.push_back(static_cast<std::uint8_t>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<std::uint8_t>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<std::uint8_t>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<std::uint8_t>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<std::uint8_t>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<std::uint8_t>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<std::uint8_t>(0x80 | (cp & 0x3F)));
        }
    }
    return out;
}

std::size_t random_size(std::mt19937& rng) {
    // Biased small: most messages fit the 7-bit length, some the 16-bit, a few the 64-bit one.
    switch (rng() % 8) {
        case 0:
            return rng() % 70001;
        case 1:
        case 2:
            return rng() % 2000;
        default:
            return rng() % 130;
    }
}

struct Sent {
    Opcode opcode;
    Bytes payload;
};

// Sends `count` random messages from `sender` in random ways, and returns them in order.
std::vector<Sent> send_random_messages(Connection& sender, std::mt19937& rng, int count,
                                       std::vector<Bytes>& pings) {
    std::vector<Sent> sent;
    for (int i = 0; i < count; ++i) {
        const Opcode opcode = rng() % 2 ? Opcode::text : Opcode::binary;
        const std::size_t n = random_size(rng);
        Bytes payload = opcode == Opcode::text
                            ? random_text(rng, n)
                            : binary_pattern(n, static_cast<std::uint32_t>(rng()));
        const std::uint32_t how = rng() % 5;
        if (how == 0 || payload.size() < 2) {
            REQUIRE(sender.send(opcode, payload) == Error::none);
        } else if (how == 1 && sender.role() == Role::server) {
            const SharedBuffer frame = encode_shared_frame(opcode, payload);
            REQUIRE(sender.send_shared(frame) == Error::none);
        } else if (how == 2) {
            const SharedBuffer owner = SharedBuffer::copy_of(payload);
            // The queue's reference keeps the bytes alive after `owner` goes.
            REQUIRE(sender.send_reference(opcode, owner.bytes(), owner) == Error::none);
        } else {
            // Random fragmentation, with pings between some fragments.
            std::size_t from = 0;
            bool first = true;
            while (true) {
                const std::size_t left = payload.size() - from;
                const std::size_t take =
                    left == 0
                        ? 0
                        : std::min<std::size_t>(left, 1 + rng() % std::max<std::size_t>(left, 1));
                const bool fin = from + take == payload.size() && (rng() % 4 != 0 || take == 0);
                REQUIRE(sender.send_frame(first ? opcode : Opcode::continuation,
                                          slice(payload, from, from + take), fin) == Error::none);
                first = false;
                from += take;
                if (rng() % 3 == 0) {
                    Bytes ping = binary_pattern(rng() % 126, static_cast<std::uint32_t>(rng()));
                    REQUIRE(sender.ping(ping) == Error::none);
                    pings.push_back(std::move(ping));
                }
                if (fin) break;
            }
        }
        sent.push_back({opcode, std::move(payload)});
    }
    return sent;
}

struct Collector {
    std::vector<Sent> messages;
    std::vector<Bytes> pings;
    std::vector<CloseInfo> closes;
    void on_message(Opcode opcode, std::span<const std::uint8_t> p) {
        messages.push_back({opcode, Bytes(p.begin(), p.end())});
    }
    void on_ping(std::span<const std::uint8_t> p) { pings.emplace_back(p.begin(), p.end()); }
    void on_close(const CloseInfo& info) { closes.push_back(info); }
};

}  // namespace

TEST_CASE("property: random messages sent by one role are received intact by the other") {
    for (Role sender_role : kBothRoles) {
        const Role receiver_role = sender_role == Role::server ? Role::client : Role::server;
        for (std::uint32_t seed = 1; seed <= 12; ++seed) {
            CAPTURE(seed);
            CAPTURE(std::string(role_name(sender_role)));
            std::mt19937 rng(seed);
            ConnectionOptions sender_options;
            if (seed % 3 == 0) sender_options.auto_fragment_size = 1 + rng() % 5000;
            Connection sender(sender_role, sender_options);
            std::vector<Bytes> pings;
            const std::vector<Sent> sent = send_random_messages(sender, rng, 60, pings);
            REQUIRE(sender.close(1000, "done") == Error::none);
            Bytes wire;
            drain(sender, wire);

            Connection receiver(receiver_role);
            Collector got;
            const Feeding feeding = Feeding::random(seed * 31);
            std::size_t at = 0;
            for (std::size_t n : feeding.chunks(wire.size())) {
                Bytes chunk = slice(wire, at, at + n);
                const auto r = receiver.receive(std::span<std::uint8_t>(chunk), got);
                REQUIRE(r.error == Error::none);
                at += n;
            }
            REQUIRE(got.messages.size() == sent.size());
            for (std::size_t i = 0; i < sent.size(); ++i) {
                CAPTURE(i);
                CHECK(got.messages[i].opcode == sent[i].opcode);
                CHECK(got.messages[i].payload == sent[i].payload);
            }
            CHECK(got.pings == pings);
            REQUIRE(got.closes.size() == 1);
            CHECK(got.closes[0].code == 1000);
            CHECK(got.closes[0].clean);
            // The receiver answered every ping, then echoed the close.
            const auto replies = take_frames(receiver);
            REQUIRE(replies.size() == pings.size() + 1);
            for (std::size_t i = 0; i < pings.size(); ++i) {
                CHECK(replies[i].opcode == op::kPong);
                CHECK(replies[i].payload == pings[i]);
            }
            CHECK(replies.back().opcode == op::kClose);
            CHECK(replies.back().masked == (receiver_role == Role::client));
        }
    }
}

// ======================= Allocation-free receive =======================

namespace {

struct CountingHandler {
    std::size_t messages = 0;
    std::size_t bytes = 0;
    std::uint64_t checksum = 0;
    void on_message(Opcode opcode, std::span<const std::uint8_t> p) {
        ++messages;
        bytes += p.size();
        for (auto b : p)
            checksum = checksum * 31 + b + static_cast<std::uint8_t>(opcode);
    }
};

}  // namespace

TEST_CASE("receiving whole unfragmented masked frames performs zero allocations (server)") {
    // 16 B, 125 B and 1 KiB frames, text and binary: the 7- and 16-bit length forms of the fast
    // path. The payloads are unmasked in place and handed out as spans into the input.
    Bytes input;
    std::uint64_t expected_checksum = 0;
    std::size_t expected_bytes = 0;
    std::size_t count = 0;
    KeySource keys(5);
    for (int round = 0; round < 50; ++round) {
        for (std::size_t n : {16, 125, 1024}) {
            for (std::uint8_t opcode : {op::kText, op::kBinary}) {
                RawFrame f =
                    frame_of(opcode, opcode == op::kText ? text_pattern(n) : binary_pattern(n, 17));
                f.mask = keys.next();
                append_encoded(input, f);
                for (auto b : f.payload)
                    expected_checksum = expected_checksum * 31 + b + opcode;
                expected_bytes += n;
                ++count;
            }
        }
    }
    for (Role role : kBothRoles) {
        CAPTURE(std::string(role_name(role)));
        Bytes buffer = input;
        if (role == Role::client) {
            // The same frames from a server: unmasked.
            buffer.clear();
            const DecodeResult d = decode_all(input);
            for (const auto& f : d.frames)
                append_encoded(buffer, frame_of(f.opcode, f.payload));
        }
        Bytes second = buffer;
        Connection conn(role);
        CountingHandler first_pass;
        CountingHandler second_pass;
        const std::size_t before = heap_allocations.load();
        const auto r = conn.receive(std::span<std::uint8_t>(buffer), first_pass);
        const auto r2 = conn.receive(std::span<std::uint8_t>(second), second_pass);
        const std::size_t after = heap_allocations.load();
        CHECK(after - before == 0);
        CHECK(r.consumed == buffer.size());
        CHECK(r2.consumed == second.size());
        CHECK(r.error == Error::none);
        CHECK(r2.error == Error::none);
        for (const CountingHandler* h : {&first_pass, &second_pass}) {
            CHECK(h->messages == count);
            CHECK(h->bytes == expected_bytes);
            CHECK(h->checksum == expected_checksum);
        }
        CHECK_FALSE(conn.wants_write());
    }
}

TEST_CASE("the counting allocator sees allocations (the zero above is not vacuous)") {
    const std::size_t before = heap_allocations.load();
    // The pointer escapes through a volatile, so the compiler cannot elide the new/delete pair.
    static std::vector<int>* volatile escaped;
    escaped = new std::vector<int>(100);
    CHECK(escaped->size() == 100);
    delete escaped;
    CHECK(heap_allocations.load() - before >= 2);
}
