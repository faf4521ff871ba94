#include "micro_report.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <utility>

namespace wsx::bench {

namespace {

// "receive/binary/16" → "16": every family ends in the payload size.
std::string size_of(const std::string& name) {
    const auto slash = name.rfind('/');
    return slash == std::string::npos ? std::string() : name.substr(slash + 1);
}

// The memcpy run a benchmark is compared with: same payload size and the same kind of working
// set. The batch benchmarks walk a receive-buffer-sized batch (mostly in L2); the hot and send
// ones reuse a few KiB that stay in L1, and so does memcpy_hot.
std::string memcpy_reference(const std::string& name) {
    const bool hot = name.find("_hot/") != std::string::npos || name.rfind("send/", 0) == 0;
    return (hot ? "memcpy_hot/" : "memcpy/") + size_of(name);
}

double counter(const benchmark::BenchmarkReporter::Run& run, const char* name, double fallback) {
    const auto it = run.counters.find(name);
    return it == run.counters.end() ? fallback : static_cast<double>(it->second.value);
}

std::string format(const char* spec, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, spec, value);
    return buf;
}

}  // namespace

RatioReporter::RatioReporter(benchmark::BenchmarkReporter* display, std::vector<Target> targets)
    : display_(display), targets_(std::move(targets)) {}

bool RatioReporter::ReportContext(const Context& context) {
    return display_->ReportContext(context);
}

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
    display_->ReportRuns(runs);
    for (const Run& run : runs) {
        if (run.error_occurred) {
            failed_ = true;
            continue;
        }
        // With --benchmark_repetitions the best repetition stands for the benchmark: on a shared
        // machine the others measured the neighbours too. Aggregates add nothing to that.
        if (run.run_type != Run::RT_Iteration) continue;
        const std::string& args = run.run_name.args;
        const std::string name = run.run_name.function_name + (args.empty() ? "" : "/" + args);
        Row row;
        row.bytes_per_second = counter(run, "bytes_per_second", 0);
        // The handshake benchmark counts handshakes where the others count frames.
        row.frames_per_second = counter(run, "frames", counter(run, "handshakes", 0));
        row.allocs_per_frame =
            counter(run, "allocs_per_frame", counter(run, "allocs_per_handshake", -1));
        if (name.rfind("receive", 0) == 0 && row.allocs_per_frame > 0) failed_ = true;
        const auto [it, added] = rows_.try_emplace(name, row);
        if (added) {
            order_.push_back(name);
        } else if (row.frames_per_second > it->second.frames_per_second) {
            it->second = row;
        }
    }
}

void RatioReporter::Finalize() {
    display_->Finalize();
    // JSON or CSV on stdout must stay parseable: the table goes to stderr then.
    const bool console = dynamic_cast<benchmark::ConsoleReporter*>(display_) != nullptr;
    print_table(console ? std::cout : std::cerr);
}

void RatioReporter::print_table(std::ostream& out) const {
    if (order_.empty()) return;
    std::size_t width = 9;
    for (const std::string& name : order_)
        width = std::max(width, name.size());

    out << "\nAgainst memcpy in this run. GB/s: 1e9 payload bytes per second. x memcpy: frames/s "
           "divided by\nmemcpy's copies/s of the same payload size (1.00: as fast as copying the "
           "payload once).\n";
    char line[512];
    std::snprintf(line, sizeof line, "%-*s %10s %11s %9s %12s  %s\n", static_cast<int>(width),
                  "benchmark", "GB/s", "Mframes/s", "x memcpy", "allocs/frame", "target");
    out << line << std::string(width + 48 + 24, '-') << '\n';

    for (const std::string& name : order_) {
        const Row& row = rows_.at(name);
        std::string ratio = "-";
        if (const auto ref = rows_.find(memcpy_reference(name));
            ref != rows_.end() && ref->second.frames_per_second > 0 && row.frames_per_second > 0) {
            ratio = format("%.2f", row.frames_per_second / ref->second.frames_per_second);
        }
        std::string allocs = row.allocs_per_frame < 0 ? "-" : format("%.3g", row.allocs_per_frame);
        std::string verdict;
        for (const Target& t : targets_) {
            if (t.benchmark != name) continue;
            const bool by_frames = t.frames_per_second > 0;
            const double want = by_frames ? t.frames_per_second : t.bytes_per_second;
            const double have = by_frames ? row.frames_per_second : row.bytes_per_second;
            verdict = (have >= want ? "met" : "MISSED") +
                      (by_frames ? format(" (>= %.0f Mframes/s)", want / 1e6)
                                 : format(" (>= %.0f GB/s)", want / 1e9));
        }
        std::snprintf(line, sizeof line, "%-*s %10.2f %11.2f %9s %12s  %s\n",
                      static_cast<int>(width), name.c_str(), row.bytes_per_second / 1e9,
                      row.frames_per_second / 1e6, ratio.c_str(), allocs.c_str(), verdict.c_str());
        out << line;
    }
    out.flush();
}

}  // namespace wsx::bench
