// RFC 3629 / RFC 6455 §8.1 UTF-8 validation: every code point, Markus Kuhn's decoder stress
// cases, Autobahn 6.x fail-fast cases at every split point, and a differential test against a
// reference built only from an encoder.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "proto/utf8.hpp"

using wsx::proto::is_valid_utf8;
using wsx::proto::Utf8Impl;
using wsx::proto::Utf8Status;
using wsx::proto::Utf8Validator;
using Bytes = std::vector<std::uint8_t>;

namespace {

std::vector<Utf8Impl> available_impls() {
    std::vector<Utf8Impl> impls;
    for (const Utf8Impl impl : {Utf8Impl::scalar, Utf8Impl::sse2, Utf8Impl::avx2, Utf8Impl::neon}) {
        if (wsx::proto::utf8_impl_available(impl)) impls.push_back(impl);
    }
    return impls;
}

Bytes bytes(std::initializer_list<int> values) {
    Bytes out;
    for (const int v : values)
        out.push_back(static_cast<std::uint8_t>(v));
    return out;
}

Bytes concat(const Bytes& a, const Bytes& b) {
    Bytes out = a;
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

Bytes ascii(std::size_t count) {
    return Bytes(count, static_cast<std::uint8_t>('a'));
}

// The textbook encoder (RFC 3629 §3), and nothing else, is what the reference trusts.
Bytes encode(std::uint32_t cp) {
    if (cp < 0x80) return {static_cast<std::uint8_t>(cp)};
    if (cp < 0x800) {
        return {static_cast<std::uint8_t>(0xC0 | (cp >> 6)),
                static_cast<std::uint8_t>(0x80 | (cp & 0x3F))};
    }
    if (cp < 0x10000) {
        return {static_cast<std::uint8_t>(0xE0 | (cp >> 12)),
                static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
                static_cast<std::uint8_t>(0x80 | (cp & 0x3F))};
    }
    return {static_cast<std::uint8_t>(0xF0 | (cp >> 18)),
            static_cast<std::uint8_t>(0x80 | ((cp >> 12) & 0x3F)),
            static_cast<std::uint8_t>(0x80 | ((cp >> 6) & 0x3F)),
            static_cast<std::uint8_t>(0x80 | (cp & 0x3F))};
}

bool is_surrogate(std::uint32_t cp) {
    return cp >= 0xD800 && cp <= 0xDFFF;
}

// A deliberately simple reference: the sets of all encodings of all scalar values and of all
// their prefixes, by length. A stream is read greedily (UTF-8 is prefix-free); the first byte
// that makes the pending bytes no prefix of any encoding is the error.
class Reference {
  public:
    struct Result {
        std::optional<std::size_t> error;
        std::vector<bool> boundary;  // boundary[i]: bytes [0, i) are whole code points
    };

    static const Reference& get() {
        static const Reference reference;
        return reference;
    }

    Result analyze(const Bytes& s) const {
        Result r{std::nullopt, std::vector<bool>(s.size() + 1, false)};
        r.boundary[0] = true;
        std::size_t i = 0;
        while (i < s.size()) {
            std::size_t length = 1;
            for (;;) {
                if (i + length > s.size()) return r;  // truncated: a valid prefix ran out
                const std::uint32_t key = pack(s.data() + i, length);
                if (contains(complete_[length], key)) break;
                if (!contains(prefixes_[length], key)) {
                    r.error = i + length - 1;
                    return r;
                }
                ++length;
            }
            i += length;
            r.boundary[i] = true;
        }
        return r;
    }

    // What status() must say after the first `length` bytes.
    static Utf8Status status_after(const Result& r, std::size_t length) {
        if (r.error && *r.error < length) return Utf8Status::invalid;
        return r.boundary[length] ? Utf8Status::complete : Utf8Status::partial;
    }

  private:
    Reference() {
        for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
            if (is_surrogate(cp)) continue;
            const Bytes e = encode(cp);
            for (std::size_t k = 1; k <= e.size(); ++k)
                prefixes_[k].push_back(pack(e.data(), k));
            complete_[e.size()].push_back(pack(e.data(), e.size()));
        }
        for (auto& set : prefixes_) {
            std::sort(set.begin(), set.end());
            set.erase(std::unique(set.begin(), set.end()), set.end());
        }
        for (auto& set : complete_)
            std::sort(set.begin(), set.end());
    }

    static std::uint32_t pack(const std::uint8_t* p, std::size_t length) {
        std::uint32_t key = 0;
        for (std::size_t k = 0; k < length; ++k)
            key = key << 8 | p[k];
        return key;
    }

    static bool contains(const std::vector<std::uint32_t>& set, std::uint32_t key) {
        return std::binary_search(set.begin(), set.end(), key);
    }

    std::array<std::vector<std::uint32_t>, 5> prefixes_;
    std::array<std::vector<std::uint32_t>, 5> complete_;
};

std::string hex(const Bytes& s) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    std::string out;
    for (std::size_t i = 0; i < s.size() && i < 48; ++i) {
        if (i != 0) out += ' ';
        out += kDigits[s[i] >> 4];
        out += kDigits[s[i] & 15];
    }
    if (s.size() > 48) out += " ... (" + std::to_string(s.size()) + " bytes)";
    return out;
}

