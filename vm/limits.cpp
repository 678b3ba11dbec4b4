// limits.cpp — the runtime limits of spec section 8 (see limits.h).
#include "vm/limits.h"

#include <atomic>
#include <climits>
#include <cstdlib>

#include "vm/interp.h"
#include "vm/native.h"
#include "vm/task_context.h"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"
#include "weft/runtime/task.hpp"

namespace weft::limits {

namespace {

// Thread numbering for the shards: the first kShards - 1 threads that start or end tasks each
// own a shard index (in every State) and update it with a plain load and store — one writer, so
// no locked read-modify-write, which costs a few percent of a spawn-heavy program; threads past
// those share the last shard and update it atomically. A slot taken on one thread and given back
// on another leaves the two shards off by one each way: only the sum counts (unsigned arithmetic
// wraps, the sum is exact). The numbering is process-wide (it names threads, not programs), so
// the exclusive indices run out after a few Engines' worker threads: later threads share the
// last shard, which is slower but as exact.
std::atomic<std::size_t> g_next_shard{0};

State g_default_state;  // no Vm current (unit tests of the object library)

struct MyShard {
    std::atomic<std::size_t>* n;
    bool exclusive;
};
MyShard my_shard(State& st) {
    thread_local std::size_t index = g_next_shard.fetch_add(1, std::memory_order_relaxed);
    return index < kShards - 1 ? MyShard{&st.live[index].n, true} : MyShard{&st.live[kShards - 1].n, false};
}

// Release order on both paths: what the body did happens before a writer that sees the count
// drop (interp.cpp, op_SetGlobal) writes without publishing.
void shard_add(State& st, std::size_t d) {
    MyShard s = my_shard(st);
    if (s.exclusive)
        s.n->store(s.n->load(std::memory_order_relaxed) + d, std::memory_order_release);
    else
        s.n->fetch_add(d, std::memory_order_release);
}

std::string seconds_text(double s) {
    char buf[32];
    snprintf(buf, sizeof buf, "%g s", s);
    return buf;
}

}  // namespace

State& current() {
    Vm* vm = current_vm();
    return vm ? vm->limits_state() : g_default_state;
}

void configure(State& st, const VmOptions& o) {
    st.default_timeout.store(o.default_timeout > 0 ? o.default_timeout : 0);
    st.max_tasks.store(o.max_tasks);
    st.max_workers.store(0);
}

double default_timeout() {
    return current().default_timeout.load(std::memory_order_relaxed);
}

void set_default_timeout(double seconds) {
    current().default_timeout.store(seconds > 0 ? seconds : 0);
}

double wait_bound() {
    double d = default_timeout();
    if (d <= 0) return -1;
    // A wait inside a scope with a deadline already has one: the innermost deadline wins.
    if (rt::current_deadline_ns() != INT64_MAX) return -1;
    return d;
}

void raise_default_timeout(const std::string& what) {
    throw WeftError(ErrorKind::TimeoutError,
                    what + " did not complete within the default timeout of " +
                        seconds_text(default_timeout()) +
                        " (--default-timeout / set_default_timeout)");
}

void join_within_default_timeout(rt::Task& t, bool run_inline) {
    double bound = wait_bound();
    if (bound < 0 || t.done()) {
        t.join(run_inline);
        return;
    }
    // One mechanism for both cases: a task still unstarted runs inline here (lazy task creation)
    // and the scope's deadline cancels that run; a started one is waited for and the deadline
    // cancels only the wait (the task belongs to a scope outside this one and keeps running).
    bool expired = false;
    {
        rt::CancelScopeOptions o;
        o.timeout = bound;
        rt::CancelScope cs(o);
        try {
            t.join(run_inline);
        } catch (const rt::Cancelled&) {
            if (!cs.deadline_expired()) throw;
            expired = true;
        }
    }
    if (expired) raise_default_timeout("task " + t.label());
}

std::size_t max_workers() {
    return current().max_workers.load(std::memory_order_relaxed);
}

void set_max_workers(std::size_t n) {
    current().max_workers.store(n);
}

std::size_t cap_workers(std::size_t requested) {
    std::size_t m = max_workers();
    return m && m < requested ? m : requested;
}

TaskSlot::TaskSlot(State& st) : st_(&st) {
    shard_add(st, 1);
    held_ = true;
    std::size_t max = st.max_tasks.load(std::memory_order_relaxed);
    if (max != 0 && live_tasks(st) > max) {
        release();
        throw WeftError(ErrorKind::Error,
                        "too many live tasks: starting another would exceed the limit of " +
                            std::to_string(max) + " (--max-tasks)");
    }
    // An embedding call's own limit (weft::CallOptions::limits), counted for its tasks only.
    if (CallBudget* b = current_budget(); b && b->max_tasks != 0) {
        budget_ = b;
        if (b->live_tasks.fetch_add(1, std::memory_order_acq_rel) + 1 > b->max_tasks) {
            release();
            throw WeftError(ErrorKind::Error, "too many live tasks: starting another would exceed the call's limit of " +
                                                  std::to_string(b->max_tasks) + " (Limits::max_tasks)");
        }
    }
}

TaskSlot TaskSlot::if_limited() {
    State& st = current();
    if (st.max_tasks.load(std::memory_order_relaxed) == 0) {
        CallBudget* b = current_budget();
        if (!b || b->max_tasks == 0) return TaskSlot(nullptr);
    }
    return TaskSlot(st);
}

TaskSlot::TaskSlot(const TaskSlot& o) : st_(o.st_), budget_(o.budget_), held_(o.held_) {
    // A copy of a task body (captured into a wrapper before the spawn) is another holder; the
    // original's slot goes back when it is destroyed, so the count stays exact.
    if (held_) {
        shard_add(*st_, 1);
        if (budget_) budget_->live_tasks.fetch_add(1, std::memory_order_relaxed);
    }
}

void TaskSlot::give_back() noexcept {
    held_ = false;
    shard_add(*st_, std::size_t(-1));
    if (budget_) budget_->live_tasks.fetch_sub(1, std::memory_order_acq_rel);
}

std::size_t live_tasks(const State& st) {
    std::size_t sum = 0;
    for (auto& s : st.live) sum += s.n.load(std::memory_order_acquire);
    return sum;
}

bool parse_duration(const std::string& s, double& out) {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str()) return false;
    std::string unit(end);
    if (unit.empty() || unit == "s") out = v;
    else if (unit == "ms") out = v / 1000;
    else if (unit == "m") out = v * 60;
    else if (unit == "h") out = v * 3600;
    else return false;
    return true;
}

}  // namespace weft::limits
