// CONFORMANCE.md §5 (fragmentation), RFC 6455 §5.4: a message is one text/binary frame and
// continuations up to FIN; control frames may come between fragments and are handled at once;
// control frames are never fragmented.
#include <doctest/doctest.h>

#include "peer.hpp"

using namespace wsx::conformance;

namespace {

// Splits `payload` at `cuts` into a text/binary frame and continuations.
void add_fragments(Scenario& s, std::uint8_t opcode, const Bytes& payload,
                   const std::vector<std::size_t>& cuts) {
    std::size_t from = 0;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : payload.size();
        s.frame(i == 0 ? opcode : op::kContinuation, slice(payload, from, to), i == cuts.size());
        from = to;
    }
}

}  // namespace

TEST_CASE("§5 a message in two fragments is reassembled and echoed") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {op::kText, op::kBinary}) {
            Scenario s(role);
            s.frame(opcode, bytes_of("fragment1"), false);
            s.frame(op::kContinuation, bytes_of("fragment2"), true);
            s.expect_message(static_cast<Opcode>(opcode), bytes_of("fragment1fragment2"));
            s.run();
        }
    }
}

TEST_CASE("§5 messages in many fragments, including empty and 1-byte ones, are reassembled") {
    const Bytes text = text_pattern(40);
    const std::vector<std::vector<std::size_t>> cut_sets = {
        {0},                       // empty first fragment
        {40},                      // empty last fragment
        {0, 0, 20, 20, 40},        // empty fragments everywhere
        {1, 2, 3, 4, 5, 6, 7, 8},  // 1-byte fragments
        {13, 14, 27},
    };
    for (Role role : kBothRoles) {
        for (const auto& cuts : cut_sets) {
            for (std::uint8_t opcode : {op::kText, op::kBinary}) {
                Scenario s(role);
                add_fragments(s, opcode, text, cuts);
                s.expect_message(static_cast<Opcode>(opcode), text);
                s.run();
            }
        }
        // Every byte its own fragment.
        Scenario s(role);
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < text.size(); ++i)
            cuts.push_back(i);
        add_fragments(s, op::kText, text, cuts);
        s.expect_message(Opcode::text, text);
        s.run();
    }
}

TEST_CASE("§5 an empty message sent as empty fragments is delivered empty") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kText, {}, false);
        s.frame(op::kContinuation, {}, false);
        s.frame(op::kContinuation, {}, true);
        s.expect_message(Opcode::text, {});
        s.run();
    }
}

TEST_CASE("§5 fragments with non-minimal length encodings are reassembled") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        RawFrame a = frame_of(op::kBinary, binary_pattern(10, 1), false);
        a.length_form = LengthForm::bits64;
        RawFrame b = frame_of(op::kContinuation, binary_pattern(300, 2), false);
        b.length_form = LengthForm::bits64;
        RawFrame c = frame_of(op::kContinuation, binary_pattern(5, 3), true);
        c.length_form = LengthForm::bits16;
        s.frame(a);
        s.frame(b);
        s.frame(c);
        s.expect_message(Opcode::binary, concat({a.payload, b.payload, c.payload}));
        s.run();
    }
}

TEST_CASE("§5 consecutive fragmented messages are each reassembled") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        const Bytes one = text_pattern(1000);
        const Bytes two = binary_pattern(5000);
        add_fragments(s, op::kText, one, {100, 999});
        s.text("between");
        add_fragments(s, op::kBinary, two, {1, 4096});
        s.expect_message(Opcode::text, one);
        s.expect_message(Opcode::text, bytes_of("between"));
        s.expect_message(Opcode::binary, two);
        s.run();
    }
}

TEST_CASE("§5 pings between fragments are answered at once, before the message completes") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.text("fragment1", false);
        s.frame(op::kPing, bytes_of("ping1"));
        s.frame(op::kContinuation, bytes_of("fragment2"), false);
        s.frame(op::kPing, {});
        const std::size_t before_last = s.size();
        s.frame(op::kContinuation, bytes_of("fragment3"), true);
        s.expect_ping(bytes_of("ping1"));
        s.expect_ping({});
        s.expect_message(Opcode::text, bytes_of("fragment1fragment2fragment3"));
        s.run();

        // With the last fragment not yet arrived, both pongs are already in the output.
        for (const Feeding& feeding : standard_feedings()) {
            CAPTURE(feeding.name());
            const Outcome o =
                run_feeding(role, std::span(s.input()).first(before_last), feeding, s.options());
            CHECK(summarize(o.events) ==
                  summarize(std::vector<Event>{Event::ping(bytes_of("ping1")), Event::ping({})}));
            check_output(role, o.output, {{op::kPong, bytes_of("ping1")}, {op::kPong, {}}});
            CHECK(o.state == State::open);
        }
    }
}

