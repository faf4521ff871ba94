// wsx connect: a command-line WebSocket client.
//
// Each line of standard input (or each --send argument) goes out as one text message (or binary,
// with --binary); each message received is written to standard output, text as it is plus a
// newline, binary as hex. With --count N it closes with 1000 once N messages arrived.
// At the end of input it waits until nothing arrived for --linger milliseconds (the answers to
// the last lines are usually still on their way: a server may reply to a close before its
// application saw the messages ahead of it), then sends close 1000 and exits after the close
// handshake. So it works in pipelines and scripts as well as interactively. Progress and errors
// go to standard error.
//
// Exit status: 0 after a clean close with 1000, 1001 or no code; 1 when connecting failed or the
// connection ended otherwise; 2 for bad usage.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "net/client.hpp"
#include "net/reactor.hpp"
#include "proto/utf8.hpp"

namespace wsx::apps {

namespace {

using net::WsSession;

void print_connect_help(std::FILE* out) {
    std::fprintf(out,
                 "usage: wsx connect ws[s]://HOST[:PORT][/PATH] [options]\n"
                 "  sends each line of stdin as a message, prints each message received;\n"
                 "  at end of input, once nothing arrived for --linger ms, closes with 1000\n"
                 "  and exits after the close handshake\n"
                 "  --origin ORIGIN          send an Origin header\n"
                 "  --protocol NAME          offer a subprotocol (repeatable)\n"
                 "  --header 'NAME: VALUE'   add a request header (repeatable)\n"
                 "  --send TEXT              send TEXT instead of reading stdin (repeatable)\n"
                 "  --count N                close with 1000 once N messages arrived\n"
                 "  --binary                 send lines as binary messages\n"
                 "  --linger MS              quiet time before the close at end of input (500)\n"
                 "  --connect-timeout MS     TCP connect and handshake timeout (10000)\n"
                 "  --max-message BYTES      largest message accepted (16 MiB)\n"
                 "  --backend epoll|poll|kqueue\n"
                 "%s"
                 "  --quiet                  no progress messages on stderr\n"
                 "  --help                   this text\n",
                 kTlsClientFlagsHelp);
}

int connect_usage() {
    print_connect_help(stderr);
    return 2;
}

// Reads standard input on its own thread (a blocking read would stall the reactor, and a
// regular file cannot be registered with epoll) and hands complete lines to the reactor through
// a bounded queue: when the connection is slower than the input, the reader waits.
class StdinPump {
  public:
    static constexpr std::size_t kMaxQueuedBytes = 1024 * 1024;

    explicit StdinPump(net::Reactor& reactor) : reactor_(reactor) {
        if (::pipe(stop_pipe_) != 0) stop_pipe_[0] = stop_pipe_[1] = -1;
    }
    ~StdinPump() {
        stop();
        for (const int fd : stop_pipe_) {
            if (fd >= 0) ::close(fd);
        }
    }
    StdinPump(const StdinPump&) = delete;
    StdinPump& operator=(const StdinPump&) = delete;

    // `wake` runs on the reactor each time lines (or the end of input) are ready.
    void start(std::function<void()> wake) {
        wake_ = std::move(wake);
        thread_ = std::thread([this] { run(); });
    }

    void stop() {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        room_.notify_all();
        if (stop_pipe_[1] >= 0) {
            const char byte = 0;
            static_cast<void>(::write(stop_pipe_[1], &byte, 1));
        }
        if (thread_.joinable()) thread_.join();
    }

    // Reactor thread: the next line, if one is ready.
    bool pop(std::string& line) {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (lines_.empty()) return false;
        line = std::move(lines_.front());
        lines_.pop_front();
        queued_bytes_ -= line.size();
        room_.notify_one();
        return true;
    }
    // Reactor thread: true once input ended and every line was taken.
    bool finished() {
        const std::lock_guard<std::mutex> lock(mutex_);
        return at_eof_ && lines_.empty();
    }

  private:
    void run() {
        std::string partial;
        char buffer[64 * 1024];
        for (;;) {
            pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
            if (::poll(fds, stop_pipe_[0] >= 0 ? 2 : 1, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (fds[1].revents != 0) return;
            const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) break;
            partial.append(buffer, static_cast<std::size_t>(n));
            std::size_t start = 0;
            for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos;
                 start = nl + 1) {
                if (!push(partial.substr(start, nl - start))) return;
            }
            partial.erase(0, start);
        }
        // A last line without its newline is still a line.
        if (!partial.empty() && !push(std::move(partial))) return;
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            at_eof_ = true;
        }
        notify_reactor();
    }

    bool push(std::string line) {
        if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF input
        {
            std::unique_lock<std::mutex> lock(mutex_);
            room_.wait(lock, [&] { return stopping_ || queued_bytes_ < kMaxQueuedBytes; });
            if (stopping_) return false;
            queued_bytes_ += line.size();
            lines_.push_back(std::move(line));
        }
        notify_reactor();
        return true;
    }

    void notify_reactor() {
        // Coalesced: one wake-up task in flight at a time is enough to drain the queue.
        if (wake_pending_.exchange(true)) return;
        reactor_.post([this] {
            wake_pending_.store(false);
            wake_();
        });
    }

