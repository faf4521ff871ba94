#include "hub/redis_backplane.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <future>
#include <random>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace wsx::hub {

namespace {

void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    // Written by the Redis thread only: a plain load and store, no RMW.
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

std::string_view reply_string(const redisReply* reply) {
    if (reply == nullptr ||
        (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS))
        return {};
    return {reply->str, reply->len};
}

}  // namespace

// ---- The Redis thread's state

struct RedisBackplane::State {
    // One hiredis connection adapted to the reactor: hiredis says which readiness it wants
    // (addRead/delRead/addWrite/delWrite), the reactor reports it back, cleanup unregisters the
    // fd before hiredis closes it.
    struct Connection final : net::IoHandler {
        Connection(State& s, bool subscriber) : state(s), is_subscriber(subscriber) {}

        State& state;
        const bool is_subscriber;
        redisAsyncContext* context = nullptr;
        int fd = -1;
        net::Interest interest = net::Interest::none;
        bool up = false;  // TCP connected (and, for the subscriber, its SUBSCRIBE answered)

        void on_readable(int) override {
            if (context != nullptr) redisAsyncHandleRead(context);
        }
        void on_writable(int) override {
            if (context != nullptr) redisAsyncHandleWrite(context);
        }
        void on_error(int, int error) override {
            // The reactor read (and so cleared) the socket's pending error: hiredis would now
            // take a refused connect for a completed one. Give up on both connections here.
            if (context == nullptr) return;
            state.last_error = std::strerror(error);
            state.fail();
        }

        void want(net::Interest flag, bool on) {
            if (fd < 0) return;
            const net::Interest next =
                on ? (interest | flag)
                   : static_cast<net::Interest>(static_cast<unsigned>(interest) &
                                                ~static_cast<unsigned>(flag));
            if (next == interest) return;
            interest = next;
            static_cast<void>(state.reactor.modify(fd, interest));
        }

        static Connection& of(void* data) { return *static_cast<Connection*>(data); }
        static void add_read(void* data) { of(data).want(net::Interest::read, true); }
        static void del_read(void* data) { of(data).want(net::Interest::read, false); }
        static void add_write(void* data) { of(data).want(net::Interest::write, true); }
        static void del_write(void* data) { of(data).want(net::Interest::write, false); }
        static void cleanup(void* data) {
            Connection& self = of(data);
            if (self.fd >= 0) static_cast<void>(self.state.reactor.remove(self.fd));
            self.fd = -1;
            self.interest = net::Interest::none;
        }
    };

    // One publish on its way to the Redis thread: channel and envelope in one buffer.
    struct Outgoing final : net::Task {
        Outgoing(State& s, std::size_t channel_size) : state(s), channel_length(channel_size) {}
        void run() override {
            const std::unique_ptr<Outgoing> self(this);
            state.send(*this);
        }
        void discard() noexcept override {
            state.pending.fetch_sub(1, std::memory_order_relaxed);
            delete this;
        }
        State& state;
        std::size_t channel_length;
        std::string data;
    };

    struct TopicState {
        std::size_t count = 0;       // subscribe() minus unsubscribe() calls
        bool subscribed = false;     // SUBSCRIBE sent on the current connection, no UNSUBSCRIBE
        bool unsubscribing = false;  // UNSUBSCRIBE sent, its confirmation not yet back
    };

    State(RedisOptions& o, net::Reactor& r)
        : options(o),
          reactor(r),
          topic_prefix(o.prefix + ":t:"),
          broadcast_channel(o.prefix + ":broadcast"),
          publisher(*this, false),
          subscriber(*this, true),
          random(std::random_device{}()) {
        reconnect_timer.bind<&State::connect>(this);
        connect_timer.bind<&State::connect_timed_out>(this);
        if (!options.log) {
            options.log = [](const std::string& line) {
                std::fprintf(stderr, "wsx redis: %s\n", line.c_str());
            };
        }
        if (options.reconnect_min.count() <= 0)
            options.reconnect_min = std::chrono::milliseconds(1);
        options.reconnect_max = std::max(options.reconnect_max, options.reconnect_min);
    }

