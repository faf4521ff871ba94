// Thin, non-throwing wrappers over the BSD socket calls the net layer needs. Every socket they
// create is non-blocking and close-on-exec; every failure comes back as an errno code.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "net/sys_result.hpp"
#include "proto/output_queue.hpp"

namespace wsx::net {

// proto::IoSlice promises to be a struct iovec in all but name, so the output queue's slices go
// to the kernel without copying. Checked member by member because std::is_layout_compatible
// would (rightly) reject `const void*` against `void*`, although both are the same size and
// representation.
static_assert(std::is_standard_layout_v<proto::IoSlice> &&
              std::is_trivially_copyable_v<proto::IoSlice>);
static_assert(sizeof(proto::IoSlice) == sizeof(iovec));
static_assert(alignof(proto::IoSlice) == alignof(iovec));
static_assert(offsetof(proto::IoSlice, data) == offsetof(iovec, iov_base));
static_assert(sizeof(proto::IoSlice::data) == sizeof(iovec::iov_base));
static_assert(offsetof(proto::IoSlice, size) == offsetof(iovec, iov_len));
static_assert(sizeof(proto::IoSlice::size) == sizeof(iovec::iov_len));

// The slices viewed as iovecs, for writev/sendmsg. No copy: the static_asserts above make the
// two layouts identical, and the kernel only reads them.
inline std::span<const iovec> as_iovecs(std::span<const proto::IoSlice> slices) noexcept {
    return {reinterpret_cast<const iovec*>(slices.data()), slices.size()};
}

// An IPv4 or IPv6 address and port. Numeric only: name resolution blocks, so it belongs off the
// reactor thread (the client layer's job), not here.
class SocketAddress {
  public:
    SocketAddress() noexcept = default;

    // "127.0.0.1", "0.0.0.0", "::1", "::" ...; EINVAL if `host` is not a numeric address.
    static SysResult<SocketAddress> from_numeric(std::string_view host, std::uint16_t port);
    // 127.0.0.1:port and 0.0.0.0:port.
    static SocketAddress loopback_v4(std::uint16_t port) noexcept;
    static SocketAddress any_v4(std::uint16_t port) noexcept;
    // The address a socket is bound to (e.g. to learn the port the kernel picked for port 0).
    static SysResult<SocketAddress> local_of(int fd) noexcept;
    // The address a connected socket's peer has.
    static SysResult<SocketAddress> peer_of(int fd) noexcept;
    // Adopts an address the kernel filled in (accept, recvfrom).
    static SocketAddress from_storage(const sockaddr_storage& storage, socklen_t size) noexcept;

    // AF_INET or AF_INET6 (AF_UNSPEC when default-constructed), the port in host order, and the
    // sockaddr for bind/connect.
    int family() const noexcept { return storage_.ss_family; }
    std::uint16_t port() const noexcept;
    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return size_; }

  private:
    sockaddr_storage storage_{};
    socklen_t size_ = 0;
};

struct ListenOptions {
    // SO_REUSEADDR: a restarted server can bind while old connections sit in TIME_WAIT.
    bool reuse_address = true;
    // SO_REUSEPORT: several listeners (one per reactor thread) share the port and the kernel
    // spreads connections between them. ENOTSUP where the option does not exist.
    bool reuse_port = false;
    int backlog = SOMAXCONN;
};

// A bound, listening TCP socket.
SysResult<int> listen_tcp(const SocketAddress& address, const ListenOptions& options = {}) noexcept;

// One pending connection (accept4, or accept + fcntl where accept4 is missing); EAGAIN when none
// is pending. ECONNABORTED just means that one vanished: call again.
SysResult<int> accept_tcp(int listen_fd, SocketAddress* peer = nullptr) noexcept;

// Starts connecting and returns the socket at once; the connection is usually still in progress.
// Wait until it is writable, then ask connect_result().
SysResult<int> connect_tcp(const SocketAddress& address) noexcept;

// The outcome of a non-blocking connect once the socket became writable (SO_ERROR).
SysStatus connect_result(int fd) noexcept;

// TCP_NODELAY: send small frames (pongs, close replies) without waiting for Nagle's timer.
SysStatus set_no_delay(int fd, bool enabled = true) noexcept;

// The descriptor is released even when close() reports an error (EINTR included, as on Linux):
// retrying could close a descriptor another thread just received.
SysStatus close_fd(int fd) noexcept;

// Reads what is available. value 0 with ok() is the peer's orderly shutdown; EAGAIN when nothing
// is there yet. EINTR is retried.
SysResult<std::size_t> read_some(int fd, std::span<std::uint8_t> buffer) noexcept;

// Writes what the socket takes now; EAGAIN when nothing fits. Never raises SIGPIPE: a vanished
// peer is EPIPE. For sockets only.
SysResult<std::size_t> write_some(int fd, std::span<const std::uint8_t> bytes) noexcept;

// Gather write of the slices (at most IOV_MAX of them per call), the vectored form of
// write_some: writev semantics through sendmsg, so a reset peer cannot raise SIGPIPE.
SysResult<std::size_t> write_slices(int fd, std::span<const proto::IoSlice> slices) noexcept;

}  // namespace wsx::net
