// A display reporter that passes every run on to Google Benchmark's own reporter and, at the end,
// prints what the library cannot: each benchmark's throughput as a ratio to memcpy of the same
// payload size, measured in the same run, and whether the project's targets are met.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace wsx::bench {

// A throughput the issue sets for a benchmark: at least `frames_per_second` or at least
// `bytes_per_second` (whichever is nonzero).
struct Target {
    std::string benchmark;  // "receive/binary/16"
    double frames_per_second = 0;
    double bytes_per_second = 0;
};

class RatioReporter : public benchmark::BenchmarkReporter {
  public:
    // `display` does the usual output and is not owned (Google Benchmark's default display
    // reporter lives for the whole program).
    RatioReporter(benchmark::BenchmarkReporter* display, std::vector<Target> targets);

    bool ReportContext(const Context& context) override;
    void ReportRuns(const std::vector<Run>& runs) override;
    void Finalize() override;

    // True when a benchmark reported an error (a check inside it failed) or a receive benchmark
    // allocated: main turns that into a failing exit status, so the smoke test catches it.
    bool failed() const noexcept { return failed_; }

  private:
    struct Row {
        double bytes_per_second = 0;
        double frames_per_second = 0;
        double allocs_per_frame = -1;  // -1: not measured
    };

    void print_table(std::ostream& out) const;

    benchmark::BenchmarkReporter* display_;
    std::vector<Target> targets_;
    std::vector<std::string> order_;  // benchmark names in the order they ran
    std::map<std::string, Row> rows_;
    bool failed_ = false;
};

}  // namespace wsx::bench