struct Verdict {
    Utf8Status status;
    std::uint64_t error_offset;  // only meaningful when invalid
};

Verdict whole(const Bytes& s, Utf8Impl impl) {
    Utf8Validator v;
    v.feed(s, impl);
    return {v.status(), v.status() == Utf8Status::invalid ? v.error_offset() : 0};
}

// Feeds s in pieces ending at each of `cuts` (ascending, the last one s.size()) and returns a
// description of the first disagreement with the reference, or an empty string. Checking the
// return of every feed checks fail-fast: the piece holding the bad byte must already say invalid.
std::string mismatch_in_pieces(const Bytes& s, const std::vector<std::size_t>& cuts, Utf8Impl impl,
                               const Reference::Result& expected) {
    Utf8Validator v;
    std::size_t from = 0;
    for (const std::size_t to : cuts) {
        const std::span<const std::uint8_t> piece(s.data() + from, to - from);
        const Utf8Status got = v.feed(piece, impl);
        const Utf8Status want = Reference::status_after(expected, to);
        if (got != want || v.status() != want) {
            return std::string(wsx::proto::utf8_impl_name(impl)) + ": feeding [" +
                   std::to_string(from) + ", " + std::to_string(to) + ") of " + hex(s) +
                   " gave status " + std::to_string(static_cast<int>(got)) + ", expected " +
                   std::to_string(static_cast<int>(want));
        }
        from = to;
    }
    if (expected.error && v.error_offset() != *expected.error) {
        return std::string(wsx::proto::utf8_impl_name(impl)) + ": error_offset " +
               std::to_string(v.error_offset()) + ", expected " + std::to_string(*expected.error) +
               " for " + hex(s);
    }
    return {};
}

std::vector<std::size_t> one_byte_cuts(std::size_t size) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i <= size; ++i)
        cuts.push_back(i);
    if (cuts.empty()) cuts.push_back(0);
    return cuts;
}

// Whole, every two-piece split, and one byte at a time, with every kernel.
void check_every_split(const Bytes& s) {
    const Reference::Result expected = Reference::get().analyze(s);
    CHECK_MESSAGE(
        is_valid_utf8(s) == (Reference::status_after(expected, s.size()) == Utf8Status::complete),
        hex(s));
    for (const Utf8Impl impl : available_impls()) {
        for (std::size_t split = 0; split <= s.size(); ++split) {
            const std::string m = mismatch_in_pieces(s, {split, s.size()}, impl, expected);
            REQUIRE_MESSAGE(m.empty(), m);
        }
        const std::string m = mismatch_in_pieces(s, one_byte_cuts(s.size()), impl, expected);
        REQUIRE_MESSAGE(m.empty(), m);
    }
}

// "κόσμε", the Greek word of Kuhn's and Autobahn's tests.
const Bytes kKosme = bytes({0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5});