    net::Reactor& reactor_;
    std::function<void()> wake_;
    std::thread thread_;
    int stop_pipe_[2] = {-1, -1};
    std::mutex mutex_;
    std::condition_variable room_;
    std::deque<std::string> lines_;
    std::size_t queued_bytes_ = 0;
    bool at_eof_ = false;
    bool stopping_ = false;
    std::atomic<bool> wake_pending_{false};
};

class ConnectApp final : public net::SessionHandler {
  public:
    // `sends`, when not empty, replaces standard input; `count` (0: none) messages received end
    // the session.
    ConnectApp(net::Reactor& reactor, std::deque<std::string> sends, std::size_t count, bool binary,
               bool quiet, std::chrono::milliseconds linger)
        : reactor_(reactor),
          input_(reactor),
          sends_(std::move(sends)),
          use_sends_(!sends_.empty()),
          count_(count),
          binary_(binary),
          quiet_(quiet),
          linger_(linger) {
        linger_timer_.bind<&ConnectApp::on_linger>(this);
    }

    int exit_code() const noexcept { return exit_code_; }

    void on_failure(const net::ConnectError& error) {
        std::fprintf(stderr, "wsx connect: %s\n", error.message().c_str());
        exit_code_ = 1;
        reactor_.stop();
    }

    void on_open(WsSession& session) override {
        session_ = &session;
        if (!quiet_) {
            const std::string tls =
                session.tls() != nullptr ? " over " + std::string(session.tls()->version()) : "";
            std::fprintf(stderr, "wsx connect: connected to %s%s%s%s\n",
                         net::address_to_string(session.peer()).c_str(), tls.c_str(),
                         session.protocol().empty() ? "" : ", subprotocol ",
                         session.protocol().c_str());
        }
        if (use_sends_) {
            pump();
        } else {
            input_.start([this] { pump(); });
        }
    }

    void on_message(WsSession&, proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        if (linger_timer_.armed()) reactor_.arm(linger_timer_, linger_);
        if (opcode == proto::Opcode::text) {
            std::fwrite(payload.data(), 1, payload.size(), stdout);
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            std::string hex;
            hex.reserve(payload.size() * 2);
            for (const std::uint8_t byte : payload) {
                hex += kHex[byte >> 4];
                hex += kHex[byte & 0xF];
            }
            std::fwrite(hex.data(), 1, hex.size(), stdout);
        }
        std::fputc('\n', stdout);
        std::fflush(stdout);  // a pipeline sees each message as it arrives
        if (count_ != 0 && ++received_ == count_ && session_ != nullptr) {
            closing_ = true;
            linger_timer_.cancel();
            static_cast<void>(session_->close(proto::close_code::kNormal));
        }
    }

    void on_drain(WsSession&) override { pump(); }

    void on_close(WsSession&, const proto::CloseInfo& info) override {
        session_ = nullptr;
        linger_timer_.cancel();
        const bool normal = info.clean && (info.code == proto::close_code::kNormal ||
                                           info.code == proto::close_code::kGoingAway ||
                                           info.code == proto::close_code::kNoStatus);
        exit_code_ = normal ? 0 : 1;
        if (!quiet_ || !normal) {
            std::fprintf(stderr, "wsx connect: closed with %u%s%.*s%s\n", info.code,
                         info.reason.empty() ? "" : " \"", static_cast<int>(info.reason.size()),
                         info.reason.data(), info.reason.empty() ? "" : "\"");
        }
        if (info.error != proto::Error::none && info.error != proto::Error::abnormal_closure) {
            std::fprintf(stderr, "wsx connect: protocol error: %s\n",
                         proto::describe(info.error).data());
        }
        reactor_.stop();
    }

    // Ends the input thread before the session and the reactor go away.
    void shutdown() { input_.stop(); }

  private:
    // Sends queued lines while the session takes them; the session's buffered output is the
    // backpressure (on_drain calls back in when it fell low again).
    void pump() {
        if (session_ == nullptr || closing_) return;
        std::string line;
        while (!session_->above_high_watermark() && next_line(line)) {
            ++line_number_;
            const std::span<const std::uint8_t> bytes(
                reinterpret_cast<const std::uint8_t*>(line.data()), line.size());
            const net::SendStatus status =
                session_->send(binary_ ? proto::Opcode::binary : proto::Opcode::text, bytes);
            if (status == net::SendStatus::invalid) {
                std::fprintf(stderr, "wsx connect: line %zu is not valid UTF-8; not sent\n",
                             line_number_);
            } else if (status != net::SendStatus::ok) {
                return;  // the session is closing; on_close follows
            }
            if (session_ == nullptr) return;
        }
        // With --count the messages awaited, not the end of input, end the session.
        if (count_ == 0 && input_finished() && !linger_timer_.armed()) {
            closing_ = true;
            reactor_.arm(linger_timer_, linger_);
        }
    }

