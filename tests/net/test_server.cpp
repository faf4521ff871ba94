// The server end to end over loopback TCP: echo, concurrency across threads, the opening
// handshake's refusals (CONFORMANCE.md), connection limits, static files and /healthz.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/server.hpp"
#include "proto/handshake.hpp"
#include "server_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::ServerOptions;
using wsx::net::WsSession;
using wsx::net::testing::body_of;
using wsx::net::testing::bytes_of;
using wsx::net::testing::ClientEvent;
using wsx::net::testing::EchoRecorder;
using wsx::net::testing::eventually;
using wsx::net::testing::has_header_line;
using wsx::net::testing::http_exchange;
using wsx::net::testing::status_line;
using wsx::net::testing::test_options;
using wsx::net::testing::TestClient;
using wsx::net::testing::TestServer;
using wsx::net::testing::upgrade_request;
using wsx::proto::Error;
using wsx::proto::Opcode;
using wsx::proto::write_error_response;

namespace {

std::vector<std::uint8_t> pattern(std::size_t size, bool text) {
    std::vector<std::uint8_t> data(size);
    for (std::size_t i = 0; i < size; ++i)
        data[i] = text ? static_cast<std::uint8_t>('a' + i % 26) : static_cast<std::uint8_t>(i * 7);
    return data;
}

// "t1c2m3": which thread, client and message an echo belongs to. Built by appending: GCC 12 at
// -O3 misreports "literal" + std::string as an overlapping memcpy (PR 105329).
std::string label(int thread, int client, int message) {
    std::string out = "t";
    out.append(std::to_string(thread)).append("c").append(std::to_string(client));
    out.append("m").append(std::to_string(message));
    return out;
}

// A temporary directory tree for the static-file tests, removed afterwards.
struct TempTree {
    std::string base;
    std::string root;
    TempTree() {
        char name[] = "/tmp/wsx-static-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        base = name;
        root = base + "/www";
        REQUIRE(::mkdir(root.c_str(), 0755) == 0);
        REQUIRE(::mkdir((root + "/sub").c_str(), 0755) == 0);
        REQUIRE(::mkdir((root + "/empty").c_str(), 0755) == 0);
        write(root + "/index.html", "<h1>wsx</h1>\n");
        write(root + "/app.js", "console.log(1);\n");
        write(root + "/style.css", "body{}\n");
        write(root + "/data.json", "{}\n");
        write(root + "/sub/notes.txt", "notes\n");
        write(root + "/sp ace.txt", "space\n");
        write(root + "/.secret", "hidden\n");
        write(base + "/outside.txt", "outside\n");
        REQUIRE(::symlink((base + "/outside.txt").c_str(), (root + "/link.txt").c_str()) == 0);
    }
    ~TempTree() {
        const std::string command = "rm -rf '" + base + "'";
        CHECK(std::system(command.c_str()) == 0);
    }
    static void write(const std::string& path, const std::string& content) {
        std::ofstream(path) << content;
    }
};

}  // namespace

TEST_CASE_TEMPLATE("server echoes text and binary messages of 0 B to 1 MiB", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    TestServer server(test_options(B::value), handler);
    TestClient client(server.port());
    REQUIRE(client.handshake() == 101);

    for (const std::size_t size :
         {0UL, 1UL, 125UL, 126UL, 127UL, 65535UL, 65536UL, 100000UL, 1024UL * 1024UL}) {
        for (const bool text : {true, false}) {
            CAPTURE(size);
            CAPTURE(text);
            const std::vector<std::uint8_t> data = pattern(size, text);
            if (text) {
                client.send_text(wsx::net::testing::text_of(data));
            } else {
                client.send_binary(data);
            }
            const ClientEvent echo = client.next_non_control();
            REQUIRE(echo.kind == ClientEvent::Kind::message);
            CHECK(echo.opcode == (text ? Opcode::text : Opcode::binary));
            CHECK(echo.data == data);
        }
    }
    client.close(1000, "bye");
    const ClientEvent reply = client.next_non_control();
    CHECK(reply.kind == ClientEvent::Kind::close);
    CHECK(reply.close_code == 1000);
    // RFC 6455 §7.1.1: after the close handshake the server ends TCP first.
    CHECK(client.next().kind == ClientEvent::Kind::eof);
    REQUIRE(eventually([&] { return handler.closed.load() == 1; }));
    CHECK(handler.closes().at(0).code == 1000);
    CHECK(handler.closes().at(0).clean);
}

