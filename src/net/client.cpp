#include "net/client.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "net/socket.hpp"
#include "net/url.hpp"

namespace wsx::net {

namespace {

std::string with_errno(std::string text, int error) {
    if (error != 0) {
        text += ": ";
        text += std::strerror(error);
    }
    return text;
}

std::string milliseconds_text(std::chrono::milliseconds ms) {
    return std::to_string(ms.count()) + " ms";
}

}  // namespace

std::string address_to_string(const SocketAddress& address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address.family() == AF_INET6) {
        sockaddr_in6 v6{};
        std::memcpy(&v6, address.data(), sizeof v6);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
        return "[" + std::string(text) + "]:" + std::to_string(address.port());
    }
    if (address.family() == AF_INET) {
        sockaddr_in v4{};
        std::memcpy(&v4, address.data(), sizeof v4);
        ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(address.port());
    }
    return "(no address)";
}

const char* connect_errc_name(ConnectErrc code) noexcept {
    switch (code) {
        case ConnectErrc::invalid_url:
            return "invalid_url";
        case ConnectErrc::resolve_failed:
            return "resolve_failed";
        case ConnectErrc::connection_refused:
            return "connection_refused";
        case ConnectErrc::connect_failed:
            return "connect_failed";
        case ConnectErrc::connect_timeout:
            return "connect_timeout";
        case ConnectErrc::connection_lost:
            return "connection_lost";
        case ConnectErrc::handshake_timeout:
            return "handshake_timeout";
        case ConnectErrc::http_status:
            return "http_status";
        case ConnectErrc::bad_response:
            return "bad_response";
        case ConnectErrc::tls_verify_failed:
            return "tls_verify_failed";
        case ConnectErrc::tls_failed:
            return "tls_failed";
        case ConnectErrc::system:
            return "system";
    }
    return "unknown";
}

std::string ConnectError::message() const {
    switch (code) {
        case ConnectErrc::invalid_url:
            return "invalid URL \"" + target + "\": " + detail;
        case ConnectErrc::resolve_failed:
            return "cannot resolve " + target + ": " + detail;
        case ConnectErrc::connection_refused:
            return "connection refused by " + target;
        case ConnectErrc::connect_failed:
            return with_errno("cannot connect to " + target, sys_error);
        case ConnectErrc::connect_timeout:
            return "connecting to " + target + " timed out" +
                   (detail.empty() ? std::string() : " (" + detail + ")");
        case ConnectErrc::connection_lost:
            return with_errno(target + " closed the connection during the opening handshake",
                              sys_error);
        case ConnectErrc::handshake_timeout:
            return target + " did not complete the opening handshake" +
                   (detail.empty() ? std::string() : " (" + detail + ")");
        case ConnectErrc::http_status:
            return target + " refused the WebSocket upgrade: HTTP " + std::to_string(http_status) +
                   (http_reason.empty() ? std::string() : " " + http_reason);
        case ConnectErrc::bad_response:
            return target + " sent an invalid opening handshake response: " +
                   std::string(proto::describe(handshake_error));
        case ConnectErrc::tls_verify_failed:
            return "cannot trust " + target + ": " + detail;
        case ConnectErrc::tls_failed:
            return "TLS with " + target + " failed: " + detail;
        case ConnectErrc::system:
            return with_errno(detail, sys_error);
    }
    return detail;
}

// ---- One connection attempt: URL → addresses → TCP → handshake → adopted session.

namespace {

class Attempt;

}  // namespace

struct Client::Impl {
    Reactor& reactor;
    ClientOptions options;
    Resolver* resolver;
    std::unique_ptr<Resolver> own_resolver;
    // Declared after the options its sessions point to, so destroyed before them.
    SessionHost host;
    // Declared last: destroyed first, while the resolver they may cancel lookups in still exists.
    std::unordered_map<AttemptId, std::unique_ptr<Attempt>> attempts;
    AttemptId next_id = 1;
    std::weak_ptr<Impl> self;

