// RFC 6455 §4 opening handshake, both roles: an incremental HTTP/1.1 head parser shared by the
// server (requests) and the client (responses), §4.2.1 request validation with a precise HTTP
// status for every failure, subprotocol and extension-offer parsing, the Origin policy hook, and
// writers for the upgrade request, the 101 answer and the error answers.
//
// The parser never copies: request line, status line and headers are string_views into the
// caller's buffer, which must stay put while they are used. Handshakes are once per connection,
// so the response writers and the owning results (extension offers) may allocate.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/error.hpp"
#include "proto/frame.hpp"  // ParseStatus

namespace wsx::proto {

// ---------------------------------------------------------------------------------------------
// Sec-WebSocket-Key / Sec-WebSocket-Accept (RFC 6455 §1.3, §4.1, §4.2.2)

// The 24 base64 characters of a 16-byte key.
using WebSocketKey = std::array<char, 24>;
// The 28 base64 characters of a SHA-1 digest.
using AcceptKey = std::array<char, 28>;

// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). If libcrypto fails (only under
// memory exhaustion), the result is all NUL bytes, which never equals a real accept value.
AcceptKey accept_key(std::string_view key) noexcept;

// A fresh client key: 16 bytes from OpenSSL's RAND_bytes, base64-encoded. nullopt when the CSPRNG
// cannot deliver (§4.1 requires the nonce to be randomly selected).
std::optional<WebSocketKey> generate_key() noexcept;

// True when `key` is the base64 encoding of exactly 16 bytes (§4.2.1 item 5).
bool is_valid_key(std::string_view key) noexcept;

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 head parsing (RFC 9112 §2-§5), one core for requests and responses

struct HttpHeader {
    std::string_view name;   // as received; compare case-insensitively
    std::string_view value;  // leading and trailing whitespace removed
};

struct HttpLimits {
    // The whole head: start line, headers and the blank line. Over it → 431.
    std::size_t max_head_bytes = 8 * 1024;
    // Header fields, counted one per line. Over it → 431.
    std::size_t max_headers = 64;
};

enum class HttpKind : std::uint8_t { request, response };

struct HttpHead {
    std::string_view method;  // request: a token
    std::string_view target;  // request: the request-target, not interpreted
    int status = 0;           // response: the 3-digit status code
    std::string_view reason;  // response: the reason phrase, possibly empty
    int version_major = 0;
    int version_minor = 0;
    std::span<const HttpHeader> headers;  // into the storage given to parse()
    std::size_t size = 0;                 // bytes of the head, blank line included
};

struct HttpParseResult {
    ParseStatus status = ParseStatus::need_more;
    Error error = Error::none;  // http_malformed or http_headers_too_large when status == error
};

// Parses one head from a buffer that grows between calls: pass all bytes received so far, from
// the head's first byte. It remembers how far it has scanned, so feeding one byte at a time stays
// linear. Syntax is strict: CRLF line ends only, "METHOD SP target SP HTTP/d.d" (request) or
// "HTTP/d.d SP ddd [SP reason]" (response), "name: value" with a token name and no whitespace
// before the colon, no control characters, no obs-fold (RFC 9112 §5.2: rejected with 400).
class HttpHeadParser {
  public:
    HttpHeadParser(HttpKind kind, HttpLimits limits) noexcept : kind_(kind), limits_(limits) {}

    // On ok, `out` describes the head; its headers are written to `storage` (more headers than
    // storage holds count as too many). Bytes from in[out.size] on are not the head's.
    HttpParseResult parse(std::string_view in, std::span<HttpHeader> storage,
                          HttpHead& out) noexcept;

