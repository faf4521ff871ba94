// Shared by the client tests: a handler that records what a client session saw, a failure
// recorder, short timeouts, loopback URLs and a port nothing listens on.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "net/client.hpp"
#include "net/socket.hpp"
#include "net/ws_session.hpp"
#include "ws_test_client.hpp"

namespace wsx::net::testing {

// What the application saw of its client sessions.
struct Recorder : SessionHandler {
    int opened = 0;
    int closed = 0;
    std::string protocol;
    std::string target;
    WsSession* session = nullptr;
    std::vector<std::pair<proto::Opcode, std::string>> messages;
    std::uint16_t close_code = 0;
    std::string close_reason;
    bool clean = false;
    proto::Error close_error = proto::Error::none;

    void on_open(WsSession& s) override {
        ++opened;
        session = &s;
        protocol = s.protocol();
        target = s.target();
        CHECK(s.role() == wsx::proto::Role::client);
    }
    void on_message(WsSession&, proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        messages.emplace_back(opcode, text_of(payload));
    }
    void on_close(WsSession&, const wsx::proto::CloseInfo& info) override {
        ++closed;
        session = nullptr;
        close_code = info.code;
        close_reason = std::string(info.reason);
        clean = info.clean;
        close_error = info.error;
    }
};

// Counts failure callbacks and keeps the last error.
struct Failures {
    int calls = 0;
    ConnectError last;
    Client::FailureCallback callback() {
        return [this](const ConnectError& error) {
            ++calls;
            last = error;
        };
    }
};

inline ClientOptions quick_options() {
    ClientOptions options;
    options.connect_timeout = std::chrono::milliseconds(2000);
    options.handshake_timeout = std::chrono::milliseconds(2000);
    options.session.close_timeout = std::chrono::milliseconds(2000);
    return options;
}

inline std::string local_url(std::uint16_t port, const std::string& path = "/") {
    return "ws://127.0.0.1:" + std::to_string(port) + path;
}

// A port nothing listens on: bound by the kernel, then released.
inline std::uint16_t free_port() {
    const SysResult<int> listening = wsx::net::listen_tcp(SocketAddress::loopback_v4(0));
    REQUIRE(listening.ok());
    const std::uint16_t port = SocketAddress::local_of(listening.value).value.port();
    REQUIRE(wsx::net::close_fd(listening.value).ok());
    return port;
}

}  // namespace wsx::net::testing
