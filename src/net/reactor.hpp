// One event loop per thread: fd readiness, timers, and tasks posted from other threads.
//
// Only post(), wake() and stop() may be called from other threads; everything else belongs to
// the thread running the loop. Readiness is level-triggered at this API whatever the backend
// does underneath: an fd that stays readable is reported again on the next iteration.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "net/mpsc_queue.hpp"
#include "net/sys_result.hpp"
#include "net/timer_wheel.hpp"

namespace wsx::net {

namespace detail {
class ReactorBackend;
}  // namespace detail

enum class Backend : std::uint8_t {
    automatic,  // epoll on Linux, kqueue on BSD and macOS, poll elsewhere
    epoll,
    poll,  // portable; always available
    kqueue,
};

const char* backend_name(Backend backend) noexcept;

enum class Interest : std::uint8_t {
    none = 0,  // parked: registered but reported for nothing, not even errors
    read = 1,
    write = 2,
    read_write = 3,
};

constexpr Interest operator|(Interest a, Interest b) noexcept {
    return static_cast<Interest>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr Interest operator&(Interest a, Interest b) noexcept {
    return static_cast<Interest>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
constexpr bool has(Interest set, Interest flag) noexcept {
    return (set & flag) != Interest::none;
}

// Receives the readiness of the fds it was registered for; one virtual call per event.
//
// A hang-up is reported as readable (and writable, if asked for) so the next read or write
// returns what happened: 0 for EOF, EPIPE or ECONNRESET. on_error is for a pending socket error
// (e.g. ECONNREFUSED after a non-blocking connect) and EBADF for an fd closed while registered.
// A callback may add, modify or remove any fd, including its own; once an fd is removed no
// further callback of the current iteration reaches its old handler.
class IoHandler {
  public:
    virtual ~IoHandler() = default;
    // The fd is ready for what its Interest asked (see above for hang-ups and errors).
    virtual void on_readable(int fd) = 0;
    virtual void on_writable(int fd) = 0;
    virtual void on_error(int fd, int error) = 0;
};

// Work handed to a reactor from any thread. Intrusive: the caller owns the storage and the task
// must stay alive until run() or discard() is called; one of them is called exactly once per
// post, and the reactor does not touch the task afterwards (it may delete itself).
class Task : public MpscNode {
  public:
    Task() = default;
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;

    // Runs on the reactor thread.
    virtual void run() = 0;
    // Called instead of run() when the reactor is destroyed with the task still queued.
    virtual void discard() noexcept {}

  protected:
    // Virtual so derived tasks need not be final to build warning-free; protected because the
    // reactor never deletes a task (ownership stays with the caller or the task itself).
    virtual ~Task() = default;
};

// A callable post() wraps in an allocated node; Task objects take the intrusive overload instead.
template <class F>
concept TaskFunction = std::invocable<std::add_lvalue_reference_t<std::decay_t<F>>> &&
    !std::derived_from<std::remove_cvref_t<F>, Task>;

class Reactor {
  public:
    static constexpr std::chrono::milliseconds kWaitForever{-1};

    // Creates a reactor on the given backend: ENOTSUP if the platform lacks it, or the errno of
    // the failed epoll_create/pipe/... call.
    static SysResult<std::unique_ptr<Reactor>> create(Backend backend = Backend::automatic);

    // Queued tasks are discarded, not run. Registered fds are left open (the caller owns them).
    ~Reactor();
    Reactor(const Reactor&) = delete;
    Reactor& operator=(const Reactor&) = delete;

    // The backend in use (automatic resolves to epoll, kqueue or poll).
    Backend backend() const noexcept;

    // fd registration. `handler` must outlive the registration. Errors: EBADF for a negative or
    // closed fd, EEXIST if already registered, ENOENT if not registered, or the backend's errno.
    SysStatus add(int fd, Interest interest, IoHandler& handler);
    SysStatus modify(int fd, Interest interest);
    // Remove before closing the fd: a closed fd cannot be told apart from its successor.
    SysStatus remove(int fd) noexcept;
    // Whether `fd` is registered, and with which interest (none when not).
    bool registered(int fd) const noexcept;
    Interest interest(int fd) const noexcept;

    // Timers, in milliseconds of loop time. Delays count from now(), which is read from the
    // monotonic clock once per loop iteration (as in libuv), not at the call.
    void arm(Timer& timer, std::chrono::milliseconds delay) noexcept;
    void cancel(Timer& timer) noexcept { timers_.cancel(timer); }
    std::chrono::milliseconds now() const noexcept;
    TimerWheel& timer_wheel() noexcept { return timers_; }

    // One iteration: wait up to `timeout` (shortened to the next timer; kWaitForever: no limit
    // other than timers), then run due timers, I/O events and posted tasks, in that order. Time
    // moves before any callback runs, so a timer armed from an I/O callback or a task counts
    // from the end of the wait, not from before it.
    // Returns how many callbacks ran, or the errno of a failed wait. Not reentrant.
    SysResult<std::size_t> run_once(std::chrono::milliseconds timeout = kWaitForever);

    // Iterates until stop() is called; the stop request is consumed, so run() may be called
    // again. A stop() that arrives before run() makes it return after no iteration.
    SysStatus run();

    // Any thread.
    void stop() noexcept;
    // Any thread: interrupts a blocking wait. Coalesced: many calls before the loop wakes cost
    // one system call.
    void wake() noexcept;
    // Any thread: queues `task` to run on the reactor thread, FIFO per producing thread.
    void post(Task& task) noexcept;
    // Any thread: queues a callable (one allocation for its node, freed after it ran).
    template <TaskFunction F>
    void post(F&& function) {
        post(*new CallableTask<std::decay_t<F>>(std::forward<F>(function)));
    }

  private:
    template <class F>
    class CallableTask final : public Task {
      public:
        explicit CallableTask(F function) : function_(std::move(function)) {}
        void run() override {
            const std::unique_ptr<CallableTask> self(this);  // freed even if function_ throws
            function_();
        }
        void discard() noexcept override { delete this; }

      private:
        F function_;
    };

    struct Registration {
        IoHandler* handler = nullptr;  // null: fd not registered
        Interest interest = Interest::none;
        std::uint32_t generation = 0;  // bumped per add(), to drop events meant for a predecessor
    };

    explicit Reactor(std::unique_ptr<detail::ReactorBackend> backend) noexcept;

    int poll_timeout(std::chrono::milliseconds requested) const noexcept;
    std::size_t dispatch(int fd, std::uint8_t flags, std::uint32_t generation);
    std::size_t run_tasks();
    std::uint64_t clock_ms() const noexcept;
    const Registration* find(int fd) const noexcept;
    Registration* find(int fd) noexcept {
        return const_cast<Registration*>(std::as_const(*this).find(fd));
    }

    std::unique_ptr<detail::ReactorBackend> backend_;
    std::vector<Registration> registrations_;  // indexed by fd
    std::uint32_t next_generation_ = 1;
    TimerWheel timers_;
    std::chrono::steady_clock::time_point epoch_;
    MpscQueue tasks_;
    bool tasks_left_ = false;  // the last run_tasks() stopped before the queue was empty
    // True from the first wake()/post() after the loop last looked at the queue until it looks
    // again: later callers skip the system call because a wake-up is already on its way.
    std::atomic<bool> wake_pending_{false};
    std::atomic<bool> stop_requested_{false};
};

}  // namespace wsx::net
