// A WebSocket echo server on Boost.Asio that drives wsx's sans-IO engine itself: Asio owns the
// io_context and the sockets, proto::ServerHandshake reads the HTTP upgrade request, and
// proto::Connection turns received bytes into messages and sends into bytes.
//
//   echo_asio [PORT]      listens on 127.0.0.1 (port 0 or none: a free one, printed on stderr)
// Callbacks, not coroutines: Boost 1.74's coroutine header does not compile under GCC 12 in C++20
// (asio/awaitable.hpp uses std::exchange without <utility>), and clang 14 lacks its co_await.
#define BOOST_ASIO_DISABLE_CO_AWAIT
#include <array>
#include <boost/asio.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "proto/connection.hpp"
#include "proto/handshake.hpp"

namespace asio = boost::asio;
namespace proto = wsx::proto;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// Shared by every handshake (it must outlive them): same-origin policy, 8 KiB request head.
const proto::ServerOptions kHandshakeOptions{};

// Sends every message back. The engine answers pings and the peer's close frame by itself.
struct EchoHandler {
    proto::Connection* conn = nullptr;
    void on_message(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
        conn->send(opcode, payload);
    }
};

// One connection; pending handlers hold it alive through shared_from_this().
class Session : public std::enable_shared_from_this<Session> {
  public:
    explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

    void read() {
        socket_.async_read_some(
            asio::buffer(buffer_),
            [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
    }

  private:
    void on_read(error_code ec, std::size_t n) {
        if (ec) {  // EOF or a reset: on_close (1006 unless the close handshake was done)
            if (conn_) conn_->transport_closed(handler_);
            return;  // the socket closes with the last handler holding the session
        }
        if (!conn_) {
            if (!upgrade(n)) return flush();
        } else {
            // Payloads are unmasked in place in buffer_ and echoed from there.
            conn_->receive({buffer_.data(), n}, handler_);
        }
        flush();
        if (conn_->state() != proto::State::closed) read();
    }

    // The opening handshake: false while the request is incomplete or after it was refused.
    bool upgrade(std::size_t n) {
        head_.append(reinterpret_cast<const char*>(buffer_.data()), n);
        const proto::HttpParseResult r = handshake_.parse(head_);
        if (r.status == proto::ParseStatus::need_more) {
            read();
            return false;
        }
        if (r.status == proto::ParseStatus::error) {
            const std::string answer = proto::write_error_response(r.error);  // 400, 405 ...
            out_.assign(answer.begin(), answer.end());
            refused_ = true;
            return false;
        }
        const std::string answer = handshake_.accept_response();
        out_.assign(answer.begin(), answer.end());
        conn_.emplace(proto::Role::server);
        handler_.conn = &*conn_;
        // Bytes after the request are already WebSocket frames.
        std::vector<std::uint8_t> rest(head_.begin() + static_cast<long>(handshake_.consumed()),
                                       head_.end());
        conn_->receive(rest, handler_);
        return true;
    }

    // One async_write at a time (Asio's rule for a stream). Its bytes are a copy: the engine's
    // output queue may move its storage when the next frame is queued during the write. (A
    // server facing slow readers would also stop reading while buffered_amount() is high.)
    void flush() {
        if (writing_) return;
        if (conn_) {
            proto::IoSlice slices[16];
            while (const std::size_t n = conn_->pending_output(slices)) {
                std::size_t taken = 0;
                for (std::size_t i = 0; i < n; ++i) {
                    const auto* data = static_cast<const std::uint8_t*>(slices[i].data);
                    out_.insert(out_.end(), data, data + slices[i].size);
                    taken += slices[i].size;
                }
                conn_->consume_output(taken);
            }
        }
        if (out_.empty()) return close_if_done();
        writing_ = true;
        asio::async_write(socket_, asio::buffer(out_),
                          [self = shared_from_this()](error_code ec, std::size_t) {
                              self->writing_ = false;
                              self->out_.clear();
                              if (!ec) self->flush();
                          });
    }

    // RFC 6455 §7.1.1: after the close handshake (or a protocol error) the server closes TCP.
    void close_if_done() {
        if (refused_ || (conn_ && conn_->close_transport_now())) {
            error_code ignored;
            socket_.shutdown(tcp::socket::shutdown_send, ignored);
            socket_.close(ignored);
        }
    }

    tcp::socket socket_;
    std::array<std::uint8_t, 64 * 1024> buffer_;
    std::string head_;  // the request as received so far: the parser's views point into it
    proto::ServerHandshake handshake_{kHandshakeOptions};
    std::optional<proto::Connection> conn_;
    EchoHandler handler_;
    std::vector<std::uint8_t> out_;  // the bytes being written
    bool writing_ = false;
    bool refused_ = false;
};

void accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](error_code ec, tcp::socket socket) {
        if (!ec) std::make_shared<Session>(std::move(socket))->read();
        accept(acceptor);
    });
}

}  // namespace

int main(int argc, char** argv) {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
    asio::io_context io;
    tcp::acceptor acceptor(io);
    error_code ec;
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::fprintf(stderr, "echo_asio: %s\n", ec.message().c_str());
        return 1;
    }
    std::fprintf(stderr, "listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
    accept(acceptor);
    io.run();
}
