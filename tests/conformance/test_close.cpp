// CONFORMANCE.md §7 (close), RFC 6455 §5.5.1, §7.1 and §7.4: a valid close is echoed with the
// same code (an empty one with an empty close), a malformed one fails the connection, and nothing
// after a close is delivered or answered. Scenario::run() also checks state() and
// close_transport_now(): closed after the handshake, the server closing TCP first (§7.1.1).
#include <doctest/doctest.h>

#include "peer.hpp"

using namespace wsx::conformance;
namespace proto = wsx::proto;

TEST_CASE("§7 a close with no payload is echoed with no payload and reported as 1005") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kClose, {});
        s.expect_peer_close(std::nullopt);
        const Outcome o = s.run();
        CHECK(o.events.back().code == proto::close_code::kNoStatus);
    }
}

TEST_CASE("§7 a close with a code is echoed with the same code") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kClose, close_payload(1000));
        s.expect_peer_close(1000);
        s.run();
    }
}

TEST_CASE("§7 a close with a code and a reason is echoed and the reason reported") {
    for (Role role : kBothRoles) {
        for (std::string_view reason :
             {std::string_view("Hello World!"), std::string_view("\xCE\xBA\xE1\xBD\xB9\xCF\x83"),
              std::string_view("\xEF\xBF\xBF \xF4\x8F\xBF\xBF")}) {
            Scenario s(role);
            s.frame(op::kClose, close_payload(1000, reason));
            s.expect_peer_close(1000, reason);
            s.run();
        }
    }
}

TEST_CASE("§7 a close with a 123-byte reason (a 125-byte payload) is accepted") {
    const std::string ascii(123, '*');
    // 41 three-byte code points: 123 bytes of multi-byte UTF-8.
    std::string euros;
    for (int i = 0; i < 41; ++i)
        euros += "\xE2\x82\xAC";
    for (Role role : kBothRoles) {
        for (const std::string& reason : {ascii, euros}) {
            Scenario s(role);
            s.frame(op::kClose, close_payload(1000, reason));
            s.expect_peer_close(1000, reason);
            s.run();
        }
    }
}

TEST_CASE("§7 a close with a non-minimal length encoding is accepted") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        RawFrame f = frame_of(op::kClose, close_payload(1001, "going"));
        f.length_form = LengthForm::bits64;
        s.frame(f);
        s.expect_peer_close(1001, "going");
        s.run();
    }
}

TEST_CASE("§7 a close with a 1-byte payload fails with 1002") {
    for (Role role : kBothRoles) {
        for (std::uint8_t b : {0x00, 0x03, 0xE8}) {
            Scenario s(role);
            s.frame(op::kClose, {b});
            s.expect_failure(Error::close_payload_one_byte, s.size() - 1, false);
            s.run();
        }
    }
}

TEST_CASE("§7 a close whose reason makes the payload longer than 125 bytes fails with 1002") {
    for (Role role : kBothRoles) {
        for (std::size_t reason_size : {124, 200, 1000}) {
            Scenario s(role);
            const std::size_t payload_at =
                s.frame(op::kClose, close_payload(1000, std::string(reason_size, 'r')));
            s.expect_failure(Error::control_frame_too_long, payload_at - 1, false);
            s.run();
        }
    }
}

TEST_CASE("§7 a close reason that is not UTF-8 fails with 1007") {
    for (Role role : kBothRoles) {
        for (std::string_view reason :
             {std::string_view("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64"),
              std::string_view("\xC0\x80"), std::string_view("ok\xC2"), std::string_view("\xFF")}) {
            Scenario s(role);
            s.frame(op::kClose, close_payload(1000, reason));
            s.expect_failure(Error::close_reason_invalid_utf8, s.size() - 1, false);
            s.run();
        }
    }
}

TEST_CASE("§7 valid close codes 1000-1003, 1007-1011, 3000, 3999, 4000, 4999 are echoed") {
    for (Role role : kBothRoles) {
        for (std::uint16_t code :
             {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
            CAPTURE(code);
            Scenario s(role);
            s.frame(op::kClose, close_payload(code, "reason"));
            s.expect_peer_close(code, "reason");
            s.run();
        }
    }
}

TEST_CASE(
    "§7 invalid close codes 0, 999, 1004-1006, 1015, 1016, 1100, 2000, 2999, 5000 fail "
    "with 1002") {
    for (Role role : kBothRoles) {
        for (std::uint16_t code :
             {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
            CAPTURE(code);
            Scenario s(role);
            s.frame(op::kClose, close_payload(code));
            s.expect_failure(Error::invalid_close_code, s.size() - 1, false);
            s.run();
        }
    }
}

TEST_CASE("§7 data, pings and a second close after a close are ignored") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.text("before");
        s.expect_message(Opcode::text, bytes_of("before"));
        s.frame(op::kClose, close_payload(1000));
        s.expect_peer_close(1000);
        s.text("after");
        s.frame(op::kPing, bytes_of("after"));
        s.frame(op::kBinary, binary_pattern(70000));
        s.frame(op::kText, bytes_of("frag"), false);
        s.frame(op::kClose, close_payload(1001));
        // Garbage too: nothing after the close is even parsed.
        s.raw(Bytes{0xFF, 0xFF, 0xFF, 0xFF});
        s.run();
    }
}

TEST_CASE("§7 a close after a message fragment ends the connection; the fragment is dropped") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kBinary, binary_pattern(256 * 1024), false);
        s.frame(op::kClose, {});
        s.frame(op::kContinuation, bytes_of("end"), true);
        s.expect_peer_close(std::nullopt);
        s.run({Feeding::whole(), Feeding::random(6), Feeding::fixed(1000)});
    }
}

TEST_CASE("§7 the server closes the transport first; the client waits for the server") {
    // Scenario::run() checks close_transport_now() against the role for every close case; this
    // states the rule on its own.
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kClose, close_payload(1000));
        s.expect_peer_close(1000);
        const Outcome o = s.run({Feeding::whole()});
        CHECK(o.state == State::closed);
        CHECK(o.close_transport_now == (role == Role::server));
    }
    // A failed connection is closed at once by either side (§7.1.7).
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kClose, {0x03});
        s.expect_failure(Error::close_payload_one_byte);
        const Outcome o = s.run({Feeding::whole()});
        CHECK(o.close_transport_now);
    }
}
