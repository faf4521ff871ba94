#include "net/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include "net/client.hpp"
#include "net/heap.hpp"
#include "net/http_static.hpp"
#include "net/socket.hpp"
#include "net/tls.hpp"

namespace wsx::net {

namespace {

// Accepts per readiness event: others' I/O gets its turn between batches.
constexpr int kAcceptBatch = 64;
// After EMFILE and kin the listener rests this long instead of spinning on a pending connection
// it cannot take.
constexpr std::chrono::milliseconds kAcceptPause{100};
// From the last session's end to returning free heap pages (one trim per burst, not per close).
constexpr std::chrono::milliseconds kTrimDelay{200};

class Worker;

HttpResponse refusal_response(proto::Error error) {
    HttpResponse response;
    const int status = proto::http_status_for(error);
    response.status = status == 0 ? 400 : status;
    response.head = proto::write_error_response(error);
    return response;
}

HttpResponse text_response(int status, bool head_only = false) {
    std::string body(http_reason_phrase(status));
    body.push_back('\n');
    return make_http_response(status, "text/plain; charset=utf-8", body, head_only);
}

// One connection in its HTTP phase: reads the request, then either hands the socket to a
// WsSession or writes a plain HTTP answer and closes.
class HttpConnection final : public IoHandler {
  public:
    HttpConnection(Worker& worker, int fd, SocketAddress peer);
    ~HttpConnection() override;
    HttpConnection(const HttpConnection&) = delete;
    HttpConnection& operator=(const HttpConnection&) = delete;

    bool start();

  private:
    enum class Phase : std::uint8_t { reading, writing, lingering };

    void on_readable(int fd) override;
    void on_writable(int fd) override;
    void on_error(int fd, int error) override;
    void on_timer();

    void read_request();
    bool read_plain(std::size_t limit);
    bool read_tls(std::size_t limit);
    bool flush_tls_output();
    void tls_failed(std::string_view reason);
    void route(proto::Error refusal);
    void upgrade();
    void respond(HttpResponse response);
    void write_response();
    void write_response_tls();
    void linger();
    bool set_interest(Interest interest);
    void finish();  // deletes this

    Worker& worker_;
    int fd_;
    SocketAddress peer_;
    std::unique_ptr<TlsStream> tls_;  // with ServerOptions::tls; handed on to the session
    std::string in_;
    proto::ServerHandshake handshake_;
    Phase phase_ = Phase::reading;
    HttpResponse response_;
    std::size_t head_sent_ = 0;
    std::uint64_t file_sent_ = 0;
    Timer timer_;
};

// Hands an accepted fd to another worker; closes it if that worker never runs it.
class HandOff final : public Task {
  public:
    HandOff(Worker& worker, int fd, SocketAddress peer) : worker_(worker), fd_(fd), peer_(peer) {}
    void run() override;
    void discard() noexcept override {
        static_cast<void>(close_fd(fd_));
        delete this;
    }

  private:
    Worker& worker_;
    int fd_;
    SocketAddress peer_;
};

}  // namespace

struct Server::Impl {
    ServerOptions options;
    SessionHandler& handler;
    std::optional<StaticFiles> static_files;
    std::vector<std::unique_ptr<Worker>> workers;
    std::uint16_t port = 0;
    std::atomic<std::size_t> sessions{0};
    std::atomic<std::size_t> next_worker{0};
    std::atomic<bool> stopping{false};
    bool started = false;

    // The certificates new connections get; replaced whole by reload_tls().
    mutable std::mutex tls_mutex;
    std::shared_ptr<const TlsContext> tls_context;

    Impl(ServerOptions o, SessionHandler& h) : options(std::move(o)), handler(h) {}

    std::shared_ptr<const TlsContext> current_tls() const {
        const std::lock_guard<std::mutex> lock(tls_mutex);
        return tls_context;
    }

