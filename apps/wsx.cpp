// The wsx command:
//   wsx demo   a tour of the sans-IO engine: a client and a server endpoint wired together
//              through memory, printing what crosses between them;
//   wsx echo   a WebSocket echo server on the net layer (the Autobahn fuzzingclient's testee);
//   wsx chat   the chat room server (cmd_chat.cpp).
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "net/reactor.hpp"
#include "net/server.hpp"
#include "proto/connection.hpp"
#include "proto/handshake.hpp"
#include "proto/mask.hpp"

namespace {

using namespace wsx::proto;

std::string printable(std::span<const std::uint8_t> bytes, std::size_t max = 48) {
    std::string s;
    for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%02x ", bytes[i]);
        s += buf;
    }
    if (bytes.size() > max) s += "...";
    return s;
}

// Moves everything `from` queued for writing into a byte string, as a socket write would.
std::vector<std::uint8_t> drain(Connection& from) {
    std::vector<std::uint8_t> wire;
    IoSlice slices[16];
    while (from.wants_write()) {
        const std::size_t n = from.pending_output(slices);
        std::size_t written = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const auto* p = static_cast<const std::uint8_t*>(slices[i].data);
            wire.insert(wire.end(), p, p + slices[i].size);
            written += slices[i].size;
        }
        from.consume_output(written);
    }
    return wire;
}

struct Printer {
    const char* who;
    Connection* conn;
    bool echo;

    void on_message(Opcode opcode, std::span<const std::uint8_t> payload) {
        std::printf("  %s <- %s message, %zu bytes: \"%.*s\"\n", who,
                    opcode == Opcode::text ? "text" : "binary", payload.size(),
                    static_cast<int>(payload.size() > 60 ? 60 : payload.size()),
                    reinterpret_cast<const char*>(payload.data()));
        if (echo) conn->send(opcode, payload);
    }
    void on_ping(std::span<const std::uint8_t> payload) {
        std::printf("  %s <- ping (%zu bytes), pong queued automatically\n", who, payload.size());
    }
    void on_pong(std::span<const std::uint8_t> payload) {
        std::printf("  %s <- pong \"%.*s\"\n", who, static_cast<int>(payload.size()),
                    reinterpret_cast<const char*>(payload.data()));
    }
    void on_close(const CloseInfo& info) {
        std::printf("  %s <- close %u \"%.*s\" (%s)\n", who, info.code,
                    static_cast<int>(info.reason.size()), info.reason.data(),
                    info.clean ? "clean" : "failed");
    }
};

// Sends what `from` queued to `to`, printing the wire bytes.
void deliver(const char* arrow, Connection& from, Connection& to, Printer& handler) {
    auto wire = drain(from);
    if (wire.empty()) return;
    std::printf("  %s %zu bytes on the wire: %s\n", arrow, wire.size(), printable(wire).c_str());
    const auto r = to.receive(wire, handler);
    if (r.error != Error::none) std::printf("  error: %s\n", describe(r.error).data());
}

