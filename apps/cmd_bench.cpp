// wsx bench: the load generator (apps/loadgen.hpp) on the command line. Progress goes to stderr
// once a second; the summary (or --json) to stdout at the end.
//
// Exit status: 0 when the run had no errors, 1 when something failed (a connection, a mismatched
// or lost echo), 2 for bad usage.
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "loadgen.hpp"
#include "net/url.hpp"

namespace wsx::apps {

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) {
    g_stop.store(true);
}

void print_bench_help(std::FILE* out) {
    std::fprintf(out,
                 "usage: wsx bench ws[s]://HOST:PORT[/PATH] [options]\n"
                 "  WebSocket load generator: echo round trips (default), handshakes or idle\n"
                 "  connections; a progress line per second on stderr, a summary at the end\n"
                 "  --connections N          connections (100)\n"
                 "  --size BYTES             payload bytes per message (16)\n"
                 "  --in-flight K            messages outstanding per connection (1)\n"
                 "  --duration S             seconds to run, or to hold --idle connections (10)\n"
                 "  --messages M             send M messages in all instead of a duration\n"
                 "  --text, --binary         message type (binary)\n"
                 "  --deflate                offer permessage-deflate\n"
                 "  --threads T              generator threads (1)\n"
                 "  --handshakes             measure connect + upgrade + close cycles per second\n"
                 "  --idle                   open the connections and hold them without traffic\n"
                 "  --sources K              connect from 127.0.0.1 .. 127.0.0.K (1)\n"
                 "  --json                   the summary as one JSON object on stdout\n"
                 "  --quiet                  no progress lines\n"
                 "%s"
                 "  --help                   this text\n"
                 "  wss://: every connection (each cycle of --handshakes) makes a full TLS\n"
                 "  handshake before the upgrade\n",
                 kTlsClientFlagsHelp);
}

int usage_error(const char* message, std::string_view detail) {
    std::fprintf(stderr, "wsx bench: %s%.*s\n", message, static_cast<int>(detail.size()),
                 detail.data());
    print_bench_help(stderr);
    return 2;
}

