// poll(2) backend: portable to every POSIX system, and the second implementation every reactor
// test runs on. O(registered fds) per wait, so it suits few connections per thread; epoll and
// kqueue are the production paths. Wake-ups use a self-pipe in slot 0 of the pollfd array.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "net/reactor_backend.hpp"

namespace wsx::net::detail {

namespace {

constexpr std::size_t kWakeSlot = 0;

short poll_mask(Interest interest) noexcept {
    short mask = 0;
    if (has(interest, Interest::read)) mask |= POLLIN;
    if (has(interest, Interest::write)) mask |= POLLOUT;
    return mask;
}

class PollBackend final : public ReactorBackend {
  public:
    PollBackend(int wake_read_fd, int wake_write_fd)
        : wake_read_fd_(wake_read_fd), wake_write_fd_(wake_write_fd) {
        pollfds_.push_back(pollfd{wake_read_fd_, POLLIN, 0});
        fds_.push_back(wake_read_fd_);
        ready_.resize(1);
    }
    ~PollBackend() override {
        ::close(wake_read_fd_);
        ::close(wake_write_fd_);
    }
    PollBackend(const PollBackend&) = delete;
    PollBackend& operator=(const PollBackend&) = delete;

    Backend kind() const noexcept override { return Backend::poll; }

    int add(int fd, Interest interest) override {
        if (const int error = check_fd_open(fd); error != 0) return error;
        const auto index = static_cast<std::size_t>(fd);
        // Every allocation happens before any table changes, so a failed one changes nothing.
        // wait() never allocates: it needs room for one event per registered fd. ready_ may be
        // under dispatch right now (add() called from a callback), so growth goes to a spare
        // buffer that the next wait() swaps in.
        if (index >= slot_of_fd_.size()) slot_of_fd_.resize(index + 1, kNoSlot);
        const std::size_t needed = pollfds_.size() + 1;
        if (ready_.size() < needed && spare_ready_.size() < needed) {
            spare_ready_.resize(std::max(needed, 2 * ready_.size()));
        }
        pollfds_.reserve(pollfds_.size() + 1);
        fds_.reserve(fds_.size() + 1);
        slot_of_fd_[index] = pollfds_.size();
        pollfds_.push_back(pollfd{parked_or(fd, interest), poll_mask(interest), 0});
        fds_.push_back(fd);
        return 0;
    }

    int modify(int fd, Interest, Interest new_interest) override {
        const std::size_t slot = slot_of(fd);
        if (slot == kNoSlot) return ENOENT;
        pollfds_[slot].fd = parked_or(fd, new_interest);
        pollfds_[slot].events = poll_mask(new_interest);
        return 0;
    }

    int remove(int fd, Interest) noexcept override {
        const std::size_t slot = slot_of(fd);
        if (slot == kNoSlot) return ENOENT;
        // Swap the last entry into the hole: O(1), and ready_ already holds copies, so removing
        // during dispatch is safe.
        const std::size_t last = pollfds_.size() - 1;
        if (slot != last) {
            pollfds_[slot] = pollfds_[last];
            fds_[slot] = fds_[last];
            slot_of_fd_[static_cast<std::size_t>(fds_[slot])] = slot;
        }
        pollfds_.pop_back();
        fds_.pop_back();
        slot_of_fd_[static_cast<std::size_t>(fd)] = kNoSlot;
        return 0;
    }

    int wait(int timeout_ms, std::span<ReadyEvent>& ready) noexcept override {
        ready = {};
        if (ready_.size() < pollfds_.size()) ready_.swap(spare_ready_);
        int remaining = ::poll(pollfds_.data(), static_cast<nfds_t>(pollfds_.size()), timeout_ms);
        if (remaining < 0) return errno == EINTR ? 0 : errno;
        std::size_t filled = 0;
        for (std::size_t slot = 0; slot < pollfds_.size() && remaining > 0; ++slot) {
            const short revents = pollfds_[slot].revents;
            if (revents == 0) continue;
            --remaining;
            if (slot == kWakeSlot) {
                drain_fd(wake_read_fd_);
                continue;
            }
            std::uint8_t flags = 0;
            if ((revents & POLLIN) != 0) flags |= kReadable;
            if ((revents & POLLOUT) != 0) flags |= kWritable;
            if ((revents & POLLHUP) != 0) flags |= kHangup;
            if ((revents & POLLERR) != 0) flags |= kErrored;
            if ((revents & POLLNVAL) != 0) flags |= kInvalid;
            ready_[filled++] = ReadyEvent{fds_[slot], flags, 0};
        }
        ready = std::span<ReadyEvent>(ready_.data(), filled);
        return 0;
    }

    void wake() noexcept override {
        const unsigned char byte = 1;
        // EAGAIN: the pipe is full, so the poller will wake anyway.
        while (::write(wake_write_fd_, &byte, 1) < 0 && errno == EINTR) {
        }
    }

  private:
    static constexpr std::size_t kNoSlot = static_cast<std::size_t>(-1);

    // poll() skips negative fds entirely (POSIX), which is how a parked fd reports nothing,
    // not even POLLHUP.
    static int parked_or(int fd, Interest interest) noexcept {
        return interest == Interest::none ? -1 : fd;
    }

    std::size_t slot_of(int fd) const noexcept {
        const auto index = static_cast<std::size_t>(fd);
        return fd >= 0 && index < slot_of_fd_.size() ? slot_of_fd_[index] : kNoSlot;
    }

    int wake_read_fd_;
    int wake_write_fd_;
    std::vector<pollfd> pollfds_;          // slot 0: the wake pipe
    std::vector<int> fds_;                 // fds_[slot]: the fd even while pollfds_[slot] is parked
    std::vector<std::size_t> slot_of_fd_;  // fd → slot, kNoSlot if absent
    std::vector<ReadyEvent> ready_;
    std::vector<ReadyEvent> spare_ready_;  // the next ready_, grown while ready_ may be in use
};

}  // namespace

BackendResult make_poll_backend() {
    int fds[2];
    if (const int error = open_wake_pipe(fds); error != 0) return {nullptr, error};
    return {std::make_unique<PollBackend>(fds[0], fds[1]), 0};
}

}  // namespace wsx::net::detail
