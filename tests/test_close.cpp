#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "proto/close.hpp"

using namespace wsx::proto;

namespace {

std::vector<std::uint8_t> payload(std::uint16_t code, std::string_view reason = {}) {
    std::vector<std::uint8_t> p{static_cast<std::uint8_t>(code >> 8),
                                static_cast<std::uint8_t>(code & 0xFF)};
    p.insert(p.end(), reason.begin(), reason.end());
    return p;
}

}  // namespace

TEST_CASE("codes Autobahn 7.7 sends are valid on the wire") {
    for (std::uint16_t code :
         {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
        CAPTURE(code);
        CHECK(is_valid_wire_close_code(code));
        CHECK(is_sendable_close_code(code));
    }
}

TEST_CASE("codes Autobahn 7.9 sends are invalid on the wire") {
    for (std::uint16_t code :
         {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
        CAPTURE(code);
        CHECK_FALSE(is_valid_wire_close_code(code));
        CHECK_FALSE(is_sendable_close_code(code));
    }
}

TEST_CASE("registered codes 1012-1014 are valid on the wire") {
    CHECK(is_valid_wire_close_code(close_code::kServiceRestart));
    CHECK(is_valid_wire_close_code(close_code::kTryAgainLater));
    CHECK(is_valid_wire_close_code(close_code::kBadGateway));
}

TEST_CASE("every code in 0..65535 is classified as the RFC ranges say") {
    for (std::uint32_t c = 0; c <= 0xFFFF; ++c) {
        const auto code = static_cast<std::uint16_t>(c);
        const bool expected =
            (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
        REQUIRE(is_valid_wire_close_code(code) == expected);
    }
}

TEST_CASE("an empty close payload has no code") {
    ClosePayload cp;
    CHECK(parse_close_payload({}, cp) == Error::none);
    CHECK_FALSE(cp.has_code);
    CHECK(cp.code == close_code::kNoStatus);
    CHECK(cp.reason.empty());
}

TEST_CASE("a one-byte close payload is a protocol error") {
    const std::uint8_t one[] = {0x03};
    ClosePayload cp;
    CHECK(parse_close_payload(one, cp) == Error::close_payload_one_byte);
    CHECK(close_code_for(Error::close_payload_one_byte) == 1002);
}

TEST_CASE("a close payload with code and reason is parsed") {
    const auto p = payload(1000, "bye");
    ClosePayload cp;
    REQUIRE(parse_close_payload(p, cp) == Error::none);
    CHECK(cp.has_code);
    CHECK(cp.code == 1000);
    CHECK(cp.reason == "bye");
}

TEST_CASE("a close reason of 123 bytes is accepted, 124 is too long") {
    ClosePayload cp;
    CHECK(parse_close_payload(payload(1000, std::string(123, '*')), cp) == Error::none);
    CHECK(cp.reason.size() == 123);
    CHECK(parse_close_payload(payload(1000, std::string(124, '*')), cp) ==
          Error::control_frame_too_long);
}

TEST_CASE("an invalid close code is a protocol error") {
    ClosePayload cp;
    CHECK(parse_close_payload(payload(1005), cp) == Error::invalid_close_code);
    CHECK(parse_close_payload(payload(999, "x"), cp) == Error::invalid_close_code);
    CHECK(close_code_for(Error::invalid_close_code) == 1002);
}

TEST_CASE("a close reason with invalid UTF-8 fails with 1007") {
    // Autobahn 7.5.1: "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64..."
    const std::string bad = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64";
    ClosePayload cp;
    CHECK(parse_close_payload(payload(1000, bad), cp) == Error::close_reason_invalid_utf8);
    CHECK(close_code_for(Error::close_reason_invalid_utf8) == 1007);
}

TEST_CASE("write_close_payload writes the code big-endian and the reason") {
    std::array<std::uint8_t, 125> out{};
    const auto n = write_close_payload(out, 1001, "going");
    REQUIRE(n == 7);
    CHECK(out[0] == 0x03);
    CHECK(out[1] == 0xE9);
    CHECK(std::string(out.begin() + 2, out.begin() + 7) == "going");
    ClosePayload cp;
    CHECK(parse_close_payload({out.data(), n}, cp) == Error::none);
    CHECK(cp.code == 1001);
}

TEST_CASE("write_close_payload cuts a long reason on a UTF-8 boundary") {
    std::string reason;
    for (int i = 0; i < 60; ++i)
        reason += "\xc3\xa9";              // é, two bytes each: 120 bytes
    reason += "\xe2\x82\xac\xe2\x82\xac";  // two €, three bytes each: 126 bytes
    std::array<std::uint8_t, 125> out{};
    const auto n = write_close_payload(out, 1000, reason);
    CHECK(n == 2 + 123);  // 120 + one whole € fits exactly
    ClosePayload cp;
    CHECK(parse_close_payload({out.data(), n}, cp) == Error::none);

    reason = std::string(122, 'a') + "\xe2\x82\xac";  // € would straddle byte 123
    const auto m = write_close_payload(out, 1000, reason);
    CHECK(m == 2 + 122);
    CHECK(parse_close_payload({out.data(), m}, cp) == Error::none);
}

TEST_CASE("write_close_payload with no reason writes just the code") {
    std::array<std::uint8_t, 125> out{};
    CHECK(write_close_payload(out, 1000, {}) == 2);
    CHECK(out[0] == 0x03);
    CHECK(out[1] == 0xE8);
}
