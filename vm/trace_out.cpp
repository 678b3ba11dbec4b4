// trace_out.cpp — Chrome Trace Event output for --trace-out (see trace_out.h).
//
// Format reference: "Trace Event Format" (Google, the chrome://tracing JSON format, also read by
// Perfetto): complete events (ph "X", ts/dur in microseconds), flow events (ph "s" / "f" with a
// shared id; "bp":"e" binds the arrow's end to the enclosing slice) and metadata events (ph "M"
// thread_name / process_name) that label the tracks.
//
// Slices from the events. A worker runs one task at a time, but a task forced before it started
// runs *inline* on its forcer's stack: its "started" arrives while the forcer is still running on
// that worker. The forcer's slice is then cut there and resumed when the inline task is done
// (on whichever worker that happens), so slices on a track never overlap and each shows the
// task that really ran.
#include "vm/trace_out.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

namespace weft {

std::function<void(const rt::TraceEvent&)> TraceOut::hook() {
    return [this](const rt::TraceEvent& e) { record(e); };
}

void TraceOut::record(const rt::TraceEvent& e) {
    Event ev{e.kind, e.task_id, e.worker, e.time_ns, e.what, 0};
    std::string label;
    rt::Task* cur = rt::current_task();
    if (e.kind == rt::TraceKind::Created && cur && cur->id() != e.task_id) ev.parent = cur->id();
    if (e.kind == rt::TraceKind::Started && cur && cur->id() == e.task_id) label = cur->label();
    std::lock_guard<std::mutex> g(mu_);
    events_.push_back(ev);
    if (!label.empty()) labels_.emplace(e.task_id, std::move(label));
}

namespace {

void append_escaped(std::string& out, const std::string& s) {
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            char buf[8];
            snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += char(c);
        }
    }
}

std::string micros(std::int64_t ns) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.3f", double(ns) / 1000.0);
    return buf;
}

struct Open {
    int worker;
    std::int64_t start;
};

}  // namespace

