#include "net/tls.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace wsx::net {

namespace {

// The only ALPN protocol spoken over a WebSocket's TLS connection (RFC 6455 §4.1: the opening
// handshake is an HTTP/1.1 request).
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
// A full TLS record of plaintext (RFC 8446 §5.1): small slices are gathered up to this size so
// that a frame header and its payload travel in one record, not one record (and AEAD tag) each.
constexpr std::size_t kRecordPlaintext = 16 * 1024;
// Header and AEAD tag of the records in one batch of output, with room to spare.
constexpr std::size_t kBatchOverhead = 2 * 1024;

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
        return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    });
    return out;
}

bool is_ip_literal(const std::string& host) {
    unsigned char address[16];
    return inet_pton(AF_INET, host.c_str(), address) == 1 ||
           inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// The earliest error on this thread's OpenSSL queue, in words; the queue is left empty.
std::string openssl_reason() {
    const unsigned long code = ERR_peek_error();
    std::string text;
    if (code != 0) {
        const char* reason = ERR_reason_error_string(code);
        if (reason != nullptr) {
            text = reason;
        } else {
            char buffer[256];
            ERR_error_string_n(code, buffer, sizeof buffer);
            text = buffer;
        }
    }
    ERR_clear_error();
    return text.empty() ? "unknown OpenSSL error" : text;
}

std::string with_reason(std::string what) {
    return what + ": " + openssl_reason();
}

// ALPN (RFC 7301): pick http/1.1 when offered; a client offering only other protocols goes on
// without ALPN rather than being cut off, as HTTP/1.1 clients that send no ALPN at all do.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_size, const unsigned char* in,
                unsigned int in_size, void*) {
    for (unsigned int at = 0; at < in_size;) {
        const unsigned int length = in[at];
        if (at + 1 + length > in_size) break;
        if (length == kAlpnHttp11[0] && std::memcmp(in + at + 1, kAlpnHttp11 + 1, length) == 0) {
            *out = in + at + 1;
            *out_size = static_cast<unsigned char>(length);
            return SSL_TLSEXT_ERR_OK;
        }
        at += 1 + length;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

// SNI (RFC 6066 §3): switch the connection to the context holding that host's certificate. An
// unknown name keeps the default certificate (the client's verification then decides).
int select_certificate(SSL* ssl, int*, void* arg) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == nullptr) return SSL_TLSEXT_ERR_OK;
    const auto* context = static_cast<const TlsContext*>(arg);
    SSL_CTX* chosen = context->for_host(name);
    if (chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* new_context(bool server, const std::string& tls12_ciphers, std::string& error) {
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == nullptr) {
        error = with_reason("cannot create a TLS context");
        return nullptr;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers.c_str()) != 1) {
        error = with_reason("bad TLS 1.2 cipher list \"" + tls12_ciphers + "\"");
        SSL_CTX_free(ctx);
        return nullptr;
    }
    // Renegotiation is a DoS lever and WebSocket never needs it; compression leaks secrets
    // (CRIME). Buffers go back to the allocator while a connection is idle.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

}  // namespace

// Builds contexts; a friend of TlsContext.
struct TlsContextBuilder {
    static std::shared_ptr<TlsContext> make(bool server) {
        std::shared_ptr<TlsContext> context(new TlsContext());
        context->server_ = server;
        return context;
    }

    static SSL_CTX* server_context(TlsContext& owner, const std::string& cert_file,
                                   const std::string& key_file, const std::string& ciphers,
                                   std::string& error) {
        SSL_CTX* ctx = new_context(true, ciphers, error);
        if (ctx == nullptr) return nullptr;
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
            error = with_reason("cannot load the certificate chain " + cert_file);
        } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
            error = with_reason("cannot load the private key " + key_file);
        } else if (SSL_CTX_check_private_key(ctx) != 1) {
            error = with_reason("the private key " + key_file + " does not match " + cert_file);
        } else {
            SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
            // The macro SSL_CTX_set_tlsext_servername_callback, without its C-style cast.
            SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                                  reinterpret_cast<void (*)()>(select_certificate));
            SSL_CTX_set_tlsext_servername_arg(ctx, &owner);
            return ctx;
        }
        SSL_CTX_free(ctx);
        return nullptr;
    }

    static void set_default(TlsContext& context, SSL_CTX* ctx) { context.ctx_ = ctx; }
    static void add_host(TlsContext& context, std::string host, SSL_CTX* ctx) {
        context.by_host_.emplace_back(std::move(host), ctx);
    }
    static void set_verify(TlsContext& context, bool verify) { context.verify_peer_ = verify; }
};

