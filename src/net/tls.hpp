// TLS (1.2 and 1.3, OpenSSL) as a sans-IO layer between a transport and proto::Connection: no
// socket, no thread, no clock. The owner feeds it the ciphertext it read and gets the plaintext
// back; hands it plaintext and takes the ciphertext to write. The reactor, an embedder's own event
// loop or a test in memory drive it the same way.
//
//   auto context = make_server_context({.cert_file = "chain.pem", .key_file = "key.pem"});
//   std::unique_ptr<TlsStream> tls = TlsStream::server(context.context);
//   // read:  n = read(fd, buf);  r = tls->receive(buf, n);  use {buf, r.plaintext};
//   //        while (r.more) { r = tls->receive(buf, 0);  use {buf, r.plaintext}; }
//   // write: tls->send(plaintext_slices) → taken;  write(fd, tls->pending_output()) → k;
//   //        tls->consume_output(k)
//
// Memory: decryption is in place: plaintext is written over ciphertext already consumed, never
// over input still unread, so usually no ciphertext is copied or buffered here beyond the
// partial record OpenSSL holds. Only when a record completed by this input carries more
// plaintext than there is room for (e.g. it arrived in tiny pieces) is the unread rest of the
// input set aside, bounded by that input's size and freed once consumed. Encrypted output waits in
// one buffer bounded by kOutputLimit: send() takes plaintext only while there is room, so a peer
// that does not read backs the plaintext up in the caller's own (bounded) queue instead. Idle
// streams release every buffer (SSL_MODE_RELEASE_BUFFERS and an emptied output buffer is freed).
//
// Threading: a TlsContext is immutable and may be shared by streams on any number of threads; a
// TlsStream belongs to one thread at a time, like the connection it serves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/output_queue.hpp"

// OpenSSL's types, declared here so that users of this header need not include OpenSSL.
struct ssl_ctx_st;
struct ssl_st;

namespace wsx::net {

// TLS 1.2 cipher suites: ECDHE key exchange with AEAD ciphers only (no CBC, no RSA key
// transport, no SHA-1 MACs). TLS 1.3 keeps OpenSSL's defaults, which are all AEAD.
inline constexpr const char* kDefaultTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// A certificate chain and its key, both PEM files, served to clients asking for `host` (SNI).
struct TlsCertificate {
    std::string host;       // exact DNS name, case-insensitive
    std::string cert_file;  // the leaf first, then intermediates
    std::string key_file;
};

struct TlsServerOptions {
    // The default certificate: served when the client sends no SNI or a name not in `sni`.
    std::string cert_file;
    std::string key_file;
    // More certificates, chosen by the SNI host name (RFC 6066 §3).
    std::vector<TlsCertificate> sni{};
    std::string tls12_ciphers = kDefaultTls12Ciphers;
    // A failed handshake (plain HTTP on the TLS port, garbage, an alert from the client ...):
    // called on the server thread that saw it, with the peer's address and the reason. Optional.
    std::function<void(std::string_view peer, std::string_view reason)> on_handshake_error{};
};

struct TlsClientOptions {
    // PEM file of trusted CA certificates; empty: the system's trust store.
    std::string ca_file;
    // Skip certificate and host name verification. Only when asked for: it lets anyone on the
    // path read and change the traffic.
    bool insecure = false;
    std::string tls12_ciphers = kDefaultTls12Ciphers;
};

// One or more SSL_CTX (the default one, plus one per SNI name), immutable once made and shared
// by every stream made from it. A stream keeps its context alive, so a reload can replace the
// context while old connections go on with the old certificate.
class TlsContext {
  public:
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    bool is_server() const noexcept { return server_; }
    // A client context that checks the server's certificate and host name.
    bool verifies_peer() const noexcept { return verify_peer_; }
    ssl_ctx_st* native() const noexcept { return ctx_; }
    // The context serving `host` (SNI), or the default one.
    ssl_ctx_st* for_host(std::string_view host) const noexcept;

  private:
    friend struct TlsContextBuilder;
    TlsContext() = default;

    bool server_ = false;
    bool verify_peer_ = false;
    ssl_ctx_st* ctx_ = nullptr;
    std::vector<std::pair<std::string, ssl_ctx_st*>> by_host_;
};

struct TlsContextResult {
    std::shared_ptr<const TlsContext> context;
    std::string error;  // what failed and OpenSSL's reason, when context is null