int demo() {
    std::printf("wsx engine demo (masking: %s)\n\n", mask_impl_name(mask_impl_selected()));

    std::printf("1. Opening handshake (RFC 6455 section 4)\n");
    ClientOptions client_options;
    client_options.host = "localhost:8080";
    client_options.target = "/chat";
    client_options.origin = "http://localhost:8080";
    auto client_hs = ClientHandshake::create(client_options);
    if (!client_hs) {
        std::printf("no randomness for the key\n");
        return 1;
    }
    const std::string request = client_hs->request();
    std::printf("%s", request.c_str());

    ServerOptions server_options;
    ServerHandshake server_hs(server_options);
    const auto parsed = server_hs.parse(request);
    if (parsed.status != ParseStatus::ok) {
        std::printf("server refused: %s\n", describe(parsed.error).data());
        return 1;
    }
    const std::string response = server_hs.accept_response();
    std::printf("%s", response.c_str());
    if (client_hs->parse(response).status != ParseStatus::ok) {
        std::printf("client refused the response\n");
        return 1;
    }
    std::printf("  accept key verified\n\n");

    Connection client(Role::client);
    Connection server(Role::server);
    Printer client_events{"client", &client, false};
    Printer server_events{"server", &server, true};

    std::printf("2. A text message, masked by the client, echoed by the server\n");
    client.send_text("Hello, wsx!");
    deliver("c->s", client, server, server_events);
    deliver("s->c", server, client, client_events);

    std::printf("\n3. A fragmented message with a ping between its fragments\n");
    const std::string_view part1 = "Hel", part2 = "lo";
    client.send_frame(Opcode::text, {reinterpret_cast<const std::uint8_t*>(part1.data()), 3},
                      false);
    client.ping();
    client.send_frame(Opcode::continuation,
                      {reinterpret_cast<const std::uint8_t*>(part2.data()), 2}, true);
    deliver("c->s", client, server, server_events);
    deliver("s->c", server, client, client_events);

    std::printf("\n4. A protocol error: invalid UTF-8 fails the connection with 1007\n");
    Connection strict(Role::server);
    Printer strict_events{"server", &strict, false};
    Connection sender(Role::client);
    const std::uint8_t bad[] = {0xce, 0xba, 0xed, 0xa0, 0x80};  // a surrogate: never valid
    sender.send_frame(Opcode::binary, bad, true);  // sent as binary, relabelled text below
    auto wire = drain(sender);
    wire[0] = 0x81;  // FIN + text
    const auto r = strict.receive(wire, strict_events);
    std::printf("  error: %s -> close code %u\n", describe(r.error).data(),
                close_code_for(r.error));

    std::printf("\n5. The close handshake\n");
    client.close(close_code::kNormal, "bye");
    deliver("c->s", client, server, server_events);
    deliver("s->c", server, client, client_events);
    std::printf("  server closes TCP first: %s\n", server.close_transport_now() ? "yes" : "no");
    return 0;
}

constexpr const char* kDemoHelp =
    "usage: wsx demo\n"
    "  a tour of the engine: handshake, frames, errors, close (no options)\n";

constexpr const char* kEchoHelp =
    "usage: wsx echo [options]\n"
    "  WebSocket echo server on every path; stops gracefully on SIGINT/SIGTERM;\n"
    "  with TLS, SIGHUP reloads the certificates\n"
    "  --port N                 TCP port, 0 for any free one (8080)\n"
    "  --address ADDR           address to bind (0.0.0.0)\n"
    "  --threads N              reactor threads, 0 for one per core (0)\n"
    "  --max-connections N      connections open at once (10000)\n"
    "  --static DIR             serve files from DIR to plain HTTP requests\n"
    "  --max-message BYTES      largest message accepted (16 MiB)\n"
    "  --handshake-timeout MS   time allowed for the HTTP upgrade request (10000)\n"
    "  --backend epoll|poll|kqueue\n"
    "  --deflate, --no-deflate  accept permessage-deflate (RFC 7692) offers, or not (not)\n"
    "  --max-frame BYTES        largest frame accepted (the message limit)\n"
    "  --auto-fragment BYTES    send messages in frames of at most BYTES (0: whole)\n"
    "  --ping-interval MS       heartbeat ping period, 0 for none (54000)\n"
    "  deflate tuning (with --deflate):\n"
    "  --deflate-window-bits N  largest LZ77 window, 8-15, of both directions (15)\n"
    "  --deflate-mem-level N    zlib memLevel 1-9 of our compressor (8)\n"
    "  --deflate-no-context-takeover  reset both directions after every message\n"
    "  --deflate-release-idle   free a direction's zlib stream between messages when it\n"
    "                           resets anyway (no context takeover)\n"
    "  --deflate-min-size BYTES|never  send shorter messages uncompressed (64)\n";

// The autobahn commands parse their own options; their help is kept here so that `--help`
// answers on stdout with status 0 like every other command.
constexpr const char* kAutobahnServerHelp =
    "usage: wsx autobahn-server [options]\n"
    "  echo testee for the Autobahn fuzzingclient (tests/autobahn/)\n"
    "  --port N                 TCP port (9001)\n"
    "  --address ADDR           address to bind (127.0.0.1)\n"
    "  --threads N              reactor threads (1)\n"
    "  --max-connections N      connections open at once (10000)\n"
    "  --max-message BYTES      largest message accepted (64 MiB)\n";

constexpr const char* kAutobahnClientHelp =
    "usage: wsx autobahn-client [options]\n"
    "  testee for the Autobahn fuzzingserver (tests/autobahn/): runs every case, then\n"
    "  asks the fuzzingserver to write its report\n"
    "  --url URL                the fuzzingserver (ws://127.0.0.1:9001)\n"
    "  --agent NAME             agent name in the report (wsx)\n"
    "  --max-message BYTES      largest message accepted (64 MiB)\n";