  private:
    HttpKind kind_;
    HttpLimits limits_;
    std::size_t scanned_ = 0;     // bytes already searched for line ends
    std::size_t line_start_ = 0;  // offset of the line being scanned
    std::size_t lines_ = 0;       // complete non-empty lines seen
    std::size_t head_end_ = 0;    // one past the blank line, once found
};

// The value of the first header named `name` (case-insensitive), or nullopt.
std::optional<std::string_view> find_header(std::span<const HttpHeader> headers,
                                            std::string_view name) noexcept;

// How many headers are named `name`.
std::size_t count_headers(std::span<const HttpHeader> headers, std::string_view name) noexcept;

// True when any header named `name` holds `token` in its comma-separated list, case-insensitive
// (RFC 9110 §5.3: repeated headers are one list; §5.6.1: empty elements and OWS are ignored).
bool has_token(std::span<const HttpHeader> headers, std::string_view name,
               std::string_view token) noexcept;

// ---------------------------------------------------------------------------------------------
// Sec-WebSocket-Extensions (RFC 6455 §9.1, RFC 7692 §5.1)

struct ExtensionParam {
    std::string name;
    std::optional<std::string> value;  // quoted-string values arrive unquoted
};

struct ExtensionOffer {
    std::string name;
    std::vector<ExtensionParam> params;  // in the order received
};

// Appends the extensions listed in every Sec-WebSocket-Extensions header, in order. Returns false
// (and leaves `out` with what parsed before the fault) when a header breaks the §9.1 grammar,
// including a quoted value that is not a token once unquoted. Empty list elements are skipped.
bool parse_extensions(std::span<const HttpHeader> headers, std::vector<ExtensionOffer>& out);

// The same for one header value.
bool parse_extension_list(std::string_view value, std::vector<ExtensionOffer>& out);

// ---------------------------------------------------------------------------------------------
// Server role

// Who may open a WebSocket from a browser page (RFC 6455 §10.2: the Origin header is how a
// server tells which page a browser request comes from).
struct OriginPolicy {
    enum class Mode : std::uint8_t {
        // Allow a request without Origin (not from a browser) and one whose Origin's host[:port]
        // equals the Host header, case-insensitively. The default, as in gorilla/websocket.
        same_origin,
        allow_any,
        // Allow a request without Origin and an Origin equal (case-insensitively) to an entry of
        // `allowed`, e.g. "https://example.com" or "http://localhost:8080".
        allow_list,
        // Ask `check`; it sees the Origin value (empty when absent) and the Host value.
        custom,
    };

    Mode mode = Mode::same_origin;
    std::vector<std::string> allowed;
    std::function<bool(std::string_view origin, std::string_view host)> check;

    // Shorthands for the modes above.
    static OriginPolicy same_origin() { return {}; }
    static OriginPolicy allow_any() { return {Mode::allow_any, {}, {}}; }
    static OriginPolicy allow_list(std::vector<std::string> origins) {
        return {Mode::allow_list, std::move(origins), {}};
    }
    static OriginPolicy custom(std::function<bool(std::string_view, std::string_view)> fn) {
        return {Mode::custom, {}, std::move(fn)};
    }

    // `origin` is nullopt when the request has no Origin header.
    bool allows(std::optional<std::string_view> origin, std::string_view host) const;
};

struct ServerOptions {
    HttpLimits limits;
    // Subprotocols this server speaks, most preferred first. The server's order decides (see
    // select_subprotocol). Empty: never answer with a subprotocol.
    std::vector<std::string> subprotocols;
    OriginPolicy origin;
};

// What a valid upgrade request carries; views point into the parsed buffer.
struct UpgradeRequest {
    std::string_view target;
    std::string_view host;
    std::optional<std::string_view> origin;
    std::string_view key;
    std::string_view protocol;  // the selected subprotocol, empty for none
    // Offers for the extension negotiation (e.g. permessage-deflate) to act on. A malformed
    // header does not fail the handshake here: extensions_malformed is set and the negotiation
    // decides (RFC 7692 §5: decline, or fail the handshake).
    std::vector<ExtensionOffer> extensions;
    bool extensions_malformed = false;
    std::span<const HttpHeader> headers;  // all of them, for cookies, auth, routing
};

// The first of the server's `supported` subprotocols (in the server's order) that the client
// listed in any Sec-WebSocket-Protocol header, or empty. The server's order rather than the
// client's: §4.2.2 leaves the choice to the server, and the deployment knows which of the
// versions it implements it wants spoken (newest first). Names compare byte for byte, as the
// browser WebSocket API compares them.
std::string_view select_subprotocol(std::span<const HttpHeader> headers,
                                    std::span<const std::string> supported) noexcept;

// One server-side handshake: feed it the received bytes until it stops asking for more.
class ServerHandshake {
  public:
    // `options` must outlive the handshake (one ServerOptions usually serves every connection).
    explicit ServerHandshake(const ServerOptions& options);
    // The parsed views point into storage_, which a move carries along and a copy would not.
    ServerHandshake(const ServerHandshake&) = delete;
    ServerHandshake(ServerHandshake&&) = default;

    // `in` holds every byte received so far, from the first byte of the request.
    // need_more: call again with more bytes. ok: request() is a valid upgrade and consumed()
    // bytes were the request; the rest of `in` belongs to the WebSocket stream. error: answer
    // with write_error_response(result.error) and close.
    HttpParseResult parse(std::string_view in);

