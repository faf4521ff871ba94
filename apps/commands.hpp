// Entry points of the wsx subcommands that live in their own files, and the small argument
// helpers they share. Each takes the arguments after the command name and returns the exit code.
#pragma once

#include <charconv>
#include <span>
#include <string_view>

namespace wsx::apps {

// wsx connect URL [options]: stdin lines out as messages, messages in to stdout.
int connect_command(std::span<char*> args);
// wsx autobahn-server: the echo testee for the Autobahn fuzzingclient.
int autobahn_server_command(std::span<char*> args);
// wsx autobahn-client: the testee for the Autobahn fuzzingserver.
int autobahn_client_command(std::span<char*> args);
// wsx bench URL [options]: the load generator (echo round trips, handshakes, idle connections).
int bench_command(std::span<char*> args);

// The whole of `text` as a decimal number of type T.
template <typename T>
bool parse_number(std::string_view text, T& out) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size();
}

}  // namespace wsx::apps
