#include "proto/handshake.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "proto/base64.hpp"

namespace wsx::proto {

namespace {

// RFC 6455 §1.3: the GUID appended to the key before hashing.
constexpr std::string_view kKeyGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::size_t kKeyNonceBytes = 16;
constexpr std::size_t kSha1Bytes = 20;

// RFC 9110 §5.6.2: tchar.
bool is_tchar(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// RFC 9110 §5.5: field-vchar, SP and HTAB; every other control character is refused.
bool is_field_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7F);
}

// RFC 9112 §3.2: the request-target is visible ASCII.
bool is_target_char(char c) noexcept {
    return c > 0x20 && c < 0x7F;
}

bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

char ascii_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back()))
        s.remove_suffix(1);
    return s;
}

// True when `pred` holds for some element of the comma-separated list `value` (RFC 9110 §5.6.1:
// elements are trimmed of OWS and empty ones are ignored).
template <typename Pred>
bool any_list_element(std::string_view value, Pred pred) noexcept {
    for (;;) {
        const std::size_t comma = value.find(',');
        const std::string_view element = trim_ows(value.substr(0, comma));
        if (!element.empty() && pred(element)) return true;
        if (comma == std::string_view::npos) return false;
        value.remove_prefix(comma + 1);
    }
}

// "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3; the name is case-sensitive).
bool parse_version(std::string_view s, HttpHead& out) noexcept {
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (s.size() != 8 || s.substr(0, 5) != "HTTP/" || !digit(s[5]) || s[6] != '.' || !digit(s[7])) {
        return false;
    }
    out.version_major = s[5] - '0';
    out.version_minor = s[7] - '0';
    return true;
}

// RFC 9112 §3: method SP request-target SP HTTP-version, single spaces.
bool parse_request_line(std::string_view line, HttpHead& out) noexcept {
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return false;
    const std::string_view method = line.substr(0, sp1);
    line.remove_prefix(sp1 + 1);
    const std::size_t sp2 = line.find(' ');
    if (sp2 == std::string_view::npos) return false;
    const std::string_view target = line.substr(0, sp2);
    if (!is_token(method) || target.empty() ||
        !std::all_of(target.begin(), target.end(), is_target_char)) {
        return false;
    }
    out.method = method;
    out.target = target;
    return parse_version(line.substr(sp2 + 1), out);
}

// RFC 9112 §4: HTTP-version SP 3DIGIT SP [reason-phrase]. The SP before an empty reason is
// optional here: servers that drop it are common and nothing else can be meant.
bool parse_status_line(std::string_view line, HttpHead& out) noexcept {
    if (line.size() < 12 || !parse_version(line.substr(0, 8), out) || line[8] != ' ') return false;
    int status = 0;
    for (std::size_t i = 9; i < 12; ++i) {
        if (line[i] < '0' || line[i] > '9') return false;
        status = status * 10 + (line[i] - '0');
    }
    std::string_view reason = line.substr(12);
    if (!reason.empty()) {
        if (reason.front() != ' ') return false;
        reason.remove_prefix(1);
        if (!std::all_of(reason.begin(), reason.end(), is_field_char)) return false;
    }
    out.status = status;
    out.reason = reason;
    return true;
}

// RFC 9112 §5: field-name ":" OWS field-value OWS.
bool parse_header_line(std::string_view line, HttpHeader& out) noexcept {
    // §5.2: obs-fold (a line starting with whitespace) is refused, not unfolded.
    if (is_ows(line.front())) return false;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    const std::string_view raw_value = line.substr(colon + 1);
    // §5.1: whitespace between name and colon must be refused; is_token covers it.
    if (!is_token(name) || !std::all_of(raw_value.begin(), raw_value.end(), is_field_char)) {
        return false;
    }
    out = {name, trim_ows(raw_value)};
    return true;
}

constexpr HttpParseResult kNeedMore{ParseStatus::need_more, Error::none};
constexpr HttpParseResult kMalformed{ParseStatus::error, Error::http_malformed};
constexpr HttpParseResult kTooLarge{ParseStatus::error, Error::http_headers_too_large};

std::string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 101:
            return "Switching Protocols";
        case 403:
            return "Forbidden";
        case 405:
            return "Method Not Allowed";
        case 426:
            return "Upgrade Required";
        case 431:
            return "Request Header Fields Too Large";
        case 503:
            return "Service Unavailable";
        default:
            return "Bad Request";
    }
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
}

