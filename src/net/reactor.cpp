#include "net/reactor.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "net/reactor_backend.hpp"

namespace wsx::net {

namespace {

// Tasks run per iteration before I/O gets its turn again: a task that keeps posting tasks to its
// own reactor must not starve the fds.
constexpr std::size_t kTaskBudget = 1024;

// The error a socket reported (and clears it), or 0 when there is none or fd is not a socket.
int take_socket_error(int fd) noexcept {
    int error = 0;
    socklen_t length = sizeof(error);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return 0;
    return error;
}

}  // namespace

const char* backend_name(Backend backend) noexcept {
    switch (backend) {
        case Backend::automatic:
            return "automatic";
        case Backend::epoll:
            return "epoll";
        case Backend::poll:
            return "poll";
        case Backend::kqueue:
            return "kqueue";
    }
    return "unknown";
}

SysResult<std::unique_ptr<Reactor>> Reactor::create(Backend backend) {
    detail::BackendResult made;
    switch (backend) {
        case Backend::automatic:
#if defined(WSX_NET_HAVE_EPOLL)
            made = detail::make_epoll_backend();
#elif defined(WSX_NET_HAVE_KQUEUE)
            made = detail::make_kqueue_backend();
#else
            made = detail::make_poll_backend();
#endif
            break;
        case Backend::epoll:
#if defined(WSX_NET_HAVE_EPOLL)
            made = detail::make_epoll_backend();
#else
            made.error = ENOTSUP;
#endif
            break;
        case Backend::kqueue:
#if defined(WSX_NET_HAVE_KQUEUE)
            made = detail::make_kqueue_backend();
#else
            made.error = ENOTSUP;
#endif
            break;
        case Backend::poll:
            made = detail::make_poll_backend();
            break;
    }
    if (!made.ok()) return {nullptr, made.error};
    return {std::unique_ptr<Reactor>(new Reactor(std::move(made.value))), 0};
}

Reactor::Reactor(std::unique_ptr<detail::ReactorBackend> backend) noexcept
    : backend_(std::move(backend)), epoch_(std::chrono::steady_clock::now()) {}

Reactor::~Reactor() {
    while (MpscNode* node = tasks_.pop())
        static_cast<Task*>(node)->discard();
}

Backend Reactor::backend() const noexcept {
    return backend_->kind();
}

const Reactor::Registration* Reactor::find(int fd) const noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= registrations_.size()) return nullptr;
    const Registration& registration = registrations_[static_cast<std::size_t>(fd)];
    return registration.handler != nullptr ? &registration : nullptr;
}

bool Reactor::registered(int fd) const noexcept {
    return find(fd) != nullptr;
}

Interest Reactor::interest(int fd) const noexcept {
    const Registration* registration = find(fd);
    return registration != nullptr ? registration->interest : Interest::none;
}

SysStatus Reactor::add(int fd, Interest interest, IoHandler& handler) {
    if (fd < 0) return {EBADF};
    if (find(fd) != nullptr) return {EEXIST};
    // Grow first, so a failed allocation leaves the backend untouched.
    const auto index = static_cast<std::size_t>(fd);
    if (index >= registrations_.size()) registrations_.resize(index + 1);
    if (const int error = backend_->add(fd, interest); error != 0) return {error};
    registrations_[index] = Registration{&handler, interest, next_generation_};
    // Generation 0 marks events of unregistered fds, so it is never handed out.
    if (++next_generation_ == 0) next_generation_ = 1;
    return {};
}

SysStatus Reactor::modify(int fd, Interest interest) {
    Registration* registration = find(fd);
    if (registration == nullptr) return {ENOENT};
    if (registration->interest == interest) return {};
    if (const int error = backend_->modify(fd, registration->interest, interest); error != 0) {
        return {error};
    }
    registration->interest = interest;
    return {};
}

SysStatus Reactor::remove(int fd) noexcept {
    Registration* registration = find(fd);
    if (registration == nullptr) return {ENOENT};
    // The registration goes even if the kernel objects (e.g. the fd was already closed): there
    // is nothing left to deliver to the handler either way.
    const int error = backend_->remove(fd, registration->interest);
    *registration = Registration{};
    return {error};
}

void Reactor::arm(Timer& timer, std::chrono::milliseconds delay) noexcept {
    timers_.arm(timer, static_cast<std::uint64_t>(std::max<std::int64_t>(delay.count(), 0)));
}

std::chrono::milliseconds Reactor::now() const noexcept {
    return std::chrono::milliseconds(static_cast<std::int64_t>(timers_.now()));
}

std::uint64_t Reactor::clock_ms() const noexcept {
    const auto elapsed = std::chrono::steady_clock::now() - epoch_;
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
}

