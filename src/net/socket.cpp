#include "net/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>

namespace wsx::net {

namespace {

#if defined(MSG_NOSIGNAL)
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;  // SO_NOSIGPIPE on the socket does the job (macOS)
#endif

#if defined(IOV_MAX)
constexpr std::size_t kMaxSlices = IOV_MAX;
#else
constexpr std::size_t kMaxSlices = 1024;
#endif

// Makes a descriptor from socket()/accept() non-blocking, close-on-exec and SIGPIPE-free where
// the creating call could not say so itself.
int finish_descriptor(int fd, bool flags_already_set) noexcept {
    if (!flags_already_set) {
        const int status = ::fcntl(fd, F_GETFL);
        if (status < 0 || ::fcntl(fd, F_SETFL, status | O_NONBLOCK) != 0) return errno;
        if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return errno;
    }
#if defined(SO_NOSIGPIPE)
    const int on = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on)) != 0) return errno;
#endif
    return 0;
}

SysResult<int> open_tcp_socket(int family) noexcept {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const bool flags_set = true;
#else
    const int fd = ::socket(family, SOCK_STREAM, 0);
    const bool flags_set = false;
#endif
    if (fd < 0) return {-1, errno};
    if (const int error = finish_descriptor(fd, flags_set); error != 0) {
        ::close(fd);
        return {-1, error};
    }
    return {fd, 0};
}

SysStatus set_flag(int fd, int level, int option, bool enabled) noexcept {
    const int value = enabled ? 1 : 0;
    if (::setsockopt(fd, level, option, &value, sizeof(value)) != 0) return {errno};
    return {};
}

}  // namespace

SysResult<SocketAddress> SocketAddress::from_numeric(std::string_view host, std::uint16_t port) {
    const std::string text(host);  // inet_pton wants a terminated string
    SocketAddress address;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage_);
    if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        address.size_ = sizeof(sockaddr_in);
        return {address, 0};
    }
    address = SocketAddress{};
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage_);
    if (::inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        address.size_ = sizeof(sockaddr_in6);
        return {address, 0};
    }
    return {SocketAddress{}, EINVAL};
}

SocketAddress SocketAddress::loopback_v4(std::uint16_t port) noexcept {
    SocketAddress address;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage_);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.size_ = sizeof(sockaddr_in);
    return address;
}

SocketAddress SocketAddress::any_v4(std::uint16_t port) noexcept {
    SocketAddress address;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage_);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    address.size_ = sizeof(sockaddr_in);
    return address;
}

SysResult<SocketAddress> SocketAddress::local_of(int fd) noexcept {
    SocketAddress address;
    address.size_ = sizeof(address.storage_);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address.storage_), &address.size_) != 0) {
        return {SocketAddress{}, errno};
    }
    return {address, 0};
}

SysResult<SocketAddress> SocketAddress::peer_of(int fd) noexcept {
    SocketAddress address;
    address.size_ = sizeof(address.storage_);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address.storage_), &address.size_) != 0) {
        return {SocketAddress{}, errno};
    }
    return {address, 0};
}

SocketAddress SocketAddress::from_storage(const sockaddr_storage& storage,
                                          socklen_t size) noexcept {
    SocketAddress address;
    address.storage_ = storage;
    address.size_ = std::min<socklen_t>(size, sizeof(storage));
    return address;
}

std::uint16_t SocketAddress::port() const noexcept {
    switch (storage_.ss_family) {
        case AF_INET:
            return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
        case AF_INET6:
            return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
        default:
            return 0;
    }
}

