// The fuzz harness bodies. Each takes one fuzzer input and returns 0, aborting on a crash or a
// broken invariant. The libFuzzer entry points (entry.cpp) and the corpus replay test
// (tests/test_fuzz_regressions.cpp) both call these, so a committed reproducer is checked by the
// normal test suite under every compiler.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace wsx::fuzz {

int run_frame(const std::uint8_t* data, std::size_t size);
int run_connection_server(const std::uint8_t* data, std::size_t size);
int run_connection_client(const std::uint8_t* data, std::size_t size);
int run_handshake_request(const std::uint8_t* data, std::size_t size);
int run_handshake_response(const std::uint8_t* data, std::size_t size);
int run_extensions(const std::uint8_t* data, std::size_t size);
int run_close(const std::uint8_t* data, std::size_t size);
int run_utf8(const std::uint8_t* data, std::size_t size);
int run_mask(const std::uint8_t* data, std::size_t size);
int run_inflate(const std::uint8_t* data, std::size_t size);

struct Harness {
    std::string_view name;  // also the corpus directory fuzz/corpus/NAME and fuzz/NAME.dict
    int (*run)(const std::uint8_t* data, std::size_t size);
};

inline constexpr std::array<Harness, 10> kHarnesses = {{
    {"frame", &run_frame},
    {"connection_server", &run_connection_server},
    {"connection_client", &run_connection_client},
    {"handshake_request", &run_handshake_request},
    {"handshake_response", &run_handshake_response},
    {"extensions", &run_extensions},
    {"close", &run_close},
    {"utf8", &run_utf8},
    {"mask", &run_mask},
    {"inflate", &run_inflate},
}};

}  // namespace wsx::fuzz
