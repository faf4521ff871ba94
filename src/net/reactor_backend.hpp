// The seam between the Reactor and one readiness API (epoll, poll, kqueue). Internal to src/net.
//
// A backend only translates: it registers kernel interest, waits, and reports which fds are
// ready. Everything backend-independent — the fd → handler table, stale-event filtering,
// level-triggered dispatch, tasks, timers — lives in reactor.cpp, so it is exercised identically
// on every backend.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "net/reactor.hpp"
#include "net/sys_result.hpp"

#if defined(__linux__)
#define WSX_NET_HAVE_EPOLL 1
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
    defined(__DragonFly__)
#define WSX_NET_HAVE_KQUEUE 1
#endif

namespace wsx::net::detail {

enum ReadyFlag : std::uint8_t {
    kReadable = 1,
    kWritable = 2,
    kHangup = 4,    // the peer is gone; a read or write will say how (EOF, EPIPE, ECONNRESET)
    kErrored = 8,   // an error is pending on the fd (SO_ERROR tells which)
    kInvalid = 16,  // the fd is not open (closed without being removed first)
};

struct ReadyEvent {
    int fd;
    std::uint8_t flags;        // ReadyFlag bits
    std::uint32_t generation;  // filled by the Reactor, not the backend
};

class ReactorBackend {
  public:
    virtual ~ReactorBackend() = default;

    virtual Backend kind() const noexcept = 0;

    // Each returns 0 or an errno code. The Reactor passes the interest it last registered, so a
    // backend need not keep its own copy. Interest::none parks the fd: no events, not even
    // errors, so a level-triggered hang-up cannot spin the loop.
    virtual int add(int fd, Interest interest) = 0;
    virtual int modify(int fd, Interest old_interest, Interest new_interest) = 0;
    virtual int remove(int fd, Interest old_interest) noexcept = 0;

    // Blocks up to timeout_ms (-1: no limit) until an fd is ready or wake() is called. `ready`
    // is set to events in backend-owned storage, valid until the next call. Returns 0 or an
    // errno code; an interrupted wait (EINTR) is reported as 0 with no events. Wake-ups are
    // consumed here and never reported as events.
    virtual int wait(int timeout_ms, std::span<ReadyEvent>& ready) noexcept = 0;

    // Any thread: makes a concurrent or the next wait() return.
    virtual void wake() noexcept = 0;
};

using BackendResult = SysResult<std::unique_ptr<ReactorBackend>>;

BackendResult make_poll_backend();
#if defined(WSX_NET_HAVE_EPOLL)
BackendResult make_epoll_backend();
#endif
#if defined(WSX_NET_HAVE_KQUEUE)
BackendResult make_kqueue_backend();
#endif

// 0 if fd is open, else EBADF: validates a parked fd that is not handed to the kernel yet.
int check_fd_open(int fd) noexcept;
// Opens a non-blocking, close-on-exec pipe; used for wake-ups where nothing better exists.
int open_wake_pipe(int fds[2]) noexcept;
// Drains a non-blocking fd (a wake pipe or eventfd) so level-triggered polling stops reporting it.
void drain_fd(int fd) noexcept;

}  // namespace wsx::net::detail