SysResult<int> listen_tcp(const SocketAddress& address, const ListenOptions& options) noexcept {
    const SysResult<int> opened = open_tcp_socket(address.family());
    if (!opened.ok()) return opened;
    const int fd = opened.value;
    const auto fail = [fd](int error) {
        ::close(fd);
        return SysResult<int>{-1, error};
    };
    if (options.reuse_address) {
        if (const SysStatus s = set_flag(fd, SOL_SOCKET, SO_REUSEADDR, true); !s.ok()) {
            return fail(s.error);
        }
    }
    if (options.reuse_port) {
#if defined(SO_REUSEPORT)
        if (const SysStatus s = set_flag(fd, SOL_SOCKET, SO_REUSEPORT, true); !s.ok()) {
            return fail(s.error);
        }
#else
        return fail(ENOTSUP);
#endif
    }
    if (::bind(fd, address.data(), address.size()) != 0) return fail(errno);
    if (::listen(fd, options.backlog) != 0) return fail(errno);
    return {fd, 0};
}

SysResult<int> accept_tcp(int listen_fd, SocketAddress* peer) noexcept {
    sockaddr_storage storage{};
    socklen_t length = sizeof(storage);
    auto* peer_address = reinterpret_cast<sockaddr*>(&storage);
    int fd = -1;
    bool flags_set = false;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    do {
        fd = ::accept4(listen_fd, peer_address, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    flags_set = fd >= 0;
    // ENOSYS: a kernel (or seccomp filter) without accept4; fall through to accept + fcntl.
    if (fd < 0 && errno != ENOSYS) return {-1, errno};
#endif
    if (fd < 0) {
        length = sizeof(storage);
        do {
            fd = ::accept(listen_fd, peer_address, &length);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) return {-1, errno};
    }
    if (const int error = finish_descriptor(fd, flags_set); error != 0) {
        ::close(fd);
        return {-1, error};
    }
    if (peer != nullptr) *peer = SocketAddress::from_storage(storage, length);
    return {fd, 0};
}

SysResult<int> connect_tcp(const SocketAddress& address) noexcept {
    const SysResult<int> opened = open_tcp_socket(address.family());
    if (!opened.ok()) return opened;
    // EINTR on a non-blocking connect: the attempt goes on in the background, like EINPROGRESS.
    if (::connect(opened.value, address.data(), address.size()) != 0 && errno != EINPROGRESS &&
        errno != EINTR) {
        const int error = errno;
        ::close(opened.value);
        return {-1, error};
    }
    return opened;
}

SysStatus connect_result(int fd) noexcept {
    int error = 0;
    socklen_t length = sizeof(error);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return {errno};
    return {error};
}

SysStatus set_no_delay(int fd, bool enabled) noexcept {
    return set_flag(fd, IPPROTO_TCP, TCP_NODELAY, enabled);
}

SysStatus close_fd(int fd) noexcept {
    if (::close(fd) != 0 && errno != EINTR) return {errno};
    return {};
}

SysResult<std::size_t> read_some(int fd, std::span<std::uint8_t> buffer) noexcept {
    ssize_t n;
    do {
        n = ::read(fd, buffer.data(), buffer.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return {0, errno};
    return {static_cast<std::size_t>(n), 0};
}

SysResult<std::size_t> write_some(int fd, std::span<const std::uint8_t> bytes) noexcept {
    ssize_t n;
    do {
        n = ::send(fd, bytes.data(), bytes.size(), kSendFlags);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return {0, errno};
    return {static_cast<std::size_t>(n), 0};
}

SysResult<std::size_t> write_slices(int fd, std::span<const proto::IoSlice> slices) noexcept {
    const std::span<const iovec> vectors =
        as_iovecs(slices.first(std::min(slices.size(), kMaxSlices)));
    msghdr message{};
    // msg_iov is non-const for recvmsg's sake; sendmsg only reads it.
    message.msg_iov = const_cast<iovec*>(vectors.data());
    message.msg_iovlen = static_cast<decltype(message.msg_iovlen)>(vectors.size());
    ssize_t n;
    do {
        n = ::sendmsg(fd, &message, kSendFlags);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return {0, errno};
    return {static_cast<std::size_t>(n), 0};
}

}  // namespace wsx::net
