// tasks_snapshot() and current_deadline_ns() (runtime/introspect.cpp): the snapshot names every
// live task with its state, what it waits on and its owner; the deadline follows cancel scopes
// through the task tree up to a shield.
#include <algorithm>
#include <climits>

#include "test_support.h"

using namespace weft::rt;
using weft::rt::testing::RtTest;

class Introspect : public RtTest {};
WEFT_WORKER_PARAMS(Introspect);

namespace {

const TaskSnapshot* find(const std::vector<TaskSnapshot>& snap, std::uint64_t id) {
    for (auto& s : snap)
        if (s.task->id() == id) return &s;
    return nullptr;
}

// Yields until `pred()` holds; bounded (5 s) so a failure cannot hang the suite.
template <class P>
bool eventually(P pred) {
    std::int64_t deadline = now_ns() + 5'000'000'000;
    while (!pred()) {
        if (now_ns() > deadline) return false;
        sleep_for(0.0005);
    }
    return true;
}

}  // namespace

TEST_P(Introspect, SnapshotListsStatesWaitsAndParents) {
    Runtime rt(options());
    rt.block_on([&] {
        auto ch = Channel<int>::make();
        Scope scope;
        auto receiver = scope.spawn([ch]() mutable { return ch.recv(); }, "receiver");
        auto joiner = scope.spawn([receiver]() mutable { return receiver.get() + 1; }, "joiner");
        std::uint64_t rid = receiver.task().id(), jid = joiner.task().id();
        ASSERT_TRUE(eventually([&] {
            auto snap = tasks_snapshot();
            auto* r = find(snap, rid);
            auto* j = find(snap, jid);
            return r && j && r->state == TaskState::Blocked && j->state == TaskState::Blocked;
        }));
        auto snap = tasks_snapshot();
        ASSERT_TRUE(std::is_sorted(snap.begin(), snap.end(),
                                   [](auto& a, auto& b) { return a.task->id() < b.task->id(); }));
        Task* me = current_task();
        auto* self = find(snap, me->id());
        ASSERT_NE(self, nullptr);
        EXPECT_EQ(self->state, TaskState::Running);
        EXPECT_EQ(self->parent, 0u);  // the root
        auto* r = find(snap, rid);
        EXPECT_EQ(r->waits_on, "channel recv");
        EXPECT_EQ(r->parent, me->id());
        auto* j = find(snap, jid);
        EXPECT_EQ(j->waits_on, "join of " + receiver.task().label());
        ch.send(41);
        EXPECT_EQ(joiner.get(), 42);
        scope.join();
        auto after = tasks_snapshot();
        EXPECT_EQ(find(after, rid), nullptr);  // done tasks are not live
        EXPECT_EQ(after.size(), 1u);
    });
}

TEST_P(Introspect, UnstartedTaskIsListedAsSuch) {
    RuntimeOptions o = options();
    o.workers = 1;  // nobody else can start the child before the snapshot
    Runtime rt(o);
    rt.block_on([&] {
        Scope scope;
        auto child = scope.spawn([] { return 1; }, "later");
        auto snap = tasks_snapshot();
        auto* c = find(snap, child.task().id());
        ASSERT_NE(c, nullptr);
        EXPECT_EQ(c->state, TaskState::Unstarted);
        EXPECT_TRUE(c->waits_on.empty());
        scope.join();
    });
}

TEST_P(Introspect, DeadlineFollowsScopesAndTasksUpToAShield) {
    Runtime rt(options());
    EXPECT_TRUE(tasks_snapshot().empty());  // outside any task
    EXPECT_EQ(current_deadline_ns(), INT64_MAX);
    rt.block_on([&] {
        EXPECT_EQ(current_deadline_ns(), INT64_MAX);
        std::int64_t before = now_ns();
        CancelScopeOptions o;
        o.timeout = 100;
        CancelScope outer(o);
        std::int64_t d = current_deadline_ns();
        EXPECT_GE(d, before + 99'000'000'000);
        EXPECT_LE(d, now_ns() + 100'000'000'000);
        {
            CancelScopeOptions inner_o;
            inner_o.timeout = 50;
            CancelScope inner(inner_o);
            EXPECT_LT(current_deadline_ns(), d);  // the innermost (earliest) wins
        }
        EXPECT_EQ(current_deadline_ns(), d);
        {
            CancelScopeOptions s;
            s.shield = true;
            CancelScope shield(s);
            EXPECT_EQ(current_deadline_ns(), INT64_MAX);  // a shield hides the outer deadlines
        }
        Scope scope;
        auto child = scope.spawn([] {
            sleep_for(
                0.001);  // on its own fiber, or inline in its forcer: the deadline is the same
            return current_deadline_ns();
        });
        EXPECT_EQ(child.get(), d);  // a child inherits the deadline of the scope it was started in
        scope.join();
    });
}