    bool reserve_session() noexcept {
        if (sessions.fetch_add(1, std::memory_order_relaxed) < options.max_connections) return true;
        sessions.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    // True when it was the last open session.
    bool release_session() noexcept {
        return sessions.fetch_sub(1, std::memory_order_relaxed) == 1;
    }

    bool is_websocket_path(std::string_view path) const noexcept {
        return std::any_of(options.websocket_paths.begin(), options.websocket_paths.end(),
                           [&](const std::string& p) { return p == "*" || p == path; });
    }

    void hand_out(Worker& acceptor, int fd, const SocketAddress& peer);
};

namespace {

class Worker final : public IoHandler {
  public:
    Worker(Server::Impl& server, std::unique_ptr<Reactor> reactor, unsigned index)
        : server_(server), reactor_(std::move(reactor)), host_(*reactor_), index_(index) {
        host_.set_thread_index(index);
        shutdown_task_.worker = this;
        shutdown_timer_.bind<&Worker::on_shutdown_timeout>(this);
        accept_timer_.bind<&Worker::resume_accepting>(this);
        trim_timer_.bind<&Worker::trim_heap_if_idle>(this);
        host_.set_session_end_observer([this](WsSession&) {
            // After the session itself is freed (this runs before), and once per burst.
            if (server_.release_session()) reactor_->arm(trim_timer_, kTrimDelay);
            finish_shutdown_if_idle();
        });
    }

    ~Worker() override {
        join();
        host_.set_session_end_observer(nullptr);
        close_listener();
    }

    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    Server::Impl& server() noexcept { return server_; }
    Reactor& reactor() noexcept { return *reactor_; }
    SessionHost& host() noexcept { return host_; }

    SysStatus listen(const SocketAddress& address, bool reuse_port) {
        ListenOptions options;
        options.reuse_port = reuse_port;
        const SysResult<int> listening = listen_tcp(address, options);
        if (!listening.ok()) return {listening.error};
        listen_fd_ = listening.value;
        if (const SysStatus added = reactor_->add(listen_fd_, Interest::read, *this); !added.ok()) {
            close_listener();
            return added;
        }
        return {};
    }
    int listen_fd() const noexcept { return listen_fd_; }

    void start_thread() {
        thread_ = std::thread([this] {
            const ServerThread self{index_, *reactor_, host_};
            if (server_.options.on_thread_start) server_.options.on_thread_start(self);
            static_cast<void>(reactor_->run());
            // Whatever is left (a fatal reactor error, or the shutdown timeout) is dropped here,
            // on the thread that owns it.
            host_.abort_all();
            http_.clear();
            close_listener();
            if (server_.options.on_thread_stop) server_.options.on_thread_stop(self);
        });
    }
    void join() {
        if (thread_.joinable()) thread_.join();
    }

    void post_shutdown() noexcept { reactor_->post(shutdown_task_); }

    void adopt_http(int fd, const SocketAddress& peer) {
        if (draining_ || http_.size() >= server_.options.max_pending_handshakes) {
            static_cast<void>(close_fd(fd));
            return;
        }
        auto connection = std::make_unique<HttpConnection>(*this, fd, peer);
        HttpConnection* raw = connection.get();
        http_.emplace(raw, std::move(connection));
        if (!raw->start()) http_.erase(raw);
    }

    void release(HttpConnection* connection) {
        http_.erase(connection);
        if (full_of_handshakes_ && http_.size() < server_.options.max_pending_handshakes) {
            full_of_handshakes_ = false;
            resume_accepting();
        }
        finish_shutdown_if_idle();
    }

    void on_readable(int fd) override {
        for (int i = 0; i < kAcceptBatch && fd == listen_fd_; ++i) {
            // This thread's own listener (SO_REUSEPORT, or the only thread) and its handshake
            // slots are all taken: leave new connections in the kernel's accept queue until a
            // handshake ends, instead of accepting them only to close them.
            if (accepts_for_itself() && http_.size() >= server_.options.max_pending_handshakes) {
                full_of_handshakes_ = true;
                static_cast<void>(reactor_->modify(listen_fd_, Interest::none));
                return;
            }
            SocketAddress peer;
            const SysResult<int> accepted = accept_tcp(listen_fd_, &peer);
            if (accepted.ok()) {
                server_.hand_out(*this, accepted.value, peer);
                continue;
            }
            if (would_block(accepted.error)) return;
            if (accepted.error == ECONNABORTED || accepted.error == EINTR) continue;
            // EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays queued and the
            // listener stays readable; rest instead of spinning on it.
            static_cast<void>(reactor_->modify(listen_fd_, Interest::none));
            reactor_->arm(accept_timer_, kAcceptPause);
            return;
        }
    }
    void on_writable(int) override {}
    void on_error(int, int) override {}

