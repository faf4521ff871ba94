#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "proto/output_queue.hpp"

using namespace wsx::proto;

namespace {

std::vector<std::uint8_t> bytes_of(std::string_view s) {
    return {s.begin(), s.end()};
}

// Everything the queue would write, in order, read through gather().
std::string drain_view(const OutputQueue& q) {
    std::array<IoSlice, 64> slices{};
    const std::size_t n = q.gather(slices);
    std::string all;
    for (std::size_t i = 0; i < n; ++i) {
        all.append(static_cast<const char*>(slices[i].data), slices[i].size);
    }
    return all;
}

}  // namespace

TEST_CASE("consecutive copied appends coalesce into one slice") {
    OutputQueue q;
    q.append(bytes_of("abc"));
    q.append(bytes_of("def"));
    std::memcpy(q.append_uninitialized(3), "ghi", 3);
    std::array<IoSlice, 8> slices{};
    CHECK(q.gather(slices) == 1);
    CHECK(q.size() == 9);
    CHECK(drain_view(q) == "abcdefghi");
}

TEST_CASE("a referenced payload is not copied") {
    OutputQueue q;
    const std::string payload = "referenced bytes";
    q.append(bytes_of("H"));
    q.append_reference({reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()});
    q.append(bytes_of("T"));
    std::array<IoSlice, 8> slices{};
    REQUIRE(q.gather(slices) == 3);
    CHECK(slices[1].data == payload.data());
    CHECK(drain_view(q) == "Hreferenced bytesT");
}

TEST_CASE("a shared buffer is kept alive until consumed, then released") {
    OutputQueue q;
    auto frame = SharedBuffer::copy_of(bytes_of("shared"));
    q.append_reference(frame.bytes(), frame);
    CHECK(frame.use_count() == 2);
    q.consume(3);
    CHECK(frame.use_count() == 2);
    CHECK(drain_view(q) == "red");
    q.consume(3);
    CHECK(frame.use_count() == 1);
    CHECK(q.empty());
}

TEST_CASE("gather fills at most the slices it is given") {
    OutputQueue q;
    std::vector<std::string> parts{"a", "b", "c", "d"};
    for (auto& p : parts) {
        q.append_reference({reinterpret_cast<const std::uint8_t*>(p.data()), p.size()});
    }
    std::array<IoSlice, 2> slices{};
    CHECK(q.gather(slices) == 2);
    CHECK(q.gather({}) == 0);
}

TEST_CASE("partial consumes at every byte give back exactly the rest") {
    std::string expected;
    OutputQueue q;
    const std::string ref = "0123456789";
    for (int i = 0; i < 5; ++i) {
        const std::string own = "own" + std::to_string(i);
        q.append(bytes_of(own));
        q.append_reference({reinterpret_cast<const std::uint8_t*>(ref.data()), ref.size()});
        expected += own + ref;
    }
    while (!expected.empty()) {
        REQUIRE(drain_view(q) == expected);
        REQUIRE(q.size() == expected.size());
        q.consume(1);
        expected.erase(0, 1);
    }
    CHECK(q.empty());
    std::array<IoSlice, 4> slices{};
    CHECK(q.gather(slices) == 0);
}

TEST_CASE("a queue that never drains keeps order across compaction") {
    // Write a steady stream while consuming a bit less than is appended, so the queue never
    // empties and compaction has to slide live bytes and segments to the front.
    std::mt19937 rng(7);
    OutputQueue q;
    std::string expected;
    std::uint8_t next = 0;
    for (int round = 0; round < 3000; ++round) {
        std::vector<std::uint8_t> chunk(1 + rng() % 300);
        for (auto& b : chunk)
            b = next++;
        q.append(chunk);
        expected.append(chunk.begin(), chunk.end());
        const std::size_t take = std::min<std::size_t>(expected.size() - 1, rng() % 300);
        q.consume(take);
        expected.erase(0, take);
        if (round % 97 == 0) REQUIRE(drain_view(q) == expected);
    }
    CHECK(drain_view(q) == expected);
    CHECK(q.size() == expected.size());
}

TEST_CASE("clear drops everything") {
    OutputQueue q;
    auto frame = SharedBuffer::copy_of(bytes_of("x"));
    q.append(bytes_of("abc"));
    q.append_reference(frame.bytes(), frame);
    q.clear();
    CHECK(q.empty());
    CHECK(frame.use_count() == 1);
    q.append(bytes_of("new"));
    CHECK(drain_view(q) == "new");
}
