// rt::oneshot: a task parks until a plain (non-runtime) thread completes the wait; cancellation
// reaches the sender; the deadlock detector counts pending external completions; and the
// optional, chained SIGSEGV handler.
#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <future>
#include <thread>

#include "runtime/stack_pool.h"
#include "test_support.h"
#include "weft/runtime/oneshot.hpp"

using namespace weft::rt;
using weft::rt::testing::RtTest;

class Oneshot : public RtTest {};
WEFT_WORKER_PARAMS(Oneshot);

// The value comes from a plain thread that starts after the task parked; meanwhile another
// task keeps running on the same worker(s): the wait parks the task, not the worker.
TEST_P(Oneshot, ValueFromAPlainThread) {
    Runtime rt(options());
    std::thread completer;
    int ticks = 0;
    int v = rt.block_on([&] {
        auto [tx, rx] = oneshot<int>();
        completer = std::thread([tx = std::move(tx)]() mutable {
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
            EXPECT_TRUE(tx.set_value(42));
        });
        std::atomic<bool> stop{false};
        auto ticker = spawn([&] {
            while (!stop.load()) {
                ++ticks;
                sleep_for(0.001);
            }
        });
        int r = rx.wait();
        stop = true;
        ticker.get();
        return r;
    });
    completer.join();
    EXPECT_EQ(v, 42);
    EXPECT_GT(ticks, 3);  // ran while the root waited (30 ms of 1 ms sleeps)
}

TEST_P(Oneshot, ErrorIsRethrownAndVoidWorks) {
    Runtime rt(options());
    EXPECT_THROW(rt.block_on([] {
        auto [tx, rx] = oneshot<int>();
        std::thread th([tx = std::move(tx)]() mutable {
            tx.set_error(std::make_exception_ptr(std::invalid_argument("bad")));
        });
        th.join();
        return rx.wait();
    }),
                 std::invalid_argument);
    rt.block_on([] {
        auto [tx, rx] = oneshot<void>();
        EXPECT_FALSE(rx.ready());
        EXPECT_TRUE(tx.set_value());
        EXPECT_TRUE(rx.ready());
        rx.wait();
    });
}

TEST_P(Oneshot, SecondCompletionIsRefused) {
    Runtime rt(options());
    rt.block_on([] {
        auto [tx, rx] = oneshot<int>();
        EXPECT_TRUE(tx.set_value(1));
        EXPECT_FALSE(tx.set_value(2));  // the handle is spent
        EXPECT_FALSE(tx.valid());
        EXPECT_EQ(rx.wait(), 1);
    });
}

TEST_P(Oneshot, DroppedSenderBreaksTheWait) {
    Runtime rt(options());
    EXPECT_THROW(rt.block_on([] {
        auto [tx, rx] = oneshot<int>();
        std::thread th([tx = std::move(tx)] {});  // dropped unsent
        th.join();
        return rx.wait();
    }),
                 BrokenOneshot);
}

// A cancelled waiter stops waiting at once; the sender sees cancelled(), its on_cancel callback
// runs once, and a late value is refused.
TEST_P(Oneshot, CancellationReachesTheSender) {
    Runtime rt(options());
    std::promise<OneshotSender<int>> handoff;
    std::atomic<int> cancels{0};
    bool expired = rt.block_on([&] {
        auto [tx, rx] = oneshot<int>();
        tx.on_cancel([&] { cancels.fetch_add(1); });
        handoff.set_value(std::move(tx));
        return !move_on_after(0.02, [&](CancelScope&) { rx.wait(); });
    });
    EXPECT_TRUE(expired);
    auto tx = handoff.get_future().get();
    EXPECT_TRUE(tx.cancelled());
    EXPECT_EQ(cancels.load(), 1);
    EXPECT_FALSE(tx.set_value(7));
    EXPECT_EQ(cancels.load(), 1);
    // A callback added after the cancellation runs at once.
    OneshotSender<int> tx2;
    {
        auto [a, b] = oneshot<int>();
        tx2 = std::move(a);
    }  // receiver dropped: abandoned
    bool ran = false;
    tx2.on_cancel([&] { ran = true; });
    EXPECT_TRUE(ran);
}

