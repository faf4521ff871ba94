// Linux epoll backend, level-triggered: the Reactor's API is level-triggered, and edge mode would
// only move the "still ready?" bookkeeping from the kernel into user space. Wake-ups use an
// eventfd registered alongside the user's fds.
#include "net/reactor_backend.hpp"

#if defined(WSX_NET_HAVE_EPOLL)

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>

namespace wsx::net::detail {

namespace {

constexpr int kWakeTag = -1;  // epoll_data.fd of the eventfd; user fds are never negative
constexpr std::size_t kMaxEvents = 256;

std::uint32_t epoll_mask(Interest interest) noexcept {
    std::uint32_t mask = 0;
    if (has(interest, Interest::read)) mask |= EPOLLIN;
    if (has(interest, Interest::write)) mask |= EPOLLOUT;
    return mask;
}

class EpollBackend final : public ReactorBackend {
  public:
    EpollBackend(int epoll_fd, int wake_fd) noexcept : epoll_fd_(epoll_fd), wake_fd_(wake_fd) {}
    ~EpollBackend() override {
        ::close(wake_fd_);
        ::close(epoll_fd_);
    }
    EpollBackend(const EpollBackend&) = delete;
    EpollBackend& operator=(const EpollBackend&) = delete;

    Backend kind() const noexcept override { return Backend::epoll; }

    int add(int fd, Interest interest) override {
        // A parked fd stays out of the epoll set: epoll reports EPOLLHUP/EPOLLERR even for an
        // empty mask, which level-triggered would repeat forever.
        if (interest == Interest::none) return check_fd_open(fd);
        return control(EPOLL_CTL_ADD, fd, interest);
    }

    int modify(int fd, Interest old_interest, Interest new_interest) override {
        if (old_interest == Interest::none) return control(EPOLL_CTL_ADD, fd, new_interest);
        if (new_interest == Interest::none) return control(EPOLL_CTL_DEL, fd, new_interest);
        return control(EPOLL_CTL_MOD, fd, new_interest);
    }

    int remove(int fd, Interest old_interest) noexcept override {
        if (old_interest == Interest::none) return 0;
        return control(EPOLL_CTL_DEL, fd, Interest::none);
    }

    int wait(int timeout_ms, std::span<ReadyEvent>& ready) noexcept override {
        ready = {};
        const int count = ::epoll_wait(epoll_fd_, kernel_events_.data(), kMaxEvents, timeout_ms);
        if (count < 0) return errno == EINTR ? 0 : errno;
        std::size_t filled = 0;
        for (int i = 0; i < count; ++i) {
            const epoll_event& event = kernel_events_[static_cast<std::size_t>(i)];
            if (event.data.fd == kWakeTag) {
                drain_fd(wake_fd_);
                continue;
            }
            std::uint8_t flags = 0;
            if ((event.events & EPOLLIN) != 0) flags |= kReadable;
            if ((event.events & EPOLLOUT) != 0) flags |= kWritable;
            if ((event.events & EPOLLHUP) != 0) flags |= kHangup;
            if ((event.events & EPOLLERR) != 0) flags |= kErrored;
            ready_[filled++] = ReadyEvent{event.data.fd, flags, 0};
        }
        ready = std::span<ReadyEvent>(ready_.data(), filled);
        return 0;
    }

    void wake() noexcept override {
        const std::uint64_t one = 1;
        // EAGAIN means the counter is saturated, i.e. a wake-up is already pending.
        while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
        }
    }

  private:
    int control(int operation, int fd, Interest interest) noexcept {
        epoll_event event{};
        event.events = epoll_mask(interest);
        event.data.fd = fd;
        return ::epoll_ctl(epoll_fd_, operation, fd, &event) == 0 ? 0 : errno;
    }

    int epoll_fd_;
    int wake_fd_;
    std::array<epoll_event, kMaxEvents> kernel_events_{};
    std::array<ReadyEvent, kMaxEvents> ready_{};
};

}  // namespace

BackendResult make_epoll_backend() {
    const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) return {nullptr, errno};
    const int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) {
        const int error = errno;
        ::close(epoll_fd);
        return {nullptr, error};
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = kWakeTag;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event) != 0) {
        const int error = errno;
        ::close(wake_fd);
        ::close(epoll_fd);
        return {nullptr, error};
    }
    return {std::make_unique<EpollBackend>(epoll_fd, wake_fd), 0};
}

}  // namespace wsx::net::detail

#endif  // WSX_NET_HAVE_EPOLL
