#include <doctest/doctest.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "net/reactor.hpp"
#include "net/socket.hpp"
#include "net_test_support.hpp"
#include "proto/output_queue.hpp"

using namespace std::chrono_literals;
using wsx::net::Interest;
using wsx::net::IoHandler;
using wsx::net::ListenOptions;
using wsx::net::Reactor;
using wsx::net::SocketAddress;
using wsx::net::SysResult;
using wsx::net::would_block;
using wsx::net::testing::make_reactor;
using wsx::net::testing::run_until;
using wsx::proto::IoSlice;
using wsx::proto::OutputQueue;

namespace {

std::span<const std::uint8_t> bytes_of(const std::string& text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// A listener on 127.0.0.1 with a kernel-chosen port.
struct Listener {
    int fd = -1;
    std::uint16_t port = 0;
    explicit Listener(const ListenOptions& options = {}) {
        const SysResult<int> listening =
            wsx::net::listen_tcp(SocketAddress::loopback_v4(0), options);
        REQUIRE(listening.ok());
        fd = listening.value;
        const SysResult<SocketAddress> local = SocketAddress::local_of(fd);
        REQUIRE(local.ok());
        port = local.value.port();
        REQUIRE(port != 0);
    }
    ~Listener() { CHECK(wsx::net::close_fd(fd).ok()); }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
};

// Accepts one connection and echoes every byte back, buffering what the socket does not take.
struct EchoServer : IoHandler {
    Reactor* reactor = nullptr;
    int listen_fd = -1;
    int connection = -1;
    std::vector<std::uint8_t> unsent;
    bool peer_closed = false;

    void on_readable(int fd) override {
        if (fd == listen_fd) {
            const SysResult<int> accepted = wsx::net::accept_tcp(listen_fd);
            if (!accepted.ok()) {
                CHECK(would_block(accepted.error));
                return;
            }
            connection = accepted.value;
            CHECK(wsx::net::set_no_delay(connection).ok());
            CHECK(reactor->add(connection, Interest::read, *this).ok());
            return;
        }
        std::array<std::uint8_t, 16384> buffer{};
        const SysResult<std::size_t> got = wsx::net::read_some(fd, buffer);
        if (!got.ok()) {
            CHECK(would_block(got.error));
            return;
        }
        if (got.value == 0) {
            peer_closed = true;
            CHECK(reactor->remove(fd).ok());
            return;
        }
        unsent.insert(unsent.end(), buffer.begin(), buffer.begin() + static_cast<long>(got.value));
        flush(fd);
    }
    void on_writable(int fd) override { flush(fd); }
    void on_error(int, int error) override { FAIL("server socket error " << error); }

    void flush(int fd) {
        while (!unsent.empty()) {
            const SysResult<std::size_t> put = wsx::net::write_some(fd, unsent);
            if (!put.ok()) {
                CHECK(would_block(put.error));
                break;
            }
            unsent.erase(unsent.begin(), unsent.begin() + static_cast<long>(put.value));
        }
        CHECK(reactor->modify(fd, unsent.empty() ? Interest::read : Interest::read_write).ok());
    }
};

// Connects, sends its output queue with gather writes, and collects what comes back.
struct EchoClient : IoHandler {
    Reactor* reactor = nullptr;
    OutputQueue output;
    std::string received;
    bool connected = false;
    std::size_t gather_writes = 0;

    void on_writable(int fd) override {
        if (!connected) {
            REQUIRE(wsx::net::connect_result(fd).ok());
            connected = true;
        }
        while (!output.empty()) {
            std::array<IoSlice, 8> slices{};
            const std::size_t count = output.gather(slices);
            const SysResult<std::size_t> put =
                wsx::net::write_slices(fd, std::span<const IoSlice>(slices.data(), count));
            if (!put.ok()) {
                CHECK(would_block(put.error));
                return;
            }
            ++gather_writes;
            output.consume(put.value);
        }
        CHECK(reactor->modify(fd, Interest::read).ok());
    }
    void on_readable(int fd) override {
        std::array<std::uint8_t, 16384> buffer{};
        for (;;) {
            const SysResult<std::size_t> got = wsx::net::read_some(fd, buffer);
            if (!got.ok() || got.value == 0) return;
            received.append(reinterpret_cast<const char*>(buffer.data()), got.value);
        }
    }
    void on_error(int, int error) override { FAIL("client socket error " << error); }
};

}  // namespace

TEST_CASE("IoSlice spans are handed to the kernel as iovecs without copying") {
    const std::string a = "head";
    const std::string b = "payload";
    const std::array<IoSlice, 2> slices{IoSlice{a.data(), a.size()}, IoSlice{b.data(), b.size()}};
    const std::span<const iovec> vectors = wsx::net::as_iovecs(slices);
    REQUIRE(vectors.size() == 2);
    CHECK(static_cast<const void*>(vectors.data()) == static_cast<const void*>(slices.data()));
    CHECK(vectors[0].iov_base == a.data());
    CHECK(vectors[0].iov_len == a.size());
    CHECK(vectors[1].iov_base == b.data());
    CHECK(vectors[1].iov_len == b.size());
}

TEST_CASE("numeric IPv4 and IPv6 addresses parse; host names are refused") {
    const auto v4 = SocketAddress::from_numeric("127.0.0.1", 8080);
    REQUIRE(v4.ok());
    CHECK(v4.value.family() == AF_INET);
    CHECK(v4.value.port() == 8080);
    CHECK(v4.value.size() == sizeof(sockaddr_in));
    const auto v6 = SocketAddress::from_numeric("::1", 443);
    REQUIRE(v6.ok());
    CHECK(v6.value.family() == AF_INET6);
    CHECK(v6.value.port() == 443);
    CHECK(SocketAddress::from_numeric("localhost", 80).error == EINVAL);
    CHECK(SocketAddress::from_numeric("127.0.0.1:80", 80).error == EINVAL);
    CHECK(SocketAddress::any_v4(9).port() == 9);
}

TEST_CASE("a taken port is EADDRINUSE, unless every listener asks for SO_REUSEPORT") {
    Listener first;
    const SysResult<int> second = wsx::net::listen_tcp(SocketAddress::loopback_v4(first.port));
    CHECK(second.error == EADDRINUSE);

    ListenOptions shared;
    shared.reuse_port = true;
    Listener a(shared);
    const SysResult<int> b = wsx::net::listen_tcp(SocketAddress::loopback_v4(a.port), shared);
    REQUIRE(b.ok());
    CHECK(wsx::net::close_fd(b.value).ok());
}

TEST_CASE("accept with nothing pending and a read with nothing to read say EAGAIN") {
    Listener listener;
    CHECK(would_block(wsx::net::accept_tcp(listener.fd).error));

    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);
    std::array<std::uint8_t, 8> buffer{};
    CHECK(would_block(wsx::net::read_some(pair[0], buffer).error));
    ::close(pair[1]);
    const SysResult<std::size_t> eof = wsx::net::read_some(pair[0], buffer);
    CHECK(eof.ok());
    CHECK(eof.value == 0);
    ::close(pair[0]);
}

