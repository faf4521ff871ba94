// The broadcast hub: topics (rooms) that WebSocket sessions subscribe to, publish from any thread,
// encode once, deliver on each session's own reactor thread.
//
//   wsx::hub::Hub hub;                                  // must outlive the server
//   struct Chat : wsx::net::SessionHandler {
//       wsx::hub::Hub& hub;
//       explicit Chat(wsx::hub::Hub& h) : hub(h) {}
//       void on_open(WsSession& s) override { hub.subscribe(s, "lobby"); }
//       void on_message(WsSession&, proto::Opcode op, std::span<const std::uint8_t> p) override {
//           hub.publish("lobby", op, p);               // every subscriber, on every thread
//       }
//   } chat{hub};
//   wsx::net::ServerOptions options;
//   hub.install(options);                              // thread hooks and GET /metrics
//   wsx::net::Server server(std::move(options), chat);
//
// Design (shared-nothing, lock-free):
//   - Each reactor thread owns the subscription table of its own connections (topic_table.hpp):
//     subscribe, unsubscribe and disconnect touch only that table, no lock, no atomic RMW.
//   - publish() encodes the frame once into an immutable, reference-counted buffer
//     (proto::SharedBuffer) and pushes one node per attached thread into that thread's lock-free
//     inbox (net::MpscQueue); a thread's drain task, posted to its reactor only when the inbox
//     turns non-empty, delivers a batch of messages to its local subscribers. Every subscriber's
//     output queue references the same bytes; what one connection receives in a batch is written
//     after the batch, in one writev (up to 64 frames per call). No mutex anywhere on the publish
//     or delivery path.
//   - permessage-deflate sessions get the frame compressed once per message and window size
//     (RFC 7692 §7.1.2.1 server_max_window_bits) from an empty window, shared like the plain one:
//     the first thread that needs a variant compresses it and installs it with a CAS.
//
// Ordering: messages published by one thread to one topic (or broadcast) arrive at every
// subscriber in the order they were published (each thread's inbox is FIFO per producer, and a
// session's output queue is FIFO). Messages of different publisher threads may interleave
// differently at different subscribers. A publish that happens-after a subscribe() returned
// reaches that subscriber. Messages from a backplane keep the order the backplane hands them in.
//
// Slow consumers: a message that would take a session's buffered output past max_queued_bytes
// is not queued; policy `close` closes the session with 1008 (RFC 6455 §7.4.1, policy), policy
// `drop` skips the message for that session and counts it. Writes never block, so one slow
// subscriber never delays another.
//
// Publishers: what waits in a thread's inbox is bounded by max_pending_bytes; past it publish()
// refuses (returns false, nothing queued, counted in messages_refused) until the thread catches
// up. Every accepted message is delivered (subject to the slow-consumer policy above).
//
// Threads: install() (or attach_thread/detach_thread by hand for a custom set of reactors) tells
// the hub about each reactor thread. subscribe, unsubscribe, join, leave are called on the
// session's own thread (e.g. from its SessionHandler callbacks); publish, broadcast, receive,
// stats and metrics_text from any thread. A session's subscriptions end with it automatically.
//
// Lifetime: the hub outlives every reactor it was attached to (with a Server: destroy the server
// first). Attached by hand, detach each thread before the hub goes.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "hub/backplane.hpp"
#include "net/reactor.hpp"
#include "net/server.hpp"
#include "net/ws_session.hpp"
#include "proto/deflate.hpp"
#include "proto/frame.hpp"

