// What every serving command shares: its listening flags, and its life after start(): signals
// in, graceful stop out.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <string>

#include "commands.hpp"
#include "net/server.hpp"

namespace wsx::apps {

namespace {

sigset_t serve_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    return signals;
}

}  // namespace

std::optional<bool> parse_listen_flag(std::string_view flag, std::string_view value,
                                      net::ServerOptions& options) {
    if (flag == "--port") return parse_number(value, options.port);
    if (flag == "--address") {
        options.address = std::string(value);
        return true;
    }
    if (flag == "--threads") return parse_number(value, options.threads);
    if (flag == "--max-connections") return parse_number(value, options.max_connections);
    return std::nullopt;
}

void block_serve_signals() {
    const sigset_t signals = serve_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int serve_until_signal(net::Server& server, bool tls, const char* command) {
    const sigset_t signals = serve_signals();
    int signal_number = 0;
    for (;;) {
        sigwait(&signals, &signal_number);
        if (signal_number != SIGHUP) break;
        // SIGHUP: renewed certificate files for new connections; open ones go on with theirs.
        std::string error;
        if (!tls) {
            std::fprintf(stderr, "%s: SIGHUP ignored (no TLS)\n", command);
        } else if (server.reload_tls(&error)) {
            std::fprintf(stderr, "%s: SIGHUP, TLS certificates reloaded\n", command);
        } else {
            std::fprintf(stderr, "%s: SIGHUP, keeping the old certificates: %s\n", command,
                         error.c_str());
        }
    }
    const std::size_t open = server.connection_count();
    server.stop();
    server.wait();
    std::fprintf(stderr, "%s: %s, closed %zu connections with 1001, stopped\n", command,
                 signal_number == SIGINT ? "SIGINT" : "SIGTERM", open);
    return 0;
}

}  // namespace wsx::apps
