// Basic scheduler and task behaviour: block_on, spawn, join, inline forcing, yield, sleep.
#include <atomic>
#include <ctime>
#include <thread>

#include "test_support.h"

using namespace weft::rt;
using weft::rt::testing::RtTest;

class Basic : public RtTest {};
WEFT_WORKER_PARAMS(Basic);

TEST_P(Basic, BlockOnReturnsValue) {
    Runtime rt(options());
    EXPECT_EQ(rt.block_on([] { return 42; }), 42);
}

TEST_P(Basic, BlockOnRethrows) {
    Runtime rt(options());
    EXPECT_THROW(rt.block_on([] { throw std::runtime_error("boom"); }), std::runtime_error);
}

TEST_P(Basic, SpawnAndGet) {
    Runtime rt(options());
    int r = rt.block_on([] {
        auto a = spawn([] { return 20; });
        auto b = spawn([] { return 22; });
        return a.get() + b.get();
    });
    EXPECT_EQ(r, 42);
}

TEST_P(Basic, ForcedUnstartedTaskRunsInline) {
    Runtime rt(options());
    rt.block_on([] {
        Task* self = current_task();
        auto h = spawn([] { return current_task(); });
        Task* ran_on = h.get();
        EXPECT_NE(ran_on, nullptr);
        EXPECT_NE(ran_on, self);
    });
    // With one worker nothing can steal the child before the parent forces it.
    if (GetParam() == 1) {
        EXPECT_GE(rt.counters().inlined, 1u);
    }
}

TEST_P(Basic, RecursiveFib) {
    Runtime rt(options());
    std::function<long(int)> fib = [&](int n) -> long {
        if (n < 2) return n;
        auto a = spawn([&fib, n] { return fib(n - 1); });
        long b = fib(n - 2);
        return a.get() + b;
    };
    EXPECT_EQ(rt.block_on([&] { return fib(20); }), 6765);
}

TEST_P(Basic, YieldInterleaves) {
    Runtime rt(options());
    std::atomic<int> counter{0};
    rt.block_on([&] {
        for (int i = 0; i < 4; ++i)
            spawn([&] {
                for (int k = 0; k < 100; ++k) {
                    counter++;
                    yield_now();
                }
            });
    });
    EXPECT_EQ(counter.load(), 400);
}

TEST_P(Basic, SleepSleeps) {
    Runtime rt(options());
    auto t0 = now_ns();
    rt.block_on([] { sleep_for(0.02); });
    EXPECT_GE(now_ns() - t0, 19'000'000);
}

TEST_P(Basic, ManySleepersFinishTogether) {
    Runtime rt(options());
    auto t0 = now_ns();
    std::atomic<int> n{0};
    rt.block_on([&] {
        for (int i = 0; i < 1000; ++i)
            spawn([&] {
                sleep_for(0.05);
                n++;
            });
    });
    EXPECT_EQ(n.load(), 1000);
    EXPECT_LT(now_ns() - t0, 2'000'000'000LL * weft::rt::testing::kScale);
}

TEST_P(Basic, RemainingStackShrinksWithDepth) {
    Runtime rt(options());
    rt.block_on([] {
        std::size_t a = remaining_stack();
        EXPECT_GT(a, 100u * 1024);
        EXPECT_LE(a, RuntimeOptions{}.stack_size);  // 256 KiB; 1 MiB under the sanitizers
        std::function<std::size_t(int)> deep = [&](int d) -> std::size_t {
            volatile char pad[1024];
            pad[0] = 0;
            if (d == 0) return remaining_stack() + pad[0];
            return deep(d - 1);
        };
        EXPECT_LT(deep(20), a - 20 * 1024);
    });
}

#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
// A stack overflow in a task hits the guard page and is reported, not silent.
static int recurse_forever(int d) {
    volatile char pad[512];
    pad[0] = static_cast<char>(d);
    if (d == -1) return 0;  // never true; keeps the compiler from calling it infinite
    return recurse_forever(d + 1) + pad[0];
}

TEST(BasicDeath, StackOverflowIsReported) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        {
            RuntimeOptions o;
            o.workers = 1;
            o.install_signal_handlers = true;
            Runtime rt(o);
            rt.block_on([] { return recurse_forever(0); });
        },
        "stack overflow");
}
#endif

TEST_P(Basic, StopIsIdempotentAndIdleRuntimeUsesNoCpu) {
    Runtime rt(options());
    rt.block_on([] { sleep_for(0.001); });
    // Parked workers sleep on a futex: 100 ms of idleness costs (almost) no CPU.
    std::clock_t c0 = std::clock();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    double cpu_s = double(std::clock() - c0) / CLOCKS_PER_SEC;
    EXPECT_LT(cpu_s, 0.02 * weft::rt::testing::kScale);
    rt.stop();
    rt.stop();
}
