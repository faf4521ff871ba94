// The hub end to end over loopback: topics, churn, ordering, broadcast, disconnect cleanup, slow
// consumers under both policies, permessage-deflate subscribers and GET /metrics, on each backend.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hub_test_support.hpp"
#include "proto/deflate.hpp"

using namespace wsx;
using namespace wsx::hub::testing;
using wsx::hub::Hub;
using wsx::hub::HubOptions;
using wsx::hub::SlowConsumerPolicy;

TEST_CASE_TEMPLATE(
    "a message published to a topic reaches each of its subscribers once and no "
    "one else",
    B, WSX_NET_TEST_BACKENDS) {
    Hub hub;
    HubServer server(hub, hub_server_options(B::value));
    HubClient news1(server.port(), "/?sub=news");
    HubClient news2(server.port(), "/?sub=news,sport");
    HubClient sport(server.port(), "/?sub=sport");
    REQUIRE(eventually([&] { return hub.stats().subscriptions == 4; }));
    CHECK(hub.stats().connections == 3);

    REQUIRE(hub.publish("news", "headline"));
    REQUIRE(hub.publish("sport", "score"));
    CHECK(news1.next_text() == "headline");
    CHECK(news2.next_text() == "headline");
    CHECK(news2.next_text() == "score");
    CHECK(sport.next_text() == "score");
    // Nothing else is on its way: a command's answer comes next.
    CHECK(news1.command("sub x") == "sub x 1");
    CHECK(news1.held().empty());
    CHECK(sport.command("sub x") == "sub x 1");
    CHECK(sport.held().empty());
}

TEST_CASE_TEMPLATE("unsubscribe stops delivery and subscribing again resumes it", B,
                   WSX_NET_TEST_BACKENDS) {
    Hub hub;
    HubServer server(hub, hub_server_options(B::value));
    HubClient client(server.port());
    HubClient publisher(server.port());
    CHECK(client.command("sub a") == "sub a 1");
    CHECK(client.command("sub a") == "sub a 0");  // already subscribed
    CHECK(client.command("sub b") == "sub b 1");
    publisher.send_text("pub a one");
    CHECK(client.next_text() == "one");
    CHECK(client.command("unsub a") == "unsub a 1");
    CHECK(client.command("unsub a") == "unsub a 0");
    publisher.send_text("pub a lost");
    publisher.send_text("pub b two");
    CHECK(client.next_text() == "two");
    CHECK(client.command("sub a") == "sub a 1");
    publisher.send_text("pub a three");
    CHECK(client.next_text() == "three");
    CHECK(hub.stats().topics == 2);

    // Churn: many topics come and go; the table ends where it started.
    for (int round = 0; round < 200; ++round) {
        const std::string topic = "churn" + std::to_string(round);
        CHECK(client.command("sub " + topic) == "sub " + topic + " 1");
        CHECK(client.command("unsub " + topic) == "unsub " + topic + " 1");
    }
    CHECK(hub.stats().subscriptions == 2);
    CHECK(hub.stats().topics == 2);
}

TEST_CASE_TEMPLATE("messages of one publisher arrive in publish order at every subscriber", B,
                   WSX_NET_TEST_BACKENDS) {
    Hub hub;
    HubServer server(hub, hub_server_options(B::value));
    std::vector<std::unique_ptr<HubClient>> subscribers;
    for (int i = 0; i < 6; ++i)
        subscribers.push_back(std::make_unique<HubClient>(server.port(), "/?sub=seq"));
    REQUIRE(eventually([&] { return hub.stats().subscriptions == 6; }));

    // Two publisher threads outside the server and two sessions publishing from their reactor
    // threads, all at once.
    constexpr int kEach = 300;
    HubClient session_a(server.port());
    HubClient session_b(server.port());
    std::thread outside_a([&] {
        for (int i = 0; i < kEach; ++i)
            hub.publish("seq", "A " + std::to_string(i));
    });
    std::thread outside_b([&] {
        for (int i = 0; i < kEach; ++i)
            hub.publish("seq", "B " + std::to_string(i));
    });
    for (int i = 0; i < kEach; ++i) {
        session_a.send_text("pub seq C " + std::to_string(i));
        session_b.send_text("pub seq D " + std::to_string(i));
    }
    outside_a.join();
    outside_b.join();

    for (auto& subscriber : subscribers) {
        std::map<std::string, int> next;
        for (int i = 0; i < 4 * kEach; ++i) {
            const std::string text = subscriber->next_text();
            const std::string who = text.substr(0, 1);
            REQUIRE(std::stoi(text.substr(2)) == next[who]);
            ++next[who];
        }
        CHECK(next.size() == 4);
    }
}

