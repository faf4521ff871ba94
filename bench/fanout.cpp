// bench/fanout: one publisher, N subscribers on loopback. Measures delivered messages per second
// and publish-to-receive latency (p50, p99) of a broadcast hub: the wsx hub in this process, or
// any server that speaks the same protocol (GET /sub subscribes, messages to GET /pub go to every
// subscriber), e.g. the gorilla/websocket hub in fanout_go/. See README.md, "Fan-out".
//
//   fanout [--port P (an external server; default: the wsx hub in-process)] [--threads T]
//          [--subscribers N] [--size BYTES] [--messages M] [--window W] [--label NAME]
//          [--deflate 1 (subscribers offer permessage-deflate; latency is then not measured,
//           the send times being compressed)]
//   fanout --serve 1 [--threads T] [--deflate 1]: only the wsx hub server, as a process of its
//          own like the Go one (prints "port N", runs until stdin closes)
//
// The publisher keeps at most W messages in flight (a message is done when all N subscribers have
// it), so queues stay bounded and the latency is that of a loaded, not an overrun, hub. Each
// payload carries its send time; one receiver thread reads every subscriber socket with epoll.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "hub/hub.hpp"
#include "net/server.hpp"
#include "proto/deflate.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    int port = 0;
    unsigned threads = 1;
    std::size_t subscribers = 1000;
    std::size_t size = 64;
    std::size_t messages = 200;
    std::size_t window = 4;
    bool deflate = false;
    bool serve = false;
    std::string label = "wsx";
};