    Impl(Reactor& r, ClientOptions o, Resolver* given)
        : reactor(r),
          options(std::move(o)),
          resolver(given),
          // The response's bytes after its head reach the session through the read buffer.
          host(r, std::max(options.read_buffer_size, options.response_limits.max_head_bytes + 1)) {}

    Resolver& name_resolver() {
        if (resolver == nullptr) {
            own_resolver = std::make_unique<Resolver>(1);
            resolver = own_resolver.get();
        }
        return *resolver;
    }

    // The wss:// context, made at first use; null with tls_error set when it cannot be made.
    std::shared_ptr<const TlsContext> tls_context;
    std::string tls_error;

    std::shared_ptr<const TlsContext> tls() {
        if (tls_context == nullptr && tls_error.empty()) {
            TlsContextResult made = make_client_context(options.tls);
            tls_context = std::move(made.context);
            tls_error = std::move(made.error);
        }
        return tls_context;
    }

    Attempt* find(AttemptId id) noexcept;
    std::unique_ptr<Attempt> take(AttemptId id) noexcept;
};

namespace {

class Attempt final : public IoHandler {
  public:
    Attempt(Client::Impl& client, Client::AttemptId id, ConnectRequest request,
            SessionHandler& handler, Client::FailureCallback on_failure)
        : client_(client),
          id_(id),
          request_(std::move(request)),
          handler_(handler),
          on_failure_(std::move(on_failure)) {
        timer_.bind<&Attempt::on_timer>(this);
    }
    ~Attempt() override { release(); }
    Attempt(const Attempt&) = delete;
    Attempt& operator=(const Attempt&) = delete;

    // Everything happens from the loop, so no callback runs inside connect().
    void start() { client_.reactor.arm(timer_, std::chrono::milliseconds(0)); }

    void on_resolved(ResolveResult result) {
        if (phase_ != Phase::resolving) return;
        resolve_id_ = 0;
        timer_.cancel();
        if (!result.ok()) {
            ConnectError error = make_error(ConnectErrc::resolve_failed, host_target());
            error.resolve_error = result.error;
            error.sys_error = result.system_error;
            error.detail = result.message();
            fail(std::move(error));
            return;
        }
        addresses_ = std::move(result.addresses);
        connect_next();
    }

  private:
    enum class Phase : std::uint8_t { starting, resolving, connecting, handshaking };

    ConnectError make_error(ConnectErrc code, std::string target) const {
        ConnectError error;
        error.code = code;
        error.target = std::move(target);
        return error;
    }
    std::string host_target() const {
        return url_.ipv6_literal() ? "[" + url_.host + "]:" + std::to_string(url_.port)
                                   : url_.host + ":" + std::to_string(url_.port);
    }

    void on_timer() {
        switch (phase_) {
            case Phase::starting:
                begin();
                return;
            case Phase::resolving: {
                // getaddrinfo has no deadline of its own that we control; the connect timeout
                // covers the lookup too.
                ConnectError error = make_error(ConnectErrc::connect_timeout, host_target());
                error.detail = "name resolution took longer than " +
                               milliseconds_text(client_.options.connect_timeout);
                fail(std::move(error));
                return;
            }
            case Phase::connecting: {
                ConnectError error =
                    make_error(ConnectErrc::connect_timeout, address_to_string(peer_));
                error.detail =
                    "no answer within " + milliseconds_text(client_.options.connect_timeout);
                close_socket();
                last_error_ = std::move(error);
                connect_next();
                return;
            }
            case Phase::handshaking: {
                ConnectError error =
                    make_error(ConnectErrc::handshake_timeout, address_to_string(peer_));
                error.detail = "no complete response within " +
                               milliseconds_text(client_.options.handshake_timeout);
                fail(std::move(error));
                return;
            }
        }
    }

