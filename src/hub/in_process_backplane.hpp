// A Backplane inside one process: several hubs (nodes) linked by a bus that runs on its own
// thread, the way a Redis backplane runs its connection on one. Publishes, subscribes and
// unsubscribes are posted to the bus thread (lock-free, Reactor::post); the bus keeps each node's
// topic counts and hands a message to every other node that listens to its topic (every other
// node, for a broadcast). The publishing node never gets its own message back.
//
//   wsx::hub::InProcessBus bus;
//   wsx::hub::Hub a({.backplane = &bus.add_node()});
//   wsx::hub::Hub b({.backplane = &bus.add_node()});
//   // a.publish("room", ...) reaches b's subscribers of "room" too.
//
// The bus must outlive the hubs linked to it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "hub/backplane.hpp"
#include "net/reactor.hpp"

namespace wsx::hub {

class InProcessBus {
  public:
    // Starts the bus thread (std::system_error when it cannot: no reactor, no thread).
    InProcessBus();
    ~InProcessBus();
    InProcessBus(const InProcessBus&) = delete;
    InProcessBus& operator=(const InProcessBus&) = delete;

    // A new node, valid as long as the bus. Not thread-safe: add the nodes before using them.
    Backplane& add_node();

    // Messages the bus handed to node `index` (in add_node order); any thread.
    std::uint64_t delivered_to(std::size_t index) const noexcept;
    // Runs everything posted to the bus so far before returning (for tests); not from the bus.
    void sync();

    class Node;

  private:
    std::unique_ptr<net::Reactor> reactor_;
    std::vector<std::unique_ptr<Node>> nodes_;
    std::thread thread_;
};

}  // namespace wsx::hub
