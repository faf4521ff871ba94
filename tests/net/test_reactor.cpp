#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/reactor.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using wsx::net::Interest;
using wsx::net::IoHandler;
using wsx::net::Reactor;
using wsx::net::SysResult;
using wsx::net::Task;
using wsx::net::Timer;
using wsx::net::testing::make_reactor;
using wsx::net::testing::run_until;

namespace {

// A connected, non-blocking AF_UNIX stream pair, closed on destruction.
struct SocketPair {
    int fds[2] = {-1, -1};
    SocketPair() {
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    }
    ~SocketPair() {
        close_end(0);
        close_end(1);
    }
    SocketPair(const SocketPair&) = delete;
    SocketPair& operator=(const SocketPair&) = delete;
    int near() const { return fds[0]; }
    int far() const { return fds[1]; }
    void close_end(int i) {
        if (fds[i] >= 0) ::close(fds[i]);
        fds[i] = -1;
    }
    void send_far(const char* text = "x") const {
        REQUIRE(::send(fds[1], text, std::char_traits<char>::length(text), MSG_NOSIGNAL) > 0);
    }
};

// Counts callbacks; optionally runs a hook in on_readable.
struct Counter : IoHandler {
    int readable = 0;
    int writable = 0;
    int errors = 0;
    int last_error = 0;
    std::function<void(int)> on_read_hook;
    void on_readable(int fd) override {
        ++readable;
        if (on_read_hook) on_read_hook(fd);
    }
    void on_writable(int) override { ++writable; }
    void on_error(int, int error) override {
        ++errors;
        last_error = error;
    }
};

std::size_t drain(int fd) {
    std::array<char, 4096> buffer{};
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n <= 0) return total;
        total += static_cast<std::size_t>(n);
    }
}

}  // namespace

TEST_CASE_TEMPLATE("a readable fd is reported on every iteration until drained", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    SocketPair pair;
    Counter counter;
    REQUIRE(reactor->add(pair.near(), Interest::read, counter).ok());
    CHECK(reactor->run_once(0ms).value == 0);
    CHECK(counter.readable == 0);

    pair.send_far("hello");
    CHECK(reactor->run_once(1000ms).value == 1);
    CHECK(reactor->run_once(1000ms).value == 1);  // level-triggered: still unread
    CHECK(counter.readable == 2);
    CHECK(drain(pair.near()) == 5);
    CHECK(reactor->run_once(20ms).value == 0);
    CHECK(counter.readable == 2);
    CHECK(counter.writable == 0);
    REQUIRE(reactor->remove(pair.near()).ok());
}

TEST_CASE_TEMPLATE("interest changes take effect on the next iteration", B, WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    SocketPair pair;
    Counter counter;
    REQUIRE(reactor->add(pair.near(), Interest::write, counter).ok());
    CHECK(reactor->run_once(1000ms).value == 1);
    CHECK(counter.writable == 1);

    pair.send_far();
    REQUIRE(reactor->modify(pair.near(), Interest::read).ok());
    CHECK(reactor->interest(pair.near()) == Interest::read);
    CHECK(reactor->run_once(1000ms).value == 1);
    CHECK(counter.readable == 1);
    CHECK(counter.writable == 1);

    REQUIRE(reactor->modify(pair.near(), Interest::read_write).ok());
    CHECK(reactor->run_once(1000ms).value == 2);
    CHECK(counter.readable == 2);
    CHECK(counter.writable == 2);

    REQUIRE(reactor->modify(pair.near(), Interest::none).ok());
    CHECK(reactor->run_once(20ms).value == 0);
    CHECK(reactor->registered(pair.near()));
    REQUIRE(reactor->remove(pair.near()).ok());
    CHECK_FALSE(reactor->registered(pair.near()));
}

TEST_CASE_TEMPLATE("a parked fd reports nothing, not even a hang-up, until interest returns", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    SocketPair pair;
    Counter counter;
    REQUIRE(reactor->add(pair.near(), Interest::none, counter).ok());
    pair.close_end(1);
    CHECK(reactor->run_once(20ms).value == 0);
    REQUIRE(reactor->modify(pair.near(), Interest::read).ok());
    CHECK(reactor->run_once(1000ms).value == 1);
    CHECK(counter.readable == 1);
    CHECK(counter.errors == 0);
    char byte = 0;
    CHECK(::read(pair.near(), &byte, 1) == 0);  // the hang-up shows as EOF
    REQUIRE(reactor->remove(pair.near()).ok());
}

