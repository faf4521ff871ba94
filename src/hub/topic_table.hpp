// The subscriptions of one reactor thread: which of its sessions are in the hub and which topics
// each one holds. Owned by that thread alone, so nothing here is atomic or locked.
//
// Both directions are indexed so every change is O(1) in the number of subscribers: a topic lists
// its members, a member lists its topics with its position in each topic's list, and removal
// swaps the last entry into the hole (subscriber order within a topic is not kept, and does not
// need to be: ordering is a property of each subscriber's own queue).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wsx::net {
class WsSession;
}  // namespace wsx::net

namespace wsx::hub {

struct Topic;

struct Member {
    net::WsSession* session = nullptr;
    std::size_t index = 0;  // position in TopicTable::members()
    struct Subscription {
        Topic* topic;
        std::size_t position;  // in topic->members
    };
    std::vector<Subscription> topics;
    bool corked = false;  // queued to in the current delivery batch, not yet written
};

struct Topic {
    std::string name;
    std::vector<Member*> members;
};

class TopicTable {
  public:
    enum class Subscribed : std::uint8_t { added, already, over_limit };

    // The member for a session, made on first use.
    Member& join(net::WsSession& session, std::uint64_t id);
    Member* find(std::uint64_t id) noexcept;

    // `created` is set when this made the topic (its first subscriber on this thread).
    Subscribed subscribe(Member& member, std::string_view topic, std::size_t max_per_member,
                         bool& created);
    // `removed` is set when the topic lost its last subscriber on this thread (and is gone).
    bool unsubscribe(Member& member, std::string_view topic, bool& removed);
    bool subscribed(const Member& member, std::string_view topic) const noexcept;
    // Drops every subscription and the member; calls `topic_removed` for each topic that lost its
    // last subscriber. The member is freed.
    void leave(std::uint64_t id, const std::function<void(std::string_view)>& topic_removed);

    Topic* topic(std::string_view name) noexcept;
    std::span<Member* const> members() const noexcept { return members_; }
    std::size_t topic_count() const noexcept { return topics_.size(); }
    std::size_t subscription_count() const noexcept { return subscriptions_; }

  private:
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const noexcept {
            return std::hash<std::string_view>{}(name);
        }
    };

    // Removes subscription `at` of `member`; true when its topic became empty (and was erased).
    bool drop(Member& member, std::size_t at);

    std::unordered_map<std::string, Topic, NameHash, std::equal_to<>> topics_;
    std::unordered_map<std::uint64_t, std::unique_ptr<Member>> by_id_;
    std::vector<Member*> members_;
    std::size_t subscriptions_ = 0;
};

}  // namespace wsx::hub
