// task_context.cpp — spawn sites, error traces across tasks and the `tasks()` snapshot (see
// task_context.h for the design).
//
// Trace format. An error's trace is a list of lines, outermost first, printed under
// "Traceback (most recent call last):". When the error of a task is raised in the task that
// used its value, the lines read top-down as the story of the failure:
//
//     app.weft:13 in <module>
//     app.weft:11 in main, waiting for task fetch_user#4      <- where the value was used
//     task fetch_user#4, started at app.weft:9 in main:        <- where the task was started
//     app.weft:5 in fetch_user                                 <- where it failed
//     app.weft:2 in inner
//
// and chains of tasks nest the same way (spec sections 5 and 9: "with both traces"). A deferred
// call that ran on the task using its value (a record, vm/pending.h) has the line
// "deferred call to fetch_user, started at app.weft:9 in main:" in place of the task line
// (Interp::current_trace).
#include "vm/task_context.h"

#include <algorithm>
#include <unordered_map>

#include "vm/actors.h"
#include "vm/collections.h"
#include "vm/interp.h"
#include "vm/pending.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

// A copy of error value `err` (errors are values: the original may be held elsewhere).
Value copy_error(const Value& err) {
    if (!err.is(ObjType::Struct) || !err.as<StructObj>()->error) return err;
    return Value::adopt(new StructObj(*err.as<StructObj>()));
}

}  // namespace

std::string format_site(const CodeSite& s) {
    if (!s.chunk) return "";
    const Chunk* c = s.chunk;
    auto* pc = static_cast<const Instr*>(s.pc);
    size_t idx = pc > c->code.data() ? size_t(pc - c->code.data() - 1) : 0;
    uint32_t line = idx < c->lines.size() ? c->lines[idx] : c->line;
    return c->path + ":" + std::to_string(line) + " in " + c->name;
}

std::string source_excerpt(const Chunk* c, size_t idx) {
    if (!c->source || idx >= c->lines.size()) return "";
    std::string_view text = c->source->line(c->lines[idx]);
    size_t indent = 0;
    while (indent < text.size() && (text[indent] == ' ' || text[indent] == '\t')) ++indent;
    size_t last = text.size();
    while (last > indent && (text[last - 1] == ' ' || text[last - 1] == '\t')) --last;
    if (last == indent) return "";
    std::string_view shown = text.substr(indent, last - indent);
    std::string out = "\n  " + std::string(shown);
    uint32_t cols = idx < c->cols.size() ? c->cols[idx] : 0;
    if (!cols) return out;
    // Columns count code points from 1; the indentation is ASCII.
    size_t width = 0;
    for (unsigned char ch : shown) width += (ch & 0xC0) != 0x80;
    size_t first = cols >> 16, end = cols & 0xffff;
    if (first <= indent) return out;
    first -= indent + 1;
    end = end == 0xffff ? width : std::min(end - indent - 1, width);
    if (end <= first || (first == 0 && end == width)) return out;  // the whole line: no carets
    return out + "\n  " + std::string(first, ' ') + std::string(end - first, '^');
}

std::string started_at_line(const std::string& what, const CodeSite& site) {
    std::string where = format_site(site);
    return what + (where.empty() ? ":" : ", started at " + where + ":");
}

CodeSite Interp::current_site() const {
    if (frames_.empty()) return {};
    const Frame& f = frames_.back();
    return CodeSite{f.proto->chunk, f.pc};
}

TaskContext* current_task_context() {
    rt::Task* t = rt::current_task();
    return t ? static_cast<TaskContext*>(t->user_data()) : nullptr;
}

CallBudget* current_budget() {
    TaskContext* c = current_task_context();
    return c ? c->budget : nullptr;
}

Interp* current_interp() {
    TaskContext* c = current_task_context();
    return c ? c->interp : nullptr;
}

int current_task_depth() {
    TaskContext* c = current_task_context();
    return c ? c->depth : 0;
}

thread_local const SpawnNote* t_spawn_note = nullptr;

CodeSite spawn_site_here() {
    Interp* in = current_interp();
    return in ? in->current_site() : CodeSite{};
}

TaskContext child_task_context() {
    TaskContext* c = current_task_context();
    if (!c) return TaskContext{nullptr, CodeSite{}, 1};
    return TaskContext{nullptr, c->interp ? c->interp->current_site() : CodeSite{}, c->depth + 1, nullptr,
                       c->budget};
}