TEST_CASE_TEMPLATE("a broadcast reaches every session of the hub", B, WSX_NET_TEST_BACKENDS) {
    Hub hub;
    HubServer server(hub, hub_server_options(B::value));
    std::vector<std::unique_ptr<HubClient>> clients;
    for (int i = 0; i < 8; ++i)
        clients.push_back(std::make_unique<HubClient>(server.port(), i % 2 ? "/?sub=t" : "/"));
    REQUIRE(eventually([&] { return hub.stats().connections == 8; }));
    clients[3]->send_text("bcast all of you");
    for (auto& client : clients)
        CHECK(client->next_text() == "all of you");
}

TEST_CASE_TEMPLATE("a session's end removes all of its subscriptions", B, WSX_NET_TEST_BACKENDS) {
    Hub hub;
    HubServer server(hub, hub_server_options(B::value));
    {
        std::vector<std::unique_ptr<HubClient>> clients;
        for (int i = 0; i < 40; ++i) {
            clients.push_back(std::make_unique<HubClient>(
                server.port(),
                "/?sub=shared,own" + std::to_string(i) + ",pair" + std::to_string(i / 2)));
        }
        REQUIRE(eventually([&] { return hub.stats().subscriptions == 120; }));
        // Half leave abruptly (no close handshake), the rest cleanly.
        for (int i = 0; i < 20; ++i)
            clients[i]->disconnect();
        REQUIRE(eventually([&] { return hub.stats().connections == 20; }));
        CHECK(hub.stats().subscriptions == 60);
        for (int i = 20; i < 40; ++i) {
            clients[i]->send_text("pub shared still here");
            clients[i]->disconnect();
        }
    }
    REQUIRE(eventually([&] { return hub.stats().connections == 0; }));
    const hub::HubStats stats = hub.stats();
    CHECK(stats.subscriptions == 0);
    CHECK(stats.topics == 0);
}

namespace {

// A publish burst against one fast reader (on its own thread) and one reader that never reads.
struct SlowConsumerRun {
    static constexpr int kMessages = 400;
    static constexpr std::size_t kSize = 16 * 1024;

    std::vector<int> fast_got;
    std::atomic<int> fast_count{0};
    HubClient* slow = nullptr;

    void run(Hub& hub, std::uint16_t port, HubClient& slow_client) {
        slow = &slow_client;
        HubClient fast(port, "/?sub=burst");
        REQUIRE(eventually([&] { return hub.stats().subscriptions == 2; }));
        std::thread reader([&] {
            for (int i = 0; i < kMessages; ++i) {
                const Received event = fast.next();
                if (event.kind != Received::Kind::message) break;
                fast_got.push_back(std::stoi(event.data.substr(0, event.data.find(' '))));
                fast_count.store(i + 1);
            }
        });
        // Paced by the fast reader, which therefore never has more than 16 messages (256 KiB)
        // outstanding: only the reader that does not read passes the limit.
        for (int i = 0; i < kMessages; ++i) {
            REQUIRE(eventually([&] { return fast_count.load() >= i - 16; }));
            std::string text = std::to_string(i) + " ";
            text.resize(kSize, 'x');
            REQUIRE(hub.publish("burst", text));
        }
        reader.join();
    }
};

HubOptions slow_options(SlowConsumerPolicy policy) {
    HubOptions options;
    options.max_queued_bytes = 512 * 1024;
    options.delivery_batch_bytes = 64 * 1024;
    options.slow_consumer = policy;
    return options;
}

}  // namespace

TEST_CASE_TEMPLATE("a slow consumer is closed with 1008 and the others get every message", B,
                   WSX_NET_TEST_BACKENDS) {
    Hub hub(slow_options(SlowConsumerPolicy::close));
    HubServer server(hub, hub_server_options(B::value, 1));
    HubClient slow(server.port(), "/?sub=burst", {}, {}, 4096);
    SlowConsumerRun run;
    run.run(hub, server.port(), slow);
    REQUIRE(run.fast_got.size() == SlowConsumerRun::kMessages);
    for (int i = 0; i < SlowConsumerRun::kMessages; ++i)
        REQUIRE(run.fast_got[static_cast<std::size_t>(i)] == i);
    CHECK(hub.stats().slow_consumer_closes == 1);
    CHECK(hub.stats().messages_dropped == 0);
    // The slow reader finds the close frame behind its backlog.
    int messages = 0;
    for (;;) {
        const Received event = slow.next();
        if (event.kind == Received::Kind::message) {
            REQUIRE(std::stoi(event.data.substr(0, event.data.find(' '))) == messages);
            ++messages;
            continue;
        }
        REQUIRE(event.kind == Received::Kind::close);
        CHECK(event.close_code == 1008);
        break;
    }
    CHECK(messages < SlowConsumerRun::kMessages);
}

