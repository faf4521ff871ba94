// Stress for ThreadSanitizer: publishers on every reactor thread (sessions publishing) and on
// outside threads, while other clients subscribe, unsubscribe, disconnect and reconnect. The hub
// ends empty, and steady subscribers saw every publisher's messages in order.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hub_test_support.hpp"

using namespace wsx;
using namespace wsx::hub::testing;
using wsx::hub::Hub;

TEST_CASE_TEMPLATE("publishers on every thread while clients churn leave a consistent hub", B,
                   WSX_NET_TEST_BACKENDS) {
    Hub hub;
    HubServer server(hub, hub_server_options(B::value, 2));
    constexpr int kPerPublisher = 1000;

    // Steady subscribers: enough that both reactor threads have some (connections are spread by
    // the kernel across the two SO_REUSEPORT listeners).
    std::vector<std::unique_ptr<HubClient>> steady;
    for (int i = 0; i < 6; ++i)
        steady.push_back(std::make_unique<HubClient>(server.port(), "/?sub=s"));
    // Publishing sessions, likewise spread.
    std::vector<std::unique_ptr<HubClient>> publishers;
    for (int i = 0; i < 4; ++i)
        publishers.push_back(std::make_unique<HubClient>(server.port()));
    REQUIRE(eventually([&] { return hub.stats().subscriptions == 6; }));

    std::atomic<bool> stop{false};
    std::atomic<int> churn_rounds{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            int round = 0;
            while (!stop.load()) {
                HubClient churn(server.port(), "/?sub=s,c" + std::to_string(t));
                for (int k = 0; k < 5; ++k) {
                    const std::string topic = "c" + std::to_string(t) + "-" + std::to_string(k);
                    churn.command("sub " + topic);
                    if (k % 2) churn.command("unsub " + topic);
                }
                churn.send_text("bcast from churn");
                if (++round % 2 == 0) churn.command("unsub s");
                churn_rounds.fetch_add(1);
                // Leaves without a close handshake: the hub must clean up after it.
            }
        });
    }
    for (int p = 0; p < 2; ++p) {
        threads.emplace_back([&, p] {
            for (int i = 0; i < kPerPublisher; ++i)
                hub.publish("s", "O" + std::to_string(p) + " " + std::to_string(i));
        });
    }
    for (int i = 0; i < kPerPublisher; ++i) {
        for (std::size_t p = 0; p < publishers.size(); ++p)
            publishers[p]->send_text("pub s P" + std::to_string(p) + " " + std::to_string(i));
    }

    // Every steady subscriber gets each publisher's sequence in order (broadcasts interleave).
    const std::size_t expected_publishers = 2 + publishers.size();
    for (auto& subscriber : steady) {
        std::map<std::string, int> next;
        std::size_t complete = 0;
        while (complete < expected_publishers) {
            const std::string text = subscriber->next_text();
            if (text == "from churn") continue;
            const std::string who = text.substr(0, text.find(' '));
            REQUIRE(std::stoi(text.substr(text.find(' ') + 1)) == next[who]);
            if (++next[who] == kPerPublisher) ++complete;
        }
    }
    stop.store(true);
    for (std::thread& thread : threads)
        thread.join();
    steady.clear();
    publishers.clear();
    REQUIRE(eventually([&] { return hub.stats().connections == 0; }));
    const hub::HubStats stats = hub.stats();
    CHECK(stats.subscriptions == 0);
    CHECK(stats.topics == 0);
    CHECK(stats.messages_out >= 6 * expected_publishers * kPerPublisher);
    CHECK(churn_rounds.load() > 0);
}
