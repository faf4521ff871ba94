// A small blocking WebSocket client for the server tests: raw sockets, proto::ClientHandshake and
// proto::Connection in client role. Every blocking call has a timeout, so a broken server fails
// a test instead of hanging it.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/connection.hpp"
#include "proto/handshake.hpp"

namespace wsx::net::testing {

inline std::span<const std::uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

inline std::string text_of(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A blocking TCP connection to 127.0.0.1:port; -1 on failure.
inline int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        ::close(fd);
        return -1;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

// Waits up to `timeout` for fd to become readable; false on timeout.
inline bool wait_readable(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    int n;
    do {
        n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (n < 0 && errno == EINTR);
    return n > 0;
}

inline bool send_all(int fd, std::span<const std::uint8_t> bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return true;
}

// Everything the peer sends until it ends the connection (or `timeout` of silence).
inline std::string read_until_eof(int fd, std::chrono::milliseconds timeout) {
    std::string out;
    char buffer[4096];
    while (wait_readable(fd, timeout)) {
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

// Sends `request` on a fresh connection and returns the whole response (the server closes
// after every plain HTTP answer and every refused handshake).
inline std::string http_exchange(std::uint16_t port, std::string_view request) {
    const int fd = connect_loopback(port);
    REQUIRE(fd >= 0);
    REQUIRE(send_all(fd, bytes_of(request)));
    std::string response = read_until_eof(fd, std::chrono::milliseconds(5000));
    ::close(fd);
    return response;
}

struct ClientEvent {
    enum class Kind { message, ping, pong, close, eof, timeout };
    Kind kind = Kind::timeout;
    proto::Opcode opcode = proto::Opcode::binary;
    std::vector<std::uint8_t> data;  // message / ping / pong payload, or the close reason
    std::uint16_t close_code = 0;
    bool clean = false;

    static ClientEvent make(Kind kind, proto::Opcode opcode = proto::Opcode::binary,
                            std::span<const std::uint8_t> bytes = {}) {
        ClientEvent e;
        e.kind = kind;
        e.opcode = opcode;
        e.data.assign(bytes.begin(), bytes.end());
        return e;
    }
    std::string text() const { return text_of(data); }
};

class TestClient {
  public:
    explicit TestClient(std::uint16_t port, proto::ConnectionOptions options = {})
        : conn_(proto::Role::client, options) {
        fd_ = connect_loopback(port);
        REQUIRE(fd_ >= 0);
        port_ = port;
    }
    ~TestClient() {
        if (fd_ >= 0) ::close(fd_);
    }
    TestClient(const TestClient&) = delete;
    TestClient& operator=(const TestClient&) = delete;

    int fd() const noexcept { return fd_; }
    proto::Connection& connection() noexcept { return conn_; }

    // Performs the opening handshake; returns the HTTP status (101 on success) and keeps the raw
    // response in response().
    int handshake(std::string target = "/", std::string origin = {},
                  std::vector<std::string> protocols = {}) {
        proto::ClientOptions options;
        options.host = "127.0.0.1:" + std::to_string(port_);
        options.target = std::move(target);
        options.origin = std::move(origin);
        options.protocols = std::move(protocols);
        std::optional<proto::ClientHandshake> hs = proto::ClientHandshake::create(options);
        REQUIRE(hs.has_value());
        const std::string request = hs->request();
        REQUIRE(send_all(fd_, bytes_of(request)));
        std::string in;
        char buffer[4096];
        for (;;) {
            if (!wait_readable(fd_, std::chrono::milliseconds(5000))) return 0;
            const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
            if (n <= 0) {
                response_ = in;
                return hs->head().status;
            }
            in.append(buffer, static_cast<std::size_t>(n));
            const proto::HttpParseResult r = hs->parse(in);
            if (r.status == proto::ParseStatus::need_more) continue;
            response_ =
                in.substr(0, r.status == proto::ParseStatus::ok ? hs->consumed() : in.size());
            if (r.status != proto::ParseStatus::ok) return hs->status();
            protocol_ = std::string(hs->protocol());
            // Frames right behind the 101 belong to the WebSocket stream.
            std::vector<std::uint8_t> rest(in.begin() + static_cast<std::ptrdiff_t>(hs->consumed()),
                                           in.end());
            if (!rest.empty()) feed(rest);
            return 101;
        }
    }

    const std::string& response() const noexcept { return response_; }
    const std::string& protocol() const noexcept { return protocol_; }

    void send_text(std::string_view text) {
        REQUIRE(conn_.send_text(text) == proto::Error::none);
        flush();
    }
    void send_binary(std::span<const std::uint8_t> data) {
        REQUIRE(conn_.send_binary(data) == proto::Error::none);
        flush();
    }
    void close(std::uint16_t code = 1000, std::string_view reason = {}) {
        REQUIRE(conn_.close(code, reason) == proto::Error::none);
        flush();
    }
    // Writes what the Connection queued (pongs included); false when the socket refused.
    bool flush() {
        proto::IoSlice slices[16];
        while (conn_.wants_write()) {
            const std::size_t n = conn_.pending_output(slices);
            std::size_t total = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const auto* p = static_cast<const std::uint8_t*>(slices[i].data);
                if (!send_all(fd_, {p, slices[i].size})) return false;
                total += slices[i].size;
            }
            conn_.consume_output(total);
        }
        return true;
    }

    // The next event, reading from the socket as needed (answering pings unless auto_pong is
    // off). timeout: no event within `timeout`.
    ClientEvent next(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
        const auto give_up = std::chrono::steady_clock::now() + timeout;
        while (events_.empty()) {
            if (eof_) return ClientEvent::make(ClientEvent::Kind::eof);
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                give_up - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !wait_readable(fd_, left)) return {};
            std::vector<std::uint8_t> buffer(64 * 1024);
            const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
            if (n <= 0) {
                // As a real client does once the server ended TCP (RFC 6455 §7.1.1): end ours.
                eof_ = true;
                ::shutdown(fd_, SHUT_WR);
                continue;
            }
            buffer.resize(static_cast<std::size_t>(n));
            feed(buffer);
        }
        ClientEvent event = std::move(events_.front());
        events_.pop_front();
        return event;
    }

    // The next event that is not a ping or pong.
    ClientEvent next_non_control(
        std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
        for (;;) {
            ClientEvent event = next(timeout);
            if (event.kind != ClientEvent::Kind::ping && event.kind != ClientEvent::Kind::pong) {
                return event;
            }
        }
    }

  private:
    struct Collector {
        TestClient* client;
        void on_message(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
            client->events_.push_back(
                ClientEvent::make(ClientEvent::Kind::message, opcode, payload));
        }
        void on_ping(std::span<const std::uint8_t> payload) {
            client->events_.push_back(
                ClientEvent::make(ClientEvent::Kind::ping, proto::Opcode::ping, payload));
        }
        void on_pong(std::span<const std::uint8_t> payload) {
            client->events_.push_back(
                ClientEvent::make(ClientEvent::Kind::pong, proto::Opcode::pong, payload));
        }
        void on_close(const proto::CloseInfo& info) {
            ClientEvent e = ClientEvent::make(
                ClientEvent::Kind::close, proto::Opcode::close,
                {reinterpret_cast<const std::uint8_t*>(info.reason.data()), info.reason.size()});
            e.close_code = info.code;
            e.clean = info.clean;
            client->events_.push_back(std::move(e));
        }
    };

    void feed(std::vector<std::uint8_t>& bytes) {
        Collector collector{this};
        conn_.receive(bytes, collector);
        flush();  // pongs and the close reply
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    proto::Connection conn_;
    std::deque<ClientEvent> events_;
    std::string response_;
    std::string protocol_;
    bool eof_ = false;
};

}  // namespace wsx::net::testing
