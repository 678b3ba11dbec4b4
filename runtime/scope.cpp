// Scopes, cancel scopes and cancellation delivery.
//
// The cancel-scope tree is made of CancelNodes. Upward, each node points to its parent (the
// enclosing scope in the same task) and, at a task's outermost scope, the walk continues in the
// nursery the task belongs to (Task::root_), which is a node of the parent task: so a child's
// chain continues in its parent exactly where the nursery was opened. A task is cancelled when
// some node on its chain is cancelled before a shield is met (a shield stops the walk after its
// own flag is checked), or when the task itself was cancelled.
//
// The walk is skipped on the fast path: every cancellation bumps a runtime-wide epoch, and a
// task remembers the epoch at which it last found itself not cancelled. Closing a scope (which
// may expose an outer cancellation hidden by a shield) resets that memory.
//
// Downward, cancellation has to *wake* tasks parked in waits. `cancel_node` marks the node and
// walks down: the owner of each node, the scopes the owner opened inside it (up to a shield), and
// for nurseries every member task and, recursively, the nurseries those tasks opened. Tasks that
// park later see the cancellation themselves: a wait is published (begin_wait) before the
// cancellation check, and cancellation is published before the walk, so one side always sees
// the other.
#include <algorithm>

#include "runtime/internal.h"

