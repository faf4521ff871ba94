// wsx chat: a chat room server. The page (web/chat/) is served as static files at `/`, the chat
// speaks the JSON protocol of chat_protocol.hpp at `/ws` over a wsx::hub::Hub (one topic per
// room), and `/echo` echoes every message. GET /metrics shows the hub's counters.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat_protocol.hpp"
#include "commands.hpp"
#include "hub/hub.hpp"
#include "net/server.hpp"
#ifdef WSX_HAVE_REDIS
#include "hub/redis_backplane.hpp"
#endif

namespace wsx::apps {

namespace {

namespace chat = wsx::apps::chat;

// The room list a client gets is bounded (the busiest rooms first), so one request can never
// produce an unbounded answer.
constexpr std::size_t kMaxListedRooms = 200;
// A chat message is small; the cap keeps one client from making the server relay megabytes to
// every member of a room (RFC 6455 §7.4.1: 1009 when it is exceeded).
constexpr std::uint64_t kDefaultMaxMessage = 64 * 1024;
// Rooms one connection may be in: enough for any person, and it bounds what one connection can
// add to the room directory and the hub's tables.
constexpr std::size_t kMaxRoomsPerConnection = 64;

constexpr const char* kChatHelp =
    "usage: wsx chat [options]\n"
    "  chat room server: the web page at /, the JSON chat protocol at /ws (see README.md,\n"
    "  \"Chat room\"), an echo endpoint at /echo, hub metrics at /metrics; stops gracefully\n"
    "  on SIGINT/SIGTERM\n"
    "  --port N                 TCP port, 0 for any free one (8080)\n"
    "  --address ADDR           address to bind (0.0.0.0)\n"
    "  --static DIR             the page's files (the installed or source web/chat)\n"
    "  --threads N              reactor threads, 0 for one per core (0)\n"
    "  --max-connections N      WebSocket connections open at once; beyond: 503 (10000)\n"
    "  --max-message BYTES      largest message accepted; beyond: close 1009 (65536)\n"
    "  --allowed-origin ORIGIN  also accept browser pages from ORIGIN, e.g.\n"
    "                           http://localhost:3000 (repeatable; same-origin is always on)\n"
    "  --redis URL              share rooms with other wsx chat nodes through Redis pub/sub:\n"
    "                           redis://[[USER]:PASSWORD@]HOST[:PORT][/PREFIX] (port 6379,\n"
    "                           channel prefix wsx); or the password in $WSX_REDIS_PASSWORD\n"
    "  --node-id N              this node's id on Redis, non-zero (random)\n"
    "  with TLS (https:// and wss://), SIGHUP reloads the certificates\n";

// What the server knows of one chat connection; lives in the session's user_data and is only
// touched on the session's own thread.
struct ChatSession {
    std::string nick;
    std::set<std::string, std::less<>> topics;
};

// Members per room across all threads, for the room list. Subscribing and leaving are rare next
// to publishing, which never takes this lock.
class RoomDirectory {
  public:
    void joined(const std::string& topic) {
        const std::lock_guard lock(mutex_);
        ++members_[topic];
    }
    void left(const std::string& topic) {
        const std::lock_guard lock(mutex_);
        const auto it = members_.find(topic);
        if (it != members_.end() && --it->second == 0) members_.erase(it);
    }
    std::vector<chat::RoomInfo> list(std::size_t max) const {
        std::vector<chat::RoomInfo> rooms;
        {
            const std::lock_guard lock(mutex_);
            rooms.reserve(members_.size());
            for (const auto& [topic, count] : members_)
                rooms.push_back({topic, count});
        }
        std::stable_sort(rooms.begin(), rooms.end(), [](const auto& a, const auto& b) {
            return a.subscribers > b.subscribers;
        });
        if (rooms.size() > max) rooms.resize(max);
        return rooms;
    }

