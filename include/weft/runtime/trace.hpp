// Chrome / Perfetto trace output for the runtime's trace hook (RuntimeOptions::trace).
//
// TraceRecorder collects TraceEvents (thread-safe, one mutex-protected vector: tracing is a
// debugging mode, not a hot path) and writes them in the Chrome Trace Event JSON format, which
// chrome://tracing and ui.perfetto.dev open directly: one row per worker, a slice per stretch a
// task ran on it (Started/Resumed .. Blocked/Done), instant events for creations and blocking
// reasons. Usage:
//
//     TraceRecorder rec;
//     RuntimeOptions o;
//     o.trace = rec.hook();
//     { Runtime rt(o); rt.block_on(...); }
//     rec.write_chrome_json("trace.json");
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "weft/runtime/runtime.hpp"

namespace weft::rt {

class TraceRecorder {
  public:
    /// A hook to put in RuntimeOptions::trace. The recorder must outlive the runtime.
    std::function<void(const TraceEvent&)> hook();
    /// Events recorded so far (copy).
    std::vector<TraceEvent> events() const;
    /// Writes Chrome Trace Event JSON to `path`; returns false if the file cannot be written.
    bool write_chrome_json(const std::string& path) const;
    /// The same JSON as a string.
    std::string chrome_json() const;

  private:
    mutable std::mutex mu_;
    std::vector<TraceEvent> events_;
};

}  // namespace weft::rt
