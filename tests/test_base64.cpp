#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/base64.hpp"

using wsx::proto::base64_decode;
using wsx::proto::base64_encode;

namespace {

struct Vector {
    std::string_view plain;
    std::string_view encoded;
};

// RFC 4648 §10.
constexpr std::array<Vector, 7> kRfc4648Vectors{{
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
}};

}  // namespace

TEST_CASE("base64 encodes the RFC 4648 test vectors") {
    for (const Vector& v : kRfc4648Vectors) {
        CAPTURE(v.plain);
        CHECK(base64_encode(v.plain) == v.encoded);
    }
}

TEST_CASE("base64 decodes the RFC 4648 test vectors") {
    for (const Vector& v : kRfc4648Vectors) {
        CAPTURE(v.encoded);
        const auto decoded = base64_decode(v.encoded);
        REQUIRE(decoded.has_value());
        CHECK(*decoded == v.plain);
    }
}

TEST_CASE("base64 round-trips every byte value") {
    std::string all;
    for (int b = 0; b < 256; ++b)
        all.push_back(static_cast<char>(b));
    for (std::size_t n = 0; n <= all.size(); n += 37) {
        const std::string plain = all.substr(n);
        const auto decoded = base64_decode(base64_encode(plain));
        REQUIRE(decoded.has_value());
        CHECK(*decoded == plain);
    }
}

TEST_CASE("base64 writes into a caller buffer and refuses one that is too small") {
    const std::array<std::uint8_t, 4> bytes{'f', 'o', 'o', 'b'};
    std::array<char, 8> exact{};
    CHECK(base64_encode(bytes, exact) == 8);
    CHECK(std::string_view(exact.data(), exact.size()) == "Zm9vYg==");

    std::array<char, 7> small{};
    CHECK(base64_encode(bytes, small) == 0);

    std::array<std::uint8_t, 4> out{};
    const auto n = base64_decode("Zm9vYg==", out);
    REQUIRE(n.has_value());
    CHECK(*n == 4);
    CHECK(out == bytes);

    std::array<std::uint8_t, 3> too_small{};
    CHECK_FALSE(base64_decode("Zm9vYg==", too_small).has_value());
}

TEST_CASE("base64 decoding rejects characters outside the alphabet") {
    for (std::string_view bad : {"Zm9v\n", "Zm9 ", "Zm-v", "Zm_v", "Zm9\x80", "Zm.v"}) {
        CAPTURE(bad);
        CHECK_FALSE(base64_decode(bad).has_value());
    }
    CHECK_FALSE(base64_decode(std::string_view("Zm\0v", 4)).has_value());
}

TEST_CASE("base64 decoding rejects lengths that are not a multiple of four") {
    for (std::string_view bad : {"Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg="}) {
        CAPTURE(bad);
        CHECK_FALSE(base64_decode(bad).has_value());
    }
}

TEST_CASE("base64 decoding rejects misplaced padding") {
    for (std::string_view bad : {"====", "Z===", "=Zg=", "Zg==Zg==", "Z=g=", "Zm=v", "Zg=A"}) {
        CAPTURE(bad);
        CHECK_FALSE(base64_decode(bad).has_value());
    }
}

TEST_CASE("base64 decoding rejects non-canonical trailing bits (RFC 4648 §3.5)") {
    // 'h' and '9' leave data in the bits the padding says are unused.
    CHECK_FALSE(base64_decode("Zh==").has_value());
    CHECK_FALSE(base64_decode("Zm9=").has_value());
    CHECK(base64_decode("Zg==").has_value());
    CHECK(base64_decode("Zm8=").has_value());
}