  private:
    mutable std::mutex mutex_;
    std::map<std::string, std::size_t, std::less<>> members_;
};

std::string_view path_of(std::string_view target) {
    return target.substr(0, target.find_first_of("?#"));
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class ChatHandler final : public wsx::net::SessionHandler {
  public:
    explicit ChatHandler(wsx::hub::Hub& hub) : hub_(hub) {}

    void on_open(wsx::net::WsSession& session) override {
        if (path_of(session.target()) != "/ws") return;  // /echo: no chat state
        // Session ids are per thread; the guest number is unique across the server.
        const std::uint64_t guest = next_guest_.fetch_add(1, std::memory_order_relaxed);
        auto* state = new ChatSession{"guest-" + std::to_string(guest), {}};
        session.set_user_data(state);
        session.send_text(chat::format_welcome(state->nick));
    }

    void on_message(wsx::net::WsSession& session, wsx::proto::Opcode opcode,
                    std::span<const std::uint8_t> payload) override {
        auto* state = static_cast<ChatSession*>(session.user_data());
        if (state == nullptr) {
            session.send(opcode, payload);  // /echo
            return;
        }
        if (opcode != wsx::proto::Opcode::text) {
            session.send_text(chat::format_error("binary messages are not part of the protocol"));
            return;
        }
        const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
        const chat::ParseResult parsed = chat::parse_request(text);
        if (const auto* problem = std::get_if<chat::ProtocolError>(&parsed)) {
            session.send_text(chat::format_error(problem->message, problem->topic));
            return;
        }
        handle(session, *state, std::get<chat::Request>(parsed));
    }

    void on_close(wsx::net::WsSession& session, const wsx::proto::CloseInfo&) override {
        auto* state = static_cast<ChatSession*>(session.user_data());
        if (state == nullptr) return;
        // The hub drops the session's subscriptions itself; the directory is ours to update.
        for (const std::string& topic : state->topics)
            rooms_.left(topic);
        session.set_user_data(nullptr);
        delete state;
    }

  private:
    void handle(wsx::net::WsSession& session, ChatSession& state, const chat::Request& request) {
        using chat::RequestType;
        switch (request.type) {
            case RequestType::ping:
                session.send_text(chat::format_pong());
                return;
            case RequestType::rooms:
                session.send_text(chat::format_rooms(rooms_.list(kMaxListedRooms)));
                return;
            case RequestType::nick:
                state.nick = request.nick;
                session.send_text(chat::format_nick(state.nick));
                return;
            case RequestType::subscribe:
                subscribe(session, state, request.topic);
                return;
            case RequestType::unsubscribe:
                if (state.topics.erase(request.topic) == 0) {
                    session.send_text(chat::format_error("not subscribed", request.topic));
                    return;
                }
                hub_.unsubscribe(session, request.topic);
                rooms_.left(request.topic);
                session.send_text(chat::format_unsubscribed(request.topic));
                return;
            case RequestType::publish:
                if (!state.topics.contains(request.topic)) {
                    session.send_text(chat::format_error("not subscribed", request.topic));
                    return;
                }
                // The sender is a subscriber too: its copy comes back through the hub, in the
                // same order every other member sees.
                if (!hub_.publish(request.topic,
                                  chat::format_message(request.topic, request.data_json, state.nick,
                                                       now_ms()))) {
                    session.send_text(chat::format_error("message refused", request.topic));
                }
                return;
        }
    }

    void subscribe(wsx::net::WsSession& session, ChatSession& state, const std::string& topic) {
        if (state.topics.contains(topic)) {
            session.send_text(chat::format_subscribed(topic));  // idempotent
            return;
        }
        if (!hub_.subscribe(session, topic)) {
            session.send_text(chat::format_error(
                "cannot subscribe: at most " +
                    std::to_string(hub_.options().max_subscriptions_per_connection) +
                    " rooms per connection",
                topic));
            return;
        }
        state.topics.insert(topic);
        rooms_.joined(topic);
        session.send_text(chat::format_subscribed(topic));
    }

    wsx::hub::Hub& hub_;
    RoomDirectory rooms_;
    std::atomic<std::uint64_t> next_guest_{1};
};

// Where the page's files are when --static is not given: next to the build tree's sources when
// this binary runs from its build directory, else where `meson install` put them.
std::string default_static_dir() {
    std::error_code error;
    const auto exe = std::filesystem::canonical("/proc/self/exe", error);
    const auto build_root = std::filesystem::weakly_canonical(WSX_BUILD_ROOT, error);
    const bool in_build_tree =
        !exe.empty() && exe.string().rfind(build_root.string() + "/", 0) == 0;
    const std::vector<std::string> candidates =
        in_build_tree ? std::vector<std::string>{WSX_CHAT_SOURCE_DIR, WSX_CHAT_INSTALL_DIR}
                      : std::vector<std::string>{WSX_CHAT_INSTALL_DIR, WSX_CHAT_SOURCE_DIR};
    for (const std::string& dir : candidates) {
        if (std::filesystem::is_regular_file(std::filesystem::path(dir) / "index.html", error)) {
            return dir;
        }
    }
    return {};
}

// Same-origin pages always; the listed origins too. Requests without Origin (not from a
// browser) pass, as in the default policy (RFC 6455 §10.2: Origin protects browser users).
wsx::proto::OriginPolicy origin_policy(std::vector<std::string> allowed) {
    if (allowed.empty()) return wsx::proto::OriginPolicy::same_origin();
    return wsx::proto::OriginPolicy::custom(
        [allowed = std::move(allowed)](std::string_view origin, std::string_view host) {
            if (origin.empty()) return true;
            if (wsx::proto::OriginPolicy::same_origin().allows(origin, host)) return true;
            return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& entry) {
                return entry.size() == origin.size() &&
                       std::equal(entry.begin(), entry.end(), origin.begin(), [](char a, char b) {
                           return std::tolower(static_cast<unsigned char>(a)) ==
                                  std::tolower(static_cast<unsigned char>(b));
                       });
            });
        });
}

}  // namespace