TEST_CASE_TEMPLATE("server spreads many concurrent clients over its threads", B,
                   WSX_NET_TEST_BACKENDS) {
    for (const bool reuse_port : {true, false}) {
        CAPTURE(reuse_port);
        EchoRecorder handler;
        ServerOptions options = test_options(B::value);
        options.reuse_port = reuse_port;
        TestServer server(options, handler);

        constexpr int kThreads = 4;
        constexpr int kClientsPerThread = 8;
        constexpr int kMessages = 20;
        std::atomic<int> echoed{0};
        std::atomic<int> failures{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                std::vector<std::unique_ptr<TestClient>> clients;
                for (int c = 0; c < kClientsPerThread; ++c) {
                    clients.push_back(std::make_unique<TestClient>(server.port()));
                    if (clients.back()->handshake() != 101) failures.fetch_add(1);
                }
                for (int m = 0; m < kMessages; ++m) {
                    for (int c = 0; c < kClientsPerThread; ++c) {
                        clients[static_cast<std::size_t>(c)]->send_text(label(t, c, m));
                    }
                    for (int c = 0; c < kClientsPerThread; ++c) {
                        const std::string text = label(t, c, m);
                        const ClientEvent e = clients[static_cast<std::size_t>(c)]->next();
                        if (e.kind == ClientEvent::Kind::message && e.text() == text) {
                            echoed.fetch_add(1);
                        } else {
                            failures.fetch_add(1);
                        }
                    }
                }
                for (auto& client : clients)
                    client->close();
            });
        }
        for (std::thread& t : threads)
            t.join();
        CHECK(failures.load() == 0);
        CHECK(echoed.load() == kThreads * kClientsPerThread * kMessages);
        // 32 connections all landing on one of two threads has odds of 2^-31.
        CHECK(handler.thread_count() == 2);
        REQUIRE(eventually([&] { return handler.closed.load() == kThreads * kClientsPerThread; }));
        CHECK(handler.opened.load() == handler.closed.load());
    }
}

TEST_CASE_TEMPLATE("server answers 503 before the upgrade once max_connections are open", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    ServerOptions options = test_options(B::value);
    options.max_connections = 2;
    TestServer server(options, handler);

    auto first = std::make_unique<TestClient>(server.port());
    TestClient second(server.port());
    REQUIRE(first->handshake() == 101);
    REQUIRE(second.handshake() == 101);
    CHECK(server.server().connection_count() == 2);

    const std::string refused = http_exchange(server.port(), upgrade_request(server.port()));
    CHECK(refused == write_error_response(Error::http_too_many_connections));
    CHECK(status_line(refused) == "HTTP/1.1 503 Service Unavailable");

    first->close();
    CHECK(first->next_non_control().kind == ClientEvent::Kind::close);
    first.reset();
    REQUIRE(eventually([&] { return server.server().connection_count() == 1; }));
    TestClient third(server.port());
    CHECK(third.handshake() == 101);
    CHECK(handler.opened.load() == 3);
}

TEST_CASE_TEMPLATE("server refuses an Origin its policy does not allow with 403", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    TestServer server(test_options(B::value), handler);

    const std::string refused = http_exchange(
        server.port(), upgrade_request(server.port(), "/", "Origin: http://evil.example\r\n"));
    CHECK(refused == write_error_response(Error::http_origin_forbidden));

    // Same origin (the default policy) and no Origin at all are accepted.
    TestClient same(server.port());
    CHECK(same.handshake("/", "http://127.0.0.1:" + std::to_string(server.port())) == 101);
    TestClient none(server.port());
    CHECK(none.handshake("/") == 101);
    CHECK(handler.opened.load() == 2);
}

