// CONFORMANCE.md §6 (UTF-8), RFC 6455 §8.1 and RFC 3629: text messages must be valid UTF-8;
// an invalid one fails the connection with 1007, and it fails fast — while the chunk holding the
// first impossible byte is processed, not when the message ends.
#include <doctest/doctest.h>

#include "peer.hpp"

using namespace wsx::conformance;

namespace {

constexpr std::size_t kValid = static_cast<std::size_t>(-1);
// The sequence is only found invalid when the message ends inside a code point.
constexpr std::size_t kAtEnd = static_cast<std::size_t>(-2);

struct Utf8Case {
    std::string_view name;
    std::string_view bytes;
    std::size_t fail_at;  // index of the first byte that makes the sequence impossible
};

const Utf8Case kCases[] = {
    // Valid (including noncharacters, which are valid UTF-8).
    {"empty", "", kValid},
    {"ascii", "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!", kValid},
    {"kosme", "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", kValid},
    {"U+0000", std::string_view("\x00", 1), kValid},
    {"U+0080", "\xC2\x80", kValid},
    {"U+0800", "\xE0\xA0\x80", kValid},
    {"U+10000", "\xF0\x90\x80\x80", kValid},
    {"U+007F", "\x7F", kValid},
    {"U+07FF", "\xDF\xBF", kValid},
    {"U+D7FF", "\xED\x9F\xBF", kValid},
    {"U+E000", "\xEE\x80\x80", kValid},
    {"U+FDD0", "\xEF\xB7\x90", kValid},
    {"U+FFFD", "\xEF\xBF\xBD", kValid},
    {"U+FFFE", "\xEF\xBF\xBE", kValid},
    {"U+FFFF", "\xEF\xBF\xBF", kValid},
    {"U+1FFFE", "\xF0\x9F\xBF\xBE", kValid},
    {"U+10FFFF", "\xF4\x8F\xBF\xBF", kValid},
    {"mixed", "a\xC2\x80\xE0\xA0\x80\xF0\x90\x80\x80z\xF4\x8F\xBF\xBF", kValid},

    // Overlong forms.
    {"overlong / (2 bytes)", "\xC0\xAF", 0},
    {"overlong NUL (2 bytes)", "\xC0\x80", 0},
    {"overlong U+007F", "\xC1\xBF", 0},
    {"overlong / (3 bytes)", "\xE0\x80\xAF", 1},
    {"overlong U+07FF", "\xE0\x9F\xBF", 1},
    {"overlong / (4 bytes)", "\xF0\x80\x80\xAF", 1},
    {"overlong U+FFFF", "\xF0\x8F\xBF\xBF", 1},
    {"overlong / (5 bytes)", "\xF8\x80\x80\x80\xAF", 0},
    {"overlong / (6 bytes)", "\xFC\x80\x80\x80\x80\xAF", 0},

    // UTF-16 surrogates.
    {"U+D800", "\xED\xA0\x80", 1},
    {"U+DB7F", "\xED\xAD\xBF", 1},
    {"U+DB80", "\xED\xAE\x80", 1},
    {"U+DBFF", "\xED\xAF\xBF", 1},
    {"U+DC00", "\xED\xB0\x80", 1},
    {"U+DF80", "\xED\xBE\x80", 1},
    {"U+DFFF", "\xED\xBF\xBF", 1},
    {"surrogate pair", "\xED\xA0\x80\xED\xB0\x80", 1},
    {"surrogate after text", "abc\xED\xBF\xBF", 4},

    // Above U+10FFFF.
    {"U+110000", "\xF4\x90\x80\x80", 1},
    {"U+13FFFF", "\xF4\xBF\xBF\xBF", 1},
    {"F5 lead", "\xF5\x80\x80\x80", 0},
    {"F7 lead", "\xF7\xBF\xBF\xBF", 0},
    {"FE", "\xFE", 0},
    {"FF", "\xFF", 0},
    {"FE FE FF FF", "\xFE\xFE\xFF\xFF", 0},
    {"kosme + U+110000 (6.4.1)",
     "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80\x65\x64\x69\x74\x65\x64", 12},

    // Stray continuation bytes.
    {"lone 80", "\x80", 0},
    {"lone BF", "\xBF", 0},
    {"80 BF", "\x80\xBF", 0},
    {"a 80", "a\x80", 1},
    {"extra continuation", "\xC2\x80\x80", 2},
    {"continuations in a row", "abc\x80\x81\x82", 3},

    // Truncated sequences.
    {"C2 at end", "\xC2", kAtEnd},
    {"E0 A0 at end", "\xE0\xA0", kAtEnd},
    {"F0 90 80 at end", "\xF0\x90\x80", kAtEnd},
    {"text then E2 82 at end", "abc\xE2\x82", kAtEnd},
    {"C2 then ASCII", "\xC2\x41", 1},
    {"E0 A0 then ASCII", "\xE0\xA0\x41", 2},
    {"F0 90 80 then ASCII", "\xF0\x90\x80\x41", 3},
    {"E1 then lead byte", "\xE1\xC2\x80", 1},
};

Bytes bytes_of_case(const Utf8Case& c) {
    return Bytes(c.bytes.begin(), c.bytes.end());
}

// Adds `payload` as a text message in fragments cut at `cuts`, and the expectation: echoed when
// valid, otherwise failed with 1007 in the chunk holding the first impossible byte.
void add_text_case(Scenario& s, const Bytes& payload, std::size_t fail_at,
                   const std::vector<std::size_t>& cuts) {
    std::size_t from = 0;
    std::optional<std::size_t> bad_offset;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : payload.size();
        const bool fin = i == cuts.size();
        const std::size_t payload_at =
            s.frame(i == 0 ? op::kText : op::kContinuation, slice(payload, from, to), fin);
        if (fail_at != kValid && fail_at != kAtEnd && fail_at >= from && fail_at < to) {
            bad_offset = payload_at + (fail_at - from);
        }
        from = to;
    }
    if (fail_at == kValid) {
        s.expect_message(Opcode::text, payload);
        return;
    }
    // A truncated sequence is impossible once the final frame is complete: its last byte.
    s.expect_failure(Error::invalid_utf8, bad_offset.value_or(s.size() - 1));
}

}  // namespace