  private:
    struct ShutdownTask final : Task {
        Worker* worker = nullptr;
        void run() override { worker->begin_shutdown(); }
    };

    // The last session closed kTrimDelay ago and none opened since: what the sessions used goes
    // back to the system (see heap.hpp), so RSS returns to the baseline after a burst.
    void trim_heap_if_idle() {
        if (server_.sessions.load(std::memory_order_relaxed) == 0) return_free_heap();
    }

    void resume_accepting() {
        if (listen_fd_ >= 0) static_cast<void>(reactor_->modify(listen_fd_, Interest::read));
    }

    void close_listener() {
        if (listen_fd_ < 0) return;
        static_cast<void>(reactor_->remove(listen_fd_));
        static_cast<void>(close_fd(listen_fd_));
        listen_fd_ = -1;
    }

    void begin_shutdown() {
        if (draining_) return;
        draining_ = true;
        close_listener();
        accept_timer_.cancel();
        http_.clear();  // handshakes in progress: no session yet, nothing to balance
        // RFC 6455 §7.4.1: 1001, the server is going away. Queued after what each session
        // already has queued, so nothing sent before the shutdown is lost.
        host_.close_all(proto::close_code::kGoingAway, "server shutting down");
        reactor_->arm(shutdown_timer_, server_.options.shutdown_timeout);
        finish_shutdown_if_idle();
    }

    void finish_shutdown_if_idle() {
        if (draining_ && host_.size() == 0 && http_.empty()) reactor_->stop();
    }

    void on_shutdown_timeout() {
        host_.abort_all();
        http_.clear();
        reactor_->stop();
    }

    Server::Impl& server_;
    // Declaration order is destruction order in reverse: sessions, connections and timers go
    // before the reactor they are registered with.
    std::unique_ptr<Reactor> reactor_;
    SessionHost host_;
    unsigned index_;
    std::unordered_map<HttpConnection*, std::unique_ptr<HttpConnection>> http_;
    int listen_fd_ = -1;
    bool accepts_for_itself() const noexcept {
        return server_.options.reuse_port || server_.workers.size() == 1;
    }