TlsContext::~TlsContext() {
    for (auto& entry : by_host_)
        SSL_CTX_free(entry.second);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

ssl_ctx_st* TlsContext::for_host(std::string_view host) const noexcept {
    for (const auto& entry : by_host_) {
        if (entry.first.size() == host.size() &&
            std::equal(host.begin(), host.end(), entry.first.begin(), [](char a, char b) {
                const auto low = [](char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
                return low(a) == b;
            })) {
            return entry.second;
        }
    }
    return ctx_;
}

TlsContextResult make_server_context(const TlsServerOptions& options) {
    TlsContextResult result;
    ERR_clear_error();
    if (options.cert_file.empty() || options.key_file.empty()) {
        result.error = "a TLS server needs a certificate file and a key file";
        return result;
    }
    std::shared_ptr<TlsContext> context = TlsContextBuilder::make(true);
    SSL_CTX* main = TlsContextBuilder::server_context(*context, options.cert_file, options.key_file,
                                                      options.tls12_ciphers, result.error);
    if (main == nullptr) return result;
    TlsContextBuilder::set_default(*context, main);
    for (const TlsCertificate& entry : options.sni) {
        if (entry.host.empty()) {
            result.error = "an SNI certificate needs a host name";
            return result;
        }
        SSL_CTX* ctx = TlsContextBuilder::server_context(*context, entry.cert_file, entry.key_file,
                                                         options.tls12_ciphers, result.error);
        if (ctx == nullptr) return result;
        TlsContextBuilder::add_host(*context, lower(entry.host), ctx);
    }
    result.context = std::move(context);
    return result;
}

TlsContextResult make_client_context(const TlsClientOptions& options) {
    TlsContextResult result;
    ERR_clear_error();
    SSL_CTX* ctx = new_context(false, options.tls12_ciphers, result.error);
    if (ctx == nullptr) return result;
    std::shared_ptr<TlsContext> context = TlsContextBuilder::make(false);
    TlsContextBuilder::set_default(*context, ctx);
    // Returns 0 on success, unlike the rest of OpenSSL.
    if (SSL_CTX_set_alpn_protos(ctx, kAlpnHttp11, sizeof kAlpnHttp11) != 0) {
        result.error = with_reason("cannot set ALPN");
        return result;
    }
    if (options.insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        TlsContextBuilder::set_verify(*context, true);
        if (!options.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
                result.error = with_reason("cannot load CA certificates from " + options.ca_file);
                return result;
            }
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            result.error = with_reason("cannot load the system's trusted certificates");
            return result;
        }
    }
    result.context = std::move(context);
    return result;
}

// ---- The BIO between OpenSSL and the stream: reads come from the span given to receive(),
// writes append to the output buffer. It never blocks and never fails a write.

struct TlsBio {
    static int write(BIO* bio, const char* data, int size) {
        auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
        const auto n = static_cast<std::size_t>(size);
        std::vector<std::uint8_t>& out = stream->output_;
        if (out.capacity() - out.size() < n) {
            // A full record means bulk output: make room for a whole batch at once (the limit
            // plus records' overhead), so that growing the buffer copies nothing.
            out.reserve(std::max(out.size() + n, n > kRecordPlaintext
                                                     ? TlsStream::kOutputLimit + kBatchOverhead
                                                     : std::size_t{0}));
        }
        out.insert(out.end(), bytes, bytes + n);
        return size;
    }

    static int read(BIO* bio, char* out, int size) {
        auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (stream->stash_read_ < stream->stash_.size()) {
            const std::size_t n = std::min(stream->stash_.size() - stream->stash_read_,
                                           static_cast<std::size_t>(size));
            std::memcpy(out, stream->stash_.data() + stream->stash_read_, n);
            stream->stash_read_ += n;
            if (stream->stash_read_ == stream->stash_.size()) {
                std::vector<std::uint8_t>().swap(stream->stash_);
                stream->stash_read_ = 0;
            }
            return static_cast<int>(n);
        }
        if (stream->input_left_ == 0) {
            BIO_set_retry_read(bio);  // SSL_ERROR_WANT_READ: wait for the transport
            return -1;
        }
        const std::size_t n = std::min(stream->input_left_, static_cast<std::size_t>(size));
        std::memcpy(out, stream->input_, n);
        stream->input_ += n;
        stream->input_left_ -= n;
        return static_cast<int>(n);
    }

    static long control(BIO*, int command, long, void*) {
        return command == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is held back, so flushing is done
    }

    static int create(BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
    }

    static int destroy(BIO*) { return 1; }

    static BIO_METHOD* method() {
        static BIO_METHOD* const instance = [] {
            BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wsx");
            BIO_meth_set_write(m, write);
            BIO_meth_set_read(m, read);
            BIO_meth_set_ctrl(m, control);
            BIO_meth_set_create(m, create);
            BIO_meth_set_destroy(m, destroy);
            return m;
        }();
        return instance;
    }
};

// ---- TlsStream

TlsStream::TlsStream(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {}

TlsStream::~TlsStream() {
    if (ssl_ != nullptr) SSL_free(ssl_);
}

bool TlsStream::attach(ssl_st* ssl) {
    ssl_ = ssl;
    if (ssl_ == nullptr) return false;
    BIO* bio = BIO_new(TlsBio::method());
    if (bio == nullptr) return false;
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);  // one reference, owned by the SSL from now on
    return true;
}

std::unique_ptr<TlsStream> TlsStream::server(std::shared_ptr<const TlsContext> context) {
    std::unique_ptr<TlsStream> stream(new TlsStream(std::move(context)));
    ERR_clear_error();
    if (!stream->attach(SSL_new(stream->context_->native()))) {
        stream->fail(SSL_ERROR_SSL);
        return stream;
    }
    SSL_set_accept_state(stream->ssl_);
    return stream;
}

std::unique_ptr<TlsStream> TlsStream::client(std::shared_ptr<const TlsContext> context,
                                             std::string_view host) {
    std::unique_ptr<TlsStream> stream(new TlsStream(std::move(context)));
    ERR_clear_error();
    if (!stream->attach(SSL_new(stream->context_->native()))) {
        stream->fail(SSL_ERROR_SSL);
        return stream;
    }
    SSL* ssl = stream->ssl_;
    SSL_set_connect_state(ssl);
    const std::string name(host);
    const bool ip = is_ip_literal(name);
    // RFC 6066 §3: literal IP addresses are not permitted in SNI.
    bool ok = ip || SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                             const_cast<char*>(name.c_str())) == 1;
    if (ok && stream->context_->verifies_peer()) {
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1
                : SSL_set1_host(ssl, name.c_str()) == 1;
    }
    if (!ok) {
        stream->fail(SSL_ERROR_SSL);
        return stream;
    }
    stream->advance_handshake();  // the ClientHello
    return stream;
}