    void begin() {
        const UrlParseResult parsed = parse_url(request_.url);
        if (!parsed.ok()) {
            ConnectError error = make_error(ConnectErrc::invalid_url, request_.url);
            error.detail = std::string(parsed.error);
            fail(std::move(error));
            return;
        }
        url_ = parsed.url;
        if (std::optional<SocketAddress> numeric = resolve_numeric(url_.host, url_.port)) {
            addresses_.push_back(*numeric);
            connect_next();
            return;
        }
        phase_ = Phase::resolving;
        client_.reactor.arm(timer_, client_.options.connect_timeout);
        const std::weak_ptr<Client::Impl> weak = client_.self;
        const Client::AttemptId id = id_;
        // The lookup's answer comes back as a task on our reactor; by then the Client or this
        // attempt may be gone, so it finds both again rather than holding pointers.
        resolve_id_ = client_.name_resolver().resolve(
            url_.host, url_.port, client_.reactor, [weak, id](ResolveResult result) {
                const std::shared_ptr<Client::Impl> client = weak.lock();
                if (!client) return;
                if (Attempt* attempt = client->find(id)) attempt->on_resolved(std::move(result));
            });
    }

    // Tries the addresses in order (RFC 6724 order from getaddrinfo): a refusal or timeout on
    // one (say ::1 when the server listens on 127.0.0.1 only) moves on to the next.
    void connect_next() {
        phase_ = Phase::connecting;
        while (next_address_ < addresses_.size()) {
            peer_ = addresses_[next_address_++];
            const SysResult<int> opened = connect_tcp(peer_);
            if (!opened.ok()) {
                last_error_ = connect_error(opened.error);
                continue;
            }
            fd_ = opened.value;
            if (const SysStatus added = client_.reactor.add(fd_, Interest::write, *this);
                !added.ok()) {
                close_socket();
                last_error_ = make_error(ConnectErrc::system, address_to_string(peer_));
                last_error_.sys_error = added.error;
                last_error_.detail = "the reactor refused the socket";
                continue;
            }
            client_.reactor.arm(timer_, client_.options.connect_timeout);
            return;
        }
        fail(std::move(last_error_));
    }

    ConnectError connect_error(int error) const {
        ConnectError out = make_error(
            error == ECONNREFUSED ? ConnectErrc::connection_refused : ConnectErrc::connect_failed,
            address_to_string(peer_));
        out.sys_error = error;
        return out;
    }

    void on_readable(int) override {
        if (phase_ == Phase::handshaking) read_response();
    }

    void on_writable(int) override {
        if (phase_ == Phase::connecting) {
            const SysStatus status = connect_result(fd_);
            if (!status.ok()) {
                connect_failed(status.error);
                return;
            }
            on_connected();
            return;
        }
        if (phase_ == Phase::handshaking) write_request();
    }

    void on_error(int, int error) override {
        if (phase_ == Phase::connecting) {
            connect_failed(error);
            return;
        }
        ConnectError out = make_error(ConnectErrc::connection_lost, address_to_string(peer_));
        out.sys_error = error;
        fail(std::move(out));
    }

    void connect_failed(int error) {
        timer_.cancel();
        close_socket();
        last_error_ = connect_error(error);
        connect_next();
    }

    void on_connected() {
        phase_ = Phase::handshaking;
        static_cast<void>(set_no_delay(fd_));
        proto::ClientOptions options;
        options.host = url_.authority();
        options.target = url_.target;
        options.origin = request_.origin;
        options.protocols = request_.protocols;
        options.extra_headers = request_.headers;
        options.limits = client_.options.response_limits;
        if (const proto::DeflateOptions* deflate = deflate_options()) {
            options.extensions = proto::write_deflate_offer(*deflate);
        }
        handshake_ = proto::ClientHandshake::create(std::move(options));
        if (!handshake_) {
            ConnectError error = make_error(ConnectErrc::system, address_to_string(peer_));
            error.detail = "no random bytes for Sec-WebSocket-Key (RFC 6455 section 4.1)";
            fail(std::move(error));
            return;
        }
        request_bytes_ = handshake_->request();
        if (url_.secure) {
            std::shared_ptr<const TlsContext> context = client_.tls();
            if (context == nullptr) {
                ConnectError error = make_error(ConnectErrc::tls_failed, address_to_string(peer_));
                error.detail = client_.tls_error;
                fail(std::move(error));
                return;
            }
            // The URL's host is the name the certificate must carry (RFC 6125) and the SNI.
            tls_ = TlsStream::client(std::move(context), url_.host);
            if (tls_->state() == TlsState::failed) {
                tls_failed();
                return;
            }
        }
        // The handshake timeout covers TLS and HTTP together.
        client_.reactor.arm(timer_, client_.options.handshake_timeout);
        write_request();
    }

