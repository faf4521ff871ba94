// A Backplane over Redis pub/sub (hiredis' async API on a wsx reactor of its own): hubs on many
// machines share topics through one Redis server.
//
//   wsx::hub::RedisBackplane redis({.host = "10.0.0.5", .port = 6379});
//   wsx::hub::Hub hub({.backplane = &redis});           // the backplane outlives the hub
//
// Channels: one Redis channel per topic, "<prefix>:t:<topic>", and "<prefix>:broadcast" for
// Hub::broadcast. Redis routes a PUBLISH to exactly the connections subscribed to its channel, so a
// node receives only the topics it has local subscribers for and Redis does the filtering. A
// sharded scheme (N channels, topic hashed onto one) would cap the number of SUBSCRIBEs a node
// holds, but every node would then receive, decode and discard the messages of every topic that
// shares a shard with one of its own: the traffic a node receives would grow with the cluster's
// total instead of with its own rooms. Redis keeps its channels in a hash table (a channel costs a
// few hundred bytes), so a channel per topic scales to the number of rooms a chat has; the prefix
// keeps several wsx clusters (or other users) on one Redis apart.
//
// Envelope (the PUBLISH payload, see encode_envelope): version byte, kind byte (opcode in bits
// 0-3, bit 7 = broadcast), the origin node id as 8 bytes big-endian, then the payload unchanged:
// 10 bytes of overhead. The topic travels as the channel name. The origin lets the hub drop its
// own echo (BackplaneMessage::origin).
//
// Threads: publish() (any thread) encodes the envelope and posts it to the Redis thread through
// the reactor's lock-free task queue (net::Reactor::post), so it never blocks and a thread's
// publishes are sent in the order it made them. subscribe()/unsubscribe() are posted the same way;
// the Redis thread counts them per topic and SUBSCRIBEs a channel while its count is above zero.
// Two connections: one in subscribe mode, one for PUBLISH (a subscribed connection may not
// publish).
//
// Failure: when either connection drops (or cannot be made) both are closed and retried with
// exponential backoff and jitter; the new subscriber connection SUBSCRIBEs every current topic.
// Publishes during the outage are dropped and counted (at-most-once: Redis pub/sub keeps no
// history), as are publishes beyond max_pending while Redis is slower than the publishers. Local
// delivery is the hub's and goes on regardless. Each disconnect and reconnect is logged.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "hub/backplane.hpp"
#include "net/reactor.hpp"

namespace wsx::hub {

// ---- The envelope codec (pure functions, for the backplane and its tests).
inline constexpr std::uint8_t kEnvelopeVersion = 1;
inline constexpr std::size_t kEnvelopeHeaderSize = 10;

// Appends the envelope of `message` (its topic excluded) to `out`.
void encode_envelope(const BackplaneMessage& message, std::string& out);
// The message in `bytes` (topic empty; payload points into `bytes`), or nullopt for a wrong
// version, an opcode other than text/binary, or fewer than kEnvelopeHeaderSize bytes.
std::optional<BackplaneMessage> decode_envelope(std::span<const std::uint8_t> bytes);

// ---- redis://[[user]:password@]host[:port][/prefix] (port 6379 and prefix "wsx" when left
// out; an IPv6 host in brackets; user and password percent-decoded, RFC 3986 §2.1). Query
// strings, rediss:// and other schemes are refused.
struct RedisUrl {
    std::string host;
    std::uint16_t port = 6379;
    std::string prefix = "wsx";
    std::string username;  // empty: AUTH with the password alone (the "default" user)
    std::string password;  // empty: no AUTH
};
// nullopt and a reason in *error for anything else.
std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string* error = nullptr);

struct RedisOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    // Channel names start with it: "<prefix>:t:<topic>", "<prefix>:broadcast".
    std::string prefix = "wsx";
    // When the password is set, each connection sends AUTH [username] password before anything
    // else; a refusal is logged and retried like a failed connect.
    std::string username;
    std::string password;
    // Publishes waiting for the Redis thread or for Redis' reply; beyond it a publish is dropped
    // (and counted) instead of growing memory without bound.
    std::size_t max_pending = 65536;
    // A connect attempt that has not completed by then is abandoned and retried.
    std::chrono::milliseconds connect_timeout{2000};
    // Delay before reconnect attempt n (from 1): min(reconnect_max, reconnect_min * 2^(n-1)),
    // then a random point in its upper half (jitter, so restarted nodes do not come back in step).
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    // One line per disconnect / reconnect; default: stderr, prefixed "wsx redis: ".
    std::function<void(const std::string&)> log;
};

// Counters (relaxed loads; not a consistent snapshot).
struct RedisStats {
    bool connected = false;                 // both connections up and subscribed
    std::uint64_t reconnects = 0;           // successful connections after the first
    std::uint64_t published = 0;            // PUBLISH commands sent
    std::uint64_t received = 0;             // messages from Redis handed to the hub
    std::uint64_t dropped_outage = 0;       // publishes dropped while disconnected
    std::uint64_t dropped_overflow = 0;     // publishes dropped beyond max_pending
    std::uint64_t invalid = 0;              // messages on our channels with a bad envelope
    std::uint64_t subscribed_channels = 0;  // channels the subscriber connection holds
    std::uint64_t outage_ms = 0;            // time spent disconnected, over all finished outages
};

class RedisBackplane final : public Backplane {
  public:
    // Starts the Redis thread, which connects (and keeps reconnecting) in the background;
    // std::system_error when no reactor or thread can be made.
    explicit RedisBackplane(RedisOptions options = {});
    ~RedisBackplane() override;
    RedisBackplane(const RedisBackplane&) = delete;
    RedisBackplane& operator=(const RedisBackplane&) = delete;

    void set_receiver(BackplaneReceiver* receiver) override;
    void publish(const BackplaneMessage& message) override;
    void subscribe(std::string_view topic) override;
    void unsubscribe(std::string_view topic) override;

    // Any thread.
    RedisStats stats() const noexcept;
    // Prometheus text exposition format 0.0.4 (metric names wsx_redis_*), for /metrics.
    std::string metrics_text() const;
    // Blocks until the Redis thread has run everything posted to it so far (not from it).
    void sync();
    // Blocks until connected or `timeout` passed; whether connected.
    bool wait_connected(std::chrono::milliseconds timeout) const;

    const RedisOptions& options() const noexcept { return options_; }
    std::string topic_channel(std::string_view topic) const;
    std::string broadcast_channel() const;

    struct State;  // internal (redis_backplane.cpp)

  private:
    RedisOptions options_;
    std::unique_ptr<net::Reactor> reactor_;
    std::unique_ptr<State> state_;
    std::thread thread_;
};

}  // namespace wsx::hub