std::string TraceOut::json() const {
    std::vector<Event> ev;
    std::unordered_map<std::uint64_t, std::string> labels;
    std::vector<Remote> remote;
    {
        std::lock_guard<std::mutex> g(mu_);
        ev = events_;
        labels = labels_;
        remote = remote_;
    }
    std::stable_sort(ev.begin(), ev.end(),
                     [](const Event& a, const Event& b) { return a.time_ns < b.time_ns; });
    std::int64_t t0 = ev.empty() ? 0 : ev.front().time_ns;
    bool have_t0 = !ev.empty();
    for (auto& r : remote)
        if (!have_t0 || r.start_ns < t0) {
            t0 = r.start_ns;
            have_t0 = true;
        }
    auto label_of = [&](std::uint64_t id) {
        auto it = labels.find(id);
        return it != labels.end() ? it->second : "task#" + std::to_string(id);
    };

    std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
    bool first = true;
    auto begin_event = [&]() {
        if (!first) out += ",\n";
        first = false;
    };
    std::map<int, bool> workers;  // tracks seen, for their names

    auto slice = [&](std::uint64_t task, int worker, std::int64_t start, std::int64_t end,
                     const std::string& why) {
        begin_event();
        out += "{\"ph\":\"X\",\"cat\":\"task\",\"pid\":1,\"tid\":" + std::to_string(worker + 1) +
               ",\"ts\":" + micros(start - t0) +
               ",\"dur\":" + micros(std::max<std::int64_t>(end - start, 0)) + ",\"name\":\"";
        append_escaped(out, label_of(task));
        out += "\",\"args\":{\"task\":\"";
        append_escaped(out, label_of(task));
        out += "\",\"ended\":\"";
        append_escaped(out, why);
        out += "\"}}";
        workers[worker] = true;
    };

    std::unordered_map<std::uint64_t, Open> open;                  // task -> its running slice
    std::unordered_map<int, std::uint64_t> running;                // worker -> task running there
    std::unordered_map<std::uint64_t, std::uint64_t> inline_host;  // inline task -> its forcer
    struct Spawn {
        int worker;
        std::int64_t time;
        std::uint64_t parent;
    };
    std::unordered_map<std::uint64_t, Spawn> spawned;  // task -> where it was created
    std::vector<std::string> flows;

    auto open_slice = [&](std::uint64_t task, int worker, std::int64_t t) {
        if (auto r = running.find(worker); r != running.end() && r->second != task) {
            // Whatever ran here stops (an inline start cuts its forcer's slice).
            if (auto o = open.find(r->second); o != open.end()) {
                slice(r->second, o->second.worker, o->second.start, t,
                      "forced another task inline");
                open.erase(o);
            }
        }
        open[task] = Open{worker, t};
        running[worker] = task;
    };
    auto close_slice = [&](std::uint64_t task, std::int64_t t, const std::string& why) {
        auto o = open.find(task);
        if (o == open.end()) return -1;
        int w = o->second.worker;
        slice(task, w, o->second.start, t, why);
        open.erase(o);
        if (auto r = running.find(w); r != running.end() && r->second == task) running.erase(r);
        return w;
    };

    for (const Event& e : ev) {
        switch (e.kind) {
            case rt::TraceKind::Created:
                if (e.parent && e.worker >= 0)
                    spawned[e.task] = Spawn{e.worker, e.time_ns, e.parent};
                break;
            case rt::TraceKind::Started: {
                if (e.worker < 0) break;
                if (auto r = running.find(e.worker); r != running.end() && r->second != e.task)
                    inline_host[e.task] = r->second;
                open_slice(e.task, e.worker, e.time_ns);
                if (auto s = spawned.find(e.task); s != spawned.end()) {
                    // The arrow: from the spawner's slice at the spawn to this task's first slice.
                    std::string id = std::to_string(e.task);
                    flows.push_back(
                        "{\"ph\":\"s\",\"cat\":\"spawn\",\"name\":\"spawn\",\"id\":" + id +
                        ",\"pid\":1,\"tid\":" + std::to_string(s->second.worker + 1) +
                        ",\"ts\":" + micros(s->second.time - t0) + "}");
                    flows.push_back(
                        "{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"spawn\",\"name\":\"spawn\",\"id\":" +
                        id + ",\"pid\":1,\"tid\":" + std::to_string(e.worker + 1) +
                        ",\"ts\":" + micros(e.time_ns - t0) + "}");
                    spawned.erase(s);
                }
                break;
            }
            case rt::TraceKind::Resumed:
                if (e.worker >= 0) open_slice(e.task, e.worker, e.time_ns);
                break;
            case rt::TraceKind::Blocked:
                close_slice(e.task, e.time_ns,
                            std::string(e.what && strcmp(e.what, "yield") == 0 ? "yielded"
                                                                               : "blocked on ") +
                                (e.what && strcmp(e.what, "yield") != 0 ? e.what : ""));
                break;
            case rt::TraceKind::Done: {
                int w = close_slice(e.task, e.time_ns, "done");
                if (w < 0) w = e.worker;
                if (auto h = inline_host.find(e.task); h != inline_host.end()) {
                    // The forcer carries on where the inline task ended.
                    if (w >= 0) open_slice(h->second, w, e.time_ns);
                    inline_host.erase(h);
                }
                break;
            }
        }
    }
    std::int64_t t_end = ev.empty() ? 0 : ev.back().time_ns;
    std::vector<std::pair<std::uint64_t, Open>> rest(open.begin(), open.end());
    std::sort(rest.begin(), rest.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (auto& [task, o] : rest)
        slice(task, o.worker, o.start, t_end, "still running at exit");
    for (auto& f : flows) {
        begin_event();
        out += f;
    }
    // Remote tasks (cluster mode): one track per worker under a second process row.
    std::map<std::string, int> remote_tracks;
    for (auto& r : remote) {
        int tid = remote_tracks.emplace(r.track, int(remote_tracks.size()) + 1).first->second;
        begin_event();
        out += "{\"ph\":\"X\",\"cat\":\"remote\",\"pid\":2,\"tid\":" + std::to_string(tid) +
               ",\"ts\":" + micros(r.start_ns - t0) + ",\"dur\":" + micros(std::max<std::int64_t>(r.dur_ns, 0)) +
               ",\"name\":\"";
        append_escaped(out, r.name);
        out += "\",\"args\":{" + r.args + "}}";
    }
    for (auto& [track, tid] : remote_tracks) {
        begin_event();
        out += "{\"ph\":\"M\",\"pid\":2,\"tid\":" + std::to_string(tid) + ",\"name\":\"thread_name\",\"args\":{\"name\":\"";
        append_escaped(out, track);
        out += "\"}}";
    }
    if (!remote.empty()) {
        begin_event();
        out += "{\"ph\":\"M\",\"pid\":2,\"name\":\"process_name\",\"args\":{\"name\":\"cluster\"}}";
    }
    begin_event();
    out += "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"weft\"}}";
    for (auto& [w, seen] : workers) {
        (void)seen;
        begin_event();
        out += "{\"ph\":\"M\",\"pid\":1,\"tid\":" + std::to_string(w + 1) +
               ",\"name\":\"thread_name\",\"args\":{\"name\":\"worker " + std::to_string(w) +
               "\"}}";
    }
    out += "\n]}\n";
    return out;
}

void TraceOut::add_remote(const std::string& track, const std::string& name, std::int64_t start_ns,
                          std::int64_t dur_ns, const std::string& args_json) {
    std::lock_guard<std::mutex> g(mu_);
    remote_.push_back(Remote{track, name, args_json, start_ns, dur_ns});
}

bool TraceOut::write(const std::string& path, std::string& error) const {
    std::string text = json();
    FILE* f = fopen(path.c_str(), "w");
    if (!f) {
        error = strerror(errno);
        return false;
    }
    bool ok = fwrite(text.data(), 1, text.size(), f) == text.size();
    if (fclose(f) != 0) ok = false;
    if (!ok) error = strerror(errno);
    return ok;
}

}  // namespace weft
