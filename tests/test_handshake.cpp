#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/handshake.hpp"

using namespace wsx::proto;

namespace {

constexpr std::string_view kSampleKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kSampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// An upgrade request assembled line by line, so each test changes only what it is about.
struct Request {
    std::string start = "GET /chat HTTP/1.1";
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Host", "server.example.com"},  {"Upgrade", "websocket"},
        {"Connection", "Upgrade"},       {"Sec-WebSocket-Key", std::string(kSampleKey)},
        {"Sec-WebSocket-Version", "13"},
    };

    Request& without(std::string_view name) {
        std::erase_if(headers, [&](const auto& h) { return h.first == name; });
        return *this;
    }
    Request& set(std::string_view name, std::string_view value) {
        without(name);
        return add(name, value);
    }
    Request& add(std::string_view name, std::string_view value) {
        headers.emplace_back(name, value);
        return *this;
    }
    std::string str() const {
        std::string out = start + "\r\n";
        for (const auto& [name, value] : headers)
            out += name + ": " + value + "\r\n";
        return out + "\r\n";
    }
};

struct Outcome {
    ParseStatus status;
    Error error;
    int http_status;
};

Outcome serve(const std::string& bytes, const ServerOptions& options = {}) {
    ServerHandshake hs(options);
    const HttpParseResult r = hs.parse(bytes);
    return {r.status, r.error, http_status_for(r.error)};
}

// The status code a refused request is answered with; 101 when accepted.
int answer_status(const std::string& bytes, const ServerOptions& options = {}) {
    const Outcome o = serve(bytes, options);
    REQUIRE(o.status != ParseStatus::need_more);
    return o.status == ParseStatus::ok ? 101 : o.http_status;
}

std::string response(std::string_view status_line,
                     std::vector<std::pair<std::string, std::string>> headers) {
    std::string out = std::string(status_line) + "\r\n";
    for (const auto& [name, value] : headers)
        out += name + ": " + value + "\r\n";
    return out + "\r\n";
}

std::vector<std::pair<std::string, std::string>> good_response_headers(std::string_view key) {
    const AcceptKey accept = accept_key(key);
    return {{"Upgrade", "websocket"},
            {"Connection", "Upgrade"},
            {"Sec-WebSocket-Accept", std::string(accept.data(), accept.size())}};
}

ClientOptions client_options() {
    ClientOptions o;
    o.host = "server.example.com";
    o.target = "/chat";
    return o;
}

Error client_error(const ClientOptions& options, const std::string& bytes) {
    ClientHandshake hs(options, kSampleKey);
    const HttpParseResult r = hs.parse(bytes);
    REQUIRE(r.status != ParseStatus::need_more);
    return r.error;
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Keys

TEST_CASE("accept key of the RFC 6455 §1.3 sample key") {
    const AcceptKey accept = accept_key(kSampleKey);
    CHECK(std::string_view(accept.data(), accept.size()) == kSampleAccept);
}

TEST_CASE("generated client keys are base64 of 16 fresh random bytes") {
    const auto a = generate_key();
    const auto b = generate_key();
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    CHECK(is_valid_key(std::string_view(a->data(), a->size())));
    CHECK(*a != *b);
}

TEST_CASE("a key must be base64 of exactly 16 bytes") {
    CHECK(is_valid_key(kSampleKey));
    CHECK_FALSE(is_valid_key("AAAAAAAAAAAAAAAAAAAA"));      // 15 bytes
    CHECK_FALSE(is_valid_key("AAAAAAAAAAAAAAAAAAAAAAA="));  // 17 bytes, still 24 characters
    CHECK_FALSE(is_valid_key("dGhlIHNhbXBsZSBub25jZQ"));    // padding dropped
    CHECK_FALSE(is_valid_key("dGhlIHNhbXBsZSBub25jZ*=="));  // not the alphabet
    CHECK_FALSE(is_valid_key(""));
}

// ---------------------------------------------------------------------------------------------
// HTTP head parser

TEST_CASE("request line and headers are parsed into views of the input") {
    const std::string bytes = Request{}.add("X-Padded", " \t spaced out \t ").str();
    HttpHeadParser parser(HttpKind::request, {});
    std::vector<HttpHeader> storage(64);
    HttpHead head;
    REQUIRE(parser.parse(bytes, storage, head).status == ParseStatus::ok);
    CHECK(head.method == "GET");
    CHECK(head.target == "/chat");
    CHECK(head.version_major == 1);
    CHECK(head.version_minor == 1);
    CHECK(head.size == bytes.size());
    REQUIRE(head.headers.size() == 6);
    CHECK(head.headers[0].name == "Host");
    CHECK(head.headers[0].value == "server.example.com");
    CHECK(head.headers[5].value == "spaced out");
    CHECK(head.headers[0].name.data() >= bytes.data());
    CHECK(head.headers[0].name.data() < bytes.data() + bytes.size());
    CHECK(find_header(head.headers, "sec-websocket-key") == kSampleKey);
    CHECK_FALSE(find_header(head.headers, "Origin").has_value());
}

TEST_CASE("a request fed one byte at a time needs more until its blank line") {
    const std::string bytes = Request{}.str();
    ServerOptions options;
    ServerHandshake hs(options);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(n);
        REQUIRE(hs.parse(std::string_view(bytes).substr(0, n)).status == ParseStatus::need_more);
    }
    const HttpParseResult r = hs.parse(bytes);
    CHECK(r.status == ParseStatus::ok);
    CHECK(hs.consumed() == bytes.size());
    CHECK(hs.request().key == kSampleKey);
}

