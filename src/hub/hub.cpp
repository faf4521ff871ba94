#include "hub/hub.hpp"

#include <chrono>
#include <cstring>
#include <new>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "hub/topic_table.hpp"
#include "proto/close.hpp"
#include "proto/connection.hpp"
#include "proto/utf8.hpp"

namespace wsx::hub {

namespace {

// RFC 7692 §7.1.2.1: server_max_window_bits is 8 ... 15; one shared variant per value.
constexpr std::size_t kWindowVariants = proto::kMaxWindowBits - proto::kMinWindowBits + 1;

// A counter written by its owning thread only and read by anyone: a plain load and store, no RMW.
void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

std::uint64_t random_node_id() {
    std::random_device device;
    const std::uint64_t id = (std::uint64_t{device()} << 32) | device();
    return id == 0 ? 1 : id;
}

}  // namespace

// One published message, shared by every thread it goes to. Allocated once per publish with one
// inbox node per thread behind it; freed by whichever thread drops the last reference.
struct Hub::Message {
    struct Delivery : net::MpscNode {
        Message* message = nullptr;
    };

    std::atomic<std::uint32_t> refs{1};
    bool broadcast = false;
    // What the message counts against each thread's max_pending_bytes while in its inbox.
    std::size_t charge = 0;
    proto::Opcode opcode = proto::Opcode::text;
    std::uint32_t header_size = 0;
    std::uint32_t slots = 0;
    std::string topic;
    proto::SharedBuffer frame;  // header + payload, encoded once
    // Compressed variants by server_max_window_bits - 8, made on first need by any thread.
    std::array<std::atomic<proto::SharedBuffer*>, kWindowVariants> compressed{};

    static Message* create(std::uint32_t slots) {
        void* raw = ::operator new(sizeof(Message) + slots * sizeof(Delivery));
        Message* message = new (raw) Message();
        message->slots = slots;
        for (std::uint32_t i = 0; i < slots; ++i) {
            Delivery* delivery = new (message->delivery_storage(i)) Delivery();
            delivery->message = message;
        }
        return message;
    }

    Delivery& delivery(std::uint32_t index) noexcept {
        return *std::launder(static_cast<Delivery*>(delivery_storage(index)));
    }

    std::span<const std::uint8_t> payload() const noexcept {
        return frame.bytes().subspan(header_size);
    }

    void retain() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        // acq_rel: the thread that frees must see every other thread's last use.
        if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        for (auto& variant : compressed)
            delete variant.load(std::memory_order_acquire);
        for (std::uint32_t i = 0; i < slots; ++i)
            delivery(i).~Delivery();
        this->~Message();
        ::operator delete(static_cast<void*>(this));
    }

  private:
    void* delivery_storage(std::uint32_t index) noexcept {
        static_assert(sizeof(Message) % alignof(Delivery) == 0);
        return reinterpret_cast<unsigned char*>(this) + sizeof(Message) + index * sizeof(Delivery);
    }
};

// What the hub keeps per reactor thread. The inbox and the flags are shared with publishers; the
// table, the deflaters and the dirty list belong to the thread. Counters are written by the thread
// and read by anyone.
struct Hub::ThreadState {
    class DrainTask final : public net::Task {
      public:
        explicit DrainTask(ThreadState& state) : state_(state) {}
        void run() override { state_.drain(); }
        void discard() noexcept override { state_.release_inbox(); }

      private:
        ThreadState& state_;
    };

    ThreadState(Hub& owner, unsigned thread_index, net::Reactor& r, net::SessionHost& h)
        : hub(owner), index(thread_index), reactor(r), host(h), drain_task(*this) {
        resume_timer.bind<&ThreadState::drain>(this);
    }

    Hub& hub;
    const unsigned index;
    net::Reactor& reactor;
    net::SessionHost& host;

    // ---- Shared with publishers.
    std::atomic<bool> attached{true};
    std::atomic<std::uint32_t> publishers{0};  // publishers between their check and their push
    net::MpscQueue inbox;
    std::atomic<std::size_t> pending_bytes{0};  // the charges of the messages in the inbox
    std::atomic<bool> drain_posted{false};
    DrainTask drain_task;

