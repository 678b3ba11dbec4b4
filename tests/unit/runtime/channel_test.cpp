// Go channel semantics, re-expressed (after Go's test/chan/*.go and runtime/chan_test.go).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <optional>
#include <set>
#include <vector>

#include "test_support.h"

using namespace weft::rt;
using weft::rt::testing::kScale;
using weft::rt::testing::RtTest;

class Chan : public RtTest {};
WEFT_WORKER_PARAMS(Chan);

// A chain of 10 tasks forwarding values: order is preserved (unbuffered and buffered).
static void chain_fifo(std::size_t cap) {
    constexpr int kTasks = 10, kValues = 1000;
    std::vector<Channel<int>> chans;
    for (int i = 0; i <= kTasks; ++i)
        chans.push_back(Channel<int>::make(cap));
    for (int i = 0; i < kTasks; ++i) {
        spawn([in = chans[i], out = chans[i + 1]]() mutable {
            while (auto v = in.recv_ok())
                out.send(*v);
            out.close();
        });
    }
    spawn([in = chans[0]]() mutable {
        for (int v = 0; v < kValues; ++v)
            in.send(v);
        in.close();
    });
    int expect = 0;
    while (auto v = chans[kTasks].recv_ok())
        EXPECT_EQ(*v, expect++);
    EXPECT_EQ(expect, kValues);
}

TEST_P(Chan, FifoUnbufferedChain) {
    Runtime rt(options());
    rt.block_on([] { chain_fifo(0); });
}

TEST_P(Chan, FifoBufferedChain) {
    Runtime rt(options());
    rt.block_on([] { chain_fifo(7); });
}

TEST_P(Chan, FifoUnboundedChain) {
    Runtime rt(options());
    rt.block_on([] { chain_fifo(detail::ChannelCore::kUnbounded); });
}

// Go's test/chan/doubleselect.go: a select over 4 unbuffered channels never delivers a value
// twice and never loses one.
TEST_P(Chan, DoubleSelectNeverDuplicates) {
    Runtime rt(options());
    const int n = 100000 / kScale;
    rt.block_on([n] {
        std::vector<Channel<int>> c;
        for (int i = 0; i < 4; ++i)
            c.push_back(Channel<int>::make());
        auto merged = Channel<int>::make();
        spawn([c, n]() mutable {
            for (int i = 0; i < n; ++i) {
                Select s;
                int v0 = i, v1 = i, v2 = i, v3 = i;
                s.send(c[0], v0);
                s.send(c[1], v1);
                s.send(c[2], v2);
                s.send(c[3], v3);
                s.wait();
            }
            for (auto& ch : c)
                ch.close();
        });
        auto remaining = std::make_shared<std::atomic<int>>(4);
        for (int k = 0; k < 4; ++k)
            spawn([in = c[k], merged, remaining]() mutable {
                while (auto v = in.recv_ok())
                    merged.send(*v);
                if (remaining->fetch_sub(1) == 1) merged.close();
            });
        std::vector<char> seen(static_cast<std::size_t>(n), 0);
        int count = 0;
        while (auto v = merged.recv_ok()) {
            ASSERT_GE(*v, 0);
            ASSERT_LT(*v, n);
            ASSERT_EQ(seen[static_cast<std::size_t>(*v)], 0) << "duplicate " << *v;
            seen[static_cast<std::size_t>(*v)] = 1;
            ++count;
        }
        EXPECT_EQ(count, n);
    });
}

// More cases than the Select keeps inline (4) and than select_impl keeps on its stack (16):
// the heap paths give the same results.
TEST_P(Chan, SelectWithManyCases) {
    Runtime rt(options());
    for (int ncases : {3, 5, 20}) {
        long sum = rt.block_on([ncases] {
            std::vector<Channel<long>> chans;
            for (int i = 0; i < ncases; ++i)
                chans.push_back(Channel<long>::make());
            for (int i = 0; i < ncases; ++i)
                spawn([c = chans[static_cast<std::size_t>(i)], i]() mutable { c.send(i + 1); });
            long total = 0;
            for (int got = 0; got < ncases; ++got) {
                std::vector<std::optional<long>> sinks(static_cast<std::size_t>(ncases));
                Select s;
                for (int i = 0; i < ncases; ++i)
                    s.recv(chans[static_cast<std::size_t>(i)], sinks[static_cast<std::size_t>(i)]);
                int k = s.wait();
                EXPECT_TRUE(s.received(k));
                total += *sinks[static_cast<std::size_t>(k)];
            }
            return total;
        });
        EXPECT_EQ(sum, long(ncases) * (ncases + 1) / 2) << ncases << " cases";
    }
}

