// The server's limits over loopback TCP: message size (1009), the buffered-output cap for a
// consumer that does not read (1008), receive-side backpressure, and the write wait.
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "net/server.hpp"
#include "server_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::SendStatus;
using wsx::net::ServerOptions;
using wsx::net::SessionHandle;
using wsx::net::WsSession;
using wsx::net::testing::ClientEvent;
using wsx::net::testing::connect_loopback;
using wsx::net::testing::EchoRecorder;
using wsx::net::testing::eventually;
using wsx::net::testing::test_options;
using wsx::net::testing::TestClient;
using wsx::net::testing::TestServer;
using wsx::net::testing::text_of;
using wsx::proto::Opcode;

namespace {

// Remembers the session's handle and the largest buffered_amount() it ever saw after a send.
struct Pusher : EchoRecorder {
    std::mutex mutex;
    SessionHandle handle;
    std::atomic<std::size_t> peak_buffered{0};
    std::atomic<bool> refused{false};
    std::atomic<int> refused_status{-1};

    void on_open(WsSession& session) override {
        EchoRecorder::on_open(session);
        const std::lock_guard<std::mutex> lock(mutex);
        handle = session.handle();
    }
    void on_message(WsSession& session, Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        EchoRecorder::on_message(session, opcode, payload);
        note(session);
    }
    void note(WsSession& session) {
        std::size_t seen = peak_buffered.load();
        const std::size_t now = session.buffered_amount();
        while (now > seen && !peak_buffered.compare_exchange_weak(seen, now)) {
        }
    }
    SessionHandle get() {
        const std::lock_guard<std::mutex> lock(mutex);
        return handle;
    }
};

// A fixed receive buffer instead of the kernel's autotuned one (up to megabytes), so that what the
// kernel can absorb stays small next to what the tests send.
void shrink_receive_buffer(int fd, int size = 16 * 1024) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

}  // namespace

TEST_CASE_TEMPLATE("server fails a message over max_message_size with 1009", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder handler;
    ServerOptions options = test_options(B::value);
    options.session.connection.max_message_size = 1024;
    TestServer server(options, handler);

    TestClient client(server.port());
    REQUIRE(client.handshake() == 101);
    client.send_binary(std::vector<std::uint8_t>(1024, 1));
    CHECK(client.next_non_control().data.size() == 1024);

    // RFC 6455 §7.4.1: 1009, a message too big to process. Fragments count together.
    REQUIRE(client.connection().send_frame(Opcode::binary, std::vector<std::uint8_t>(600, 2),
                                           false) == wsx::proto::Error::none);
    REQUIRE(client.connection().send_frame(Opcode::continuation, std::vector<std::uint8_t>(600, 2),
                                           true) == wsx::proto::Error::none);
    client.flush();
    const ClientEvent e = client.next_non_control();
    REQUIRE(e.kind == ClientEvent::Kind::close);
    CHECK(e.close_code == 1009);
    CHECK(client.next_non_control().kind == ClientEvent::Kind::eof);
    REQUIRE(eventually([&] { return handler.closed.load() == 1; }));
    CHECK(handler.closes().at(0).code == 1009);
    CHECK(handler.messages.load() == 1);
}

TEST_CASE_TEMPLATE("a consumer that never reads is closed with 1008 at the buffered-bytes cap", B,
                   WSX_NET_TEST_BACKENDS) {
    Pusher handler;
    ServerOptions options = test_options(B::value);
    constexpr std::size_t kCap = 1024 * 1024;
    options.session.max_buffered_bytes = kCap;
    options.session.high_watermark = 256 * 1024;
    options.session.low_watermark = 64 * 1024;
    options.session.write_wait = 20s;
    options.session.close_timeout = 20s;
    TestServer server(options, handler);

    TestClient client(server.port());
    shrink_receive_buffer(client.fd());
    REQUIRE(client.handshake() == 101);
    REQUIRE(eventually([&] { return handler.opened.load() == 1; }));

    // The application ignores backpressure and pushes 64 KiB messages; the client reads none.
    const SessionHandle handle = handler.get();
    const std::vector<std::uint8_t> chunk(64 * 1024, 7);
    std::atomic<int> sent{0};
    const bool hit_cap = eventually(
        [&] {
            handle.post([&](WsSession& session) {
                const SendStatus status = session.send_binary(chunk);
                handler.note(session);
                if (status == SendStatus::ok) sent.fetch_add(1);
                if (status != SendStatus::ok && !handler.refused.exchange(true)) {
                    handler.refused_status = static_cast<int>(status);
                }
            });
            std::this_thread::sleep_for(1ms);
            return handler.refused.load();
        },
        10s);
    REQUIRE(hit_cap);
    CHECK(handler.refused_status.load() == static_cast<int>(SendStatus::over_limit));
    // Memory stayed bounded: never more than the cap (plus the close frame) queued.
    CHECK(handler.peak_buffered.load() <= kCap + 128);
    CHECK(handler.peak_buffered.load() > kCap - 2 * chunk.size());

    // Everything accepted before the cap arrives, then the 1008 close.
    int received = 0;
    ClientEvent e;
    for (;;) {
        e = client.next_non_control();
        if (e.kind != ClientEvent::Kind::message) break;
        CHECK(e.data.size() == chunk.size());
        ++received;
    }
    REQUIRE(e.kind == ClientEvent::Kind::close);
    CHECK(e.close_code == 1008);
    CHECK(client.next().kind == ClientEvent::Kind::eof);
    CHECK(received == sent.load());
    REQUIRE(eventually([&] { return handler.closed.load() == 1; }));
    CHECK(handler.closes().at(0).code == 1008);
}

