// CONFORMANCE.md §3 (reserved bits) and §4 (reserved opcodes): RFC 6455 §5.2 — a non-zero RSV bit
// without an extension defining it, or an opcode the RFC does not define, fails the connection
// with 1002, after everything that came before has been handled.
#include <doctest/doctest.h>

#include "peer.hpp"

using namespace wsx::conformance;

namespace {

// What comes before the offending frame: nothing, a valid message (echoed first), or a ping
// (answered first).
enum class Before { nothing, message, ping };

void add_before(Scenario& s, Before before) {
    if (before == Before::message) {
        s.text("Hello, world!");
        s.expect_message(Opcode::text, bytes_of("Hello, world!"));
    } else if (before == Before::ping) {
        s.frame(op::kPing, bytes_of("before"));
        s.expect_ping(bytes_of("before"));
    }
}

}  // namespace

TEST_CASE(
    "§3 RSV1, RSV2 or RSV3 set without an extension fails with 1002, after echoing what "
    "came before") {
    struct Target {
        std::uint8_t opcode;
        Bytes payload;
    };
    const Target targets[] = {
        {op::kText, bytes_of("Hello, world!")}, {op::kBinary, binary_pattern(300)},
        {op::kPing, bytes_of("ping")},          {op::kPong, bytes_of("pong")},
        {op::kClose, close_payload(1000)},      {op::kText, {}}};
    for (Role role : kBothRoles) {
        for (const Target& t : targets) {
            for (std::uint8_t rsv = 1; rsv <= 7; ++rsv) {
                for (Before before : {Before::nothing, Before::message, Before::ping}) {
                    CAPTURE(opcode_name(t.opcode));
                    CAPTURE(static_cast<int>(rsv));
                    CAPTURE(static_cast<int>(before));
                    Scenario s(role);
                    add_before(s, before);
                    RawFrame f = frame_of(t.opcode, t.payload);
                    f.rsv = rsv;
                    const std::size_t payload_at = s.frame(f);
                    s.expect_failure(Error::reserved_bits_set, payload_at - 1, false);
                    s.run();
                }
            }
        }
    }
}

TEST_CASE("§3 RSV bits on a continuation frame fail with 1002 without delivering the message") {
    for (Role role : kBothRoles) {
        for (std::uint8_t rsv : {kRsv1, kRsv2, kRsv3}) {
            Scenario s(role);
            s.text("first ", false);
            RawFrame f = frame_of(op::kContinuation, bytes_of("second"));
            f.rsv = rsv;
            const std::size_t payload_at = s.frame(f);
            s.expect_failure(Error::reserved_bits_set, payload_at - 1, false);
            s.run();
        }
    }
}

TEST_CASE("an RSV bit claimed by an extension is accepted on data frames only") {
    ConnectionOptions options;
    options.extension_rsv_bits = kRsv1;
    for (Role role : kBothRoles) {
        {
            Scenario s(role, options);
            RawFrame f = frame_of(op::kBinary, bytes_of("extension data"));
            f.rsv = kRsv1;
            s.frame(f);
            s.expect_message(Opcode::binary, f.payload);
            s.run();
        }
        {
            // RFC 7692 §6: permessage-deflate never sets RSV1 on control frames.
            Scenario s(role, options);
            RawFrame f = frame_of(op::kPing, bytes_of("p"));
            f.rsv = kRsv1;
            const std::size_t payload_at = s.frame(f);
            s.expect_failure(Error::reserved_bits_set, payload_at - 1, false);
            s.run();
        }
        {
            // An extension's bit does not make the other two legal.
            Scenario s(role, options);
            RawFrame f = frame_of(op::kText, bytes_of("x"));
            f.rsv = kRsv1 | kRsv2;
            const std::size_t payload_at = s.frame(f);
            s.expect_failure(Error::reserved_bits_set, payload_at - 1, false);
            s.run();
        }
    }
}

TEST_CASE("§4 reserved data opcodes 3-7 and control opcodes 11-15 fail with 1002") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
            for (const Bytes& payload : {Bytes{}, bytes_of("reserved opcode")}) {
                for (Before before : {Before::nothing, Before::message, Before::ping}) {
                    CAPTURE(static_cast<int>(opcode));
                    CAPTURE(payload.size());
                    CAPTURE(static_cast<int>(before));
                    Scenario s(role);
                    add_before(s, before);
                    const std::size_t payload_at = s.frame(opcode, payload);
                    s.expect_failure(Error::reserved_opcode, payload_at - 1, false);
                    s.run();
                }
            }
        }
    }
}

TEST_CASE("§4 a reserved opcode inside a fragmented message fails with 1002") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {3, 7, 11, 15}) {
            Scenario s(role);
            s.text("frag", false);
            const std::size_t payload_at = s.frame(opcode, bytes_of("x"), true);
            s.expect_failure(Error::reserved_opcode, payload_at - 1, false);
            s.run();
        }
    }
}