// While a task waits on a oneshot whose sender lives, no Deadlock is reported even though every
// worker is idle; once the sender is dropped the wait ends with BrokenOneshot.
TEST_P(Oneshot, PendingCompletionIsNotADeadlock) {
    Runtime rt(options());
    std::promise<OneshotSender<int>> handoff;
    std::thread completer([&] {
        auto tx = handoff.get_future().get();
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // all workers idle
        tx.set_value(5);
    });
    int v = rt.block_on([&] {
        auto [tx, rx] = oneshot<int>();
        handoff.set_value(std::move(tx));
        auto child = spawn([] { return 1; });
        return rx.wait() + child.get();
    });
    completer.join();
    EXPECT_EQ(v, 6);
}

// Without a sender nothing can wake a task: Deadlock, as for a channel no one writes.
TEST_P(Oneshot, AbandonedWaitStillFindsRealDeadlocks) {
    Runtime rt(options());
    EXPECT_THROW(rt.block_on([] {
        auto [tx, rx] = oneshot<int>();
        auto ch = Channel<int>::make(0);
        ch.recv();  // no one sends: a real deadlock while tx is not waited on
    }),
                 Deadlock);
}

// Many tasks, many completer threads: stress the wake/uncount handshake (TSan runs this).
TEST_P(Oneshot, ManyConcurrentCompletions) {
    Runtime rt(options());
    constexpr int kN = 200;
    std::vector<std::thread> threads;
    std::mutex mu;
    long sum = rt.block_on([&] {
        std::vector<TaskHandle<int>> hs;
        for (int i = 0; i < kN; ++i)
            hs.push_back(spawn([&, i] {
                auto [tx, rx] = oneshot<int>();
                {
                    std::lock_guard<std::mutex> lock(mu);
                    threads.emplace_back([tx = std::move(tx), i]() mutable { tx.set_value(i); });
                }
                return rx.wait();
            }));
        long s = 0;
        for (auto& h : hs)
            s += h.get();
        return s;
    });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(sum, long(kN) * (kN - 1) / 2);
}

TEST(OneshotThread, PlainThreadWaiterBlocks) {
    auto [tx, rx] = oneshot<std::string>();
    std::thread th([tx = std::move(tx)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        tx.set_value("hi");
    });
    EXPECT_EQ(rx.wait(), "hi");
    th.join();
}

#if !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
// The SIGSEGV handler is only installed on request, and a fault that is not a guard-page hit
// goes to the handler the host had installed before.
namespace {
sigjmp_buf g_jump;
volatile sig_atomic_t g_host_handler_ran = 0;
void host_segv(int, siginfo_t*, void*) {
    g_host_handler_ran = 1;
    siglongjmp(g_jump, 1);
}
}  // namespace

TEST(SignalHandlers, OffByDefaultAndChainedWhenOn) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            struct sigaction sa;
            std::memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = host_segv;
            sa.sa_flags = SA_SIGINFO;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGSEGV, &sa, nullptr);
            {
                RuntimeOptions o;
                o.workers = 1;
                Runtime rt(o);
                rt.block_on([] {});
                if (detail::overflow_handler_installed()) std::_Exit(3);  // off by default
            }
            {
                RuntimeOptions o;
                o.workers = 1;
                o.install_signal_handlers = true;
                Runtime rt(o);
                rt.block_on([] {});
                if (!detail::overflow_handler_installed()) std::_Exit(4);
            }
            if (sigsetjmp(g_jump, 1) == 0) {
                volatile int* p = nullptr;
                *p = 1;  // a foreign fault: must reach host_segv
                std::_Exit(5);
            }
            std::_Exit(g_host_handler_ran ? 0 : 6);
        },
        ::testing::ExitedWithCode(0), "");
}
#endif

// Runtime::start_root: a root task started without blocking the caller (the embedding API's
// call_async); several at once from one thread; a deadlocked one gets Deadlock like block_on's.
TEST_P(Oneshot, StartRootRunsWithoutBlockingTheCaller) {
    Runtime rt(options());
    std::vector<TaskRef> roots;
    std::atomic<int> sum{0};
    for (int i = 1; i <= 10; ++i)
        roots.push_back(rt.start_root([&, i] {
            auto h = spawn([i] { return i; });
            sleep_for(0.001);
            sum.fetch_add(h.get());
        }));
    for (auto& r : roots) {
        EXPECT_TRUE(r->join_for(10));
        EXPECT_EQ(r->error(), nullptr);
    }
    EXPECT_EQ(sum.load(), 55);
    TaskRef dead = rt.start_root([] {
        auto ch = Channel<int>::make(0);
        ch.recv();
    });
    ASSERT_TRUE(dead->join_for(10));
    EXPECT_THROW(dead->rethrow_error(), Deadlock);
}
