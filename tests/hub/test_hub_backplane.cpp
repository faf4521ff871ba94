// Two hubs in one process linked by the in-process backplane: a message published on either node
// reaches the subscribers of both, exactly once; a node hears only topics it has subscribers for.
#include <doctest/doctest.h>

#include "hub/in_process_backplane.hpp"
#include "hub_test_support.hpp"

using namespace wsx;
using namespace wsx::hub::testing;
using wsx::hub::Hub;
using wsx::hub::InProcessBus;

TEST_CASE_TEMPLATE("hubs linked by a backplane deliver each other's messages exactly once", B,
                   WSX_NET_TEST_BACKENDS) {
    InProcessBus bus;
    Hub a({.backplane = &bus.add_node()});
    Hub b({.backplane = &bus.add_node()});
    CHECK(a.node_id() != b.node_id());
    HubServer server_a(a, hub_server_options(B::value));
    HubServer server_b(b, hub_server_options(B::value));

    HubClient on_a(server_a.port(), "/?sub=room");
    HubClient on_b(server_b.port(), "/?sub=room");
    HubClient other_on_a(server_a.port(), "/?sub=local");
    REQUIRE(eventually([&] { return a.stats().subscriptions == 2; }));
    REQUIRE(eventually([&] { return b.stats().subscriptions == 1; }));
    bus.sync();  // the subscriptions reached the bus

    REQUIRE(a.publish("room", "from a"));
    CHECK(on_a.next_text() == "from a");
    CHECK(on_b.next_text() == "from a");
    on_b.send_text("pub room from b");  // published by a session of node b
    CHECK(on_a.next_text() == "from b");
    CHECK(on_b.next_text() == "from b");

    // Node b has no subscriber of "local": the bus does not hand it over.
    const std::uint64_t to_b = bus.delivered_to(1);
    REQUIRE(a.publish("local", "only here"));
    CHECK(other_on_a.next_text() == "only here");
    bus.sync();
    CHECK(bus.delivered_to(1) == to_b);

    // Broadcasts cross to every node.
    b.broadcast(proto::Opcode::text, bytes_of("everyone"));
    CHECK(on_a.next_text() == "everyone");
    CHECK(other_on_a.next_text() == "everyone");
    CHECK(on_b.next_text() == "everyone");

    // Nothing arrived twice: the next thing each client sees is its command's answer.
    for (HubClient* client : {&on_a, &on_b, &other_on_a}) {
        CHECK(client->command("sub z") == "sub z 1");
        CHECK(client->held().empty());
    }

    // When b's last subscriber of "room" leaves, b stops hearing "room".
    CHECK(on_b.command("unsub room") == "unsub room 1");
    bus.sync();
    const std::uint64_t before = bus.delivered_to(1);
    REQUIRE(a.publish("room", "b is gone"));
    CHECK(on_a.next_text() == "b is gone");
    bus.sync();
    CHECK(bus.delivered_to(1) == before);
}

TEST_CASE("messages from one node to another keep their publish order") {
    InProcessBus bus;
    Hub a({.backplane = &bus.add_node()});
    Hub b({.backplane = &bus.add_node()});
    HubServer server_a(a, hub_server_options(net::Backend::automatic));
    HubServer server_b(b, hub_server_options(net::Backend::automatic));
    HubClient on_b(server_b.port(), "/?sub=seq");
    REQUIRE(eventually([&] { return b.stats().subscriptions == 1; }));
    bus.sync();
    for (int i = 0; i < 500; ++i)
        REQUIRE(a.publish("seq", std::to_string(i)));
    for (int i = 0; i < 500; ++i)
        REQUIRE(on_b.next_text() == std::to_string(i));
}

TEST_CASE("a hub drops its own message when the backplane echoes it back") {
    Hub hub({.node_id = 7});
    const std::uint8_t payload[] = {'x'};
    hub.receive({7, false, proto::Opcode::text, "t", payload});
    CHECK(hub.stats().messages_in == 0);
    hub.receive({8, false, proto::Opcode::text, "t", payload});
    CHECK(hub.stats().messages_in == 1);
}
