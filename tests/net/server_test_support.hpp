// Shared by the server tests: a server on 127.0.0.1, port 0, on a given backend, stopped and
// joined when the test ends; and an echo handler that records what it saw, thread-safely.
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "net/server.hpp"
#include "net/ws_session.hpp"
#include "net_test_support.hpp"
#include "ws_test_client.hpp"

namespace wsx::net::testing {

struct RecordedClose {
    std::uint16_t code = 0;
    std::string reason;
    bool clean = false;
};

// Echoes every message; counts opens and closes; remembers close infos and serving threads.
class EchoRecorder : public SessionHandler {
  public:
    std::atomic<int> opened{0};
    std::atomic<int> closed{0};
    std::atomic<int> messages{0};

    void on_open(WsSession& session) override {
        static_cast<void>(session);
        opened.fetch_add(1);
        const std::lock_guard<std::mutex> lock(mutex_);
        threads_.insert(std::this_thread::get_id());
    }
    void on_message(WsSession& session, proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        messages.fetch_add(1);
        session.send(opcode, payload);
    }
    void on_close(WsSession& session, const proto::CloseInfo& info) override {
        static_cast<void>(session);
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            closes_.push_back({info.code, std::string(info.reason), info.clean});
        }
        closed.fetch_add(1);
    }

    std::vector<RecordedClose> closes() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return closes_;
    }
    std::size_t thread_count() const {
        const std::lock_guard<std::mutex> lock(mutex_);
        return threads_.size();
    }

  private:
    mutable std::mutex mutex_;
    std::vector<RecordedClose> closes_;
    std::set<std::thread::id> threads_;
};

// Options every test starts from: loopback, port 0, two threads, short shutdown.
inline ServerOptions test_options(Backend backend) {
    ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.backend = backend;
    options.shutdown_timeout = std::chrono::milliseconds(3000);
    return options;
}

// A started server, stopped and joined when it goes out of scope.
class TestServer {
  public:
    TestServer(ServerOptions options, SessionHandler& handler)
        : server_(std::move(options), handler) {
        REQUIRE(server_.start().ok());
        REQUIRE(server_.port() != 0);
    }
    ~TestServer() {
        server_.stop();
        server_.wait();
    }
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    Server& server() noexcept { return server_; }
    std::uint16_t port() const noexcept { return server_.port(); }

  private:
    Server server_;
};

// Polls `done` every few milliseconds for up to `limit`; returns done().
template <class Done>
bool eventually(Done done, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

inline std::string status_line(const std::string& response) {
    return response.substr(0, response.find("\r\n"));
}

inline std::string body_of(const std::string& response) {
    const std::size_t end = response.find("\r\n\r\n");
    return end == std::string::npos ? std::string() : response.substr(end + 4);
}

inline bool has_header_line(const std::string& response, const std::string& line) {
    const std::string head = response.substr(0, response.find("\r\n\r\n") + 2);
    return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

// A valid upgrade request for `target`, with optional extra header lines (each ending CRLF).
inline std::string upgrade_request(std::uint16_t port, const std::string& target = "/",
                                   const std::string& extra = {}) {
    return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           extra + "\r\n";
}

}  // namespace wsx::net::testing
