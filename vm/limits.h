// limits.h — the program-wide runtime limits of spec section 8: the default timeout
// (`--default-timeout`, `set_default_timeout`), the cap on live tasks (`--max-tasks`) and the
// cap on how many items parallel operations run at once (`set_max_workers`).
//
// They are process-wide atomics rather than Vm members because they are read on hot paths
// that have no Vm at hand (every blocking wait, every spawn) and one program runs per process;
// a Vm sets them from its options when its builtins are registered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace weft {

struct VmOptions;
namespace rt {
class Task;
}

namespace limits {

// Takes --default-timeout and --max-tasks from the options; resets set_max_workers.
void configure(const VmOptions& o);

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
    TaskSlot();  // may throw WeftError
    // An empty slot (holds nothing).
    explicit TaskSlot(std::nullptr_t) noexcept {}
    // A slot taken only when --max-tasks sets a limit (may throw WeftError), else empty: records
    // of deferred calls (vm/pending.h) count against the limit but are not running tasks.
    static TaskSlot if_limited();
    TaskSlot(const TaskSlot& o);
    TaskSlot(TaskSlot&& o) noexcept : held_(o.held_) { o.held_ = false; }
    TaskSlot& operator=(const TaskSlot&) = delete;
    TaskSlot& operator=(TaskSlot&& o) noexcept {
        if (this != &o) {
            release();
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
    bool held_ = false;
};

// Live tasks: bodies holding a TaskSlot (acquire: pairs with the release of a finished body).
std::size_t live_tasks();

}  // namespace limits
}  // namespace weft