    // ---- The thread's own.
    TopicTable table;
    std::vector<Member*> corked;
    std::array<std::optional<proto::Deflater>, kWindowVariants> deflaters;
    std::size_t end_listener = 0;
    // Continues a drain that stopped at its budget, after the reactor's next wait: the sockets'
    // writability is seen between two batches, so a batch cannot pile onto a queue whose socket
    // is waiting to be written.
    net::Timer resume_timer;

    // ---- Counters.
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> subscriptions{0};
    std::atomic<std::uint64_t> topics{0};
    std::atomic<std::uint64_t> messages_out{0};
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> slow_closes{0};
    std::atomic<std::uint64_t> compressed_frames{0};

    // Any thread: hands a message to this thread; false when it is not attached (any more).
    bool offer(Message& message) {
        // seq_cst pairs with detach(): either detach sees this publisher and waits for it, or
        // this publisher sees the thread detached and stays away from its reactor.
        publishers.fetch_add(1, std::memory_order_seq_cst);
        const bool open = attached.load(std::memory_order_seq_cst);
        if (open) {
            message.retain();
            // Counted before the push, so the drain that pops it never takes the count below 0.
            pending_bytes.fetch_add(message.charge, std::memory_order_relaxed);
            inbox.push(message.delivery(index));
            // After the push (MpscQueue invariant 3); only the publisher that flips the flag
            // posts, and drain() clears it before it pops, so no message is stranded.
            if (!drain_posted.exchange(true, std::memory_order_acq_rel)) reactor.post(drain_task);
        }
        publishers.fetch_sub(1, std::memory_order_release);
        return open;
    }

    void update_gauges() noexcept {
        connections.store(table.members().size(), std::memory_order_relaxed);
        subscriptions.store(table.subscription_count(), std::memory_order_relaxed);
        topics.store(table.topic_count(), std::memory_order_relaxed);
    }

    void drain() {
        drain_posted.exchange(false, std::memory_order_acq_rel);
        if (!attached.load(std::memory_order_acquire)) {
            release_inbox();
            return;
        }
        std::size_t delivered = 0;
        std::size_t bytes = 0;
        bool full = false;
        for (;;) {
            if (delivered == hub.options_.delivery_batch ||
                bytes >= hub.options_.delivery_batch_bytes) {
                full = true;
                break;
            }
            net::MpscNode* node = inbox.pop();
            if (node == nullptr) break;
            Message& message = *static_cast<Message::Delivery*>(node)->message;
            deliver(message);
            bytes += message.frame.size();
            pending_bytes.fetch_sub(message.charge, std::memory_order_relaxed);
            message.release();
            ++delivered;
        }
        write_corked();
        // A full batch may have left more behind. Keeping the flag set spares publishers the
        // post; the timer runs the rest after the next wait, once I/O has had its turn.
        if (full && !drain_posted.exchange(true, std::memory_order_acq_rel)) {
            reactor.arm(resume_timer, std::chrono::milliseconds(0));
        }
    }

    void release_inbox() noexcept {
        while (net::MpscNode* node = inbox.pop()) {
            Message* message = static_cast<Message::Delivery*>(node)->message;
            pending_bytes.fetch_sub(message->charge, std::memory_order_relaxed);
            message->release();
        }
    }

    void deliver(Message& message) {
        if (message.broadcast) {
            for (Member* member : table.members())
                send(*member, message);
            return;
        }
        const Topic* topic = table.topic(message.topic);
        if (topic == nullptr) return;
        for (Member* member : topic->members)
            send(*member, message);
    }

    void send(Member& member, Message& message) {
        net::WsSession& session = *member.session;
        if (!session.is_open()) return;
        const proto::SharedBuffer* frame = &message.frame;
        if (const proto::DeflateParams* params = session.deflate_params();
            params != nullptr && message.payload().size() >= hub.options_.compress_min_size) {
            if (const proto::SharedBuffer* variant =
                    compressed(message, params->server_max_window_bits)) {
                frame = variant;
            }
        }
        if (!member.corked) {
            member.corked = true;
            session.cork();
            corked.push_back(&member);
        }
        if (session.buffered_amount() + frame->size() > hub.options_.max_queued_bytes) {
            if (hub.options_.slow_consumer == SlowConsumerPolicy::drop) {
                bump(dropped);
                return;
            }
            bump(slow_closes);
            // RFC 6455 §7.4.1: 1008, a policy violation; the close frame goes out behind what
            // is queued, and write_wait drops a peer that reads nothing at all.
            static_cast<void>(session.close(proto::close_code::kPolicyViolation, "slow consumer"));
            return;
        }
        if (session.send_shared(*frame) == net::SendStatus::ok) {
            bump(messages_out);
            bump(bytes_out, frame->size());
        }
    }