TEST_CASE_TEMPLATE("under policy drop a slow consumer skips messages, in order, and stays", B,
                   WSX_NET_TEST_BACKENDS) {
    Hub hub(slow_options(SlowConsumerPolicy::drop));
    HubServer server(hub, hub_server_options(B::value, 1));
    HubClient slow(server.port(), "/?sub=burst", {}, {}, 4096);
    SlowConsumerRun run;
    run.run(hub, server.port(), slow);
    REQUIRE(run.fast_got.size() == SlowConsumerRun::kMessages);
    const hub::HubStats stats = hub.stats();
    CHECK(stats.slow_consumer_closes == 0);
    CHECK(stats.messages_dropped > 0);
    // Its session answers still; what it got is a rising subsequence, one gap per drop.
    const std::string answer = slow.command("sub other");
    CHECK(answer == "sub other 1");
    int last = -1;
    std::size_t got = 0;
    for (const std::string& text : slow.held()) {
        const int n = std::stoi(text.substr(0, text.find(' ')));
        CHECK(n > last);
        last = n;
        ++got;
    }
    CHECK(got + stats.messages_dropped == SlowConsumerRun::kMessages);
}

TEST_CASE_TEMPLATE(
    "permessage-deflate subscribers get one shared compressed frame per window "
    "size",
    B, WSX_NET_TEST_BACKENDS) {
    Hub hub;
    net::ServerOptions options = hub_server_options(B::value);
    options.deflate = proto::DeflateOptions{};
    HubServer server(hub, std::move(options));

    auto deflate_client = [&](std::uint8_t bits) {
        proto::DeflateConfig config;
        config.params.server_max_window_bits = bits;
        config.params.client_max_window_bits = 15;
        proto::ConnectionOptions connection;
        connection.deflate = config;
        const std::string offer =
            "Sec-WebSocket-Extensions: permessage-deflate" +
            (bits < 15 ? "; server_max_window_bits=" + std::to_string(bits) : std::string()) +
            "\r\n";
        return std::make_unique<HubClient>(server.port(), "/?sub=z", connection, offer);
    };
    std::vector<std::unique_ptr<HubClient>> clients;
    clients.push_back(deflate_client(15));
    clients.push_back(deflate_client(15));
    clients.push_back(deflate_client(10));
    clients.push_back(std::make_unique<HubClient>(server.port(), "/?sub=z"));
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(clients[i]->response().find("permessage-deflate") != std::string::npos);
    }
    REQUIRE(eventually([&] { return hub.stats().subscriptions == 4; }));

    std::string text;
    for (int i = 0; i < 200; ++i)
        text += "the same words again and again " + std::to_string(i % 7) + " ";
    REQUIRE(hub.publish("z", text));
    REQUIRE(hub.publish("z", "short"));  // below compress_min_size: sent as is
    for (auto& client : clients) {
        CHECK(client->next_text() == text);
        CHECK(client->next_text() == "short");
    }
    // Two window sizes among the deflate sessions: two compressions, whatever the thread count.
    CHECK(hub.stats().compressed_frames == 2);
    const std::uint64_t compressed_bytes = hub.stats().bytes_out;
    CHECK(compressed_bytes < 2 * text.size() + 100);
}

