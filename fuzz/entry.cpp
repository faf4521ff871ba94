// The libFuzzer entry point; meson compiles this file once per harness with WSX_FUZZ_RUN naming
// the harness body to call.
#include <cstddef>
#include <cstdint>

#include "harnesses.hpp"

#ifndef WSX_FUZZ_RUN
#error "build with -DWSX_FUZZ_RUN=run_NAME"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return wsx::fuzz::WSX_FUZZ_RUN(data, size);
}