struct StressCase {
    const char* name;
    Bytes input;
    Utf8Status status;
    std::uint64_t error_offset;  // for invalid ones
};

constexpr auto kComplete = Utf8Status::complete;
constexpr auto kPartial = Utf8Status::partial;
constexpr auto kInvalid = Utf8Status::invalid;

// Markus Kuhn's UTF-8-test.txt, by section, with the verdict RFC 3629 gives and the byte where a
// fail-fast decoder must stop.
std::vector<StressCase> kuhn_cases() {
    std::vector<StressCase> c = {
        {"1 kosme", kKosme, kComplete, 0},
        // 2.1 first sequence of each length; 5 and 6 bytes no longer exist (RFC 3629 §3).
        {"2.1.1 U+0000", bytes({0x00}), kComplete, 0},
        {"2.1.2 U+0080", bytes({0xC2, 0x80}), kComplete, 0},
        {"2.1.3 U+0800", bytes({0xE0, 0xA0, 0x80}), kComplete, 0},
        {"2.1.4 U+10000", bytes({0xF0, 0x90, 0x80, 0x80}), kComplete, 0},
        {"2.1.5 5-byte U+200000", bytes({0xF8, 0x88, 0x80, 0x80, 0x80}), kInvalid, 0},
        {"2.1.6 6-byte U+4000000", bytes({0xFC, 0x84, 0x80, 0x80, 0x80, 0x80}), kInvalid, 0},
        // 2.2 last sequence of each length.
        {"2.2.1 U+007F", bytes({0x7F}), kComplete, 0},
        {"2.2.2 U+07FF", bytes({0xDF, 0xBF}), kComplete, 0},
        {"2.2.3 U+FFFF", bytes({0xEF, 0xBF, 0xBF}), kComplete, 0},
        {"2.2.4 U+1FFFFF", bytes({0xF7, 0xBF, 0xBF, 0xBF}), kInvalid, 0},
        {"2.2.5 U+3FFFFFF", bytes({0xFB, 0xBF, 0xBF, 0xBF, 0xBF}), kInvalid, 0},
        {"2.2.6 U+7FFFFFFF", bytes({0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF}), kInvalid, 0},
        // 2.3 other boundaries.
        {"2.3.1 U+D7FF", bytes({0xED, 0x9F, 0xBF}), kComplete, 0},
        {"2.3.2 U+E000", bytes({0xEE, 0x80, 0x80}), kComplete, 0},
        {"2.3.3 U+FFFD", bytes({0xEF, 0xBF, 0xBD}), kComplete, 0},
        {"2.3.4 U+10FFFF", bytes({0xF4, 0x8F, 0xBF, 0xBF}), kComplete, 0},
        {"2.3.5 U+110000", bytes({0xF4, 0x90, 0x80, 0x80}), kInvalid, 1},
        // 3.1 unexpected continuation bytes.
        {"3.1.1 first continuation", bytes({0x80}), kInvalid, 0},
        {"3.1.2 last continuation", bytes({0xBF}), kInvalid, 0},
        {"3.1.3 2 continuations", bytes({0x80, 0xBF}), kInvalid, 0},
        {"3.1.4 3 continuations", bytes({0x80, 0xBF, 0x80}), kInvalid, 0},
        {"3.1.x continuation after ASCII", bytes({0x41, 0x80}), kInvalid, 1},
        {"3.1.x continuation after a complete sequence", bytes({0xC2, 0x80, 0x80}), kInvalid, 2},
        {"3.1.x 4 continuations after a 3-byte lead", bytes({0xE1, 0x80, 0x80, 0x80}), kInvalid, 3},
        // 3.3 sequences with the last continuation byte missing.
        {"3.3.1 C0 alone", bytes({0xC0}), kInvalid, 0},
        {"3.3.2 E0 80 (already overlong)", bytes({0xE0, 0x80}), kInvalid, 1},
        {"3.3.3 F0 80 80 (already overlong)", bytes({0xF0, 0x80, 0x80}), kInvalid, 1},
        {"3.3.4 F8 80 80 80", bytes({0xF8, 0x80, 0x80, 0x80}), kInvalid, 0},
        {"3.3.5 FC 80 80 80 80", bytes({0xFC, 0x80, 0x80, 0x80, 0x80}), kInvalid, 0},
        {"3.3.6 DF", bytes({0xDF}), kPartial, 0},
        {"3.3.7 EF BF", bytes({0xEF, 0xBF}), kPartial, 0},
        {"3.3.8 F7 BF BF", bytes({0xF7, 0xBF, 0xBF}), kInvalid, 0},
        {"3.3.9 FB BF BF BF", bytes({0xFB, 0xBF, 0xBF, 0xBF}), kInvalid, 0},
        {"3.3.10 FD BF BF BF BF", bytes({0xFD, 0xBF, 0xBF, 0xBF, 0xBF}), kInvalid, 0},
        {"3.3.x C2", bytes({0xC2}), kPartial, 0},
        {"3.3.x E0 A0", bytes({0xE0, 0xA0}), kPartial, 0},
        {"3.3.x F0 90 80", bytes({0xF0, 0x90, 0x80}), kPartial, 0},
        {"3.3.x F4 8F BF", bytes({0xF4, 0x8F, 0xBF}), kPartial, 0},
        {"3.3.x F1 80 80", bytes({0xF1, 0x80, 0x80}), kPartial, 0},
        {"3.3.x kosme then E1 BD", concat(kKosme, bytes({0xE1, 0xBD})), kPartial, 0},
        // 3.4 concatenation of incomplete sequences.
        {"3.4 all of 3.3", bytes({0xC0, 0xE0, 0x80, 0xF0, 0x80, 0x80, 0xF8, 0x80, 0x80, 0x80,
                                  0xFC, 0x80, 0x80, 0x80, 0x80, 0xDF, 0xEF, 0xBF, 0xF7, 0xBF,
                                  0xBF, 0xFB, 0xBF, 0xBF, 0xBF, 0xFD, 0xBF, 0xBF, 0xBF, 0xBF}),
         kInvalid, 0},
        {"3.4 truncated 2-, 3-, 4-byte sequences back to back",
         bytes({0xDF, 0xEF, 0xBF, 0xF4, 0x8F, 0xBF}), kInvalid, 1},
        {"3.4 truncated 3-byte then 4-byte", bytes({0xE1, 0x80, 0xF1, 0x80, 0x80}), kInvalid, 2},
        // 3.5 impossible bytes.
        {"3.5.1 FE", bytes({0xFE}), kInvalid, 0},
        {"3.5.2 FF", bytes({0xFF}), kInvalid, 0},
        {"3.5.3 FE FE FF FF", bytes({0xFE, 0xFE, 0xFF, 0xFF}), kInvalid, 0},
        // 4.1 overlong '/'.
        {"4.1.1 C0 AF", bytes({0xC0, 0xAF}), kInvalid, 0},
        {"4.1.2 E0 80 AF", bytes({0xE0, 0x80, 0xAF}), kInvalid, 1},
        {"4.1.3 F0 80 80 AF", bytes({0xF0, 0x80, 0x80, 0xAF}), kInvalid, 1},
        {"4.1.4 F8 80 80 80 AF", bytes({0xF8, 0x80, 0x80, 0x80, 0xAF}), kInvalid, 0},
        {"4.1.5 FC 80 80 80 80 AF", bytes({0xFC, 0x80, 0x80, 0x80, 0x80, 0xAF}), kInvalid, 0},
        // 4.2 maximum overlong sequences.
        {"4.2.1 C1 BF", bytes({0xC1, 0xBF}), kInvalid, 0},
        {"4.2.2 E0 9F BF", bytes({0xE0, 0x9F, 0xBF}), kInvalid, 1},
        {"4.2.3 F0 8F BF BF", bytes({0xF0, 0x8F, 0xBF, 0xBF}), kInvalid, 1},
        {"4.2.4 F8 87 BF BF BF", bytes({0xF8, 0x87, 0xBF, 0xBF, 0xBF}), kInvalid, 0},
        {"4.2.5 FC 83 BF BF BF BF", bytes({0xFC, 0x83, 0xBF, 0xBF, 0xBF, 0xBF}), kInvalid, 0},
        // 4.3 overlong NUL.
        {"4.3.1 C0 80", bytes({0xC0, 0x80}), kInvalid, 0},
        {"4.3.2 E0 80 80", bytes({0xE0, 0x80, 0x80}), kInvalid, 1},
        {"4.3.3 F0 80 80 80", bytes({0xF0, 0x80, 0x80, 0x80}), kInvalid, 1},
        {"4.3.4 F8 80 80 80 80", bytes({0xF8, 0x80, 0x80, 0x80, 0x80}), kInvalid, 0},
        {"4.3.5 FC 80 80 80 80 80", bytes({0xFC, 0x80, 0x80, 0x80, 0x80, 0x80}), kInvalid, 0},
        // 5.1 single UTF-16 surrogates.
        {"5.1.1 U+D800", bytes({0xED, 0xA0, 0x80}), kInvalid, 1},
        {"5.1.2 U+DB7F", bytes({0xED, 0xAD, 0xBF}), kInvalid, 1},
        {"5.1.3 U+DB80", bytes({0xED, 0xAE, 0x80}), kInvalid, 1},
        {"5.1.4 U+DBFF", bytes({0xED, 0xAF, 0xBF}), kInvalid, 1},
        {"5.1.5 U+DC00", bytes({0xED, 0xB0, 0x80}), kInvalid, 1},
        {"5.1.6 U+DF80", bytes({0xED, 0xBE, 0x80}), kInvalid, 1},
        {"5.1.7 U+DFFF", bytes({0xED, 0xBF, 0xBF}), kInvalid, 1},
        // 5.2 paired surrogates.
        {"5.2.1 U+D800 U+DC00", bytes({0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}), kInvalid, 1},
        {"5.2.8 U+DBFF U+DFFF", bytes({0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF}), kInvalid, 1},
        // 5.3 noncharacters are valid scalar values.
        {"5.3.1 U+FFFE", bytes({0xEF, 0xBF, 0xBE}), kComplete, 0},
        {"5.3.2 U+FFFF", bytes({0xEF, 0xBF, 0xBF}), kComplete, 0},
        {"5.3.3 U+FDD0", bytes({0xEF, 0xB7, 0x90}), kComplete, 0},
        {"5.3.3 U+FDEF", bytes({0xEF, 0xB7, 0xAF}), kComplete, 0},
        {"5.3.4 U+1FFFE", bytes({0xF0, 0x9F, 0xBF, 0xBE}), kComplete, 0},
        {"5.3.4 U+10FFFF", bytes({0xF4, 0x8F, 0xBF, 0xBF}), kComplete, 0},
        // Autobahn 6.3, 6.4: κόσμε then an impossible byte, fail before the message ends.
        {"Autobahn 6.3.1 kosme + surrogate + edited",
         concat(kKosme, bytes({0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64})), kInvalid,
         12},
        {"Autobahn 6.4.1 kosme + F4 90 80 80 + edited",
         concat(kKosme, bytes({0xF4, 0x90, 0x80, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64})),
         kInvalid, 12},
        {"Autobahn 6.4.2 kosme + F4 90 80 80", concat(kKosme, bytes({0xF4, 0x90, 0x80, 0x80})),
         kInvalid, 12},
        {"Autobahn 6.4.3 kosme + C0 + edited", concat(kKosme, bytes({0xC0, 0x65, 0x64, 0x69})),
         kInvalid, 11},
        {"Autobahn 6.4.4 kosme + lone continuation", concat(kKosme, bytes({0x80, 0x65})), kInvalid,
         11},
    };
    // 3.1.9 every continuation byte alone, 3.2 every lead byte followed by a space.
    for (int b = 0x80; b <= 0xBF; ++b) {
        c.push_back({"3.1.9 lone continuation", bytes({b}), kInvalid, 0});
    }
    for (int b = 0xC0; b <= 0xFF; ++b) {
        const bool never_valid = b <= 0xC1 || b >= 0xF5;
        c.push_back(
            {"3.2 lonely start then space", bytes({b, 0x20}), kInvalid, never_valid ? 0u : 1u});
    }
    return c;
}

}  // namespace