namespace {
int chat_usage(const char* problem, const char* detail) {
    std::fprintf(stderr, "wsx chat: %s%s\n%s", problem, detail, chat_help());
    return 2;
}
}  // namespace

const char* chat_help() {
    static const std::string help = std::string(kChatHelp) + kTlsServerFlagsHelp;
    return help.c_str();
}

int chat_command(std::span<char*> args) {
    wsx::net::ServerOptions options;
    options.address = "0.0.0.0";
    options.port = 8080;
    options.websocket_paths = {"/ws", "/echo"};
    std::uint64_t max_message = kDefaultMaxMessage;
    std::vector<std::string> allowed_origins;
    std::string static_dir;
    std::string redis_url;
    std::uint64_t node_id = 0;
    TlsFlags tls;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (const FlagResult r = parse_tls_flag(args, i, tls, "wsx chat");
            r != FlagResult::not_mine) {
            if (r == FlagResult::bad) return 2;
            continue;
        }
        const std::string_view flag = args[i];
        if (i + 1 == args.size()) return chat_usage("missing value for ", args[i]);
        const std::string_view value = args[++i];
        bool ok = true;
        if (const auto listen = parse_listen_flag(flag, value, options)) {
            ok = *listen;
        } else if (flag == "--static") {
            static_dir = std::string(value);
        } else if (flag == "--max-message") {
            ok = parse_number(value, max_message) && max_message > 0;
        } else if (flag == "--allowed-origin") {
            ok = value.find("://") != std::string_view::npos;
            allowed_origins.emplace_back(value);
        } else if (flag == "--redis") {
            redis_url = std::string(value);
        } else if (flag == "--node-id") {
            ok = parse_number(value, node_id) && node_id != 0;
        } else {
            return chat_usage("unknown option ", args[i - 1]);
        }
        if (!ok) return chat_usage("bad value for ", args[i - 1]);
    }
#ifdef WSX_HAVE_REDIS
    std::optional<wsx::hub::RedisUrl> redis_target;
    if (!redis_url.empty()) {
        std::string why;
        redis_target = wsx::hub::parse_redis_url(redis_url, &why);
        if (!redis_target) {
            // Not echoed when it may hold a password.
            const bool secret = redis_url.find('@') != std::string::npos;
            std::fprintf(stderr, "wsx chat: bad --redis %s: %s\n%s",
                         secret ? "URL" : redis_url.c_str(), why.c_str(), chat_help());
            return 2;
        }
    }
#else
    if (!redis_url.empty()) {
        std::fprintf(stderr, "wsx chat: --redis: this wsx was built without hiredis\n");
        return 2;
    }
