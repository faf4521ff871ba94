// Memory per idle WebSocket session, measured in one process (issue #6: at most 256 bytes of user
// space per idle connection).
//
//   idle_memory [--mode server|host] [--sessions N] [--max-bytes B]
//
//   --mode server (default)  a wsx::net::Server (one reactor thread, 127.0.0.1, port 0) and N raw
//                            TCP clients in this process that each send the opening handshake,
//                            read the 101 and then stay silent: the whole path (accept, HTTP
//                            phase, upgrade, session) as `wsx echo` runs it. The clients are bare
//                            descriptors, so everything the heap gains belongs to the server.
//   --mode host              N socketpairs adopted by a SessionHost (server role, the 101 as
//                            preamble, target "/", a loopback peer): the session layer alone.
//
// Prints the static layout (sizeof of the session and its parts) and, over the N sessions, the
// growth of the heap in use (mallinfo2: glibc's bytes in allocated chunks, so malloc's own headers
// and rounding count) and of VmRSS, each divided by N. With --max-bytes the program fails when the
// heap growth per session is above B (the CI smoke test holds the target that way).
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/server.hpp"
#include "net/socket.hpp"
#include "net/ws_session.hpp"

namespace {

using namespace wsx;

constexpr std::string_view kRequest =
    "GET / HTTP/1.1\r\n"
    "Host: 127.0.0.1\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

// What a server writes for kRequest (RFC 6455 §1.3's sample key and accept value).
constexpr std::string_view kResponse =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "\r\n";

class Silent final : public net::SessionHandler {
  public:
    void on_message(net::WsSession&, proto::Opcode, std::span<const std::uint8_t>) override {}
};

struct Usage {
    std::size_t heap = 0;  // bytes in allocated chunks, every arena
    std::size_t rss = 0;   // VmRSS
};

Usage usage() {
    Usage u;
    u.heap = mallinfo2().uordblks;
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0)
            u.rss = std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
    }
    return u;
}

void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    limit.rlim_cur = limit.rlim_max;
    static_cast<void>(setrlimit(RLIMIT_NOFILE, &limit));
}

void print_layout() {
    std::printf("layout (bytes):\n");
    std::printf("  WsSession              %4zu\n", sizeof(net::WsSession));
    std::printf("    proto::Connection    %4zu\n", sizeof(proto::Connection));
    std::printf("      OutputQueue        %4zu\n", sizeof(proto::OutputQueue));
    std::printf("      MaskKeySource      %4zu\n", sizeof(proto::MaskKeySource));
    std::printf("      ConnectionOptions  %4zu\n", sizeof(proto::ConnectionOptions));
    std::printf("    Timer                %4zu\n", sizeof(net::Timer));
    std::printf("    SocketAddress        %4zu\n", sizeof(net::SocketAddress));
    std::printf("    std::string          %4zu\n", sizeof(std::string));
}

