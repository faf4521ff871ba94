#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "net/timer_wheel.hpp"

using wsx::net::Timer;
using wsx::net::TimerWheel;

namespace {

// A timer that records the wheel time at which it fired.
struct Probe {
    TimerWheel* wheel = nullptr;
    Timer timer;
    std::vector<std::uint64_t>* log = nullptr;  // shared fire log (deadlines in fire order)
    int fired = 0;
    std::uint64_t fired_at = 0;

    explicit Probe(TimerWheel& w, std::vector<std::uint64_t>* shared_log = nullptr)
        : wheel(&w), log(shared_log) {
        timer.bind<&Probe::on_fire>(this);
    }
    void on_fire() {
        ++fired;
        fired_at = wheel->now();
        if (log != nullptr) log->push_back(timer.deadline());
    }
};

constexpr std::uint64_t kHour = 3'600'000;  // in millisecond ticks

}  // namespace

TEST_CASE("a timer fires when time reaches its deadline, not before") {
    TimerWheel wheel;
    Probe probe(wheel);
    wheel.arm(probe.timer, 100);
    CHECK(probe.timer.armed());
    CHECK(wheel.advance(99) == 0);
    CHECK(probe.fired == 0);
    CHECK(wheel.advance(100) == 1);
    CHECK(probe.fired == 1);
    CHECK(probe.fired_at == 100);
    CHECK_FALSE(probe.timer.armed());
    CHECK(wheel.armed_count() == 0);
}

TEST_CASE("timers on every level fire in deadline order when time jumps past them all") {
    TimerWheel wheel(12345);
    std::vector<std::uint64_t> log;
    const std::vector<std::uint64_t> delays = {
        std::uint64_t{1} << 40, 4096, 1, 63, 64, 65, 4095, 262'144, 262'145, 2, kHour, 77};
    std::vector<std::unique_ptr<Probe>> probes;
    for (const std::uint64_t delay : delays) {
        probes.push_back(std::make_unique<Probe>(wheel, &log));
        wheel.arm(probes.back()->timer, delay);
    }
    CHECK(wheel.advance(12345 + (std::uint64_t{1} << 40)) == delays.size());
    CHECK(std::is_sorted(log.begin(), log.end()));
    CHECK(log.size() == delays.size());
}