TEST_CASE("§6 valid text is echoed and invalid text fails with 1007, as one frame") {
    for (Role role : kBothRoles) {
        for (const Utf8Case& c : kCases) {
            CAPTURE(c.name);
            Scenario s(role);
            add_text_case(s, bytes_of_case(c), c.fail_at, {});
            s.run();
        }
    }
}

TEST_CASE("§6 valid and invalid text between other text, as one frame") {
    for (Role role : kBothRoles) {
        for (const Utf8Case& c : kCases) {
            if (c.fail_at == kAtEnd) continue;  // text after it would make it a different case
            CAPTURE(c.name);
            Scenario s(role);
            const Bytes payload =
                concat({bytes_of("prefix "), bytes_of_case(c), bytes_of(" suffix")});
            add_text_case(s, payload, c.fail_at == kValid ? kValid : c.fail_at + 7, {});
            s.run();
        }
    }
}

TEST_CASE("§6 text fragmented at every position gives the same verdict as whole") {
    for (Role role : kBothRoles) {
        for (const Utf8Case& c : kCases) {
            CAPTURE(c.name);
            const Bytes payload = bytes_of_case(c);
            for (std::size_t cut = 0; cut <= payload.size(); ++cut) {
                CAPTURE(cut);
                Scenario s(role);
                add_text_case(s, payload, c.fail_at, {cut});
                s.run();
            }
        }
    }
}

TEST_CASE("§6 text fragmented into 1-byte frames gives the same verdict as whole") {
    for (Role role : kBothRoles) {
        for (const Utf8Case& c : kCases) {
            CAPTURE(c.name);
            const Bytes payload = bytes_of_case(c);
            std::vector<std::size_t> cuts;
            for (std::size_t i = 1; i < payload.size(); ++i)
                cuts.push_back(i);
            Scenario s(role);
            add_text_case(s, payload, c.fail_at, cuts);
            s.run();
        }
    }
}

TEST_CASE("§6 a ping between fragments does not disturb a code point split across them") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kText, {0xF0, 0x90}, false);
        s.frame(op::kPing, {0xF0});
        s.frame(op::kContinuation, {0x80, 0x80}, true);
        s.expect_ping({0xF0});
        s.expect_message(Opcode::text, {0xF0, 0x90, 0x80, 0x80});
        s.run();
    }
}

TEST_CASE("§6 fail fast: the 1007 close is sent as soon as the impossible byte arrives") {
    // Autobahn 6.4.x: a long text frame (or message) whose invalid byte comes early; the rest is
    // held back. The close must go out without waiting for it.
    for (Role role : kBothRoles) {
        const Bytes good = text_pattern(50);
        const Bytes bad = concat({good, Bytes{0xF4, 0x90, 0x80, 0x80}, text_pattern(2000)});
        for (bool fragmented : {false, true}) {
            CAPTURE(fragmented);
            Scenario s(role);
            std::size_t bad_at = 0;
            if (fragmented) {
                s.frame(op::kText, good, false);
                bad_at = s.frame(op::kContinuation, slice(bad, 50, 1000), false) + 1;
                s.frame(op::kContinuation, slice(bad, 1000, bad.size()), true);
            } else {
                bad_at = s.frame(op::kText, bad) + 51;
            }
            // Feed only up to the impossible byte (U+110000's second byte): the rest of the frame
            // and of the message has not arrived.
            for (const Feeding& feeding : standard_feedings()) {
                CAPTURE(feeding.name());
                const Outcome o =
                    run_feeding(role, std::span(s.input()).first(bad_at + 1), feeding);
                CHECK(summarize(o.events) == summarize(Event::failure(Error::invalid_utf8)) + "\n");
                check_output(role, o.output, {failure_close_frame(Error::invalid_utf8)});
                CHECK(o.state == State::closed);
                // One byte less is still a valid prefix: nothing happens.
                const Outcome before =
                    run_feeding(role, std::span(s.input()).first(bad_at), feeding);
                CHECK(before.events.empty());
                CHECK(before.output.empty());
                CHECK(before.state == State::open);
            }
            s.expect_failure(Error::invalid_utf8, bad_at);
            s.run();
        }
    }
}

