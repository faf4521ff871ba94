// Every committed fuzz input (seeds and the reproducers of fixed bugs, fuzz/corpus/NAME/*) run
// through its harness body, so a regression fails the normal suite without libFuzzer. A harness
// aborts on a broken invariant, naming the input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../fuzz/harnesses.hpp"
#include "../fuzz/support.hpp"

// UBSan reports are fatal in every test program: see tests/main.cpp.

namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = WSX_FUZZ_CORPUS_DIR;

std::vector<std::uint8_t> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<fs::path> inputs_of(std::string_view harness) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(kCorpus / std::string(harness))) {
        if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

TEST_CASE("every fuzz corpus directory belongs to a harness") {
    for (const auto& entry : fs::directory_iterator(kCorpus)) {
        const std::string name = entry.path().filename().string();
        INFO("fuzz/corpus/" << name);
        CHECK(std::any_of(wsx::fuzz::kHarnesses.begin(), wsx::fuzz::kHarnesses.end(),
                          [&](const auto& h) { return h.name == name; }));
    }
}

TEST_CASE("every committed fuzz input keeps its harness's invariants") {
    for (const auto& harness : wsx::fuzz::kHarnesses) {
        INFO("harness " << std::string(harness.name));
        const std::vector<fs::path> files = inputs_of(harness.name);
        // Each harness ships seeds; an empty directory means the corpus went missing.
        CHECK(!files.empty());
        for (const fs::path& file : files) {
            const std::vector<std::uint8_t> input = read_file(file);
            // A sanitizer ends the process without doctest's context: name the input first.
            std::fprintf(stderr, "replaying %s\n", file.string().c_str());
            wsx::fuzz::set_input_label(file.string());
            INFO(file.string());
            CHECK(harness.run(input.data(), input.size()) == 0);
        }
        wsx::fuzz::set_input_label({});
    }
}
