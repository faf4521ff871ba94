// The Autobahn|Testsuite testees (CONFORMANCE.md).
//
// wsx autobahn-server: an echo server for the suite's fuzzingclient mode: every path upgrades,
// text and binary come back exactly, messages up to 64 MiB by default (the suite's largest is
// 16 MiB), no pings of our own, any Origin.
//
// wsx autobahn-client: the testee for the fuzzingserver mode. It follows the suite's protocol:
// GET /getCaseCount (the count arrives as one text message), then for each case N a connection
// to /runCase?case=N&agent=NAME that echoes until the suite closes it, then
// /updateReports?agent=NAME so the suite writes its reports. One connection at a time.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "commands.hpp"
#include "net/client.hpp"
#include "net/reactor.hpp"
#include "net/server.hpp"
#include "net/url.hpp"

namespace wsx::apps {

namespace {

using net::WsSession;

constexpr std::uint64_t kDefaultMaxMessage = 64 * 1024 * 1024;

// Session settings for a testee: big messages, no heartbeat or idle close of our own (the suite
// times its cases itself), room in the output for an echo of the largest message.
void configure_testee_session(net::SessionOptions& session, std::uint64_t max_message) {
    session.connection.max_message_size = max_message;
    session.connection.max_frame_size = max_message;
    session.ping_interval = std::chrono::milliseconds(0);
    session.idle_timeout = std::chrono::milliseconds(0);
    session.write_wait = std::chrono::milliseconds(60'000);
    session.max_buffered_bytes =
        std::max<std::size_t>(session.max_buffered_bytes, 2 * max_message + session.high_watermark);
}

class Echo final : public net::SessionHandler {
  public:
    void on_message(WsSession& session, proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        static_cast<void>(session.send(opcode, payload));
    }
};

int server_usage() {
    std::fprintf(
        stderr,
        "usage: wsx autobahn-server [--port 9001] [--address 127.0.0.1] [--threads 1]\n"
        "                           [--max-connections N] [--max-message BYTES (64 MiB)]\n");
    return 2;
}

int client_usage() {
    std::fprintf(stderr,
                 "usage: wsx autobahn-client [--url ws://127.0.0.1:9001] [--agent wsx]\n"
                 "                           [--max-message BYTES (64 MiB)]\n");
    return 2;
}

// RFC 3986 §2.3: everything but unreserved characters is percent-encoded in the query value.
std::string percent_encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += kHex[byte >> 4];
            out += kHex[byte & 0xF];
        }
    }
    return out;
}

// Drives the fuzzingserver protocol, one connection after the other, on one reactor.
class SuiteDriver final : public net::SessionHandler {
  public:
    SuiteDriver(net::Client& client, std::string base, std::string agent)
        : client_(client), base_(std::move(base)), agent_(percent_encode(agent)) {}

    void start() { next(); }
    int exit_code() const noexcept { return failed_ ? 1 : 0; }

    void on_message(WsSession& session, proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        if (step_ == Step::count) {
            const std::string_view text(reinterpret_cast<const char*>(payload.data()),
                                        payload.size());
            if (opcode != proto::Opcode::text || !parse_number(text, case_count_)) {
                std::fprintf(stderr, "wsx autobahn-client: getCaseCount sent \"%.*s\"\n",
                             static_cast<int>(std::min<std::size_t>(text.size(), 80)), text.data());
                failed_ = true;
            }
            return;
        }
        if (step_ == Step::cases) static_cast<void>(session.send(opcode, payload));
    }

    void on_close(WsSession&, const proto::CloseInfo& info) override {
        if (step_ == Step::cases) {
            std::fprintf(stderr, "wsx autobahn-client: case %u/%u closed with %u%s\n",
                         current_case_, case_count_, info.code, info.clean ? "" : " (not clean)");
        }
        // The next connection starts from the loop, after this session is gone.
        client_.reactor().post([this] { next(); });
    }

  private:
    enum class Step : std::uint8_t { start, count, cases, report, done };

    void next() {
        switch (step_) {
            case Step::start:
                step_ = Step::count;
                open("/getCaseCount");
                return;
            case Step::count:
                if (failed_) {
                    finish();
                    return;
                }
                std::fprintf(stderr, "wsx autobahn-client: %u cases\n", case_count_);
                step_ = Step::cases;
                [[fallthrough]];
            case Step::cases:
                if (current_case_ < case_count_) {
                    ++current_case_;
                    open("/runCase?case=" + std::to_string(current_case_) + "&agent=" + agent_);
                    return;
                }
                step_ = Step::report;
                open("/updateReports?agent=" + agent_);
                return;
            case Step::report:
                std::fprintf(stderr, "wsx autobahn-client: reports updated\n");
                finish();
                return;
            case Step::done:
                return;
        }
    }

