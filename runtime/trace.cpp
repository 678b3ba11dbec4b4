// Trace recording and Chrome Trace Event JSON output (see include/weft/runtime/trace.hpp).
#include "weft/runtime/trace.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace weft::rt {

std::function<void(const TraceEvent&)> TraceRecorder::hook() {
    return [this](const TraceEvent& e) {
        std::lock_guard<std::mutex> lock(mu_);
        events_.push_back(e);
    };
}

std::vector<TraceEvent> TraceRecorder::events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
}

namespace {
void escape(std::ostringstream& out, const char* s) {
    for (; s && *s; ++s) {
        if (*s == '"' || *s == '\\') out << '\\';
        out << *s;
    }
}
}  // namespace

std::string TraceRecorder::chrome_json() const {
    std::vector<TraceEvent> ev = events();
    std::stable_sort(ev.begin(), ev.end(), [](const TraceEvent& a, const TraceEvent& b) {
        return a.time_ns < b.time_ns;
    });
    std::int64_t t0 = ev.empty() ? 0 : ev.front().time_ns;
    std::ostringstream out;
    out << "{\"traceEvents\":[";
    bool first = true;
    auto emit = [&](const char* ph, const TraceEvent& e, const char* name) {
        if (!first) out << ",\n";
        first = false;
        out << "{\"ph\":\"" << ph << "\",\"pid\":1,\"tid\":" << (e.worker + 1)
            << ",\"ts\":" << double(e.time_ns - t0) / 1000.0 << ",\"name\":\"";
        escape(out, name);
        out << "\",\"args\":{\"task\":" << e.task_id << "}";
        if (ph[0] == 'i') out << ",\"s\":\"t\"";
        out << "}";
    };
    // One slice per stretch a task runs on a worker: Started/Resumed .. Blocked/Done.
    for (const TraceEvent& e : ev) {
        std::string name = "task#" + std::to_string(e.task_id);
        switch (e.kind) {
            case TraceKind::Created:
                emit("i", e, ("create " + name).c_str());
                break;
            case TraceKind::Started:
            case TraceKind::Resumed:
                emit("B", e, name.c_str());
                break;
            case TraceKind::Blocked:
                emit("E", e, name.c_str());
                emit("i", e, (name + " waits on " + (e.what ? e.what : "?")).c_str());
                break;
            case TraceKind::Done:
                emit("E", e, name.c_str());
                break;
        }
    }
    out << "],\"displayTimeUnit\":\"ms\"}\n";
    return out.str();
}

bool TraceRecorder::write_chrome_json(const std::string& path) const {
    std::ofstream f(path);
    if (!f) return false;
    f << chrome_json();
    return static_cast<bool>(f);
}

}  // namespace weft::rt