    // The message compressed for a window of `bits`, shared through the message: whichever
    // thread gets there first compresses it; a loser of the race discards its copy.
    const proto::SharedBuffer* compressed(Message& message, std::uint8_t bits) {
        const std::size_t slot = bits - proto::kMinWindowBits;
        proto::SharedBuffer* existing = message.compressed[slot].load(std::memory_order_acquire);
        if (existing != nullptr) return existing;
        std::optional<proto::Deflater>& deflater = deflaters[slot];
        if (!deflater) deflater.emplace(bits, false, hub.options_.deflate_tuning);
        proto::SharedBuffer made =
            proto::encode_shared_frame(message.opcode, message.payload(), *deflater);
        if (!made) return nullptr;  // zlib out of memory: the plain frame is valid too
        auto fresh = std::make_unique<proto::SharedBuffer>(std::move(made));
        if (message.compressed[slot].compare_exchange_strong(
                existing, fresh.get(), std::memory_order_acq_rel, std::memory_order_acquire)) {
            bump(compressed_frames);
            return fresh.release();
        }
        return existing;
    }

    void write_corked() {
        std::vector<Member*> batch;
        batch.swap(corked);
        for (Member* member : batch) {
            member->corked = false;
            // May end the session, and with it free `member`: nothing of either is used after.
            member->session->uncork();
        }
        batch.clear();
        if (corked.empty()) corked.swap(batch);  // keep the capacity for the next batch
    }

    void topic_removed(std::string_view topic) {
        if (hub.options_.backplane != nullptr) hub.options_.backplane->unsubscribe(topic);
    }

    void leave(std::uint64_t id) {
        table.leave(id, [this](std::string_view topic) { topic_removed(topic); });
        update_gauges();
    }
};

// ---- Hub

Hub::Hub(HubOptions options)
    : options_(std::move(options)),
      node_id_(options_.node_id != 0 ? options_.node_id : random_node_id()) {
    if (options_.delivery_batch == 0) options_.delivery_batch = 1;
    if (options_.backplane != nullptr) options_.backplane->set_receiver(this);
}

Hub::~Hub() {
    if (options_.backplane != nullptr) options_.backplane->set_receiver(nullptr);
    for (auto& slot : threads_) {
        ThreadState* state = slot.load(std::memory_order_acquire);
        if (state == nullptr) continue;
        state->release_inbox();
        delete state;
    }
}

void Hub::install(net::ServerOptions& options, std::string metrics_path) {
    options.on_thread_start =
        [this, chained = std::move(options.on_thread_start)](const net::ServerThread& thread) {
            if (chained) chained(thread);
            attach_thread(thread.index, thread.reactor, thread.host);
        };
    options.on_thread_stop =
        [this, chained = std::move(options.on_thread_stop)](const net::ServerThread& thread) {
            detach_thread(thread.index);
            if (chained) chained(thread);
        };
    if (metrics_path.empty()) return;
    options.http_route = [this, path = std::move(metrics_path),
                          chained = std::move(options.http_route)](
                             std::string_view target) -> std::optional<net::HttpRouteResponse> {
        if (target == path) {
            return net::HttpRouteResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                          metrics_text()};
        }
        if (chained) return chained(target);
        return std::nullopt;
    };
}

void Hub::attach_thread(unsigned index, net::Reactor& reactor, net::SessionHost& host) {
    if (index >= kMaxThreads || threads_[index].load(std::memory_order_acquire) != nullptr) return;
    auto* state = new ThreadState(*this, index, reactor, host);
    host.set_thread_index(index);
    state->end_listener = host.add_session_end_listener(
        [state](net::WsSession& session) { state->leave(session.id()); });
    threads_[index].store(state, std::memory_order_release);
    unsigned limit = thread_limit_.load(std::memory_order_relaxed);
    while (limit < index + 1 &&
           !thread_limit_.compare_exchange_weak(limit, index + 1, std::memory_order_release,
                                                std::memory_order_relaxed)) {
    }
}