// Reads one §9.1 extension-param value written as a quoted-string (RFC 9110 §5.6.4), starting at
// the opening quote; advances `i` past the closing quote. nullopt when unterminated or invalid.
std::optional<std::string> read_quoted(std::string_view s, std::size_t& i) {
    std::string value;
    for (++i; i < s.size(); ++i) {
        char c = s[i];
        if (c == '"') {
            ++i;
            return value;
        }
        if (c == '\\') {
            if (++i == s.size()) return std::nullopt;
            c = s[i];
        }
        if (!is_field_char(c)) return std::nullopt;
        value.push_back(c);
    }
    return std::nullopt;
}

std::string_view read_token(std::string_view s, std::size_t& i) noexcept {
    const std::size_t start = i;
    while (i < s.size() && is_tchar(s[i]))
        ++i;
    return s.substr(start, i - start);
}

bool next_is(std::string_view s, std::size_t i, char c) noexcept {
    return i < s.size() && s[i] == c;
}

// §9.1: a param value is a token, or a quoted-string that is a token once unquoted.
std::optional<std::string> read_param_value(std::string_view s, std::size_t& i) {
    if (next_is(s, i, '"')) {
        std::optional<std::string> unquoted = read_quoted(s, i);
        if (unquoted && is_token(*unquoted)) return unquoted;
        return std::nullopt;
    }
    const std::string_view token = read_token(s, i);
    if (token.empty()) return std::nullopt;
    return std::string(token);
}

void skip_ows(std::string_view s, std::size_t& i) noexcept {
    while (i < s.size() && is_ows(s[i]))
        ++i;
}

bool offered_extension(const std::vector<ExtensionOffer>& offers, std::string_view name) noexcept {
    return std::any_of(offers.begin(), offers.end(),
                       [&](const ExtensionOffer& offer) { return iequals(offer.name, name); });
}

}  // namespace

// ---------------------------------------------------------------------------------------------

AcceptKey accept_key(std::string_view key) noexcept {
    AcceptKey out{};
    std::array<std::uint8_t, kSha1Bytes> digest{};
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool hashed = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr) == 1 &&
                        EVP_DigestUpdate(ctx, key.data(), key.size()) == 1 &&
                        EVP_DigestUpdate(ctx, kKeyGuid.data(), kKeyGuid.size()) == 1 &&
                        EVP_DigestFinal_ex(ctx, digest.data(), nullptr) == 1;
    EVP_MD_CTX_free(ctx);
    if (hashed) base64_encode(digest, out);
    return out;
}

std::optional<WebSocketKey> generate_key() noexcept {
    std::array<std::uint8_t, kKeyNonceBytes> nonce{};
    if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) return std::nullopt;
    WebSocketKey key{};
    base64_encode(nonce, key);
    return key;
}

bool is_valid_key(std::string_view key) noexcept {
    if (key.size() != base64_encoded_size(kKeyNonceBytes)) return false;
    std::array<std::uint8_t, base64_decoded_max_size(base64_encoded_size(kKeyNonceBytes))> bytes{};
    const auto n = base64_decode(key, bytes);
    return n && *n == kKeyNonceBytes;
}

// ---------------------------------------------------------------------------------------------

