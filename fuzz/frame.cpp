// Frame header parser (RFC 6455 §5.2): whatever the bytes, a parse is ok, need_more or a 1002
// error; an ok header obeys the header-level rules, survives a write/parse round trip, and parses
// the same from any longer buffer and not at all from a shorter one.
#include "proto/frame.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

#include "harnesses.hpp"
#include "support.hpp"

namespace wsx::fuzz {

namespace {

using proto::FrameHeader;
using proto::HeaderParseResult;
using proto::Opcode;
using proto::ParseStatus;

bool is_defined_opcode(Opcode op) noexcept {
    switch (op) {
        case Opcode::continuation:
        case Opcode::text:
        case Opcode::binary:
        case Opcode::close:
        case Opcode::ping:
        case Opcode::pong:
            return true;
    }
    return false;
}

bool same_fields(const FrameHeader& a, const FrameHeader& b) noexcept {
    return a.fin == b.fin && a.rsv1 == b.rsv1 && a.rsv2 == b.rsv2 && a.rsv3 == b.rsv3 &&
           a.opcode == b.opcode && a.masked == b.masked &&
           (!a.masked || a.mask_key == b.mask_key) && a.payload_length == b.payload_length;
}

// Writes `h`, parses it back and expects the same fields in the minimal encoding.
void check_round_trip(const FrameHeader& h) {
    std::array<std::uint8_t, proto::kMaxFrameHeaderSize> wire{};
    const std::size_t n = proto::write_frame_header(wire, h);
    WSX_FUZZ_CHECK(n == proto::frame_header_size(h.payload_length, h.masked));
    FrameHeader again;
    const HeaderParseResult r = proto::parse_frame_header(std::span(wire).first(n), again);
    WSX_FUZZ_CHECK(r.status == ParseStatus::ok);
    WSX_FUZZ_CHECK(same_fields(h, again));
    WSX_FUZZ_CHECK(again.header_length == n);
}

// The rules a header alone decides (RFC 6455 §5.2, §5.5), in terms of the wire bytes.
void check_ok_header(std::span<const std::uint8_t> in, const FrameHeader& h) {
    WSX_FUZZ_CHECK(h.header_length >= 2 && h.header_length <= proto::kMaxFrameHeaderSize);
    WSX_FUZZ_CHECK(h.header_length <= in.size());
    const unsigned length7 = in[1] & 0x7FU;
    const std::size_t extended = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
    WSX_FUZZ_CHECK(h.header_length == 2 + extended + (h.masked ? 4 : 0));
    WSX_FUZZ_CHECK(h.masked == ((in[1] & 0x80) != 0));
    WSX_FUZZ_CHECK(h.fin == ((in[0] & 0x80) != 0));
    WSX_FUZZ_CHECK(static_cast<unsigned>(h.opcode) == (in[0] & 0x0FU));
    WSX_FUZZ_CHECK(is_defined_opcode(h.opcode));
    WSX_FUZZ_CHECK((h.payload_length >> 63) == 0);
    if (proto::is_control(h.opcode)) {
        WSX_FUZZ_CHECK(h.fin);
        WSX_FUZZ_CHECK(h.payload_length <= proto::kMaxControlPayload);
    }
    if (length7 < 126) WSX_FUZZ_CHECK(h.payload_length == length7);
    if (h.masked) {
        for (std::size_t i = 0; i < 4; ++i)
            WSX_FUZZ_CHECK(h.mask_key[i] == in[2 + extended + i]);
    }
}

// A header built from the input's bytes, every field in its legal range.
FrameHeader header_from(InputReader& in) {
    static constexpr std::array<Opcode, 6> kOpcodes = {Opcode::continuation, Opcode::text,
                                                       Opcode::binary,       Opcode::close,
                                                       Opcode::ping,         Opcode::pong};
    const std::uint8_t flags = in.byte();
    FrameHeader h;
    h.opcode = kOpcodes[(flags & 0x07) % kOpcodes.size()];
    h.fin = proto::is_control(h.opcode) || (flags & 0x08) != 0;
    h.rsv1 = (flags & 0x10) != 0;
    h.rsv2 = (flags & 0x20) != 0;
    h.rsv3 = (flags & 0x40) != 0;
    h.masked = (flags & 0x80) != 0;
    for (auto& k : h.mask_key)
        k = in.byte();
    std::uint64_t length = 0;
    for (int i = 0; i < 8; ++i)
        length = length << 8 | in.byte();
    // Spread lengths over all three encodings and their edges (125/126, 65535/65536, 2^63 - 1).
    switch (length & 3) {
        case 0:
            length = (length >> 2) % 130;
            break;
        case 1:
            length = 65530 + (length >> 2) % 12;
            break;
        default:
            length >>= 1;
            break;
    }
    if (proto::is_control(h.opcode)) length %= proto::kMaxControlPayload + 1;
    h.payload_length = length;
    return h;
}

}  // namespace

int run_frame(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);

    FrameHeader h;
    const HeaderParseResult r = proto::parse_frame_header(in, h);
    switch (r.status) {
        case ParseStatus::ok:
            WSX_FUZZ_CHECK(r.error == proto::Error::none);
            check_ok_header(in, h);
            check_round_trip(h);
            // The minimal encoding is never longer than the one received.
            WSX_FUZZ_CHECK(proto::frame_header_size(h.payload_length, h.masked) <= h.header_length);
            // The header's own bytes suffice, and fewer do not.
            {
                FrameHeader exact;
                WSX_FUZZ_CHECK(proto::parse_frame_header(in.first(h.header_length), exact).status ==
                               ParseStatus::ok);
                WSX_FUZZ_CHECK(same_fields(h, exact) && exact.header_length == h.header_length);
                for (std::size_t n = 0; n < h.header_length; ++n) {
                    FrameHeader partial;
                    WSX_FUZZ_CHECK(proto::parse_frame_header(in.first(n), partial).status ==
                                   ParseStatus::need_more);
                }
            }
            break;
        case ParseStatus::need_more:
            WSX_FUZZ_CHECK(size < proto::kMaxFrameHeaderSize);
            break;
        case ParseStatus::error:
            WSX_FUZZ_CHECK(size >= 1);
            // Every header-level error fails the connection with 1002 (RFC 6455 §7.4.1).
            WSX_FUZZ_CHECK(proto::close_code_for(r.error) == 1002);
            // Adding bytes never turns an error into a header.
            {
                FrameHeader longer;
                std::array<std::uint8_t, proto::kMaxFrameHeaderSize> padded{};
                const std::size_t n = std::min(size, padded.size());
                for (std::size_t i = 0; i < n; ++i)
                    padded[i] = in[i];
                WSX_FUZZ_CHECK(proto::parse_frame_header(padded, longer).status ==
                               ParseStatus::error);
            }
            break;
    }

    // The writer's direction: any legal header written and parsed back is the same header.
    InputReader reader(data, size);
    check_round_trip(header_from(reader));
    return 0;
}

}  // namespace wsx::fuzz