    bool draining_ = false;
    bool full_of_handshakes_ = false;  // listener parked until a handshake slot frees up
    Timer shutdown_timer_;
    Timer accept_timer_;
    Timer trim_timer_;
    ShutdownTask shutdown_task_;
    std::thread thread_;
};

void HandOff::run() {
    worker_.adopt_http(fd_, peer_);
    delete this;
}

// ---- HttpConnection

HttpConnection::HttpConnection(Worker& worker, int fd, SocketAddress peer)
    : worker_(worker), fd_(fd), peer_(peer), handshake_(worker.server().options.handshake) {
    timer_.bind<&HttpConnection::on_timer>(this);
}

HttpConnection::~HttpConnection() {
    if (fd_ >= 0) {
        static_cast<void>(worker_.reactor().remove(fd_));
        static_cast<void>(close_fd(fd_));
    }
}

bool HttpConnection::start() {
    if (std::shared_ptr<const TlsContext> context = worker_.server().current_tls()) {
        tls_ = TlsStream::server(std::move(context));
        if (tls_->state() == TlsState::failed) return false;
    }
    if (!worker_.reactor().add(fd_, Interest::read, *this).ok()) return false;
    worker_.reactor().arm(timer_, worker_.server().options.handshake_timeout);
    return true;
}

void HttpConnection::finish() {
    worker_.release(this);  // deletes this
}

void HttpConnection::on_timer() {
    if (tls_ != nullptr && tls_->state() == TlsState::handshaking) {
        tls_failed("the TLS handshake did not complete within the handshake timeout");
    }
    finish();  // too slow to send its request, or to take our answer, or to hang up
}

void HttpConnection::on_error(int, int) {
    finish();
}

void HttpConnection::on_readable(int) {
    if (phase_ == Phase::lingering) {
        const SysResult<std::size_t> got = read_some(fd_, worker_.host().read_buffer());
        if (!got.ok() ? !would_block(got.error) : got.value == 0) finish();
        return;
    }
    if (phase_ == Phase::reading) read_request();
}

void HttpConnection::on_writable(int) {
    if (phase_ == Phase::writing) {
        write_response();
    } else if (phase_ == Phase::reading && tls_ != nullptr) {
        static_cast<void>(flush_tls_output());
    }
}

void HttpConnection::tls_failed(std::string_view reason) {
    const TlsServerOptions& options = *worker_.server().options.tls;
    if (options.on_handshake_error) options.on_handshake_error(address_to_string(peer_), reason);
}

bool HttpConnection::read_plain(std::size_t limit) {
    const std::size_t old_size = in_.size();
    in_.resize(std::min(limit, std::max<std::size_t>(old_size * 2, 1024)));
    const SysResult<std::size_t> got = read_some(
        fd_, {reinterpret_cast<std::uint8_t*>(in_.data()) + old_size, in_.size() - old_size});
    in_.resize(old_size + (got.ok() ? got.value : 0));
    if (!got.ok()) {
        if (!would_block(got.error)) finish();
        return false;
    }
    if (got.value == 0) {
        finish();  // gone before finishing its request
        return false;
    }
    return true;
}

bool HttpConnection::read_tls(std::size_t limit) {
    // Plaintext is decrypted in place and kept within the head limit, like a plain read.
    const std::span<std::uint8_t> whole = worker_.host().read_buffer();
    std::span<std::uint8_t> buffer = whole.first(std::min(whole.size(), limit - in_.size()));
    const SysResult<std::size_t> got = read_some(fd_, buffer);
    if (!got.ok()) {
        if (!would_block(got.error)) finish();
        return false;
    }
    if (got.value == 0) {
        if (tls_->state() == TlsState::handshaking) {
            tls_failed("the client closed the connection during the TLS handshake");
        }
        finish();
        return false;
    }
    TlsStream::Received received = tls_->receive(buffer, got.value);
    std::size_t produced = received.plaintext;
    in_.append(reinterpret_cast<const char*>(buffer.data()), received.plaintext);
    // What did not fit, up to the limit. Past it the request is refused (431), or, after a
    // complete request, the session drains the rest when it opens.
    while (received.more && in_.size() < limit) {
        buffer = whole.first(std::min(whole.size(), limit - in_.size()));
        received = tls_->receive(buffer, 0);
        produced += received.plaintext;
        in_.append(reinterpret_cast<const char*>(buffer.data()), received.plaintext);
    }
    if (received.state == TlsState::failed) {
        tls_failed(tls_->error());
        // The alert, best effort: the connection ends here.
        if (tls_->wants_write()) static_cast<void>(write_some(fd_, tls_->pending_output()));
        finish();
        return false;
    }
    if (received.state == TlsState::closed) {
        finish();
        return false;
    }
    return flush_tls_output() && produced > 0;
}

bool HttpConnection::flush_tls_output() {
    while (tls_->wants_write()) {
        const SysResult<std::size_t> wrote = write_some(fd_, tls_->pending_output());
        if (!wrote.ok()) {
            if (!would_block(wrote.error)) {
                finish();
                return false;
            }
            break;
        }
        tls_->consume_output(wrote.value);
    }
    // The handshake's answer is small, but a full socket buffer must not lose it.
    const Interest want = tls_->wants_write() ? Interest::read_write : Interest::read;
    return worker_.reactor().interest(fd_) == want || set_interest(want);
}

void HttpConnection::read_request() {
    // One byte past the head limit lets the parser see an oversized head (431). Bytes after the
    // head (the client's first frames) stay bounded by the same amount.
    const std::size_t limit = worker_.server().options.handshake.limits.max_head_bytes + 1;
    if (in_.size() >= limit) {
        respond(refusal_response(proto::Error::http_headers_too_large));
        return;
    }
    if (!(tls_ != nullptr ? read_tls(limit) : read_plain(limit))) return;
    const proto::HttpParseResult parsed = handshake_.parse(in_);
    if (parsed.status == proto::ParseStatus::need_more) {
        if (in_.size() >= limit) respond(refusal_response(proto::Error::http_headers_too_large));
        return;
    }
    if (parsed.status == proto::ParseStatus::error &&
        (parsed.error == proto::Error::http_malformed ||
         parsed.error == proto::Error::http_headers_too_large) &&
        handshake_.head().size == 0) {
        respond(refusal_response(parsed.error));
        return;
    }
    if (parsed.status == proto::ParseStatus::ok) {
        const std::string_view path =
            handshake_.request().target.substr(0, handshake_.request().target.find_first_of("?#"));
        if (worker_.server().is_websocket_path(path)) {
            upgrade();
            return;
        }
    }
    route(parsed.error);
}

void HttpConnection::route(proto::Error refusal) {
    const Server::Impl& server = worker_.server();
    const proto::HttpHead& head = handshake_.head();
    const std::string_view path = head.target.substr(0, head.target.find_first_of("?#"));
    const bool websocket_path = server.is_websocket_path(path);
    const bool wants_upgrade = proto::find_header(head.headers, "Upgrade") ||
                               proto::find_header(head.headers, "Sec-WebSocket-Key") ||
                               proto::find_header(head.headers, "Sec-WebSocket-Version");
    const bool head_only = head.method == "HEAD";

    if (wants_upgrade) {
        if (!websocket_path) {
            respond(text_response(404));
            return;
        }
        // The validation refused it (a valid upgrade on a WebSocket path never gets here).
        respond(refusal_response(refusal));
        return;
    }
    if (server.options.http_route && (head.method == "GET" || head_only)) {
        if (std::optional<HttpRouteResponse> answer = server.options.http_route(path)) {
            respond(
                make_http_response(answer->status, answer->content_type, answer->body, head_only));
            return;
        }
    }
    if (server.options.health_check && path == "/healthz") {
        respond(health_response(head.method));
        return;
    }
    if (server.static_files) {
        HttpResponse file = server.static_files->respond(head.method, head.target);
        if (!(file.status == 404 && websocket_path)) {
            respond(std::move(file));
            return;
        }
    }
    if (websocket_path) {
        respond(upgrade_required_response(head_only));
        return;
    }
    respond(text_response(404, head_only));
}

void HttpConnection::upgrade() {
    Server::Impl& server = worker_.server();
    if (!server.reserve_session()) {
        respond(refusal_response(proto::Error::http_too_many_connections));
        return;
    }
    const proto::UpgradeRequest& request = handshake_.request();
    SessionStart start;
    start.fd = fd_;
    start.role = proto::Role::server;
    start.handler = &server.handler;
    start.options = &server.options.session;
    // RFC 7692 §5: a malformed Sec-WebSocket-Extensions header is declined, not refused.
    const std::optional<proto::DeflateOptions>& deflate = server.options.deflate;
    if (deflate && !request.extensions_malformed) {
        start.deflate = proto::negotiate_deflate(request.extensions, *deflate);
    }
    // Written by the session ahead of any frame, so it is never interleaved with on_open's sends.
    start.preamble = handshake_.accept_response(
        start.deflate ? proto::write_deflate_response(start.deflate->params) : std::string());
    const std::size_t consumed = handshake_.consumed();
    start.early_bytes = {reinterpret_cast<const std::uint8_t*>(in_.data()) + consumed,
                         in_.size() - consumed};
    start.protocol = std::string(request.protocol);
    start.target = std::string(request.target);
    start.peer = peer_;
    start.tls = std::move(tls_);

    static_cast<void>(worker_.reactor().remove(fd_));
    fd_ = -1;  // the session owns it now
    timer_.cancel();
    worker_.host().adopt(start);
    finish();
}

void HttpConnection::respond(HttpResponse response) {
    response_ = std::move(response);
    phase_ = Phase::writing;
    // Further request bytes wait in the kernel until the answer is out (then linger drains them).
    if (!set_interest(Interest::none)) return;
    worker_.reactor().arm(timer_, worker_.server().options.session.write_wait);
    write_response();
}

void HttpConnection::write_response() {
    if (tls_ != nullptr) {
        write_response_tls();
        return;
    }
    while (head_sent_ < response_.head.size()) {
        const SysResult<std::size_t> wrote = write_some(
            fd_, {reinterpret_cast<const std::uint8_t*>(response_.head.data()) + head_sent_,
                  response_.head.size() - head_sent_});
        if (!wrote.ok()) {
            if (!would_block(wrote.error)) return finish();
            static_cast<void>(set_interest(Interest::write));
            return;
        }
        head_sent_ += wrote.value;
        worker_.reactor().arm(timer_, worker_.server().options.session.write_wait);
    }
    // The file goes out through the thread's read buffer, re-read at the current offset after a
    // short write, so a slow client costs no memory of its own.
    const std::span<std::uint8_t> buffer = worker_.host().read_buffer();
    while (response_.file_fd >= 0 && file_sent_ < response_.file_size) {
        const std::size_t want = static_cast<std::size_t>(
            std::min<std::uint64_t>(buffer.size(), response_.file_size - file_sent_));
        const ssize_t got =
            ::pread(response_.file_fd, buffer.data(), want, static_cast<off_t>(file_sent_));
        if (got <= 0) return finish();  // the file shrank: the announced length cannot be kept
        const SysResult<std::size_t> wrote =
            write_some(fd_, buffer.first(static_cast<std::size_t>(got)));
        if (!wrote.ok()) {
            if (!would_block(wrote.error)) return finish();
            static_cast<void>(set_interest(Interest::write));
            return;
        }
        file_sent_ += wrote.value;
        worker_.reactor().arm(timer_, worker_.server().options.session.write_wait);
    }
    linger();
}

void HttpConnection::write_response_tls() {
    const std::span<std::uint8_t> buffer = worker_.host().read_buffer();
    for (;;) {
        while (tls_->wants_write()) {
            const SysResult<std::size_t> wrote = write_some(fd_, tls_->pending_output());
            if (!wrote.ok()) {
                if (!would_block(wrote.error)) return finish();
                static_cast<void>(set_interest(Interest::write));
                return;
            }
            tls_->consume_output(wrote.value);
            worker_.reactor().arm(timer_, worker_.server().options.session.write_wait);
        }
        if (tls_->close_sent()) break;
        if (tls_->state() != TlsState::open) return finish();
        if (head_sent_ < response_.head.size()) {
            head_sent_ += tls_->send(
                {reinterpret_cast<const std::uint8_t*>(response_.head.data()) + head_sent_,
                 response_.head.size() - head_sent_});
        } else if (response_.file_fd >= 0 && file_sent_ < response_.file_size) {
            // As on plain TCP, the file goes through the thread's read buffer, a piece at a
            // time, and only as fast as the client takes it.
            const std::size_t want = static_cast<std::size_t>(
                std::min<std::uint64_t>(std::min(buffer.size(), TlsStream::kOutputLimit),
                                        response_.file_size - file_sent_));
            const ssize_t got =
                ::pread(response_.file_fd, buffer.data(), want, static_cast<off_t>(file_sent_));
            if (got <= 0) return finish();
            file_sent_ += tls_->send(buffer.first(static_cast<std::size_t>(got)));
        } else {
            tls_->close();  // close_notify, then the TCP linger
        }
    }
    linger();
}

void HttpConnection::linger() {
    // Closing with unread request bytes would reset the connection and could destroy the answer
    // in flight; send FIN and read until the client hangs up.
    ::shutdown(fd_, SHUT_WR);
    phase_ = Phase::lingering;
    response_ = HttpResponse{};
    if (!set_interest(Interest::read)) return;
    worker_.reactor().arm(timer_, worker_.server().options.session.close_timeout);
}

bool HttpConnection::set_interest(Interest interest) {
    if (worker_.reactor().modify(fd_, interest).ok()) return true;
    finish();  // deletes this
    return false;
}

}  // namespace

void Server::Impl::hand_out(Worker& acceptor, int fd, const SocketAddress& peer) {
    if (options.reuse_port || workers.size() == 1) {
        acceptor.adopt_http(fd, peer);
        return;
    }
    Worker& target = *workers[next_worker.fetch_add(1, std::memory_order_relaxed) % workers.size()];
    if (&target == &acceptor) {
        acceptor.adopt_http(fd, peer);
    } else {
        target.reactor().post(*new HandOff(target, fd, peer));
    }
}

// ---- Server

Server::Server(ServerOptions options, SessionHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

Server::~Server() {
    stop();
    wait();
}

SysStatus Server::start() {
    Impl& s = *impl_;
    if (s.started) return {EALREADY};
    if (s.options.tls) {
        TlsContextResult context = make_server_context(*s.options.tls);
        if (!context.ok()) return {EINVAL};
        s.tls_context = std::move(context.context);
    }
    const SysResult<SocketAddress> address =
        SocketAddress::from_numeric(s.options.address, s.options.port);
    if (!address.ok()) return {address.error};
    if (!s.options.static_root.empty()) {
        SysResult<StaticFiles> files = StaticFiles::open(s.options.static_root);
        if (!files.ok()) return {files.error};
        s.static_files = std::move(files.value);
    }
    unsigned threads = s.options.threads;
    if (threads == 0) threads = std::max(1U, std::thread::hardware_concurrency());

    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned i = 0; i < threads; ++i) {
        SysResult<std::unique_ptr<Reactor>> reactor = Reactor::create(s.options.backend);
        if (!reactor.ok()) return {reactor.error};
        workers.push_back(std::make_unique<Worker>(s, std::move(reactor.value), i));
    }
    // The first listener learns the port (it may be 0); the others join it.
    if (const SysStatus first = workers[0]->listen(address.value, s.options.reuse_port);
        !first.ok()) {
        return first;
    }
    const SysResult<SocketAddress> bound = SocketAddress::local_of(workers[0]->listen_fd());
    if (!bound.ok()) return {bound.error};
    s.port = bound.value.port();
    if (s.options.reuse_port) {
        SysResult<SocketAddress> same = SocketAddress::from_numeric(s.options.address, s.port);
        for (std::size_t i = 1; i < workers.size(); ++i) {
            if (const SysStatus joined = workers[i]->listen(same.value, true); !joined.ok()) {
                return joined;
            }
        }
    }
    s.workers = std::move(workers);
    s.started = true;
    for (const auto& worker : s.workers)
        worker->start_thread();
    return {};
}

std::uint16_t Server::port() const noexcept {
    return impl_->port;
}

unsigned Server::thread_count() const noexcept {
    return static_cast<unsigned>(impl_->workers.size());
}

void Server::stop() noexcept {
    if (!impl_->started || impl_->stopping.exchange(true, std::memory_order_acq_rel)) return;
    for (const auto& worker : impl_->workers)
        worker->post_shutdown();
}

void Server::wait() {
    for (const auto& worker : impl_->workers)
        worker->join();
}

std::size_t Server::connection_count() const noexcept {
    return impl_->sessions.load(std::memory_order_relaxed);
}

bool Server::reload_tls(std::string* error) {
    Impl& s = *impl_;
    if (!s.options.tls) {
        if (error != nullptr) *error = "the server was not started with TLS";
        return false;
    }
    TlsContextResult context = make_server_context(*s.options.tls);
    if (!context.ok()) {
        if (error != nullptr) *error = std::move(context.error);
        return false;
    }
    // Streams hold their own reference: the old context lives on with the connections using it.
    const std::lock_guard<std::mutex> lock(s.tls_mutex);
    s.tls_context = std::move(context.context);
    return true;
}

}  // namespace wsx::net
