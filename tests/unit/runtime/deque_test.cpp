// The Chase-Lev deque on its own: every pushed item is taken exactly once, by the owner (pop)
// or by a thief (steal), while the array grows under concurrent steals.
#include <atomic>
#include <thread>
#include <vector>

#include "runtime/work_deque.h"
#include "test_support.h"

using weft::rt::detail::WorkDeque;
using weft::rt::testing::kScale;

TEST(Deque, OwnerLifoThiefFifo) {
    WorkDeque<int> d(4);
    int items[10];
    for (int i = 0; i < 10; ++i)
        d.push(&items[i]);  // grows twice
    EXPECT_EQ(d.size(), 10);
    EXPECT_EQ(d.pop(), &items[9]);
    EXPECT_EQ(d.steal(), &items[0]);
    EXPECT_EQ(d.steal(), &items[1]);
    EXPECT_EQ(d.pop(), &items[8]);
    EXPECT_EQ(d.size(), 6);
}

TEST(Deque, ConcurrentStealsTakeEachItemOnce) {
    const int n = 200000 / kScale;
    std::vector<int> items(static_cast<std::size_t>(n));
    std::vector<std::atomic<int>> taken(static_cast<std::size_t>(n));
    WorkDeque<int> d(8);
    std::atomic<bool> done{false};
    std::atomic<long> stolen{0};
    auto take = [&](int* p) {
        ASSERT_NE(p, nullptr);
        taken[static_cast<std::size_t>(p - items.data())].fetch_add(1);
    };
    std::vector<std::thread> thieves;
    for (int k = 0; k < 3; ++k)
        thieves.emplace_back([&] {
            while (!done.load()) {
                if (int* p = d.steal()) {
                    take(p);
                    stolen++;
                }
            }
        });
    for (int i = 0; i < n; ++i) {
        d.push(&items[static_cast<std::size_t>(i)]);
        if (i % 3 == 0)
            if (int* p = d.pop()) take(p);
    }
    while (int* p = d.pop())
        take(p);
    // Thieves may still hold a claimed item in flight: wait until everything is accounted for.
    for (int spins = 0; spins < 100000; ++spins) {
        long sum = 0;
        for (auto& t : taken)
            sum += t.load();
        if (sum == n) break;
        std::this_thread::yield();
    }
    done = true;
    for (auto& t : thieves)
        t.join();
    for (int i = 0; i < n; ++i)
        ASSERT_EQ(taken[static_cast<std::size_t>(i)].load(), 1) << i;
}
