// CONFORMANCE.md §1 (framing), §2 (ping/pong) and the masking rules of RFC 6455 §5.1/§5.3, in
// both roles, each scenario under every feeding (whole, 1-byte chops, random chops).
#include <doctest/doctest.h>

#include "peer.hpp"

using namespace wsx::conformance;

namespace {

Bytes payload_for(std::uint8_t opcode, std::size_t n) {
    return opcode == op::kText ? text_pattern(n) : binary_pattern(n, static_cast<std::uint32_t>(n));
}

Opcode opcode_of(std::uint8_t opcode) {
    return static_cast<Opcode>(opcode);
}

}  // namespace

// ---- §1 framing

TEST_CASE("§1 text and binary messages of 0 to 65536 bytes are echoed exactly") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {op::kText, op::kBinary}) {
            for (std::size_t n : {0, 1, 124, 125, 126, 127, 128, 65535, 65536}) {
                CAPTURE(n);
                Scenario s(role);
                const Bytes payload = payload_for(opcode, n);
                s.frame(opcode, payload);
                s.expect_message(opcode_of(opcode), payload);
                s.run();
            }
        }
    }
}

TEST_CASE("§1 a 65536-byte message written in 997-byte chops is echoed exactly") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {op::kText, op::kBinary}) {
            Scenario s(role);
            const Bytes payload = payload_for(opcode, 65536);
            s.frame(opcode, payload);
            s.expect_message(opcode_of(opcode), payload);
            s.run({Feeding::fixed(997)});
        }
    }
}

TEST_CASE("§1 several messages in one read are echoed in order") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        for (std::size_t n : {0, 16, 125, 126, 1024, 65536, 70000, 3}) {
            for (std::uint8_t opcode : {op::kText, op::kBinary}) {
                const Bytes payload = payload_for(opcode, n);
                s.frame(opcode, payload);
                s.expect_message(opcode_of(opcode), payload);
            }
        }
        s.run();
    }
}

TEST_CASE("§1 non-minimal length encodings are accepted and answered minimally") {
    struct Case {
        std::size_t n;
        LengthForm form;
    };
    const Case cases[] = {{0, LengthForm::bits16},   {5, LengthForm::bits16},
                          {125, LengthForm::bits16}, {0, LengthForm::bits64},
                          {5, LengthForm::bits64},   {125, LengthForm::bits64},
                          {126, LengthForm::bits64}, {65535, LengthForm::bits64}};
    for (Role role : kBothRoles) {
        for (const Case& c : cases) {
            for (std::uint8_t opcode : {op::kText, op::kBinary}) {
                CAPTURE(c.n);
                Scenario s(role);
                RawFrame f = frame_of(opcode, payload_for(opcode, c.n));
                f.length_form = c.form;
                s.frame(f);
                s.expect_message(opcode_of(opcode), f.payload);
                s.run();
            }
        }
    }
}

TEST_CASE("§1 a 64-bit length with the most significant bit set fails with 1002") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        RawFrame f = frame_of(op::kBinary, bytes_of("abc"));
        f.announced_length = (std::uint64_t{1} << 63) | 3;
        const std::size_t payload_at = s.frame(f);
        s.expect_failure(Error::length_msb_set, payload_at - 1, false);
        s.run();
    }
}

// ---- §2 ping/pong

TEST_CASE("§2 every ping of 0 to 125 bytes is answered with a pong of the same payload") {
    for (Role role : kBothRoles) {
        for (std::size_t n = 0; n <= 125; ++n) {
            CAPTURE(n);
            Scenario s(role);
            const Bytes payload = binary_pattern(n, static_cast<std::uint32_t>(n) + 100);
            s.frame(op::kPing, payload);
            s.expect_ping(payload);
            s.run();
        }
    }
}

TEST_CASE("§2 a ping with a non-minimal length encoding is answered") {
    for (Role role : kBothRoles) {
        for (LengthForm form : {LengthForm::bits16, LengthForm::bits64}) {
            Scenario s(role);
            RawFrame f = frame_of(op::kPing, bytes_of("hello"));
            f.length_form = form;
            s.frame(f);
            s.expect_ping(f.payload);
            s.run();
        }
    }
}

TEST_CASE("§2 a ping with a 126-byte payload fails the connection with 1002") {
    for (Role role : kBothRoles) {
        for (LengthForm form : {LengthForm::minimal, LengthForm::bits64}) {
            Scenario s(role);
            const std::size_t payload_at = s.frame([&] {
                RawFrame f = frame_of(op::kPing, binary_pattern(126));
                f.length_form = form;
                return f;
            }());
            s.expect_failure(Error::control_frame_too_long, payload_at - 1, false);
            s.run();
        }
    }
}

TEST_CASE("§2 a pong longer than 125 bytes fails the connection with 1002") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        const std::size_t payload_at = s.frame(op::kPong, binary_pattern(200));
        s.expect_failure(Error::control_frame_too_long, payload_at - 1, false);
        s.run();
    }
}

