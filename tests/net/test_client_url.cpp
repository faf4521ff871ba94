// ws:// URL parsing (RFC 6455 §3, RFC 3986 §3.2) and name resolution off the reactor thread.
#include <doctest/doctest.h>
#include <netdb.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>

#include "net/client.hpp"
#include "net/resolver.hpp"
#include "net/url.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::parse_url;
using wsx::net::Resolver;
using wsx::net::ResolveResult;
using wsx::net::UrlParseResult;
using wsx::net::testing::make_reactor;
using wsx::net::testing::run_until;

namespace {

// RFC 1035 §2.3.4 caps a label at 63 octets, so the resolver refuses this name locally, without
// asking a DNS server (and .invalid never resolves anyway, RFC 6761 §6.4).
const std::string kUnresolvableHost = std::string(64, 'a') + ".invalid";

}  // namespace

TEST_CASE("a ws URL without port or path means port 80 and target /") {
    const UrlParseResult r = parse_url("ws://example.com");
    REQUIRE(r.ok());
    CHECK_FALSE(r.url.secure);
    CHECK(r.url.host == "example.com");
    CHECK(r.url.port == 80);
    CHECK(r.url.target == "/");
    CHECK(r.url.authority() == "example.com");
}

TEST_CASE("a ws URL keeps its path and query as the request target") {
    const UrlParseResult r = parse_url("ws://127.0.0.1:8080/chat/room?user=a&x=%20");
    REQUIRE(r.ok());
    CHECK(r.url.host == "127.0.0.1");
    CHECK(r.url.port == 8080);
    CHECK(r.url.target == "/chat/room?user=a&x=%20");
    CHECK(r.url.authority() == "127.0.0.1:8080");
    CHECK(r.url.to_string() == "ws://127.0.0.1:8080/chat/room?user=a&x=%20");
}

TEST_CASE("a query without a path gets the path / in front of it") {
    const UrlParseResult r = parse_url("ws://h?q=1");
    REQUIRE(r.ok());
    CHECK(r.url.target == "/?q=1");
}

TEST_CASE("scheme and host are case-insensitive and the host is lower-cased") {
    const UrlParseResult r = parse_url("WS://LocalHost:9001/Path");
    REQUIRE(r.ok());
    CHECK(r.url.host == "localhost");
    CHECK(r.url.target == "/Path");  // the path is case-sensitive
}

TEST_CASE("an IPv6 literal is written in brackets and stored without them") {
    const UrlParseResult r = parse_url("ws://[::1]:9001/x");
    REQUIRE(r.ok());
    CHECK(r.url.host == "::1");
    CHECK(r.url.ipv6_literal());
    CHECK(r.url.port == 9001);
    CHECK(r.url.authority() == "[::1]:9001");

    const UrlParseResult plain = parse_url("ws://[2001:db8::7]");
    REQUIRE(plain.ok());
    CHECK(plain.url.port == 80);
    CHECK(plain.url.authority() == "[2001:db8::7]");
}

TEST_CASE("the Host header omits the default port and keeps any other") {
    CHECK(parse_url("ws://h:80/").url.authority() == "h");
    CHECK(parse_url("ws://h:443/").url.authority() == "h:443");
    CHECK(parse_url("wss://h:443/").url.authority() == "h");
    CHECK(parse_url("wss://h:80/").url.authority() == "h:80");
}

TEST_CASE("wss is recognised with default port 443") {
    const UrlParseResult r = parse_url("wss://example.com/feed");
    REQUIRE(r.ok());
    CHECK(r.url.secure);
    CHECK(r.url.port == 443);
}

TEST_CASE("an empty port means the scheme's default (RFC 3986 section 3.2.3)") {
    const UrlParseResult r = parse_url("ws://h:/x");
    REQUIRE(r.ok());
    CHECK(r.url.port == 80);
}