TEST_CASE_TEMPLATE("a client that sends without reading makes the server stop reading", B,
                   WSX_NET_TEST_BACKENDS) {
    Pusher handler;
    ServerOptions options = test_options(B::value);
    options.session.high_watermark = 128 * 1024;
    options.session.low_watermark = 32 * 1024;
    options.session.max_buffered_bytes = 1024 * 1024;
    TestServer server(options, handler);

    TestClient client(server.port());
    shrink_receive_buffer(client.fd(), 256 * 1024);
    REQUIRE(client.handshake() == 101);

    // 16 MiB of echo requests with nothing read back: without receive-side backpressure the
    // echoes would pass the 1 MiB cap and the server would close with 1008. A second client-role
    // Connection frames them, so the reading one is never touched by two threads.
    const std::vector<std::uint8_t> chunk(16 * 1024, 3);
    constexpr int kMessages = 1024;
    std::thread writer([&] {
        wsx::proto::Connection framer(wsx::proto::Role::client);
        wsx::proto::IoSlice slices[8];
        for (int i = 0; i < kMessages; ++i) {
            if (framer.send_binary(chunk) != wsx::proto::Error::none) break;
            while (framer.wants_write()) {
                const std::size_t n = framer.pending_output(slices);
                std::size_t total = 0;
                for (std::size_t k = 0; k < n; ++k) {
                    const auto* p = static_cast<const std::uint8_t*>(slices[k].data);
                    if (!wsx::net::testing::send_all(client.fd(), {p, slices[k].size})) return;
                    total += slices[k].size;
                }
                framer.consume_output(total);
            }
        }
    });
    std::this_thread::sleep_for(300ms);
    // The server stopped reading: far fewer messages than sent have been processed so far.
    CHECK(handler.messages.load() < kMessages);
    int echoed = 0;
    while (echoed < kMessages) {
        const ClientEvent e = client.next_non_control();
        if (e.kind != ClientEvent::Kind::message) break;
        ++echoed;
    }
    writer.join();
    CHECK(echoed == kMessages);
    // Paused above the high watermark: at most one read's worth of echoes (64 KiB, plus a
    // message begun in the read before) lands on top of it.
    CHECK(handler.peak_buffered.load() <= options.session.high_watermark + 96 * 1024);
    CHECK(handler.closed.load() == 0);
}

TEST_CASE_TEMPLATE("server drops a connection whose writes make no progress for write_wait", B,
                   WSX_NET_TEST_BACKENDS) {
    Pusher handler;
    ServerOptions options = test_options(B::value);
    options.session.write_wait = 300ms;
    options.session.max_buffered_bytes = 64 * 1024 * 1024;
    TestServer server(options, handler);

    TestClient client(server.port());
    shrink_receive_buffer(client.fd());
    REQUIRE(client.handshake() == 101);
    REQUIRE(eventually([&] { return handler.opened.load() == 1; }));
    const std::vector<std::uint8_t> chunk(1024 * 1024, 9);
    handler.get().post([&](WsSession& session) {
        for (int i = 0; i < 16; ++i)
            session.send_binary(chunk);
    });
    REQUIRE(eventually([&] { return handler.closed.load() == 1; }, 5s));
    CHECK(handler.closes().at(0).code == 1006);
    CHECK(handler.closes().at(0).reason == "no write progress within write_wait");
}

TEST_CASE_TEMPLATE("connections beyond max_pending_handshakes wait in the accept queue, not closed",
                   B, WSX_NET_TEST_BACKENDS) {
    // Two handshake slots on one thread, both held by silent sockets: a third client must be
    // left in the kernel's accept queue and served once a slot frees (here: the silent sockets'
    // handshake timeout), never accepted and closed.
    EchoRecorder handler;
    ServerOptions options = test_options(B::value);
    options.threads = 1;
    options.max_pending_handshakes = 2;
    options.handshake_timeout = std::chrono::milliseconds(300);
    TestServer server(options, handler);

    const int silent_a = connect_loopback(server.port());
    const int silent_b = connect_loopback(server.port());
    REQUIRE(silent_a >= 0);
    REQUIRE(silent_b >= 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // both accepted by now

    TestClient client(server.port());
    REQUIRE(client.handshake() == 101);
    client.send_text("still served");
    const ClientEvent e = client.next_non_control();
    REQUIRE(e.kind == ClientEvent::Kind::message);
    CHECK(text_of(e.data) == "still served");
    ::close(silent_a);
    ::close(silent_b);
}