// Go's TestSelectFairness, re-expressed: two always-ready cases are chosen about equally.
TEST_P(Chan, SelectFairness) {
    Runtime rt(options());
    rt.block_on([] {
        constexpr int kTrials = 10000;
        auto a = Channel<int>::make(kTrials + 1);
        auto b = Channel<int>::make(kTrials + 1);
        for (int i = 0; i < kTrials; ++i) {
            a.send(1);
            b.send(2);
        }
        int na = 0, nb = 0;
        for (int i = 0; i < kTrials; ++i) {
            std::optional<int> va, vb;
            Select s;
            int ia = s.recv(a, va);
            int ib = s.recv(b, vb);
            int k = s.wait();
            if (k == ia)
                ++na;
            else if (k == ib)
                ++nb;
        }
        EXPECT_EQ(na + nb, kTrials);
        double sigma = std::sqrt(kTrials * 0.25);
        EXPECT_LT(std::abs(na - kTrials / 2), 10 * sigma) << na << " vs " << nb;
    });
}

TEST_P(Chan, SelectDefaultNeverBlocks) {
    Runtime rt(options());
    rt.block_on([] {
        auto a = Channel<int>::make();
        auto b = Channel<int>::make(1);
        for (int i = 0; i < 1000; ++i) {
            std::optional<int> v;
            Select s;
            s.recv(a, v);
            int x = 1;
            s.send(a, x);
            s.default_case();
            EXPECT_EQ(s.wait(), kSelectDefault);
        }
        b.send(5);
        std::optional<int> v;
        Select s;
        int ib = s.recv(b, v);
        s.default_case();
        EXPECT_EQ(s.wait(), ib);
        EXPECT_EQ(*v, 5);
    });
}

TEST_P(Chan, SelectNilAndClosedCases) {
    Runtime rt(options());
    rt.block_on([] {
        Channel<int> nil;
        auto closed = Channel<int>::make(3);
        closed.send(7);
        closed.close();
        {
            // nil channels are never ready
            std::optional<int> v;
            Select s;
            s.recv(nil, v);
            int x = 0;
            s.send(nil, x);
            s.default_case();
            EXPECT_EQ(s.wait(), kSelectDefault);
        }
        {
            // nil + timeout: the timeout fires
            std::optional<int> v;
            Select s;
            s.recv(nil, v);
            s.timeout(0.01);
            EXPECT_EQ(s.wait(), kSelectTimeout);
        }
        {
            // closed: drains the buffered value, then reports closed
            std::optional<int> v;
            Select s;
            int i = s.recv(closed, v);
            s.recv(nil, v);
            EXPECT_EQ(s.wait(), i);
            EXPECT_TRUE(s.received(i));
            EXPECT_EQ(*v, 7);
            v.reset();
            Select s2;
            int j = s2.recv(closed, v);
            EXPECT_EQ(s2.wait(), j);
            EXPECT_FALSE(s2.received(j));
            EXPECT_FALSE(v.has_value());
        }
        {
            // a send case on a closed channel raises
            Select s;
            int x = 1;
            s.send(closed, x);
            EXPECT_THROW(s.wait(), ChannelClosed);
        }
    });
}

TEST_P(Chan, SelectBlocksThenReceives) {
    Runtime rt(options());
    rt.block_on([] {
        auto a = Channel<int>::make();
        auto b = Channel<int>::make();
        spawn([b]() mutable {
            sleep_for(0.005);
            b.send(9);
        });
        std::optional<int> va, vb;
        Select s;
        s.recv(a, va);
        int ib = s.recv(b, vb);
        s.timeout(10);
        EXPECT_EQ(s.wait(), ib);
        EXPECT_EQ(*vb, 9);
        EXPECT_FALSE(va.has_value());
    });
}

TEST_P(Chan, SelectSendCaseWaitsForReceiver) {
    Runtime rt(options());
    rt.block_on([] {
        auto a = Channel<int>::make();
        auto got = spawn([a]() mutable { return a.recv(); });
        int x = 31;
        Select s;
        int i = s.send(a, x);
        s.timeout(10);
        EXPECT_EQ(s.wait(), i);
        EXPECT_EQ(got.get(), 31);
    });
}

// Go's sieve (test/chan/sieve1.go): the first 25 primes through a chain of filter tasks.
TEST_P(Chan, PrimeSieve) {
    Runtime rt(options());
    std::vector<int> primes = rt.block_on([] {
        Scope scope;
        auto ch = Channel<int>::make();
        scope.spawn([ch]() mutable {
            try {
                for (int i = 2;; ++i)
                    ch.send(i);
            } catch (const Cancelled&) {
            }
        });
        std::vector<int> out;
        for (int i = 0; i < 25; ++i) {
            int prime = ch.recv();
            out.push_back(prime);
            auto next = Channel<int>::make();
            scope.spawn([in = ch, out = next, prime]() mutable {
                for (;;) {
                    int v = in.recv();
                    if (v % prime != 0) out.send(v);
                }
            });
            ch = next;
        }
        scope.cancel();
        scope.join();
        return out;
    });
    std::vector<int> expect{2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37, 41,
                            43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};
    EXPECT_EQ(primes, expect);
}

