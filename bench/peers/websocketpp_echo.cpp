// Echo peer for bench/compare: websocketpp on Boost.Asio (its default transport), single-threaded,
// as in the library's examples/echo_server (asio config without TLS, one run() thread, the echo
// handler sends the message back with its own opcode).
// Usage: websocketpp_echo PORT   (binds 127.0.0.1)
#include <cstdio>
#include <cstdlib>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

using Server = websocketpp::server<websocketpp::config::asio>;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: websocketpp_echo PORT\n");
        return 2;
    }
    const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    Server server;
    server.clear_access_channels(websocketpp::log::alevel::all);
    server.clear_error_channels(websocketpp::log::elevel::all);
    server.init_asio();
    server.set_reuse_addr(true);
    server.set_max_message_size(64 * 1024 * 1024);
    server.set_listen_backlog(4096);
    // TCP_NODELAY as wsx sets it; the socket is open only once the TCP connection exists.
    server.set_tcp_pre_init_handler([&server](websocketpp::connection_hdl hdl) {
        server.get_con_from_hdl(hdl)->get_raw_socket().set_option(
            boost::asio::ip::tcp::no_delay(true));
    });
    server.set_message_handler([&server](websocketpp::connection_hdl hdl, Server::message_ptr msg) {
        websocketpp::lib::error_code ec;
        server.send(hdl, msg->get_payload(), msg->get_opcode(), ec);
    });
    server.listen(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    server.start_accept();
    std::fprintf(stderr, "websocketpp_echo: listening on 127.0.0.1:%u\n", port);
    server.run();
    return 0;
}