int Reactor::poll_timeout(std::chrono::milliseconds requested) const noexcept {
    if (tasks_left_) return 0;
    std::int64_t limit =
        requested.count() < 0 ? -1 : std::min<std::int64_t>(requested.count(), INT_MAX);
    if (const auto deadline = timers_.next_deadline()) {
        const std::uint64_t now = timers_.now();
        const std::uint64_t until =
            std::min<std::uint64_t>(*deadline > now ? *deadline - now : 0, INT_MAX);
        if (limit < 0 || until < static_cast<std::uint64_t>(limit)) {
            limit = static_cast<std::int64_t>(until);
        }
    }
    return static_cast<int>(limit);
}

SysResult<std::size_t> Reactor::run_once(std::chrono::milliseconds timeout) {
    std::span<detail::ReadyEvent> ready;
    if (const int error = backend_->wait(poll_timeout(timeout), ready); error != 0) {
        return {0, error};
    }
    const std::uint64_t now = clock_ms();  // the one clock read of this iteration

    // Stamp each event with the registration it was meant for before any callback (timers
    // included) can remove an fd and register a new one under the same number.
    for (detail::ReadyEvent& event : ready) {
        const Registration* registration = find(event.fd);
        event.generation = registration != nullptr ? registration->generation : 0;
    }
    // Timers first: now() must not lag behind the wait, or a delay armed by an I/O callback or
    // a task would count from before it and fire early (by as much as the loop slept).
    std::size_t calls = timers_.advance(now);
    for (const detail::ReadyEvent& event : ready) {
        calls += dispatch(event.fd, event.flags, event.generation);
    }
    calls += run_tasks();
    return {calls, 0};
}

std::size_t Reactor::dispatch(int fd, std::uint8_t flags, std::uint32_t generation) {
    // Re-found before every callback: the previous one may have removed the fd or grown the table.
    Registration* registration = find(fd);
    if (registration == nullptr || registration->generation != generation) return 0;
    if ((flags & detail::kInvalid) != 0) {
        registration->handler->on_error(fd, EBADF);
        return 1;
    }
    if ((flags & detail::kErrored) != 0) {
        if (const int error = take_socket_error(fd); error != 0) {
            registration->handler->on_error(fd, error);
            return 1;
        }
        // Not a socket error (e.g. a pipe whose reader left): the next read or write reports it.
        flags |= detail::kHangup;
    }
    if ((flags & detail::kHangup) != 0) flags |= detail::kReadable | detail::kWritable;

    std::size_t calls = 0;
    if ((flags & detail::kReadable) != 0 && has(registration->interest, Interest::read)) {
        registration->handler->on_readable(fd);
        ++calls;
        registration = find(fd);
        if (registration == nullptr || registration->generation != generation) return calls;
    }
    if ((flags & detail::kWritable) != 0 && has(registration->interest, Interest::write)) {
        registration->handler->on_writable(fd);
        ++calls;
    }
    return calls;
}

std::size_t Reactor::run_tasks() {
    // Clear the flag before looking at the queue. A producer whose exchange comes after this one
    // sees false and signals the backend again; one whose exchange came before synchronizes with
    // this exchange, so its node is linked and visible to the pops below.
    wake_pending_.exchange(false, std::memory_order_acq_rel);
    tasks_left_ = true;  // stays set if a task throws, so the next wait does not sleep on the rest
    std::size_t ran = 0;
    while (ran < kTaskBudget) {
        MpscNode* node = tasks_.pop();
        if (node == nullptr) {
            tasks_left_ = false;
            break;
        }
        ++ran;
        static_cast<Task*>(node)->run();
    }
    return ran;
}

SysStatus Reactor::run() {
    while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) {
        const SysResult<std::size_t> iteration = run_once(kWaitForever);
        if (!iteration.ok()) return {iteration.error};
    }
    return {};
}

void Reactor::stop() noexcept {
    stop_requested_.store(true, std::memory_order_release);
    wake();
}

void Reactor::wake() noexcept {
    // Only the caller that flips the flag pays for the system call; the flag is cleared by the
    // loop right before it drains the task queue (see run_tasks()).
    if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) backend_->wake();
}

void Reactor::post(Task& task) noexcept {
    tasks_.push(task);
    wake();  // after push: MpscQueue invariant 3
}

namespace detail {

int check_fd_open(int fd) noexcept {
    return ::fcntl(fd, F_GETFD) < 0 ? errno : 0;
}

int open_wake_pipe(int fds[2]) noexcept {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return errno;
#else
    if (::pipe(fds) != 0) return errno;
    for (int i = 0; i < 2; ++i) {
        if (::fcntl(fds[i], F_SETFL, ::fcntl(fds[i], F_GETFL) | O_NONBLOCK) != 0 ||
            ::fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            const int error = errno;
            ::close(fds[0]);
            ::close(fds[1]);
            return error;
        }
    }
#endif
    return 0;
}

void drain_fd(int fd) noexcept {
    unsigned char sink[256];
    while (::read(fd, sink, sizeof(sink)) > 0) {
    }
}

}  // namespace detail

}  // namespace wsx::net
