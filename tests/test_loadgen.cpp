// The load generator's measuring parts (apps/loadgen.hpp): the latency histogram's buckets and
// percentiles, and the payload check that verifies every echo.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "loadgen.hpp"

using wsx::apps::check_bench_payload;
using wsx::apps::LatencyHistogram;
using wsx::apps::write_bench_payload;

TEST_CASE("latency buckets are exact below 64 ns and about 3% wide above") {
    for (std::uint64_t v = 0; v < 64; ++v) {
        const std::size_t b = LatencyHistogram::bucket_of(v);
        CHECK(LatencyHistogram::bucket_low(b) == v);
        CHECK(LatencyHistogram::bucket_high(b) == v);
    }
    std::uint64_t previous_bucket = LatencyHistogram::bucket_of(63);
    for (std::uint64_t v = 64; v < (std::uint64_t{1} << 40); v += v / 7 + 1) {
        const std::size_t b = LatencyHistogram::bucket_of(v);
        const std::uint64_t low = LatencyHistogram::bucket_low(b);
        const std::uint64_t high = LatencyHistogram::bucket_high(b);
        CHECK(low <= v);
        CHECK(v <= high);
        CHECK(high - low + 1 <= low / 32 + 1);
        CHECK(b >= previous_bucket);  // monotonic
        previous_bucket = b;
    }
}

TEST_CASE("latency percentiles of a uniform spread fall within a bucket of the exact value") {
    LatencyHistogram h;
    for (std::uint64_t v = 1; v <= 100'000; ++v)
        h.record(v * 1000);  // 1 us .. 100 ms
    CHECK(h.count() == 100'000);
    CHECK(h.max() == 100'000'000);
    for (const double q : {0.5, 0.9, 0.99}) {
        const double exact = q * 100'000'000.0;
        const auto got = static_cast<double>(h.quantile(q));
        CHECK(got >= exact * 0.96);
        CHECK(got <= exact * 1.04);
    }
    CHECK(h.quantile(1.0) <= h.max());
    CHECK(LatencyHistogram().quantile(0.5) == 0);
}

TEST_CASE("merged histograms add their counts and keep the larger maximum") {
    LatencyHistogram a, b;
    a.record(10);
    a.record(5'000);
    b.record(7'000'000);
    a.merge(b);
    CHECK(a.count() == 3);
    CHECK(a.max() == 7'000'000);
    CHECK(a.quantile(0.0) == 10);
}

TEST_CASE("an echo passes the check only with its own sequence number and the pattern intact") {
    std::vector<std::uint8_t> pattern(1000);
    for (std::size_t i = 0; i < pattern.size(); ++i)
        pattern[i] = static_cast<std::uint8_t>('a' + i % 26);
    std::vector<std::uint8_t> message = pattern;
    write_bench_payload(message.data(), message.size(), 0x1234abcdULL);
    CHECK(check_bench_payload(message.data(), message.size(), pattern.data(), 0x1234abcdULL));
    CHECK_FALSE(check_bench_payload(message.data(), message.size(), pattern.data(), 0x1234abceULL));
    message[999] ^= 1;  // a flipped bit at the far end of the payload
    CHECK_FALSE(check_bench_payload(message.data(), message.size(), pattern.data(), 0x1234abcdULL));
    message[999] ^= 1;
    message[16] ^= 1;  // the first byte after the sequence number
    CHECK_FALSE(check_bench_payload(message.data(), message.size(), pattern.data(), 0x1234abcdULL));
}

TEST_CASE("messages shorter than the sequence number carry its low hex digits") {
    std::vector<std::uint8_t> pattern(3, 'x');
    std::vector<std::uint8_t> message = pattern;
    write_bench_payload(message.data(), message.size(), 0xabc);
    CHECK(message == std::vector<std::uint8_t>{'a', 'b', 'c'});
    CHECK(check_bench_payload(message.data(), message.size(), pattern.data(), 0xabc));
    CHECK(check_bench_payload(message.data(), message.size(), pattern.data(), 0x1abc));  // wraps
    CHECK_FALSE(check_bench_payload(message.data(), message.size(), pattern.data(), 0xabd));
}
