// trace_out.h — `weft run --trace-out FILE.json`: the program's task life as a Chrome Trace
// Event file (open it in ui.perfetto.dev or chrome://tracing).
//
// One track per worker thread, one slice per stretch a task ran on it (named by the task's id,
// e.g. "fetch_user#3", from the moment it starts or resumes until it blocks, yields or ends),
// and a flow arrow from the spawning task's slice to the first slice of each task it started.
//
// It is built on the runtime's trace hook (RuntimeOptions::trace), which reports created /
// started / blocked / resumed / done events with a task id and a worker. The hook only appends
// to a vector under a mutex (tracing is a debugging mode, and the hook runs inside the
// scheduler, so it must be short); the slices and flows are worked out when the file is
// written, after the program ended. The hook also notes two things the events lack: the
// spawning task (the current task when "created" fires) and the task's label (the current task
// when "started" fires).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "weft/runtime/runtime.hpp"

namespace weft {

class TraceOut {
  public:
    // The hook for RuntimeOptions::trace (via VmOptions::trace_hook). The TraceOut must outlive
    // the runtime. Thread-safe.
    std::function<void(const rt::TraceEvent&)> hook();
    // The Chrome Trace Event JSON of everything recorded so far.
    std::string json() const;
    // Writes json() to `path`; on failure returns false and sets `error` to the OS reason.
    bool write(const std::string& path, std::string& error) const;
    // A slice that ran in another process (a cluster worker's remote task, cluster/): drawn on
    // the track `track` of a second process row ("cluster"), from `start_ns` (steady clock,
    // like the runtime's events) for `dur_ns`; `args_json` is a JSON object's members
    // ("\"run_ms\":1.2,..."). Thread-safe.
    void add_remote(const std::string& track, const std::string& name, std::int64_t start_ns,
                    std::int64_t dur_ns, const std::string& args_json);

  private:
    struct Event {
        rt::TraceKind kind;
        std::uint64_t task;
        int worker;
        std::int64_t time_ns;
        const char* what;      // Blocked: why
        std::uint64_t parent;  // Created: the spawning task (0 if none)
    };
    void record(const rt::TraceEvent& e);
    mutable std::mutex mu_;
    std::vector<Event> events_;
    std::unordered_map<std::uint64_t, std::string> labels_;
    struct Remote {
        std::string track, name, args;
        std::int64_t start_ns, dur_ns;
    };
    std::vector<Remote> remote_;
};

}  // namespace weft