TEST_CASE_TEMPLATE("a closed peer is reported as readable and the read returns EOF", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    SocketPair pair;
    Counter counter;
    int eof_reads = 0;
    counter.on_read_hook = [&](int fd) {
        char byte = 0;
        if (::read(fd, &byte, 1) == 0) {
            ++eof_reads;
            CHECK(reactor->remove(fd).ok());
        }
    };
    REQUIRE(reactor->add(pair.near(), Interest::read, counter).ok());
    pair.close_end(1);
    CHECK(run_until(*reactor, [&] { return eof_reads == 1; }));
    CHECK(counter.errors == 0);
}

TEST_CASE_TEMPLATE("an fd closed while registered is reported as an error or not at all", B,
                   WSX_NET_TEST_BACKENDS) {
    // epoll and kqueue forget a closed fd by themselves; poll reports POLLNVAL, which must reach
    // the handler as EBADF rather than spin the loop.
    auto reactor = make_reactor(B::value);
    SocketPair pair;
    Counter counter;
    const int fd = pair.near();
    REQUIRE(reactor->add(fd, Interest::read, counter).ok());
    pair.close_end(0);
    CHECK(reactor->run_once(20ms).ok());
    CHECK(counter.readable == 0);
    if (counter.errors > 0) CHECK(counter.last_error == EBADF);
    CHECK(reactor->registered(fd));
    (void)reactor->remove(fd);  // the kernel may object (EBADF/ENOENT); the registration goes
    CHECK_FALSE(reactor->registered(fd));
}

TEST_CASE_TEMPLATE("removing an fd inside its own callback stops its other callbacks", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    SocketPair pair;
    Counter counter;
    counter.on_read_hook = [&](int fd) { CHECK(reactor->remove(fd).ok()); };
    pair.send_far();
    REQUIRE(reactor->add(pair.near(), Interest::read_write, counter).ok());  // both ready
    CHECK(reactor->run_once(1000ms).value == 1);
    CHECK(counter.readable == 1);
    CHECK(counter.writable == 0);
    CHECK(reactor->run_once(20ms).value == 0);
}

TEST_CASE_TEMPLATE("an fd removed by another callback receives no stale event", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    SocketPair a;
    SocketPair b;
    Counter first;
    Counter second;
    Counter successor;  // takes over whichever fd was removed, in the same iteration
    bool swapped = false;
    const auto remove_other = [&](int self) {
        drain(self);
        if (swapped) return;
        swapped = true;
        const int other = self == a.near() ? b.near() : a.near();
        CHECK(reactor->remove(other).ok());
        CHECK(reactor->add(other, Interest::read, successor).ok());
    };
    first.on_read_hook = remove_other;
    second.on_read_hook = remove_other;
    a.send_far();
    b.send_far();
    REQUIRE(reactor->add(a.near(), Interest::read, first).ok());
    REQUIRE(reactor->add(b.near(), Interest::read, second).ok());
    CHECK(run_until(*reactor, [&] { return first.readable + second.readable > 0; }));
    CHECK(first.readable + second.readable == 1);
    CHECK(successor.readable == 0);  // the event it would get was meant for its predecessor
    CHECK(reactor->run_once(1000ms).value >= 1);
    CHECK(successor.readable >= 1);  // still unread, so reported to the new handler now
    (void)reactor->remove(a.near());
    (void)reactor->remove(b.near());
}

TEST_CASE_TEMPLATE("hundreds of fds are each reported and drained", B, WSX_NET_TEST_BACKENDS) {
    constexpr std::size_t kPairs = 300;
    auto reactor = make_reactor(B::value);
    std::vector<std::unique_ptr<SocketPair>> pairs;
    Counter counter;
    std::size_t drained = 0;
    counter.on_read_hook = [&](int fd) {
        CHECK(drain(fd) == 3);
        CHECK(reactor->remove(fd).ok());
        ++drained;
    };
    for (std::size_t i = 0; i < kPairs; ++i) {
        pairs.push_back(std::make_unique<SocketPair>());
        REQUIRE(reactor->add(pairs.back()->near(), Interest::read, counter).ok());
    }
    for (std::size_t i = 0; i < kPairs; i += 2)
        pairs[i]->send_far("abc");
    for (std::size_t i = 1; i < kPairs; i += 2)
        pairs[i]->send_far("def");
    CHECK(run_until(*reactor, [&] { return drained == kPairs; }));
    CHECK(counter.readable == static_cast<int>(kPairs));
}

