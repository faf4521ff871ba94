// wss:// against ws:// on loopback: the wsx server (one reactor thread) and the wsx client (this
// thread) in one process, so every figure includes both ends' CPU.
//   echo throughput   one connection, messages of 1 KiB, 64 KiB and 1 MiB kept in flight
//                     (about 4 MiB at a time), payload bytes echoed back per second
//   handshakes        one at a time: TCP connect, (TLS,) HTTP upgrade, close handshake
//   idle memory       RSS growth per idle connection (client and server side together)
// Certificates (ECDSA P-256) come from tests/net/tls_certs.sh in a temporary directory.
//
// Usage: tls_echo [--quick]   (--quick: a few milliseconds each, for CI; the numbers mean little)
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "net/client.hpp"
#include "net/server.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace wsx;

class ServerEcho final : public net::SessionHandler {
  public:
    void on_message(net::WsSession& session, proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        session.send(opcode, payload);
    }
};

// Client side: keeps `window` messages in flight and counts what comes back.
class Pump final : public net::SessionHandler {
  public:
    std::vector<std::uint8_t> message;
    std::size_t window = 1;
    std::uint64_t echoed_bytes = 0;
    bool sending = true;
    int opened = 0;
    int closed = 0;
    net::WsSession* session = nullptr;

    void on_open(net::WsSession& s) override {
        ++opened;
        session = &s;
        for (std::size_t i = 0; i < window && sending; ++i)
            s.send_binary(message);
    }
    void on_message(net::WsSession& s, proto::Opcode,
                    std::span<const std::uint8_t> payload) override {
        echoed_bytes += payload.size();
        if (sending) s.send_binary(message);
    }
    void on_close(net::WsSession&, const proto::CloseInfo&) override {
        ++closed;
        session = nullptr;
    }
};

struct Failure {
    std::string text;
    net::Client::FailureCallback callback() {
        return [this](const net::ConnectError& error) { text = error.message(); };
    }
};

template <class Done>
bool run_until(net::Reactor& reactor, Done done, std::chrono::milliseconds limit) {
    const auto give_up = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() > give_up) return false;
        if (!reactor.run_once(std::chrono::milliseconds(50)).ok()) return false;
    }
    return true;
}