TEST_CASE("bytes after the request's blank line belong to the WebSocket stream") {
    const std::string head = Request{}.str();
    const std::string frames = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    const std::string bytes = head + frames;
    ServerOptions options;
    ServerHandshake hs(options);
    REQUIRE(hs.parse(bytes).status == ParseStatus::ok);
    CHECK(hs.consumed() == head.size());
    CHECK(std::string_view(bytes).substr(hs.consumed()) == frames);
}

TEST_CASE("malformed request syntax is answered with 400") {
    const std::string good = Request{}.str();
    const std::vector<std::string> bad = {
        "GET /chat HTTP/1.1\nHost: a\r\n\r\n",                // bare LF
        "GET /chat HTTP/1.1\r\nHost: a\n\r\n",                // bare LF
        "\r\n" + good,                                        // blank line first
        "GET  /chat HTTP/1.1\r\n\r\n",                        // double space
        "GET /chat  HTTP/1.1\r\n\r\n",                        // double space
        "GET /chat\r\n\r\n",                                  // no version
        "GET /chat http/1.1\r\n\r\n",                         // HTTP-name is case-sensitive
        "GET /chat HTTP/1.11\r\n\r\n",                        // one digit each
        "GET /ch\x01t HTTP/1.1\r\n\r\n",                      // control in target
        "G(T /chat HTTP/1.1\r\n\r\n",                         // method not a token
        "GET /chat HTTP/1.1\r\nHost : a\r\n\r\n",             // space before colon
        "GET /chat HTTP/1.1\r\nHost a\r\n\r\n",               // no colon
        "GET /chat HTTP/1.1\r\n: a\r\n\r\n",                  // empty name
        "GET /chat HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",   // obs-fold
        "GET /chat HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n",  // obs-fold
        "GET /chat HTTP/1.1\r\nX: a\rb\r\n\r\n",              // CR inside a value
        std::string("GET /chat HTTP/1.1\r\nX: a") + '\0' + "b\r\n\r\n",  // NUL in a value
    };
    for (const std::string& bytes : bad) {
        CAPTURE(bytes);
        const Outcome o = serve(bytes);
        CHECK(o.status == ParseStatus::error);
        CHECK(o.error == Error::http_malformed);
        CHECK(o.http_status == 400);
    }
}

TEST_CASE("a bare LF fails the request before its end arrives") {
    const Outcome o = serve("GET /chat HTTP/1.1\nHost: server.exam");
    CHECK(o.status == ParseStatus::error);
    CHECK(o.error == Error::http_malformed);
}