int usage() {
    std::fprintf(stderr,
                 "usage: wsx <command> [options]   (wsx <command> --help for its options)\n"
                 "  demo     a tour of the engine: handshake, frames, errors, close\n"
                 "  echo     WebSocket echo server; stops gracefully on SIGINT/SIGTERM\n"
                 "           [--port 8080] [--address 0.0.0.0] [--threads N (0: per core)]\n"
                 "           [--max-connections N] [--static DIR] [--max-message BYTES]\n"
                 "           [--handshake-timeout MS] [--backend epoll|poll|kqueue]\n"
                 "           [--deflate | --no-deflate] [--max-frame BYTES]\n"
                 "           [--auto-fragment BYTES] [--ping-interval MS] [--deflate-...]\n"
                 "           [--tls-cert FILE --tls-key FILE [--tls-sni HOST:CERT:KEY]...]\n"
                 "  chat     chat room server: web page at /, JSON chat at /ws, echo at /echo\n"
                 "           [--port 8080] [--address 0.0.0.0] [--static DIR] [--threads N]\n"
                 "           [--max-connections N] [--max-message BYTES] [--allowed-origin O ...]\n"
                 "  connect  WebSocket client: stdin lines out, messages to stdout\n"
                 "  autobahn-server  echo testee for the Autobahn fuzzingclient\n"
                 "  autobahn-client  testee for the Autobahn fuzzingserver\n"
                 "  bench    load generator: echo round trips, handshakes, idle connections\n");
    return 2;
}

bool wants_help(std::span<char*> args) {
    return std::any_of(args.begin(), args.end(), [](const char* arg) {
        return std::strcmp(arg, "--help") == 0 || std::strcmp(arg, "-h") == 0;
    });
}

// ---- wsx echo

class EchoHandler final : public wsx::net::SessionHandler {
  public:
    void on_message(wsx::net::WsSession& session, Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        session.send(opcode, payload);
    }
};

using wsx::apps::parse_listen_flag;
using wsx::apps::parse_number;

bool parse_backend(std::string_view name, wsx::net::Backend& out) {
    for (const auto backend : {wsx::net::Backend::automatic, wsx::net::Backend::epoll,
                               wsx::net::Backend::poll, wsx::net::Backend::kqueue}) {
        if (name == wsx::net::backend_name(backend)) {
            out = backend;
            return true;
        }
    }
    return false;
}

