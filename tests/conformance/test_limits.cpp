// Size limits (1009, RFC 6455 §7.4.1) and CONFORMANCE.md §9 (large messages, many messages,
// small chops) and §10 (auto-fragmented replies), at sizes up to 4 MiB.
#include <doctest/doctest.h>

#include "peer.hpp"

using namespace wsx::conformance;

namespace {

ConnectionOptions limits(std::uint64_t frame, std::uint64_t message) {
    ConnectionOptions o;
    o.max_frame_size = frame;
    o.max_message_size = message;
    return o;
}

Bytes payload_for(std::uint8_t opcode, std::size_t n, std::uint32_t seed = 9) {
    return opcode == op::kText ? text_pattern(n) : binary_pattern(n, seed);
}

// A message cut into frames of `frame_size` payload bytes.
void add_fragmented(Scenario& s, std::uint8_t opcode, const Bytes& payload,
                    std::size_t frame_size) {
    std::size_t from = 0;
    do {
        const std::size_t to = std::min(payload.size(), from + frame_size);
        s.frame(from == 0 ? opcode : op::kContinuation, slice(payload, from, to),
                to == payload.size());
        from = to;
    } while (from < payload.size());
}

}  // namespace

// ---- 1009: limits, enforced from the header alone

TEST_CASE("a frame of exactly max_frame_size is accepted") {
    for (Role role : kBothRoles) {
        Scenario s(role, limits(1000, 1 << 20));
        s.frame(op::kBinary, binary_pattern(1000));
        s.expect_message(Opcode::binary, binary_pattern(1000));
        s.text("ok");
        s.expect_message(Opcode::text, bytes_of("ok"));
        s.run();
    }
}

TEST_CASE("a frame over max_frame_size fails with 1009 as soon as its header arrives") {
    for (Role role : kBothRoles) {
        for (std::uint64_t announced :
             {std::uint64_t{1001}, std::uint64_t{65536}, std::uint64_t{1} << 40}) {
            CAPTURE(announced);
            Scenario s(role, limits(1000, 1 << 20));
            s.text("before");
            s.expect_message(Opcode::text, bytes_of("before"));
            // Only 10 bytes of the payload follow: the failure may not wait for the rest.
            RawFrame f = frame_of(op::kBinary, binary_pattern(10));
            f.announced_length = announced;
            const std::size_t payload_at = s.frame(f);
            s.expect_failure(Error::frame_too_big, payload_at - 1, false);
            s.run();
        }
    }
}

TEST_CASE("the default limits refuse a frame announcing 2^62 bytes with 1009") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        RawFrame f = frame_of(op::kText, bytes_of("tiny"));
        f.announced_length = std::uint64_t{1} << 62;
        const std::size_t payload_at = s.frame(f);
        s.expect_failure(Error::frame_too_big, payload_at - 1, false);
        s.run();
    }
}

TEST_CASE(
    "a fragment that takes the message over max_message_size fails with 1009 at its "
    "header") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {op::kText, op::kBinary}) {
            Scenario s(role, limits(1 << 20, 1000));
            const Bytes payload = payload_for(opcode, 1000);
            s.frame(opcode, slice(payload, 0, 400), false);
            s.frame(op::kPing, bytes_of("control frames do not count"));
            s.expect_ping(bytes_of("control frames do not count"));
            s.frame(op::kContinuation, slice(payload, 400, 1000), true);
            s.expect_message(static_cast<Opcode>(opcode), payload);
            // The limit is per message: the next one starts from zero.
            s.frame(opcode, slice(payload, 0, 400), false);
            RawFrame over = frame_of(op::kContinuation, binary_pattern(20), true);
            over.announced_length = 601;
            const std::size_t payload_at = s.frame(over);
            s.expect_failure(Error::message_too_big, payload_at - 1, false);
            s.run();
        }
    }
}

TEST_CASE("a single frame over max_message_size fails with 1009") {
    for (Role role : kBothRoles) {
        Scenario s(role, limits(1 << 20, 1000));
        const std::size_t payload_at = s.frame(op::kText, text_pattern(1001));
        s.expect_failure(Error::message_too_big, payload_at - 1, false);
        s.run();
    }
}

