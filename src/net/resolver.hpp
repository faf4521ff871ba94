// Name resolution off the reactor thread. getaddrinfo blocks (for as long as the DNS servers
// take), so it runs on the resolver's own small pool of threads and the outcome is posted back to
// the reactor that asked: the caller's loop never waits for DNS.
//
//   Resolver resolver;                      // one thread, started at the first lookup
//   resolver.resolve("example.com", 80, reactor, [](ResolveResult r) { ... });  // on `reactor`
//
// Numeric addresses never need the resolver: see resolve_numeric().
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/reactor.hpp"
#include "net/socket.hpp"

namespace wsx::net {

struct ResolveResult {
    // 0, or getaddrinfo's EAI_* code (EAI_NONAME: no such host; EAI_AGAIN: try later ...).
    int error = 0;
    // With EAI_SYSTEM: the errno.
    int system_error = 0;
    // TCP addresses in getaddrinfo's order (RFC 6724 preference), without duplicates.
    std::vector<SocketAddress> addresses;

    bool ok() const noexcept { return error == 0; }
    // gai_strerror's text, or strerror's for EAI_SYSTEM.
    std::string message() const;
};

// The address when `host` is an IPv4 or IPv6 literal (no brackets), nullopt otherwise.
std::optional<SocketAddress> resolve_numeric(std::string_view host, std::uint16_t port);

// Blocking lookup, for the resolver threads (and callers who own a thread of their own).
ResolveResult resolve_blocking(const std::string& host, std::uint16_t port);

class Resolver {
  public:
    using Id = std::uint64_t;
    using Callback = std::function<void(ResolveResult)>;

    // `threads` lookups run at once (at least 1); threads start with the first lookup.
    explicit Resolver(unsigned threads = 1);
    // Drops queued lookups (their callbacks never run) and joins the threads, waiting for lookups
    // in progress to return from getaddrinfo.
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // Any thread. Looks `host` up on a resolver thread, then posts `done` to `reactor`, which
    // must stay alive until `done` ran or cancel(id) returned. Returns an id for cancel().
    Id resolve(std::string host, std::uint16_t port, Reactor& reactor, Callback done);

    // Any thread. After it returns, `done` of that lookup is never posted (one already posted
    // still runs: the caller's callback has to recognise a lookup it no longer wants). Unknown or
    // finished ids are ignored.
    void cancel(Id id) noexcept;

    // Lookups queued or in progress.
    std::size_t pending() const;

  private:
    struct Request {
        Id id;
        std::string host;
        std::uint16_t port;
        Reactor* reactor;
        Callback done;
    };

    void run();

    const unsigned thread_limit_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Request> queue_;
    std::vector<Id> in_progress_;  // ids being looked up now; cancel() removes them
    std::vector<std::thread> threads_;
    Id next_id_ = 1;
    bool stopping_ = false;
};

}  // namespace wsx::net
