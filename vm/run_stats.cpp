// run_stats.cpp — --stats: peak live tasks and blocked time by cause, from trace events (see
// run_stats.h).
#include "vm/run_stats.h"

#include <algorithm>
#include <vector>

namespace weft {

std::function<void(const rt::TraceEvent&)> RunStats::hook() {
    return [this](const rt::TraceEvent& e) { record(e); };
}

void RunStats::record(const rt::TraceEvent& e) {
    std::lock_guard<std::mutex> g(mu_);
    switch (e.kind) {
        case rt::TraceKind::Created:
            peak_ = std::max(peak_, ++live_);
            break;
        case rt::TraceKind::Blocked:
            // A used-up time slice is not a wait for anything.
            if (e.what && std::string_view(e.what) != "yield") waiting_[e.task_id] = {e.what, e.time_ns};
            break;
        case rt::TraceKind::Resumed:
        case rt::TraceKind::Done: {
            auto it = waiting_.find(e.task_id);
            if (it != waiting_.end()) {
                Blocked& b = by_cause_[it->second.first];
                b.total_ns += e.time_ns - it->second.second;
                ++b.waits;
                waiting_.erase(it);
            }
            if (e.kind == rt::TraceKind::Done) --live_;
            break;
        }
        case rt::TraceKind::Started:
            break;
    }
}

void RunStats::print(std::FILE* out, const rt::Counters& c, unsigned workers) const {
    std::lock_guard<std::mutex> g(mu_);
    std::fprintf(out,
                 "weft stats: %llu tasks spawned (peak %lld alive at once), %llu run inline (lazy task creation), "
                 "%llu on fibers, %llu context switches, %llu steals, %llu parks, %u worker(s)\n",
                 (unsigned long long)c.spawned, (long long)peak_, (unsigned long long)c.inlined,
                 (unsigned long long)c.fibers, (unsigned long long)c.switches, (unsigned long long)c.steals,
                 (unsigned long long)c.parks, workers);
    std::vector<std::pair<std::string, Blocked>> causes(by_cause_.begin(), by_cause_.end());
    std::sort(causes.begin(), causes.end(),
              [](const auto& a, const auto& b) { return a.second.total_ns > b.second.total_ns; });
    if (causes.empty()) {
        std::fprintf(out, "weft stats: no task blocked\n");
        return;
    }
    std::string line = "weft stats: time blocked by cause (summed over tasks):";
    for (size_t i = 0; i < causes.size(); ++i) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s %s %.3f s (%llu wait%s)", i ? "," : "", causes[i].first.c_str(),
                      double(causes[i].second.total_ns) / 1e9, (unsigned long long)causes[i].second.waits,
                      causes[i].second.waits == 1 ? "" : "s");
        line += buf;
    }
    std::fprintf(out, "%s\n", line.c_str());
}

}  // namespace weft