// ---- §9 large messages

TEST_CASE("§9 single messages of 64 KiB to 4 MiB are echoed exactly") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {op::kText, op::kBinary}) {
            for (std::size_t n : {64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024}) {
                CAPTURE(n);
                Scenario s(role);
                const Bytes payload = payload_for(opcode, n);
                s.frame(opcode, payload);
                s.expect_message(static_cast<Opcode>(opcode), payload);
                s.run({Feeding::whole(), Feeding::random(7, 64 * 1024)});
            }
        }
    }
}

TEST_CASE("§9 a 4 MiB message fragmented into 64 B to 4 MiB frames is echoed exactly") {
    const std::size_t n = 4 * 1024 * 1024;
    for (Role role : kBothRoles) {
        for (std::size_t frame_size : {std::size_t{64}, std::size_t{256}, std::size_t{1024},
                                       std::size_t{4096}, std::size_t{16384}, std::size_t{65536},
                                       std::size_t{262144}, std::size_t{1048576}, n}) {
            for (std::uint8_t opcode : {op::kText, op::kBinary}) {
                if (opcode == op::kText && frame_size != 64 && frame_size != 4096 &&
                    frame_size != 1048576) {
                    continue;  // text at three sizes is enough to split code points everywhere
                }
                CAPTURE(frame_size);
                Scenario s(role);
                const Bytes payload = payload_for(opcode, n);
                add_fragmented(s, opcode, payload, frame_size);
                s.expect_message(static_cast<Opcode>(opcode), payload);
                s.run({Feeding::whole()});
            }
        }
    }
}

TEST_CASE("§9 a 1 MiB message written in chops of 64 B to 4 KiB is echoed exactly") {
    for (Role role : kBothRoles) {
        for (std::uint8_t opcode : {op::kText, op::kBinary}) {
            Scenario s(role);
            const Bytes payload = payload_for(opcode, 1024 * 1024);
            s.frame(opcode, payload);
            s.expect_message(static_cast<Opcode>(opcode), payload);
            s.run({Feeding::fixed(64), Feeding::fixed(128), Feeding::fixed(256),
                   Feeding::fixed(512), Feeding::fixed(1024), Feeding::fixed(2048),
                   Feeding::fixed(4096)});
        }
    }
}

TEST_CASE("§9 1000 messages of 0 B to 64 KiB are echoed in order") {
    const std::size_t sizes[] = {0, 16, 64, 256, 1024, 4096, 16384, 65536};
    for (Role role : kBothRoles) {
        Scenario s(role);
        for (std::size_t i = 0; i < 1000; ++i) {
            const std::uint8_t opcode = i % 3 == 0 ? op::kText : op::kBinary;
            const Bytes payload =
                payload_for(opcode, sizes[i % std::size(sizes)], static_cast<std::uint32_t>(i));
            s.frame(opcode, payload);
            s.expect_message(static_cast<Opcode>(opcode), payload);
        }
        s.run({Feeding::whole(), Feeding::random(8, 8192)});
    }
}

// ---- §10 auto-fragmentation of replies

TEST_CASE("§10 a 64 KiB message is echoed auto-fragmented and reassembles exactly") {
    for (Role role : kBothRoles) {
        for (std::size_t fragment : {1000, 4096, 65536, 100000}) {
            for (std::uint8_t opcode : {op::kText, op::kBinary}) {
                CAPTURE(fragment);
                ConnectionOptions options;
                options.auto_fragment_size = fragment;
                Scenario s(role, options);
                const Bytes payload = payload_for(opcode, 65536);
                s.frame(opcode, payload);
                s.expect_event(Event::message(static_cast<Opcode>(opcode), payload));
                // The reply: frames of `fragment` bytes, continuations after the first, FIN last.
                for (std::size_t from = 0; from < payload.size(); from += fragment) {
                    const std::size_t to = std::min(payload.size(), from + fragment);
                    s.expect_output({from == 0 ? opcode : op::kContinuation,
                                     slice(payload, from, to), to == payload.size()});
                }
                s.run({Feeding::whole(), Feeding::random(10)});
            }
        }
    }
}
