#include "net/resolver.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

namespace wsx::net {

std::string ResolveResult::message() const {
    if (error == 0) return "ok";
    if (error == EAI_SYSTEM) return std::strerror(system_error);
    return ::gai_strerror(error);
}

std::optional<SocketAddress> resolve_numeric(std::string_view host, std::uint16_t port) {
    SysResult<SocketAddress> parsed = SocketAddress::from_numeric(host, port);
    if (!parsed.ok()) return std::nullopt;
    return parsed.value;
}

ResolveResult resolve_blocking(const std::string& host, std::uint16_t port) {
    ResolveResult result;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    // AI_ADDRCONFIG: no IPv6 answers on a host without IPv6, whose connects could only fail.
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    const std::string service = std::to_string(port);
    addrinfo* list = nullptr;
    const int status = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    if (status != 0) {
        result.error = status;
        if (status == EAI_SYSTEM) result.system_error = errno;
        return result;
    }
    const std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(list, ::freeaddrinfo);
    for (const addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
        if (entry->ai_family != AF_INET && entry->ai_family != AF_INET6) continue;
        sockaddr_storage storage{};
        std::memcpy(&storage, entry->ai_addr, entry->ai_addrlen);
        const SocketAddress address = SocketAddress::from_storage(storage, entry->ai_addrlen);
        const bool seen = std::any_of(
            result.addresses.begin(), result.addresses.end(), [&](const SocketAddress& other) {
                return other.size() == address.size() &&
                       std::memcmp(other.data(), address.data(), address.size()) == 0;
            });
        if (!seen) result.addresses.push_back(address);
    }
    if (result.addresses.empty()) result.error = EAI_NONAME;
    return result;
}

Resolver::Resolver(unsigned threads) : thread_limit_(std::max(threads, 1U)) {}

Resolver::~Resolver() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        queue_.clear();
        in_progress_.clear();
    }
    wake_.notify_all();
    for (std::thread& thread : threads_)
        thread.join();
}

Resolver::Id Resolver::resolve(std::string host, std::uint16_t port, Reactor& reactor,
                               Callback done) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const Id id = next_id_++;
    queue_.push_back({id, std::move(host), port, &reactor, std::move(done)});
    // One more thread while lookups wait and the pool is not full: a slow name must not hold up
    // the others.
    if (threads_.size() < thread_limit_ && queue_.size() > threads_.size() - in_progress_.size()) {
        threads_.emplace_back([this] { run(); });
    }
    wake_.notify_one();
    return id;
}

void Resolver::cancel(Id id) noexcept {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto queued =
        std::find_if(queue_.begin(), queue_.end(), [id](const Request& r) { return r.id == id; });
    if (queued != queue_.end()) {
        queue_.erase(queued);
        return;
    }
    std::erase(in_progress_, id);
}

std::size_t Resolver::pending() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size() + in_progress_.size();
}

void Resolver::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        Request request = std::move(queue_.front());
        queue_.pop_front();
        in_progress_.push_back(request.id);
        lock.unlock();
        ResolveResult result = resolve_blocking(request.host, request.port);
        lock.lock();
        // Posting under the lock makes cancel() final: once it returned, no post follows.
        const auto it = std::find(in_progress_.begin(), in_progress_.end(), request.id);
        if (it == in_progress_.end()) continue;  // cancelled meanwhile
        in_progress_.erase(it);
        request.reactor->post([done = std::move(request.done),
                               result = std::move(result)]() mutable { done(std::move(result)); });
    }
}

}  // namespace wsx::net