TEST_CASE("§6 every 1-, 2- and 3-byte code point and a sample of 4-byte ones are valid") {
    Bytes text;
    auto put = [&](std::uint32_t cp) {
        if (cp < 0x80) {
            text.push_back(static_cast<std::uint8_t>(cp));
        } else if (cp < 0x800) {
            text.push_back(static_cast<std::uint8_t>(0xC0 | (cp >> 6)));
            text.push_back(static_cast<std::uint8_t>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            text.push_back(static_cast<std::uint8_t>(0xE0 | (cp >> 12)));
            text.push_back(static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
            text.push_back(static_cast<std::uint8_t>(0x80 | (cp & 0x3F)));
        } else {
            text.push_back(static_cast<std::uint8_t>(0xF0 | (cp >> 18)));
            text.push_back(static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3F)));
            text.push_back(static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
            text.push_back(static_cast<std::uint8_t>(0x80 | (cp & 0x3F)));
        }
    };
    for (std::uint32_t cp = 0; cp < 0x10000; ++cp) {
        if (cp < 0xD800 || cp > 0xDFFF) put(cp);
    }
    for (std::uint32_t cp = 0x10000; cp <= 0x10FFFF; cp += 97)
        put(cp);
    put(0x10FFFF);
    for (Role role : kBothRoles) {
        Scenario s(role);
        s.frame(op::kText, text);
        s.expect_message(Opcode::text, text);
        // The same text fragmented at odd sizes, splitting code points across frames.
        for (std::size_t from = 0; from < text.size(); from += 7001) {
            const std::size_t to = std::min(text.size(), from + 7001);
            s.frame(from == 0 ? op::kText : op::kContinuation, slice(text, from, to),
                    to == text.size());
        }
        s.expect_message(Opcode::text, text);
        s.run({Feeding::whole(), Feeding::random(5), Feeding::fixed(4093)});
    }
}

TEST_CASE("§6 every surrogate, overlong lead and out-of-range lead fails with 1007") {
    struct Bad {
        Bytes bytes;
        std::size_t fail_at;
    };
    std::vector<Bad> bad;
    for (std::uint32_t cp = 0xD800; cp <= 0xDFFF; cp += 3) {
        bad.push_back({{0xED, static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
                        static_cast<std::uint8_t>(0x80 | (cp & 0x3F))},
                       1});
    }
    for (std::uint8_t b = 0x80; b <= 0x9F; ++b)
        bad.push_back({{0xE0, b, 0x80}, 1});  // overlong 3-byte forms
    for (std::uint8_t b = 0x80; b <= 0x8F; ++b)
        bad.push_back({{0xF0, b, 0x80, 0x80}, 1});  // overlong 4-byte forms
    for (std::uint8_t b = 0x90; b <= 0xBF; ++b)
        bad.push_back({{0xF4, b, 0x80, 0x80}, 1});  // above U+10FFFF
    for (unsigned lead :
         {0xC0u, 0xC1u, 0xF5u, 0xF6u, 0xF7u, 0xF8u, 0xFBu, 0xFCu, 0xFDu, 0xFEu, 0xFFu})
        bad.push_back({{static_cast<std::uint8_t>(lead), 0x80, 0x80, 0x80}, 0});
    for (Role role : kBothRoles) {
        for (const Bad& b : bad) {
            CAPTURE(summarize_payload(b.bytes));
            Scenario s(role);
            add_text_case(s, b.bytes, b.fail_at, {});
            s.run({Feeding::whole(), Feeding::single_bytes()});
        }
    }
}

TEST_CASE("§6 binary messages are not UTF-8 checked") {
    for (Role role : kBothRoles) {
        Scenario s(role);
        const Bytes invalid{0xC0, 0x80, 0xED, 0xA0, 0x80, 0xFF, 0xF4, 0x90};
        s.frame(op::kBinary, invalid);
        s.expect_message(Opcode::binary, invalid);
        s.frame(op::kBinary, slice(invalid, 0, 3), false);
        s.frame(op::kContinuation, slice(invalid, 3, invalid.size()), true);
        s.expect_message(Opcode::binary, invalid);
        s.run();
    }
}