// CPU time of the whole process (server thread and client thread): on a shared machine it is
// the figure that stays put, where wall time depends on what else runs.
double cpu_seconds() {
    timespec now{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

std::size_t rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

struct Setup {
    bool tls;
    std::string certs;
    std::chrono::milliseconds duration;
    int idle_connections;
};

struct Results {
    std::vector<double> mib_per_s;
    std::vector<double> mib_per_cpu_s;
    double handshakes_per_s = 0;
    double handshakes_per_cpu_s = 0;
    double idle_bytes = 0;
};

bool measure(const Setup& setup, Results& out) {
    ServerEcho echo;
    net::ServerOptions server_options;
    server_options.threads = 1;
    server_options.max_connections = 100'000;
    server_options.max_pending_handshakes = 100'000;
    server_options.session.ping_interval = std::chrono::milliseconds(0);
    server_options.session.max_buffered_bytes = 64u << 20;
    if (setup.tls) {
        server_options.tls.emplace();
        server_options.tls->cert_file = setup.certs + "/server.pem";
        server_options.tls->key_file = setup.certs + "/server.key";
    }
    net::Server server(server_options, echo);
    if (!server.start().ok()) {
        std::fprintf(stderr, "tls_echo: the server did not start\n");
        return false;
    }
    auto reactor = net::Reactor::create();
    if (!reactor.ok()) return false;
    net::ClientOptions client_options;
    client_options.session.ping_interval = std::chrono::milliseconds(0);
    client_options.session.max_buffered_bytes = 64u << 20;
    client_options.tls.ca_file = setup.certs + "/ca.pem";
    net::Client client(*reactor.value, client_options);
    const std::string url = std::string(setup.tls ? "wss" : "ws") +
                            "://127.0.0.1:" + std::to_string(server.port()) + "/";
    const auto limit = std::chrono::milliseconds(30'000);

    for (const std::size_t size :
         {std::size_t{1024}, std::size_t{64 * 1024}, std::size_t{1024 * 1024}}) {
        Pump pump;
        pump.message.assign(size, 0x5a);
        pump.window = std::max<std::size_t>(1, std::min<std::size_t>(64, (4u << 20) / size));
        Failure failure;
        client.connect({.url = url}, pump, failure.callback());
        if (!run_until(
                *reactor.value, [&] { return pump.opened == 1 || !failure.text.empty(); }, limit) ||
            pump.opened != 1) {
            std::fprintf(stderr, "tls_echo: %s\n", failure.text.c_str());
            return false;
        }
        // Warm up, then count.
        run_until(
            *reactor.value, [] { return false; }, setup.duration / 4);
        const std::uint64_t before = pump.echoed_bytes;
        const auto start = Clock::now();
        const double cpu_start = cpu_seconds();
        run_until(
            *reactor.value, [] { return false; }, setup.duration);
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        const double mib = static_cast<double>(pump.echoed_bytes - before) / (1024.0 * 1024.0);
        out.mib_per_s.push_back(mib / seconds);
        out.mib_per_cpu_s.push_back(mib / (cpu_seconds() - cpu_start));
        pump.sending = false;
        pump.session->close();
        if (!run_until(
                *reactor.value, [&] { return pump.closed == 1; }, limit))
            return false;
    }

    // Handshakes, one at a time.
    {
        int done = 0;
        const auto start = Clock::now();
        const double cpu_start = cpu_seconds();
        while (Clock::now() - start < setup.duration || done == 0) {
            Pump pump;
            pump.sending = false;
            Failure failure;
            client.connect({.url = url}, pump, failure.callback());
            if (!run_until(
                    *reactor.value, [&] { return pump.opened == 1 || !failure.text.empty(); },
                    limit) ||
                pump.opened != 1) {
                std::fprintf(stderr, "tls_echo: %s\n", failure.text.c_str());
                return false;
            }
            pump.session->close();
            if (!run_until(
                    *reactor.value, [&] { return pump.closed == 1; }, limit))
                return false;
            ++done;
        }
        out.handshakes_per_s = done / std::chrono::duration<double>(Clock::now() - start).count();
        out.handshakes_per_cpu_s = done / (cpu_seconds() - cpu_start);
    }

    // Idle connections.
    {
        std::vector<std::unique_ptr<Pump>> idle;
        const std::size_t rss_before = rss_bytes();
        Failure failure;
        for (int i = 0; i < setup.idle_connections; ++i) {
            idle.push_back(std::make_unique<Pump>());
            idle.back()->sending = false;
            client.connect({.url = url}, *idle.back(), failure.callback());
        }
        if (!run_until(
                *reactor.value,
                [&] {
                    return server.connection_count() ==
                               static_cast<std::size_t>(setup.idle_connections) &&
                           client.host().size() == static_cast<std::size_t>(setup.idle_connections);
                },
                limit)) {
            std::fprintf(stderr, "tls_echo: idle connections did not open: %s\n",
                         failure.text.c_str());
            return false;
        }
        out.idle_bytes = static_cast<double>(rss_bytes() - rss_before) / setup.idle_connections;
        client.host().close_all(1000, "");
        run_until(
            *reactor.value, [&] { return client.host().size() == 0; }, limit);
    }
    server.stop();
    server.wait();
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    char pattern[] = "/tmp/wsx-bench-tls-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return 1;
    const std::string certs = pattern;
    const std::string command = std::string("sh '") + WSX_TLS_CERTS_SCRIPT + "' '" + certs + "'";
    if (std::system(command.c_str()) != 0) return 1;

    const std::chrono::milliseconds duration(quick ? 20 : 2000);
    const int idle = quick ? 10 : 1000;
    Results plain, tls;
    const bool ok = measure({false, certs, duration, idle}, plain) &&
                    measure({true, certs, duration, idle}, tls);
    std::filesystem::remove_all(certs);
    if (!ok) return 1;

    std::printf("%-38s %14s %14s %6s\n", "loopback, client+server in one process", "ws://",
                "wss://", "ratio");
    const char* sizes[] = {"1 KiB", "64 KiB", "1 MiB"};
    for (std::size_t i = 0; i < plain.mib_per_s.size(); ++i) {
        std::printf("echo %-6s (wall)                    %8.0f MiB/s %8.0f MiB/s %6.2f\n", sizes[i],
                    plain.mib_per_s[i], tls.mib_per_s[i], tls.mib_per_s[i] / plain.mib_per_s[i]);
        std::printf("echo %-6s (per CPU second)          %8.0f MiB/s %8.0f MiB/s %6.2f\n", sizes[i],
                    plain.mib_per_cpu_s[i], tls.mib_per_cpu_s[i],
                    tls.mib_per_cpu_s[i] / plain.mib_per_cpu_s[i]);
    }
    std::printf("handshakes, one at a time (wall)       %10.0f /s %10.0f /s %6.2f\n",
                plain.handshakes_per_s, tls.handshakes_per_s,
                tls.handshakes_per_s / plain.handshakes_per_s);
    std::printf("handshakes (per CPU second)            %10.0f /s %10.0f /s %6.2f\n",
                plain.handshakes_per_cpu_s, tls.handshakes_per_cpu_s,
                tls.handshakes_per_cpu_s / plain.handshakes_per_cpu_s);
    std::printf("RSS per idle connection (both ends)    %10.1f KiB %9.1f KiB\n",
                plain.idle_bytes / 1024, tls.idle_bytes / 1024);
    return 0;
}
