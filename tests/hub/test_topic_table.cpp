// The per-thread subscription table: both indexes stay consistent through every removal order.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "hub/topic_table.hpp"

using wsx::hub::Member;
using wsx::hub::Topic;
using wsx::hub::TopicTable;

namespace {

// The table stores session pointers and never dereferences them: any distinct addresses do.
std::array<int, 64> session_storage{};
wsx::net::WsSession& fake_session(std::size_t i) {
    return *reinterpret_cast<wsx::net::WsSession*>(&session_storage[i]);
}

// Every member listed by a topic lists that topic at the right position, and vice versa.
void check_consistent(TopicTable& table, std::size_t members) {
    REQUIRE(table.members().size() == members);
    std::size_t subscriptions = 0;
    for (std::size_t i = 0; i < table.members().size(); ++i) {
        Member* member = table.members()[i];
        REQUIRE(member->index == i);
        for (const Member::Subscription& s : member->topics) {
            REQUIRE(s.position < s.topic->members.size());
            REQUIRE(s.topic->members[s.position] == member);
            REQUIRE(table.topic(s.topic->name) == s.topic);
            ++subscriptions;
        }
    }
    REQUIRE(table.subscription_count() == subscriptions);
}

}  // namespace

TEST_CASE("subscribe adds once, unsubscribe removes, and the last subscriber takes the topic") {
    TopicTable table;
    Member& a = table.join(fake_session(0), 1);
    Member& b = table.join(fake_session(1), 2);
    CHECK(&table.join(fake_session(0), 1) == &a);
    bool created = false;
    CHECK(table.subscribe(a, "t", 10, created) == TopicTable::Subscribed::added);
    CHECK(created);
    CHECK(table.subscribe(a, "t", 10, created) == TopicTable::Subscribed::already);
    CHECK(table.subscribe(b, "t", 10, created) == TopicTable::Subscribed::added);
    CHECK_FALSE(created);
    CHECK(table.topic_count() == 1);
    CHECK(table.topic("t")->members.size() == 2);
    bool removed = false;
    CHECK(table.unsubscribe(a, "t", removed));
    CHECK_FALSE(removed);
    CHECK_FALSE(table.unsubscribe(a, "t", removed));
    CHECK(table.unsubscribe(b, "t", removed));
    CHECK(removed);
    CHECK(table.topic("t") == nullptr);
    CHECK(table.topic_count() == 0);
    check_consistent(table, 2);
}

TEST_CASE("a member cannot pass its subscription limit") {
    TopicTable table;
    Member& a = table.join(fake_session(0), 1);
    bool created = false;
    CHECK(table.subscribe(a, "1", 2, created) == TopicTable::Subscribed::added);
    CHECK(table.subscribe(a, "2", 2, created) == TopicTable::Subscribed::added);
    CHECK(table.subscribe(a, "3", 2, created) == TopicTable::Subscribed::over_limit);
    CHECK(table.topic("3") == nullptr);
}

TEST_CASE("leave drops every subscription and reports the topics it emptied") {
    TopicTable table;
    bool created = false;
    for (std::size_t i = 0; i < 40; ++i) {
        Member& m = table.join(fake_session(i), i + 1);
        table.subscribe(m, "all", 100, created);
        table.subscribe(m, "own" + std::to_string(i), 100, created);
        table.subscribe(m, "mod" + std::to_string(i % 3), 100, created);
    }
    check_consistent(table, 40);
    // Leave in a scrambled order so holes open at the front, middle and back.
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < 40; ++i)
        order.push_back((i * 17) % 40);
    std::vector<std::string> emptied;
    std::size_t left = 40;
    for (const std::size_t i : order) {
        table.leave(i + 1, [&](std::string_view topic) { emptied.emplace_back(topic); });
        --left;
        check_consistent(table, left);
        CHECK(table.find(i + 1) == nullptr);
    }
    CHECK(table.topic_count() == 0);
    // 40 own topics, 3 mod topics and "all", each reported once.
    CHECK(emptied.size() == 44);
    std::sort(emptied.begin(), emptied.end());
    CHECK(std::adjacent_find(emptied.begin(), emptied.end()) == emptied.end());
    table.leave(99, nullptr);  // unknown: nothing happens
}

TEST_CASE("unsubscribing from the middle keeps every position right") {
    TopicTable table;
    bool created = false;
    std::vector<Member*> members;
    for (std::size_t i = 0; i < 10; ++i) {
        Member& m = table.join(fake_session(i), i + 1);
        table.subscribe(m, "x", 10, created);
        table.subscribe(m, "y", 10, created);
        members.push_back(&m);
    }
    bool removed = false;
    for (const std::size_t i : {4U, 0U, 9U, 5U}) {
        CHECK(table.unsubscribe(*members[i], "x", removed));
        check_consistent(table, 10);
    }
    CHECK(table.topic("x")->members.size() == 6);
    CHECK(table.subscribed(*members[1], "x"));
    CHECK_FALSE(table.subscribed(*members[4], "x"));
}
