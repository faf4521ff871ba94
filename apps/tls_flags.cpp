// The TLS flags of apps/commands.hpp.
#include <cstdio>
#include <string>

#include "commands.hpp"
#include "net/client.hpp"
#include "net/server.hpp"

namespace wsx::apps {

FlagResult parse_tls_flag(std::span<char*> args, std::size_t& i, TlsFlags& flags,
                          const char* command) {
    const std::string_view flag = args[i];
    if (flag == "--insecure") {
        flags.client.insecure = true;
        return FlagResult::taken;
    }
    if (flag != "--tls-cert" && flag != "--tls-key" && flag != "--tls-sni" && flag != "--ca") {
        return FlagResult::not_mine;
    }
    if (i + 1 == args.size()) {
        std::fprintf(stderr, "%s: %s needs a value\n", command, args[i]);
        return FlagResult::bad;
    }
    const std::string value = args[++i];
    if (flag == "--tls-cert") {
        flags.server.cert_file = value;
    } else if (flag == "--tls-key") {
        flags.server.key_file = value;
    } else if (flag == "--ca") {
        flags.client.ca_file = value;
    } else {
        const std::size_t first = value.find(':');
        const std::size_t second = first == std::string::npos ? first : value.find(':', first + 1);
        if (first == 0 || second == std::string::npos || second == first + 1 ||
            second + 1 == value.size() || value.find(':', second + 1) != std::string::npos) {
            std::fprintf(stderr, "%s: --tls-sni wants HOST:CERT:KEY, got %s\n", command,
                         value.c_str());
            return FlagResult::bad;
        }
        flags.server.sni.push_back({value.substr(0, first),
                                    value.substr(first + 1, second - first - 1),
                                    value.substr(second + 1)});
    }
    return FlagResult::taken;
}

bool apply_server_tls(const TlsFlags& flags, net::ServerOptions& options, const char* command) {
    if (!flags.server_requested()) return true;
    const net::TlsContextResult loaded = net::make_server_context(flags.server);
    if (!loaded.ok()) {
        std::fprintf(stderr, "%s: %s\n", command, loaded.error.c_str());
        return false;
    }
    options.tls = flags.server;
    options.tls->on_handshake_error = [command](std::string_view peer, std::string_view reason) {
        std::fprintf(stderr, "%s: TLS handshake with %.*s failed: %.*s\n", command,
                     static_cast<int>(peer.size()), peer.data(), static_cast<int>(reason.size()),
                     reason.data());
    };
    return true;
}

void apply_client_tls(const TlsFlags& flags, net::ClientOptions& options) {
    options.tls.ca_file = flags.client.ca_file;
    options.tls.insecure = flags.client.insecure;
}

}  // namespace wsx::apps
