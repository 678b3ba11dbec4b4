// task_context.h — what the VM knows about each running task beyond the runtime's view:
// which interpreter runs it and where in the program it was started, plus the two uses of
// that knowledge: error traces that cross tasks and the `tasks()` snapshot.
//
// A task's TaskContext lives inside the task's own body object (vm/tasks.cpp's CallBody),
// which the runtime keeps alive as long as anyone holds the task, and rt::Task::user_data()
// points at it once the task runs. The spawn site is captured when the body is built, in the
// spawning task: two pointers (the chunk and the instruction), so a deferred call pays
// nothing for it; the text "file:line in function" is made only when an error or a snapshot
// needs it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vm/mem_account.h"
#include "vm/native.h"

namespace weft {

struct Chunk;
class Interp;
class Vm;

// A place in the program: the chunk and the instruction after the one executing (a frame's
// saved pc). chunk == nullptr means "not in Weft code" (the runtime started the task).
struct CodeSite {
    const Chunk* chunk = nullptr;
    const void* pc = nullptr;
};

// "path:line in function", the format of trace lines; "" for an empty site.
std::string format_site(const CodeSite& s);
// What a trace line of a frame adds under "path:line in function" (CPython 3.11's style):
// "\n  " + the source line of instruction `idx` of `c`, stripped of its indentation, then
// "\n  " + carets under the expression that instruction belongs to (Chunk::cols), unless they
// would underline the whole line. "" when the source is not known.
std::string source_excerpt(const Chunk* c, size_t idx);
// The line of an error trace that says where a task or deferred call began: `what` ("task
// fetch_user#3", "deferred call to fetch_user") followed by ", started at SITE:", or by ":"
// alone when the site is unknown.
std::string started_at_line(const std::string& what, const CodeSite& site);

// The embedding API's per-call limits (weft::Limits::max_steps, max_output, max_memory): one
// budget shared by every task of a host call, reached through each task's context (children
// inherit their spawner's). When a budget runs out, `exceeded` records which (1 steps, 2 output,
// 3 memory) and `on_exceeded` cancels the call (once; any thread).
struct CallBudget {
    std::atomic<std::int64_t> steps_left{INT64_MAX};
    std::atomic<std::int64_t> output_left{INT64_MAX};
    std::atomic<int> exceeded{0};
    std::function<void()> on_exceeded;
    // The Engine's heap account (vm/mem_account.h), charged while the call's tasks run, and the
    // most it may hold during this call; null when the call has no memory limit.
    MemAccount* mem = nullptr;
    std::int64_t mem_limit = INT64_MAX;
    // weft::EngineOptions::on_slice: asked each time a task of the call has run for a slice
    // (Interp::safepoint_slow), with the task's name and the call's steps so far; false
    // interrupts the call (exceed(4)). Null: none. `steps` counts only while this is set.
    std::function<bool(std::string_view task, std::uint64_t steps)> on_slice;
    std::atomic<std::uint64_t> steps{0};
    // weft::Limits::max_tasks and max_depth of this call when narrower than the Engine's (0:
    // the Engine's apply): live tasks of the call (vm/limits.h TaskSlot) and the call depth of
    // each of its tasks (Interp::narrow_depth).
    std::size_t max_tasks = 0;
    std::atomic<std::size_t> live_tasks{0};
    std::size_t max_depth = 0;
    void exceed(int which) {
        int none = 0;
        if (exceeded.compare_exchange_strong(none, which) && on_exceeded) on_exceeded();
    }
    // Over the memory limit: exceed(3). Cheap enough for every safepoint batch (8 loads).
    bool check_memory() {
        if (mem && mem->sample() > mem_limit) {
            exceed(3);
            return false;
        }
        return true;
    }
};
// The running task's call budget, or null (outside tasks, or a call without limits).
CallBudget* current_budget();

// The VM side of one task (see the file comment).
struct TaskContext {
    Interp* interp = nullptr;
    CodeSite spawned_at;
    int depth = 0;  // tasks between this one and the root (the spawner's depth + 1)
    // The embedding API's exec/eval (Vm::run_in_main): top-level expression statements store
    // their value here instead of echoing it (the REPL's __repl_print__). Null otherwise.
    Value* echo = nullptr;
    // The host call's limits (embedding), or null.
    CallBudget* budget = nullptr;
};
// Depth of the current task in the task tree (0 for the root or outside tasks).
int current_task_depth();

// The context of the task running on this thread, or nullptr outside tasks.
TaskContext* current_task_context();
// The interpreter of the task running on this thread, or nullptr.
Interp* current_interp();
// Where the current task is now (its interpreter's innermost frame): the spawn site of a task
// it starts. Cheap enough for every deferred call.
CodeSite spawn_site_here();
// What the task being started right now on this thread is, for --trace's "created" line (the
// runtime reports the creation synchronously, from inside the spawn): its name and "deferred"
// or "spawned". Set around the spawn by the VM's spawn paths; null otherwise.
struct SpawnNote {
    std::string_view name;
    const char* kind;
};
extern thread_local const SpawnNote* t_spawn_note;
// Sets t_spawn_note for the length of one spawn (tasks.cpp, actors.cpp).
struct SpawnNoteGuard {
    explicit SpawnNoteGuard(const SpawnNote* n) { t_spawn_note = n; }
    ~SpawnNoteGuard() { t_spawn_note = nullptr; }
    SpawnNoteGuard(const SpawnNoteGuard&) = delete;
    SpawnNoteGuard& operator=(const SpawnNoteGuard&) = delete;
};
// The context of a task the current task is about to start: spawned here (spawn_site_here()),
// one deeper in the task tree, no interpreter yet. One look at the current task for both.
TaskContext child_task_context();
// Binds the program's root task (the one Vm::in_runtime runs) to the main interpreter.
void bind_main_task(Interp* main);

// The error `err` with which task `label`, started at `site`, failed: a copy whose trace starts
// with "task LABEL, started at SITE:" followed by where it failed.
Value note_task_failure(Interp& in, const Value& err, const std::string& label,
                        const CodeSite& site);
// The error `err` of task `label`, as raised in the task that used its value: a copy whose trace
// is the using task's stack ("..., waiting for task LABEL") followed by the failed task's trace.
Value note_forced(Interp& in, const Value& err, const std::string& label);

// A deferred call of `callee` made at `site` that ran at once (a leaf, a value used at once:
// vm/interp.cpp op_CallDefer) and failed with `err`, kept for the use of its value: a copy whose
// trace is "deferred call to CALLEE, started at SITE:" followed by where it failed — err's trace
// without its first lines when they are `caller_trace` (the caller's stack when the call was
// made). err itself when its trace does not start that way (an error value raised again).
Value note_deferred_failure(const Value& err, const std::vector<std::string>& caller_trace,
                            const std::string& callee, const CodeSite& site);
// Such an error raised where the value is used (or when its activation ends): a copy with the
// stack of `in` at that point in front.
Value note_deferred_forced(Interp& in, const Value& err);

// `tasks()`: a list of dicts, one per live task, sorted by id: {"id": "fetch#12", "state":
// "pending"|"running"|"blocked", "waiting_on": str or None, "started_at": "file:line in f" or
// None, "parent": id of the task whose scope owns it or None}.
Value tasks_builtin(CallContext& cx, const CallArgs& a);

}  // namespace weft
