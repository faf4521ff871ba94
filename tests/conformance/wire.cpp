// The conformance scenarios over real sockets: linked into the conformance_wire_* programs, it
// installs a WireRunner (peer.hpp) that replays every server-role scenario over loopback TCP
// against the `wsx echo` binary, once per reactor backend (epoll, poll), and checks the exact
// bytes the server writes and that it closes the TCP connection when the scenario closes.
//
// Each distinct server configuration (backend, limits, auto-fragmentation, deflate) is one `wsx
// echo` process on 127.0.0.1 with a kernel-chosen port, started on first use, killed by an alarm
// after kServerLifetime at the latest, and stopped by its pid (SIGTERM, then SIGKILL) when the
// program ends. Per scenario and backend two connections:
//   - the peer's whole input in one write (frames after a close included);
//   - the input in random chops of up to 1,500 bytes, one write each; when the scenario names
//     the byte at which the connection must fail, only the input up to that byte is sent, so the
//     close frame must come without the rest (fail fast, CONFORMANCE.md §6).
// A scenario that ends open is followed by the peer's close 1000, which the server must echo.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "peer.hpp"
#include "proto/deflate.hpp"

#ifndef WSX_ECHO_PATH
#error "build with -DWSX_ECHO_PATH=\"path/to/wsx\""
#endif

namespace wsx::conformance {
namespace {

using namespace std::chrono_literals;

constexpr unsigned kServerLifetime = 280;  // seconds; a server outliving its test is killed
constexpr auto kIoDeadline = 20s;          // per connection
constexpr std::size_t kMaxChop = 1500;

const char* const kBackends[] = {"epoll", "poll"};

// The `wsx echo` flags that give a server the scenario's ConnectionOptions; false when no flag
// can (an RSV bit claimed by an extension wsx does not implement, auto-pong off, ...).
bool flags_for(const ConnectionOptions& o, std::vector<std::string>& flags) {
    const ConnectionOptions defaults;
    if (o.extension_rsv_bits != 0 || o.auto_pong != defaults.auto_pong ||
        o.validate_outgoing_utf8 != defaults.validate_outgoing_utf8) {
        return false;
    }
    flags = {"--max-message", std::to_string(o.max_message_size), "--max-frame",
             std::to_string(o.max_frame_size)};
    if (o.auto_fragment_size != 0) {
        flags.insert(flags.end(), {"--auto-fragment", std::to_string(o.auto_fragment_size)});
    }
    if (o.deflate) {
        const proto::DeflateTuning& t = o.deflate->tuning;
        const proto::DeflateTuning tuning_defaults;
        if (t.compression_level != tuning_defaults.compression_level ||
            t.mem_level != tuning_defaults.mem_level || t.allocator.allocate != nullptr) {
            return false;
        }
        flags.emplace_back("--deflate");
        flags.insert(flags.end(),
                     {"--deflate-min-size", t.min_compress_size == SIZE_MAX
                                                ? std::string("never")
                                                : std::to_string(t.min_compress_size)});
        if (t.release_idle_streams) flags.emplace_back("--deflate-release-idle");
    }
    return true;
}

struct EchoServer {
    pid_t pid = -1;
    std::uint16_t port = 0;
};

class Servers {
  public:
    ~Servers() {
        for (auto& [key, server] : servers_)
            stop(server);
    }

    // The server for these flags, started on first use; port 0 when it failed to start.
    const EchoServer& get(const std::vector<std::string>& flags) {
        std::string key;
        for (const auto& f : flags)
            key += f + " ";
        auto it = servers_.find(key);
        if (it == servers_.end()) it = servers_.emplace(key, start(flags)).first;
        return it->second;
    }

