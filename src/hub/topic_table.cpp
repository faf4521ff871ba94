#include "hub/topic_table.hpp"

#include <algorithm>
#include <utility>

namespace wsx::hub {

Member& TopicTable::join(net::WsSession& session, std::uint64_t id) {
    auto [it, inserted] = by_id_.try_emplace(id);
    if (inserted) {
        it->second = std::make_unique<Member>();
        it->second->session = &session;
        it->second->index = members_.size();
        members_.push_back(it->second.get());
    }
    return *it->second;
}

Member* TopicTable::find(std::uint64_t id) noexcept {
    const auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second.get();
}

Topic* TopicTable::topic(std::string_view name) noexcept {
    const auto it = topics_.find(name);
    return it == topics_.end() ? nullptr : &it->second;
}

TopicTable::Subscribed TopicTable::subscribe(Member& member, std::string_view name,
                                             std::size_t max_per_member, bool& created) {
    created = false;
    if (subscribed(member, name)) return Subscribed::already;
    if (member.topics.size() >= max_per_member) return Subscribed::over_limit;
    auto it = topics_.find(name);
    if (it == topics_.end()) {
        it = topics_.emplace(std::string(name), Topic{}).first;
        it->second.name = it->first;
        created = true;
    }
    Topic& topic = it->second;
    member.topics.push_back({&topic, topic.members.size()});
    topic.members.push_back(&member);
    ++subscriptions_;
    return Subscribed::added;
}

bool TopicTable::subscribed(const Member& member, std::string_view name) const noexcept {
    // A member holds few topics; a linear scan beats hashing here.
    return std::any_of(member.topics.begin(), member.topics.end(),
                       [&](const Member::Subscription& s) { return s.topic->name == name; });
}

bool TopicTable::unsubscribe(Member& member, std::string_view name, bool& removed) {
    removed = false;
    for (std::size_t i = 0; i < member.topics.size(); ++i) {
        if (member.topics[i].topic->name == name) {
            removed = drop(member, i);
            return true;
        }
    }
    return false;
}

bool TopicTable::drop(Member& member, std::size_t at) {
    const Member::Subscription gone = member.topics[at];
    member.topics[at] = member.topics.back();
    member.topics.pop_back();
    --subscriptions_;

    Topic& topic = *gone.topic;
    Member* moved = topic.members.back();
    topic.members[gone.position] = moved;
    topic.members.pop_back();
    if (moved != &member) {
        // The member that took the hole records its new position in this topic.
        for (Member::Subscription& s : moved->topics) {
            if (s.topic == &topic) {
                s.position = gone.position;
                break;
            }
        }
    }
    if (!topic.members.empty()) return false;
    topics_.erase(topics_.find(std::string_view(topic.name)));
    return true;
}

void TopicTable::leave(std::uint64_t id,
                       const std::function<void(std::string_view)>& topic_removed) {
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    Member& member = *it->second;
    while (!member.topics.empty()) {
        const Topic& topic = *member.topics.back().topic;
        if (topic.members.size() > 1 || !topic_removed) {
            drop(member, member.topics.size() - 1);
            continue;
        }
        // The name dies with the topic: keep a copy to report.
        const std::string name = topic.name;
        drop(member, member.topics.size() - 1);
        topic_removed(name);
    }
    Member* last = members_.back();
    members_[member.index] = last;
    last->index = member.index;
    members_.pop_back();
    by_id_.erase(it);
}

}  // namespace wsx::hub