TEST_CASE("the reference decoder agrees with Kuhn's verdicts") {
    for (const StressCase& c : kuhn_cases()) {
        const Reference::Result r = Reference::get().analyze(c.input);
        CHECK_MESSAGE(Reference::status_after(r, c.input.size()) == c.status, c.name);
        if (c.status == kInvalid) CHECK_MESSAGE(r.error == c.error_offset, c.name);
    }
}

TEST_CASE("Kuhn's decoder stress cases get the RFC 3629 verdict and fail at the first bad byte") {
    for (const Utf8Impl impl : available_impls()) {
        CAPTURE(wsx::proto::utf8_impl_name(impl));
        for (const StressCase& c : kuhn_cases()) {
            CAPTURE(c.name);
            // Alone, and after enough ASCII and κόσμε to reach the SIMD blocks.
            for (const Bytes& lead : {Bytes{}, ascii(61), concat(ascii(64), kKosme)}) {
                const Verdict v = whole(concat(lead, c.input), impl);
                CHECK(v.status == c.status);
                if (c.status == kInvalid) CHECK(v.error_offset == lead.size() + c.error_offset);
            }
        }
    }
}

TEST_CASE("Kuhn's and Autobahn 6.x cases give the same result at every split point") {
    for (const StressCase& c : kuhn_cases()) {
        CAPTURE(c.name);
        check_every_split(c.input);
        check_every_split(concat(ascii(30), c.input));
        check_every_split(concat(concat(ascii(90), kKosme), c.input));
    }
    // Errors near 32- and 64-byte block edges, and sequences straddling them.
    const Bytes euro = bytes({0xE2, 0x82, 0xAC});
    const Bytes emoji = bytes({0xF0, 0x9F, 0x98, 0x80});
    for (std::size_t pad = 58; pad <= 70; ++pad) {
        CAPTURE(pad);
        check_every_split(concat(concat(ascii(pad), emoji), ascii(70)));
        check_every_split(concat(concat(ascii(pad), euro), ascii(3)));
        check_every_split(concat(concat(ascii(pad), bytes({0xED, 0xA0, 0x80})), ascii(70)));
        check_every_split(concat(concat(ascii(pad), bytes({0xF0, 0x9F, 0x98})), ascii(70)));
        check_every_split(concat(ascii(pad), bytes({0xF0, 0x9F, 0x98})));
    }
}