#endif
    if (static_dir.empty()) static_dir = default_static_dir();
    if (static_dir.empty()) {
        std::fprintf(stderr, "wsx chat: the page's files are not installed; use --static DIR\n");
        return 1;
    }
    if (std::error_code error; !std::filesystem::is_directory(static_dir, error)) {
        std::fprintf(stderr, "wsx chat: --static %s is not a directory\n", static_dir.c_str());
        return 1;
    }
    options.static_root = static_dir;
    if (!apply_server_tls(tls, options, "wsx chat")) return 1;
    options.handshake.origin = origin_policy(std::move(allowed_origins));
    options.session.connection.max_message_size = max_message;
    options.session.connection.max_frame_size = max_message;
    // /echo holds one message in its output: keep the hard cap above it.
    options.session.max_buffered_bytes = std::max<std::size_t>(
        options.session.max_buffered_bytes, 2 * max_message + options.session.high_watermark);

    // Before the server threads exist, so that they inherit the blocked stop signals.
    block_serve_signals();

    wsx::hub::HubOptions hub_options;
    hub_options.max_topic_length = chat::kMaxTopicBytes;
    hub_options.max_subscriptions_per_connection = kMaxRoomsPerConnection;
    hub_options.node_id = node_id;
#ifdef WSX_HAVE_REDIS
    // Outlives the hub. Connects in the background: the node serves its own clients whether or
    // not Redis is there (yet).
    std::unique_ptr<wsx::hub::RedisBackplane> redis;
    if (redis_target) {
        wsx::hub::RedisOptions redis_options;
        redis_options.host = redis_target->host;
        redis_options.port = redis_target->port;
        redis_options.prefix = redis_target->prefix;
        redis_options.username = redis_target->username;
        redis_options.password = redis_target->password;
        // Kept out of the URL (and so out of `ps`) when it comes from the environment.
        if (const char* password = std::getenv("WSX_REDIS_PASSWORD");
            password != nullptr && redis_options.password.empty()) {
            redis_options.password = password;
        }
        redis = std::make_unique<wsx::hub::RedisBackplane>(std::move(redis_options));
        hub_options.backplane = redis.get();
    }
#endif
    wsx::hub::Hub hub(hub_options);  // outlives the server, whose threads detach when they end
    hub.install(options);
#ifdef WSX_HAVE_REDIS
    if (redis) {
        // /metrics: the hub's counters, then the backplane's.
        options.http_route =
            [&hub, &redis, chained = std::move(options.http_route)](
                std::string_view target) -> std::optional<wsx::net::HttpRouteResponse> {
            if (target == "/metrics") {
                return wsx::net::HttpRouteResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                                   hub.metrics_text() + redis->metrics_text()};
            }
            return chained ? chained(target) : std::nullopt;
        };
    }
#endif
    ChatHandler handler(hub);
    wsx::net::Server server(options, handler);
    if (const wsx::net::SysStatus started = server.start(); !started.ok()) {
        std::fprintf(stderr, "wsx chat: cannot start on %s:%u: %s\n", options.address.c_str(),
                     options.port, std::strerror(started.error));
        return 1;
    }
    const bool wildcard = options.address == "0.0.0.0" || options.address == "::";
    const bool v6 = options.address.find(':') != std::string::npos;
    const std::string host =
        wildcard ? "localhost" : (v6 ? "[" + options.address + "]" : options.address);
    const std::string authority = host + ":" + std::to_string(server.port());
    const char* http = options.tls ? "https" : "http";
    const char* ws = options.tls ? "wss" : "ws";
    std::fprintf(stderr,
                 "wsx chat: listening on %s:%u (%u threads, max message %llu bytes, page from %s)\n"
                 "  open %s://%s/ in a browser\n"
                 "  chat %s://%s/ws   echo %s://%s/echo   metrics %s://%s/metrics\n",
                 options.address.c_str(), server.port(), server.thread_count(),
                 static_cast<unsigned long long>(max_message), static_dir.c_str(), http,
                 authority.c_str(), ws, authority.c_str(), ws, authority.c_str(), http,
                 authority.c_str());
#ifdef WSX_HAVE_REDIS
    if (redis) {
        std::fprintf(stderr, "  rooms shared through redis://%s:%u/%s as node %llu\n",
                     redis->options().host.c_str(), redis->options().port,
                     redis->options().prefix.c_str(),
                     static_cast<unsigned long long>(hub.node_id()));
    }
#endif
    return serve_until_signal(server, options.tls.has_value(), "wsx chat");
}

}  // namespace wsx::apps