void TlsStream::advance_handshake() {
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
        state_ = TlsState::open;
        return;
    }
    const int error = SSL_get_error(ssl_, rc);
    if (error != SSL_ERROR_WANT_READ) fail(error);
}

void TlsStream::fail(int ssl_error) {
    state_ = TlsState::failed;
    const unsigned long code = ERR_peek_error();
    if (ssl_ != nullptr && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        const long verify = SSL_get_verify_result(ssl_);
        verify_failed_ = true;
        error_ = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
        ERR_clear_error();
        return;
    }
    if (ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST) {
        error_ = "a plain HTTP request on the TLS port";
        ERR_clear_error();
        return;
    }
    if (code == 0) {
        error_ = ssl_error == SSL_ERROR_SYSCALL ? "the TLS input ended unexpectedly"
                                                : "TLS error " + std::to_string(ssl_error);
        return;
    }
    error_ = openssl_reason();
}

TlsStream::Received TlsStream::receive(std::span<std::uint8_t> buffer,
                                       std::size_t ciphertext_size) {
    if (state_ == TlsState::closed || state_ == TlsState::failed) return {0, state_, false};
    input_ = buffer.data();
    input_left_ = std::min(ciphertext_size, buffer.size());
    if (state_ == TlsState::handshaking) advance_handshake();
    // Plaintext goes in front of the read position: OpenSSL copies a record out of the input
    // before decrypting it, so the room up to the first unread byte is free. A record's plaintext
    // is shorter than its ciphertext, but one completed by this input may have begun in an
    // earlier one, so that room can run out while input is left: then the unread input moves
    // to the stash and the whole buffer is room.
    std::size_t produced = 0;
    while (state_ == TlsState::open) {
        const std::size_t end =
            input_left_ > 0 ? static_cast<std::size_t>(input_ - buffer.data()) : buffer.size();
        if (produced >= end) {
            if (input_left_ == 0) break;  // the buffer is full: has_pending() tells the caller
            stash_.insert(stash_.end(), input_, input_ + input_left_);
            input_left_ = 0;
            continue;
        }
        ERR_clear_error();
        std::size_t got = 0;
        const int rc = SSL_read_ex(ssl_, buffer.data() + produced,
                                   std::min<std::size_t>(end - produced, INT_MAX), &got);
        if (rc == 1) {
            produced += got;
            continue;
        }
        const int error = SSL_get_error(ssl_, rc);
        if (error == SSL_ERROR_WANT_READ) break;
        if (error == SSL_ERROR_ZERO_RETURN) {
            state_ = TlsState::closed;  // close_notify (RFC 8446 §6.1)
            break;
        }
        fail(error);
    }
    // Input the handshake did not need before it failed or closed is dropped with the stream.
    input_ = nullptr;
    input_left_ = 0;
    return {produced, state_, has_pending()};
}

