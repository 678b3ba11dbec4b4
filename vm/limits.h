// limits.h — the program-wide runtime limits of spec section 8: the default timeout
// (`--default-timeout`, `set_default_timeout`), the cap on live tasks (`--max-tasks`) and the
// cap on how many items parallel operations run at once (`set_max_workers`).
//
// They are per program (per Vm: an embedding host may run several Engines in one process), in a
// State the Vm owns. The hot paths that read them (every blocking wait, every spawn) have no Vm
// at hand: the free functions below find the current Vm's State (current_vm(): the running
// task's interpreter), and a TaskSlot remembers the State it counted in, so that it gives the
// slot back there from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace weft {

struct VmOptions;
namespace rt {
class Task;
}

struct CallBudget;  // vm/task_context.h

namespace limits {

// The live-task count is sharded by thread so that worker threads spawning and finishing tasks
// do not fight over one cache line (see limits.cpp).
constexpr std::size_t kShards = 16;
struct alignas(64) LiveShard {
    std::atomic<std::size_t> n{0};
};

// One program's limits and live-task count. Thread-safe (atomics).
struct State {
    // Read on every wait and spawn; written almost never. Kept apart from the live-task
    // counters, which every spawn and task end write: sharing a cache line with them made each
    // of these reads a cache miss (6% of skynet with spawn + channels).
    alignas(64) std::atomic<double> default_timeout{0};
    std::atomic<std::size_t> max_tasks{0};
    std::atomic<std::size_t> max_workers{0};
    LiveShard live[kShards];
};

// The current Vm's State (a process default when no Vm is current: unit tests of the object
// library).
State& current();

// Takes --default-timeout and --max-tasks from the options; resets set_max_workers.
void configure(State& st, const VmOptions& o);

// The default timeout in seconds, 0 when none.
double default_timeout();
void set_default_timeout(double seconds);

// The bound in seconds to put on a wait that has no timeout of its own: the default timeout,
// unless none is set or an enclosing cancel scope (`with timeout(...)`, `move_on_after`, a
// per-item timeout) already bounds the current task; then < 0 (wait without a bound).
double wait_bound();

// Raises TimeoutError for a wait of `what` ("channel recv", "task fetch#3", ...) that exceeded
// the default timeout.
[[noreturn]] void raise_default_timeout(const std::string& what);

// Waits for task `t` like t.join(), but raises TimeoutError when the
// default timeout applies and passes first. An unstarted task is run inline, as join() does,
// and is then cancelled at the deadline.
// `run_inline` false: never run it inline (the waiter is in another cancel scope than the task).
void join_within_default_timeout(rt::Task& t, bool run_inline = true);

// set_max_workers(n): 0 when not set.
std::size_t max_workers();
void set_max_workers(std::size_t n);
// How many items a parallel operation may run at once when it asked for `requested`: capped by
// set_max_workers.
std::size_t cap_workers(std::size_t requested);

// --max-tasks accounting. A TaskSlot is held by the body of every task the VM starts, from
// the spawn until the body finishes (or is dropped unrun). Building one when the limit is
// reached raises an `Error` naming the limit, at the spawn site, instead of letting a runaway
// program exhaust memory. The count is kept with or without a limit (one atomic increment and
// decrement per task): it also tells a module's top-level code whether another task may be
// reading its globals (interp.cpp, op_SetGlobal).
class TaskSlot {
  public:
    TaskSlot() : TaskSlot(current()) {}  // may throw WeftError
    explicit TaskSlot(State& st);          // may throw WeftError
    // An empty slot (holds nothing).
    explicit TaskSlot(std::nullptr_t) noexcept {}
    // A slot taken only when --max-tasks sets a limit (may throw WeftError), else empty: records
    // of deferred calls (vm/pending.h) count against the limit but are not running tasks.
    static TaskSlot if_limited();
    TaskSlot(const TaskSlot& o);
    TaskSlot(TaskSlot&& o) noexcept : st_(o.st_), budget_(o.budget_), held_(o.held_) { o.held_ = false; }
    TaskSlot& operator=(const TaskSlot&) = delete;
    TaskSlot& operator=(TaskSlot&& o) noexcept {
        if (this != &o) {
            release();
            st_ = o.st_;
            budget_ = o.budget_;
            held_ = o.held_;
            o.held_ = false;
        }
        return *this;
    }
    ~TaskSlot() { release(); }
    // Gives the slot back (idempotent): the task's body has finished.
    void release() noexcept {
        if (held_) give_back();
    }

  private:
    void give_back() noexcept;
    State* st_ = nullptr;
    // The embedding call whose Limits::max_tasks this slot also counts against (narrower than
    // the Engine's), or null.
    CallBudget* budget_ = nullptr;
    bool held_ = false;
};

// Live tasks of a program: bodies holding a TaskSlot (acquire: pairs with the release of a
// finished body).
std::size_t live_tasks(const State& st);
inline std::size_t live_tasks() { return live_tasks(current()); }

// A duration as command-line options write it: a number of seconds, optionally followed by
// `s`, `ms`, `m` or `h` ("15s", "500ms", "2m", "1.5"). Sets `out` (seconds) and returns true,
// or returns false for anything else (the caller says what the option expects). Any sign: the
// caller checks the range.
bool parse_duration(const std::string& s, double& out);

}  // namespace limits
}  // namespace weft