    RedisOptions& options;
    net::Reactor& reactor;
    const std::string topic_prefix;
    const std::string broadcast_channel;
    Connection publisher;
    Connection subscriber;
    std::mt19937_64 random;
    net::Timer reconnect_timer;
    net::Timer connect_timer;

    // ---- Redis thread only.
    BackplaneReceiver* receiver = nullptr;
    std::unordered_map<std::string, TopicState> topics;
    unsigned attempt = 0;  // failed attempts since the last success
    bool ever_connected = false;
    bool outage = false;  // was connected, is not now
    bool stopping = false;
    std::chrono::steady_clock::time_point outage_start;
    std::uint64_t dropped_at_outage_start = 0;

    // ---- Shared.
    std::atomic<bool> connected{false};
    std::atomic<std::size_t> pending{0};
    std::atomic<std::uint64_t> reconnects{0};
    std::atomic<std::uint64_t> published{0};
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> dropped_outage{0};
    std::atomic<std::uint64_t> dropped_overflow{0};
    std::atomic<std::uint64_t> invalid{0};
    std::atomic<std::uint64_t> subscribed_channels{0};
    std::atomic<std::uint64_t> outage_ms{0};

    std::string where() const { return options.host + ":" + std::to_string(options.port); }

    // ---- Connecting

    bool open(Connection& connection) {
        redisAsyncContext* context = redisAsyncConnect(options.host.c_str(), options.port);
        if (context == nullptr) {
            last_error = "out of memory";
            return false;
        }
        if (context->err != 0) {
            last_error = context->errstr;
            redisAsyncFree(context);
            return false;
        }
        const int fd = context->c.fd;
        if (!reactor.add(fd, net::Interest::none, connection).ok()) {
            last_error = "cannot register the socket";
            redisAsyncFree(context);
            return false;
        }
        static_cast<void>(redisEnableKeepAlive(&context->c));
        connection.context = context;
        connection.fd = fd;
        connection.interest = net::Interest::none;
        connection.up = false;
        context->data = &connection;
        context->ev.data = &connection;
        context->ev.addRead = &Connection::add_read;
        context->ev.delRead = &Connection::del_read;
        context->ev.addWrite = &Connection::add_write;
        context->ev.delWrite = &Connection::del_write;
        context->ev.cleanup = &Connection::cleanup;
        redisAsyncSetDisconnectCallback(context, &State::on_disconnect);
        // Set last: hiredis asks for write readiness here, which reports the connect's outcome.
        redisAsyncSetConnectCallback(context, &State::on_connect);
        return true;
    }

    void connect() {
        if (stopping) return;
        if (!open(publisher) || !open(subscriber)) {
            fail();
            return;
        }
        reactor.arm(connect_timer, options.connect_timeout);
    }

    void connect_timed_out() {
        last_error = "connect timed out";
        fail();
    }

    static State* state_of(const redisAsyncContext* context, Connection** connection) {
        auto* c = static_cast<Connection*>(context->data);
        if (c == nullptr || c->context != context) return nullptr;  // one we let go of
        *connection = c;
        return &c->state;
    }

    static void on_connect(const redisAsyncContext* context, int status) {
        Connection* connection = nullptr;
        State* self = state_of(context, &connection);
        if (self == nullptr) return;
        if (status != REDIS_OK) {
            // hiredis frees the context after this returns.
            self->last_error = context->errstr;
            connection->context = nullptr;
            self->fail();
            return;
        }
        if (!self->options.password.empty()) {
            self->authenticate(*connection);
            return;
        }
        self->connected_and_ready(*connection);
    }

    // Logged in (or no password needed): the subscriber subscribes, the publisher is up.
    void connected_and_ready(Connection& connection) {
        if (connection.is_subscriber) {
            subscribe_all();
        } else {
            connection.up = true;
            check_ready();
        }
    }