TEST_CASE("a status line is parsed with or without a reason phrase") {
    HttpHeadParser parser(HttpKind::response, {});
    std::vector<HttpHeader> storage(4);
    HttpHead head;
    REQUIRE(parser.parse("HTTP/1.1 404 Not Found\r\nX: y\r\n\r\n", storage, head).status ==
            ParseStatus::ok);
    CHECK(head.status == 404);
    CHECK(head.reason == "Not Found");

    HttpHeadParser bare(HttpKind::response, {});
    REQUIRE(bare.parse("HTTP/1.1 101\r\n\r\n", storage, head).status == ParseStatus::ok);
    CHECK(head.status == 101);
    CHECK(head.reason.empty());

    for (std::string_view bad : {"HTTP/1.1 10\r\n\r\n", "HTTP/1.1 1O1 OK\r\n\r\n",
                                 "HTTP/1.1 101x\r\n\r\n", "HTTP/1.1  101 OK\r\n\r\n"}) {
        CAPTURE(bad);
        HttpHeadParser p(HttpKind::response, {});
        CHECK(p.parse(bad, storage, head).error == Error::http_malformed);
    }
}

// ---------------------------------------------------------------------------------------------
// Limits → 431

TEST_CASE("a head larger than max_head_bytes is answered with 431") {
    const std::string big = Request{}.add("Cookie", std::string(9000, 'a')).str();
    CHECK(answer_status(big) == 431);

    // Before the blank line arrives: the limit is hit by what is already in.
    const std::string partial = Request{}.str().substr(0, 100) + std::string(9000, 'a');
    const Outcome o = serve(partial);
    CHECK(o.status == ParseStatus::error);
    CHECK(o.error == Error::http_headers_too_large);
}

TEST_CASE("a head of exactly max_head_bytes is accepted") {
    ServerOptions options;
    const std::string bytes = Request{}.str();
    options.limits.max_head_bytes = bytes.size();
    CHECK(answer_status(bytes, options) == 101);
    options.limits.max_head_bytes = bytes.size() - 1;
    CHECK(answer_status(bytes, options) == 431);
}

TEST_CASE("more headers than max_headers are answered with 431") {
    Request at_limit;
    while (at_limit.headers.size() < 64)
        at_limit.add("X-Filler", "1");
    CHECK(answer_status(at_limit.str()) == 101);

    Request over = at_limit;
    over.add("X-Filler", "1");
    CHECK(answer_status(over.str()) == 431);

    ServerOptions options;
    options.limits.max_headers = 5;
    CHECK(answer_status(Request{}.str(), options) == 101);
    CHECK(answer_status(Request{}.add("X", "y").str(), options) == 431);
}

TEST_CASE("too many header lines fail before the blank line arrives") {
    std::string partial = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 65; ++i)
        partial += "X: y\r\n";
    const Outcome o = serve(partial);
    CHECK(o.status == ParseStatus::error);
    CHECK(o.error == Error::http_headers_too_large);
}

// ---------------------------------------------------------------------------------------------
// §4.2.1 validation, one rule at a time

TEST_CASE("a valid upgrade request is accepted") {
    const std::string bytes = Request{}.str();
    ServerOptions options;
    ServerHandshake hs(options);
    REQUIRE(hs.parse(bytes).status == ParseStatus::ok);
    CHECK(hs.request().target == "/chat");
    CHECK(hs.request().host == "server.example.com");
    CHECK_FALSE(hs.request().origin.has_value());
    CHECK(hs.request().protocol.empty());
    CHECK(hs.request().extensions.empty());
    CHECK_FALSE(hs.request().extensions_malformed);
}

TEST_CASE("a method other than GET is answered with 405") {
    Request r;
    r.start = "POST /chat HTTP/1.1";
    CHECK(serve(r.str()).error == Error::http_method_not_get);
    CHECK(answer_status(r.str()) == 405);
    r.start = "get /chat HTTP/1.1";  // methods are case-sensitive (RFC 9110 §9.1)
    CHECK(answer_status(r.str()) == 405);
}

TEST_CASE("HTTP/1.0 and older are answered with 400") {
    Request r;
    r.start = "GET /chat HTTP/1.0";
    CHECK(serve(r.str()).error == Error::http_version_too_old);
    CHECK(answer_status(r.str()) == 400);
    r.start = "GET /chat HTTP/0.9";
    CHECK(answer_status(r.str()) == 400);
}

TEST_CASE("a missing, empty or repeated Host is answered with 400") {
    CHECK(serve(Request{}.without("Host").str()).error == Error::http_missing_host);
    CHECK(serve(Request{}.set("Host", "").str()).error == Error::http_missing_host);
    CHECK(answer_status(Request{}.add("Host", "other.example").str()) == 400);
    CHECK(answer_status(Request{}.without("Host").str()) == 400);
}