HttpParseResult HttpHeadParser::parse(std::string_view in, std::span<HttpHeader> storage,
                                      HttpHead& out) noexcept {
    // Find the blank line that ends the head, refusing bare LFs and counting lines as they
    // complete, so an oversized or garbled head fails before it is all in.
    const std::size_t limit = std::min(in.size(), limits_.max_head_bytes);
    while (head_end_ == 0 && scanned_ < limit) {
        const void* found = std::memchr(in.data() + scanned_, '\n', limit - scanned_);
        if (found == nullptr) {
            scanned_ = limit;
            break;
        }
        const auto lf = static_cast<std::size_t>(static_cast<const char*>(found) - in.data());
        scanned_ = lf + 1;
        // RFC 9112 §2.2: lines end in CRLF; a bare LF is refused rather than guessed at.
        if (lf == line_start_ || in[lf - 1] != '\r') return kMalformed;
        if (lf - 1 == line_start_) {
            if (lines_ == 0) return kMalformed;  // no start line
            head_end_ = lf + 1;
            break;
        }
        line_start_ = lf + 1;
        // Every line after the start line is a header.
        if (++lines_ - 1 > limits_.max_headers) return kTooLarge;
    }
    if (head_end_ == 0) return in.size() >= limits_.max_head_bytes ? kTooLarge : kNeedMore;
    // Called again with a shorter buffer than the one the head was found in: not there yet.
    if (in.size() < head_end_) return kNeedMore;
    if (lines_ - 1 > storage.size()) return kTooLarge;

    // Every line of [0, head_end_) ends in CRLF; the last one is the blank line.
    std::size_t pos = 0;
    auto next_line = [&]() {
        const std::size_t lf = in.find('\n', pos);
        const std::string_view line = in.substr(pos, lf - 1 - pos);
        pos = lf + 1;
        return line;
    };
    HttpHead head;
    const std::string_view start_line = next_line();
    const bool start_ok = kind_ == HttpKind::request ? parse_request_line(start_line, head)
                                                     : parse_status_line(start_line, head);
    if (!start_ok) return kMalformed;
    std::size_t count = 0;
    for (std::string_view line = next_line(); !line.empty(); line = next_line()) {
        if (!parse_header_line(line, storage[count])) return kMalformed;
        ++count;
    }
    head.headers = storage.first(count);
    head.size = head_end_;
    out = head;
    return {ParseStatus::ok, Error::none};
}

std::optional<std::string_view> find_header(std::span<const HttpHeader> headers,
                                            std::string_view name) noexcept {
    for (const HttpHeader& h : headers) {
        if (iequals(h.name, name)) return h.value;
    }
    return std::nullopt;
}

std::size_t count_headers(std::span<const HttpHeader> headers, std::string_view name) noexcept {
    return static_cast<std::size_t>(
        std::count_if(headers.begin(), headers.end(),
                      [&](const HttpHeader& h) { return iequals(h.name, name); }));
}

bool has_token(std::span<const HttpHeader> headers, std::string_view name,
               std::string_view token) noexcept {
    return std::any_of(headers.begin(), headers.end(), [&](const HttpHeader& h) {
        return iequals(h.name, name) &&
               any_list_element(h.value, [&](std::string_view e) { return iequals(e, token); });
    });
}

// ---------------------------------------------------------------------------------------------

bool parse_extension_list(std::string_view value, std::vector<ExtensionOffer>& out) {
    // RFC 6455 §9.1: extension *( ";" extension-param ), extension-param = token [ "=" ( token /
    // quoted-string ) ]; OWS around separators.
    std::size_t i = 0;
    for (;;) {
        skip_ows(value, i);
        if (i == value.size()) return true;
        if (value[i] == ',') {
            ++i;
            continue;
        }
        ExtensionOffer offer;
        offer.name = read_token(value, i);
        if (offer.name.empty()) return false;
        skip_ows(value, i);
        while (next_is(value, i, ';')) {
            ++i;
            skip_ows(value, i);
            ExtensionParam param;
            param.name = read_token(value, i);
            if (param.name.empty()) return false;
            skip_ows(value, i);
            if (next_is(value, i, '=')) {
                ++i;
                skip_ows(value, i);
                param.value = read_param_value(value, i);
                if (!param.value) return false;
                skip_ows(value, i);
            }
            offer.params.push_back(std::move(param));
        }
        out.push_back(std::move(offer));
        if (i == value.size()) return true;
        if (value[i] != ',') return false;
        ++i;
    }
}

bool parse_extensions(std::span<const HttpHeader> headers, std::vector<ExtensionOffer>& out) {
    for (const HttpHeader& h : headers) {
        if (iequals(h.name, "Sec-WebSocket-Extensions") && !parse_extension_list(h.value, out)) {
            return false;
        }
    }
    return true;
}

// ---------------------------------------------------------------------------------------------

bool OriginPolicy::allows(std::optional<std::string_view> origin, std::string_view host) const {
    switch (mode) {
        case Mode::allow_any:
            return true;
        case Mode::custom:
            return check && check(origin.value_or(std::string_view{}), host);
        case Mode::allow_list:
            return !origin || std::any_of(allowed.begin(), allowed.end(),
                                          [&](const auto& a) { return iequals(a, *origin); });
        case Mode::same_origin:
            break;
    }
    if (!origin) return true;
    // RFC 6454 §6.2: scheme "://" host [":" port]; compare the authority with Host.
    const std::size_t scheme_end = origin->find("://");
    if (scheme_end == std::string_view::npos) return false;
    std::string_view authority = origin->substr(scheme_end + 3);
    authority = authority.substr(0, authority.find('/'));
    return !authority.empty() && iequals(authority, host);
}