TEST_CASE("writing to a vanished peer returns EPIPE instead of raising SIGPIPE") {
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) == 0);
    ::close(pair[1]);
    const std::string text = "lost";
    const std::array<IoSlice, 1> slices{IoSlice{text.data(), text.size()}};
    CHECK(wsx::net::write_slices(pair[0], slices).error == EPIPE);
    CHECK(wsx::net::write_some(pair[0], bytes_of(text)).error == EPIPE);
    CHECK(wsx::net::close_fd(pair[0]).ok());
}

TEST_CASE("TCP_NODELAY is switched on and off") {
    Listener listener;
    const SysResult<int> client = wsx::net::connect_tcp(SocketAddress::loopback_v4(listener.port));
    REQUIRE(client.ok());
    int value = 0;
    socklen_t length = sizeof(value);
    REQUIRE(wsx::net::set_no_delay(client.value).ok());
    REQUIRE(::getsockopt(client.value, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0);
    CHECK(value != 0);
    REQUIRE(wsx::net::set_no_delay(client.value, false).ok());
    REQUIRE(::getsockopt(client.value, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0);
    CHECK(value == 0);
    CHECK(wsx::net::close_fd(client.value).ok());
}

TEST_CASE_TEMPLATE("a refused connect is reported as ECONNREFUSED", B, WSX_NET_TEST_BACKENDS) {
    std::uint16_t closed_port = 0;
    {
        Listener scratch;  // learn a free port, then free it again
        closed_port = scratch.port;
    }
    const SysResult<int> client = wsx::net::connect_tcp(SocketAddress::loopback_v4(closed_port));
    if (!client.ok()) {
        CHECK(client.error == ECONNREFUSED);  // some kernels refuse loopback synchronously
        return;
    }
    auto reactor = make_reactor(B::value);
    struct Outcome : IoHandler {
        int error = 0;
        void on_readable(int fd) override { on_writable(fd); }
        void on_writable(int fd) override { error = wsx::net::connect_result(fd).error; }
        void on_error(int, int e) override { error = e; }
    } outcome;
    REQUIRE(reactor->add(client.value, Interest::write, outcome).ok());
    CHECK(run_until(*reactor, [&] { return outcome.error != 0; }));
    CHECK(outcome.error == ECONNREFUSED);
    CHECK(reactor->remove(client.value).ok());
    CHECK(wsx::net::close_fd(client.value).ok());
}

TEST_CASE_TEMPLATE("loopback TCP echo through the reactor returns every byte in order", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Listener listener;
    EchoServer server;
    server.reactor = reactor.get();
    server.listen_fd = listener.fd;
    REQUIRE(reactor->add(listener.fd, Interest::read, server).ok());

    const SysResult<int> client_fd =
        wsx::net::connect_tcp(SocketAddress::loopback_v4(listener.port));
    REQUIRE(client_fd.ok());
    EchoClient client;
    client.reactor = reactor.get();
    // A copied head, a referenced 1 MiB body and a copied tail: several slices per writev, and
    // more than the socket buffers hold, so writes are partial and resume on writability.
    std::string body(1 << 20, '\0');
    for (std::size_t i = 0; i < body.size(); ++i)
        body[i] = static_cast<char>('a' + i * 7 % 26);
    const std::string head = "HEAD:";
    const std::string tail = ":TAIL";
    client.output.append(bytes_of(head));
    client.output.append_reference(bytes_of(body));
    client.output.append(bytes_of(tail));
    const std::string expected = head + body + tail;
    REQUIRE(reactor->add(client_fd.value, Interest::write, client).ok());

    CHECK(run_until(
        *reactor, [&] { return client.received.size() >= expected.size(); }, 20s));
    CHECK(client.connected);
    CHECK(client.received.size() == expected.size());
    CHECK(client.received == expected);
    CHECK(client.gather_writes >= 1);

    // The client closes; the server sees EOF through the same loop.
    CHECK(reactor->remove(client_fd.value).ok());
    CHECK(wsx::net::close_fd(client_fd.value).ok());
    CHECK(run_until(*reactor, [&] { return server.peer_closed; }));
    CHECK(reactor->remove(listener.fd).ok());
    CHECK(wsx::net::close_fd(server.connection).ok());
}