TEST_CASE("§5 pongs between fragments are reported and not answered") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kBinary, bytes_of("fragment1"), false);
        s.frame(op::kPong, bytes_of("pong"));
        s.frame(op::kContinuation, bytes_of("fragment2"), true);
        s.expect_pong(bytes_of("pong"));
        s.expect_message(Opcode::binary, bytes_of("fragment1fragment2"));
        s.run();
    }
}

TEST_CASE("§5 a large fragmented message with pings between every fragment") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        const Bytes text = text_pattern(65536);
        for (std::size_t from = 0; from < text.size(); from += 4000) {
            const std::size_t to = std::min(text.size(), from + 4000);
            s.frame(from == 0 ? op::kText : op::kContinuation, slice(text, from, to),
                    to == text.size());
            if (to == text.size()) break;
            const Bytes ping = bytes_of(std::to_string(from));
            s.frame(op::kPing, ping);
            s.expect_ping(ping);
        }
        s.expect_message(Opcode::text, text);
        s.run({Feeding::whole(), Feeding::random(4), Feeding::fixed(997)});
    }
}

TEST_CASE("§5 a fragmented control frame fails with 1002") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {op::kPing, op::kPong, op::kClose}) {
            for (bool inside_message : {false, true}) {
                CAPTURE(opcode_name(opcode));
                CAPTURE(inside_message);
                Scenario s(role);
                if (inside_message) s.text("fragment1", false);
                const Bytes payload = opcode == op::kClose ? close_payload(1000) : bytes_of("frag");
                const std::size_t payload_at = s.frame(opcode, payload, false);
                s.frame(op::kContinuation, bytes_of("fragment2"), true);
                s.expect_failure(Error::control_frame_fragmented, payload_at - 1, false);
                s.run();
            }
        }
    }
}

TEST_CASE("§5 a continuation frame with no message started fails with 1002") {
    for (Role role : kBothRoles) {
        for (bool fin : {true, false}) {
            for (int before = 0; before < 3; ++before) {
                CAPTURE(fin);
                CAPTURE(before);
                Scenario s(role);
                if (before == 1) {
                    s.text("complete");
                    s.expect_message(Opcode::text, bytes_of("complete"));
                } else if (before == 2) {
                    add_fragments(s, op::kBinary, bytes_of("complete fragments"), {3});
                    s.expect_message(Opcode::binary, bytes_of("complete fragments"));
                }
                const std::size_t payload_at =
                    s.frame(op::kContinuation, bytes_of("continuation"), fin);
                s.expect_failure(Error::unexpected_continuation, payload_at - 1, false);
                s.run();
            }
        }
    }
}

TEST_CASE("§5 a new text or binary frame while a message is open fails with 1002") {
    for (Role role : kBothRoles) {
        for (std::uint8_t first : {op::kText, op::kBinary}) {
            for (std::uint8_t second : {op::kText, op::kBinary}) {
                for (bool second_fin : {true, false}) {
                    Scenario s(role);
                    s.frame(first, bytes_of("fragment1"), false);
                    s.frame(op::kPing, bytes_of("p"));
                    s.expect_ping(bytes_of("p"));
                    const std::size_t payload_at =
                        s.frame(second, bytes_of("fragment2"), second_fin);
                    s.frame(op::kContinuation, bytes_of("fragment3"), true);
                    s.expect_failure(Error::expected_continuation, payload_at - 1, false);
                    s.run();
                }
            }
        }
    }
}

TEST_CASE("§5 a close between fragments ends the connection without delivering the message") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.text("fragment1", false);
        s.frame(op::kClose, close_payload(1000, "bye"));
        s.frame(op::kContinuation, bytes_of("fragment2"), true);
        s.expect_peer_close(1000, "bye");
        s.run();
    }
}