    void tls_failed() {
        ConnectError error = make_error(
            tls_->verify_failed() ? ConnectErrc::tls_verify_failed : ConnectErrc::tls_failed,
            address_to_string(peer_));
        error.detail = tls_->error();
        if (!tls_->verify_failed() && tls_->error() == "wrong version number") {
            error.detail += " (not a TLS server? try ws://)";
        }
        // The alert, best effort: the socket is closed right after.
        if (tls_->wants_write()) static_cast<void>(write_some(fd_, tls_->pending_output()));
        fail(std::move(error));
    }

    // Through TLS: the handshake's own messages, then the request once the handshake is done.
    // False when the attempt ended (and this is gone).
    bool write_request_tls() {
        for (;;) {
            while (tls_->wants_write()) {
                const SysResult<std::size_t> wrote = write_some(fd_, tls_->pending_output());
                if (!wrote.ok()) {
                    if (would_block(wrote.error)) break;
                    ConnectError error =
                        make_error(ConnectErrc::connection_lost, address_to_string(peer_));
                    error.sys_error = wrote.error;
                    fail(std::move(error));
                    return false;
                }
                tls_->consume_output(wrote.value);
            }
            if (tls_->wants_write() || !tls_->handshake_done() ||
                request_sent_ == request_bytes_.size()) {
                break;
            }
            const std::string_view rest = std::string_view(request_bytes_).substr(request_sent_);
            request_sent_ +=
                tls_->send({reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size()});
        }
        return set_interest(tls_->wants_write() ? Interest::read_write : Interest::read);
    }

    bool set_interest(Interest want) {
        if (const SysStatus modified = client_.reactor.modify(fd_, want); !modified.ok()) {
            ConnectError error = make_error(ConnectErrc::system, address_to_string(peer_));
            error.sys_error = modified.error;
            error.detail = "the reactor refused the socket";
            fail(std::move(error));
            return false;
        }
        return true;
    }

    // Reads and decrypts into response_; false when there is nothing new (or the attempt ended).
    bool read_tls(std::size_t limit) {
        const std::span<std::uint8_t> whole = client_.host.read_buffer();
        std::span<std::uint8_t> buffer =
            whole.first(std::min(whole.size(), limit - response_.size()));
        const SysResult<std::size_t> got = read_some(fd_, buffer);
        if (!got.ok() || got.value == 0) {
            if (!got.ok() && would_block(got.error)) return false;
            ConnectError error = make_error(ConnectErrc::connection_lost, address_to_string(peer_));
            error.sys_error = got.error;
            if (tls_->state() == TlsState::handshaking) {
                error.code = ConnectErrc::tls_failed;
                error.detail = "the server closed the connection during the TLS handshake";
            }
            fail(std::move(error));
            return false;
        }
        TlsStream::Received received = tls_->receive(buffer, got.value);
        std::size_t produced = received.plaintext;
        response_.append(reinterpret_cast<const char*>(buffer.data()), received.plaintext);
        // What did not fit, up to the limit; after a complete response the session drains the
        // rest when it opens.
        while (received.more && response_.size() < limit) {
            buffer = whole.first(std::min(whole.size(), limit - response_.size()));
            received = tls_->receive(buffer, 0);
            produced += received.plaintext;
            response_.append(reinterpret_cast<const char*>(buffer.data()), received.plaintext);
        }
        if (received.state == TlsState::failed) {
            tls_failed();
            return false;
        }
        if (received.state == TlsState::closed) {
            fail(make_error(ConnectErrc::connection_lost, address_to_string(peer_)));
            return false;
        }
        return write_request_tls() && produced > 0;
    }