TEST_CASE_TEMPLATE("GET /metrics answers the Prometheus text exposition", B,
                   WSX_NET_TEST_BACKENDS) {
    Hub hub;
    HubServer server(hub, hub_server_options(B::value));
    HubClient client(server.port(), "/?sub=m1,m2");
    REQUIRE(eventually([&] { return hub.stats().subscriptions == 2; }));
    hub.publish("m1", "hello");
    CHECK(client.next_text() == "hello");

    const std::string response =
        net::testing::http_exchange(server.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(net::testing::status_line(response) == "HTTP/1.1 200 OK");
    CHECK(net::testing::has_header_line(response,
                                        "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    const std::string body = net::testing::body_of(response);
    CHECK(body.find("# TYPE wsx_hub_connections gauge\nwsx_hub_connections 1\n") !=
          std::string::npos);
    CHECK(body.find("\nwsx_hub_subscriptions 2\n") != std::string::npos);
    CHECK(body.find("\nwsx_hub_topics 2\n") != std::string::npos);
    CHECK(body.find("\nwsx_hub_messages_in_total 1\n") != std::string::npos);
    CHECK(body.find("\nwsx_hub_messages_out_total 1\n") != std::string::npos);
    CHECK(body.find("\nwsx_hub_bytes_out_total 7\n") != std::string::npos);
    CHECK(body.find("# TYPE wsx_hub_slow_consumer_closes_total counter\n") != std::string::npos);
    // Other paths still route as before.
    CHECK(net::testing::status_line(net::testing::http_exchange(
              server.port(), "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")) ==
          "HTTP/1.1 404 Not Found");
}

TEST_CASE("publish refuses a topic over the length limit and text that is not UTF-8") {
    Hub hub({.max_topic_length = 8});
    CHECK(hub.publish("12345678", "ok"));
    CHECK_FALSE(hub.publish("123456789", "too long a topic"));
    const std::uint8_t bad[] = {0xC0, 0x80};
    CHECK_FALSE(hub.publish("t", proto::Opcode::text, bad));
    CHECK(hub.publish("t", proto::Opcode::binary, bad));
    CHECK_FALSE(hub.publish("t", proto::Opcode::ping, bad));
    CHECK(hub.stats().messages_in == 2);
}

TEST_CASE(
    "a thread that does not drain refuses publishes past max_pending_bytes, then takes them") {
    Hub hub({.max_pending_bytes = 64 * 1024});  // outlives the reactor (its drain task)
    auto reactor = net::testing::make_reactor(net::Backend::poll);
    net::SessionHost host(*reactor);
    hub.attach_thread(0, *reactor, host);
    const std::vector<std::uint8_t> payload(1000, 'x');

    // The reactor does not run: every accepted message waits in the thread's inbox.
    int accepted = 0;
    while (accepted < 10'000 && hub.publish("t", proto::Opcode::binary, payload))
        ++accepted;
    CHECK(accepted > 32);   // 64 KiB of ~1.2 KB messages
    CHECK(accepted < 100);  // and not one more than the bound allows
    const hub::HubStats stats = hub.stats();
    CHECK(stats.messages_in == static_cast<std::uint64_t>(accepted));
    CHECK(stats.messages_refused == 1);
    CHECK(stats.pending_bytes > 60 * 1024);
    CHECK(stats.pending_bytes <= 64 * 1024);
    CHECK_FALSE(hub.broadcast(proto::Opcode::binary, payload));
    CHECK(hub.stats().messages_refused == 2);
    CHECK(hub.metrics_text().find("\nwsx_hub_messages_refused_total 2\n") != std::string::npos);

    // One drain empties it (fewer than delivery_batch messages), and publishing works again.
    REQUIRE(net::testing::run_until(*reactor, [&] { return hub.stats().pending_bytes == 0; }));
    CHECK(hub.publish("t", proto::Opcode::binary, payload));

    // An empty inbox takes any one message, even one larger than the bound; the next waits.
    REQUIRE(net::testing::run_until(*reactor, [&] { return hub.stats().pending_bytes == 0; }));
    const std::vector<std::uint8_t> large(128 * 1024, 'y');
    CHECK(hub.publish("t", proto::Opcode::binary, large));
    CHECK_FALSE(hub.publish("t", proto::Opcode::binary, payload));

    // Detaching releases what is left, and the count follows.
    hub.detach_thread(0);
    CHECK(hub.stats().pending_bytes == 0);
}

TEST_CASE_TEMPLATE("a publisher held back by a full inbox loses nothing and keeps its order", B,
                   WSX_NET_TEST_BACKENDS) {
    Hub hub({.max_pending_bytes = 16 * 1024});
    HubServer server(hub, hub_server_options(B::value, 1));
    HubClient subscriber(server.port(), "/?sub=flood");
    HubClient staller(server.port());
    REQUIRE(eventually([&] { return hub.stats().subscriptions == 1; }));

    // The only reactor thread stops draining for a while; the publisher retries every refused
    // publish until it is taken, the way a producer honouring the bound does.
    staller.send_text("stall 300");
    REQUIRE(eventually([&] { return server.handler().stalled(); }));
    constexpr int kMessages = 3'000;
    std::uint64_t refusals = 0;
    for (int i = 0; i < kMessages; ++i) {
        while (!hub.publish("flood", "m " + std::to_string(i))) {
            ++refusals;
            std::this_thread::yield();
        }
    }
    CHECK(refusals > 0);
    CHECK(hub.stats().messages_refused == refusals);
    CHECK(hub.stats().messages_in == kMessages);
    for (int i = 0; i < kMessages; ++i)
        REQUIRE(subscriber.next_text() == "m " + std::to_string(i));
    CHECK(eventually([&] { return hub.stats().pending_bytes == 0; }));
}