    // AUTH [username] password, first on each connection (Redis 6 ACL form with a username).
    void authenticate(Connection& connection) {
        std::vector<const char*> argv{"AUTH"};
        std::vector<std::size_t> lengths{4};
        if (!options.username.empty()) {
            argv.push_back(options.username.c_str());
            lengths.push_back(options.username.size());
        }
        argv.push_back(options.password.c_str());
        lengths.push_back(options.password.size());
        redisAsyncCommandArgv(connection.context, &State::on_auth, this,
                              static_cast<int>(argv.size()), argv.data(), lengths.data());
    }

    static void on_auth(redisAsyncContext* context, void* raw, void*) {
        Connection* connection = nullptr;
        State* self = state_of(context, &connection);
        const auto* reply = static_cast<const redisReply*>(raw);
        if (self == nullptr || reply == nullptr) return;  // the connection is going anyway
        if (reply->type == REDIS_REPLY_ERROR) {
            // Wrong password or user: retried with backoff, since the server's ACL may change.
            self->last_error = "AUTH refused: " + std::string(reply->str, reply->len);
            self->fail();
            return;
        }
        self->connected_and_ready(*connection);
    }

    static void on_disconnect(const redisAsyncContext* context, int status) {
        Connection* connection = nullptr;
        State* self = state_of(context, &connection);
        if (self == nullptr) return;
        self->last_error = status == REDIS_OK ? "closed" : context->errstr;
        connection->context = nullptr;
        connection->up = false;
        self->fail();
    }

    // Closes whatever is open and schedules the next attempt.
    void fail() {
        reactor.cancel(connect_timer);
        for (Connection* connection : {&publisher, &subscriber}) {
            connection->up = false;
            if (redisAsyncContext* context = connection->context) {
                connection->context = nullptr;  // its disconnect callback now ignores it
                redisAsyncFree(context);
            }
        }
        subscribed_channels.store(0, std::memory_order_relaxed);
        for (auto it = topics.begin(); it != topics.end();) {
            it->second.subscribed = false;
            it->second.unsubscribing = false;
            it = it->second.count == 0 ? topics.erase(it) : std::next(it);
        }
        if (stopping) return;
        const bool was_connected = connected.exchange(false, std::memory_order_acq_rel);
        if (was_connected) {
            outage = true;
            outage_start = std::chrono::steady_clock::now();
            dropped_at_outage_start = dropped_outage.load(std::memory_order_relaxed);
            options.log("lost the connection to " + where() + " (" + last_error +
                        "); publishes to other nodes are dropped until it is back");
        } else if (attempt == 0 && !ever_connected) {
            options.log("cannot connect to " + where() + " (" + last_error + "); retrying");
        }
        ++attempt;
        if (reconnect_timer.armed()) return;
        reactor.arm(reconnect_timer, backoff());
    }

    std::chrono::milliseconds backoff() {
        const unsigned shift = std::min(attempt - 1, 20U);
        const std::int64_t cap = options.reconnect_max.count();
        const std::int64_t full = std::min(cap, options.reconnect_min.count() << shift);
        std::uniform_int_distribution<std::int64_t> pick(full / 2, full);
        return std::chrono::milliseconds(pick(random));
    }

