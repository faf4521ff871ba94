// The plain HTTP helpers on their own: percent-decoding, content types, fixed responses.
#include <doctest/doctest.h>

#include <string>

#include "net/http_static.hpp"

using wsx::net::content_type_for;
using wsx::net::health_response;
using wsx::net::make_http_response;
using wsx::net::percent_decode;
using wsx::net::StaticFiles;
using wsx::net::upgrade_required_response;

TEST_CASE("percent_decode decodes RFC 3986 escapes and refuses malformed ones") {
    CHECK(percent_decode("/a%20b") == "/a b");
    CHECK(percent_decode("/%2e%2E/x") == "/../x");
    CHECK(percent_decode("/%41%7a") == "/Az");
    CHECK(percent_decode("/plain") == "/plain");
    CHECK_FALSE(percent_decode("/%").has_value());
    CHECK_FALSE(percent_decode("/%4").has_value());
    CHECK_FALSE(percent_decode("/%zz").has_value());
    CHECK_FALSE(percent_decode("/a%00b").has_value());  // NUL would cut the path short
}

TEST_CASE("content_type_for names the type of each served extension") {
    CHECK(content_type_for("/index.html") == "text/html; charset=utf-8");
    CHECK(content_type_for("/a/b.CSS") == "text/css; charset=utf-8");
    CHECK(content_type_for("app.js") == "text/javascript; charset=utf-8");
    CHECK(content_type_for("x.json") == "application/json");
    CHECK(content_type_for("x.png") == "image/png");
    CHECK(content_type_for("x.svg") == "image/svg+xml");
    CHECK(content_type_for("favicon.ico") == "image/x-icon");
    CHECK(content_type_for("notes.txt") == "text/plain; charset=utf-8");
    CHECK(content_type_for("archive.tar") == "application/octet-stream");
    CHECK(content_type_for("/dir.d/README") == "application/octet-stream");
}

TEST_CASE("a HEAD response keeps Content-Length and drops the body") {
    const auto get = make_http_response(200, "text/plain", "hello", false);
    const auto head = make_http_response(200, "text/plain", "hello", true);
    CHECK(get.head.find("Content-Length: 5\r\n") != std::string::npos);
    CHECK(head.head.find("Content-Length: 5\r\n") != std::string::npos);
    CHECK(get.head.substr(get.head.size() - 5) == "hello");
    CHECK(head.head.substr(head.head.size() - 4) == "\r\n\r\n");
}

TEST_CASE("/healthz answers GET and HEAD with 200 and other methods with 405") {
    CHECK(health_response("GET").status == 200);
    CHECK(health_response("HEAD").status == 200);
    const auto post = health_response("POST");
    CHECK(post.status == 405);
    CHECK(post.head.find("Allow: GET, HEAD\r\n") != std::string::npos);
}

TEST_CASE("426 names websocket in Upgrade and Connection and offers version 13") {
    const auto r = upgrade_required_response(false);
    CHECK(r.status == 426);
    CHECK(r.head.rfind("HTTP/1.1 426 Upgrade Required\r\n", 0) == 0);
    CHECK(r.head.find("Upgrade: websocket\r\n") != std::string::npos);
    CHECK(r.head.find("Connection: Upgrade\r\n") != std::string::npos);
    CHECK(r.head.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
}

TEST_CASE("StaticFiles refuses a root that is not a directory") {
    CHECK(StaticFiles::open("/nonexistent/wsx-root").error == ENOENT);
    CHECK(StaticFiles::open("/etc/hostname").error == ENOTDIR);
    CHECK(StaticFiles::open("/tmp").ok());
}