TEST_CASE_TEMPLATE("registration errors are returned as errno values", B, WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    SocketPair pair;
    Counter counter;
    CHECK(reactor->add(-1, Interest::read, counter).error == EBADF);
    REQUIRE(reactor->add(pair.near(), Interest::read, counter).ok());
    CHECK(reactor->add(pair.near(), Interest::read, counter).error == EEXIST);
    CHECK(reactor->modify(pair.far(), Interest::read).error == ENOENT);
    CHECK(reactor->remove(pair.far()).error == ENOENT);
    const int closed = ::dup(pair.far());
    ::close(closed);
    CHECK(reactor->add(closed, Interest::read, counter).error == EBADF);
    CHECK(reactor->add(closed, Interest::none, counter).error == EBADF);
    CHECK(reactor->remove(pair.near()).ok());
}

TEST_CASE_TEMPLATE("tasks posted from four threads all run, in order per producer", B,
                   WSX_NET_TEST_BACKENDS) {
    constexpr int kProducers = 4;
    constexpr int kPerProducer = 10'000;
    auto reactor = make_reactor(B::value);
    std::vector<int> next(kProducers, 0);  // touched only on the reactor thread
    bool in_order = true;
    std::atomic<int> ran{0};

    std::thread loop([&] { CHECK(reactor->run().ok()); });
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            for (int i = 0; i < kPerProducer; ++i) {
                reactor->post([&, p, i] {
                    in_order = in_order && next[static_cast<std::size_t>(p)] == i;
                    next[static_cast<std::size_t>(p)] = i + 1;
                    ran.fetch_add(1, std::memory_order_release);
                });
            }
        });
    }
    for (std::thread& producer : producers)
        producer.join();
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (ran.load(std::memory_order_acquire) < kProducers * kPerProducer &&
           std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
    }
    reactor->stop();  // from this thread, while run() may be blocked in the kernel
    loop.join();
    CHECK(ran.load() == kProducers * kPerProducer);
    CHECK(in_order);
    for (int p = 0; p < kProducers; ++p)
        CHECK(next[static_cast<std::size_t>(p)] == kPerProducer);
}

TEST_CASE_TEMPLATE("stop from another thread ends a blocked run, and run can be resumed", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    for (int round = 0; round < 2; ++round) {
        std::atomic<bool> returned{false};
        std::thread loop([&] {
            CHECK(reactor->run().ok());
            returned.store(true);
        });
        std::this_thread::sleep_for(20ms);
        CHECK_FALSE(returned.load());
        reactor->stop();
        loop.join();
        CHECK(returned.load());
    }
    reactor->stop();  // a stop before run() makes it return at once
    CHECK(reactor->run().ok());
}