  private:
    static EchoServer start(const std::vector<std::string>& flags) {
        EchoServer server;
        char log_path[] = "/tmp/wsx-wire-echo-XXXXXX";
        const int log_fd = mkstemp(log_path);
        REQUIRE(log_fd >= 0);
        std::vector<std::string> args = {WSX_ECHO_PATH, "echo", "--address", "127.0.0.1",
                                         "--port",      "0",    "--threads", "1"};
        args.insert(args.end(), flags.begin(), flags.end());
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // Never outlive the test program, nor kServerLifetime (alarms survive exec).
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            alarm(kServerLifetime);
            dup2(log_fd, STDERR_FILENO);
            execv(argv[0], argv.data());
            _exit(127);
        }
        close(log_fd);
        server.pid = pid;
        // wsx echo prints "listening on 127.0.0.1:PORT" once the listener is bound.
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (server.port == 0 && std::chrono::steady_clock::now() < deadline) {
            std::ifstream log(log_path);
            std::stringstream text;
            text << log.rdbuf();
            const std::string s = text.str();
            const auto at = s.find("listening on 127.0.0.1:");
            if (at != std::string::npos) {
                server.port = static_cast<std::uint16_t>(std::strtoul(
                    s.c_str() + at + std::strlen("listening on 127.0.0.1:"), nullptr, 10));
                break;
            }
            if (waitpid(pid, nullptr, WNOHANG) == pid) {
                server.pid = -1;
                FAIL_CHECK("wsx echo exited at start: " << s);
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        unlink(log_path);
        return server;
    }

    static void stop(EchoServer& server) {
        if (server.pid <= 0) return;
        kill(server.pid, SIGTERM);
        for (int i = 0; i < 500; ++i) {
            if (waitpid(server.pid, nullptr, WNOHANG) == server.pid) return;
            std::this_thread::sleep_for(10ms);
        }
        kill(server.pid, SIGKILL);
        waitpid(server.pid, nullptr, 0);
    }

    std::map<std::string, EchoServer> servers_;
};

Servers& servers() {
    static Servers s;
    return s;
}

std::string offer_for(const proto::DeflateParams& p) {
    std::string offer = "permessage-deflate";
    if (p.server_no_context_takeover) offer += "; server_no_context_takeover";
    if (p.client_no_context_takeover) offer += "; client_no_context_takeover";
    if (p.server_max_window_bits != proto::kMaxWindowBits) {
        offer += "; server_max_window_bits=" + std::to_string(p.server_max_window_bits);
    }
    if (p.client_max_window_bits_offered || p.client_max_window_bits != proto::kMaxWindowBits) {
        offer += "; client_max_window_bits=" + std::to_string(p.client_max_window_bits);
    }
    return offer;
}

std::string lower(std::string s) {
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

struct Exchange {
    Bytes output;      // what the server wrote after its 101 response
    bool eof = false;  // the server closed its end of TCP
    bool reset = false;
    bool timed_out = false;
};

int connect_to(std::uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Opening handshake (RFC 6455 §4.1, the §1.3 example key); checks the 101 and the extension the
// server agreed to. Returns the bytes after the response head.
Bytes handshake(int fd, const ConnectionOptions& options) {
    std::string request =
        "GET /conformance HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n";
    if (options.deflate) {
        request += "Sec-WebSocket-Extensions: " + offer_for(options.deflate->params) + "\r\n";
    }
    request += "\r\n";
    REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
    std::string response;
    const auto deadline = std::chrono::steady_clock::now() + kIoDeadline;
    std::size_t head_end = std::string::npos;
    while ((head_end = response.find("\r\n\r\n")) == std::string::npos) {
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        pollfd p{fd, POLLIN, 0};
        poll(&p, 1, 1000);
        char buf[4096];
        const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) FAIL("the server closed during the handshake: " << response);
        if (n > 0) response.append(buf, static_cast<std::size_t>(n));
    }
    const std::string head = response.substr(0, head_end + 2);  // with the last CRLF
    CAPTURE(head);
    REQUIRE(head.rfind("HTTP/1.1 101 ", 0) == 0);
    REQUIRE(head.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") !=
            std::string::npos);
    const std::string head_lower = lower(head);
    if (options.deflate) {
        // Exactly the parameters the in-memory scenario runs with (RFC 7692 §7.1).
        const std::string want =
            lower("\r\nsec-websocket-extensions: " +
                  proto::write_deflate_response(options.deflate->params) + "\r\n");
        REQUIRE(head_lower.find(want) != std::string::npos);
    } else {
        REQUIRE(head_lower.find("sec-websocket-extensions") == std::string::npos);
    }
    return Bytes(response.begin() + static_cast<std::ptrdiff_t>(head_end + 4), response.end());
}

// Writes `input` in the given chunks while reading everything the server sends, until the
// server closes its end (or the deadline passes).
Exchange exchange(int fd, std::span<const std::uint8_t> input,
                  const std::vector<std::size_t>& chunks, Bytes early) {
    Exchange ex;
    ex.output = std::move(early);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::size_t chunk = 0;
    std::size_t chunk_done = 0;  // bytes of the current chunk written
    std::size_t at = 0;
    bool writing = !input.empty();
    const auto deadline = std::chrono::steady_clock::now() + kIoDeadline;
    while (!ex.eof && !ex.reset) {
        if (std::chrono::steady_clock::now() > deadline) {
            ex.timed_out = true;
            break;
        }
        pollfd p{fd, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0};
        if (poll(&p, 1, 200) < 0 && errno != EINTR) break;
        if (writing && (p.revents & POLLOUT) != 0) {
            const std::size_t want = chunks[chunk] - chunk_done;
            const ssize_t n = send(fd, input.data() + at, want, MSG_NOSIGNAL);
            if (n > 0) {
                at += static_cast<std::size_t>(n);
                chunk_done += static_cast<std::size_t>(n);
                if (chunk_done == chunks[chunk]) {
                    ++chunk;
                    chunk_done = 0;
                    writing = chunk < chunks.size();
                }
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                writing = false;  // the server closed after failing the connection: expected
            }
        }
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            std::uint8_t buf[65536];
            const ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                ex.output.insert(ex.output.end(), buf, buf + n);
            } else if (n == 0) {
                ex.eof = true;
            } else if (errno == ECONNRESET) {
                ex.reset = true;
            }
        }
    }
    return ex;
}

std::size_t g_replayed = 0;
std::size_t g_unsupported = 0;

void replay(const WireScenario& w) {
    std::vector<std::string> flags;
    if (!flags_for(w.options, flags)) {
        ++g_unsupported;
        return;
    }
    ++g_replayed;
    // A scenario that stays open ends with the peer's close 1000, echoed (RFC 6455 §5.5.1).
    Bytes full(w.input.begin(), w.input.end());
    std::vector<ExpectedFrame> expected(w.output.begin(), w.output.end());
    if (!w.closes) {
        RawFrame close = frame_of(op::kClose, close_payload(1000));
        close.mask = MaskKey{0x11, 0x22, 0x33, 0x44};
        append_encoded(full, close);
        expected.push_back({op::kClose, close_payload(1000)});
    }
    const std::size_t prefix = w.fail_at ? std::min(*w.fail_at + 1, full.size()) : full.size();

    for (const std::string backend : kBackends) {
        CAPTURE(backend);
        std::vector<std::string> server_flags = flags;
        server_flags.insert(server_flags.end(), {"--backend", backend});
        const EchoServer& server = servers().get(server_flags);
        REQUIRE(server.port != 0);
        for (const bool chopped : {false, true}) {
            const std::string feeding = chopped ? "random chops up to 1500 bytes" : "one write";
            CAPTURE(feeding);
            const std::span<const std::uint8_t> input =
                chopped ? std::span<const std::uint8_t>(full).first(prefix)
                        : std::span<const std::uint8_t>(full);
            const std::vector<std::size_t> chunks =
                chopped ? Feeding::random(static_cast<std::uint32_t>(input.size()), kMaxChop)
                              .chunks(input.size())
                        : Feeding::whole().chunks(input.size());
            const int fd = connect_to(server.port);
            Bytes early = handshake(fd, w.options);
            const Exchange ex = exchange(fd, input, chunks, std::move(early));
            close(fd);
            CHECK_FALSE(ex.timed_out);
            CHECK_FALSE(ex.reset);
            CHECK(ex.eof);  // §7.1.1: the server closes the TCP connection first
            check_output(Role::server, ex.output, expected);
        }
    }
}

// Installed before main() runs the tests; reports what was replayed when the program ends.
struct Install {
    Install() { wire_runner() = &replay; }
    ~Install() {
        std::fprintf(stderr,
                     "wire: %zu server scenarios replayed over TCP on %zu backends, %zu "
                     "with options no wsx echo flag sets (in memory only)\n",
                     g_replayed, std::size(kBackends), g_unsupported);
    }
} g_install;

}  // namespace
}  // namespace wsx::conformance