bool TlsStream::has_pending() const noexcept {
    return state_ == TlsState::open &&
           (stash_read_ < stash_.size() || (ssl_ != nullptr && SSL_pending(ssl_) > 0));
}

bool TlsStream::encrypt(const std::uint8_t* data, std::size_t size) {
    ERR_clear_error();
    std::size_t written = 0;
    const int rc = SSL_write_ex(ssl_, data, size, &written);
    if (rc == 1) return true;
    fail(SSL_get_error(ssl_, rc));
    return false;
}

std::size_t TlsStream::send(std::span<const proto::IoSlice> plaintext) {
    if (state_ != TlsState::open || close_sent_) return 0;
    std::uint8_t stage[kRecordPlaintext];
    std::size_t staged = 0;
    std::size_t taken = 0;
    for (const proto::IoSlice& slice : plaintext) {
        const std::size_t used = buffered() + staged;
        if (used >= kOutputLimit) break;
        const auto* data = static_cast<const std::uint8_t*>(slice.data);
        const std::size_t n = std::min(slice.size, kOutputLimit - used);
        if (staged + n > sizeof stage) {
            if (staged > 0 && !encrypt(stage, staged)) return taken;
            staged = 0;
        }
        if (n >= sizeof stage) {
            if (!encrypt(data, n)) return taken;
        } else {
            std::memcpy(stage + staged, data, n);
            staged += n;
        }
        taken += n;
        if (n < slice.size) break;
    }
    if (staged > 0) static_cast<void>(encrypt(stage, staged));
    return taken;
}

std::size_t TlsStream::send(std::span<const std::uint8_t> plaintext) {
    const proto::IoSlice slice{plaintext.data(), plaintext.size()};
    return send(std::span<const proto::IoSlice>(&slice, 1));
}

void TlsStream::consume_output(std::size_t n) noexcept {
    output_sent_ += std::min(n, buffered());
    if (output_sent_ == output_.size()) {
        // Freed rather than kept: an idle connection should cost no buffer at all.
        std::vector<std::uint8_t>().swap(output_);
        output_sent_ = 0;
    }
}

void TlsStream::close() {
    if (close_sent_) return;
    close_sent_ = true;
    if (state_ != TlsState::open && state_ != TlsState::closed) return;
    ERR_clear_error();
    static_cast<void>(SSL_shutdown(ssl_));  // writes close_notify; the answer is not awaited
    ERR_clear_error();
}

std::string_view TlsStream::version() const noexcept {
    return ssl_ != nullptr ? SSL_get_version(ssl_) : "";
}

std::string_view TlsStream::alpn() const noexcept {
    if (ssl_ == nullptr) return {};
    const unsigned char* data = nullptr;
    unsigned int size = 0;
    SSL_get0_alpn_selected(ssl_, &data, &size);
    return data == nullptr ? std::string_view()
                           : std::string_view(reinterpret_cast<const char*>(data), size);
}

std::string_view TlsStream::server_name() const noexcept {
    if (ssl_ == nullptr) return {};
    const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    return name == nullptr ? std::string_view() : std::string_view(name);
}

}  // namespace wsx::net