    bool next_line(std::string& line) {
        if (!use_sends_) return input_.pop(line);
        if (sends_.empty()) return false;
        line = std::move(sends_.front());
        sends_.pop_front();
        return true;
    }
    bool input_finished() { return use_sends_ ? sends_.empty() : input_.finished(); }

    void on_linger() {
        if (session_ != nullptr) static_cast<void>(session_->close(proto::close_code::kNormal));
    }

    net::Reactor& reactor_;
    StdinPump input_;
    std::deque<std::string> sends_;
    bool use_sends_;
    std::size_t count_;
    std::size_t received_ = 0;
    WsSession* session_ = nullptr;
    bool binary_;
    bool quiet_;
    std::chrono::milliseconds linger_;
    net::Timer linger_timer_;
    bool closing_ = false;  // input ended: the close follows the linger time
    std::size_t line_number_ = 0;
    int exit_code_ = 1;
};

bool parse_backend(std::string_view name, net::Backend& out) {
    for (const auto backend :
         {net::Backend::automatic, net::Backend::epoll, net::Backend::poll, net::Backend::kqueue}) {
        if (name == net::backend_name(backend)) {
            out = backend;
            return true;
        }
    }
    return false;
}

}  // namespace

int connect_command(std::span<char*> args) {
    net::ConnectRequest request;
    net::ClientOptions options;
    net::Backend backend = net::Backend::automatic;
    bool binary = false;
    bool quiet = false;
    std::deque<std::string> sends;
    std::size_t count = 0;
    std::chrono::milliseconds linger{500};
    TlsFlags tls;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (const FlagResult r = parse_tls_flag(args, i, tls, "wsx connect");
            r != FlagResult::not_mine) {
            if (r == FlagResult::bad) return connect_usage();
            continue;
        }
        if (arg == "--help" || arg == "-h") {
            print_connect_help(stdout);
            return 0;
        }
        if (arg == "--binary") {
            binary = true;
            continue;
        }
        if (arg == "--quiet") {
            quiet = true;
            continue;
        }
        if (!arg.starts_with("--")) {
            if (!request.url.empty()) {
                std::fprintf(stderr, "wsx connect: more than one URL\n");
                return connect_usage();
            }
            request.url = std::string(arg);
            continue;
        }
        if (i + 1 == args.size()) {
            std::fprintf(stderr, "wsx connect: %s needs a value\n", args[i]);
            return connect_usage();
        }
        const std::string_view value = args[++i];
        bool ok = true;
        if (arg == "--origin") {
            request.origin = std::string(value);
        } else if (arg == "--protocol") {
            request.protocols.emplace_back(value);
        } else if (arg == "--header") {
            const std::size_t colon = value.find(':');
            ok = colon != std::string_view::npos && colon > 0 &&
                 value.find_first_of("\r\n") == std::string_view::npos;
            if (ok) {
                std::string_view field = value.substr(colon + 1);
                while (!field.empty() && (field.front() == ' ' || field.front() == '\t'))
                    field.remove_prefix(1);
                request.headers.emplace_back(value.substr(0, colon), field);
            }
        } else if (arg == "--send") {
            sends.emplace_back(value);
        } else if (arg == "--count") {
            ok = parse_number(value, count) && count > 0;
        } else if (arg == "--connect-timeout") {
            unsigned ms = 0;
            ok = parse_number(value, ms) && ms > 0;
            options.connect_timeout = options.handshake_timeout = std::chrono::milliseconds(ms);
        } else if (arg == "--linger") {
            unsigned ms = 0;
            ok = parse_number(value, ms);
            linger = std::chrono::milliseconds(ms);
        } else if (arg == "--max-message") {
            std::uint64_t bytes = 0;
            ok = parse_number(value, bytes) && bytes > 0;
            options.session.connection.max_message_size = bytes;
            options.session.connection.max_frame_size = bytes;
        } else if (arg == "--backend") {
            ok = parse_backend(value, backend);
        } else {
            std::fprintf(stderr, "wsx connect: unknown option %s\n", args[i - 1]);
            return connect_usage();
        }
        if (!ok) {
            std::fprintf(stderr, "wsx connect: bad value for %s: %s\n", args[i - 1], args[i]);
            return connect_usage();
        }
    }
    if (request.url.empty()) return connect_usage();
    apply_client_tls(tls, options);

    net::SysResult<std::unique_ptr<net::Reactor>> created = net::Reactor::create(backend);
    if (!created.ok()) {
        std::fprintf(stderr, "wsx connect: no reactor: %s\n", std::strerror(created.error));
        return 1;
    }
    net::Reactor& reactor = *created.value;
    ConnectApp app(reactor, std::move(sends), count, binary, quiet, linger);
    {
        net::Client client(reactor, options);
        client.connect(std::move(request), app,
                       [&app](const net::ConnectError& error) { app.on_failure(error); });
        if (const net::SysStatus ran = reactor.run(); !ran.ok()) {
            std::fprintf(stderr, "wsx connect: reactor failed: %s\n", std::strerror(ran.error));
            app.shutdown();
            return 1;
        }
        app.shutdown();
    }
    return app.exit_code();
}

}  // namespace wsx::apps