// One client: connect, send the upgrade, read up to the end of the 101. -1 on failure.
int open_client(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    timeval timeout{10, 0};
    static_cast<void>(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::send(fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(kRequest.size())) {
        ::close(fd);
        return -1;
    }
    char buffer[512];
    std::size_t have = 0;
    while (have < sizeof buffer) {
        const ssize_t got = ::recv(fd, buffer + have, sizeof buffer - have, 0);
        if (got <= 0) break;
        have += static_cast<std::size_t>(got);
        if (std::string_view(buffer, have).find("\r\n\r\n") != std::string_view::npos) {
            if (std::string_view(buffer, have).rfind("HTTP/1.1 101", 0) == 0) return fd;
            break;
        }
    }
    ::close(fd);
    return -1;
}

bool wait_for(net::Server& server, std::size_t count) {
    for (int i = 0; i < 2000; ++i) {
        if (server.connection_count() == count) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

// Returns the sessions opened; `before` and `after` frame them.
std::size_t measure_server(std::size_t sessions, Usage& before, Usage& after) {
    Silent handler;
    net::ServerOptions options;
    options.threads = 1;
    options.max_connections = sessions + 64;
    net::Server server(options, handler);
    if (!server.start().ok()) {
        std::fprintf(stderr, "idle_memory: the server did not start\n");
        return 0;
    }
    std::vector<int> clients;
    clients.reserve(sessions);
    // Warm up: whatever the first connections create once (read buffer, table sizes) is not
    // per session.
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 64; ++i) {
            if (const int fd = open_client(server.port()); fd >= 0) clients.push_back(fd);
        }
        for (const int fd : clients)
            ::close(fd);
        clients.clear();
        wait_for(server, 0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    before = usage();
    for (std::size_t i = 0; i < sessions; ++i) {
        const int fd = open_client(server.port());
        if (fd < 0) break;
        clients.push_back(fd);
    }
    wait_for(server, clients.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    after = usage();
    const std::size_t opened = clients.size();
    for (const int fd : clients)
        ::close(fd);
    server.stop();
    server.wait();
    return opened;
}

std::size_t measure_host(std::size_t sessions, Usage& before, Usage& after) {
    auto created = net::Reactor::create();
    if (!created.ok()) return 0;
    net::Reactor& reactor = *created.value;
    Silent handler;
    const net::SessionOptions options;
    std::vector<int> peers;
    peers.reserve(sessions);
    std::vector<net::WsSession*> opened;
    opened.reserve(sessions);
    {
        net::SessionHost host(reactor);
        const auto adopt_one = [&]() -> net::WsSession* {
            int fds[2];
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
                return nullptr;
            }
            net::SessionStart start;
            start.fd = fds[0];
            start.role = proto::Role::server;
            start.handler = &handler;
            start.options = &options;
            start.preamble = std::string(kResponse);
            start.target = "/";
            start.peer = net::SocketAddress::loopback_v4(40000);
            peers.push_back(fds[1]);
            return host.adopt(start);
        };
        for (int i = 0; i < 64; ++i)
            static_cast<void>(adopt_one());
        host.abort_all();
        static_cast<void>(reactor.run_once(std::chrono::milliseconds(0)));
        for (const int fd : peers)
            ::close(fd);
        peers.clear();

        before = usage();
        for (std::size_t i = 0; i < sessions; ++i) {
            net::WsSession* session = adopt_one();
            if (session == nullptr) break;
            opened.push_back(session);
        }
        static_cast<void>(reactor.run_once(std::chrono::milliseconds(0)));
        after = usage();
        host.abort_all();
    }
    for (const int fd : peers)
        ::close(fd);
    return opened.size();
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = "server";
    std::size_t sessions = 5000;
    double max_bytes = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--mode" && i + 1 < argc) {
            mode = argv[++i];
        } else if (arg == "--sessions" && i + 1 < argc) {
            sessions = std::strtoull(argv[++i], nullptr, 10);
        } else if (arg == "--max-bytes" && i + 1 < argc) {
            max_bytes = std::strtod(argv[++i], nullptr);
        } else {
            std::fprintf(
                stderr, "usage: idle_memory [--mode server|host] [--sessions N] [--max-bytes B]\n");
            return 2;
        }
    }
    if ((mode != "server" && mode != "host") || sessions == 0) {
        std::fprintf(stderr, "idle_memory: --mode server|host, --sessions > 0\n");
        return 2;
    }
    raise_descriptor_limit();
    print_layout();

    Usage before;
    Usage after;
    const std::size_t opened = mode == "server" ? measure_server(sessions, before, after)
                                                : measure_host(sessions, before, after);
    if (opened == 0) {
        std::fprintf(stderr, "idle_memory: no session opened\n");
        return 1;
    }
    const double n = static_cast<double>(opened);
    const double heap = (static_cast<double>(after.heap) - static_cast<double>(before.heap)) / n;
    const double rss = (static_cast<double>(after.rss) - static_cast<double>(before.rss)) / n;
    std::printf("%s: %zu idle sessions: heap %.1f B/session, VmRSS %.1f B/session\n", mode.c_str(),
                opened, heap, rss);
    if (opened < sessions) std::printf("  (%zu of %zu opened)\n", opened, sessions);
    if (max_bytes > 0 && heap > max_bytes) {
        std::fprintf(stderr, "idle_memory: %.1f B/session is above --max-bytes %.0f\n", heap,
                     max_bytes);
        return 1;
    }
    return 0;
}