    bool ok() const noexcept { return context != nullptr; }
};

// Loads every certificate and key and checks each key against its certificate.
TlsContextResult make_server_context(const TlsServerOptions& options);
// Loads the trust store (system or ca_file) unless insecure.
TlsContextResult make_client_context(const TlsClientOptions& options);

enum class TlsState : std::uint8_t {
    handshaking,
    open,    // handshake done: application data flows
    closed,  // the peer sent close_notify
    failed,  // a fatal error (error() says which); an alert may be waiting in pending_output()
};

class TlsStream {
  public:
    // Encrypted bytes waiting to be written are bounded by this (plus one record).
    static constexpr std::size_t kOutputLimit = 64 * 1024;

    // A server stream; SNI and ALPN are answered from `context`.
    static std::unique_ptr<TlsStream> server(std::shared_ptr<const TlsContext> context);
    // A client stream for `host`: sent as SNI (unless an IP literal) and checked against the
    // certificate (DNS name or IP address) unless the context is insecure. The ClientHello is in
    // pending_output() at once.
    static std::unique_ptr<TlsStream> client(std::shared_ptr<const TlsContext> context,
                                             std::string_view host);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    struct Received {
        std::size_t plaintext = 0;  // the first this many bytes of the buffer are now plaintext
        TlsState state = TlsState::handshaking;
        // More plaintext is waiting: call receive(buffer, 0) again once these bytes are used.
        bool more = false;
    };
    // Takes the ciphertext buffer[0, ciphertext_size) (what the transport read) and writes the
    // application data it carried to the front of `buffer`, using all of the buffer as room.
    // Drives the handshake too; its answers land in pending_output(). Once closed or failed,
    // further input is ignored.
    Received receive(std::span<std::uint8_t> buffer, std::size_t ciphertext_size);
    // Plaintext or input is waiting for a receive(buffer, 0).
    bool has_pending() const noexcept;

    // Encrypts a prefix of the slices' concatenation, as much as fits under kOutputLimit, and
    // returns its length (0 before the handshake is done or after close()/a failure).
    std::size_t send(std::span<const proto::IoSlice> plaintext);
    std::size_t send(std::span<const std::uint8_t> plaintext);

    // Encrypted bytes to write, and how many of them were written.
    std::span<const std::uint8_t> pending_output() const noexcept {
        return {output_.data() + output_sent_, output_.size() - output_sent_};
    }
    void consume_output(std::size_t n) noexcept;
    std::size_t buffered() const noexcept { return output_.size() - output_sent_; }
    bool wants_write() const noexcept { return buffered() > 0; }

    // Queues close_notify (once); send() takes nothing afterwards.
    void close();
    bool close_sent() const noexcept { return close_sent_; }

    TlsState state() const noexcept { return state_; }
    bool handshake_done() const noexcept { return state_ == TlsState::open; }
    // Why the stream failed, e.g. "certificate verify failed: hostname mismatch" or
    // "http request" (plain HTTP on a TLS port). Empty unless failed.
    const std::string& error() const noexcept { return error_; }
    // True when the failure is the peer's certificate not passing verification.
    bool verify_failed() const noexcept { return verify_failed_; }
    // The negotiated protocol version ("TLSv1.3"), ALPN ("http/1.1" or empty) and, on a server,
    // the SNI name the client sent (empty if none).
    std::string_view version() const noexcept;
    std::string_view alpn() const noexcept;
    std::string_view server_name() const noexcept;
    // The OpenSSL connection, for what this API does not cover (peer certificate, session).
    ssl_st* native_handle() const noexcept { return ssl_; }

  private:
    friend struct TlsBio;
    explicit TlsStream(std::shared_ptr<const TlsContext> context);

    bool attach(ssl_st* ssl);
    void advance_handshake();
    void fail(int ssl_error);
    bool encrypt(const std::uint8_t* data, std::size_t size);

    std::shared_ptr<const TlsContext> context_;
    ssl_st* ssl_ = nullptr;
    // The input OpenSSL reads from during receive(): never owned, never kept past the call.
    const std::uint8_t* input_ = nullptr;
    std::size_t input_left_ = 0;
    // Input set aside because plaintext needed its room; read before input_.
    std::vector<std::uint8_t> stash_;
    std::size_t stash_read_ = 0;
    std::vector<std::uint8_t> output_;
    std::size_t output_sent_ = 0;
    TlsState state_ = TlsState::handshaking;
    bool close_sent_ = false;
    bool verify_failed_ = false;
    std::string error_;
};

}  // namespace wsx::net
