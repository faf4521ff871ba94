// kqueue backend for macOS and the BSDs. Read and write interest are separate filters, so one fd
// may be reported twice in one batch (once per filter); the Reactor's dispatch handles that like
// any other repeated readiness. Wake-ups use EVFILT_USER where the system has it (macOS,
// FreeBSD, DragonFly, NetBSD 10) and a self-pipe otherwise (OpenBSD).
#include "net/reactor_backend.hpp"

#if defined(WSX_NET_HAVE_KQUEUE)

#include <fcntl.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <ctime>

namespace wsx::net::detail {

namespace {

// udata is always passed as a literal 0: it is void* on most systems, intptr_t on older NetBSD.
constexpr std::size_t kMaxEvents = 256;
#if defined(EVFILT_USER)
constexpr uintptr_t kWakeIdent = 0;  // EVFILT_USER idents are their own namespace, not fds
#endif

class KqueueBackend final : public ReactorBackend {
  public:
    KqueueBackend(int kqueue_fd, int wake_read_fd, int wake_write_fd) noexcept
        : kqueue_fd_(kqueue_fd), wake_read_fd_(wake_read_fd), wake_write_fd_(wake_write_fd) {}
    ~KqueueBackend() override {
        if (wake_read_fd_ >= 0) ::close(wake_read_fd_);
        if (wake_write_fd_ >= 0) ::close(wake_write_fd_);
        ::close(kqueue_fd_);
    }
    KqueueBackend(const KqueueBackend&) = delete;
    KqueueBackend& operator=(const KqueueBackend&) = delete;

    Backend kind() const noexcept override { return Backend::kqueue; }

    int add(int fd, Interest interest) override {
        if (interest == Interest::none) return check_fd_open(fd);
        return change(fd, Interest::none, interest);
    }

    int modify(int fd, Interest old_interest, Interest new_interest) override {
        return change(fd, old_interest, new_interest);
    }

    int remove(int fd, Interest old_interest) noexcept override {
        return change(fd, old_interest, Interest::none);
    }

    int wait(int timeout_ms, std::span<ReadyEvent>& ready) noexcept override {
        ready = {};
        timespec timeout{};
        timeout.tv_sec = timeout_ms / 1000;
        timeout.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000L;
        const int count =
            ::kevent(kqueue_fd_, nullptr, 0, kernel_events_.data(), static_cast<int>(kMaxEvents),
                     timeout_ms < 0 ? nullptr : &timeout);
        if (count < 0) return errno == EINTR ? 0 : errno;
        std::size_t filled = 0;
        for (int i = 0; i < count; ++i) {
            const struct kevent& event = kernel_events_[static_cast<std::size_t>(i)];
#if defined(EVFILT_USER)
            if (event.filter == EVFILT_USER) continue;  // EV_CLEAR already reset it
#endif
            const int fd = static_cast<int>(event.ident);
            if (fd == wake_read_fd_ && event.filter == EVFILT_READ) {
                drain_fd(wake_read_fd_);
                continue;
            }
            std::uint8_t flags = 0;
            if ((event.flags & EV_ERROR) != 0) {
                // event.data holds the errno; EBADF means the fd was closed while registered.
                flags |= event.data == EBADF ? kInvalid : kErrored;
            } else {
                if (event.filter == EVFILT_READ) flags |= kReadable;
                if (event.filter == EVFILT_WRITE) flags |= kWritable;
                // EV_EOF with a non-zero fflags carries a socket error (e.g. ECONNREFUSED); a
                // plain EV_EOF is an orderly shutdown the next read or write will report.
                if ((event.flags & EV_EOF) != 0) flags |= event.fflags != 0 ? kErrored : kHangup;
            }
            ready_[filled++] = ReadyEvent{fd, flags, 0};
        }
        ready = std::span<ReadyEvent>(ready_.data(), filled);
        return 0;
    }

    void wake() noexcept override {
#if defined(EVFILT_USER)
        struct kevent event;
        EV_SET(&event, kWakeIdent, EVFILT_USER, 0, NOTE_TRIGGER, 0, 0);
        while (::kevent(kqueue_fd_, &event, 1, nullptr, 0, nullptr) < 0 && errno == EINTR) {
        }
#else
        const unsigned char byte = 1;
        while (::write(wake_write_fd_, &byte, 1) < 0 && errno == EINTR) {
        }
#endif
    }

  private:
    // Adds and deletes the filters that differ between the two interests, in one kevent() call.
    int change(int fd, Interest old_interest, Interest new_interest) noexcept {
        std::array<struct kevent, 2> changes{};
        int count = 0;
        const auto delta = [&](Interest flag, auto filter) {
            const bool had = has(old_interest, flag);
            const bool wants = has(new_interest, flag);
            if (had == wants) return;
            EV_SET(&changes[static_cast<std::size_t>(count++)], static_cast<uintptr_t>(fd), filter,
                   wants ? EV_ADD : EV_DELETE, 0, 0, 0);
        };
        delta(Interest::read, EVFILT_READ);
        delta(Interest::write, EVFILT_WRITE);
        if (count == 0) return 0;
        return ::kevent(kqueue_fd_, changes.data(), count, nullptr, 0, nullptr) == 0 ? 0 : errno;
    }

    int kqueue_fd_;
    int wake_read_fd_;   // -1 with EVFILT_USER
    int wake_write_fd_;  // -1 with EVFILT_USER
    std::array<struct kevent, kMaxEvents> kernel_events_{};
    std::array<ReadyEvent, kMaxEvents> ready_{};
};

}  // namespace

BackendResult make_kqueue_backend() {
    const int kqueue_fd = ::kqueue();
    if (kqueue_fd < 0) return {nullptr, errno};
    // kqueue descriptors are not inherited by fork(), but exec() still needs telling.
    ::fcntl(kqueue_fd, F_SETFD, FD_CLOEXEC);
    int wake_fds[2] = {-1, -1};
    struct kevent event;
#if defined(EVFILT_USER)
    EV_SET(&event, kWakeIdent, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, 0);
#else
    if (const int error = open_wake_pipe(wake_fds); error != 0) {
        ::close(kqueue_fd);
        return {nullptr, error};
    }
    EV_SET(&event, static_cast<uintptr_t>(wake_fds[0]), EVFILT_READ, EV_ADD, 0, 0, 0);
#endif
    if (::kevent(kqueue_fd, &event, 1, nullptr, 0, nullptr) != 0) {
        const int error = errno;
        if (wake_fds[0] >= 0) ::close(wake_fds[0]);
        if (wake_fds[1] >= 0) ::close(wake_fds[1]);
        ::close(kqueue_fd);
        return {nullptr, error};
    }
    return {std::make_unique<KqueueBackend>(kqueue_fd, wake_fds[0], wake_fds[1]), 0};
}

}  // namespace wsx::net::detail

#endif  // WSX_NET_HAVE_KQUEUE