TEST_CASE("URLs that do not name a WebSocket endpoint are refused with a reason") {
    const char* const bad[] = {
        "",
        "example.com",
        "http://example.com/",
        "ftp://example.com/",
        "ws://",
        "ws:///path",
        "ws://:80/",
        "ws://user:pass@example.com/",
        "ws://example.com/#frag",  // RFC 6455 §3: fragments MUST NOT be used
        "ws://example.com:0/",
        "ws://example.com:65536/",
        "ws://example.com:-1/",
        "ws://example.com:80x/",
        "ws://exa mple.com/",
        "ws://example.com/a b",
        "ws://example.com/\x01",
        "ws://example.com/\xc3\xa9",
        "ws://[::1/",
        "ws://[]/",
        "ws://[not-ipv6]/",
        "ws://[::1]x/",
        "ws://ex%41mple.com/",
    };
    for (const char* text : bad) {
        CAPTURE(text);
        const UrlParseResult r = parse_url(text);
        CHECK_FALSE(r.ok());
        CHECK_FALSE(r.error.empty());
    }
}

TEST_CASE("numeric hosts resolve without a lookup") {
    const auto v4 = wsx::net::resolve_numeric("127.0.0.1", 80);
    REQUIRE(v4.has_value());
    CHECK(v4->family() == AF_INET);
    CHECK(v4->port() == 80);
    CHECK(wsx::net::address_to_string(*v4) == "127.0.0.1:80");

    const auto v6 = wsx::net::resolve_numeric("::1", 9001);
    REQUIRE(v6.has_value());
    CHECK(v6->family() == AF_INET6);
    CHECK(wsx::net::address_to_string(*v6) == "[::1]:9001");

    CHECK_FALSE(wsx::net::resolve_numeric("localhost", 80).has_value());
}

TEST_CASE("resolve_blocking finds localhost on loopback") {
    const ResolveResult r = wsx::net::resolve_blocking("localhost", 4242);
    REQUIRE(r.ok());
    REQUIRE_FALSE(r.addresses.empty());
    for (const auto& address : r.addresses)
        CHECK(address.port() == 4242);
}

TEST_CASE("a name the resolver cannot look up reports getaddrinfo's error") {
    const ResolveResult r = wsx::net::resolve_blocking(kUnresolvableHost, 80);
    CHECK_FALSE(r.ok());
    CHECK(r.addresses.empty());
    CHECK_FALSE(r.message().empty());
}

TEST_CASE("the resolver looks localhost up on its own thread and answers on the reactor") {
    auto reactor = make_reactor(wsx::net::Backend::poll);
    Resolver resolver;
    std::atomic<int> calls{0};
    std::thread::id answered_on;
    ResolveResult answer;
    resolver.resolve("localhost", 80, *reactor, [&](ResolveResult r) {
        answered_on = std::this_thread::get_id();
        answer = std::move(r);
        calls.fetch_add(1);
    });
    // resolve() only queued the lookup: the answer arrives through the reactor's task queue.
    CHECK(calls.load() == 0);
    REQUIRE(run_until(*reactor, [&] { return calls.load() == 1; }));
    CHECK(answered_on == std::this_thread::get_id());
    REQUIRE(answer.ok());
    CHECK_FALSE(answer.addresses.empty());
    CHECK(resolver.pending() == 0);
}

TEST_CASE("a cancelled lookup never calls back") {
    auto reactor = make_reactor(wsx::net::Backend::poll);
    Resolver resolver;
    int calls = 0;
    const Resolver::Id first =
        resolver.resolve("localhost", 80, *reactor, [&](ResolveResult) { ++calls; });
    resolver.cancel(first);
    int later = 0;
    resolver.resolve("localhost", 81, *reactor, [&](ResolveResult) { ++later; });
    // Lookups run in order on the single thread: once the second answered, the first is settled.
    REQUIRE(run_until(*reactor, [&] { return later == 1; }));
    for (int i = 0; i < 3; ++i)
        static_cast<void>(reactor->run_once(10ms));
    CHECK(calls == 0);
}