std::string_view select_subprotocol(std::span<const HttpHeader> headers,
                                    std::span<const std::string> supported) noexcept {
    for (const std::string& candidate : supported) {
        const bool offered = std::any_of(headers.begin(), headers.end(), [&](const HttpHeader& h) {
            return iequals(h.name, "Sec-WebSocket-Protocol") &&
                   any_list_element(h.value, [&](std::string_view e) { return e == candidate; });
        });
        if (offered) return candidate;
    }
    return {};
}

Error validate_upgrade_request(const HttpHead& head, const ServerOptions& options,
                               UpgradeRequest& out) {
    const std::span<const HttpHeader> headers = head.headers;
    // RFC 6455 §4.2.1 items 1-6, in the order the RFC lists them, except that the version is
    // checked before the key: a client speaking another version may format its key differently,
    // and deserves the 426 that tells it which version to retry with (§4.4).
    if (head.method != "GET") return Error::http_method_not_get;
    if (head.version_major < 1 || (head.version_major == 1 && head.version_minor < 1)) {
        return Error::http_version_too_old;
    }
    // RFC 9112 §3.2: more than one Host is a bad request, not a missing one.
    const std::size_t hosts = count_headers(headers, "Host");
    if (hosts > 1) return Error::http_malformed;
    const std::string_view host = find_header(headers, "Host").value_or(std::string_view{});
    if (host.empty()) return Error::http_missing_host;
    if (!has_token(headers, "Upgrade", "websocket")) return Error::http_missing_upgrade;
    if (!has_token(headers, "Connection", "upgrade")) {
        return Error::http_missing_connection_upgrade;
    }
    if (count_headers(headers, "Sec-WebSocket-Version") != 1 ||
        find_header(headers, "Sec-WebSocket-Version") != "13") {
        return Error::http_bad_version;
    }
    const auto key = find_header(headers, "Sec-WebSocket-Key");
    if (count_headers(headers, "Sec-WebSocket-Key") != 1 || !is_valid_key(*key)) {
        return Error::http_bad_key;
    }
    // Several Origin headers cannot name one origin; refusing them avoids checking one and
    // trusting another.
    if (count_headers(headers, "Origin") > 1) return Error::http_origin_forbidden;
    const auto origin = find_header(headers, "Origin");
    if (!options.origin.allows(origin, host)) return Error::http_origin_forbidden;

    out.target = head.target;
    out.host = host;
    out.origin = origin;
    out.key = *key;
    out.protocol = select_subprotocol(headers, options.subprotocols);
    out.extensions.clear();
    out.extensions_malformed = !parse_extensions(headers, out.extensions);
    out.headers = headers;
    return Error::none;
}

std::string write_accept_response(std::string_view key, std::string_view protocol,
                                  std::string_view extensions,
                                  std::span<const HttpHeader> extra_headers) {
    const AcceptKey accept = accept_key(key);
    std::string out = "HTTP/1.1 101 Switching Protocols\r\n";
    append_header(out, "Upgrade", "websocket");
    append_header(out, "Connection", "Upgrade");
    append_header(out, "Sec-WebSocket-Accept", std::string_view(accept.data(), accept.size()));
    if (!protocol.empty()) append_header(out, "Sec-WebSocket-Protocol", protocol);
    if (!extensions.empty()) append_header(out, "Sec-WebSocket-Extensions", extensions);
    for (const HttpHeader& h : extra_headers)
        append_header(out, h.name, h.value);
    out.append("\r\n");
    return out;
}

std::string write_error_response(Error e) {
    const int mapped = http_status_for(e);
    const int status = mapped == 0 ? 400 : mapped;
    std::string body(describe(e));
    body.push_back('\n');

    std::string out = "HTTP/1.1 ";
    out.append(std::to_string(status)).append(" ").append(reason_phrase(status)).append("\r\n");
    if (status == 405) append_header(out, "Allow", "GET");
    if (status == 426) {
        append_header(out, "Sec-WebSocket-Version", "13");
        append_header(out, "Upgrade", "websocket");
        // RFC 9110 §7.8: whoever sends Upgrade lists "upgrade" in Connection too.
        append_header(out, "Connection", "Upgrade, close");
    } else {
        append_header(out, "Connection", "close");
    }
    append_header(out, "Content-Type", "text/plain; charset=utf-8");
    append_header(out, "Content-Length", std::to_string(body.size()));
    out.append("\r\n").append(body);
    return out;
}

