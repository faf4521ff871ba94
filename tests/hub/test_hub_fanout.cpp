// Fan-out at scale: one publish reaches 5,000 subscribers over real loopback sockets, on each
// backend, with two reactor threads.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "hub_test_support.hpp"

using namespace wsx;
using namespace wsx::hub::testing;
using wsx::hub::Hub;

TEST_CASE_TEMPLATE("a publish reaches 5,000 subscribers on loopback sockets", B,
                   WSX_NET_TEST_BACKENDS) {
    constexpr std::size_t kWanted = 5'000;
    // Two fds per connection (ours and the server's) plus slack.
    const rlim_t limit = raise_open_file_limit(2 * kWanted + 200);
    const std::size_t count = std::min<std::size_t>(kWanted, (limit - 200) / 2);
    if (count < kWanted) MESSAGE("open-file limit " << limit << ": " << count << " subscribers");

    Hub hub;
    HubServer server(hub, hub_server_options(B::value, 2));
    std::vector<std::unique_ptr<HubClient>> clients;
    clients.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
        clients.push_back(std::make_unique<HubClient>(server.port(), "/?sub=fan"));
    REQUIRE(eventually([&] { return hub.stats().subscriptions == count; },
                       std::chrono::milliseconds(30'000)));

    REQUIRE(hub.publish("fan", "first"));
    const std::uint8_t bytes[] = {1, 2, 3, 0, 255};
    REQUIRE(hub.publish("fan", proto::Opcode::binary, bytes));
    REQUIRE(hub.publish("other", "nobody listens"));
    for (auto& client : clients) {
        CHECK(client->next_text() == "first");
        const Received binary = client->next();
        REQUIRE(binary.kind == Received::Kind::message);
        CHECK(binary.opcode == proto::Opcode::binary);
        CHECK(binary.data == std::string("\x01\x02\x03\x00\xff", 5));
    }
    const hub::HubStats stats = hub.stats();
    CHECK(stats.messages_in == 3);
    CHECK(stats.messages_out == 2 * count);
    CHECK(stats.bytes_out == count * (2 + 5 + 2 + 5));
    clients.clear();
    REQUIRE(eventually([&] { return hub.stats().connections == 0; },
                       std::chrono::milliseconds(30'000)));
    CHECK(hub.stats().topics == 0);
}