namespace wsx::hub {

enum class SlowConsumerPolicy : std::uint8_t {
    close,  // close the session with 1008 "slow consumer"
    drop,   // skip messages for it while its queue is full; counted in messages_dropped
};

struct HubOptions {
    // Per-connection cap on buffered output bytes (everything queued and not yet written, the
    // message about to be queued included). Keep it below SessionOptions::max_buffered_bytes.
    std::size_t max_queued_bytes = 4 * 1024 * 1024;
    SlowConsumerPolicy slow_consumer = SlowConsumerPolicy::close;
    // Topic names longer than this are refused by subscribe() and publish().
    std::size_t max_topic_length = 256;
    // Subscriptions one connection may hold; subscribe() beyond it returns false.
    std::size_t max_subscriptions_per_connection = 1024;
    // A thread delivers at most this many messages, and stops after this many frame bytes, per
    // drain before other queued work gets a turn. Everything a session gets in one drain is
    // queued before any of it is written (one writev), so the byte budget also keeps a batch
    // from counting against max_queued_bytes: keep it well below that.
    std::size_t delivery_batch = 256;
    std::size_t delivery_batch_bytes = 256 * 1024;
    // Bound on what publishers may pile up ahead of a reactor thread: bytes of messages in one
    // thread's inbox, not yet delivered (each counts its frame, topic and bookkeeping). A publish
    // (or backplane arrival) that would take any attached thread past it is refused: publish()
    // returns false and messages_refused counts it. A thread with an empty inbox takes any one
    // message, so the bound is this plus one message (plus what racing publishers add between
    // their check and their push).
    std::size_t max_pending_bytes = 64 * 1024 * 1024;
    // permessage-deflate sessions get messages of at least this many bytes compressed (smaller
    // ones go uncompressed, which RFC 7692 §6 allows); the level etc. of that shared compression.
    std::size_t compress_min_size = 64;
    proto::DeflateTuning deflate_tuning{};
    // Other nodes (nullptr: this node only). Must outlive the hub.
    Backplane* backplane = nullptr;
    // This node's id on the backplane; 0: a random one.
    std::uint64_t node_id = 0;
};

// Counters across threads (each read with a relaxed load: a consistent snapshot is not promised).
struct HubStats {
    std::uint64_t connections = 0;    // sessions joined to the hub
    std::uint64_t subscriptions = 0;  // (session, topic) pairs
    std::uint64_t topics = 0;         // (thread, topic) pairs with at least one subscriber
    std::uint64_t messages_in = 0;    // publish/broadcast calls accepted, plus backplane arrivals
    std::uint64_t bytes_in = 0;       // their payload bytes
    std::uint64_t messages_out = 0;   // frames queued to sessions
    std::uint64_t bytes_out = 0;      // their wire bytes
    std::uint64_t messages_dropped = 0;      // skipped for a full queue (policy drop)
    std::uint64_t slow_consumer_closes = 0;  // sessions closed for a full queue (policy close)
    std::uint64_t compressed_frames = 0;     // shared compressed variants made
    std::uint64_t messages_refused = 0;      // publishes and arrivals refused: inbox full
    std::uint64_t pending_bytes = 0;         // in inboxes, not yet delivered (all threads)
};

class Hub final : public BackplaneReceiver {
  public:
    // Most reactor threads one hub serves (thread indexes 0 .. kMaxThreads - 1).
    static constexpr unsigned kMaxThreads = 256;

    explicit Hub(HubOptions options = {});
    // Every attached thread must have been detached (the server stopped) before.
    ~Hub();
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    // ---- Wiring.
    // Sets options.on_thread_start / on_thread_stop to attach_thread / detach_thread (chaining
    // hooks already set) and, unless metrics_path is empty, answers GET metrics_path with
    // metrics_text() (other paths fall through to a route already set).
    void install(net::ServerOptions& options, std::string metrics_path = "/metrics");
    // On the reactor thread, before any session of it uses the hub / after its loop ended. Sets
    // host.thread_index() to `index`. One attach per index per hub.
    void attach_thread(unsigned index, net::Reactor& reactor, net::SessionHost& host);
    void detach_thread(unsigned index);

    // ---- Membership, on the session's thread. Each returns false when the session's thread is
    // not attached or a limit refuses it.
    // Adds the session to the hub (broadcasts reach it) without a topic; subscribe() joins too.
    bool join(net::WsSession& session);
    // True when newly subscribed (false also when already subscribed).
    bool subscribe(net::WsSession& session, std::string_view topic);
    // True when the session was subscribed.
    bool unsubscribe(net::WsSession& session, std::string_view topic);
    // Drops all of the session's subscriptions and its membership (done automatically when the
    // session ends).
    void leave(net::WsSession& session);
    bool subscribed(const net::WsSession& session, std::string_view topic) const;

    // ---- Publishing, any thread. False (nothing sent) for a topic longer than max_topic_length,
    // text that is not UTF-8, or when a reactor thread's inbox is full (max_pending_bytes: the
    // subscribers are not keeping up; try again later or tell the sender). A subscriber gets the
    // message once per publish.
    bool publish(std::string_view topic, proto::Opcode opcode,
                 std::span<const std::uint8_t> payload);
    bool publish(std::string_view topic, std::string_view text);
    // To every joined session on every thread (and node).
    bool broadcast(proto::Opcode opcode, std::span<const std::uint8_t> payload);

    // A message from another node (BackplaneReceiver); dropped when it is this node's own.
    void receive(const BackplaneMessage& message) override;

    // ---- Observation, any thread.
    std::uint64_t node_id() const noexcept { return node_id_; }
    HubStats stats() const noexcept;
    // Prometheus text exposition format 0.0.4 (metric names wsx_hub_*).
    std::string metrics_text() const;
    const HubOptions& options() const noexcept { return options_; }

    struct ThreadState;  // internal (hub.cpp)
    struct Message;      // internal (hub.cpp)

  private:
    bool publish_message(bool broadcast, std::string_view topic, proto::Opcode opcode,
                         std::span<const std::uint8_t> payload, std::uint64_t origin);
    ThreadState* local_state(const net::WsSession& session) const noexcept;

    HubOptions options_;
    std::uint64_t node_id_;
    // Set once per index by attach_thread, freed by ~Hub (publishers may still be reading one
    // after its thread detached).
    std::array<std::atomic<ThreadState*>, kMaxThreads> threads_{};
    // One past the highest index ever attached: publishers look no further.
    std::atomic<unsigned> thread_limit_{0};
    std::atomic<std::uint64_t> messages_in_{0};
    std::atomic<std::uint64_t> messages_refused_{0};
    std::atomic<std::uint64_t> bytes_in_{0};
};

}  // namespace wsx::hub