TEST_CASE("every Unicode scalar value is accepted, whole and byte by byte") {
    std::size_t failures = 0;
    std::uint32_t first_failure = 0;
    for (const Utf8Impl impl : available_impls()) {
        CAPTURE(wsx::proto::utf8_impl_name(impl));
        for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
            if (is_surrogate(cp)) continue;
            const Bytes e = encode(cp);
            bool ok = whole(e, impl).status == kComplete && is_valid_utf8(e);
            Utf8Validator v;
            for (std::size_t i = 0; i < e.size(); ++i) {
                const Utf8Status want = i + 1 == e.size() ? kComplete : kPartial;
                ok = ok && v.feed(std::span(e).subspan(i, 1), impl) == want;
            }
            if (!ok && failures++ == 0) first_failure = cp;
        }
    }
    CHECK_MESSAGE(failures == 0, "first failing code point: " << first_failure);
}

TEST_CASE("all scalar values back to back are one valid stream, in any chunking") {
    Bytes all;
    for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        if (is_surrogate(cp)) continue;
        const Bytes e = encode(cp);
        all.insert(all.end(), e.begin(), e.end());
    }
    std::mt19937_64 rng(7);
    for (const Utf8Impl impl : available_impls()) {
        CAPTURE(wsx::proto::utf8_impl_name(impl));
        // An ASCII shift moves every sequence to another position within the SIMD blocks.
        for (std::size_t shift = 0; shift < 4; ++shift) {
            const Bytes s = concat(ascii(shift), all);
            CHECK(whole(s, impl).status == kComplete);
            Utf8Validator v;
            std::size_t pos = 0;
            bool ok = true;
            while (pos < s.size()) {
                const std::size_t n = std::min<std::size_t>(s.size() - pos, rng() % 300);
                ok = ok && v.feed(std::span(s).subspan(pos, n), impl) != kInvalid;
                pos += n;
            }
            CHECK(ok);
            CHECK(v.status() == kComplete);
        }
    }
}