void bind_main_task(Interp* main) {
    TaskContext& c = main->vm().main_context();  // per program: several Vms may run at once
    c.interp = main;
    c.spawned_at = {};
    if (rt::Task* t = rt::current_task()) t->set_user_data(&c);
}

Value note_task_failure(Interp& in, const Value& err, const std::string& label,
                        const CodeSite& site) {
    (void)in;
    Value out = copy_error(err);
    if (!out.is(ObjType::Struct) || !out.as<StructObj>()->error) return out;
    auto& trace = out.as<StructObj>()->error->trace;
    trace.insert(trace.begin(), started_at_line("task " + label, site));
    return out;
}

Value note_deferred_failure(const Value& err, const std::vector<std::string>& caller_trace,
                            const std::string& callee, const CodeSite& site) {
    if (!err.is(ObjType::Struct) || !err.as<StructObj>()->error) return err;
    const auto& trace = err.as<StructObj>()->error->trace;
    if (trace.size() < caller_trace.size() || !std::equal(caller_trace.begin(), caller_trace.end(), trace.begin()))
        return err;
    Value out = copy_error(err);
    auto& t = out.as<StructObj>()->error->trace;
    t.erase(t.begin(), t.begin() + std::ptrdiff_t(caller_trace.size()));
    t.insert(t.begin(), started_at_line("deferred call to " + callee, site));
    return out;
}

namespace {
// A copy of `err` with the stack of `in` in front of its trace; `waiting_for`, when not empty,
// ends the stack's last line (", waiting for task fetch#3").
Value with_stack_in_front(Interp& in, const Value& err, const std::string& waiting_for) {
    Value out = copy_error(err);
    if (!out.is(ObjType::Struct) || !out.as<StructObj>()->error) return out;
    auto& trace = out.as<StructObj>()->error->trace;
    std::vector<std::string> here = in.current_trace();
    if (!waiting_for.empty()) {
        if (here.empty()) here.push_back("<runtime>");
        // On the frame's own line, before the source excerpt below it (source_excerpt).
        std::string& last = here.back();
        last.insert(std::min(last.find('\n'), last.size()), ", waiting for " + waiting_for);
    }
    trace.insert(trace.begin(), here.begin(), here.end());
    return out;
}
}  // namespace

Value note_deferred_forced(Interp& in, const Value& err) { return with_stack_in_front(in, err, ""); }

Value note_forced(Interp& in, const Value& err, const std::string& label) {
    return with_stack_in_front(in, err, "task " + label);
}

Value tasks_builtin(CallContext& cx, const CallArgs& a) {
    if (!a.pos.empty() || !a.kw.empty())
        throw WeftError(ErrorKind::TypeError, "tasks() takes no arguments");
    // The caller's deferred calls still kept as records become tasks first, so the snapshot
    // shows every call started and not finished ("pending" until a worker takes it).
    start_all_pending(static_cast<Interp&>(cx));
    std::vector<rt::TaskSnapshot> snap = rt::tasks_snapshot();
    std::unordered_map<std::uint64_t, std::string> labels;
    for (auto& s : snap)
        labels[s.task->id()] = s.task->label();
    std::vector<Value> out;
    out.reserve(snap.size());
    for (auto& s : snap) {
        Value d = make_dict();
        set_item(d, make_str("id"), make_str(labels[s.task->id()]));
        const char* state = s.state == rt::TaskState::Unstarted ? "pending"
                            : s.state == rt::TaskState::Blocked ? "blocked"
                                                                : "running";
        set_item(d, make_str("state"), make_str(state));
        set_item(d, make_str("waiting_on"), s.waits_on.empty() ? Value() : make_str(s.waits_on));
        // user_data is set when a task starts running; an unstarted task has no context yet.
        Value at;
        if (auto* c = static_cast<const TaskContext*>(s.task->user_data())) {
            std::string where = format_site(c->spawned_at);
            if (!where.empty()) at = make_str(where);
        }
        set_item(d, make_str("started_at"), at);
        auto p = labels.find(s.parent);
        set_item(d, make_str("parent"), p == labels.end() ? Value() : make_str(p->second));
        out.push_back(std::move(d));
    }
    append_actor_snapshots(static_cast<Interp&>(cx).vm(), out);  // idle actors have no task
    return make_list(std::move(out));
}

}  // namespace weft