TEST_CASE_TEMPLATE("server answers each refused handshake with the exact RFC 6455 response", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    TestServer server(test_options(B::value), handler);
    const std::string host = "Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
    const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    const std::string upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    const std::string version = "Sec-WebSocket-Version: 13\r\n";

    struct Row {
        const char* rule;
        std::string request;
        Error expected;
    };
    const std::string big(9000, 'x');
    const Row rows[] = {
        {"not GET: 405", "POST / HTTP/1.1\r\n" + host + upgrade + key + version + "\r\n",
         Error::http_method_not_get},
        {"HTTP/1.0: 400", "GET / HTTP/1.0\r\n" + host + upgrade + key + version + "\r\n",
         Error::http_version_too_old},
        {"malformed request line: 400", "GET /\r\n" + host + upgrade + key + version + "\r\n",
         Error::http_malformed},
        {"no Upgrade: websocket: 400",
         "GET / HTTP/1.1\r\n" + host + "Connection: Upgrade\r\n" + key + version + "\r\n",
         Error::http_missing_upgrade},
        {"no Connection: Upgrade: 400",
         "GET / HTTP/1.1\r\n" + host + "Upgrade: websocket\r\n" + key + version + "\r\n",
         Error::http_missing_connection_upgrade},
        {"version missing: 426", "GET / HTTP/1.1\r\n" + host + upgrade + key + "\r\n",
         Error::http_bad_version},
        {"version 8: 426",
         "GET / HTTP/1.1\r\n" + host + upgrade + key + "Sec-WebSocket-Version: 8\r\n\r\n",
         Error::http_bad_version},
        {"key not 16 bytes: 400",
         "GET / HTTP/1.1\r\n" + host + upgrade + "Sec-WebSocket-Key: c2hvcnQ=\r\n" + version +
             "\r\n",
         Error::http_bad_key},
        {"key missing: 400", "GET / HTTP/1.1\r\n" + host + upgrade + version + "\r\n",
         Error::http_bad_key},
        {"Host missing: 400", "GET / HTTP/1.1\r\n" + upgrade + key + version + "\r\n",
         Error::http_missing_host},
        {"head too large: 431",
         "GET / HTTP/1.1\r\n" + host + upgrade + key + version + "X-Big: " + big + "\r\n\r\n",
         Error::http_headers_too_large},
    };
    for (const Row& row : rows) {
        CAPTURE(row.rule);
        CHECK(http_exchange(server.port(), row.request) == write_error_response(row.expected));
    }
    // The 426 tells the client which version to retry with (RFC 6455 §4.4).
    const std::string v8 = write_error_response(Error::http_bad_version);
    CHECK(has_header_line(v8, "Sec-WebSocket-Version: 13"));
    CHECK(handler.opened.load() == 0);
}