TEST_CASE("every surrogate U+D800..U+DFFF is rejected at its second byte") {
    for (const Utf8Impl impl : available_impls()) {
        CAPTURE(wsx::proto::utf8_impl_name(impl));
        std::size_t failures = 0;
        for (std::uint32_t cp = 0xD800; cp <= 0xDFFF; ++cp) {
            const Bytes e = encode(cp);  // the generic formula gives ED A0..BF 80..BF
            const Verdict alone = whole(e, impl);
            const Verdict inside = whole(concat(concat(ascii(45), e), ascii(80)), impl);
            Utf8Validator split;
            const bool first_ok = split.feed(std::span(e).first(1), impl) == kPartial;
            const bool second_bad = split.feed(std::span(e).subspan(1, 1), impl) == kInvalid;
            if (alone.status != kInvalid || alone.error_offset != 1 || inside.status != kInvalid ||
                inside.error_offset != 46 || !first_ok || !second_bad ||
                split.error_offset() != 1) {
                ++failures;
            }
        }
        CHECK(failures == 0);
    }
}

TEST_CASE("an invalid stream stays invalid until reset") {
    for (const Utf8Impl impl : available_impls()) {
        Utf8Validator v;
        CHECK(v.status() == kComplete);  // the empty stream
        CHECK(v.feed(Bytes{}, impl) == kComplete);
        CHECK(v.feed(bytes({0x41, 0xE2, 0x82}), impl) == kPartial);
        CHECK(v.feed(Bytes{}, impl) == kPartial);
        CHECK(v.feed(bytes({0xAC, 0x42}), impl) == kComplete);
        CHECK(v.feed(bytes({0x43, 0xFF, 0x44}), impl) == kInvalid);
        CHECK(v.error_offset() == 6);
        CHECK(v.feed(bytes({0x45}), impl) == kInvalid);
        CHECK(v.feed(ascii(100), impl) == kInvalid);
        CHECK(v.status() == kInvalid);
        CHECK(v.error_offset() == 6);
        v.reset();
        CHECK(v.status() == kComplete);
        CHECK(v.feed(bytes({0x80}), impl) == kInvalid);
        CHECK(v.error_offset() == 0);
    }
}