    void open(const std::string& target) {
        client_.connect({.url = base_ + target}, *this, [this](const net::ConnectError& error) {
            std::fprintf(stderr, "wsx autobahn-client: %s\n", error.message().c_str());
            failed_ = true;
            // Without the count or the report there is nothing to go on with; a case that could
            // not connect is the suite's to judge, so the next one follows.
            if (step_ == Step::cases) {
                next();
            } else {
                finish();
            }
        });
    }

    void finish() {
        step_ = Step::done;
        client_.reactor().stop();
    }

    net::Client& client_;
    std::string base_;
    std::string agent_;
    Step step_ = Step::start;
    unsigned case_count_ = 0;
    unsigned current_case_ = 0;
    bool failed_ = false;
};

}  // namespace

int autobahn_server_command(std::span<char*> args) {
    net::ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 9001;
    options.threads = 1;
    options.websocket_paths = {"*"};
    options.handshake.origin = proto::OriginPolicy::allow_any();
    std::uint64_t max_message = kDefaultMaxMessage;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view flag = args[i];
        if (i + 1 == args.size()) {
            std::fprintf(stderr, "wsx autobahn-server: %s needs a value\n", args[i]);
            return server_usage();
        }
        const std::string_view value = args[++i];
        bool ok = true;
        if (const auto listen = parse_listen_flag(flag, value, options)) {
            ok = *listen;
        } else if (flag == "--max-message") {
            ok = parse_number(value, max_message) && max_message > 0;
        } else {
            std::fprintf(stderr, "wsx autobahn-server: unknown option %s\n", args[i - 1]);
            return server_usage();
        }
        if (!ok) {
            std::fprintf(stderr, "wsx autobahn-server: bad value for %s: %s\n", args[i - 1],
                         args[i]);
            return server_usage();
        }
    }
    configure_testee_session(options.session, max_message);
    // Autobahn's cases 12 and 13 exercise permessage-deflate (RFC 7692).
    options.deflate.emplace();

    // The stop signals are taken synchronously by this thread; the server threads inherit the
    // blocked mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    Echo echo;
    net::Server server(options, echo);
    if (const net::SysStatus started = server.start(); !started.ok()) {
        std::fprintf(stderr, "wsx autobahn-server: cannot start on %s:%u: %s\n",
                     options.address.c_str(), options.port, std::strerror(started.error));
        return 1;
    }
    std::fprintf(stderr, "wsx autobahn-server: listening on %s:%u (max message %llu bytes)\n",
                 options.address.c_str(), server.port(),
                 static_cast<unsigned long long>(max_message));
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    server.stop();
    server.wait();
    return 0;
}

int autobahn_client_command(std::span<char*> args) {
    std::string url = "ws://127.0.0.1:9001";
    std::string agent = "wsx";
    std::uint64_t max_message = kDefaultMaxMessage;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view flag = args[i];
        if (i + 1 == args.size()) {
            std::fprintf(stderr, "wsx autobahn-client: %s needs a value\n", args[i]);
            return client_usage();
        }
        const std::string_view value = args[++i];
        bool ok = true;
        if (flag == "--url") {
            url = std::string(value);
        } else if (flag == "--agent") {
            agent = std::string(value);
            ok = !agent.empty();
        } else if (flag == "--max-message") {
            ok = parse_number(value, max_message) && max_message > 0;
        } else {
            std::fprintf(stderr, "wsx autobahn-client: unknown option %s\n", args[i - 1]);
            return client_usage();
        }
        if (!ok) {
            std::fprintf(stderr, "wsx autobahn-client: bad value for %s: %s\n", args[i - 1],
                         args[i]);
            return client_usage();
        }
    }
    const net::UrlParseResult parsed = net::parse_url(url);
    if (!parsed.ok()) {
        std::fprintf(stderr, "wsx autobahn-client: invalid URL \"%s\": %.*s\n", url.c_str(),
                     static_cast<int>(parsed.error.size()), parsed.error.data());
        return 2;
    }
    // The suite's paths go after the URL's own path (usually none).
    std::string base = parsed.url.to_string();
    const std::size_t query = base.find('?');
    if (query != std::string::npos) base.erase(query);
    while (!base.empty() && base.back() == '/')
        base.pop_back();

    net::SysResult<std::unique_ptr<net::Reactor>> created = net::Reactor::create();
    if (!created.ok()) {
        std::fprintf(stderr, "wsx autobahn-client: no reactor: %s\n", std::strerror(created.error));
        return 1;
    }
    net::ClientOptions options;
    configure_testee_session(options.session, max_message);
    // Offered on every case; the fuzzingserver's cases 12 and 13 accept it (RFC 7692).
    options.deflate.emplace();
    net::Client client(*created.value, options);
    SuiteDriver driver(client, base, agent);
    driver.start();
    const net::SysStatus ran = created.value->run();
    // Sessions still open (only after a reactor failure) end here, while the driver exists.
    client.host().abort_all();
    if (!ran.ok()) {
        std::fprintf(stderr, "wsx autobahn-client: reactor failed: %s\n", std::strerror(ran.error));
        return 1;
    }
    return driver.exit_code();
}

}  // namespace wsx::apps