TEST_CASE_TEMPLATE("server serves static files and /healthz, answers 404, refuses traversal", B,
                   WSX_NET_TEST_BACKENDS) {
    TempTree tree;
    EchoRecorder handler;
    ServerOptions options = test_options(B::value);
    options.static_root = tree.root;
    options.websocket_paths = {"/ws"};
    TestServer server(options, handler);
    const auto get = [&](const std::string& method, const std::string& target) {
        return http_exchange(server.port(), method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    };

    std::string r = get("GET", "/");
    CHECK(status_line(r) == "HTTP/1.1 200 OK");
    CHECK(has_header_line(r, "Content-Type: text/html; charset=utf-8"));
    CHECK(has_header_line(r, "Content-Length: 13"));
    CHECK(body_of(r) == "<h1>wsx</h1>\n");

    r = get("GET", "/app.js?v=3");
    CHECK(has_header_line(r, "Content-Type: text/javascript; charset=utf-8"));
    CHECK(body_of(r) == "console.log(1);\n");
    CHECK(has_header_line(get("GET", "/style.css"), "Content-Type: text/css; charset=utf-8"));
    CHECK(has_header_line(get("GET", "/data.json"), "Content-Type: application/json"));
    CHECK(body_of(get("GET", "/sub/notes.txt")) == "notes\n");
    CHECK(body_of(get("GET", "/sp%20ace.txt")) == "space\n");

    // RFC 9110 §9.3.2: HEAD has GET's headers and no body.
    r = get("HEAD", "/app.js");
    CHECK(status_line(r) == "HTTP/1.1 200 OK");
    CHECK(has_header_line(r, "Content-Length: 16"));
    CHECK(body_of(r).empty());

    CHECK(status_line(get("GET", "/missing.html")) == "HTTP/1.1 404 Not Found");
    CHECK(status_line(get("GET", "/.secret")) == "HTTP/1.1 404 Not Found");
    CHECK(status_line(get("GET", "/../outside.txt")) == "HTTP/1.1 403 Forbidden");
    CHECK(status_line(get("GET", "/%2e%2e/outside.txt")) == "HTTP/1.1 403 Forbidden");
    CHECK(status_line(get("GET", "/sub/..%2f..%2foutside.txt")) == "HTTP/1.1 403 Forbidden");
    CHECK(status_line(get("GET", "/link.txt")) == "HTTP/1.1 403 Forbidden");
    CHECK(status_line(get("GET", "/empty")) == "HTTP/1.1 403 Forbidden");
    CHECK(status_line(get("GET", "/bad%zz")) == "HTTP/1.1 400 Bad Request");
    r = get("POST", "/app.js");
    CHECK(status_line(r) == "HTTP/1.1 405 Method Not Allowed");
    CHECK(has_header_line(r, "Allow: GET, HEAD"));

    r = get("GET", "/healthz");
    CHECK(status_line(r) == "HTTP/1.1 200 OK");
    CHECK(body_of(r) == "ok\n");

    // A WebSocket-only path hit by plain HTTP: 426 naming the protocol to upgrade to.
    r = get("GET", "/ws");
    CHECK(status_line(r) == "HTTP/1.1 426 Upgrade Required");
    CHECK(has_header_line(r, "Upgrade: websocket"));
    // An upgrade on a path that is not a WebSocket path.
    CHECK(status_line(http_exchange(server.port(), upgrade_request(server.port(), "/app.js"))) ==
          "HTTP/1.1 404 Not Found");
    TestClient client(server.port());
    CHECK(client.handshake("/ws") == 101);
}

TEST_CASE_TEMPLATE("server without static files answers 404, 426 and /healthz", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    TestServer server(test_options(B::value), handler);
    const auto get = [&](const std::string& target) {
        return http_exchange(server.port(), "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    };
    CHECK(status_line(get("/healthz")) == "HTTP/1.1 200 OK");
    CHECK(status_line(get("/index.html")) == "HTTP/1.1 404 Not Found");
    CHECK(status_line(get("/")) == "HTTP/1.1 426 Upgrade Required");
}

TEST_CASE_TEMPLATE("server negotiates a subprotocol and takes frames sent with the request", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    ServerOptions options = test_options(B::value);
    options.handshake.subprotocols = {"chat.v2", "chat.v1"};
    TestServer server(options, handler);

    TestClient client(server.port());
    REQUIRE(client.handshake("/", {}, {"chat.v1", "chat.v2"}) == 101);
    CHECK(client.protocol() == "chat.v2");

    // RFC 6455 §4.2.1: bytes after the request head are WebSocket frames, even in the same read.
    TestClient eager(server.port());
    wsx::proto::Connection framer(wsx::proto::Role::client);
    REQUIRE(framer.send_text("early") == Error::none);
    std::string wire = upgrade_request(server.port());
    wsx::proto::IoSlice slices[4];
    const std::size_t n = framer.pending_output(slices);
    for (std::size_t i = 0; i < n; ++i)
        wire.append(static_cast<const char*>(slices[i].data), slices[i].size);
    REQUIRE(wsx::net::testing::send_all(eager.fd(), bytes_of(wire)));
    const std::string got = wsx::net::testing::read_until_eof(eager.fd(), 300ms);
    CHECK(got.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0) == 0);
    CHECK(got.find("early") != std::string::npos);
}

TEST_CASE_TEMPLATE("a SessionHandle sends to a session from another thread", B,
                   WSX_NET_TEST_BACKENDS) {
    struct Keeper : EchoRecorder {
        std::mutex mutex;
        wsx::net::SessionHandle handle;
        void on_open(WsSession& session) override {
            EchoRecorder::on_open(session);
            const std::lock_guard<std::mutex> lock(mutex);
            handle = session.handle();
        }
    } handler;
    TestServer server(test_options(B::value), handler);
    TestClient client(server.port());
    REQUIRE(client.handshake() == 101);
    REQUIRE(eventually([&] { return handler.opened.load() == 1; }));

    std::thread other([&] {
        const std::lock_guard<std::mutex> lock(handler.mutex);
        handler.handle.send_text("pushed");
        handler.handle.send_binary({1, 2, 3});
        handler.handle.post([](WsSession& session) { session.send_text("posted"); });
    });
    other.join();
    ClientEvent e = client.next_non_control();
    CHECK(e.text() == "pushed");
    e = client.next_non_control();
    CHECK(e.data == std::vector<std::uint8_t>{1, 2, 3});
    CHECK(client.next_non_control().text() == "posted");

    const std::lock_guard<std::mutex> lock(handler.mutex);
    handler.handle.close(4000, "done");
    e = client.next_non_control();
    CHECK(e.kind == ClientEvent::Kind::close);
    CHECK(e.close_code == 4000);
    CHECK(e.text() == "done");
}
