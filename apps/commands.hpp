// Entry points of the wsx subcommands that live in their own files, and the small argument
// helpers they share. Each takes the arguments after the command name and returns the exit code.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "net/tls.hpp"

namespace wsx::net {
class Server;
struct ServerOptions;
struct ClientOptions;
}  // namespace wsx::net

namespace wsx::apps {

// wsx connect URL [options]: stdin lines out as messages, messages in to stdout.
int connect_command(std::span<char*> args);
// wsx autobahn-server: the echo testee for the Autobahn fuzzingclient.
int autobahn_server_command(std::span<char*> args);
// wsx autobahn-client: the testee for the Autobahn fuzzingserver.
int autobahn_client_command(std::span<char*> args);
// wsx chat: the chat room server (page, JSON chat protocol over the hub, echo, metrics).
int chat_command(std::span<char*> args);
const char* chat_help();

// Serving commands: block_serve_signals() before the server starts its threads (they inherit the
// mask), so SIGINT, SIGTERM and SIGHUP reach only serve_until_signal(), which takes them
// synchronously: SIGHUP reloads the TLS certificates (when `tls`), SIGINT/SIGTERM stop the
// server gracefully (close 1001 to every connection). Returns the exit status.
void block_serve_signals();
int serve_until_signal(net::Server& server, bool tls, const char* command);

// ---- TLS flags, shared by every command that serves or connects (two lines to add TLS):
//   if (auto r = parse_tls_flag(args, i, tls, "wsx x"); r != FlagResult::not_mine) {
//       if (r == FlagResult::bad) return usage(); continue; }
//   ... if (!apply_server_tls(tls, options, "wsx x")) return 1;   // or apply_client_tls

// What the TLS flags asked for.
struct TlsFlags {
    net::TlsServerOptions server;  // --tls-cert, --tls-key, --tls-sni
    net::TlsClientOptions client;  // --ca, --insecure

    bool server_requested() const noexcept {
        return !server.cert_file.empty() || !server.key_file.empty() || !server.sni.empty();
    }
};

enum class FlagResult : std::uint8_t {
    not_mine,  // not a TLS flag: the command parses it
    taken,     // a TLS flag (and its value: `i` now points at the value)
    bad,       // a TLS flag with a missing or malformed value (the reason is printed)
};

// Looks at args[i]: --tls-cert FILE, --tls-key FILE, --tls-sni HOST:CERT:KEY (repeatable),
// --ca FILE, --insecure.
FlagResult parse_tls_flag(std::span<char*> args, std::size_t& i, TlsFlags& flags,
                          const char* command);

// Server: when TLS was asked for, checks that every certificate and key loads (printing
// OpenSSL's reason if not) and sets options.tls, with failed handshakes logged to stderr.
bool apply_server_tls(const TlsFlags& flags, net::ServerOptions& options, const char* command);
// Client: the trust settings every wss:// connection of the command uses.
void apply_client_tls(const TlsFlags& flags, net::ClientOptions& options);

inline constexpr const char* kTlsServerFlagsHelp =
    "  --tls-cert FILE          serve wss:// with this PEM certificate chain (leaf first)\n"
    "  --tls-key FILE           ... and this PEM private key (SIGHUP reloads both)\n"
    "  --tls-sni HOST:CERT:KEY  another certificate for SNI name HOST (repeatable)\n";
inline constexpr const char* kTlsClientFlagsHelp =
    "  --ca FILE                trust the CA certificates in FILE (PEM) for wss://\n"
    "                           instead of the system's trust store\n"
    "  --insecure               do not verify the server's certificate (testing only)\n";

// --port N, --address ADDR, --threads N, --max-connections N: the listening flags of every
// serving command. nullopt: `flag` is none of them; otherwise whether `value` parsed.
std::optional<bool> parse_listen_flag(std::string_view flag, std::string_view value,
                                      net::ServerOptions& options);

// wsx bench URL [options]: the load generator (echo round trips, handshakes, idle connections).
int bench_command(std::span<char*> args);

// The whole of `text` as a decimal number of type T.
template <typename T>
bool parse_number(std::string_view text, T& out) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size();
}

}  // namespace wsx::apps