    // After ok: the validated request, the raw head, and the head's size in bytes.
    const UpgradeRequest& request() const noexcept { return request_; }
    const HttpHead& head() const noexcept { return head_; }
    std::size_t consumed() const noexcept { return head_.size; }

    // The 101 answer for the parsed request, with the selected subprotocol and the extension
    // string the negotiation produced (empty for none).
    std::string accept_response(std::string_view extensions = {},
                                std::span<const HttpHeader> extra_headers = {}) const;

  private:
    const ServerOptions& options_;
    HttpHeadParser parser_;
    std::vector<HttpHeader> storage_;
    HttpHead head_;
    UpgradeRequest request_;
};

// The full §4.2.1 check of a parsed request against `options`, filling `out` on success.
Error validate_upgrade_request(const HttpHead& head, const ServerOptions& options,
                               UpgradeRequest& out);

// HTTP/1.1 101 with Upgrade, Connection, Sec-WebSocket-Accept, and Sec-WebSocket-Protocol /
// Sec-WebSocket-Extensions when not empty. Extra header names and values are written as given
// and must be valid field syntax (no CR or LF).
std::string write_accept_response(std::string_view key, std::string_view protocol,
                                  std::string_view extensions,
                                  std::span<const HttpHeader> extra_headers = {});

// The answer to a refused handshake: the status of http_status_for(e) (400 for an error without
// one), a one-line text body, Content-Length and Connection: close. 405 carries Allow: GET
// (RFC 9110 §15.5.6); 426 carries Sec-WebSocket-Version: 13 (RFC 6455 §4.4) and Upgrade:
// websocket (RFC 9110 §15.5.22). Error::http_too_many_connections gives the 503.
std::string write_error_response(Error e);

// ---------------------------------------------------------------------------------------------
// Client role

struct ClientOptions {
    std::string host;          // the Host header: host, or host:port when not the default port
    std::string target = "/";  // path and query of the ws:// URL
    std::string origin;        // sent as Origin when not empty
    std::vector<std::string> protocols;  // Sec-WebSocket-Protocol offers
    std::string extensions;  // Sec-WebSocket-Extensions value offered (e.g. from deflate)
    // Written as given; names and values must be valid field syntax (no CR or LF).
    std::vector<std::pair<std::string, std::string>> extra_headers;
    HttpLimits limits;
};

// One client-side handshake: write request(), then feed the response bytes to parse().
class ClientHandshake {
  public:
    // Draws the key with generate_key(); nullopt when the CSPRNG fails.
    static std::optional<ClientHandshake> create(ClientOptions options);

    // With a key of the caller's choosing (a custom CSPRNG, or a test).
    ClientHandshake(ClientOptions options, std::string_view key);
    // The parsed views point into storage_, which a move carries along and a copy would not.
    ClientHandshake(const ClientHandshake&) = delete;
    ClientHandshake& operator=(const ClientHandshake&) = delete;
    ClientHandshake(ClientHandshake&&) = default;
    ClientHandshake& operator=(ClientHandshake&&) = default;

    // The Sec-WebSocket-Key this handshake sends.
    std::string_view key() const noexcept { return key_; }

    // The upgrade request to send (RFC 6455 §4.1).
    std::string request() const;

    // `in` holds every byte received so far, from the first byte of the response.
    // ok: the server accepted; consumed() bytes were the response and the rest of `in` is
    // WebSocket frames. error: http_bad_status (see status()), http_missing_upgrade,
    // http_missing_connection_upgrade, http_bad_accept, http_unrequested_extension,
    // http_unrequested_protocol, http_malformed or http_headers_too_large.
    HttpParseResult parse(std::string_view in);

    // The response's status code, its raw head and the head's size in bytes, once parsed.
    int status() const noexcept { return head_.status; }
    const HttpHead& head() const noexcept { return head_; }
    std::size_t consumed() const noexcept { return head_.size; }
    // The subprotocol the server selected, empty for none.
    std::string_view protocol() const noexcept { return protocol_; }
    // The extensions the server accepted, for the negotiation to configure itself from.
    const std::vector<ExtensionOffer>& extensions() const noexcept { return extensions_; }

  private:
    Error validate_response();

    ClientOptions options_;
    std::string key_;
    HttpHeadParser parser_;
    std::vector<HttpHeader> storage_;
    HttpHead head_;
    std::string_view protocol_;
    std::vector<ExtensionOffer> extensions_;
};

}  // namespace wsx::proto