TEST_CASE("§2 ten pings back to back are each answered, in order") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        for (int i = 0; i < 10; ++i) {
            const Bytes payload = bytes_of(cat({"ping ", std::to_string(i)}));
            s.frame(op::kPing, payload);
            s.expect_ping(payload);
        }
        s.run();
    }
}

TEST_CASE("§2 unsolicited pongs are reported and ignored") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        for (const Bytes& payload : {Bytes{}, bytes_of("unsolicited"), binary_pattern(125)}) {
            s.frame(op::kPong, payload);
            s.expect_pong(payload);
        }
        s.text("still open");
        s.expect_message(Opcode::text, bytes_of("still open"));
        s.run();
    }
}

TEST_CASE("§2 pings and messages interleaved are answered in arrival order") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.text("one");
        s.expect_message(Opcode::text, bytes_of("one"));
        s.frame(op::kPing, bytes_of("a"));
        s.expect_ping(bytes_of("a"));
        s.frame(op::kBinary, binary_pattern(300));
        s.expect_message(Opcode::binary, binary_pattern(300));
        s.frame(op::kPong, bytes_of("b"));
        s.expect_pong(bytes_of("b"));
        s.frame(op::kPing, {});
        s.expect_ping({});
        s.run();
    }
}

// ---- RFC 6455 §5.1: clients mask, servers do not

TEST_CASE("server fails an unmasked client frame with 1002") {
    const RawFrame frames[] = {
        frame_of(op::kText, bytes_of("unmasked")), frame_of(op::kBinary, binary_pattern(300)),
        frame_of(op::kPing, bytes_of("p")),        frame_of(op::kPong, {}),
        frame_of(op::kClose, close_payload(1000)), frame_of(op::kText, bytes_of("frag"), false)};
    for (const RawFrame& bad : frames) {
        CAPTURE(opcode_name(bad.opcode));
        for (bool after_valid : {false, true}) {
            Scenario s(Role::server);
            if (after_valid) {
                s.text("valid first");
                s.expect_message(Opcode::text, bytes_of("valid first"));
            }
            const std::size_t payload_at = s.frame(bad, Masking::unmasked);
            s.expect_failure(Error::unmasked_client_frame, payload_at - 1, false);
            s.run();
        }
    }
}

TEST_CASE("server fails an unmasked continuation inside a masked message with 1002") {
    Scenario s(Role::server);
    s.text("start", false);
    const std::size_t payload_at =
        s.frame(frame_of(op::kContinuation, bytes_of("end")), Masking::unmasked);
    s.expect_failure(Error::unmasked_client_frame, payload_at - 1, false);
    s.run();
}

TEST_CASE("server unmasks payloads with any key, including all-zero and all-0xFF keys") {
    for (const MaskKey key :
         {MaskKey{0, 0, 0, 0}, MaskKey{0xFF, 0xFF, 0xFF, 0xFF}, MaskKey{0x80, 0x00, 0x01, 0x7F}}) {
        Scenario s(Role::server);
        for (std::size_t n : {1, 3, 4, 5, 17, 126, 4099}) {
            RawFrame f = frame_of(op::kBinary, binary_pattern(n));
            f.mask = key;
            s.frame(f);
            s.expect_message(Opcode::binary, f.payload);
        }
        s.run();
    }
}

TEST_CASE("client fails a masked server frame with 1002") {
    const RawFrame frames[] = {frame_of(op::kText, bytes_of("masked")),
                               frame_of(op::kBinary, binary_pattern(300)),
                               frame_of(op::kPing, bytes_of("p")), frame_of(op::kPong, {}),
                               frame_of(op::kClose, close_payload(1000))};
    for (const RawFrame& bad : frames) {
        CAPTURE(opcode_name(bad.opcode));
        for (bool after_valid : {false, true}) {
            Scenario s(Role::client);
            if (after_valid) {
                s.frame(op::kBinary, bytes_of("valid first"));
                s.expect_message(Opcode::binary, bytes_of("valid first"));
            }
            const std::size_t payload_at = s.frame(bad, Masking::masked);
            s.expect_failure(Error::masked_server_frame, payload_at - 1, false);
            s.run();
        }
    }
}

TEST_CASE("client masks every frame it sends with a fresh key") {
    // 100 echoed messages and 20 pongs: check_output() verifies each frame is masked, decodes to
    // the right payload and uses a key no other frame used.
    Scenario s(Role::client);
    for (int i = 0; i < 100; ++i) {
        const Bytes payload =
            binary_pattern(static_cast<std::size_t>(i) * 7, static_cast<std::uint32_t>(i));
        s.frame(op::kBinary, payload);
        s.expect_message(Opcode::binary, payload);
        if (i % 5 == 0) {
            s.frame(op::kPing, bytes_of("k"));
            s.expect_ping(bytes_of("k"));
        }
    }
    const Outcome o = s.run({Feeding::whole()});
    const DecodeResult d = decode_all(o.output);
    REQUIRE(d.frames.size() == 120);
    // A constant or zero key would leave the payload readable on the wire (§10.3).
    std::size_t zero_keys = 0;
    for (const auto& f : d.frames)
        zero_keys += f.key == MaskKey{0, 0, 0, 0} ? 1 : 0;
    CHECK(zero_keys <= 1);
}
