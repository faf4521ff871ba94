// Shared by the hub tests: a server with a hub installed whose sessions obey text commands, and a
// WebSocket client on a raw loopback socket (blocking, every wait bounded).
//
// Commands a session understands: "sub T" / "unsub T" (answered "sub T 1|0" / "unsub T 1|0"
// once done), "pub T text" (publishes "text" to T), "bcast text", "stall MS" (blocks the session's
// reactor thread for MS milliseconds; HubCommands::stalled() says when it has begun). A target
// "/?sub=a,b" subscribes the session to a and b before anything else.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "../net/net_test_support.hpp"
#include "../net/server_test_support.hpp"
#include "../net/ws_test_client.hpp"
#include "hub/hub.hpp"
#include "net/server.hpp"
#include "proto/connection.hpp"
#include "proto/handshake.hpp"

namespace wsx::hub::testing {

using net::testing::bytes_of;
using net::testing::eventually;
using net::testing::text_of;

class HubCommands : public net::SessionHandler {
  public:
    explicit HubCommands(Hub& hub) : hub_(hub) {}

    void on_open(net::WsSession& session) override {
        hub_.join(session);
        const std::string& target = session.target();
        const std::size_t at = target.find("?sub=");
        if (at == std::string::npos) return;
        std::string_view list = std::string_view(target).substr(at + 5);
        while (!list.empty()) {
            const std::size_t comma = list.find(',');
            hub_.subscribe(session, list.substr(0, comma));
            list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        }
    }

    void on_message(net::WsSession& session, proto::Opcode,
                    std::span<const std::uint8_t> payload) override {
        const std::string text = text_of(payload);
        const std::size_t space = text.find(' ');
        const std::string verb = text.substr(0, space);
        const std::string rest =
            space == std::string::npos ? std::string() : text.substr(space + 1);
        if (verb == "sub") {
            session.send_text("sub " + rest + (hub_.subscribe(session, rest) ? " 1" : " 0"));
        } else if (verb == "unsub") {
            session.send_text("unsub " + rest + (hub_.unsubscribe(session, rest) ? " 1" : " 0"));
        } else if (verb == "pub") {
            const std::size_t split = rest.find(' ');
            hub_.publish(rest.substr(0, split),
                         split == std::string::npos ? std::string() : rest.substr(split + 1));
        } else if (verb == "bcast") {
            hub_.broadcast(proto::Opcode::text, bytes_of(rest));
        } else if (verb == "stall") {
            stalled_.store(true);
            std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(rest)));
            stalled_.store(false);
        }
    }

    // True while a "stall" command blocks a reactor thread.
    bool stalled() const noexcept { return stalled_.load(); }

  private:
    Hub& hub_;
    std::atomic<bool> stalled_{false};
};

// A server with `hub` installed, stopped and joined when it goes out of scope.
class HubServer {
  public:
    HubServer(Hub& hub, net::ServerOptions options)
        : handler_(hub), server_(prepare(hub, options), handler_) {
        REQUIRE(server_.start().ok());
    }
    ~HubServer() {
        server_.stop();
        server_.wait();
    }
    HubServer(const HubServer&) = delete;
    HubServer& operator=(const HubServer&) = delete;

    std::uint16_t port() const noexcept { return server_.port(); }
    net::Server& server() noexcept { return server_; }
    const HubCommands& handler() const noexcept { return handler_; }

  private:
    static net::ServerOptions prepare(Hub& hub, net::ServerOptions& options) {
        hub.install(options);
        return std::move(options);
    }

    HubCommands handler_;
    net::Server server_;
};

inline net::ServerOptions hub_server_options(net::Backend backend, unsigned threads = 2) {
    net::ServerOptions options = net::testing::test_options(backend);
    options.threads = threads;
    options.max_connections = 20'000;
    options.max_pending_handshakes = 20'000;
    options.session.ping_interval = std::chrono::milliseconds(0);
    return options;
}

struct Received {
    enum class Kind { message, close, eof, timeout };
    Kind kind = Kind::timeout;
    proto::Opcode opcode = proto::Opcode::text;
    std::string data;
    std::uint16_t close_code = 0;
};

inline Received received(Received::Kind kind) {
    Received event;
    event.kind = kind;
    return event;
}