    void write_request() {
        if (tls_ != nullptr) {
            static_cast<void>(write_request_tls());
            return;
        }
        while (request_sent_ < request_bytes_.size()) {
            const std::string_view rest = std::string_view(request_bytes_).substr(request_sent_);
            const SysResult<std::size_t> wrote =
                write_some(fd_, {reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size()});
            if (!wrote.ok()) {
                if (would_block(wrote.error)) break;
                ConnectError error =
                    make_error(ConnectErrc::connection_lost, address_to_string(peer_));
                error.sys_error = wrote.error;
                fail(std::move(error));
                return;
            }
            request_sent_ += wrote.value;
        }
        // The response is read as soon as it comes, even while the request is still going out
        // (a server may refuse early and close).
        const Interest want =
            request_sent_ < request_bytes_.size() ? Interest::read_write : Interest::read;
        if (const SysStatus modified = client_.reactor.modify(fd_, want); !modified.ok()) {
            ConnectError error = make_error(ConnectErrc::system, address_to_string(peer_));
            error.sys_error = modified.error;
            error.detail = "the reactor refused the socket";
            fail(std::move(error));
        }
    }

    void read_response() {
        // One byte past the head limit lets the parser see an oversized head; bytes after the
        // head (the server's first frames) stay bounded by the same amount.
        const std::size_t limit = client_.options.response_limits.max_head_bytes + 1;
        if (tls_ != nullptr) {
            if (!read_tls(limit)) return;
            parse_response(limit);
            return;
        }
        const std::size_t old_size = response_.size();
        response_.resize(std::min(limit, std::max<std::size_t>(old_size * 2, 1024)));
        const SysResult<std::size_t> got =
            read_some(fd_, {reinterpret_cast<std::uint8_t*>(response_.data()) + old_size,
                            response_.size() - old_size});
        response_.resize(old_size + (got.ok() ? got.value : 0));
        if (!got.ok() || got.value == 0) {
            if (!got.ok() && would_block(got.error)) return;
            ConnectError error = make_error(ConnectErrc::connection_lost, address_to_string(peer_));
            error.sys_error = got.error;
            fail(std::move(error));
            return;
        }
        parse_response(limit);
    }

    void parse_response(std::size_t limit) {
        const proto::HttpParseResult parsed = handshake_->parse(response_);
        if (parsed.status == proto::ParseStatus::need_more) {
            if (response_.size() >= limit) {
                ConnectError error =
                    make_error(ConnectErrc::bad_response, address_to_string(peer_));
                error.handshake_error = proto::Error::http_headers_too_large;
                fail(std::move(error));
            }
            return;
        }
        if (parsed.status == proto::ParseStatus::error) {
            const bool status = parsed.error == proto::Error::http_bad_status;
            ConnectError error =
                make_error(status ? ConnectErrc::http_status : ConnectErrc::bad_response,
                           address_to_string(peer_));
            error.handshake_error = parsed.error;
            error.http_status = handshake_->status();
            error.http_reason = std::string(handshake_->head().reason);
            fail(std::move(error));
            return;
        }
        // The handshake already refused extensions we did not offer (RFC 6455 §4.1 item 6);
        // what is left is ours to check against the offer (RFC 7692 §5.1).
        std::optional<proto::DeflateConfig> deflate;
        if (const proto::DeflateOptions* offered = deflate_options()) {
            const proto::Error checked =
                proto::accept_deflate_response(handshake_->extensions(), *offered, deflate);
            if (checked != proto::Error::none) {
                ConnectError error =
                    make_error(ConnectErrc::bad_response, address_to_string(peer_));
                error.handshake_error = checked;
                fail(std::move(error));
                return;
            }
        }
        succeed(std::move(deflate));
    }

    const proto::DeflateOptions* deflate_options() const noexcept {
        if (request_.deflate) return &*request_.deflate;
        return client_.options.deflate ? &*client_.options.deflate : nullptr;
    }

