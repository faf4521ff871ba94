// The server's application hooks: an HTTP route for plain GET/HEAD requests, and the per-thread
// start/stop callbacks with each thread's index, reactor and session host.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "server_test_support.hpp"

using namespace wsx::net;
using namespace wsx::net::testing;

TEST_CASE_TEMPLATE("an application route answers its paths and lets the others fall through", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    ServerOptions options = test_options(B::value);
    std::atomic<int> calls{0};
    options.http_route = [&](std::string_view path) -> std::optional<HttpRouteResponse> {
        calls.fetch_add(1);
        if (path == "/status") return HttpRouteResponse{200, "application/json", "{\"up\":true}"};
        if (path == "/teapot") return HttpRouteResponse{418, "text/plain", "short and stout"};
        return std::nullopt;
    };
    TestServer server(std::move(options), echo);

    const std::string ok =
        http_exchange(server.port(), "GET /status?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(status_line(ok) == "HTTP/1.1 200 OK");
    CHECK(has_header_line(ok, "Content-Type: application/json"));
    CHECK(body_of(ok) == "{\"up\":true}");

    const std::string teapot =
        http_exchange(server.port(), "GET /teapot HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(status_line(teapot).rfind("HTTP/1.1 418", 0) == 0);

    // HEAD: same status and length, no body.
    const std::string head =
        http_exchange(server.port(), "HEAD /status HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(status_line(head) == "HTTP/1.1 200 OK");
    CHECK(has_header_line(head, "Content-Length: 11"));
    CHECK(body_of(head).empty());

    // Not the route's: /healthz and 404 as before; other methods never reach the route.
    CHECK(status_line(http_exchange(server.port(), "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")) ==
          "HTTP/1.1 200 OK");
    CHECK(status_line(http_exchange(server.port(), "GET /other HTTP/1.1\r\nHost: h\r\n\r\n")) ==
          "HTTP/1.1 404 Not Found");
    const int before = calls.load();
    http_exchange(server.port(), "POST /status HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    CHECK(calls.load() == before);

    // Upgrades are never routed.
    TestClient client(server.port());
    CHECK(client.handshake("/") == 101);
}

TEST_CASE_TEMPLATE("thread hooks run on each server thread with its index, reactor and host", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    ServerOptions options = test_options(B::value);
    options.threads = 3;
    std::mutex mutex;
    std::set<unsigned> started;
    std::set<unsigned> stopped;
    std::set<std::thread::id> threads;
    std::atomic<bool> consistent{true};
    options.on_thread_start = [&](const ServerThread& thread) {
        if (thread.host.thread_index() != thread.index ||
            &thread.host.reactor() != &thread.reactor) {
            consistent.store(false);
        }
        const std::lock_guard<std::mutex> lock(mutex);
        started.insert(thread.index);
        threads.insert(std::this_thread::get_id());
    };
    options.on_thread_stop = [&](const ServerThread& thread) {
        // The loop is over and every session of the thread is gone.
        if (thread.host.size() != 0) consistent.store(false);
        const std::lock_guard<std::mutex> lock(mutex);
        stopped.insert(thread.index);
        if (threads.count(std::this_thread::get_id()) == 0) consistent.store(false);
    };
    {
        TestServer server(std::move(options), echo);
        REQUIRE(eventually([&] {
            const std::lock_guard<std::mutex> lock(mutex);
            return started.size() == 3;
        }));
        TestClient client(server.port());
        REQUIRE(client.handshake("/") == 101);
        client.send_text("x");
        CHECK(client.next_non_control().text() == "x");
    }
    CHECK(started == std::set<unsigned>{0, 1, 2});
    CHECK(stopped == std::set<unsigned>{0, 1, 2});
    CHECK(threads.size() == 3);
    CHECK(consistent.load());
}

TEST_CASE_TEMPLATE("session end listeners run after on_close and can be removed", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    ServerOptions options = test_options(B::value);
    options.threads = 1;
    std::atomic<int> ended{0};
    std::atomic<int> closed_before{0};
    std::atomic<bool> removed_ran{false};
    options.on_thread_start = [&](const ServerThread& thread) {
        thread.host.add_session_end_listener([&](WsSession&) {
            closed_before.store(echo.closed.load());
            ended.fetch_add(1);
        });
        const std::size_t id =
            thread.host.add_session_end_listener([&](WsSession&) { removed_ran.store(true); });
        thread.host.remove_session_end_listener(id);
    };
    TestServer server(std::move(options), echo);
    {
        TestClient client(server.port());
        REQUIRE(client.handshake("/") == 101);
    }
    REQUIRE(eventually([&] { return ended.load() == 1; }));
    CHECK(closed_before.load() == 1);
    CHECK_FALSE(removed_ran.load());
}