namespace weft::rt {
namespace detail {

void CancelNode::release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    CancelNode* p = parent.load(std::memory_order_relaxed);
    Task* o = owner;
    delete this;
    if (p) p->release();
    if (o) o->release();
}

bool is_cancelled(Task* cur) {
    RuntimeImpl* rt = A::rt(cur);
    std::uint64_t epoch = rt->cancel_epoch_.load(std::memory_order_acquire);
    if (A::seen_epoch(cur) == epoch) return false;
    bool result = false;
    CancelNode* held[32];
    int nheld = 0;
    CancelNode* n = A::cancel_top(cur);
    Task* owner = cur;
    for (;;) {
        bool stop = false;
        while (n) {
            if (n->cancelled.load(std::memory_order_acquire)) {
                result = true;
                stop = true;
                break;
            }
            if (n->shield) {
                stop = true;
                break;
            }
            n = n->parent.load(std::memory_order_acquire);
        }
        if (stop) break;
        if (A::self_cancelled(owner).load(std::memory_order_acquire)) {
            result = true;
            break;
        }
        CancelNode* r;
        {
            std::lock_guard<SpinLock> lock(A::mu(owner));
            r = A::root(owner);
            if (r) r->retain();
        }
        if (!r) break;
        if (nheld == 32) {  // very deep task trees: drop the oldest hold (it is kept alive by r)
            held[0]->release();
            std::copy(held + 1, held + 32, held);
            --nheld;
        }
        held[nheld++] = r;
        owner = r->owner;
        n = r;
    }
    while (nheld)
        held[--nheld]->release();
    // A task run inline is part of its forcer's computation: the forcer's cancellation applies.
    if (!result && A::forcer(cur)) result = is_cancelled(A::forcer(cur));
    if (!result) A::seen_epoch(cur) = epoch;
    return result;
}

namespace {
void wake_for_cancel(Task* t) {
    A::budget(t).store(0, std::memory_order_relaxed);
    Task* h;
    {
        std::lock_guard<SpinLock> lock(A::mu(t));
        h = A::host(t);
        if (!h) return;
        h->retain();
    }
    A::budget(h).store(0, std::memory_order_relaxed);
    std::uint64_t w = A::wait_word(h).load(std::memory_order_acquire);
    if (static_cast<std::uint32_t>(w) == kWaitPending)
        try_wake(h, static_cast<std::uint32_t>(w >> 32), kWokeCancel);
    h->release();
}

struct Item {
    CancelNode* node = nullptr;  // a cancelled node: its owner, inner nodes, members
    Task* task = nullptr;        // a member task of a cancelled nursery: it and its nodes
};

// Nodes of `t`'s chain from the outermost inward (references taken), stopping before `stop`
// (exclusive) when walking outward from the innermost; returns false if `stop` was not found.
bool chain_inside(Task* t, CancelNode* stop, std::vector<CancelNode*>& out) {
    std::lock_guard<SpinLock> lock(A::mu(t));
    std::vector<CancelNode*> tmp;
    bool found = stop == nullptr;
    for (CancelNode* x = A::cancel_top(t); x; x = x->parent.load(std::memory_order_acquire)) {
        if (x == stop) {
            found = true;
            break;
        }
        if (x->owner != t) break;
        tmp.push_back(x);
    }
    if (!found) return false;
    for (auto it = tmp.rbegin(); it != tmp.rend(); ++it) {
        (*it)->retain();
        out.push_back(*it);
    }
    return true;
}

void propagate(std::vector<Item> work) {
    std::vector<CancelNode*> nodes;
    while (!work.empty()) {
        Item it = work.back();
        work.pop_back();
        nodes.clear();
        CancelNode* nursery_to_scan = nullptr;
        if (it.node) {
            wake_for_cancel(it.node->owner);
            chain_inside(it.node->owner, it.node, nodes);
            if (it.node->nursery) nursery_to_scan = it.node;
        } else {
            wake_for_cancel(it.task);
            chain_inside(it.task, nullptr, nodes);
        }
        bool shielded = false;
        for (CancelNode* x : nodes) {
            if (x->shield) shielded = true;
            if (!shielded && x->nursery) {
                x->retain();
                work.push_back(Item{x, nullptr});
            }
            x->release();
        }
        if (nursery_to_scan) {
            std::lock_guard<SpinLock> lock(nursery_to_scan->mu);
            for (Task* m = nursery_to_scan->members; m; m = A::member_next(m)) {
                m->retain();
                work.push_back(Item{nullptr, m});
            }
        }
        if (it.node) it.node->release();
        if (it.task) it.task->release();
    }
}
}  // namespace

void cancel_node(CancelNode* n) {
    if (n->cancelled.exchange(true, std::memory_order_acq_rel)) return;
    A::rt(n->owner)->cancel_epoch_.fetch_add(1, std::memory_order_acq_rel);
    n->retain();
    propagate({Item{n, nullptr}});
}

void deliver_cancel_to_task(Task* t) {
    t->retain();
    propagate({Item{nullptr, t}});
}

CancelNode* open_node(Task* cur, bool nursery, bool shield, std::int64_t deadline_ns) {
    auto* n = new CancelNode;
    n->nursery = nursery;
    n->shield = shield;
    n->owner = cur;
    cur->retain();
    CancelNode* parent = A::cancel_top(cur);
    if (parent) parent->retain();
    n->parent.store(parent, std::memory_order_relaxed);
    {
        std::lock_guard<SpinLock> lock(A::mu(cur));
        A::cancel_top(cur) = n;
    }
    if (shield) A::seen_epoch(cur) = 0;
    if (deadline_ns != INT64_MAX) {
        n->deadline_ns = deadline_ns;
        if (deadline_ns <= now_ns()) {
            n->deadline_hit.store(true, std::memory_order_release);
            cancel_node(n);
        } else {
            n->timer = A::rt(cur)->timers_->add_deadline(deadline_ns, n);
        }
    }
    return n;  // the caller's handle owns the initial reference
}

void close_node(Task* cur, CancelNode* n) {
    {
        std::lock_guard<SpinLock> lock(A::mu(cur));
        if (A::cancel_top(cur) == n) {
            A::cancel_top(cur) = n->parent.load(std::memory_order_relaxed);
        } else {
            // Out-of-order close (should not happen with LIFO scopes): unlink it anyway.
            for (CancelNode* x = A::cancel_top(cur); x;) {
                CancelNode* p = x->parent.load(std::memory_order_relaxed);
                if (p == n) {
                    CancelNode* pp = n->parent.load(std::memory_order_relaxed);
                    if (pp) pp->retain();
                    x->parent.store(pp, std::memory_order_release);
                    n->release();
                    break;
                }
                x = p;
            }
        }
    }
    // Leaving a shield exposes the outer scopes again: look at them afresh. Leaving any other
    // scope cannot make the task cancelled, so the cached answer stays valid.
    if (n->shield) A::seen_epoch(cur) = 0;
    if (n->timer) {
        A::rt(cur)->timers_->cancel(n->timer);
        n->timer = nullptr;
    }
}

bool nursery_wait(Task* cur, CancelNode* n) {
    // Deferred work the embedder kept as records for this nursery becomes tasks of it now (or
    // is dropped when the nursery is being abandoned), so the wait below covers it.
    if (g_hooks.closing) g_hooks.closing(cur, n, n->cancelled.load(std::memory_order_acquire));
    Task* host = A::host(cur);
    bool deadlock = false;
    for (;;) {
        std::uint32_t gen;
        {
            std::lock_guard<SpinLock> lock(n->mu);
            if (n->live == 0) {
                n->join_host = nullptr;
                break;
            }
            gen = begin_wait(host, "scope join", n);
            n->join_host = host;
            n->join_gen = gen;
        }
        if (!n->cancelled.load(std::memory_order_acquire) && is_cancelled(cur)) cancel_node(n);
        std::uint32_t code = wait_for_claim(cur, host, gen, false);
        if (code == kWokeCancel) {
            if (is_cancelled(cur)) cancel_node(n);
        } else if (code == kWokeDeadlock) {
            deadlock = true;
            cancel_node(n);
        }
    }
    return deadlock;
}

std::vector<std::exception_ptr> nursery_errors(CancelNode* n) {
    std::vector<std::exception_ptr> out;
    std::lock_guard<SpinLock> lock(n->mu);
    for (auto& [t, e] : n->errors)
        if (!A::observed(t.get()).load(std::memory_order_acquire)) out.push_back(e);
    return out;
}

}  // namespace detail