    void succeed(std::optional<proto::DeflateConfig> deflate) {
        timer_.cancel();
        static_cast<void>(client_.reactor.remove(fd_));  // the session registers it again
        SessionStart start;
        start.fd = fd_;
        start.role = proto::Role::client;
        start.handler = &handler_;
        start.options = &client_.options.session;
        start.early_bytes = {
            reinterpret_cast<const std::uint8_t*>(response_.data()) + handshake_->consumed(),
            response_.size() - handshake_->consumed()};
        start.protocol = std::string(handshake_->protocol());
        start.target = url_.target;
        start.peer = peer_;
        start.deflate = std::move(deflate);
        start.tls = std::move(tls_);
        fd_ = -1;  // the session owns it now
        // Keeps this attempt (and early_bytes, which point into it) alive through adopt().
        const std::unique_ptr<Attempt> self = client_.take(id_);
        // From here the session reports: on_open, then on_close. (adopt() could only fail to
        // register an fd the reactor released a moment ago, on this thread.)
        static_cast<void>(client_.host.adopt(start));
    }

    // The outcome is reported after the attempt left the client, so the callback may connect
    // again, cancel others, or destroy the Client.
    void fail(ConnectError error) {
        release();
        const std::unique_ptr<Attempt> self = client_.take(id_);
        const Client::FailureCallback callback = std::move(on_failure_);
        if (callback) callback(error);
    }

    void close_socket() {
        if (fd_ < 0) return;
        static_cast<void>(client_.reactor.remove(fd_));
        static_cast<void>(close_fd(fd_));
        fd_ = -1;
    }

    void release() {
        timer_.cancel();
        close_socket();
        if (resolve_id_ != 0) {
            if (client_.resolver != nullptr) client_.resolver->cancel(resolve_id_);
            resolve_id_ = 0;
        }
    }

    Client::Impl& client_;
    const Client::AttemptId id_;
    ConnectRequest request_;
    SessionHandler& handler_;
    Client::FailureCallback on_failure_;

    Phase phase_ = Phase::starting;
    WsUrl url_;
    std::vector<SocketAddress> addresses_;
    std::size_t next_address_ = 0;
    SocketAddress peer_;
    ConnectError last_error_;
    int fd_ = -1;
    Resolver::Id resolve_id_ = 0;
    Timer timer_;

    std::unique_ptr<TlsStream> tls_;  // wss:// only
    std::optional<proto::ClientHandshake> handshake_;
    std::string request_bytes_;
    std::size_t request_sent_ = 0;
    std::string response_;
};

}  // namespace

Attempt* Client::Impl::find(AttemptId id) noexcept {
    const auto it = attempts.find(id);
    return it == attempts.end() ? nullptr : it->second.get();
}

std::unique_ptr<Attempt> Client::Impl::take(AttemptId id) noexcept {
    auto node = attempts.extract(id);
    return node.empty() ? nullptr : std::move(node.mapped());
}

// ---- Client

Client::Client(Reactor& reactor, ClientOptions options, Resolver* resolver)
    : impl_(std::make_shared<Impl>(reactor, std::move(options), resolver)) {
    impl_->self = impl_;
}

Client::~Client() = default;

Client::AttemptId Client::connect(ConnectRequest request, SessionHandler& handler,
                                  FailureCallback on_failure) {
    const AttemptId id = impl_->next_id++;
    auto attempt =
        std::make_unique<Attempt>(*impl_, id, std::move(request), handler, std::move(on_failure));
    Attempt* raw = attempt.get();
    impl_->attempts.emplace(id, std::move(attempt));
    raw->start();
    return id;
}

bool Client::cancel(AttemptId id) {
    return impl_->take(id) != nullptr;  // the attempt's destructor releases what it held
}

std::size_t Client::pending() const noexcept {
    return impl_->attempts.size();
}

SessionHost& Client::host() noexcept {
    return impl_->host;
}

Reactor& Client::reactor() noexcept {
    return impl_->reactor;
}

const ClientOptions& Client::options() const noexcept {
    return impl_->options;
}

}  // namespace wsx::net