TEST_CASE_TEMPLATE("wake from another thread interrupts a blocking wait", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    std::thread waker([&] {
        std::this_thread::sleep_for(20ms);
        reactor->wake();
    });
    const auto start = std::chrono::steady_clock::now();
    const SysResult<std::size_t> iteration = reactor->run_once(10'000ms);
    waker.join();
    CHECK(iteration.ok());
    CHECK(iteration.value == 0);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE_TEMPLATE("a task that keeps posting itself does not starve I/O", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    struct Repost : Task {
        Reactor* reactor = nullptr;
        long runs = 0;
        bool again = true;
        void run() override {
            ++runs;
            if (again) reactor->post(*this);
        }
    } repost;
    repost.reactor = reactor.get();
    SocketPair pair;
    Counter counter;
    REQUIRE(reactor->add(pair.near(), Interest::read, counter).ok());
    reactor->post(repost);
    pair.send_far();
    CHECK(run_until(*reactor, [&] { return counter.readable >= 2; }));
    CHECK(repost.runs > 2);
    repost.again = false;
    CHECK(
        reactor->run_once(0ms).ok());  // lets the last queued run happen before `repost` goes away
    CHECK(reactor->remove(pair.near()).ok());
}

TEST_CASE_TEMPLATE("tasks still queued when the reactor is destroyed are discarded, not run", B,
                   WSX_NET_TEST_BACKENDS) {
    struct Owned : Task {
        int runs = 0;
        int discards = 0;
        void run() override { ++runs; }
        void discard() noexcept override { ++discards; }
    } owned;
    auto token = std::make_shared<int>(0);
    bool lambda_ran = false;
    {
        auto reactor = make_reactor(B::value);
        reactor->post(owned);
        reactor->post([token, &lambda_ran] { lambda_ran = true; });
        CHECK(token.use_count() == 2);
    }
    CHECK(owned.runs == 0);
    CHECK(owned.discards == 1);
    CHECK_FALSE(lambda_ran);
    CHECK(token.use_count() == 1);  // the lambda's node was freed with its capture
}

// --- timers driven by the loop ---------------------------------------------------------------

namespace {

struct Stamp {
    Reactor* reactor = nullptr;
    Timer timer;
    std::vector<int>* order = nullptr;
    int tag = 0;
    int fired = 0;
    std::chrono::milliseconds fired_at{};
    void on_fire() {
        ++fired;
        fired_at = reactor->now();
        if (order != nullptr) order->push_back(tag);
    }
    explicit Stamp(Reactor& r, int t = 0, std::vector<int>* o = nullptr)
        : reactor(&r), order(o), tag(t) {
        timer.bind<&Stamp::on_fire>(this);
    }
};

}  // namespace

TEST_CASE_TEMPLATE("run_once sleeps until the next timer, then fires it", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Stamp stamp(*reactor);
    const auto armed_at = reactor->now();
    const auto real_start = std::chrono::steady_clock::now();
    reactor->arm(stamp.timer, 30ms);
    int iterations = 0;
    while (stamp.fired == 0 && iterations < 20) {
        REQUIRE(reactor->run_once(Reactor::kWaitForever).ok());
        ++iterations;
    }
    CHECK(stamp.fired == 1);
    CHECK(stamp.fired_at - armed_at >= 30ms);
    CHECK(std::chrono::steady_clock::now() - real_start >= 25ms);  // less the ms rounding of now()
    CHECK(iterations <= 3);  // slept through, with at most a cascade wake-up: no busy loop
}

TEST_CASE_TEMPLATE("run_once returns after its timeout when nothing happens", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Stamp far_away(*reactor);
    reactor->arm(far_away.timer, 3600s);
    const auto start = std::chrono::steady_clock::now();
    const SysResult<std::size_t> iteration = reactor->run_once(25ms);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(iteration.ok());
    CHECK(iteration.value == 0);
    CHECK(elapsed >= 24ms);
    CHECK(elapsed < 3000ms);
    CHECK(far_away.fired == 0);
}

TEST_CASE_TEMPLATE("loop timers fire in deadline order; cancelled ones never", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    std::vector<int> order;
    Stamp thirty(*reactor, 30, &order);
    Stamp ten(*reactor, 10, &order);
    Stamp twenty(*reactor, 20, &order);
    Stamp cancelled(*reactor, 15, &order);
    reactor->arm(thirty.timer, 30ms);
    reactor->arm(ten.timer, 10ms);
    reactor->arm(twenty.timer, 20ms);
    reactor->arm(cancelled.timer, 15ms);
    reactor->cancel(cancelled.timer);
    CHECK(run_until(*reactor, [&] { return order.size() == 3; }));
    CHECK(order == std::vector<int>{10, 20, 30});
    CHECK(cancelled.fired == 0);
}

TEST_CASE_TEMPLATE("re-arming a loop timer moves its deadline", B, WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Stamp stamp(*reactor);
    const auto armed_at = reactor->now();
    reactor->arm(stamp.timer, 5ms);
    reactor->arm(stamp.timer, 40ms);
    CHECK(run_until(*reactor, [&] { return stamp.fired > 0; }));
    CHECK(stamp.fired == 1);
    CHECK(stamp.fired_at - armed_at >= 40ms);
}

TEST_CASE_TEMPLATE("a timer armed from a timer callback fires on a later iteration", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    Stamp second(*reactor);
    struct Chain {
        Reactor* reactor = nullptr;
        Timer timer;
        Timer* next = nullptr;
        void on_fire() { reactor->arm(*next, 0ms); }
    } first;
    first.reactor = reactor.get();
    first.next = &second.timer;
    first.timer.template bind<&Chain::on_fire>(&first);
    reactor->arm(first.timer, 5ms);
    CHECK(run_until(*reactor, [&] { return !first.timer.armed(); }));
    CHECK(second.fired == 0);
    CHECK(second.timer.armed());
    // The due timer makes the next wait non-blocking: it fires without any fd or timeout help.
    const auto start = std::chrono::steady_clock::now();
    CHECK(reactor->run_once(Reactor::kWaitForever).value == 1);
    CHECK(second.fired == 1);
    CHECK(std::chrono::steady_clock::now() - start < 1s);
}

TEST_CASE_TEMPLATE("50,000 idle loop timers are not visited while the loop runs", B,
                   WSX_NET_TEST_BACKENDS) {
    auto reactor = make_reactor(B::value);
    std::vector<std::unique_ptr<Stamp>> idle;
    for (int i = 0; i < 50'000; ++i) {
        idle.push_back(std::make_unique<Stamp>(*reactor));
        reactor->arm(idle.back()->timer, std::chrono::milliseconds(3'600'000 + i * 50));
    }
    Stamp near(*reactor);
    reactor->arm(near.timer, 30ms);
    const auto before = reactor->timer_wheel().stats();
    CHECK(run_until(*reactor, [&] { return near.fired > 0; }));
    const auto after = reactor->timer_wheel().stats();
    // The near timer may cascade once on its way down; the idle ones are never touched.
    CHECK(after.timers_visited - before.timers_visited <= 2);
    CHECK(after.slots_visited - before.slots_visited <= 2);
    CHECK(reactor->timer_wheel().armed_count() == 50'000);
}

TEST_CASE_TEMPLATE("a timer armed from an I/O callback after a long wait counts from the wake-up",
                   B, WSX_NET_TEST_BACKENDS) {
    // The loop sleeps ~200 ms, then I/O arrives and its callback arms a 100 ms timer: the timer
    // must not count from before the sleep (which would fire it at once).
    auto reactor = make_reactor(B::value);
    SocketPair pair;
    Counter counter;
    Timer timer;
    bool fired = false;
    std::chrono::steady_clock::time_point armed_at;
    std::chrono::steady_clock::time_point fired_at;
    timer.set_callback([](void* context) { *static_cast<bool*>(context) = true; }, &fired);
    counter.on_read_hook = [&](int fd) {
        drain(fd);
        if (!timer.armed() && !fired) {
            armed_at = std::chrono::steady_clock::now();
            reactor->arm(timer, 100ms);
        }
    };
    REQUIRE(reactor->add(pair.near(), Interest::read, counter).ok());
    CHECK(reactor->run_once(0ms).ok());
    std::thread writer([&] {
        std::this_thread::sleep_for(200ms);
        pair.send_far("late");
    });
    CHECK(run_until(
        *reactor, [&] { return counter.readable > 0; }, 5000ms));
    writer.join();
    CHECK(run_until(*reactor, [&] {
        if (fired && fired_at == std::chrono::steady_clock::time_point{}) {
            fired_at = std::chrono::steady_clock::now();
        }
        return fired;
    }));
    CHECK(fired_at - armed_at >= 90ms);  // 100 ms less the millisecond rounding of loop time
    REQUIRE(reactor->remove(pair.near()).ok());
}

TEST_CASE_TEMPLATE("fds added from a callback while events are dispatched are reported later", B,
                   WSX_NET_TEST_BACKENDS) {
    // Adding many fds from inside a callback grows the backend's tables while the reactor is
    // still walking this iteration's events (ASan catches a table freed under its feet).
    auto reactor = make_reactor(B::value);
    SocketPair trigger;
    std::vector<std::unique_ptr<SocketPair>> pairs;
    std::vector<std::unique_ptr<Counter>> counters;
    for (int i = 0; i < 200; ++i) {
        pairs.push_back(std::make_unique<SocketPair>());
        counters.push_back(std::make_unique<Counter>());
        pairs.back()->send_far("x");
    }
    Counter first;
    first.on_read_hook = [&](int fd) {
        drain(fd);
        if (reactor->registered(pairs[0]->near())) return;
        for (std::size_t i = 0; i < pairs.size(); ++i) {
            REQUIRE(reactor->add(pairs[i]->near(), Interest::read, *counters[i]).ok());
        }
    };
    REQUIRE(reactor->add(trigger.near(), Interest::read, first).ok());
    trigger.send_far("go");
    CHECK(run_until(*reactor, [&] {
        for (const auto& c : counters) {
            if (c->readable == 0) return false;
        }
        return true;
    }));
    for (const auto& p : pairs)
        REQUIRE(reactor->remove(p->near()).ok());
    REQUIRE(reactor->remove(trigger.near()).ok());
}