TEST_CASE("Upgrade must list the token websocket, in any case, in any of its headers") {
    CHECK(serve(Request{}.without("Upgrade").str()).error == Error::http_missing_upgrade);
    CHECK(answer_status(Request{}.without("Upgrade").str()) == 400);
    CHECK(answer_status(Request{}.set("Upgrade", "h2c").str()) == 400);
    CHECK(answer_status(Request{}.set("Upgrade", "websockets").str()) == 400);
    CHECK(answer_status(Request{}.set("Upgrade", "websocket/13").str()) == 400);

    CHECK(answer_status(Request{}.set("Upgrade", "WebSocket").str()) == 101);
    CHECK(answer_status(Request{}.set("Upgrade", "h2c,WEBSOCKET").str()) == 101);
    CHECK(answer_status(Request{}.set("Upgrade", " ,\t websocket ,  , h2c").str()) == 101);
    CHECK(answer_status(Request{}.set("Upgrade", "h2c").add("Upgrade", "websocket").str()) == 101);
}

TEST_CASE("Connection must list the token upgrade, in any case, in any of its headers") {
    CHECK(serve(Request{}.without("Connection").str()).error ==
          Error::http_missing_connection_upgrade);
    CHECK(answer_status(Request{}.without("Connection").str()) == 400);
    CHECK(answer_status(Request{}.set("Connection", "keep-alive").str()) == 400);
    CHECK(answer_status(Request{}.set("Connection", "upgraded").str()) == 400);

    CHECK(answer_status(Request{}.set("Connection", "keep-alive, Upgrade").str()) == 101);
    CHECK(answer_status(Request{}.set("Connection", "keep-alive,upgrade").str()) == 101);
    CHECK(answer_status(Request{}.set("Connection", "UPGRADE ,keep-alive").str()) == 101);
    CHECK(answer_status(
              Request{}.set("Connection", "keep-alive").add("Connection", "Upgrade").str()) == 101);
}

TEST_CASE("Sec-WebSocket-Version missing or not 13 is answered with 426") {
    const std::vector<std::string> bad = {
        Request{}.without("Sec-WebSocket-Version").str(),
        Request{}.set("Sec-WebSocket-Version", "8").str(),
        Request{}.set("Sec-WebSocket-Version", "13, 8").str(),
        Request{}.set("Sec-WebSocket-Version", "013").str(),
        Request{}.add("Sec-WebSocket-Version", "13").str(),
    };
    for (const std::string& bytes : bad) {
        CAPTURE(bytes);
        CHECK(serve(bytes).error == Error::http_bad_version);
        CHECK(answer_status(bytes) == 426);
    }
    CHECK(answer_status(Request{}.set("Sec-WebSocket-Version", " 13\t").str()) == 101);
}

