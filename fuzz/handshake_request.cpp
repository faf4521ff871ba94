// Server side of the opening handshake (RFC 6455 §4.2.1): the request parser and validator, under
// fuzzer-chosen options, fed all at once and in pieces (with a move of the handshake in between).
// Both ways must agree; an accepted request must be what §4.2.1 asks for, and its 101 answer must
// satisfy a client; a refused one must get a well-formed HTTP error answer with the mapped status.
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

using proto::Error;
using proto::HttpParseResult;
using proto::ParseStatus;
using proto::ServerHandshake;
using proto::ServerOptions;

ServerOptions options_from(std::uint8_t config) {
    ServerOptions options;
    switch (config & 3) {
        case 0:
            options.origin = proto::OriginPolicy::same_origin();
            break;
        case 1:
            options.origin = proto::OriginPolicy::allow_any();
            break;
        case 2:
            options.origin =
                proto::OriginPolicy::allow_list({"http://example.com", "https://a.test:8443"});
            break;
        default:
            options.origin =
                proto::OriginPolicy::custom([](std::string_view origin, std::string_view host) {
                    return origin.size() % 2 == host.size() % 2;
                });
            break;
    }
    if ((config & 4) != 0) options.subprotocols = {"chat", "superchat", "v2.wsx"};
    static constexpr std::array<std::size_t, 4> kHeadBytes = {8 * 1024, 300, 64, 1024};
    static constexpr std::array<std::size_t, 4> kHeaders = {64, 8, 1, 3};
    options.limits.max_head_bytes = kHeadBytes[(config >> 3) & 3];
    options.limits.max_headers = kHeaders[(config >> 5) & 3];
    return options;
}

bool is_server_error(Error e) noexcept {
    switch (e) {
        case Error::http_malformed:
        case Error::http_method_not_get:
        case Error::http_version_too_old:
        case Error::http_missing_host:
        case Error::http_missing_upgrade:
        case Error::http_missing_connection_upgrade:
        case Error::http_bad_version:
        case Error::http_bad_key:
        case Error::http_origin_forbidden:
        case Error::http_headers_too_large:
            return true;
        default:
            return false;
    }
}

void check_accepted(const ServerHandshake& hs, std::string_view in, const ServerOptions& options) {
    const proto::HttpHead& head = hs.head();
    check_head(head, in, options.limits);
    WSX_FUZZ_CHECK(hs.consumed() == head.size);
    const std::string_view bytes = in.substr(0, head.size);
    const proto::UpgradeRequest& req = hs.request();
    WSX_FUZZ_CHECK(head.method == "GET");
    WSX_FUZZ_CHECK(head.version_major > 1 || (head.version_major == 1 && head.version_minor >= 1));
    WSX_FUZZ_CHECK(req.target == head.target && !req.target.empty());
    WSX_FUZZ_CHECK(!req.host.empty() && points_into(req.host, bytes));
    WSX_FUZZ_CHECK(proto::count_headers(head.headers, "Host") == 1);
    WSX_FUZZ_CHECK(proto::is_valid_key(req.key) && points_into(req.key, bytes));
    WSX_FUZZ_CHECK(proto::find_header(head.headers, "Sec-WebSocket-Key") == req.key);
    WSX_FUZZ_CHECK(proto::find_header(head.headers, "Sec-WebSocket-Version") == "13");
    WSX_FUZZ_CHECK(proto::has_token(head.headers, "Upgrade", "websocket"));
    WSX_FUZZ_CHECK(proto::has_token(head.headers, "Connection", "Upgrade"));
    WSX_FUZZ_CHECK(req.origin == proto::find_header(head.headers, "Origin"));
    if (req.origin) WSX_FUZZ_CHECK(points_into(*req.origin, bytes));
    WSX_FUZZ_CHECK(options.origin.allows(req.origin, req.host));
    if (!req.protocol.empty()) {
        bool supported = false;
        for (const std::string& p : options.subprotocols)
            supported = supported || p == req.protocol;
        WSX_FUZZ_CHECK(supported);
    }
    std::vector<proto::ExtensionOffer> extensions;
    WSX_FUZZ_CHECK(proto::parse_extensions(head.headers, extensions) == !req.extensions_malformed);
    WSX_FUZZ_CHECK(extensions.size() == req.extensions.size());
    WSX_FUZZ_CHECK(req.headers.data() == head.headers.data() &&
                   req.headers.size() == head.headers.size());

    // The 101 answer satisfies a client that sent this key and offered the chosen protocol.
    proto::ClientOptions client_options;
    client_options.host = std::string(req.host);
    if (!req.protocol.empty()) client_options.protocols = {std::string(req.protocol)};
    proto::ClientHandshake client(std::move(client_options), req.key);
    const std::string answer = hs.accept_response();
    const HttpParseResult r = client.parse(answer);
    WSX_FUZZ_CHECK(r.status == ParseStatus::ok);
    WSX_FUZZ_CHECK(client.consumed() == answer.size());
    WSX_FUZZ_CHECK(client.protocol() == req.protocol);
}

