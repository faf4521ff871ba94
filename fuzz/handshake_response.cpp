// Client side of the opening handshake (RFC 6455 §4.1, §4.2.2): the response parser and
// validator, with fuzzer-chosen offers, fed all at once and in pieces (with a move of the
// handshake in between). Both ways must agree, and an accepted response must be a 101 with the
// right Sec-WebSocket-Accept and nothing the client did not offer.
#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "handshake_common.hpp"
#include "harnesses.hpp"
#include "proto/handshake.hpp"
#include "support.hpp"

namespace wsx::fuzz {

namespace {

using proto::ClientHandshake;
using proto::ClientOptions;
using proto::Error;
using proto::HttpParseResult;
using proto::ParseStatus;

// The RFC 6455 §1.3 example: this key's accept value is "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

ClientOptions options_from(std::uint8_t config) {
    static constexpr std::array<std::string_view, 4> kExtensions = {
        "", "permessage-deflate",
        "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame", "foo, bar; baz=1"};
    ClientOptions options;
    options.host = "example.com";
    options.extensions = std::string(kExtensions[config & 3]);
    switch ((config >> 2) & 3) {
        case 1:
            options.protocols = {"chat"};
            break;
        case 2:
            options.protocols = {"chat", "superchat"};
            break;
        default:
            break;
    }
    static constexpr std::array<std::size_t, 4> kHeadBytes = {8 * 1024, 300, 80, 1024};
    static constexpr std::array<std::size_t, 4> kHeaders = {64, 8, 1, 4};
    options.limits.max_head_bytes = kHeadBytes[(config >> 4) & 3];
    options.limits.max_headers = kHeaders[(config >> 6) & 1];
    return options;
}

bool is_client_error(Error e) noexcept {
    switch (e) {
        case Error::http_malformed:
        case Error::http_headers_too_large:
        case Error::http_bad_status:
        case Error::http_missing_upgrade:
        case Error::http_missing_connection_upgrade:
        case Error::http_bad_accept:
        case Error::http_unrequested_extension:
        case Error::http_unrequested_protocol:
            return true;
        default:
            return false;
    }
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) {
                   return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
               };
               return lower(x) == lower(y);
           });
}

void check_accepted(const ClientHandshake& hs, std::string_view in, const ClientOptions& options) {
    const proto::HttpHead& head = hs.head();
    check_head(head, in, options.limits);
    WSX_FUZZ_CHECK(hs.consumed() == head.size);
    WSX_FUZZ_CHECK(head.status == 101 && hs.status() == 101);
    WSX_FUZZ_CHECK(proto::count_headers(head.headers, "Sec-WebSocket-Accept") == 1);
    WSX_FUZZ_CHECK(proto::find_header(head.headers, "Sec-WebSocket-Accept") == kAccept);
    WSX_FUZZ_CHECK(proto::has_token(head.headers, "Upgrade", "websocket"));
    WSX_FUZZ_CHECK(proto::has_token(head.headers, "Connection", "upgrade"));
    // §4.1: a protocol or extension the client did not offer fails the connection.
    if (!hs.protocol().empty()) {
        WSX_FUZZ_CHECK(std::find(options.protocols.begin(), options.protocols.end(),
                                 hs.protocol()) != options.protocols.end());
        WSX_FUZZ_CHECK(points_into(hs.protocol(), in.substr(0, head.size)));
    }
    std::vector<proto::ExtensionOffer> offered;
    proto::parse_extension_list(options.extensions, offered);
    for (const proto::ExtensionOffer& accepted : hs.extensions()) {
        WSX_FUZZ_CHECK(std::any_of(offered.begin(), offered.end(),
                                   [&](const auto& o) { return iequals(o.name, accepted.name); }));
    }
}

}  // namespace

int run_handshake_response(const std::uint8_t* data, std::size_t size) {
    InputReader reader(data, size);
    const std::uint8_t config = reader.byte();
    const std::uint16_t seed = reader.u16();
    const std::string_view in = as_chars(reader.rest());
    const ClientOptions options = options_from(config);

    ClientHandshake whole(options, kKey);
    WSX_FUZZ_CHECK(whole.key() == kKey);
    const HttpParseResult whole_result = whole.parse(in);

    ClientHandshake pieces(options, kKey);
    Splitter splitter(seed);
    HttpParseResult piece_result{};
    std::size_t have = 0;
    bool moved = (config & 0x80) == 0;
    do {
        have += splitter.next(in.size() - have);
        piece_result = pieces.parse(in.substr(0, have));
        if (!moved && have * 2 >= in.size()) {
            // Move-assign over a handshake that has parsed something of its own.
            ClientHandshake other(options, kKey);
            other.parse("HTTP/1.1 101 OK\r\n");
            other = std::move(pieces);
            pieces = std::move(other);
            moved = true;
        }
    } while (piece_result.status == ParseStatus::need_more && have < in.size());

    WSX_FUZZ_CHECK(same_result(whole_result, piece_result));
    switch (whole_result.status) {
        case ParseStatus::ok:
            WSX_FUZZ_CHECK(whole_result.error == Error::none);
            WSX_FUZZ_CHECK(whole.consumed() == pieces.consumed());
            WSX_FUZZ_CHECK(whole.protocol() == pieces.protocol());
            check_accepted(whole, in, options);
            check_accepted(pieces, in, options);
            break;
        case ParseStatus::error:
            WSX_FUZZ_CHECK(is_client_error(whole_result.error));
            if (whole_result.error == Error::http_bad_status) WSX_FUZZ_CHECK(whole.status() != 101);
            break;
        case ParseStatus::need_more:
            WSX_FUZZ_CHECK(whole_result.error == Error::none);
            WSX_FUZZ_CHECK(in.size() < options.limits.max_head_bytes);
            break;
    }

    // The request this client writes is one a server accepts, with the same key.
    proto::ServerOptions server_options;
    server_options.origin = proto::OriginPolicy::allow_any();
    server_options.subprotocols = options.protocols;
    proto::ServerHandshake server(server_options);
    const std::string request = whole.request();
    WSX_FUZZ_CHECK(server.parse(request).status == ParseStatus::ok);
    WSX_FUZZ_CHECK(server.consumed() == request.size());
    WSX_FUZZ_CHECK(server.request().key == kKey);
    return 0;
}

}  // namespace wsx::fuzz
