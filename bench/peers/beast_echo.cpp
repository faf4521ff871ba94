// Echo peer for bench/compare: Boost.Beast, single-threaded, in the style of Beast's own
// websocket_server_async example (one io_context run on one thread, a session object per
// connection kept alive by shared_ptr, async_read -> async_write -> async_read).
// Usage: beast_echo PORT   (binds 127.0.0.1)
// With PEER_TLS_CERT and PEER_TLS_KEY (PEM files) set it serves wss:// as Beast's
// websocket_server_async_ssl example does: websocket::stream<ssl_stream<tcp_stream>>, the TLS
// handshake under a timeout, then the WebSocket accept.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <type_traits>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

template <typename NextLayer>
class Session : public std::enable_shared_from_this<Session<NextLayer>> {
  public:
    explicit Session(tcp::socket&& socket) : ws_(std::move(socket)) {}
    Session(tcp::socket&& socket, ssl::context& ctx) : ws_(std::move(socket), ctx) {}

    void run() {
        if constexpr (std::is_same_v<NextLayer, beast::tcp_stream>) {
            accept();
        } else {
            beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
            ws_.next_layer().async_handshake(
                ssl::stream_base::server,
                beast::bind_front_handler(&Session::on_handshake, this->shared_from_this()));
        }
    }

  private:
    void on_handshake(beast::error_code ec) {
        if (ec) return;
        beast::get_lowest_layer(ws_).expires_never();  // the websocket stream has its own
        accept();
    }
    void accept() {
        ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws_.read_message_max(64 * 1024 * 1024);
        ws_.async_accept(beast::bind_front_handler(&Session::on_accept, this->shared_from_this()));
    }
    void on_accept(beast::error_code ec) {
        if (ec) return;
        do_read();
    }
    void do_read() {
        ws_.async_read(buffer_,
                       beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
    }
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        ws_.text(ws_.got_text());
        ws_.async_write(buffer_.data(),
                        beast::bind_front_handler(&Session::on_write, this->shared_from_this()));
    }
    void on_write(beast::error_code ec, std::size_t) {
        if (ec) return;
        buffer_.consume(buffer_.size());
        do_read();
    }

    websocket::stream<NextLayer> ws_;
    beast::flat_buffer buffer_;
};

class Listener : public std::enable_shared_from_this<Listener> {
  public:
    Listener(net::io_context& ioc, tcp::endpoint endpoint, ssl::context* tls)
        : ioc_(ioc), acceptor_(ioc), tls_(tls) {
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(net::socket_base::max_listen_connections);
    }
    void run() { do_accept(); }

  private:
    void do_accept() {
        acceptor_.async_accept(net::make_strand(ioc_),
                               beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
    }
    void on_accept(beast::error_code ec, tcp::socket socket) {
        if (!ec) {
            socket.set_option(tcp::no_delay(true));
            if (tls_ != nullptr) {
                std::make_shared<Session<ssl::stream<beast::tcp_stream>>>(std::move(socket), *tls_)
                    ->run();
            } else {
                std::make_shared<Session<beast::tcp_stream>>(std::move(socket))->run();
            }
        }
        do_accept();
    }

    net::io_context& ioc_;
    tcp::acceptor acceptor_;
    ssl::context* tls_;
};

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: beast_echo PORT\n");
        return 2;
    }
    const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    net::io_context ioc{1};
    std::optional<ssl::context> tls;
    const char* cert = std::getenv("PEER_TLS_CERT");
    const char* key = std::getenv("PEER_TLS_KEY");
    if (cert != nullptr && key != nullptr && *cert != 0 && *key != 0) {
        tls.emplace(ssl::context::tls_server);
        tls->use_certificate_chain_file(cert);
        tls->use_private_key_file(key, ssl::context::pem);
    }
    std::make_shared<Listener>(ioc, tcp::endpoint{net::ip::make_address("127.0.0.1"), port},
                               tls ? &*tls : nullptr)
        ->run();
    std::fprintf(stderr, "beast_echo: listening on 127.0.0.1:%u\n", port);
    ioc.run();
    return 0;
}
