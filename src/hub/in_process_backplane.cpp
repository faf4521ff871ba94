#include "hub/in_process_backplane.hpp"

#include <future>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace wsx::hub {

class InProcessBus::Node final : public Backplane {
  public:
    explicit Node(InProcessBus& bus) : bus_(bus) {}

    void set_receiver(BackplaneReceiver* receiver) override {
        // Synchronous: once this returns the bus thread no longer calls the old receiver.
        run_on_bus([this, receiver] { receiver_ = receiver; });
    }

    void publish(const BackplaneMessage& message) override {
        // The spans die with the call: the task owns copies.
        bus_.reactor_->post(
            [this, origin = message.origin, broadcast = message.broadcast, opcode = message.opcode,
             topic = std::string(message.topic),
             payload = std::vector<std::uint8_t>(message.payload.begin(), message.payload.end())] {
                const BackplaneMessage copy{origin, broadcast, opcode, topic, payload};
                for (const auto& node : bus_.nodes_) {
                    if (node.get() != this) node->offer(copy);
                }
            });
    }

    void subscribe(std::string_view topic) override {
        bus_.reactor_->post([this, topic = std::string(topic)] { ++interest_[topic]; });
    }

    void unsubscribe(std::string_view topic) override {
        bus_.reactor_->post([this, topic = std::string(topic)] {
            const auto it = interest_.find(topic);
            if (it != interest_.end() && --it->second == 0) interest_.erase(it);
        });
    }

    std::uint64_t delivered() const noexcept { return delivered_.load(std::memory_order_relaxed); }

    template <class F>
    void run_on_bus(F function) {
        // Shared: the waiter may return (and leave) while set_value() is still finishing.
        auto done = std::make_shared<std::promise<void>>();
        std::future<void> finished = done->get_future();
        bus_.reactor_->post([function = std::move(function), done] {
            function();
            done->set_value();
        });
        finished.wait();
    }

  private:
    // Bus thread.
    void offer(const BackplaneMessage& message) {
        if (receiver_ == nullptr) return;
        if (!message.broadcast && interest_.find(std::string(message.topic)) == interest_.end()) {
            return;
        }
        delivered_.store(delivered_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        receiver_->receive(message);
    }

    InProcessBus& bus_;
    // Bus thread only.
    BackplaneReceiver* receiver_ = nullptr;
    std::unordered_map<std::string, std::size_t> interest_;
    std::atomic<std::uint64_t> delivered_{0};
};

InProcessBus::InProcessBus() {
    net::SysResult<std::unique_ptr<net::Reactor>> reactor = net::Reactor::create();
    if (!reactor.ok()) throw std::system_error(reactor.error, std::generic_category(), "reactor");
    reactor_ = std::move(reactor.value);
    thread_ = std::thread([this] { static_cast<void>(reactor_->run()); });
}

InProcessBus::~InProcessBus() {
    reactor_->stop();
    thread_.join();
}

Backplane& InProcessBus::add_node() {
    nodes_.push_back(std::make_unique<Node>(*this));
    return *nodes_.back();
}

std::uint64_t InProcessBus::delivered_to(std::size_t index) const noexcept {
    return index < nodes_.size() ? nodes_[index]->delivered() : 0;
}

void InProcessBus::sync() {
    if (!nodes_.empty()) nodes_.front()->run_on_bus([] {});
}

}  // namespace wsx::hub
