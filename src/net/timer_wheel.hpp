// Timers for the net layer: handshake, idle, ping and close timeouts of many connections at once.
//
// A hierarchical timing wheel with 64 slots per level and 11 levels (11 × 6 bits cover every
// 64-bit deadline, so nothing is ever clamped). Time is an abstract tick count; the Reactor feeds
// it milliseconds.
//
// Placement: a timer whose deadline d is later than now sits on the level of the highest 6-bit
// digit in which d and now differ, in the slot named by d's digit at that level. So every timer
// on level L shares now's digits above L and has a larger digit at L. Advancing from now to t
// visits, on each level, only the slots whose digit range was passed; their timers either expire
// or drop to a lower level (each timer moves down at most 10 times over its life).
//
// Cost: arm and cancel are O(1) (unlink and link in a doubly linked slot list). A 64-bit
// occupancy mask per level lets advance() and next_deadline() skip empty slots with bit
// arithmetic, so timers that are not due are neither visited nor counted, however many there are
// and however far time jumps.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace wsx::net {

class TimerWheel;

// A one-shot timer embedded in the object it times out (e.g. a `Timer idle_timer_` member of a
// connection). Arming links it into a wheel without allocating. Destroying an armed timer cancels
// it, so an owner never leaves a dangling node behind.
class Timer {
  public:
    using Callback = void (*)(void* context);

    Timer() noexcept = default;
    Timer(Callback callback, void* context) noexcept : callback_(callback), context_(context) {}
    ~Timer() { cancel(); }

    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    void set_callback(Callback callback, void* context) noexcept {
        callback_ = callback;
        context_ = context;
    }

    // Binds a member function without a wrapper object: timer.bind<&Connection::on_idle>(this).
    template <auto Method, class T>
    void bind(T* object) noexcept {
        set_callback([](void* context) { (static_cast<T*>(context)->*Method)(); }, object);
    }

    bool armed() const noexcept { return wheel_ != nullptr; }
    // The tick the timer fires at (meaningful while armed).
    std::uint64_t deadline() const noexcept { return deadline_; }

    // Disarms the timer if it is armed; safe to call at any time, including from a callback.
    void cancel() noexcept;

  private:
    friend class TimerWheel;

    Timer* prev_ = nullptr;
    Timer* next_ = nullptr;
    TimerWheel* wheel_ = nullptr;  // non-null exactly while armed
    std::uint64_t deadline_ = 0;
    std::uint16_t list_ = 0;  // which of wheel_'s lists holds the timer
    Callback callback_ = nullptr;
    void* context_ = nullptr;
};

class TimerWheel {
  public:
    static constexpr unsigned kSlotBits = 6;
    static constexpr unsigned kSlotsPerLevel = 1U << kSlotBits;
    static constexpr unsigned kLevels = (64 + kSlotBits - 1) / kSlotBits;

    // Counters that make the cost of advance() observable (tests prove idle timers cost nothing).
    struct Stats {
        std::uint64_t slots_visited = 0;   // non-empty slots emptied by advance()
        std::uint64_t timers_visited = 0;  // timers taken out of a slot to expire or move down
        std::uint64_t timers_fired = 0;
    };

    explicit TimerWheel(std::uint64_t now = 0) noexcept : now_(now) {}
    // Disarms every timer still armed (their owners may outlive the wheel).
    ~TimerWheel();

    TimerWheel(const TimerWheel&) = delete;
    TimerWheel& operator=(const TimerWheel&) = delete;

    // The tick of the last advance().
    std::uint64_t now() const noexcept { return now_; }

    // Arms `timer` to fire at `deadline`; an armed timer is moved (from this or another wheel). A
    // deadline not after now() fires at the next advance(), never inside arm_at().
    void arm_at(Timer& timer, std::uint64_t deadline) noexcept;
    // Arms `timer` to fire `delay` ticks after now() (saturating).
    void arm(Timer& timer, std::uint64_t delay) noexcept;
    // Disarms `timer`; nothing happens when it is not armed.
    void cancel(Timer& timer) noexcept;

    // Moves time forward to `now` (a smaller value is ignored: time never goes back) and runs the
    // callbacks of every timer whose deadline is <= now, in deadline order. A timer is disarmed
    // before its callback runs, so the callback may re-arm it or destroy its owner. Timers armed
    // by a callback with a deadline <= now fire at the next advance(), which bounds the work of
    // one call. Timers with equal deadlines fire in the order they were armed. Must not be called
    // from a timer callback. Returns the number of callbacks run.
    std::size_t advance(std::uint64_t now);

    // A tick at or before the earliest deadline and after no deadline that is due later: exact
    // for timers within 64 ticks of now, otherwise the tick at which the earliest occupied slot
    // must be split, which is never later than its timers' deadlines. nullopt when nothing is
    // armed. Costs one bit scan per level.
    std::optional<std::uint64_t> next_deadline() const noexcept;

    // Timers armed right now, and counters for tests and metrics.
    std::size_t armed_count() const noexcept { return armed_count_; }
    const Stats& stats() const noexcept { return stats_; }

  private:
    struct List {
        Timer* head = nullptr;
        Timer* tail = nullptr;
    };

    static constexpr std::uint16_t kDueList = kLevels * kSlotsPerLevel;  // deadline <= now at arm
    static constexpr std::uint16_t kFiringList = kDueList + 1;  // taken by the running advance()
    static constexpr std::size_t kListCount = kFiringList + 1;

    void link(Timer& timer, std::uint16_t list) noexcept;
    void unlink(Timer& timer) noexcept;
    void place(Timer& timer) noexcept;
    void sort_firing_list() noexcept;
    static Timer* merge_by_deadline(Timer* a, Timer* b) noexcept;

    std::array<List, kListCount> lists_{};
    std::array<std::uint64_t, kLevels> occupied_{};  // bit s of level L: slot s holds timers
    std::uint64_t now_;
    std::size_t armed_count_ = 0;
    Stats stats_;
};

}  // namespace wsx::net