[[noreturn]] void fail(const char* what) {
    std::perror(what);
    std::exit(1);
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

int connect_to(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        fail("connect");
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // A server that stops answering fails the run instead of hanging it.
    const timeval limit{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    return fd;
}

void write_all(int fd, const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    while (size > 0) {
        const ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
        if (n <= 0) fail("send");
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

// Sends the upgrade request and reads the response head; bytes after it are returned.
std::string upgrade(int fd, int port, const char* path, bool deflate = false) {
    const std::string request =
        std::string("GET ") + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n" +
        (deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") + "\r\n";
    write_all(fd, request.data(), request.size());
    std::string in;
    char buffer[2048];
    while (in.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) fail("upgrade response");
        in.append(buffer, static_cast<std::size_t>(n));
    }
    if (in.rfind("HTTP/1.1 101", 0) != 0) {
        std::fprintf(stderr, "upgrade refused: %s\n", in.substr(0, in.find("\r\n")).c_str());
        std::exit(1);
    }
    return in.substr(in.find("\r\n\r\n") + 4);
}

// Latency histogram, 1 µs buckets up to 10 s (beyond: the last bucket).
class Histogram {
  public:
    Histogram() : buckets_(kBuckets, 0) {}
    void add(std::int64_t ns) {
        const std::int64_t us = std::max<std::int64_t>(0, ns / 1000);
        ++buckets_[static_cast<std::size_t>(std::min<std::int64_t>(us, kBuckets - 1))];
        ++count_;
    }
    double percentile_us(double p) const {
        const auto want = static_cast<std::uint64_t>(p * static_cast<double>(count_));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen > want) return static_cast<double>(i);
        }
        return static_cast<double>(kBuckets);
    }

  private:
    static constexpr std::int64_t kBuckets = 10'000'000;
    std::vector<std::uint32_t> buckets_;
    std::uint64_t count_ = 0;
};

// A subscriber's receive state: the bytes of a frame split across reads.
struct Subscriber {
    int fd = -1;
    std::vector<std::uint8_t> carry;
};

// Hub-side handler of the in-process server: /sub subscribes, anything sent is published.
class FanoutHandler : public wsx::net::SessionHandler {
  public:
    explicit FanoutHandler(wsx::hub::Hub& hub) : hub_(hub) {}
    void on_open(wsx::net::WsSession& session) override {
        if (session.target() == "/sub") hub_.subscribe(session, "all");
    }
    void on_message(wsx::net::WsSession&, wsx::proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        hub_.publish("all", opcode, payload);
    }

  private:
    wsx::hub::Hub& hub_;
};

std::optional<std::size_t> parse_size(const char* text) {
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (end == text || *end != '\0') return std::nullopt;
    return static_cast<std::size_t>(value);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string_view name = argv[i];
        const char* value = argv[i + 1];
        if (name == "--label") {
            o.label = value;
            continue;
        }
        const std::optional<std::size_t> n = parse_size(value);
        if (!n) {
            std::fprintf(stderr, "bad value for %s\n", argv[i]);
            std::exit(2);
        }
        if (name == "--port") {
            o.port = static_cast<int>(*n);
        } else if (name == "--threads") {
            o.threads = static_cast<unsigned>(*n);
        } else if (name == "--subscribers") {
            o.subscribers = *n;
        } else if (name == "--size") {
            o.size = std::max<std::size_t>(*n, 16);
        } else if (name == "--messages") {
            o.messages = *n;
        } else if (name == "--serve") {
            o.serve = *n != 0;
        } else if (name == "--deflate") {
            o.deflate = *n != 0;
        } else if (name == "--window") {
            o.window = std::max<std::size_t>(*n, 1);
        } else {
            std::fprintf(stderr, "unknown option %s\n", argv[i]);
            std::exit(2);
        }
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    // Both ends of every connection live here when the hub is in-process: 2N fds and some.
    const rlim_t wanted = (o.port == 0 && !o.serve ? 2 : 1) * o.subscribers + 256;
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < wanted) {
        rlimit raised{wanted, std::max(files.rlim_max, wanted)};
        if (::setrlimit(RLIMIT_NOFILE, &raised) != 0) {  // a higher hard limit needs privilege
            files.rlim_cur = files.rlim_max;
            ::setrlimit(RLIMIT_NOFILE, &files);
        }
        ::getrlimit(RLIMIT_NOFILE, &files);
    }
    if (files.rlim_cur < wanted) {
        std::fprintf(stderr, "need %llu open files, the limit is %llu\n",
                     static_cast<unsigned long long>(wanted),
                     static_cast<unsigned long long>(files.rlim_cur));
        return 1;
    }

    std::unique_ptr<wsx::hub::Hub> hub;
    std::unique_ptr<FanoutHandler> handler;
    std::unique_ptr<wsx::net::Server> server;
    int port = o.port;
    if (port == 0) {
        hub = std::make_unique<wsx::hub::Hub>();
        handler = std::make_unique<FanoutHandler>(*hub);
        wsx::net::ServerOptions options;
        options.threads = o.threads;
        options.max_connections = o.subscribers + 16;
        options.max_pending_handshakes = o.subscribers + 16;
        options.websocket_paths = {"/sub", "/pub"};
        options.session.ping_interval = std::chrono::milliseconds(0);
        if (o.deflate) options.deflate = wsx::proto::DeflateOptions{};
        hub->install(options, {});
        server = std::make_unique<wsx::net::Server>(std::move(options), *handler);
        if (!server->start().ok()) fail("server start");
        port = server->port();
        if (o.serve) {
            std::printf("port %d\n", port);
            std::fflush(stdout);
            char sink[64];
            while (::read(STDIN_FILENO, sink, sizeof(sink)) > 0) {
            }
            server->stop();
            server->wait();
            return 0;
        }
    }

    // Subscribers connect one after the other; the receiver takes over their sockets.
    std::vector<Subscriber> subscribers(o.subscribers);
    std::atomic<std::uint64_t> received{0};
    const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) fail("epoll_create1");
    for (std::size_t i = 0; i < subscribers.size(); ++i) {
        Subscriber& s = subscribers[i];
        s.fd = connect_to(port);
        const std::string rest = upgrade(s.fd, port, "/sub", o.deflate);
        s.carry.assign(rest.begin(), rest.end());
        epoll_event event{};
        event.events = EPOLLIN;
        event.data.u64 = i;
        if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, s.fd, &event) != 0) fail("epoll_ctl");
    }
    const int publisher = connect_to(port);
    upgrade(publisher, port, "/pub");
    // The gorilla hub registers clients asynchronously after the upgrade.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));

    const std::uint64_t total = static_cast<std::uint64_t>(o.messages) * o.subscribers;
    Histogram histogram;
    std::uint64_t compressed = 0;  // receiver thread until joined
    std::atomic<bool> receiver_done{false};
    std::thread receiver([&] {
        std::vector<epoll_event> events(1024);
        std::vector<std::uint8_t> buffer(256 * 1024);
        std::uint64_t got = 0;
        const auto give_up = Clock::now() + std::chrono::seconds(120);
        while (got < total && Clock::now() < give_up) {
            const int n =
                ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 100);
            for (int e = 0; e < n; ++e) {
                Subscriber& s = subscribers[events[static_cast<std::size_t>(e)].data.u64];
                const ssize_t r = ::recv(s.fd, buffer.data(), buffer.size(), 0);
                if (r <= 0) {
                    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, s.fd, nullptr);
                    continue;
                }
                s.carry.insert(s.carry.end(), buffer.begin(), buffer.begin() + r);
                const std::int64_t now = now_ns();
                std::size_t pos = 0;
                // Server frames: unmasked, lengths of 7 or 16 bits at these sizes.
                while (s.carry.size() - pos >= 2) {
                    const std::uint8_t* p = s.carry.data() + pos;
                    std::size_t length = p[1] & 0x7F;
                    std::size_t header = 2;
                    if (length == 126) {
                        if (s.carry.size() - pos < 4) break;
                        length = (std::size_t{p[2]} << 8) | p[3];
                        header = 4;
                    }
                    if (s.carry.size() - pos < header + length) break;
                    if ((p[0] & 0x0F) == 0x2) {
                        // RSV1: compressed (RFC 7692 §6), the send time unreadable without
                        // inflating.
                        if ((p[0] & 0x40) == 0 && length >= 8) {
                            std::int64_t sent;
                            std::memcpy(&sent, p + header, sizeof(sent));
                            histogram.add(now - sent);
                        } else {
                            ++compressed;
                        }
                        ++got;
                    }
                    pos += header + length;
                }
                s.carry.erase(s.carry.begin(), s.carry.begin() + static_cast<std::ptrdiff_t>(pos));
            }
            received.store(got, std::memory_order_release);
        }
        receiver_done.store(true);
    });

    // Frames from a client are masked (RFC 6455 §5.3); a zero key leaves the payload as is.
    std::vector<std::uint8_t> frame;
    const auto start = Clock::now();
    for (std::size_t i = 0; i < o.messages; ++i) {
        while (i >= o.window && !receiver_done.load() &&
               received.load(std::memory_order_acquire) < (i - o.window + 1) * o.subscribers) {
            std::this_thread::yield();
        }
        frame.clear();
        frame.push_back(0x82);
        if (o.size < 126) {
            frame.push_back(static_cast<std::uint8_t>(0x80 | o.size));
        } else {
            frame.push_back(0x80 | 126);
            frame.push_back(static_cast<std::uint8_t>(o.size >> 8));
            frame.push_back(static_cast<std::uint8_t>(o.size & 0xFF));
        }
        frame.insert(frame.end(), 4, 0);
        const std::size_t payload_at = frame.size();
        frame.resize(payload_at + o.size, 'x');
        const std::int64_t sent = now_ns();
        std::memcpy(frame.data() + payload_at, &sent, sizeof(sent));
        write_all(publisher, frame.data(), frame.size());
    }
    receiver.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const std::uint64_t got = received.load();

    std::printf("%-8s threads=%u subscribers=%zu size=%zu messages=%zu: %.0f deliveries/s, ",
                o.label.c_str(), o.threads, o.subscribers, o.size, o.messages,
                static_cast<double>(got) / seconds);
    if (compressed == 0) {
        std::printf("p50 %.0f us, p99 %.0f us", histogram.percentile_us(0.50),
                    histogram.percentile_us(0.99));
    } else {
        std::printf("%llu compressed frames", static_cast<unsigned long long>(compressed));
    }
    if (hub) {
        std::printf(", %llu compressions",
                    static_cast<unsigned long long>(hub->stats().compressed_frames));
    }
    std::printf("%s\n", got == total ? "" : " (INCOMPLETE)");
    ::close(publisher);
    for (const Subscriber& s : subscribers)
        ::close(s.fd);
    ::close(epoll_fd);
    if (server) {
        server->stop();
        server->wait();
    }
    return got == total ? 0 : 1;
}