// A WebSocket client on a blocking loopback socket.
class HubClient {
  public:
    // `receive_buffer` > 0 shrinks SO_RCVBUF before connecting (a slow reader's small window).
    explicit HubClient(std::uint16_t port, std::string target = "/",
                       proto::ConnectionOptions options = {}, std::string extra_headers = {},
                       int receive_buffer = 0)
        : conn_(proto::Role::client, options) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        if (receive_buffer > 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
        }
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
        const std::string request = net::testing::upgrade_request(port, target, extra_headers);
        REQUIRE(net::testing::send_all(fd_, bytes_of(request)));
        std::string in;
        char buffer[4096];
        while (in.find("\r\n\r\n") == std::string::npos) {
            REQUIRE(net::testing::wait_readable(fd_, std::chrono::milliseconds(10'000)));
            const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
            REQUIRE(n > 0);
            in.append(buffer, static_cast<std::size_t>(n));
        }
        const std::size_t end = in.find("\r\n\r\n") + 4;
        response_ = in.substr(0, end);
        REQUIRE(response_.rfind("HTTP/1.1 101", 0) == 0);
        std::vector<std::uint8_t> rest(in.begin() + static_cast<std::ptrdiff_t>(end), in.end());
        feed(rest);
    }
    ~HubClient() { disconnect(); }
    HubClient(const HubClient&) = delete;
    HubClient& operator=(const HubClient&) = delete;

    const std::string& response() const noexcept { return response_; }
    int fd() const noexcept { return fd_; }

    void disconnect() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    void send_text(std::string_view text) {
        REQUIRE(conn_.send_text(text) == proto::Error::none);
        proto::IoSlice slices[8];
        while (conn_.wants_write()) {
            const std::size_t n = conn_.pending_output(slices);
            std::size_t wrote = 0;
            for (std::size_t i = 0; i < n; ++i) {
                REQUIRE(net::testing::send_all(
                    fd_, {static_cast<const std::uint8_t*>(slices[i].data), slices[i].size}));
                wrote += slices[i].size;
            }
            conn_.consume_output(wrote);
        }
    }

    // The next message or close (pings and pongs skipped).
    Received next(std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
        while (events_.empty()) {
            if (eof_) return received(Received::Kind::eof);
            if (!net::testing::wait_readable(fd_, timeout))
                return received(Received::Kind::timeout);
            std::vector<std::uint8_t> buffer(64 * 1024);
            const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
            if (n <= 0) {
                eof_ = true;
                continue;
            }
            buffer.resize(static_cast<std::size_t>(n));
            feed(buffer);
        }
        Received event = std::move(events_.front());
        events_.pop_front();
        return event;
    }

    // The next message's text; fails the test on anything else.
    std::string next_text() {
        const Received event = next();
        REQUIRE(event.kind == Received::Kind::message);
        return event.data;
    }

    // Sends a command and waits for its answer (messages published meanwhile are kept).
    std::string command(const std::string& text) {
        send_text(text);
        const std::string verb = text.substr(0, text.find(' ') + 1);
        for (;;) {
            const Received event = next();
            REQUIRE(event.kind == Received::Kind::message);
            if (event.data.rfind(verb, 0) == 0) return event.data;
            held_.push_back(event.data);
        }
    }
    std::deque<std::string>& held() noexcept { return held_; }

  private:
    struct Collector {
        HubClient* client;
        void on_message(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
            client->events_.push_back({Received::Kind::message, opcode, text_of(payload), 0});
        }
        void on_close(const proto::CloseInfo& info) {
            client->events_.push_back(
                {Received::Kind::close, proto::Opcode::close, std::string(info.reason), info.code});
        }
    };

    void feed(std::vector<std::uint8_t>& bytes) {
        if (bytes.empty()) return;
        Collector collector{this};
        conn_.receive(bytes, collector);
    }

    int fd_ = -1;
    proto::Connection conn_;
    std::string response_;
    std::deque<Received> events_;
    std::deque<std::string> held_;
    bool eof_ = false;
};

// Raises the soft limit on open files towards `wanted`; returns the limit now in force.
inline rlim_t raise_open_file_limit(rlim_t wanted) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    if (limit.rlim_cur < wanted) {
        limit.rlim_cur = std::min(wanted, limit.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    return limit.rlim_cur;
}

}  // namespace wsx::hub::testing