TEST_CASE("the 426 answer carries Sec-WebSocket-Version: 13") {
    const std::string answer = write_error_response(Error::http_bad_version);
    CHECK(answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    CHECK(contains(answer, "\r\nSec-WebSocket-Version: 13\r\n"));
    CHECK(contains(answer, "\r\nUpgrade: websocket\r\n"));
}

TEST_CASE("Sec-WebSocket-Key missing, repeated or not 16 bytes of base64 is answered with 400") {
    const std::vector<std::string> bad = {
        Request{}.without("Sec-WebSocket-Key").str(),
        Request{}.add("Sec-WebSocket-Key", std::string(kSampleKey)).str(),
        Request{}.set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA").str(),      // 15 bytes
        Request{}.set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA=").str(),  // 17 bytes
        Request{}.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ").str(),    // no padding
        Request{}.set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZ!==").str(),  // not base64
        Request{}.set("Sec-WebSocket-Key", "").str(),
    };
    for (const std::string& bytes : bad) {
        CAPTURE(bytes);
        CHECK(serve(bytes).error == Error::http_bad_key);
        CHECK(answer_status(bytes) == 400);
    }
}

TEST_CASE("the version is checked before the key, so other versions learn to retry with 13") {
    const std::string bytes =
        Request{}.set("Sec-WebSocket-Version", "8").without("Sec-WebSocket-Key").str();
    CHECK(answer_status(bytes) == 426);
}

TEST_CASE("a request body or frames after the headers do not disturb validation") {
    const std::string bytes = Request{}.add("Content-Length", "5").str() + "hello";
    ServerOptions options;
    ServerHandshake hs(options);
    REQUIRE(hs.parse(bytes).status == ParseStatus::ok);
    CHECK(std::string_view(bytes).substr(hs.consumed()) == "hello");
}

// ---------------------------------------------------------------------------------------------
// Origin policy → 403

TEST_CASE("the default origin policy allows a missing or same origin and forbids others") {
    CHECK(answer_status(Request{}.str()) == 101);
    CHECK(answer_status(Request{}.add("Origin", "http://server.example.com").str()) == 101);
    CHECK(answer_status(Request{}.add("Origin", "https://SERVER.example.com").str()) == 101);

    const std::vector<std::string> forbidden = {
        Request{}.add("Origin", "http://evil.example.com").str(),
        Request{}.add("Origin", "http://server.example.com:8080").str(),
        Request{}.add("Origin", "null").str(),
        Request{}.add("Origin", "server.example.com").str(),
        Request{}
            .add("Origin", "http://server.example.com")
            .add("Origin", "http://evil.example.com")
            .str(),
    };
    for (const std::string& bytes : forbidden) {
        CAPTURE(bytes);
        CHECK(serve(bytes).error == Error::http_origin_forbidden);
        CHECK(answer_status(bytes) == 403);
    }
}

TEST_CASE("same origin compares host and port with the Host header") {
    Request r;
    r.set("Host", "localhost:8080");
    CHECK(answer_status(Request(r).add("Origin", "http://localhost:8080").str()) == 101);
    CHECK(answer_status(Request(r).add("Origin", "http://localhost").str()) == 403);
}

TEST_CASE("the allow-any origin policy allows every origin") {
    ServerOptions options;
    options.origin = OriginPolicy::allow_any();
    CHECK(answer_status(Request{}.add("Origin", "http://evil.example.com").str(), options) == 101);
    CHECK(answer_status(Request{}.add("Origin", "null").str(), options) == 101);
}

TEST_CASE("the allow-list origin policy allows exactly the listed origins") {
    ServerOptions options;
    options.origin = OriginPolicy::allow_list({"https://app.example.com", "http://localhost:3000"});
    CHECK(answer_status(Request{}.str(), options) == 101);
    CHECK(answer_status(Request{}.add("Origin", "https://app.example.com").str(), options) == 101);
    CHECK(answer_status(Request{}.add("Origin", "HTTPS://APP.example.com").str(), options) == 101);
    CHECK(answer_status(Request{}.add("Origin", "http://localhost:3000").str(), options) == 101);
    CHECK(answer_status(Request{}.add("Origin", "http://app.example.com").str(), options) == 403);
    CHECK(answer_status(Request{}.add("Origin", "http://server.example.com").str(), options) ==
          403);
}

TEST_CASE("a custom origin policy decides from the Origin and Host values") {
    ServerOptions options;
    std::string seen_origin;
    std::string seen_host;
    options.origin = OriginPolicy::custom([&](std::string_view origin, std::string_view host) {
        seen_origin = origin;
        seen_host = host;
        return origin.ends_with(".trusted.example");
    });
    CHECK(answer_status(Request{}.add("Origin", "https://a.trusted.example").str(), options) ==
          101);
    CHECK(seen_origin == "https://a.trusted.example");
    CHECK(seen_host == "server.example.com");
    CHECK(answer_status(Request{}.add("Origin", "https://evil.example").str(), options) == 403);
    CHECK(answer_status(Request{}.str(), options) == 403);
    CHECK(seen_origin.empty());
}

// ---------------------------------------------------------------------------------------------
// Subprotocols and extensions

TEST_CASE("the server picks its most preferred subprotocol among those offered") {
    ServerOptions options;
    options.subprotocols = {"v2.chat", "v1.chat"};
    ServerHandshake hs(options);
    const std::string bytes = Request{}
                                  .add("Sec-WebSocket-Protocol", "v1.chat, other")
                                  .add("Sec-WebSocket-Protocol", " v2.chat ")
                                  .str();
    REQUIRE(hs.parse(bytes).status == ParseStatus::ok);
    CHECK(hs.request().protocol == "v2.chat");
    CHECK(contains(hs.accept_response(), "\r\nSec-WebSocket-Protocol: v2.chat\r\n"));
}

TEST_CASE("no subprotocol is chosen when none offered is supported") {
    ServerOptions options;
    options.subprotocols = {"chat"};
    ServerHandshake hs(options);
    const std::string bytes = Request{}.add("Sec-WebSocket-Protocol", "CHAT, superchat").str();
    REQUIRE(hs.parse(bytes).status == ParseStatus::ok);
    CHECK(hs.request().protocol.empty());
    CHECK_FALSE(contains(hs.accept_response(), "Sec-WebSocket-Protocol"));
}

TEST_CASE("extension offers are parsed with their parameters, quoted values unquoted") {
    std::vector<ExtensionOffer> offers;
    REQUIRE(parse_extension_list(
        "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\" , "
        "permessage-deflate ;client_no_context_takeover;server_max_window_bits = 12,x-webkit",
        offers));
    REQUIRE(offers.size() == 3);
    CHECK(offers[0].name == "permessage-deflate");
    REQUIRE(offers[0].params.size() == 2);
    CHECK(offers[0].params[0].name == "client_max_window_bits");
    CHECK_FALSE(offers[0].params[0].value.has_value());
    CHECK(offers[0].params[1].name == "server_max_window_bits");
    CHECK(offers[0].params[1].value == "10");
    REQUIRE(offers[1].params.size() == 2);
    CHECK(offers[1].params[0].name == "client_no_context_takeover");
    CHECK(offers[1].params[1].value == "12");
    CHECK(offers[2].name == "x-webkit");
    CHECK(offers[2].params.empty());
}

TEST_CASE("a quoted extension value may escape characters, and must be a token unquoted") {
    std::vector<ExtensionOffer> offers;
    REQUIRE(parse_extension_list(R"(e; a="1\0"; b="x")", offers));
    REQUIRE(offers.size() == 1);
    CHECK(offers[0].params[0].value == "10");
    CHECK(offers[0].params[1].value == "x");

    for (std::string_view bad :
         {R"(e; a="1 0")", R"(e; a="")", R"(e; a="10)", R"(e; a="1\)", "e; a=", "e;", "; a", "e a",
          "e; a b", "e=1", "e; a=1=2", "e; a=\"1,0\"", "e,;"}) {
        CAPTURE(bad);
        std::vector<ExtensionOffer> out;
        CHECK_FALSE(parse_extension_list(bad, out));
    }
}

TEST_CASE("empty extension list elements are skipped") {
    std::vector<ExtensionOffer> offers;
    REQUIRE(parse_extension_list(" , a ,, b;x ,", offers));
    REQUIRE(offers.size() == 2);
    CHECK(offers[0].name == "a");
    CHECK(offers[1].name == "b");
    offers.clear();
    CHECK(parse_extension_list("", offers));
    CHECK(offers.empty());
}

TEST_CASE("extension offers from several headers reach the negotiation in order") {
    ServerOptions options;
    ServerHandshake hs(options);
    const std::string bytes = Request{}
                                  .add("Sec-WebSocket-Extensions", "permessage-deflate; a=1, b")
                                  .add("sec-websocket-extensions", "c; d=\"e\"")
                                  .str();
    REQUIRE(hs.parse(bytes).status == ParseStatus::ok);
    const auto& offers = hs.request().extensions;
    REQUIRE(offers.size() == 3);
    CHECK(offers[0].name == "permessage-deflate");
    CHECK(offers[1].name == "b");
    CHECK(offers[2].name == "c");
    CHECK(offers[2].params[0].value == "e");
    CHECK_FALSE(hs.request().extensions_malformed);
}

TEST_CASE("a malformed extension header is reported, not a handshake failure") {
    ServerOptions options;
    ServerHandshake hs(options);
    const std::string bytes =
        Request{}.add("Sec-WebSocket-Extensions", "permessage-deflate; x=\"a b\"").str();
    REQUIRE(hs.parse(bytes).status == ParseStatus::ok);
    CHECK(hs.request().extensions_malformed);
}

// ---------------------------------------------------------------------------------------------
// Response writers

TEST_CASE("the 101 answer carries Upgrade, Connection, the accept key and the extensions") {
    const std::vector<HttpHeader> extra = {{"Set-Cookie", "id=1"}};
    const std::string answer =
        write_accept_response(kSampleKey, "chat", "permessage-deflate", extra);
    CHECK(answer ==
          "HTTP/1.1 101 Switching Protocols\r\n"
          "Upgrade: websocket\r\n"
          "Connection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
          "Sec-WebSocket-Protocol: chat\r\n"
          "Sec-WebSocket-Extensions: permessage-deflate\r\n"
          "Set-Cookie: id=1\r\n"
          "\r\n");
    CHECK(write_accept_response(kSampleKey, "", "") ==
          "HTTP/1.1 101 Switching Protocols\r\n"
          "Upgrade: websocket\r\n"
          "Connection: Upgrade\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
          "\r\n");
}

TEST_CASE("every refusal is a complete response with a text body and Connection: close") {
    const std::vector<std::pair<Error, std::string_view>> cases = {
        {Error::http_malformed, "400 Bad Request"},
        {Error::http_missing_host, "400 Bad Request"},
        {Error::http_bad_key, "400 Bad Request"},
        {Error::http_origin_forbidden, "403 Forbidden"},
        {Error::http_method_not_get, "405 Method Not Allowed"},
        {Error::http_bad_version, "426 Upgrade Required"},
        {Error::http_headers_too_large, "431 Request Header Fields Too Large"},
        {Error::http_too_many_connections, "503 Service Unavailable"},
    };
    for (const auto& c : cases) {
        const Error error = c.first;
        const std::string_view status_line = c.second;
        CAPTURE(status_line);
        const std::string answer = write_error_response(error);
        CHECK(answer.starts_with("HTTP/1.1 " + std::string(status_line) + "\r\n"));
        CHECK(contains(answer, "close\r\n"));

        // Parse it back with the response parser and check the body length.
        HttpHeadParser parser(HttpKind::response, {});
        std::vector<HttpHeader> storage(16);
        HttpHead head;
        REQUIRE(parser.parse(answer, storage, head).status == ParseStatus::ok);
        CHECK(head.status == http_status_for(error));
        CHECK(has_token(head.headers, "Connection", "close"));
        const std::string_view body = std::string_view(answer).substr(head.size);
        CHECK(find_header(head.headers, "Content-Length") == std::to_string(body.size()));
        CHECK(body == std::string(describe(error)) + "\n");
    }
    CHECK(contains(write_error_response(Error::http_method_not_get), "\r\nAllow: GET\r\n"));
}

// ---------------------------------------------------------------------------------------------
// Client role

TEST_CASE("the client request carries everything §4.1 requires, plus the options") {
    ClientOptions options = client_options();
    options.origin = "https://app.example.com";
    options.protocols = {"v2.chat", "v1.chat"};
    options.extensions = "permessage-deflate; client_max_window_bits";
    options.extra_headers = {{"Authorization", "Bearer t"}};
    const ClientHandshake hs(std::move(options), kSampleKey);
    CHECK(hs.request() ==
          "GET /chat HTTP/1.1\r\n"
          "Host: server.example.com\r\n"
          "Upgrade: websocket\r\n"
          "Connection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          "Sec-WebSocket-Version: 13\r\n"
          "Origin: https://app.example.com\r\n"
          "Sec-WebSocket-Protocol: v2.chat, v1.chat\r\n"
          "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
          "Authorization: Bearer t\r\n"
          "\r\n");
}

TEST_CASE("client request, server answer and client check agree end to end") {
    ClientOptions client_opts = client_options();
    client_opts.protocols = {"v1.chat", "v2.chat"};
    client_opts.extensions = "permessage-deflate; client_max_window_bits, x-other";
    auto client = ClientHandshake::create(client_opts);
    REQUIRE(client.has_value());
    CHECK(is_valid_key(client->key()));

    ServerOptions server_opts;
    server_opts.subprotocols = {"v2.chat"};
    ServerHandshake server(server_opts);
    const std::string request = client->request();
    REQUIRE(server.parse(request).status == ParseStatus::ok);
    CHECK(server.request().key == client->key());
    CHECK(server.request().extensions.size() == 2);

    const std::string frames = "\x81\x02hi";
    const std::string answer =
        server.accept_response("permessage-deflate; server_max_window_bits=10") + frames;
    for (std::size_t n = 0; n + frames.size() < answer.size(); ++n) {
        REQUIRE(client->parse(std::string_view(answer).substr(0, n)).status ==
                ParseStatus::need_more);
    }
    const HttpParseResult r = client->parse(answer);
    REQUIRE(r.status == ParseStatus::ok);
    CHECK(client->status() == 101);
    CHECK(client->protocol() == "v2.chat");
    REQUIRE(client->extensions().size() == 1);
    CHECK(client->extensions()[0].name == "permessage-deflate");
    CHECK(client->extensions()[0].params[0].value == "10");
    CHECK(std::string_view(answer).substr(client->consumed()) == frames);
}

TEST_CASE("client fails a status other than 101 and keeps the status") {
    ClientHandshake hs(client_options(), kSampleKey);
    const std::string answer = write_error_response(Error::http_origin_forbidden);
    const HttpParseResult r = hs.parse(answer);
    CHECK(r.status == ParseStatus::error);
    CHECK(r.error == Error::http_bad_status);
    CHECK(hs.status() == 403);
}

TEST_CASE("client fails a response without Upgrade: websocket or Connection: upgrade") {
    auto headers = good_response_headers(kSampleKey);
    headers[0].second = "h2c";
    CHECK(client_error(client_options(), response("HTTP/1.1 101 Switching Protocols", headers)) ==
          Error::http_missing_upgrade);

    headers = good_response_headers(kSampleKey);
    headers[1].second = "keep-alive";
    CHECK(client_error(client_options(), response("HTTP/1.1 101 Switching Protocols", headers)) ==
          Error::http_missing_connection_upgrade);

    headers = good_response_headers(kSampleKey);
    headers[0].second = "WebSocket";
    headers[1].second = "keep-alive, UPGRADE";
    CHECK(client_error(client_options(), response("HTTP/1.1 101 Switching Protocols", headers)) ==
          Error::none);
}

TEST_CASE("client fails a missing, wrong or repeated Sec-WebSocket-Accept") {
    auto headers = good_response_headers("AAAAAAAAAAAAAAAAAAAAAA==");
    CHECK(client_error(client_options(), response("HTTP/1.1 101 OK", headers)) ==
          Error::http_bad_accept);
    headers = good_response_headers(kSampleKey);
    headers.pop_back();
    CHECK(client_error(client_options(), response("HTTP/1.1 101 OK", headers)) ==
          Error::http_bad_accept);
    headers = good_response_headers(kSampleKey);
    headers.push_back(headers.back());
    CHECK(client_error(client_options(), response("HTTP/1.1 101 OK", headers)) ==
          Error::http_bad_accept);
}

TEST_CASE("client fails an extension it did not offer") {
    ClientOptions options = client_options();
    options.extensions = "permessage-deflate";
    auto headers = good_response_headers(kSampleKey);
    headers.emplace_back("Sec-WebSocket-Extensions", "x-unknown");
    CHECK(client_error(options, response("HTTP/1.1 101 OK", headers)) ==
          Error::http_unrequested_extension);
    CHECK(client_error(client_options(), response("HTTP/1.1 101 OK", headers)) ==
          Error::http_unrequested_extension);

    headers.back().second = "permessage-deflate; x=\"a b\"";
    CHECK(client_error(options, response("HTTP/1.1 101 OK", headers)) == Error::http_malformed);

    headers.back().second = "permessage-deflate; client_max_window_bits=15";
    CHECK(client_error(options, response("HTTP/1.1 101 OK", headers)) == Error::none);
}

TEST_CASE("client fails a subprotocol it did not offer") {
    ClientOptions options = client_options();
    options.protocols = {"chat"};
    auto headers = good_response_headers(kSampleKey);
    headers.emplace_back("Sec-WebSocket-Protocol", "superchat");
    CHECK(client_error(options, response("HTTP/1.1 101 OK", headers)) ==
          Error::http_unrequested_protocol);
    CHECK(client_error(client_options(), response("HTTP/1.1 101 OK", headers)) ==
          Error::http_unrequested_protocol);

    headers.back().second = "chat";
    CHECK(client_error(options, response("HTTP/1.1 101 OK", headers)) == Error::none);
    headers.emplace_back("Sec-WebSocket-Protocol", "chat");
    CHECK(client_error(options, response("HTTP/1.1 101 OK", headers)) ==
          Error::http_unrequested_protocol);
}

TEST_CASE("client fails a malformed or oversized response") {
    CHECK(client_error(client_options(), "HTTP/1.1 101 OK\nUpgrade: websocket\r\n\r\n") ==
          Error::http_malformed);
    ClientOptions options = client_options();
    options.limits.max_head_bytes = 64;
    CHECK(client_error(options, response("HTTP/1.1 101 OK", good_response_headers(kSampleKey))) ==
          Error::http_headers_too_large);
}