void check_refused(Error e) {
    WSX_FUZZ_CHECK(is_server_error(e));
    // The error answer is itself a well-formed HTTP response with the mapped status and a body of
    // exactly Content-Length bytes.
    const std::string answer = proto::write_error_response(e);
    proto::HttpHeadParser parser(proto::HttpKind::response, proto::HttpLimits{});
    std::array<proto::HttpHeader, 16> storage;
    proto::HttpHead head;
    WSX_FUZZ_CHECK(parser.parse(answer, storage, head).status == ParseStatus::ok);
    const int mapped = proto::http_status_for(e);
    WSX_FUZZ_CHECK(head.status == (mapped == 0 ? 400 : mapped));
    const auto length = proto::find_header(head.headers, "Content-Length");
    WSX_FUZZ_CHECK(length && *length == std::to_string(answer.size() - head.size));
    WSX_FUZZ_CHECK(proto::has_token(head.headers, "Connection", "close"));
}

}  // namespace

int run_handshake_request(const std::uint8_t* data, std::size_t size) {
    InputReader reader(data, size);
    const std::uint8_t config = reader.byte();
    const std::uint16_t seed = reader.u16();
    const std::string_view in = as_chars(reader.rest());
    const ServerOptions options = options_from(config);

    ServerHandshake whole(options);
    const HttpParseResult whole_result = whole.parse(in);

    // The same bytes in growing prefixes; halfway, the handshake is moved (its views must follow).
    std::optional<ServerHandshake> pieces(std::in_place, options);
    Splitter splitter(seed);
    HttpParseResult piece_result{};
    std::size_t have = 0;
    bool moved = (config & 0x80) == 0;
    do {
        have += splitter.next(in.size() - have);
        piece_result = pieces->parse(in.substr(0, have));
        if (!moved && have * 2 >= in.size()) {
            ServerHandshake relocated(std::move(*pieces));
            pieces.reset();
            pieces.emplace(std::move(relocated));
            moved = true;
        }
    } while (piece_result.status == ParseStatus::need_more && have < in.size());

    WSX_FUZZ_CHECK(same_result(whole_result, piece_result));
    switch (whole_result.status) {
        case ParseStatus::ok:
            WSX_FUZZ_CHECK(whole_result.error == Error::none);
            WSX_FUZZ_CHECK(whole.consumed() == pieces->consumed());
            check_accepted(whole, in, options);
            check_accepted(*pieces, in, options);
            break;
        case ParseStatus::error:
            check_refused(whole_result.error);
            break;
        case ParseStatus::need_more:
            WSX_FUZZ_CHECK(whole_result.error == Error::none);
            WSX_FUZZ_CHECK(in.size() < options.limits.max_head_bytes);
            break;
    }
    return 0;
}

}  // namespace wsx::fuzz
