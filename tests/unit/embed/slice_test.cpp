// EngineOptions::on_slice: the host is told each time a task of a call has run for a time
// slice, and may stop the call. Every wait is bounded.
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
