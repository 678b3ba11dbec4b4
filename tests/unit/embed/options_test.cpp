// EngineOptions::on_slice (the host is told each time a task of a call has run for a time slice,
// and may stop the call), EngineOptions::shutdown_grace, and the per-call Limits::max_tasks and
// max_depth of CallOptions. Every wait is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "weft/weft.hpp"

using namespace std::chrono_literals;

struct Pt {
    double x = 0;
    double y = 0;
};
WEFT_RECORD(Pt, x, y);
struct Seg {
    Pt a;
    Pt b;
    std::string label;
};
WEFT_RECORD(Seg, a, b, label);

namespace {

TEST(OnSlice, ToldAboutLongRunningTasksAndMayStopThem) {
    std::mutex mu;
    std::vector<weft::SliceInfo> seen;
    std::vector<std::string> tasks;
    std::atomic<bool> stop{true};
    weft::EngineOptions o;
    o.workers = 1;
    o.name = "sliced";
    o.on_slice = [&](const weft::SliceInfo& s) {
        std::lock_guard<std::mutex> g(mu);
        seen.push_back(s);
        tasks.emplace_back(s.task);
        return !(stop && seen.size() >= 3);
    };
    weft::Engine e(o);
    e.exec("def spin():\n    n = 0\n    while True:\n        n += 1\n\ndef short():\n    return sum(range(1000))\n");
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_THROW(e.call("spin"), weft::Interrupted);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
    {
        std::lock_guard<std::mutex> g(mu);
        ASSERT_EQ(seen.size(), 3u);
        for (size_t i = 0; i < seen.size(); ++i) {
            EXPECT_EQ(seen[i].engine, "sliced");
            EXPECT_EQ(tasks[i].rfind("sliced:spin#", 0), 0u) << tasks[i];  // the root task of call("spin")
            if (i > 0) {
                EXPECT_GT(seen[i].steps, seen[i - 1].steps);
                EXPECT_GT(seen[i].elapsed_ns, seen[i - 1].elapsed_ns);
            }
        }
        EXPECT_GE(seen[2].elapsed_ns, 25'000'000);  // three slices of ~10 ms
        seen.clear();
    }
    // The Engine goes on; a short call is never told about.
    EXPECT_EQ(e.call<int>("short"), 499500);
    std::lock_guard<std::mutex> g(mu);
    EXPECT_TRUE(seen.empty());
}

TEST(OnSlice, TimeParkedIsNotCounted) {
    std::atomic<int> slices{0};
    weft::EngineOptions o;
    o.workers = 1;
    o.on_slice = [&](const weft::SliceInfo&) {
        ++slices;
        return true;
    };
    weft::Engine e(o);
    e.exec("def nap():\n    for i in range(20):\n        sleep(0.01)\n    return 'rested'\n");
    EXPECT_EQ(e.call<std::string>("nap"), "rested");
    EXPECT_EQ(slices.load(), 0);
}

TEST(OnSlice, AThrowingHookStopsTheCallNotTheWorker) {
    weft::EngineOptions o;
    o.workers = 1;
    o.on_slice = [](const weft::SliceInfo&) -> bool { throw std::runtime_error("host bug"); };
    weft::Engine e(o);
    e.exec("def spin():\n    while True:\n        pass\n");
    EXPECT_THROW(e.call("spin"), weft::Interrupted);
    EXPECT_EQ(e.eval<int>("6 * 7"), 42);
}

}  // namespace

namespace {

// EngineOptions::shutdown_grace: ~Engine reports a call that outlives the grace, and still
// waits for it (the host function's own state must not be destroyed under it).
TEST(ShutdownGrace, ACallOutlivingTheGraceIsReportedAndAwaited) {
    std::mutex mu;
    std::string err;
    std::atomic<bool> returned{false};
    weft::EngineOptions o;
    o.workers = 1;
    o.name = "svc";
    o.shutdown_grace = 50ms;
    o.stderr_sink = [&](std::string_view s) {
        std::lock_guard<std::mutex> g(mu);
        err += s;
    };
    auto e = std::make_unique<weft::Engine>(o);
    std::atomic<bool> entered{false};
    e->def_blocking("stubborn", [&] {
        entered = true;
        std::this_thread::sleep_for(400ms);  // ignores cancellation
        returned = true;
        return 1;
    });
    e->exec("def work():\n    return stubborn()\n");
    auto f = e->call_async("work");
    for (int i = 0; i < 2000 && !entered; ++i) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(entered.load());
    e.reset();
    EXPECT_TRUE(returned.load());  // waited for
    std::lock_guard<std::mutex> g(mu);
    EXPECT_NE(err.find("weft: engine 'svc': still running 50 ms after ~Engine interrupted its calls "
                       "(EngineOptions::shutdown_grace): 0 call(s), 1 blocking host function(s); waiting for them\n"),
              std::string::npos)
        << err;
}

TEST(ShutdownGrace, CallsThatEndInTimeAreNotReported) {
    std::string err;
    weft::EngineOptions o;
    o.workers = 1;
    o.stderr_sink = [&](std::string_view s) { err += s; };
    {
        weft::Engine e(o);
        e.exec("def loop():\n    try:\n        while True:\n            sleep(0.01)\n    finally:\n        print('cleanup')\n");
        auto f = e.call_async("loop");
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(err, "");
}

}  // namespace

namespace {

weft::CallOptions call_limits(std::size_t max_tasks, std::size_t max_depth) {
    weft::CallOptions o;
    o.limits = weft::Limits{};
    o.limits->max_tasks = max_tasks;
    o.limits->max_depth = max_depth;
    return o;
}

const char* kLimitsScript = R"(
def deep(n):
    if n == 0:
        return 0
    return 1 + deep(n - 1)

def deep_in_task(n):
    t = spawn deep(n)
    return t.result()

def fan(n):
    tasks = [spawn sleep(0.05) for i in range(n)]
    for t in tasks:
        t.result()
    return n
)";

TEST(CallLimits, MaxDepthNarrowedForOneCall) {
    weft::EngineOptions o;
    o.workers = 2;
    weft::Engine e(o);
    e.exec(kLimitsScript);
    EXPECT_EQ(e.call<int>("deep", 300), 300);
    try {
        e.call_with(call_limits(0, 100), "deep", 300);
        FAIL() << "no RecursionError";
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "RecursionError") << err.what();
    }
    try {
        e.call_with(call_limits(0, 100), "deep_in_task", 300);  // in a task the call spawned too
        FAIL() << "no RecursionError in the task";
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "RecursionError") << err.what();
    }
    EXPECT_EQ(e.call_with<int>(call_limits(0, 1000), "deep", 300), 300);
    EXPECT_EQ(e.call<int>("deep", 300), 300);  // the next call has the Engine's limit again
}