ServerHandshake::ServerHandshake(const ServerOptions& options)
    : options_(options),
      parser_(HttpKind::request, options.limits),
      storage_(options.limits.max_headers) {}

HttpParseResult ServerHandshake::parse(std::string_view in) {
    const HttpParseResult parsed = parser_.parse(in, storage_, head_);
    if (parsed.status != ParseStatus::ok) return parsed;
    const Error e = validate_upgrade_request(head_, options_, request_);
    if (e != Error::none) return {ParseStatus::error, e};
    return parsed;
}

std::string ServerHandshake::accept_response(std::string_view extensions,
                                             std::span<const HttpHeader> extra_headers) const {
    return write_accept_response(request_.key, request_.protocol, extensions, extra_headers);
}

// ---------------------------------------------------------------------------------------------

std::optional<ClientHandshake> ClientHandshake::create(ClientOptions options) {
    const auto key = generate_key();
    if (!key) return std::nullopt;
    return ClientHandshake(std::move(options), std::string_view(key->data(), key->size()));
}

ClientHandshake::ClientHandshake(ClientOptions options, std::string_view key)
    : options_(std::move(options)),
      key_(key),
      parser_(HttpKind::response, options_.limits),
      storage_(options_.limits.max_headers) {}

std::string ClientHandshake::request() const {
    std::string out = "GET ";
    out.append(options_.target).append(" HTTP/1.1\r\n");
    append_header(out, "Host", options_.host);
    append_header(out, "Upgrade", "websocket");
    append_header(out, "Connection", "Upgrade");
    append_header(out, "Sec-WebSocket-Key", key_);
    append_header(out, "Sec-WebSocket-Version", "13");
    if (!options_.origin.empty()) append_header(out, "Origin", options_.origin);
    if (!options_.protocols.empty()) {
        std::string list;
        for (const std::string& p : options_.protocols) {
            if (!list.empty()) list.append(", ");
            list.append(p);
        }
        append_header(out, "Sec-WebSocket-Protocol", list);
    }
    if (!options_.extensions.empty()) {
        append_header(out, "Sec-WebSocket-Extensions", options_.extensions);
    }
    for (const auto& [name, value] : options_.extra_headers)
        append_header(out, name, value);
    out.append("\r\n");
    return out;
}

HttpParseResult ClientHandshake::parse(std::string_view in) {
    const HttpParseResult parsed = parser_.parse(in, storage_, head_);
    if (parsed.status != ParseStatus::ok) return parsed;
    const Error e = validate_response();
    if (e != Error::none) return {ParseStatus::error, e};
    return parsed;
}

Error ClientHandshake::validate_response() {
    // RFC 6455 §4.1, the client's checks of the server's handshake, in the RFC's order.
    const std::span<const HttpHeader> headers = head_.headers;
    if (head_.status != 101) return Error::http_bad_status;
    if (!has_token(headers, "Upgrade", "websocket")) return Error::http_missing_upgrade;
    if (!has_token(headers, "Connection", "upgrade")) {
        return Error::http_missing_connection_upgrade;
    }
    const AcceptKey expected = accept_key(key_);
    if (count_headers(headers, "Sec-WebSocket-Accept") != 1 ||
        find_header(headers, "Sec-WebSocket-Accept") !=
            std::string_view(expected.data(), expected.size())) {
        return Error::http_bad_accept;
    }

    extensions_.clear();
    if (!parse_extensions(headers, extensions_)) return Error::http_malformed;
    std::vector<ExtensionOffer> offered;
    parse_extension_list(options_.extensions, offered);
    for (const ExtensionOffer& accepted : extensions_) {
        if (!offered_extension(offered, accepted.name)) return Error::http_unrequested_extension;
    }

    protocol_ = {};
    const std::size_t protocols = count_headers(headers, "Sec-WebSocket-Protocol");
    if (protocols > 1) return Error::http_unrequested_protocol;
    if (protocols == 1) {
        const std::string_view chosen = *find_header(headers, "Sec-WebSocket-Protocol");
        const auto& offers = options_.protocols;
        if (std::find(offers.begin(), offers.end(), chosen) == offers.end()) {
            return Error::http_unrequested_protocol;
        }
        protocol_ = chosen;
    }
    return Error::none;
}

}  // namespace wsx::proto