void Hub::detach_thread(unsigned index) {
    if (index >= kMaxThreads) return;
    ThreadState* state = threads_[index].load(std::memory_order_acquire);
    if (state == nullptr || !state->attached.load(std::memory_order_relaxed)) return;
    state->host.remove_session_end_listener(state->end_listener);
    for (Member* member :
         std::vector<Member*>(state->table.members().begin(), state->table.members().end())) {
        state->leave(member->session->id());
    }
    state->resume_timer.cancel();
    state->attached.store(false, std::memory_order_seq_cst);
    // Publishers that saw the thread attached finish their push in a few instructions.
    while (state->publishers.load(std::memory_order_seq_cst) != 0)
        std::this_thread::yield();
    state->release_inbox();
}

Hub::ThreadState* Hub::local_state(const net::WsSession& session) const noexcept {
    const unsigned index = session.host().thread_index();
    if (index >= kMaxThreads) return nullptr;
    ThreadState* state = threads_[index].load(std::memory_order_acquire);
    if (state == nullptr || &state->host != &session.host() ||
        !state->attached.load(std::memory_order_relaxed)) {
        return nullptr;
    }
    return state;
}

bool Hub::join(net::WsSession& session) {
    ThreadState* state = local_state(session);
    if (state == nullptr) return false;
    state->table.join(session, session.id());
    state->update_gauges();
    return true;
}

bool Hub::subscribe(net::WsSession& session, std::string_view topic) {
    ThreadState* state = local_state(session);
    if (state == nullptr || topic.size() > options_.max_topic_length) return false;
    Member& member = state->table.join(session, session.id());
    bool created = false;
    const TopicTable::Subscribed result =
        state->table.subscribe(member, topic, options_.max_subscriptions_per_connection, created);
    if (created && options_.backplane != nullptr) options_.backplane->subscribe(topic);
    state->update_gauges();
    return result == TopicTable::Subscribed::added;
}

bool Hub::unsubscribe(net::WsSession& session, std::string_view topic) {
    ThreadState* state = local_state(session);
    if (state == nullptr) return false;
    Member* member = state->table.find(session.id());
    if (member == nullptr) return false;
    bool removed = false;
    const bool was = state->table.unsubscribe(*member, topic, removed);
    if (removed) state->topic_removed(topic);
    state->update_gauges();
    return was;
}

void Hub::leave(net::WsSession& session) {
    if (ThreadState* state = local_state(session)) state->leave(session.id());
}

bool Hub::subscribed(const net::WsSession& session, std::string_view topic) const {
    ThreadState* state = local_state(session);
    if (state == nullptr) return false;
    const Member* member = state->table.find(session.id());
    return member != nullptr && state->table.subscribed(*member, topic);
}

bool Hub::publish(std::string_view topic, proto::Opcode opcode,
                  std::span<const std::uint8_t> payload) {
    return publish_message(false, topic, opcode, payload, node_id_);
}