    void check_ready() {
        if (!publisher.up || !subscriber.up || connected.load(std::memory_order_relaxed)) return;
        reactor.cancel(connect_timer);
        attempt = 0;
        connected.store(true, std::memory_order_release);
        if (outage) {
            outage = false;
            const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - outage_start);
            bump(outage_ms, static_cast<std::uint64_t>(gap.count()));
            bump(reconnects);
            const std::uint64_t lost =
                dropped_outage.load(std::memory_order_relaxed) - dropped_at_outage_start;
            options.log("reconnected to " + where() + " after " + std::to_string(gap.count()) +
                        " ms; " + std::to_string(lost) + " publishes were dropped meanwhile, " +
                        std::to_string(subscribed_channels.load(std::memory_order_relaxed)) +
                        " channels subscribed again");
        } else if (ever_connected) {
            bump(reconnects);
        } else {
            options.log("connected to " + where() + ", channels " + topic_prefix + "<topic> and " +
                        broadcast_channel);
        }
        ever_connected = true;
    }

    // ---- Subscriptions (subscriber connection)

    void subscribe_all() {
        // The broadcast channel last: its confirmation means every channel before it is in
        // (Redis runs one command at a time), so "connected" implies "receiving".
        std::vector<const char*> argv{"SUBSCRIBE"};
        std::vector<std::size_t> lengths{9};
        std::vector<std::string> channels;
        channels.reserve(topics.size());
        for (auto& [topic, state] : topics) {
            if (state.count == 0) continue;
            channels.push_back(topic_prefix + topic);
            state.subscribed = true;
        }
        channels.push_back(broadcast_channel);
        for (const std::string& channel : channels) {
            argv.push_back(channel.c_str());
            lengths.push_back(channel.size());
        }
        send_subscription(argv, lengths);
    }

    void send_subscription(const std::vector<const char*>& argv,
                           const std::vector<std::size_t>& lengths) {
        if (subscriber.context == nullptr) return;
        redisAsyncCommandArgv(subscriber.context, &State::on_subscriber_reply, this,
                              static_cast<int>(argv.size()), const_cast<const char**>(argv.data()),
                              lengths.data());
    }

    void command(const char* verb, const std::string& channel) {
        const std::vector<const char*> argv{verb, channel.c_str()};
        const std::vector<std::size_t> lengths{std::char_traits<char>::length(verb),
                                               channel.size()};
        send_subscription(argv, lengths);
    }

    void add_interest(const std::string& topic) {
        TopicState& state = topics[topic];
        if (++state.count != 1 || !subscriber.up) return;
        // An UNSUBSCRIBE in flight: subscribe again once it is confirmed, or hiredis would drop
        // the channel's callback when that confirmation arrives.
        if (state.unsubscribing || state.subscribed) return;
        state.subscribed = true;
        command("SUBSCRIBE", topic_prefix + topic);
    }

    void remove_interest(const std::string& topic) {
        const auto it = topics.find(topic);
        if (it == topics.end() || it->second.count == 0) return;
        TopicState& state = it->second;
        if (--state.count != 0) return;
        if (state.subscribed && subscriber.up) {
            state.subscribed = false;
            state.unsubscribing = true;
            command("UNSUBSCRIBE", topic_prefix + topic);
            return;
        }
        if (!state.unsubscribing) topics.erase(it);
    }

    static void on_subscriber_reply(redisAsyncContext*, void* raw, void* data) {
        auto* self = static_cast<State*>(data);
        const auto* reply = static_cast<const redisReply*>(raw);
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
        const std::string_view kind = reply_string(reply->element[0]);
        const std::string_view channel = reply_string(reply->element[1]);
        if (kind == "message") {
            self->deliver(channel, reply->element[2]);
        } else if (kind == "subscribe") {
            if (reply->element[2]->type == REDIS_REPLY_INTEGER) {
                self->subscribed_channels.store(
                    static_cast<std::uint64_t>(reply->element[2]->integer),
                    std::memory_order_relaxed);
            }
            if (channel == self->broadcast_channel && !self->subscriber.up) {
                self->subscriber.up = true;
                self->check_ready();
            }
        } else if (kind == "unsubscribe") {
            if (reply->element[2]->type == REDIS_REPLY_INTEGER) {
                self->subscribed_channels.store(
                    static_cast<std::uint64_t>(reply->element[2]->integer),
                    std::memory_order_relaxed);
            }
            self->unsubscribed(channel);
        }
    }

    void unsubscribed(std::string_view channel) {
        if (channel.substr(0, topic_prefix.size()) != topic_prefix) return;
        const auto it = topics.find(std::string(channel.substr(topic_prefix.size())));
        if (it == topics.end()) return;
        it->second.unsubscribing = false;
        if (it->second.count == 0) {
            topics.erase(it);
        } else if (!it->second.subscribed) {
            it->second.subscribed = true;
            command("SUBSCRIBE", std::string(channel));
        }
    }

    void deliver(std::string_view channel, const redisReply* payload) {
        if (payload->type != REDIS_REPLY_STRING) return;
        bool broadcast = false;
        std::string_view topic;
        if (channel == broadcast_channel) {
            broadcast = true;
        } else if (channel.substr(0, topic_prefix.size()) == topic_prefix) {
            topic = channel.substr(topic_prefix.size());
            // Messages still in flight after our UNSUBSCRIBE: nobody here wants them.
            const auto it = topics.find(std::string(topic));
            if (it == topics.end() || it->second.count == 0) return;
        } else {
            return;
        }
        std::optional<BackplaneMessage> message =
            decode_envelope({reinterpret_cast<const std::uint8_t*>(payload->str), payload->len});
        if (!message || message->broadcast != broadcast) {
            bump(invalid);
            return;
        }
        message->topic = topic;
        bump(received);
        if (receiver != nullptr) receiver->receive(*message);
    }

    // ---- Publishing (publisher connection)

    void send(Outgoing& outgoing) {
        if (!connected.load(std::memory_order_relaxed) || publisher.context == nullptr) {
            pending.fetch_sub(1, std::memory_order_relaxed);
            dropped_outage.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        const char* argv[3] = {"PUBLISH", outgoing.data.data(),
                               outgoing.data.data() + outgoing.channel_length};
        const std::size_t lengths[3] = {7, outgoing.channel_length,
                                        outgoing.data.size() - outgoing.channel_length};
        if (redisAsyncCommandArgv(publisher.context, &State::on_published, this, 3, argv,
                                  lengths) != REDIS_OK) {
            pending.fetch_sub(1, std::memory_order_relaxed);
            dropped_outage.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        bump(published);
    }

    static void on_published(redisAsyncContext*, void*, void* data) {
        // Also called with no reply when the connection goes: the message may or may not have
        // reached Redis (at-most-once).
        static_cast<State*>(data)->pending.fetch_sub(1, std::memory_order_relaxed);
    }

    void shut_down() {
        stopping = true;
        reactor.cancel(reconnect_timer);
        fail();
        connected.store(false, std::memory_order_relaxed);
    }

    std::string last_error;
};

// ---- RedisBackplane

RedisBackplane::RedisBackplane(RedisOptions options) : options_(std::move(options)) {
    net::SysResult<std::unique_ptr<net::Reactor>> reactor = net::Reactor::create();
    if (!reactor.ok()) throw std::system_error(reactor.error, std::generic_category(), "reactor");
    reactor_ = std::move(reactor.value);
    state_ = std::make_unique<State>(options_, *reactor_);
    reactor_->post([state = state_.get()] { state->connect(); });
    thread_ = std::thread([this] {
        // hiredis writes with write(2): a connection Redis closed would raise SIGPIPE and kill the
        // process. Blocked on this thread only, the write just fails with EPIPE.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        static_cast<void>(reactor_->run());
    });
}

RedisBackplane::~RedisBackplane() {
    reactor_->post([state = state_.get()] { state->shut_down(); });
    reactor_->stop();
    thread_.join();
    // Publishes still queued are discarded by the reactor, and they touch the state: the reactor
    // goes first.
    reactor_.reset();
}

namespace {
template <class F>
void run_on(net::Reactor& reactor, F function) {
    // Shared: the waiter may return (and leave) while set_value() is still finishing.
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    reactor.post([function = std::move(function), done] {
        function();
        done->set_value();
    });
    finished.wait();
}
}  // namespace

void RedisBackplane::set_receiver(BackplaneReceiver* receiver) {
    // Synchronous: once this returns the Redis thread no longer calls the old receiver.
    run_on(*reactor_, [state = state_.get(), receiver] { state->receiver = receiver; });
}

void RedisBackplane::publish(const BackplaneMessage& message) {
    State& state = *state_;
    // During an outage nothing is queued (the Redis thread would only drop it).
    if (!state.connected.load(std::memory_order_acquire)) {
        state.dropped_outage.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (state.pending.fetch_add(1, std::memory_order_relaxed) >= options_.max_pending) {
        state.pending.fetch_sub(1, std::memory_order_relaxed);
        state.dropped_overflow.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const std::string& head = message.broadcast ? state.broadcast_channel : state.topic_prefix;
    const std::size_t channel_length = head.size() + (message.broadcast ? 0 : message.topic.size());
    auto* outgoing = new State::Outgoing(state, channel_length);
    outgoing->data.reserve(channel_length + kEnvelopeHeaderSize + message.payload.size());
    outgoing->data.append(head);
    if (!message.broadcast) outgoing->data.append(message.topic);
    encode_envelope(message, outgoing->data);
    reactor_->post(*outgoing);
}

void RedisBackplane::subscribe(std::string_view topic) {
    reactor_->post(
        [state = state_.get(), topic = std::string(topic)] { state->add_interest(topic); });
}

void RedisBackplane::unsubscribe(std::string_view topic) {
    reactor_->post(
        [state = state_.get(), topic = std::string(topic)] { state->remove_interest(topic); });
}

void RedisBackplane::sync() {
    run_on(*reactor_, [] {});
}

bool RedisBackplane::wait_connected(std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!state_->connected.load(std::memory_order_acquire)) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

std::string RedisBackplane::topic_channel(std::string_view topic) const {
    return state_->topic_prefix + std::string(topic);
}

std::string RedisBackplane::broadcast_channel() const {
    return state_->broadcast_channel;
}

RedisStats RedisBackplane::stats() const noexcept {
    const State& s = *state_;
    RedisStats out;
    out.connected = s.connected.load(std::memory_order_relaxed);
    out.reconnects = s.reconnects.load(std::memory_order_relaxed);
    out.published = s.published.load(std::memory_order_relaxed);
    out.received = s.received.load(std::memory_order_relaxed);
    out.dropped_outage = s.dropped_outage.load(std::memory_order_relaxed);
    out.dropped_overflow = s.dropped_overflow.load(std::memory_order_relaxed);
    out.invalid = s.invalid.load(std::memory_order_relaxed);
    out.subscribed_channels = s.subscribed_channels.load(std::memory_order_relaxed);
    out.outage_ms = s.outage_ms.load(std::memory_order_relaxed);
    return out;
}

std::string RedisBackplane::metrics_text() const {
    const RedisStats s = stats();
    std::string out;
    out.reserve(2048);
    const auto metric = [&out](const char* name, const char* type, const char* help) {
        out.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    };
    const auto value = [&out](const char* name, std::uint64_t v, const char* labels = "") {
        out.append(name).append(labels).append(" ").append(std::to_string(v)).append("\n");
    };
    metric("wsx_redis_connected", "gauge", "1 while both Redis connections are up and subscribed.");
    value("wsx_redis_connected", s.connected ? 1 : 0);
    metric("wsx_redis_reconnects_total", "counter", "Connections re-established after a loss.");
    value("wsx_redis_reconnects_total", s.reconnects);
    metric("wsx_redis_outage_milliseconds_total", "counter",
           "Time spent disconnected, summed over the outages that ended.");
    value("wsx_redis_outage_milliseconds_total", s.outage_ms);
    metric("wsx_redis_published_total", "counter", "PUBLISH commands sent to Redis.");
    value("wsx_redis_published_total", s.published);
    metric("wsx_redis_received_total", "counter",
           "Messages from other nodes handed to the hub (own echoes included).");
    value("wsx_redis_received_total", s.received);
    metric("wsx_redis_dropped_total", "counter",
           "Publishes not sent to Redis: while disconnected, or beyond max_pending.");
    value("wsx_redis_dropped_total", s.dropped_outage, "{reason=\"disconnected\"}");
    value("wsx_redis_dropped_total", s.dropped_overflow, "{reason=\"queue_full\"}");
    metric("wsx_redis_invalid_total", "counter", "Messages on wsx channels with a bad envelope.");
    value("wsx_redis_invalid_total", s.invalid);
    metric("wsx_redis_subscribed_channels", "gauge",
           "Redis channels this node is subscribed to (the broadcast channel included).");
    value("wsx_redis_subscribed_channels", s.subscribed_channels);
    return out;
}

}  // namespace wsx::hub
