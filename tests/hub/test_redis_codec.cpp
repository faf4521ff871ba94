// The Redis backplane's pure parts: the envelope every PUBLISH carries and the redis:// URL.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "hub/redis_backplane.hpp"

using wsx::hub::BackplaneMessage;
using wsx::hub::decode_envelope;
using wsx::hub::encode_envelope;
using wsx::hub::parse_redis_url;

namespace {

std::span<const std::uint8_t> bytes_of(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST_CASE("an envelope round-trips origin, opcode, broadcast flag and payload") {
    const std::vector<std::uint8_t> payload{0x00, 0xff, 'h', 'i'};
    for (const bool broadcast : {false, true}) {
        for (const auto opcode : {wsx::proto::Opcode::text, wsx::proto::Opcode::binary}) {
            BackplaneMessage message;
            message.origin = 0x0123456789abcdefULL;
            message.broadcast = broadcast;
            message.opcode = opcode;
            message.topic = "ignored";
            message.payload = payload;
            std::string wire = "prefix";
            encode_envelope(message, wire);
            REQUIRE(wire.size() == 6 + wsx::hub::kEnvelopeHeaderSize + payload.size());
            const auto decoded = decode_envelope(bytes_of(wire).subspan(6));
            REQUIRE(decoded.has_value());
            CHECK(decoded->origin == message.origin);
            CHECK(decoded->broadcast == broadcast);
            CHECK(decoded->opcode == opcode);
            CHECK(decoded->topic.empty());
            CHECK(std::vector<std::uint8_t>(decoded->payload.begin(), decoded->payload.end()) ==
                  payload);
        }
    }
}

TEST_CASE("the envelope header is version, kind, then the origin big-endian") {
    BackplaneMessage message;
    message.origin = 0x0102030405060708ULL;
    message.opcode = wsx::proto::Opcode::binary;
    message.broadcast = true;
    std::string wire;
    encode_envelope(message, wire);
    const std::string expected("\x01\x82\x01\x02\x03\x04\x05\x06\x07\x08", 10);
    CHECK(wire == expected);
}

TEST_CASE("an empty payload is a valid envelope") {
    BackplaneMessage message;
    message.origin = 7;
    std::string wire;
    encode_envelope(message, wire);
    const auto decoded = decode_envelope(bytes_of(wire));
    REQUIRE(decoded.has_value());
    CHECK(decoded->payload.empty());
    CHECK(decoded->origin == 7);
}

TEST_CASE("malformed envelopes are refused") {
    BackplaneMessage message;
    message.origin = 1;
    std::string good;
    encode_envelope(message, good);
    CHECK_FALSE(decode_envelope(bytes_of(good.substr(0, 9))).has_value());  // short
    std::string wrong_version = good;
    wrong_version[0] = 2;
    CHECK_FALSE(decode_envelope(bytes_of(wrong_version)).has_value());
    for (const char kind : {'\x00', '\x08', '\x09', '\x0a', '\x91', '\x40'}) {
        std::string bad = good;
        bad[1] = kind;
        CHECK_FALSE(decode_envelope(bytes_of(bad)).has_value());
    }
    CHECK_FALSE(decode_envelope({}).has_value());
}

TEST_CASE("a redis URL gives host, port and prefix, with defaults") {
    auto url = parse_redis_url("redis://127.0.0.1:6390/chat");
    REQUIRE(url.has_value());
    CHECK(url->host == "127.0.0.1");
    CHECK(url->port == 6390);
    CHECK(url->prefix == "chat");

    url = parse_redis_url("redis://cache.internal");
    REQUIRE(url.has_value());
    CHECK(url->host == "cache.internal");
    CHECK(url->port == 6379);
    CHECK(url->prefix == "wsx");

    url = parse_redis_url("redis://localhost:1/");
    REQUIRE(url.has_value());
    CHECK(url->port == 1);
    CHECK(url->prefix == "wsx");

    url = parse_redis_url("redis://[::1]:7000/a.b-c_d:e");
    REQUIRE(url.has_value());
    CHECK(url->host == "::1");
    CHECK(url->port == 7000);
    CHECK(url->prefix == "a.b-c_d:e");

    url = parse_redis_url("redis://[fe80::1]");
    REQUIRE(url.has_value());
    CHECK(url->host == "fe80::1");
    CHECK(url->port == 6379);
    CHECK(url->username.empty());
    CHECK(url->password.empty());
}

TEST_CASE("credentials in a redis URL: [user]:password@, percent-decoded") {
    auto url = parse_redis_url("redis://:s3cret@127.0.0.1:6390/chat");
    REQUIRE(url.has_value());
    CHECK(url->username.empty());
    CHECK(url->password == "s3cret");
    CHECK(url->host == "127.0.0.1");
    CHECK(url->port == 6390);
    CHECK(url->prefix == "chat");

    // The last @ ends the credentials; %40 and %3A are how a password holds @ and :.
    url = parse_redis_url("redis://chat-node:p%40ss%3Aw%2Fd@[::1]");
    REQUIRE(url.has_value());
    CHECK(url->username == "chat-node");
    CHECK(url->password == "p@ss:w/d");
    CHECK(url->host == "::1");

    url = parse_redis_url("redis://u:a@b@cache");
    REQUIRE(url.has_value());
    CHECK(url->password == "a@b");
    CHECK(url->host == "cache");
}

TEST_CASE("a bad redis URL is refused with the reason") {
    const struct {
        const char* url;
        const char* why;
    } cases[] = {
        {"http://127.0.0.1:6379", "the URL must start with redis://"},
        {"127.0.0.1:6379", "the URL must start with redis://"},
        {"rediss://127.0.0.1", "rediss:// (Redis over TLS) is not supported"},
        {"redis://", "the URL has no host"},
        {"redis://:6379", "the URL has no host"},
        {"redis://h:", "empty port"},
        {"redis://h:0", "the port is not a number from 1 to 65535"},
        {"redis://h:65536", "the port is not a number from 1 to 65535"},
        {"redis://h:99999999999", "the port is not a number from 1 to 65535"},
        {"redis://h:12a", "the port is not a number from 1 to 65535"},
        {"redis://h:-1", "the port is not a number from 1 to 65535"},
        {"redis://user@h:6379", "credentials are [user]:password@ (the password is missing)"},
        {"redis://user:@h", "the password is empty"},
        {"redis://:pw%4@h", "bad percent-encoding in the credentials"},
        {"redis://:pw%zz@h", "bad percent-encoding in the credentials"},
        {"redis://u%:pw@h", "bad percent-encoding in the credentials"},
        {"redis://:pw@", "the URL has no host"},
        {"redis://h/db?x=1", "query strings and fragments are not supported"},
        {"redis://::1:6379", "an IPv6 address goes in brackets: redis://[::1]:6379"},
        {"redis://[::1", "unclosed [ in the host"},
        {"redis://[::1]x", "junk after the ] of the host"},
        {"redis://[::1]:", "empty port"},
        {"redis://[]:6379", "the URL has no host"},
        {"redis://h/a/b", "the prefix may hold only letters, digits and - _ . :"},
        {"redis://h/a b", "the prefix may hold only letters, digits and - _ . :"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.url);
        std::string error;
        CHECK_FALSE(parse_redis_url(c.url, &error).has_value());
        CHECK(error == c.why);
    }
    std::string error;
    CHECK_FALSE(parse_redis_url("redis://h/" + std::string(65, 'p'), &error).has_value());
    CHECK(error == "the prefix is longer than 64 bytes");
    CHECK(parse_redis_url("redis://h:1").has_value());  // the error pointer is optional
}