bool resolve(const net::WsUrl& url, net::SocketAddress& out) {
    if (auto numeric = net::SocketAddress::from_numeric(url.host, url.port); numeric.ok()) {
        out = numeric.value;
        return true;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(url.host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr)
        return false;
    sockaddr_storage storage{};
    std::memcpy(&storage, found->ai_addr, found->ai_addrlen);
    const auto size = static_cast<socklen_t>(found->ai_addrlen);
    freeaddrinfo(found);
    if (storage.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(url.port);
    } else if (storage.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(url.port);
    } else {
        return false;
    }
    out = net::SocketAddress::from_storage(storage, size);
    return true;
}

const char* mode_name(BenchMode mode) {
    switch (mode) {
        case BenchMode::echo:
            return "echo";
        case BenchMode::handshakes:
            return "handshakes";
        case BenchMode::idle:
            return "idle";
    }
    return "?";
}

// JSON string content: the error texts are ours, but quote them properly anyway.
std::string json_escape(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

int bench_command(std::span<char*> args) {
    BenchOptions options;
    bool json = false;
    std::string url_text;
    TlsFlags tls;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (const FlagResult r = parse_tls_flag(args, i, tls, "wsx bench");
            r != FlagResult::not_mine) {
            if (r == FlagResult::bad) return usage_error("bad TLS option", "");
            if (tls.server_requested()) return usage_error("a client takes --ca or --insecure", "");
            continue;
        }
        const std::string_view flag = args[i];
        if (flag == "--help" || flag == "-h") {
            print_bench_help(stdout);
            return 0;
        }
        if (flag == "--text" || flag == "--binary") {
            options.text = flag == "--text";
            continue;
        }
        if (flag == "--deflate") {
            options.deflate = true;
            continue;
        }
        if (flag == "--handshakes" || flag == "--idle") {
            options.mode = flag == "--idle" ? BenchMode::idle : BenchMode::handshakes;
            continue;
        }
        if (flag == "--json" || flag == "--quiet") {
            (flag == "--json" ? json : options.progress) = flag == "--json";
            continue;
        }
        if (!flag.starts_with("--")) {
            if (!url_text.empty()) return usage_error("more than one URL: ", flag);
            url_text = flag;
            continue;
        }
        if (i + 1 == args.size()) return usage_error("this option needs a value: ", flag);
        const std::string_view value = args[++i];
        bool ok = true;
        if (flag == "--connections") {
            ok = parse_number(value, options.connections) && options.connections > 0;
        } else if (flag == "--size") {
            ok = parse_number(value, options.size) && options.size > 0 &&
                 options.size <= 64 * 1024 * 1024;
        } else if (flag == "--in-flight") {
            ok = parse_number(value, options.in_flight) && options.in_flight > 0;
        } else if (flag == "--duration") {
            unsigned long long millis = 0;
            double seconds = 0;
            // Whole or fractional seconds ("0.5"), without locale-dependent parsing.
            const std::size_t dot = value.find('.');
            unsigned whole = 0, fraction = 0;
            if (dot == std::string_view::npos) {
                ok = parse_number(value, whole);
                millis = 1000ull * whole;
            } else {
                const std::string_view digits = value.substr(dot + 1, 3);
                ok = (dot == 0 || parse_number(value.substr(0, dot), whole)) && !digits.empty() &&
                     parse_number(digits, fraction);
                millis = 1000ull * whole +
                         fraction * static_cast<unsigned>(std::pow(10, 3 - digits.size()));
            }
            seconds = static_cast<double>(millis) / 1000.0;
            ok = ok && seconds > 0;
            options.duration_s = seconds;
        } else if (flag == "--messages") {
            ok = parse_number(value, options.messages) && options.messages > 0;
        } else if (flag == "--threads") {
            ok = parse_number(value, options.threads) && options.threads > 0 &&
                 options.threads <= 256;
        } else if (flag == "--sources") {
            ok = parse_number(value, options.sources) && options.sources > 0 &&
                 options.sources < 255;
        } else {
            return usage_error("unknown option ", flag);
        }
        if (!ok) return usage_error("bad value for ", flag);
    }
    if (url_text.empty()) return usage_error("no URL", "");
    const net::UrlParseResult parsed = net::parse_url(url_text);
    if (!parsed.ok()) return usage_error("bad URL: ", parsed.error);
    if (parsed.url.secure) {
        auto context = net::make_client_context(tls.client);
        if (!context.ok()) {
            std::fprintf(stderr, "wsx bench: %s\n", context.error.c_str());
            return 2;
        }
        options.tls = std::move(context.context);
        options.tls_host = parsed.url.host;
    }
    if (!resolve(parsed.url, options.server))
        return usage_error("cannot resolve ", parsed.url.host);
    options.host_header = parsed.url.authority();
    options.target = parsed.url.target;

    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);

    const BenchReport r = run_bench(options, g_stop);
    const double us = 1e3;
    const double saturation = r.elapsed_s > 0 ? r.cpu_s / (r.elapsed_s * options.threads) : 0;
    // Below half a second the CPU clock's granularity makes the ratio meaningless.
    const bool saturated = saturation >= 0.9 && r.elapsed_s >= 0.5;
    const auto p = [&](double q) { return static_cast<double>(r.latency.quantile(q)) / us; };
    const double max_us = static_cast<double>(r.latency.max()) / us;
    if (json) {
        std::printf(
            "{\"mode\": \"%s\", \"url\": \"%s\", \"connections\": %u, \"opened\": %u, "
            "\"connect_failures\": %u, \"size\": %zu, \"in_flight\": %u, \"threads\": %u, "
            "\"text\": %s, \"deflate\": %s, \"elapsed_s\": %.6f, \"sent\": %llu, "
            "\"messages\": %llu, \"messages_per_s\": %.1f, \"bytes_per_s\": %.1f, "
            "\"handshakes\": %llu, \"handshakes_per_s\": %.1f, "
            "\"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"max\": %.1f}, "
            "\"cpu_s\": %.3f, \"cpu_per_thread\": %.3f, \"saturated\": %s, \"errors\": %llu, "
            "\"mismatches\": %llu, \"first_error\": \"%s\"}\n",
            mode_name(options.mode), json_escape(url_text).c_str(), options.connections, r.opened,
            r.connect_failures, options.size, options.in_flight, options.threads,
            options.text ? "true" : "false", options.deflate ? "true" : "false", r.elapsed_s,
            static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.received),
            r.messages_per_s(), r.bytes_per_s(), static_cast<unsigned long long>(r.handshakes),
            r.handshakes_per_s(), p(0.5), p(0.9), p(0.99), max_us, r.cpu_s, saturation,
            saturated ? "true" : "false", static_cast<unsigned long long>(r.errors),
            static_cast<unsigned long long>(r.mismatches), json_escape(r.first_error).c_str());
    } else {
        std::printf("wsx bench %s: %u of %u connections opened, %.2f s\n", mode_name(options.mode),
                    r.opened, options.connections, r.elapsed_s);
        if (options.mode == BenchMode::echo) {
            std::printf("  %llu messages of %zu bytes echoed (%llu sent): %.0f msg/s, %.2f MB/s\n",
                        static_cast<unsigned long long>(r.received), options.size,
                        static_cast<unsigned long long>(r.sent), r.messages_per_s(),
                        r.bytes_per_s() / 1e6);
        } else if (options.mode == BenchMode::handshakes) {
            std::printf("  %llu handshakes (connect, upgrade, close): %.0f per second\n",
                        static_cast<unsigned long long>(r.handshakes), r.handshakes_per_s());
        }
        if (r.latency.count() > 0)
            std::printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", p(0.5), p(0.9),
                        p(0.99), max_us);
        std::printf("  client CPU %.2f s (%.0f%% of %u thread%s)\n", r.cpu_s, saturation * 100,
                    options.threads, options.threads == 1 ? "" : "s");
        std::printf("  errors %llu%s%s\n", static_cast<unsigned long long>(r.errors),
                    r.first_error.empty() ? "" : ": ", r.first_error.c_str());
    }
    if (saturated)
        std::fprintf(stderr,
                     "wsx bench: warning: the generator itself used %.0f%% of its %u thread%s: "
                     "the figures may measure the generator, not the server (try --threads)\n",
                     saturation * 100, options.threads, options.threads == 1 ? "" : "s");
    const bool worked = options.mode == BenchMode::handshakes ? r.handshakes > 0 : r.opened > 0;
    return r.errors == 0 && worked ? 0 : 1;
}

}  // namespace wsx::apps
