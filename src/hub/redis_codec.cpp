// The Redis backplane's pure parts: the envelope every PUBLISH carries, and the redis:// URL.
#include <algorithm>
#include <cstring>

#include "hub/redis_backplane.hpp"

namespace wsx::hub {

namespace {

constexpr std::uint8_t kBroadcastBit = 0x80;
constexpr std::uint8_t kOpcodeMask = 0x0f;

bool prefix_char_ok(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
}

std::optional<RedisUrl> url_error(std::string* error, const char* why) {
    if (error != nullptr) *error = why;
    return std::nullopt;
}

// RFC 3986 §2.1: %XX is the byte XX (hex digits); false for a % without two hex digits.
bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    const auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return false;
        const int high = hex(in[i + 1]);
        const int low = hex(in[i + 2]);
        if (high < 0 || low < 0) return false;
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
    }
    return true;
}

}  // namespace

// ---- Envelope

void encode_envelope(const BackplaneMessage& message, std::string& out) {
    const std::size_t start = out.size();
    out.resize(start + kEnvelopeHeaderSize + message.payload.size());
    char* p = out.data() + start;
    p[0] = static_cast<char>(kEnvelopeVersion);
    p[1] = static_cast<char>((static_cast<std::uint8_t>(message.opcode) & kOpcodeMask) |
                             (message.broadcast ? kBroadcastBit : 0));
    for (int i = 0; i < 8; ++i)
        p[2 + i] = static_cast<char>((message.origin >> (56 - 8 * i)) & 0xff);
    if (!message.payload.empty()) {
        std::copy(message.payload.begin(), message.payload.end(), p + kEnvelopeHeaderSize);
    }
}

std::optional<BackplaneMessage> decode_envelope(std::span<const std::uint8_t> bytes) {
    if (bytes.size() < kEnvelopeHeaderSize || bytes[0] != kEnvelopeVersion) return std::nullopt;
    const std::uint8_t kind = bytes[1];
    if ((kind & ~(kOpcodeMask | kBroadcastBit)) != 0) return std::nullopt;
    const auto opcode = static_cast<proto::Opcode>(kind & kOpcodeMask);
    if (opcode != proto::Opcode::text && opcode != proto::Opcode::binary) return std::nullopt;
    BackplaneMessage message;
    for (int i = 0; i < 8; ++i)
        message.origin = (message.origin << 8) | bytes[2 + static_cast<std::size_t>(i)];
    message.broadcast = (kind & kBroadcastBit) != 0;
    message.opcode = opcode;
    message.payload = bytes.subspan(kEnvelopeHeaderSize);
    return message;
}

// ---- URL

std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string* error) {
    constexpr std::string_view kScheme = "redis://";
    if (url.substr(0, 9) == "rediss://") {
        return url_error(error, "rediss:// (Redis over TLS) is not supported");
    }
    if (url.substr(0, kScheme.size()) != kScheme) {
        return url_error(error, "the URL must start with redis://");
    }
    std::string_view rest = url.substr(kScheme.size());
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return url_error(error, "query strings and fragments are not supported");
    }
    const std::size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    const std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    RedisUrl parsed;
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        const std::size_t colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            return url_error(error, "credentials are [user]:password@ (the password is missing)");
        }
        if (!percent_decode(userinfo.substr(0, colon), parsed.username) ||
            !percent_decode(userinfo.substr(colon + 1), parsed.password)) {
            return url_error(error, "bad percent-encoding in the credentials");
        }
        if (parsed.password.empty()) return url_error(error, "the password is empty");
    }
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) return url_error(error, "unclosed [ in the host");
        parsed.host = std::string(authority.substr(1, close - 1));
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return url_error(error, "junk after the ] of the host");
            port_text = after.substr(1);
            if (port_text.empty()) return url_error(error, "empty port");
        }
    } else {
        const std::size_t colon = authority.find(':');
        if (colon != std::string_view::npos &&
            authority.find(':', colon + 1) != std::string_view::npos) {
            return url_error(error, "an IPv6 address goes in brackets: redis://[::1]:6379");
        }
        parsed.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) return url_error(error, "empty port");
        }
    }
    if (parsed.host.empty()) return url_error(error, "the URL has no host");
    if (!port_text.empty()) {
        unsigned value = 0;
        for (const char c : port_text) {
            if (c < '0' || c > '9' || value > 65535) {
                return url_error(error, "the port is not a number from 1 to 65535");
            }
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value == 0 || value > 65535) {
            return url_error(error, "the port is not a number from 1 to 65535");
        }
        parsed.port = static_cast<std::uint16_t>(value);
    }
    if (!path.empty()) {
        if (path.size() > 64) return url_error(error, "the prefix is longer than 64 bytes");
        if (!std::all_of(path.begin(), path.end(), prefix_char_ok)) {
            return url_error(error, "the prefix may hold only letters, digits and - _ . :");
        }
        parsed.prefix = std::string(path);
    }
    return parsed;
}

}  // namespace wsx::hub