TEST_CASE("is_valid_utf8 needs complete valid UTF-8") {
    CHECK(is_valid_utf8(Bytes{}));
    CHECK(is_valid_utf8(kKosme));
    CHECK_FALSE(is_valid_utf8(bytes({0xE2, 0x82})));  // truncated
    CHECK_FALSE(is_valid_utf8(concat(ascii(200), bytes({0xF0, 0x9F, 0x98}))));
    CHECK_FALSE(is_valid_utf8(bytes({0xC0, 0x80})));
}

TEST_CASE("the selected kernel is available and every kernel has a name") {
    CHECK(wsx::proto::utf8_impl_available(Utf8Impl::scalar));
    CHECK(wsx::proto::utf8_impl_available(wsx::proto::utf8_impl_selected()));
    CHECK(std::string(wsx::proto::utf8_impl_name(Utf8Impl::avx2)) == "avx2");
    const std::string selected = wsx::proto::utf8_impl_name(wsx::proto::utf8_impl_selected());
    MESSAGE("selected UTF-8 kernel: " << selected);
}

namespace {

// Mostly valid text of a random flavour (ASCII, mixed, all multibyte), then maybe corrupted.
Bytes random_text(std::mt19937_64& rng, std::size_t target) {
    static constexpr std::array<std::uint32_t, 12> kEdges = {
        0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFE, 0xFFFF, 0x10000, 0x10FFFF, 0};
    const unsigned ascii_percent = std::array<unsigned, 4>{95, 50, 10, 0}[rng() % 4];
    Bytes s;
    while (s.size() < target) {
        std::uint32_t cp;
        const unsigned pick = static_cast<unsigned>(rng() % 100);
        if (pick < ascii_percent) {
            cp = static_cast<std::uint32_t>(rng() % 0x80);
        } else {
            switch (rng() % 5) {
                case 0:
                    cp = 0x80 + static_cast<std::uint32_t>(rng() % (0x800 - 0x80));
                    break;
                case 1:
                    cp = 0x800 + static_cast<std::uint32_t>(rng() % (0x10000 - 0x800));
                    break;
                case 2:
                    cp = 0x10000 + static_cast<std::uint32_t>(rng() % (0x110000 - 0x10000));
                    break;
                case 3:
                    cp = kEdges[rng() % kEdges.size()];
                    break;
                default:
                    cp = 0x3B1 + static_cast<std::uint32_t>(rng() % 25);  // Greek
                    break;
            }
        }
        if (is_surrogate(cp)) continue;
        const Bytes e = encode(cp);
        s.insert(s.end(), e.begin(), e.end());
    }
    if (rng() % 4 == 0) s.resize(target);  // may cut a sequence
    static constexpr std::array<std::uint8_t, 14> kNasty = {
        0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5};
    const unsigned corruptions = rng() % 2 == 0 ? 0 : 1 + static_cast<unsigned>(rng() % 3);
    for (unsigned k = 0; k < corruptions && !s.empty(); ++k) {
        const std::size_t at = rng() % s.size();
        const auto value =
            rng() % 2 == 0 ? kNasty[rng() % kNasty.size()] : static_cast<std::uint8_t>(rng());
        switch (rng() % 4) {
            case 0:
                s[at] = value;
                break;
            case 1:
                s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), value);
                break;
            case 2:
                s.erase(s.begin() + static_cast<std::ptrdiff_t>(at));
                break;
            default:
                s.resize(at);
                break;
        }
    }
    return s;
}

