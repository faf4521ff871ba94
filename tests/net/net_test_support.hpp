// Shared by the net tests: the backend list every reactor-level case is instantiated for, and
// bounded loops so a broken wake-up fails a test instead of hanging it.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <memory>

#include "net/reactor.hpp"

namespace wsx::net::testing {

struct EpollBackend {
    static constexpr Backend value = Backend::epoll;
};
struct PollBackend {
    static constexpr Backend value = Backend::poll;
};
struct KqueueBackend {
    static constexpr Backend value = Backend::kqueue;
};

inline std::unique_ptr<Reactor> make_reactor(Backend backend) {
    SysResult<std::unique_ptr<Reactor>> created = Reactor::create(backend);
    REQUIRE(created.ok());
    REQUIRE(created.value->backend() == backend);
    return std::move(created.value);
}

// Iterates until done() or `limit` has passed; returns done().
template <class Done>
bool run_until(Reactor& reactor, Done done,
               std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        const SysResult<std::size_t> iteration = reactor.run_once(std::chrono::milliseconds(50));
        REQUIRE(iteration.ok());
    }
    return true;
}

}  // namespace wsx::net::testing

TYPE_TO_STRING(wsx::net::testing::EpollBackend);
TYPE_TO_STRING(wsx::net::testing::PollBackend);
TYPE_TO_STRING(wsx::net::testing::KqueueBackend);

// The kernel-specific backend of this platform, and poll everywhere.
#if defined(__linux__)
#define WSX_NET_TEST_BACKENDS wsx::net::testing::EpollBackend, wsx::net::testing::PollBackend
#elif defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
#define WSX_NET_TEST_BACKENDS wsx::net::testing::KqueueBackend, wsx::net::testing::PollBackend
#else
#define WSX_NET_TEST_BACKENDS wsx::net::testing::PollBackend
#endif
