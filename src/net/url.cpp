#include "net/url.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace wsx::net {

namespace {

char lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

// RFC 3986 §3.2.2 reg-name, restricted to what DNS names and IPv4 literals use: unreserved
// characters. Percent-encoded and sub-delim hosts never name a reachable TCP host in practice.
bool is_host_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

// What a request-target may hold without breaking the request line (RFC 9112 §3): visible
// ASCII only.
bool is_target_char(char c) noexcept {
    return c > 0x20 && c < 0x7F;
}

}  // namespace

std::string WsUrl::authority() const {
    std::string out;
    if (ipv6_literal()) {
        out.reserve(host.size() + 8);
        out += '[';
        out += host;
        out += ']';
    } else {
        out = host;
    }
    if (port != default_port()) {
        out += ':';
        out += std::to_string(port);
    }
    return out;
}

std::string WsUrl::to_string() const {
    std::string out = secure ? "wss://" : "ws://";
    out += ipv6_literal() ? "[" + host + "]" : host;
    out += ':';
    out += std::to_string(port);
    out += target;
    return out;
}

UrlParseResult parse_url(std::string_view text) {
    UrlParseResult result;
    WsUrl& url = result.url;

    const std::size_t scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) {
        result.error = "not a URL: expected ws://host[:port]/path";
        return result;
    }
    const std::string_view scheme = text.substr(0, scheme_end);
    if (equals_ignoring_case(scheme, "ws")) {
        url.secure = false;
    } else if (equals_ignoring_case(scheme, "wss")) {
        url.secure = true;
    } else {
        result.error = "unsupported scheme: only ws:// and wss:// name a WebSocket";
        return result;
    }
    url.port = url.default_port();
    std::string_view rest = text.substr(scheme_end + 3);

    if (rest.find('#') != std::string_view::npos) {
        result.error = "a WebSocket URL must not have a fragment (RFC 6455 section 3)";
        return result;
    }
    const std::size_t authority_end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, authority_end);
    const std::string_view target =
        authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);

    if (authority.find('@') != std::string_view::npos) {
        result.error = "a WebSocket URL has no user information (RFC 6455 section 3)";
        return result;
    }

    std::string_view host;
    std::string_view port;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            result.error = "unterminated IPv6 literal: expected ']'";
            return result;
        }
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                result.error = "unexpected characters after the IPv6 literal";
                return result;
            }
            has_port = true;
            port = after.substr(1);
        }
        in6_addr parsed{};
        const std::string terminated(host);
        if (host.empty() || ::inet_pton(AF_INET6, terminated.c_str(), &parsed) != 1) {
            result.error = "invalid IPv6 literal";
            return result;
        }
    } else {
        const std::size_t colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            has_port = true;
            port = authority.substr(colon + 1);
        }
        if (host.empty()) {
            result.error = "the URL has no host";
            return result;
        }
        for (const char c : host) {
            if (!is_host_char(c)) {
                result.error = "invalid character in the host";
                return result;
            }
        }
    }

    if (has_port && !port.empty()) {
        unsigned value = 0;
        const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (error != std::errc() || end != port.data() + port.size() || value == 0 ||
            value > 65535) {
            result.error = "invalid port: expected a number from 1 to 65535";
            return result;
        }
        url.port = static_cast<std::uint16_t>(value);
    }

    url.host.reserve(host.size());
    for (const char c : host)
        url.host += lower(c);

    for (const char c : target) {
        if (!is_target_char(c)) {
            result.error =
                "invalid character in the path or query (spaces and controls must "
                "be percent-encoded)";
            return result;
        }
    }
    // RFC 6455 §3: an empty path is "/", and the query follows it.
    if (target.empty() || target.front() == '?') {
        url.target = "/";
        url.target += target;
    } else {
        url.target = target;
    }
    return result;
}

}  // namespace wsx::net