using namespace detail;

namespace {
Task* require_task(const char* what) {
    Task* cur = current();
    if (!cur) throw std::logic_error(std::string(what) + " used outside a runtime task");
    return cur;
}

std::int64_t combined_deadline(const CancelScopeOptions& o) {
    std::int64_t d = deadline_from(o.timeout);
    return std::min(d, o.deadline_ns);
}
}  // namespace

CancelScope::CancelScope(CancelScopeOptions options) {
    Task* cur = require_task("CancelScope");
    node_ = open_node(cur, false, options.shield, combined_deadline(options));
}

CancelScope::~CancelScope() {
    close_node(node_->owner, node_);
    node_->release();
}

void CancelScope::cancel() noexcept {
    cancel_node(node_);
}
bool CancelScope::cancel_called() const noexcept {
    return node_->cancelled.load(std::memory_order_acquire);
}
bool CancelScope::deadline_expired() const noexcept {
    return node_->deadline_hit.load(std::memory_order_acquire);
}

void CancelScope::set_deadline_ns(std::int64_t deadline_ns) {
    RuntimeImpl* rt = A::rt(node_->owner);
    if (node_->timer) {
        rt->timers_->cancel(node_->timer);
        node_->timer = nullptr;
    }
    node_->deadline_ns = deadline_ns;
    if (deadline_ns == INT64_MAX) return;
    if (deadline_ns <= now_ns()) {
        node_->deadline_hit.store(true, std::memory_order_release);
        cancel_node(node_);
    } else {
        node_->timer = rt->timers_->add_deadline(deadline_ns, node_);
    }
}

Scope::Scope(ScopeMode mode, CancelScopeOptions options) {
    Task* cur = require_task("Scope");
    node_ = open_node(cur, true, options.shield, combined_deadline(options));
    node_->fail_fast = mode == ScopeMode::FailFast;
}

