// Introspection of a running runtime: a snapshot of every live task (the language's `tasks()`)
// and the deadline that bounds the current task (so the VM can tell whether a wait already has
// one before applying `--default-timeout`).
//
// Neither keeps any per-task registry: like the deadlock detector, the snapshot walks the scope
// tree from the roots (every live task is a member of a nursery reachable from a block_on root),
// and the deadline is read off the cancel-scope chain the same way cancellation is detected
// (scope.cpp). Both are rare questions, so they pay a walk instead of taxing every spawn.
#include <algorithm>
#include <climits>

#include "runtime/internal.h"

namespace weft::rt {

using namespace detail;

namespace {

// What a task that is not itself the innermost task of its (parked or running) host is doing:
// it forced a task that now runs inline on its stack. Names that direct inline child.
std::string inline_join_of(Task* t, Task* active) {
    Task* x = active;
    while (x && A::forcer(x) != t)
        x = A::forcer(x);
    return "join of " + (x ? x->label() : std::string("an inline task"));
}

}  // namespace

std::vector<TaskSnapshot> tasks_snapshot() {
    std::vector<TaskSnapshot> out;
    Task* cur = current();
    if (!cur) return out;
    RuntimeImpl* rt = A::rt(cur);
    std::vector<std::pair<Task*, std::uint64_t>> stack;  // (task with a reference, parent id)
    {
        std::lock_guard<std::mutex> lock(rt->roots_mu_);
        for (Task* r : rt->roots_) {
            r->retain();
            stack.emplace_back(r, 0);
        }
    }
    std::vector<CancelNode*> nodes;
    while (!stack.empty()) {
        auto [t, parent] = stack.back();
        stack.pop_back();
        nodes.clear();
        Task* host = owned_nurseries(t, nodes);
        if (!t->done()) {
            TaskSnapshot s;
            s.task = TaskRef::adopt(t);
            t->retain();  // the walk's own reference is released below
            s.parent = parent;
            if (!host) {
                s.state = A::run_state(t).load(std::memory_order_acquire) == A::kUnstarted
                              ? TaskState::Unstarted
                              : TaskState::Running;
            } else if (A::park_state(host).load(std::memory_order_acquire) != kParkParked) {
                // The host's fiber is running or about to: what runs on it (the host, or a task
                // it forced inline) is changing under us, so it is all "running".
                s.state = TaskState::Running;
            } else {
                // Parked: the acquire above pairs with the park, so the host's wait fields and
                // inline chain, written before it parked, are stable until it is woken.
                s.state = TaskState::Blocked;
                Task* active = A::active(host);
                if (active != t) {
                    s.waits_on = inline_join_of(t, active);
                } else {
                    const char* what = A::wait_what(host);
                    s.waits_on = what ? what : "?";
                    // A join names the task it waits for (the joiner holds a reference to it).
                    if (s.waits_on == "join" && A::wait_obj(host))
                        s.waits_on += " of " + static_cast<const Task*>(A::wait_obj(host))->label();
                }
            }
            out.push_back(std::move(s));
        }
        std::uint64_t id = A::id(t);
        for (CancelNode* n : nodes) {
            {
                std::lock_guard<SpinLock> lock(n->mu);
                for (Task* m = n->members; m; m = A::member_next(m)) {
                    m->retain();
                    stack.emplace_back(m, id);
                }
            }
            n->release();
        }
        t->release();
    }
    std::sort(out.begin(), out.end(), [](const TaskSnapshot& a, const TaskSnapshot& b) {
        return a.task->id() < b.task->id();
    });
    return out;
}

namespace {

// The earliest deadline on `t`'s cancel chain. The same walk as is_cancelled (scope.cpp): the
// task's scopes, then on through the nursery it belongs to into its parent's, up to a shield,
// holding each nursery reached through Task::root_ so it cannot be freed under us.
std::int64_t chain_deadline(Task* t) {
    std::int64_t best = INT64_MAX;
    std::vector<CancelNode*> held;
    CancelNode* n = A::cancel_top(t);
    Task* owner = t;
    for (;;) {
        bool stop = false;
        while (n) {
            best = std::min(best, n->deadline_ns);
            if (n->shield) {
                stop = true;
                break;
            }
            n = n->parent.load(std::memory_order_acquire);
        }
        if (stop) break;
        CancelNode* r;
        {
            std::lock_guard<SpinLock> lock(A::mu(owner));
            r = A::root(owner);
            if (r) r->retain();
        }
        if (!r) break;
        held.push_back(r);
        owner = r->owner;
        n = r;
    }
    for (CancelNode* h : held)
        h->release();
    return best;
}

}  // namespace

std::int64_t current_deadline_ns() {
    std::int64_t best = INT64_MAX;
    // A task run inline is part of its forcer's computation: the forcer's deadlines apply too.
    for (Task* t = current(); t; t = A::forcer(t))
        best = std::min(best, chain_deadline(t));
    return best;
}

}  // namespace weft::rt
