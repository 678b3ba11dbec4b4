// run_stats.h — what `--stats` adds to the runtime's counters: the peak number of tasks alive
// at once and the time tasks spent blocked, by cause (sleep, channel recv, join, I/O, ...).
//
// Both come from the runtime's trace events (include/weft/runtime/runtime.hpp, TraceEvent):
// Created/Done move the live count, Blocked/Resumed bracket a wait whose cause is the event's
// `what`. The hook runs only under --stats (a lock and a map update per event), so a plain run
// pays nothing for it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "weft/runtime/runtime.hpp"

namespace weft {

class RunStats {
public:
    // The trace hook to install in rt::RuntimeOptions::trace. The RunStats must outlive the
    // runtime. Thread-safe (called from every worker).
    std::function<void(const rt::TraceEvent&)> hook();

    // Prints the summary lines ("weft stats: ...") to `out`: the runtime's counters `c`, the
    // worker count, the peak of live tasks and the blocked time by cause (seconds, waits),
    // longest first.
    void print(std::FILE* out, const rt::Counters& c, unsigned workers) const;

private:
    void record(const rt::TraceEvent& e);

    struct Blocked {
        std::int64_t total_ns = 0;
        std::uint64_t waits = 0;
    };
    mutable std::mutex mu_;
    std::int64_t live_ = 0, peak_ = 0;
    std::unordered_map<std::uint64_t, std::pair<std::string, std::int64_t>> waiting_;  // task -> (cause, since)
    std::map<std::string, Blocked> by_cause_;
};

}  // namespace weft
