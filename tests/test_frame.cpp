#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "proto/frame.hpp"
#include "proto/mask.hpp"

namespace {

using namespace wsx::proto;
using Bytes = std::vector<std::uint8_t>;

constexpr MaskKey kRfcKey = {0x37, 0xfa, 0x21, 0x3d};

FrameHeader make_header(bool fin, Opcode opcode, std::uint64_t payload_length, bool masked = false,
                        MaskKey key = {}) {
    FrameHeader h;
    h.fin = fin;
    h.opcode = opcode;
    h.payload_length = payload_length;
    h.masked = masked;
    h.mask_key = key;
    return h;
}

HeaderParseResult parse(const Bytes& wire, FrameHeader& out) {
    return parse_frame_header(std::span<const std::uint8_t>(wire), out);
}

Bytes write(const FrameHeader& h) {
    std::array<std::uint8_t, kMaxFrameHeaderSize> out{};
    const std::size_t n = write_frame_header(out, h);
    return Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
}

void check_same_header(const FrameHeader& got, const FrameHeader& want) {
    CHECK(got.fin == want.fin);
    CHECK(got.rsv1 == want.rsv1);
    CHECK(got.rsv2 == want.rsv2);
    CHECK(got.rsv3 == want.rsv3);
    CHECK(got.opcode == want.opcode);
    CHECK(got.masked == want.masked);
    CHECK(got.mask_key == want.mask_key);
    CHECK(got.payload_length == want.payload_length);
}

// Every strict prefix of a complete header is a partial header.
void check_prefixes_need_more(const Bytes& wire, std::size_t header_length) {
    for (std::size_t n = 0; n < header_length; ++n) {
        INFO("prefix of " << n << " bytes");
        FrameHeader h;
        const auto r = parse_frame_header(std::span(wire.data(), n), h);
        CHECK(r.status == ParseStatus::need_more);
        CHECK(r.error == Error::none);
    }
}

// Parses an RFC 6455 §5.7 example, unmasks its payload, writes the header back, and checks that
// every prefix of the header asks for more.
void check_rfc_example(const Bytes& wire, const FrameHeader& want, std::size_t header_length,
                       const Bytes& payload) {
    FrameHeader got;
    const auto r = parse(wire, got);
    REQUIRE(r.status == ParseStatus::ok);
    CHECK(r.error == Error::none);
    check_same_header(got, want);
    CHECK(got.header_length == header_length);
    REQUIRE(wire.size() == header_length + payload.size());

    Bytes body(wire.begin() + static_cast<std::ptrdiff_t>(header_length), wire.end());
    if (got.masked) apply_mask(body, got.mask_key);
    CHECK(body == payload);

    CHECK(write(want) ==
          Bytes(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(header_length)));
    check_prefixes_need_more(wire, header_length);
}

Bytes concat(std::initializer_list<std::uint8_t> header, const Bytes& payload) {
    Bytes out(header);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

const Bytes kHello = {'H', 'e', 'l', 'l', 'o'};

void check_error(const Bytes& wire, Error want) {
    FrameHeader h;
    const auto r = parse(wire, h);
    CHECK(r.status == ParseStatus::error);
    CHECK(r.error == want);
}

}  // namespace

static_assert(frame_header_size(0, false) == 2);
static_assert(frame_header_size(125, true) == 6);
static_assert(frame_header_size(126, false) == 4);
static_assert(frame_header_size(65535, true) == 8);
static_assert(frame_header_size(65536, false) == 10);
static_assert(frame_header_size(~std::uint64_t{0} >> 1, true) == kMaxFrameHeaderSize);

TEST_CASE("RFC 6455 §5.7: a single-frame unmasked text message") {
    check_rfc_example(concat({0x81, 0x05}, kHello), make_header(true, Opcode::text, 5), 2, kHello);
}

TEST_CASE("RFC 6455 §5.7: a single-frame masked text message") {
    const Bytes wire = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    check_rfc_example(wire, make_header(true, Opcode::text, 5, true, kRfcKey), 6, kHello);
}

TEST_CASE("RFC 6455 §5.7: a fragmented unmasked text message") {
    check_rfc_example({0x01, 0x03, 0x48, 0x65, 0x6c}, make_header(false, Opcode::text, 3), 2,
                      {'H', 'e', 'l'});
    check_rfc_example({0x80, 0x02, 0x6c, 0x6f}, make_header(true, Opcode::continuation, 2), 2,
                      {'l', 'o'});
}

TEST_CASE("RFC 6455 §5.7: an unmasked ping and a masked pong") {
    check_rfc_example(concat({0x89, 0x05}, kHello), make_header(true, Opcode::ping, 5), 2, kHello);
    const Bytes pong = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    check_rfc_example(pong, make_header(true, Opcode::pong, 5, true, kRfcKey), 6, kHello);
}

TEST_CASE("RFC 6455 §5.7: 256 bytes of binary data use the 16-bit length") {
    Bytes payload(256);
    for (std::size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<std::uint8_t>(i);
    check_rfc_example(concat({0x82, 0x7E, 0x01, 0x00}, payload),
                      make_header(true, Opcode::binary, 256), 4, payload);
}

TEST_CASE("RFC 6455 §5.7: 64 KiB of binary data use the 64-bit length") {
    const Bytes payload(65536, 0x5a);
    check_rfc_example(concat({0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}, payload),
                      make_header(true, Opcode::binary, 65536), 10, payload);
}

TEST_CASE("the parser reads only the header: payload bytes after it do not matter") {
    FrameHeader h;
    const Bytes wire = {0x82, 0x7E, 0x00, 0x80, 0xff, 0xff, 0xff};
    REQUIRE(parse(wire, h).status == ParseStatus::ok);
    CHECK(h.header_length == 4);
    CHECK(h.payload_length == 128);
}

TEST_CASE("RFC 6455 §5.2: reserved opcodes 3-7 and 11-15 fail with reserved_opcode") {
    for (const std::uint8_t opcode : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
        INFO("opcode " << int{opcode});
        check_error({static_cast<std::uint8_t>(0x80 | opcode), 0x00}, Error::reserved_opcode);
        check_error({opcode, 0x85, 1, 2, 3, 4}, Error::reserved_opcode);
        // The first byte alone decides it: fail before the rest of the header arrives.
        check_error({static_cast<std::uint8_t>(0x80 | opcode)}, Error::reserved_opcode);
    }
}

TEST_CASE("RFC 6455 §5.5: a control frame without FIN fails with control_frame_fragmented") {
    for (const std::uint8_t opcode : {0x8, 0x9, 0xA}) {
        INFO("opcode " << int{opcode});
        check_error({opcode, 0x00}, Error::control_frame_fragmented);
        check_error({opcode}, Error::control_frame_fragmented);
        check_error({static_cast<std::uint8_t>(opcode | 0x70), 0x80, 1, 2, 3, 4},
                    Error::control_frame_fragmented);
    }
}

TEST_CASE("RFC 6455 §5.5: a control payload over 125 bytes fails with control_frame_too_long") {
    for (const std::uint8_t b0 : {0x88, 0x89, 0x8A}) {
        INFO("first byte " << int{b0});
        check_error({b0, 0x7E, 0x00, 0x7E}, Error::control_frame_too_long);
        check_error({b0, 0xFE, 0xFF, 0xFF, 1, 2, 3, 4}, Error::control_frame_too_long);
        check_error({b0, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}, Error::control_frame_too_long);
        check_error({b0, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0x05}, Error::control_frame_too_long);

        FrameHeader h;
        const Bytes at_limit = {b0, 0x7D};
        CHECK(parse(at_limit, h).status == ParseStatus::ok);
        CHECK(h.payload_length == 125);
    }
}

TEST_CASE("data frames may be fragmented and longer than 125 bytes") {
    FrameHeader h;
    const Bytes wire = {0x02, 0x7E, 0x10, 0x00};
    REQUIRE(parse(wire, h).status == ParseStatus::ok);
    CHECK_FALSE(h.fin);
    CHECK(h.payload_length == 4096);
}

TEST_CASE("RFC 6455 §5.2: a 64-bit length with the most significant bit set fails") {
    check_error({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0}, Error::length_msb_set);
    check_error({0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
                Error::length_msb_set);
    check_error({0x02, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4}, Error::length_msb_set);

    FrameHeader h;
    const Bytes largest = {0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    REQUIRE(parse(largest, h).status == ParseStatus::ok);
    CHECK(h.payload_length == (~std::uint64_t{0} >> 1));
}

TEST_CASE("non-minimal length encodings are accepted") {
    struct Case {
        Bytes wire;
        std::uint64_t length;
        std::uint8_t header_length;
    };
    const Case cases[] = {
        {{0x82, 0x7E, 0x00, 0x05}, 5, 4},
        {{0x82, 0x7E, 0x00, 0x00}, 0, 4},
        {{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x05}, 5, 10},
        {{0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0x01, 0x00}, 256, 10},
        {{0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4}, 65535, 14},
        // A short control payload stays within §5.5 whatever encoding carries its length.
        {{0x89, 0x7E, 0x00, 0x7D}, 125, 4},
        {{0x8A, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x03}, 3, 10},
    };
    for (const Case& c : cases) {
        INFO("length " << c.length << ", header " << int{c.header_length} << " bytes");
        FrameHeader h;
        const auto r = parse(c.wire, h);
        REQUIRE(r.status == ParseStatus::ok);
        CHECK(h.payload_length == c.length);
        CHECK(h.header_length == c.header_length);
        check_prefixes_need_more(c.wire, c.header_length);
    }
}

TEST_CASE("the header is left alone unless the parse succeeds") {
    FrameHeader h = make_header(false, Opcode::pong, 77, true, kRfcKey);
    CHECK(parse(Bytes{0x82, 0x7E, 0x01}, h).status == ParseStatus::need_more);
    CHECK(parse(Bytes{0x83, 0x00}, h).status == ParseStatus::error);
    check_same_header(h, make_header(false, Opcode::pong, 77, true, kRfcKey));
}

TEST_CASE("an empty buffer needs more") {
    FrameHeader h;
    CHECK(parse_frame_header({}, h).status == ParseStatus::need_more);
}

TEST_CASE("the writer uses the smallest length encoding") {
    CHECK(write(make_header(true, Opcode::binary, 125)) == Bytes{0x82, 0x7D});
    CHECK(write(make_header(true, Opcode::binary, 126)) == Bytes{0x82, 0x7E, 0x00, 0x7E});
    CHECK(write(make_header(true, Opcode::binary, 65535)) == Bytes{0x82, 0x7E, 0xFF, 0xFF});
    CHECK(write(make_header(true, Opcode::binary, 65536)) ==
          Bytes{0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00});
    CHECK(write(make_header(false, Opcode::text, 0x0102030405060708, true, {9, 8, 7, 6})) ==
          Bytes{0x01, 0xFF, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 7, 6});
}

TEST_CASE("the writer sets the RSV bits and the parser reports them") {
    FrameHeader h = make_header(true, Opcode::text, 0);
    h.rsv1 = true;
    CHECK(write(h) == Bytes{0xC1, 0x00});
    h.rsv1 = false;
    h.rsv2 = true;
    CHECK(write(h) == Bytes{0xA1, 0x00});
    h.rsv2 = false;
    h.rsv3 = true;
    CHECK(write(h) == Bytes{0x91, 0x00});
}

TEST_CASE("write then parse gives back every header: lengths, masks, opcodes, RSV bits, FIN") {
    const std::uint64_t lengths[] = {
        0, 1, 125, 126, 127, 65535, 65536, std::uint64_t{1} << 32, ~std::uint64_t{0} >> 1};
    const Opcode opcodes[] = {Opcode::continuation, Opcode::text, Opcode::binary,
                              Opcode::close,        Opcode::ping, Opcode::pong};
    int round_trips = 0;
    for (const std::uint64_t length : lengths) {
        for (const bool masked : {false, true}) {
            for (const Opcode opcode : opcodes) {
                for (unsigned rsv = 0; rsv < 8; ++rsv) {
                    for (const bool fin : {true, false}) {
                        FrameHeader want =
                            make_header(fin, opcode, length, masked,
                                        masked ? MaskKey{0xde, 0xad, 0xbe, 0xef} : MaskKey{});
                        want.rsv1 = (rsv & 4) != 0;
                        want.rsv2 = (rsv & 2) != 0;
                        want.rsv3 = (rsv & 1) != 0;
                        INFO("length " << length << " masked " << masked << " opcode "
                                       << int(opcode) << " rsv " << rsv << " fin " << fin);

                        const Bytes wire = write(want);
                        CHECK(wire.size() == frame_header_size(length, masked));
                        FrameHeader got;
                        const auto r = parse(wire, got);
                        if (is_control(opcode) && !fin) {
                            CHECK(r.error == Error::control_frame_fragmented);
                        } else if (is_control(opcode) && length > kMaxControlPayload) {
                            CHECK(r.error == Error::control_frame_too_long);
                        } else {
                            REQUIRE(r.status == ParseStatus::ok);
                            check_same_header(got, want);
                            CHECK(got.header_length == wire.size());
                            check_prefixes_need_more(wire, wire.size());
                            ++round_trips;
                        }
                    }
                }
            }
        }
    }
    // 9 lengths x 2 masks x 8 RSV combinations: 3 data opcodes with and without FIN, and
    // 3 control opcodes with FIN at the 3 lengths within 125 bytes.
    CHECK(round_trips == 2 * 8 * (9 * 3 * 2 + 3 * 3));
}
