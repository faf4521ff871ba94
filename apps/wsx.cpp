// The wsx command. For now: `wsx demo`, a tour of the sans-IO engine — a client and a server
// endpoint wired together through memory, printing what crosses between them.
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

int usage() {
    std::fprintf(stderr,
                 "usage: wsx <command>\n"
                 "  demo     a tour of the engine: handshake, frames, errors, close\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const std::string_view command = argv[1];
    if (command == "demo") return demo();
    return usage();
}