TEST_P(Chan, CloseSemantics) {
    Runtime rt(options());
    rt.block_on([] {
        auto c = Channel<int>::make(4);
        EXPECT_EQ(c.capacity(), 4u);
        c.send(1);
        c.send(2);
        EXPECT_EQ(c.len(), 2u);
        c.close();
        c.close();  // idempotent
        EXPECT_TRUE(c.closed());
        EXPECT_THROW(c.send(3), ChannelClosed);
        EXPECT_EQ(c.recv(), 1);
        EXPECT_EQ(c.recv(), 2);
        EXPECT_FALSE(c.recv_ok().has_value());
        EXPECT_THROW(c.recv(), ChannelClosed);
        std::optional<int> v;
        EXPECT_EQ(c.try_recv(v), detail::TryResult::Closed);
    });
}

TEST_P(Chan, CloseWakesBlockedReceiversAndSenders) {
    Runtime rt(options());
    rt.block_on([] {
        auto c = Channel<int>::make();
        Scope scope(ScopeMode::CollectAll);
        std::atomic<int> receivers_done{0}, senders_failed{0};
        for (int i = 0; i < 5; ++i)
            scope.spawn([c, &receivers_done]() mutable {
                EXPECT_FALSE(c.recv_ok().has_value());
                receivers_done++;
            });
        auto d = Channel<int>::make();
        for (int i = 0; i < 5; ++i)
            scope.spawn([d, &senders_failed]() mutable {
                try {
                    d.send(1);
                } catch (const ChannelClosed&) {
                    senders_failed++;
                }
            });
        sleep_for(0.01);
        c.close();
        d.close();
        scope.join();
        EXPECT_EQ(receivers_done.load(), 5);
        EXPECT_EQ(senders_failed.load(), 5);
    });
}

TEST_P(Chan, TryOpsAndTimeouts) {
    Runtime rt(options());
    rt.block_on([] {
        auto c = Channel<int>::make(1);
        std::optional<int> v;
        EXPECT_EQ(c.try_recv(v), detail::TryResult::WouldBlock);
        EXPECT_TRUE(c.try_send(1));
        EXPECT_FALSE(c.try_send(2));
        EXPECT_EQ(c.try_recv(v), detail::TryResult::Ok);
        EXPECT_EQ(*v, 1);
        auto t0 = now_ns();
        EXPECT_THROW(c.recv_for(0.02), TimeoutError);
        EXPECT_GE(now_ns() - t0, 19'000'000);
        auto u = Channel<int>::make();
        EXPECT_FALSE(u.try_send(1));  // no receiver waiting
        spawn([u]() mutable {
            sleep_for(0.002);
            u.send(8);
        });
        EXPECT_EQ(u.recv_for(10), 8);
    });
}

TEST_P(Chan, MoveOnlyValues) {
    Runtime rt(options());
    rt.block_on([] {
        auto c = Channel<std::unique_ptr<int>>::make(2);
        spawn([c]() mutable {
            for (int i = 0; i < 100; ++i)
                c.send(std::make_unique<int>(i));
            c.close();
        });
        int sum = 0;
        while (auto v = c.recv_ok())
            sum += **v;
        EXPECT_EQ(sum, 4950);
    });
}

TEST_P(Chan, PingPong) {
    Runtime rt(options());
    long sum = rt.block_on([] {
        auto ping = Channel<long>::make();
        auto pong = Channel<long>::make();
        spawn([ping, pong]() mutable {
            while (auto v = ping.recv_ok())
                pong.send(*v + 1);
        });
        long s = 0;
        for (long i = 0; i < 20000 / kScale; ++i) {
            ping.send(i);
            s += pong.recv();
        }
        ping.close();
        return s;
    });
    long n = 20000 / kScale;
    EXPECT_EQ(sum, n * (n - 1) / 2 + n);
}

TEST_P(Chan, AfterInSelect) {
    Runtime rt(options());
    rt.block_on([] {
        auto never = Channel<int>::make();
        auto t0 = now_ns();
        auto tick = after(0.01);
        std::optional<int> v;
        std::optional<std::int64_t> when;
        Select s;
        s.recv(never, v);
        int it = s.recv(tick, when);
        EXPECT_EQ(s.wait(), it);
        ASSERT_TRUE(when.has_value());
        EXPECT_GE(*when - t0, 9'000'000);
    });
}
