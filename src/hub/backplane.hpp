// The link between hubs on several nodes (processes or machines): what one node publishes reaches
// the subscribers of every other node. A Redis (or any pub/sub bus) implementation plugs in here;
// InProcessBus (in_process_backplane.hpp) links hubs inside one process.
//
// Contract, from the hub's side:
//   - publish() is called once for every message published on this node (by Hub::publish or
//     Hub::broadcast), from the publishing thread, any thread. It must not block and must keep
//     the order of the calls made by one thread (so per-publisher ordering survives the hop).
//   - subscribe(topic) / unsubscribe(topic) are called from reactor threads, once per thread on
//     which the topic gains its first / loses its last local subscriber. An implementation counts
//     them per topic and listens to the topic while the count is above zero, so a node receives
//     only topics it has local subscribers for (broadcasts always reach every node).
//   - Messages from other nodes go to the receiver set by set_receiver() (Hub::receive), from any
//     thread. A message carries the id of the node that published it; the hub drops its own
//     (buses like Redis echo them back), so nothing is delivered twice locally.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "proto/frame.hpp"

namespace wsx::hub {

struct BackplaneMessage {
    std::uint64_t origin = 0;  // node id of the publishing hub
    bool broadcast = false;    // true: to every connection of every node; topic is empty
    proto::Opcode opcode = proto::Opcode::text;
    std::string_view topic;
    std::span<const std::uint8_t> payload;
};

class BackplaneReceiver {
  public:
    // Any thread; the spans are valid only during the call.
    virtual void receive(const BackplaneMessage& message) = 0;

  protected:
    ~BackplaneReceiver() = default;
};

class Backplane {
  public:
    virtual ~Backplane() = default;

    // The hub registers itself when constructed and unregisters (nullptr) when destroyed; once
    // set_receiver(nullptr) returns, the old receiver must not be called any more.
    virtual void set_receiver(BackplaneReceiver* receiver) = 0;
    virtual void publish(const BackplaneMessage& message) = 0;
    virtual void subscribe(std::string_view topic) = 0;
    virtual void unsubscribe(std::string_view topic) = 0;
};

}  // namespace wsx::hub