namespace {
// Closing a nursery while unwinding: its tasks are cancelled and waited for, errors dropped.
void abandon_nursery(Task* cur, CancelNode* n) {
    cancel_node(n);
    nursery_wait(cur, n);
    close_node(cur, n);
}

// Closing a nursery normally (Scope::join, LazyScope::join): wait, close, raise what it collected.
void join_nursery(Task* cur, CancelNode* n) {
    bool deadlock = nursery_wait(cur, n);
    close_node(cur, n);
    auto errors = nursery_errors(n);
    bool fail_fast = n->fail_fast;
    if (n->implicit) {
        A::implicit(cur) = nullptr;
        n->release();
    }
    if (!fail_fast && !errors.empty()) throw ErrorGroup(std::move(errors), true);
    if (errors.size() == 1) std::rethrow_exception(errors[0]);
    if (errors.size() > 1) throw ErrorGroup(std::move(errors));
    if (deadlock) throw Deadlock(deadlock_report(A::rt(cur)));
    check_cancelled();
}
}  // namespace

Scope::~Scope() {
    if (!joined_) abandon_nursery(node_->owner, node_);
    node_->release();
}

void Scope::join() {
    if (joined_) return;
    joined_ = true;
    join_nursery(node_->owner, node_);
}

LazyScope::LazyScope(ScopeMode mode) : owner_(require_task("LazyScope")) {
    if (A::cancel_top(owner_) || A::implicit(owner_)) {
        eager_ = open_node(owner_, true, false, INT64_MAX);
        eager_->fail_fast = mode == ScopeMode::FailFast;
    } else {
        A::implicit_collects(owner_) = mode == ScopeMode::CollectAll;
    }
}

LazyScope::~LazyScope() {
    if (eager_) {
        if (!joined_) abandon_nursery(owner_, eager_);
        eager_->release();
        return;
    }
    A::implicit_collects(owner_) = false;
    if (joined_) return;
    if (CancelNode* n = A::implicit(owner_)) {
        abandon_nursery(owner_, n);
        A::implicit(owner_) = nullptr;
        n->release();
    }
}

void LazyScope::join() {
    if (joined_) return;
    joined_ = true;
    if (eager_) return join_nursery(owner_, eager_);
    A::implicit_collects(owner_) = false;
    if (CancelNode* n = A::implicit(owner_)) return join_nursery(owner_, n);
    check_cancelled();
}

void LazyScope::cancel() {
    cancel_node(eager_ ? eager_ : implicit_nursery(owner_));
}

void Scope::cancel() noexcept {
    cancel_node(node_);
}
bool Scope::cancel_called() const noexcept {
    return node_->cancelled.load(std::memory_order_acquire);
}
std::size_t Scope::live() const noexcept {
    std::lock_guard<SpinLock> lock(node_->mu);
    return node_->live;
}

void Scope::transfer(Task& task, Scope& to) {
    Task* t = &task;
    CancelNode* from = node_;
    CancelNode* dest = to.node_;
    if (from == dest) return;
    {
        std::lock_guard<SpinLock> tlock(A::mu(t));
        if (A::root(t) == from) {
            bool was_live = false;
            {
                std::lock_guard<SpinLock> lock(from->mu);
                Task* p = A::member_prev(t);
                Task* n = A::member_next(t);
                if (p)
                    A::member_next(p) = n;
                else
                    from->members = n;
                if (n) A::member_prev(n) = p;
                A::member_prev(t) = A::member_next(t) = nullptr;
                from->live--;
                was_live = true;
            }
            {
                std::lock_guard<SpinLock> lock(dest->mu);
                A::member_next(t) = dest->members;
                if (dest->members) A::member_prev(dest->members) = t;
                dest->members = t;
                if (was_live) dest->live++;
            }
            A::root(t) = dest;
        } else if (t->done()) {
            // Already finished: move its unobserved error, if any.
            std::exception_ptr err;
            {
                std::lock_guard<SpinLock> lock(from->mu);
                for (auto it = from->errors.begin(); it != from->errors.end(); ++it) {
                    if (it->first.get() == t) {
                        err = it->second;
                        from->errors.erase(it);
                        break;
                    }
                }
            }
            if (err) {
                std::lock_guard<SpinLock> lock(dest->mu);
                dest->errors.emplace_back(TaskRef(t), err);
            }
        }
    }
    A::rt(t)->cancel_epoch_.fetch_add(1, std::memory_order_acq_rel);
    if (dest->cancelled.load(std::memory_order_acquire)) deliver_cancel_to_task(t);
}

}  // namespace weft::rt
