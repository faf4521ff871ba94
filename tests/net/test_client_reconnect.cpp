// Reconnection with backoff: the delay schedule, giving up, and a new session after a close.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "client_test_support.hpp"
#include "net/client.hpp"
#include "net/reconnector.hpp"
#include "server_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::Client;
using wsx::net::ConnectErrc;
using wsx::net::ConnectError;
using wsx::net::Reconnector;
using wsx::net::testing::EchoRecorder;
using wsx::net::testing::free_port;
using wsx::net::testing::local_url;
using wsx::net::testing::make_reactor;
using wsx::net::testing::quick_options;
using wsx::net::testing::Recorder;
using wsx::net::testing::run_until;
using wsx::net::testing::test_options;
using wsx::net::testing::TestServer;

TEST_CASE("reconnect delays double from the initial delay up to the maximum") {
    auto reactor = make_reactor(wsx::net::Backend::poll);
    Recorder app;
    Client client(*reactor, quick_options());
    Reconnector reconnector(client, {.url = "ws://127.0.0.1:1/"}, app,
                            {.initial_delay = 100ms, .max_delay = 1000ms});
    CHECK(reconnector.delay_after(0) == 100ms);
    CHECK(reconnector.delay_after(1) == 200ms);
    CHECK(reconnector.delay_after(3) == 800ms);
    CHECK(reconnector.delay_after(4) == 1000ms);
    CHECK(reconnector.delay_after(60) == 1000ms);
}

TEST_CASE_TEMPLATE("the reconnector gives up after max_attempts refused connects", B,
                   WSX_NET_TEST_BACKENDS) {
    const std::uint16_t port = free_port();
    auto reactor = make_reactor(B::value);
    Recorder app;
    Client client(*reactor, quick_options());
    int failed = 0;
    bool gave_up = false;
    Reconnector reconnector(
        client, {.url = local_url(port)}, app,
        {.initial_delay = 5ms, .max_delay = 20ms, .jitter = 0.5, .max_attempts = 3},
        [&](const ConnectError& error) {
            ++failed;
            CHECK(error.code == ConnectErrc::connection_refused);
        },
        [&] { gave_up = true; });
    reconnector.start();
    REQUIRE(run_until(*reactor, [&] { return gave_up; }));
    CHECK(failed == 3);
    CHECK(reconnector.failures() == 3);
    CHECK_FALSE(reconnector.running());
}

TEST_CASE_TEMPLATE("the reconnector opens a new session after the last one closed", B,
                   WSX_NET_TEST_BACKENDS) {
    EchoRecorder echo;
    TestServer server(test_options(B::value), echo);
    auto reactor = make_reactor(B::value);
    Recorder app;
    Client client(*reactor, quick_options());
    Reconnector reconnector(client, {.url = local_url(server.port())}, app,
                            {.initial_delay = 10ms, .max_delay = 50ms});
    reconnector.start();
    REQUIRE(run_until(*reactor, [&] { return app.opened == 1; }));
    REQUIRE(reconnector.session() != nullptr);
    REQUIRE(app.session->close(1000) == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.opened == 2; }));
    CHECK(app.closed == 1);
    reconnector.stop();
    REQUIRE(app.session->close(1000) == wsx::net::SendStatus::ok);
    REQUIRE(run_until(*reactor, [&] { return app.closed == 2; }));
    for (int i = 0; i < 5; ++i)
        static_cast<void>(reactor->run_once(20ms));
    CHECK(app.opened == 2);
}
