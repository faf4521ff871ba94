// WebSocket URIs (RFC 6455 §3): ws://host[:port][/path][?query] and wss://..., parsed strictly
// into what a client needs: the host to resolve, the port, the request target and the Host
// header value. No allocation beyond the result's strings; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace wsx::net {

struct WsUrl {
    bool secure = false;  // wss://
    // Lower-cased reg-name or IPv4 literal; an IPv6 literal without its brackets.
    std::string host;
    std::uint16_t port = 80;  // the URL's port, else 80 (ws) or 443 (wss)
    // Path and query as the request line carries them ("/" when the URL has no path).
    std::string target = "/";

    // True when host is an IPv6 literal (it is written in brackets in URLs and Host).
    bool ipv6_literal() const noexcept { return host.find(':') != std::string::npos; }
    std::uint16_t default_port() const noexcept { return secure ? 443 : 80; }
    // The Host header (RFC 6455 §4.1 item 4, RFC 9110 §7.2): host, brackets around an IPv6
    // literal, and ":port" only when it is not the scheme's default.
    std::string authority() const;
    // The URL written back in normal form: scheme, authority with the port, target.
    std::string to_string() const;
};

struct UrlParseResult {
    WsUrl url;
    std::string_view error;  // a static description; empty on success

    bool ok() const noexcept { return error.empty(); }
};

// Accepts the ws and wss schemes (case-insensitive); refuses userinfo, an empty host, a port
// outside 1..65535, a fragment (RFC 6455 §3: "MUST NOT be used"), and characters that cannot
// appear in a request line (spaces, controls, non-ASCII). An empty port ("ws://h:/") means the
// default, as RFC 3986 §3.2.3 allows.
UrlParseResult parse_url(std::string_view text);

}  // namespace wsx::net