TEST(CallLimits, MaxTasksNarrowedForOneCall) {
    weft::EngineOptions o;
    o.workers = 2;
    weft::Engine e(o);
    e.exec(kLimitsScript);
    EXPECT_EQ(e.call<int>("fan", 10), 10);
    try {
        e.call_with(call_limits(3, 0), "fan", 10);
        FAIL() << "no error for the fourth live task";
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "Error") << err.what();
        EXPECT_NE(std::string(err.what()).find("the call's limit of 3 (Limits::max_tasks)"), std::string::npos)
            << err.what();
    }
    EXPECT_EQ(e.call_with<int>(call_limits(3, 0), "fan", 3), 3);
    // Two calls at once each have their own count.
    auto a = e.call_async_with<int>(call_limits(3, 0), e.global("fan"), 3);
    EXPECT_EQ(e.call_with<int>(call_limits(3, 0), "fan", 3), 3);
    EXPECT_EQ(a.get(), 3);
    EXPECT_EQ(e.call<int>("fan", 10), 10);
}

}  // namespace

namespace {

// Engine::def_struct: WEFT_RECORD values arrive as instances of a Weft struct, also nested.
TEST(DefStruct, RecordsArriveAsStructsOnceDefined) {
    weft::EngineOptions o;
    o.workers = 1;
    weft::Engine e(o);
    e.exec("def describe(p):\n    if isinstance(p, dict):\n        return 'dict'\n    return str(p)\n");
    EXPECT_EQ(e.call<std::string>("describe", Pt{1, 2}), "dict");  // before def_struct
    e.def_struct<Pt>("Pt").def_struct<Seg>("Seg");
    e.def("origin", [] { return Pt{0, 0}; });
    e.exec(R"(
def length(s):
    return s.b.x - s.a.x

def total(ps):
    t = 0.0
    for p in ps:
        t += p.x + p.y
    return t

def make(x):
    return Pt(x, 2.0)

def value_of_k(d):
    return describe(d['k'])  # a record as a dict's value
)");
    EXPECT_EQ(e.call<std::string>("describe", Pt{1, 2}), "Pt(x=1.0, y=2.0)");
    EXPECT_EQ(e.call<std::string>("describe", weft::kw("p", weft::Value::from(Pt{3, 4}))), "Pt(x=3.0, y=4.0)");  // as a keyword
    EXPECT_EQ(e.call<double>("length", Seg{{1, 0}, {4, 0}, "s"}), 3.0);           // a record in a record
    EXPECT_EQ(e.call<double>("total", std::vector<Pt>{{1, 2}, {3, 4}}), 10.0);     // records in a list
    EXPECT_EQ(e.call<std::string>("value_of_k", std::map<std::string, Pt>{{"k", {5, 6}}}), "Pt(x=5.0, y=6.0)");
    Pt back = e.call<Pt>("make", 5.0);  // a Weft struct converts back to the record
    EXPECT_EQ(back.x, 5.0);
    EXPECT_EQ(back.y, 2.0);
    EXPECT_TRUE(e.eval<bool>("isinstance(origin(), Pt)"));  // a host function's result
    e.set_global("p0", weft::Value::from(Pt{7, 8}));
    EXPECT_TRUE(e.eval<bool>("isinstance(p0, Pt) and p0.y == 8.0"));
    EXPECT_NO_THROW(e.def_struct<Pt>("Pt"));  // the same definition again: fine
    e.exec("struct Other:\n    z = 1\n");
    EXPECT_THROW(e.def_struct<Pt>("Other"), weft::UsageError);
    EXPECT_THROW(e.def_struct<Pt>("not a name"), weft::UsageError);
}

TEST(DefStruct, AnotherEngineStillGetsDicts) {
    weft::EngineOptions o;
    o.workers = 1;
    weft::Engine with(o), without(o);
    with.def_struct<Pt>("Pt");
    weft::Value v = weft::Value::from(Pt{1, 2});
    EXPECT_TRUE(with.call<bool>("isinstance", v, with.global("Pt")));
    EXPECT_TRUE(without.call<bool>("isinstance", v, without.eval("dict")));
}

}  // namespace
