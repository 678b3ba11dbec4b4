// Scopes (nurseries) and cancel scopes: structured concurrency in the style of Trio.
//
// A Scope owns the tasks spawned into it; closing it (`join()`) waits for all of them. In
// fail-fast mode the first failure cancels the others; in collect-all mode every task runs to
// the end. Either way every error is kept: one error is rethrown as itself, several as an
// ErrorGroup (collect-all always raises ErrorGroup with partial() set). Errors already observed
// through a task handle (`get()`, `rethrow_error()`) are not raised again.
//
// A CancelScope delimits a region that can be cancelled as a unit, by `cancel()` or by a
// deadline. Cancellation is delivered at checkpoints (every blocking call, check_cancelled(),
// checkpoint()) as a `Cancelled` exception that unwinds to the cancelled scope; `run()` /
// `move_on_after()` swallow it there. Scopes nest: a task is cancelled when any enclosing scope
// (through the task tree: a child's scope chain continues in its parent at the point where the
// nursery was opened) is cancelled, up to the first shield; the innermost deadline wins because
// it fires first. A shielded scope ignores outside cancellation but not its own.
//
// Both objects must be created, used for spawning and closed by the task that created them
// (they are lexical), but `cancel()` may be called from anywhere. They must be destroyed in
// reverse order of creation (LIFO), like the blocks they stand for.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

#include "weft/runtime/task.hpp"

namespace weft::rt {

enum class ScopeMode : std::uint8_t { FailFast, CollectAll };

struct CancelScopeOptions {
    /// Relative deadline in seconds from now; infinity = none.
    double timeout = std::numeric_limits<double>::infinity();
    /// Absolute steady-clock deadline in nanoseconds (now_ns()); INT64_MAX = none. The earlier
    /// of `timeout` and `deadline_ns` applies.
    std::int64_t deadline_ns = std::numeric_limits<std::int64_t>::max();
    /// Ignore cancellation from enclosing scopes.
    bool shield = false;
};

/// A cancel scope (Trio's CancelScope). Opened by the constructor in the current task.
class CancelScope {
  public:
    explicit CancelScope(CancelScopeOptions options = {});
    /// Closes the scope (restores the enclosing one). Never throws.
    ~CancelScope();
    CancelScope(const CancelScope&) = delete;
    CancelScope& operator=(const CancelScope&) = delete;

    /// Cancels everything inside: checkpoints in the region (and in tasks of nurseries opened
    /// inside it) raise Cancelled. Idempotent; any thread.
    void cancel() noexcept;
    /// True once cancel() was called or the deadline passed.
    bool cancel_called() const noexcept;
    /// True if the deadline (rather than cancel()) caused the cancellation.
    bool deadline_expired() const noexcept;
    /// Moves the deadline (absolute, steady-clock ns). Only tightens or loosens future firing.
    void set_deadline_ns(std::int64_t deadline_ns);

    /// Runs `f` inside a new cancel scope; returns true if it completed, false if it was cut
    /// short by this scope's cancellation (Cancelled swallowed). Other errors propagate.
    template <class F>
    static bool run(CancelScopeOptions options, F&& f) {
        CancelScope cs(options);
        try {
            f(cs);
        } catch (const Cancelled&) {
            if (!cs.cancel_called()) throw;
            return false;
        }
        return true;
    }

    detail::CancelNode* node() const noexcept { return node_; }

  private:
    detail::CancelNode* node_;
};

/// Runs `f(CancelScope&)` with a deadline `seconds` from now; returns false if it was cut short
/// (Trio's move_on_after).
template <class F>
bool move_on_after(double seconds, F&& f) {
    CancelScopeOptions o;
    o.timeout = seconds;
    return CancelScope::run(o, std::forward<F>(f));
}

/// Runs `f(CancelScope&)` with a deadline `seconds` from now; raises TimeoutError if the deadline
/// cut it short (the language's `with timeout(...)`).
template <class F>
void with_timeout(double seconds, F&& f) {
    CancelScopeOptions o;
    o.timeout = seconds;
    bool expired = false;
    {
        CancelScope cs(o);
        try {
            f(cs);
        } catch (const Cancelled&) {
            if (!cs.cancel_called()) throw;
            expired = cs.deadline_expired();
            if (!expired) return;
        }
    }
    if (expired) throw TimeoutError();
}

/// A nursery. Opened by the constructor in the current task; also a cancel scope.
class Scope {
  public:
    explicit Scope(ScopeMode mode = ScopeMode::FailFast, CancelScopeOptions options = {});
    /// If join() was not called: cancels the tasks, waits for them and drops their errors (so
    /// that unwinding never leaks a task). Never throws.
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

    /// Spawns `f` as a task owned by this scope (unstarted until a worker or a forcer runs it).
    template <class F>
    auto spawn(F&& f, std::string_view name = {}) {
        using R = std::invoke_result_t<std::decay_t<F>&>;
        auto* t = new detail::TaskImpl<std::decay_t<F>, R>(std::forward<F>(f));
        return TaskHandle<R>(detail::spawn_task(t, name, node_));
    }

    /// Waits for every task, closes the scope, then raises: the single unobserved error, or
    /// ErrorGroup for several (always ErrorGroup{partial} in collect-all mode), or Cancelled when
    /// an enclosing scope was cancelled, or Deadlock. Cancellation of the waiting task cancels
    /// the scope's tasks and keeps waiting for them. Call once.
    void join();
    /// Cancels all tasks of the scope (and code inside it). Any thread.
    void cancel() noexcept;
    bool cancel_called() const noexcept;
    /// Tasks of this scope not yet done.
    std::size_t live() const noexcept;

    /// Moves `task` (owned by this scope) to `to` (normally an enclosing scope): used when a
    /// function returns a promise its own scope created. Its error, if any, then belongs to `to`.
    void transfer(Task& task, Scope& to);

    detail::CancelNode* node() const noexcept { return node_; }

  private:
    detail::CancelNode* node_;
    bool joined_ = false;
};

/// A nursery made on first use: while it is open, the current task's *implicit* scope (the one
/// spawn() uses when no Scope is open) is created in `mode` by the first spawn, and join() waits
/// for it. A task that never spawns pays nothing for it — no node, no wait — which is why the VM
/// wraps every task body in one (most tasks of a fan-out are leaves).
///
/// Must be the task's outermost scope: opened before any other scope of the task and joined
/// after all of them closed. When the task already has a scope open or an implicit scope, it
/// opens an ordinary Scope at once instead (same behaviour, eager cost).
/// join() raises exactly as Scope::join in `mode`; the destructor, if join() was not called,
/// cancels, waits and drops errors as ~Scope does. Not thread-safe: owned by the task.
class LazyScope {
  public:
    explicit LazyScope(ScopeMode mode = ScopeMode::FailFast);
    ~LazyScope();
    LazyScope(const LazyScope&) = delete;
    LazyScope& operator=(const LazyScope&) = delete;

    /// See Scope::join. After it the task has no implicit scope (a later spawn makes a new one).
    void join();
    /// Cancels the tasks spawned into the scope so far and any spawned later (it creates the
    /// node if there is none yet, so the cancellation is remembered). Call from the owning task.
    void cancel();

  private:
    Task* owner_;
    detail::CancelNode* eager_ = nullptr;  // the fallback: an ordinary nursery opened at once
    bool joined_ = false;
};

}  // namespace weft::rt
