// Receives N masked client frames once, in the server role, for callgrind. bench/callgrind.sh
// collects instructions only inside wsx_receive_all, for two values of N, and divides the
// difference by the difference in N: the cost of one frame, free of setup and first-call costs.
//
//   callgrind_receive <binary|text_ascii|text_mixed> <payload bytes> <frames>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#include "frame_batch.hpp"
#include "proto/connection.hpp"

namespace {

struct CountingHandler {
    std::uint64_t frames = 0;
    void on_message(wsx::proto::Opcode, std::span<const std::uint8_t>) noexcept { ++frames; }
};

bool parse_count(const char* text, std::size_t& out) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(text, &end, 10);
    if (*text == '\0' || *end != '\0') return false;
    out = static_cast<std::size_t>(n);
    return true;
}

}  // namespace

// Unmangled and out of line so that callgrind's --toggle-collect can name it.
extern "C" [[gnu::noinline]] std::uint64_t wsx_receive_all(wsx::proto::Connection* conn,
                                                           std::uint8_t* data, std::size_t size) {
    CountingHandler handler;
    const wsx::proto::ReceiveResult r = conn->receive({data, size}, handler);
    return r.error == wsx::proto::Error::none && r.consumed == size ? handler.frames : 0;
}

int main(int argc, char** argv) {
    using wsx::bench::Payload;
    std::size_t size = 0;
    std::size_t count = 0;
    const std::string_view kind_name = argc == 4 ? argv[1] : "";
    const Payload kind = kind_name == "binary"       ? Payload::binary
                         : kind_name == "text_ascii" ? Payload::ascii
                                                     : Payload::mixed_utf8;
    if (argc != 4 || (kind == Payload::mixed_utf8 && kind_name != "text_mixed") ||
        !parse_count(argv[2], size) || !parse_count(argv[3], count)) {
        std::fprintf(stderr,
                     "usage: callgrind_receive <binary|text_ascii|text_mixed> <payload bytes> "
                     "<frames>\n");
        return 2;
    }
    wsx::bench::FrameBatch batch = wsx::bench::make_batch(kind, size, count, true);
    wsx::proto::Connection conn(wsx::proto::Role::server);
    const std::uint64_t delivered = wsx_receive_all(&conn, batch.wire.data(), batch.wire.size());
    std::printf("%s %zu bytes: %llu of %zu frames delivered\n", argv[1], size,
                static_cast<unsigned long long>(delivered), count);
    return delivered == count ? 0 : 1;
}