bool Hub::publish(std::string_view topic, std::string_view text) {
    return publish(topic, proto::Opcode::text,
                   {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

bool Hub::broadcast(proto::Opcode opcode, std::span<const std::uint8_t> payload) {
    return publish_message(true, {}, opcode, payload, node_id_);
}

void Hub::receive(const BackplaneMessage& message) {
    // Our own message, echoed by the bus: it was delivered locally when it was published.
    if (message.origin == node_id_) return;
    publish_message(message.broadcast, message.topic, message.opcode, message.payload,
                    message.origin);
}

bool Hub::publish_message(bool broadcast, std::string_view topic, proto::Opcode opcode,
                          std::span<const std::uint8_t> payload, std::uint64_t origin) {
    if (opcode != proto::Opcode::text && opcode != proto::Opcode::binary) return false;
    if (topic.size() > options_.max_topic_length) return false;
    if (opcode == proto::Opcode::text && !proto::is_valid_utf8(payload)) return false;

    const unsigned limit = thread_limit_.load(std::memory_order_acquire);
    const std::size_t charge = sizeof(Message) + limit * sizeof(Message::Delivery) +
                               proto::kMaxFrameHeaderSize + payload.size() + topic.size();
    for (unsigned i = 0; i < limit; ++i) {
        const ThreadState* state = threads_[i].load(std::memory_order_acquire);
        if (state == nullptr) continue;
        const std::size_t pending = state->pending_bytes.load(std::memory_order_relaxed);
        if (pending != 0 && pending + charge > options_.max_pending_bytes) {
            messages_refused_.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
    }
    messages_in_.fetch_add(1, std::memory_order_relaxed);
    bytes_in_.fetch_add(payload.size(), std::memory_order_relaxed);

    Message* message = Message::create(limit);
    message->charge = charge;
    message->broadcast = broadcast;
    message->opcode = opcode;
    message->topic.assign(topic);
    message->frame = proto::encode_shared_frame(opcode, payload);
    message->header_size =
        static_cast<std::uint32_t>(proto::frame_header_size(payload.size(), false));
    for (unsigned i = 0; i < limit; ++i) {
        if (ThreadState* state = threads_[i].load(std::memory_order_acquire)) {
            state->offer(*message);
        }
    }
    message->release();  // the publisher's reference

    if (origin == node_id_ && options_.backplane != nullptr) {
        options_.backplane->publish({origin, broadcast, opcode, topic, payload});
    }
    return true;
}

HubStats Hub::stats() const noexcept {
    HubStats s;
    s.messages_in = messages_in_.load(std::memory_order_relaxed);
    s.bytes_in = bytes_in_.load(std::memory_order_relaxed);
    s.messages_refused = messages_refused_.load(std::memory_order_relaxed);
    const unsigned limit = thread_limit_.load(std::memory_order_acquire);
    for (unsigned i = 0; i < limit; ++i) {
        const ThreadState* state = threads_[i].load(std::memory_order_acquire);
        if (state == nullptr) continue;
        s.connections += state->connections.load(std::memory_order_relaxed);
        s.subscriptions += state->subscriptions.load(std::memory_order_relaxed);
        s.topics += state->topics.load(std::memory_order_relaxed);
        s.messages_out += state->messages_out.load(std::memory_order_relaxed);
        s.bytes_out += state->bytes_out.load(std::memory_order_relaxed);
        s.messages_dropped += state->dropped.load(std::memory_order_relaxed);
        s.slow_consumer_closes += state->slow_closes.load(std::memory_order_relaxed);
        s.compressed_frames += state->compressed_frames.load(std::memory_order_relaxed);
        s.pending_bytes += state->pending_bytes.load(std::memory_order_relaxed);
    }
    return s;
}

std::string Hub::metrics_text() const {
    const HubStats s = stats();
    struct Metric {
        const char* name;
        const char* type;
        const char* help;
        std::uint64_t value;
    };
    const Metric metrics[] = {
        {"wsx_hub_connections", "gauge", "Sessions joined to the hub.", s.connections},
        {"wsx_hub_subscriptions", "gauge", "Topic subscriptions held by sessions.",
         s.subscriptions},
        {"wsx_hub_topics", "gauge",
         "Topics with subscribers, counted once per reactor thread that has subscribers.",
         s.topics},
        {"wsx_hub_messages_in_total", "counter",
         "Messages published on this node or received from the backplane.", s.messages_in},
        {"wsx_hub_bytes_in_total", "counter", "Payload bytes of those messages.", s.bytes_in},
        {"wsx_hub_messages_out_total", "counter", "Frames queued to sessions.", s.messages_out},
        {"wsx_hub_bytes_out_total", "counter", "Wire bytes of those frames.", s.bytes_out},
        {"wsx_hub_messages_dropped_total", "counter",
         "Messages skipped for a session whose queue was full (policy drop).", s.messages_dropped},
        {"wsx_hub_slow_consumer_closes_total", "counter",
         "Sessions closed with 1008 because their queue was full (policy close).",
         s.slow_consumer_closes},
        {"wsx_hub_compressed_frames_total", "counter",
         "Shared permessage-deflate frames made (one per message and window size).",
         s.compressed_frames},
        {"wsx_hub_messages_refused_total", "counter",
         "Publishes and backplane arrivals refused because a thread's inbox was full.",
         s.messages_refused},
        {"wsx_hub_pending_bytes", "gauge",
         "Bytes of messages waiting in the reactor threads' inboxes.", s.pending_bytes},
    };
    std::string out;
    out.reserve(2048);
    for (const Metric& m : metrics) {
        out.append("# HELP ").append(m.name).append(" ").append(m.help).append("\n");
        out.append("# TYPE ").append(m.name).append(" ").append(m.type).append("\n");
        out.append(m.name).append(" ").append(std::to_string(m.value)).append("\n");
    }
    return out;
}

}  // namespace wsx::hub
