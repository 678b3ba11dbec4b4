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