std::vector<std::size_t> random_cuts(std::mt19937_64& rng, std::size_t size) {
    std::vector<std::size_t> cuts;
    const std::size_t count = rng() % 6;
    for (std::size_t k = 0; k < count && size > 0; ++k)
        cuts.push_back(rng() % size);
    cuts.push_back(size);
    std::sort(cuts.begin(), cuts.end());
    return cuts;
}

void differential(std::mt19937_64& rng, std::size_t length, std::size_t& checked) {
    const Bytes s = random_text(rng, length);
    const Reference::Result expected = Reference::get().analyze(s);
    const bool want_valid = Reference::status_after(expected, s.size()) == kComplete;
    REQUIRE_MESSAGE(is_valid_utf8(s) == want_valid, hex(s));
    for (const Utf8Impl impl : available_impls()) {
        const std::string whole_mismatch = mismatch_in_pieces(s, {s.size()}, impl, expected);
        REQUIRE_MESSAGE(whole_mismatch.empty(), whole_mismatch);
        const std::string split_mismatch =
            mismatch_in_pieces(s, random_cuts(rng, s.size()), impl, expected);
        REQUIRE_MESSAGE(split_mismatch.empty(), split_mismatch);
    }
    ++checked;
}

}  // namespace

TEST_CASE("random text: every kernel matches the reference decoder, whole and split") {
    std::mt19937_64 rng(20240611);
    std::size_t checked = 0;
    for (int round = 0; round < 100; ++round) {
        for (std::size_t length = 0; length <= 200; ++length)
            differential(rng, length, checked);
    }
    for (int round = 0; round < 300; ++round)
        differential(rng, 4096, checked);
    CHECK(checked == 100 * 201 + 300);
}
