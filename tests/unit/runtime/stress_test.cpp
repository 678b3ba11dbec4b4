// Stress: a million tasks, ten thousand channels, many producers and consumers, deep task
// trees; each with 1 and 8 workers. Sizes shrink under sanitizers (kScale) to stay fast.
#include <atomic>
#include <numeric>

#include "test_support.h"

using namespace weft::rt;
using weft::rt::testing::kScale;
using weft::rt::testing::RtTest;

class Stress : public RtTest {};
WEFT_WORKER_PARAMS(Stress);

TEST_P(Stress, MillionTasks) {
    Runtime rt(options());
    const long n = 1'000'000 / kScale;
    std::atomic<long> sum{0};
    rt.block_on([&] {
        // 1000 groups of 1000 tasks, each group in its own scope so live tasks stay bounded.
        for (long g = 0; g < n / 1000; ++g) {
            Scope s;
            for (long i = 0; i < 1000; ++i)
                s.spawn([&sum, v = g * 1000 + i] { sum.fetch_add(v, std::memory_order_relaxed); });
            s.join();
        }
    });
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
}

TEST_P(Stress, MillionTasksTree) {
    Runtime rt(options());
    const long n = 1'000'000 / kScale;
    std::function<long(long, long)> tree = [&](long lo, long hi) -> long {
        if (hi - lo <= 1) return lo;
        long mid = (lo + hi) / 2;
        auto left = spawn([&tree, lo, mid] { return tree(lo, mid); });
        long right = tree(mid, hi);
        return left.get() + right;
    };
    EXPECT_EQ(rt.block_on([&] { return tree(0, n); }), n * (n - 1) / 2);
}

TEST_P(Stress, TenThousandChannels) {
    Runtime rt(options());
    const int n = 10000 / kScale;
    long total = rt.block_on([n] {
        std::vector<Channel<int>> chans;
        for (int i = 0; i < n; ++i)
            chans.push_back(Channel<int>::make());
        Scope s;
        for (int i = 0; i < n; ++i)
            s.spawn([c = chans[i], i]() mutable { c.send(i); });
        long t = 0;
        for (int i = n - 1; i >= 0; --i)
            t += chans[i].recv();
        s.join();
        return t;
    });
    EXPECT_EQ(total, static_cast<long>(n) * (n - 1) / 2);
}

TEST_P(Stress, ManyProducersManyConsumers) {
    Runtime rt(options());
    const int producers = 16, consumers = 16, per = 20000 / kScale;
    for (std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{64}}) {
        std::atomic<long> sum{0}, count{0};
        rt.block_on([&] {
            auto c = Channel<int>::make(cap);
            Scope cons;
            for (int k = 0; k < consumers; ++k)
                cons.spawn([c, &sum, &count]() mutable {
                    while (auto v = c.recv_ok()) {
                        sum += *v;
                        count++;
                    }
                });
            {
                Scope prods;
                for (int p = 0; p < producers; ++p)
                    prods.spawn([c, per]() mutable {
                        for (int i = 1; i <= per; ++i)
                            c.send(i);
                    });
                prods.join();
            }
            c.close();
            cons.join();
        });
        EXPECT_EQ(count.load(), static_cast<long>(producers) * per) << "cap " << cap;
        EXPECT_EQ(sum.load(), static_cast<long>(producers) * per * (per + 1) / 2) << "cap " << cap;
    }
}

TEST_P(Stress, SelectManyToMany) {
    Runtime rt(options());
    const int n = 20000 / kScale;
    std::atomic<long> got{0};
    rt.block_on([&] {
        auto a = Channel<int>::make();
        auto b = Channel<int>::make(4);
        auto done = Channel<int>::make();
        Scope s;
        for (int k = 0; k < 4; ++k)
            s.spawn([a, b, n]() mutable {
                for (int i = 0; i < n; ++i) {
                    int x = 1, y = 1;
                    Select sel;
                    sel.send(a, x);
                    sel.send(b, y);
                    sel.wait();
                }
            });
        for (int k = 0; k < 4; ++k)
            s.spawn([a, b, done, &got]() mutable {
                for (;;) {
                    std::optional<int> va, vb, vd;
                    Select sel;
                    sel.recv(a, va);
                    sel.recv(b, vb);
                    int id = sel.recv(done, vd);
                    int k = sel.wait();
                    if (k == id) return;
                    got++;
                }
            });
        while (got.load() < 4L * n)
            sleep_for(0.001);
        done.close();
        s.join();
    });
    EXPECT_EQ(got.load(), 4L * n);
}

TEST_P(Stress, CancelStormWithTimeouts) {
    Runtime rt(options());
    std::atomic<int> expired{0};
    rt.block_on([&] {
        auto never = Channel<int>::make();
        Scope s;
        for (int i = 0; i < 2000 / kScale; ++i)
            s.spawn([never, &expired]() mutable {
                if (!move_on_after(0.001, [&](CancelScope&) { never.recv(); })) expired++;
            });
        s.join();
    });
    EXPECT_EQ(expired.load(), 2000 / kScale);
}

TEST_P(Stress, HundredThousandSleepers) {
    Runtime rt(options());
    const int n = 100000 / kScale;
    std::atomic<int> woke{0};
    rt.block_on([&] {
        for (int i = 0; i < n; ++i)
            spawn([&] {
                sleep_for(0.05);
                woke++;
            });
    });
    EXPECT_EQ(woke.load(), n);
}