int echo(std::span<char*> args) {
    wsx::net::ServerOptions options;
    options.address = "0.0.0.0";
    options.port = 8080;
    options.websocket_paths = {"*"};  // every path: test suites pick their own
    std::uint64_t max_message = options.session.connection.max_message_size;
    wsx::apps::TlsFlags tls;
    std::uint64_t max_frame = 0;  // 0: the message limit
    bool deflate = false;
    // Applied to the deflate options once all flags are read, whatever their order.
    wsx::proto::DeflateOptions deflate_options;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view flag = args[i];
        if (const auto r = wsx::apps::parse_tls_flag(args, i, tls, "wsx echo");
            r != wsx::apps::FlagResult::not_mine) {
            if (r == wsx::apps::FlagResult::bad) return usage();
            continue;
        }
        if (flag == "--deflate" || flag == "--no-deflate") {
            // RFC 7692 permessage-deflate, with every parameter a client may ask for.
            deflate = flag == "--deflate";
            continue;
        }
        if (flag == "--deflate-no-context-takeover") {
            // Both directions reset after each message: no window is kept between messages.
            deflate_options.server_no_context_takeover = true;
            deflate_options.client_no_context_takeover = true;
            continue;
        }
        if (flag == "--deflate-release-idle") {
            deflate_options.tuning.release_idle_streams = true;
            continue;
        }
        if (i + 1 == args.size()) {
            std::fprintf(stderr, "wsx echo: %s needs a value\n", args[i]);
            return usage();
        }
        const std::string_view value = args[++i];
        bool ok = true;
        if (const auto listen = parse_listen_flag(flag, value, options)) {
            ok = *listen;
        } else if (flag == "--static") {
            options.static_root = std::string(value);
        } else if (flag == "--max-message") {
            ok = parse_number(value, max_message) && max_message > 0;
        } else if (flag == "--backend") {
            ok = parse_backend(value, options.backend);
        } else if (flag == "--max-frame") {
            ok = parse_number(value, max_frame) && max_frame > 0;
        } else if (flag == "--auto-fragment") {
            ok = parse_number(value, options.session.connection.auto_fragment_size);
        } else if (flag == "--ping-interval") {
            unsigned ms = 0;
            ok = parse_number(value, ms);
            options.session.ping_interval = std::chrono::milliseconds(ms);
        } else if (flag == "--deflate-window-bits") {
            unsigned bits = 0;
            ok = parse_number(value, bits) && bits >= 8 && bits <= 15;
            deflate_options.server_max_window_bits = static_cast<std::uint8_t>(bits);
            deflate_options.client_max_window_bits = static_cast<std::uint8_t>(bits);
        } else if (flag == "--deflate-mem-level") {
            ok = parse_number(value, deflate_options.tuning.mem_level) &&
                 deflate_options.tuning.mem_level >= 1 && deflate_options.tuning.mem_level <= 9;
        } else if (flag == "--deflate-min-size") {
            if (value == "never") {
                deflate_options.tuning.min_compress_size = SIZE_MAX;
            } else {
                ok = parse_number(value, deflate_options.tuning.min_compress_size);
            }
        } else if (flag == "--handshake-timeout") {
            unsigned ms = 0;
            ok = parse_number(value, ms) && ms > 0;
            options.handshake_timeout = std::chrono::milliseconds(ms);
        } else {
            std::fprintf(stderr, "wsx echo: unknown option %s\n", args[i - 1]);
            return usage();
        }
        if (!ok) {
            std::fprintf(stderr, "wsx echo: bad value for %s: %s\n", args[i - 1], args[i]);
            return usage();
        }
    }
    if (!wsx::apps::apply_server_tls(tls, options, "wsx echo")) return 1;
    options.session.connection.max_message_size = max_message;
    options.session.connection.max_frame_size = max_frame != 0 ? max_frame : max_message;
    if (deflate) options.deflate = deflate_options;
    // An echo holds one message in its output: keep the hard cap above it.
    options.session.max_buffered_bytes = std::max<std::size_t>(
        options.session.max_buffered_bytes, 2 * max_message + options.session.high_watermark);

    // Before the server threads exist, so that they inherit the blocked stop signals.
    wsx::apps::block_serve_signals();

    EchoHandler handler;
    wsx::net::Server server(options, handler);
    if (const wsx::net::SysStatus started = server.start(); !started.ok()) {
        std::fprintf(stderr, "wsx echo: cannot start on %s:%u: %s\n", options.address.c_str(),
                     options.port, std::strerror(started.error));
        return 1;
    }
    std::fprintf(
        stderr, "wsx echo: listening on %s:%u (%u threads, %s, max message %llu bytes%s%s%s)\n",
        options.address.c_str(), server.port(), server.thread_count(),
        wsx::net::backend_name(options.backend), static_cast<unsigned long long>(max_message),
        options.static_root.empty() ? "" : ", static files from ", options.static_root.c_str(),
        options.tls ? ", TLS" : "");
    return wsx::apps::serve_until_signal(server, options.tls.has_value(), "wsx echo");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string_view command = argv[1];
    const std::span<char*> args(argv + 2, static_cast<std::size_t>(argc - 2));
    if (command == "--help" || command == "-h" || command == "help") {
        usage();
        return 0;
    }
    // connect and bench print their own help (their options live next to their parsing).
    if (command != "connect" && command != "bench" && wants_help(args)) {
        const char* help = command == "demo"              ? kDemoHelp
                           : command == "echo"            ? kEchoHelp
                           : command == "chat"            ? wsx::apps::chat_help()
                           : command == "autobahn-server" ? kAutobahnServerHelp
                           : command == "autobahn-client" ? kAutobahnClientHelp
                                                          : nullptr;
        if (help == nullptr) return usage();
        std::fputs(help, stdout);
        if (command == "echo") std::fputs(wsx::apps::kTlsServerFlagsHelp, stdout);
        return 0;
    }
    if (command == "demo") return args.empty() ? demo() : usage();
    if (command == "echo") return echo(args);
    if (command == "chat") return wsx::apps::chat_command(args);
    if (command == "connect") return wsx::apps::connect_command(args);
    if (command == "autobahn-server") return wsx::apps::autobahn_server_command(args);
    if (command == "autobahn-client") return wsx::apps::autobahn_client_command(args);
    if (command == "bench") return wsx::apps::bench_command(args);
    return usage();
}