TEST_CASE("each timer fires at the first advance that reaches its deadline") {
    std::mt19937_64 random(42);
    TimerWheel wheel(random() % 1'000'000);
    std::vector<std::unique_ptr<Probe>> probes;
    std::uniform_int_distribution<std::uint64_t> delay(0, 300'000);
    for (int i = 0; i < 2000; ++i) {
        probes.push_back(std::make_unique<Probe>(wheel));
        wheel.arm(probes.back()->timer, delay(random));
    }
    std::vector<std::uint64_t> deadlines;
    for (const auto& probe : probes)
        deadlines.push_back(probe->timer.deadline());

    std::uniform_int_distribution<std::uint64_t> step(1, 700);
    std::uint64_t previous = wheel.now();
    while (wheel.armed_count() > 0) {
        const std::uint64_t next = previous + step(random);
        wheel.advance(next);
        for (std::size_t i = 0; i < probes.size(); ++i) {
            const bool due = deadlines[i] <= next;
            REQUIRE(probes[i]->fired == (due ? 1 : 0));
            if (due && deadlines[i] > previous) REQUIRE(probes[i]->fired_at == next);
        }
        previous = next;
    }
}

TEST_CASE("timers with equal deadlines fire in the order they were armed") {
    TimerWheel wheel;
    std::vector<int> order;
    struct Tagged {
        Timer timer;
        int tag = 0;
        std::vector<int>* order = nullptr;
        void on_fire() { order->push_back(tag); }
    };
    std::vector<std::unique_ptr<Tagged>> timers;
    for (int tag = 0; tag < 8; ++tag) {
        timers.push_back(std::make_unique<Tagged>());
        timers.back()->tag = tag;
        timers.back()->order = &order;
        timers.back()->timer.bind<&Tagged::on_fire>(timers.back().get());
    }
    // Armed at different times, so they start on different levels and meet in one slot.
    wheel.arm_at(timers[0]->timer, 5000);
    wheel.arm_at(timers[1]->timer, 5000);
    wheel.advance(4000);
    wheel.arm_at(timers[2]->timer, 5000);
    wheel.advance(4990);
    wheel.arm_at(timers[3]->timer, 5000);
    for (int tag = 4; tag < 8; ++tag)
        wheel.arm_at(timers[static_cast<std::size_t>(tag)]->timer, 5000);
    wheel.advance(6000);
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("a cancelled timer never fires; cancelling twice or an unarmed timer is harmless") {
    TimerWheel wheel;
    Probe probe(wheel);
    probe.timer.cancel();
    wheel.arm(probe.timer, 10);
    wheel.cancel(probe.timer);
    probe.timer.cancel();
    CHECK_FALSE(probe.timer.armed());
    CHECK(wheel.armed_count() == 0);
    CHECK(wheel.advance(1000) == 0);
    CHECK(probe.fired == 0);
    CHECK_FALSE(wheel.next_deadline().has_value());
}

TEST_CASE("re-arming an armed timer moves it, earlier or later") {
    TimerWheel wheel;
    Probe probe(wheel);
    wheel.arm(probe.timer, 10);
    wheel.arm(probe.timer, 5000);
    CHECK(wheel.armed_count() == 1);
    CHECK(wheel.advance(4999) == 0);
    CHECK(wheel.advance(5000) == 1);

    wheel.arm(probe.timer, kHour);
    wheel.arm(probe.timer, 3);
    CHECK(wheel.advance(5003) == 1);
    CHECK(probe.fired == 2);
    CHECK(wheel.armed_count() == 0);
}

TEST_CASE("a timer can move from one wheel to another") {
    TimerWheel first;
    TimerWheel second;
    Probe probe(first);
    first.arm(probe.timer, 10);
    second.arm(probe.timer, 20);
    CHECK(first.armed_count() == 0);
    CHECK(second.armed_count() == 1);
    CHECK(first.advance(100) == 0);
    CHECK(second.advance(100) == 1);
}

TEST_CASE("a deadline not after now fires at the next advance, even without time passing") {
    TimerWheel wheel(500);
    Probe past(wheel);
    Probe present(wheel);
    wheel.arm_at(past.timer, 100);
    wheel.arm(present.timer, 0);
    CHECK(wheel.next_deadline() == std::optional<std::uint64_t>(500));
    CHECK(wheel.advance(500) == 2);
    CHECK(past.fired == 1);
    CHECK(present.fired == 1);
}

TEST_CASE("a timer re-armed from its own callback fires at the next advance, not the current one") {
    TimerWheel wheel;
    struct Repeater {
        TimerWheel* wheel = nullptr;
        Timer timer;
        int fired = 0;
        void on_fire() {
            ++fired;
            wheel->arm(timer, 0);
        }
    } repeater;
    repeater.wheel = &wheel;
    repeater.timer.bind<&Repeater::on_fire>(&repeater);
    wheel.arm(repeater.timer, 5);
    CHECK(wheel.advance(5) == 1);
    CHECK(wheel.advance(5) == 1);
    CHECK(wheel.advance(6) == 1);
    CHECK(repeater.fired == 3);
    CHECK(repeater.timer.armed());
}

TEST_CASE("a callback can arm a later timer and cancel one due in the same advance") {
    TimerWheel wheel;
    Probe victim(wheel);
    Probe later(wheel);
    struct Killer {
        TimerWheel* wheel = nullptr;
        Timer timer;
        Probe* victim = nullptr;
        Probe* later = nullptr;
        void on_fire() {
            victim->timer.cancel();
            wheel->arm(later->timer, 50);
        }
    } killer;
    killer.wheel = &wheel;
    killer.victim = &victim;
    killer.later = &later;
    killer.timer.bind<&Killer::on_fire>(&killer);
    wheel.arm_at(killer.timer, 10);
    wheel.arm_at(victim.timer, 20);
    CHECK(wheel.advance(30) == 1);  // both were due; the killer (earlier deadline) ran first
    CHECK(victim.fired == 0);
    CHECK(later.timer.deadline() == 80);
    CHECK(wheel.advance(79) == 0);
    CHECK(wheel.advance(80) == 1);
}

TEST_CASE("a callback may destroy the object that owns its timer") {
    TimerWheel wheel;
    struct Connection {
        Timer idle;
        bool* closed = nullptr;
        void on_idle() {
            *closed = true;
            delete this;
        }
    };
    bool closed = false;
    auto* connection = new Connection;
    connection->closed = &closed;
    connection->idle.bind<&Connection::on_idle>(connection);
    wheel.arm(connection->idle, 7);
    CHECK(wheel.advance(7) == 1);
    CHECK(closed);
}

TEST_CASE("destroying an armed timer cancels it, and a destroyed wheel disarms its timers") {
    Probe* survivor = nullptr;
    {
        TimerWheel wheel;
        {
            Probe short_lived(wheel);
            wheel.arm(short_lived.timer, 10);
            CHECK(wheel.armed_count() == 1);
        }
        CHECK(wheel.armed_count() == 0);
        CHECK(wheel.advance(100) == 0);
        survivor = new Probe(wheel);
        wheel.arm(survivor->timer, 1000);
    }
    CHECK_FALSE(survivor->timer.armed());
    delete survivor;  // its destructor must not touch the dead wheel (ASan checks)
}

TEST_CASE("time never goes backwards") {
    TimerWheel wheel(1000);
    Probe probe(wheel);
    wheel.arm(probe.timer, 10);
    CHECK(wheel.advance(5) == 0);
    CHECK(wheel.now() == 1000);
    CHECK(wheel.advance(1010) == 1);
}

TEST_CASE("the largest deadline is representable and fires") {
    TimerWheel wheel;
    Probe probe(wheel);
    constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
    wheel.arm(probe.timer, kMax);  // saturates instead of wrapping
    CHECK(probe.timer.deadline() == kMax);
    const auto next = wheel.next_deadline();
    REQUIRE(next.has_value());
    CHECK(*next > 0);
    CHECK(*next <= kMax);
    CHECK(wheel.advance(kMax - 1) == 0);
    CHECK(wheel.advance(kMax) == 1);
}

TEST_CASE("next_deadline is never after the earliest deadline and reaches it in few steps") {
    std::mt19937_64 random(7);
    for (int round = 0; round < 200; ++round) {
        TimerWheel wheel(random() >> 20);
        std::vector<std::unique_ptr<Probe>> probes;
        std::uint64_t earliest = std::numeric_limits<std::uint64_t>::max();
        for (int i = 0; i < 10; ++i) {
            probes.push_back(std::make_unique<Probe>(wheel));
            const std::uint64_t delay = 1 + (random() >> (20 + random() % 40));
            wheel.arm(probes.back()->timer, delay);
            earliest = std::min(earliest, probes.back()->timer.deadline());
        }
        // Sleeping until next_deadline() each time must land exactly on the earliest deadline
        // after at most one stop per level, without ever firing early.
        int steps = 0;
        while (wheel.armed_count() == probes.size()) {
            const auto next = wheel.next_deadline();
            REQUIRE(next.has_value());
            REQUIRE(*next > wheel.now());
            REQUIRE(*next <= earliest);
            wheel.advance(*next);
            ++steps;
        }
        CHECK(wheel.now() == earliest);
        CHECK(steps <= static_cast<int>(TimerWheel::kLevels));
    }
}

TEST_CASE("50,000 idle timers far in the future cost nothing per tick") {
    constexpr std::size_t kIdle = 50'000;
    TimerWheel wheel;
    std::vector<std::unique_ptr<Probe>> idle;
    idle.reserve(kIdle);
    for (std::size_t i = 0; i < kIdle; ++i) {
        idle.push_back(std::make_unique<Probe>(wheel));
        wheel.arm(idle.back()->timer, kHour + i * 71);  // spread over about an hour
    }
    REQUIRE(wheel.armed_count() == kIdle);

    // Ten thousand 1 ms ticks: no slot emptied, no timer touched, whatever the number armed.
    const TimerWheel::Stats before = wheel.stats();
    for (std::uint64_t tick = 1; tick <= 10'000; ++tick) {
        REQUIRE(wheel.advance(tick) == 0);
    }
    CHECK(wheel.stats().slots_visited == before.slots_visited);
    CHECK(wheel.stats().timers_visited == before.timers_visited);
    const auto next = wheel.next_deadline();
    REQUIRE(next.has_value());
    CHECK(*next > 10'000);

    // A tick with one due timer among them visits exactly its slot and itself.
    Probe near(wheel);
    wheel.arm(near.timer, 5);
    const TimerWheel::Stats armed = wheel.stats();
    CHECK(wheel.advance(10'005) == 1);
    CHECK(wheel.stats().slots_visited - armed.slots_visited == 1);
    CHECK(wheel.stats().timers_visited - armed.timers_visited == 1);

    // Amortised: reaching all of them touches each timer at most once per level it descends.
    CHECK(wheel.advance(3 * kHour) == kIdle);
    CHECK(wheel.stats().timers_visited - armed.timers_visited <= 1 + kIdle * TimerWheel::kLevels);
    for (const auto& probe : idle)
        REQUIRE(probe->fired == 1);
}
