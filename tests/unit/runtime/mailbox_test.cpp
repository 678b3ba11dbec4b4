// rt::Mailbox: one handler at a time, per-sender order under many senders, no task while idle,
// the four overflow policies, close, and a stress run of many mailboxes (runs under TSan).
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "test_support.h"
#include "weft/runtime/mailbox.hpp"

using namespace weft::rt;
using weft::rt::testing::kScale;
using weft::rt::testing::RtTest;

class MailboxTest : public RtTest {};
WEFT_WORKER_PARAMS(MailboxTest);

namespace {
struct Msg {
    int sender = 0;
    int seq = 0;
};

// A mailbox whose tasks are children of `nursery` (the test's root scope).
std::shared_ptr<Mailbox<Msg>> make_box(Mailbox<Msg>::Options o, std::function<void(Msg&)> handle,
                                       std::function<void(Msg&)> drop = [](Msg&) {}) {
    detail::CancelNode* nursery = current_nursery();
    return Mailbox<Msg>::make(o, std::move(handle), std::move(drop),
                              [nursery](std::function<void()> drain) { spawn_into(nursery, std::move(drain), "mailbox"); });
}

// What handlers saw, read by the test while they run on other workers.
struct Log {
    std::mutex mu;
    std::vector<int> items;
    void add(int v) {
        std::lock_guard<std::mutex> g(mu);
        items.push_back(v);
    }
    std::vector<int> get() {
        std::lock_guard<std::mutex> g(mu);
        return items;
    }
    std::size_t size() { return get().size(); }
};

// Waits (bounded: 10 s) until `pred` holds, yielding to the runtime.
template <class P>
bool eventually(P pred) {
    for (int i = 0; i < 10000; ++i) {
        if (pred()) return true;
        sleep_for(0.001);
    }
    return pred();
}
}  // namespace

// Eight senders, each posting in order; the handler never runs twice at once and sees each
// sender's messages in the order that sender posted them.
TEST_P(MailboxTest, PerSenderOrderAndOneHandlerAtATime) {
    Runtime rt(options());
    const int senders = 8, per = 2000 / kScale * 4;
    std::atomic<int> inside{0}, overlap{0};
    std::vector<int> last(senders, -1);
    int bad = 0, total = 0;
    rt.block_on([&] {
        auto box = make_box({100, Overflow::Block, 16}, [&](Msg& m) {
            if (inside.fetch_add(1) != 0) overlap.fetch_add(1);
            if (m.seq != last[m.sender] + 1) ++bad;
            last[m.sender] = m.seq;
            ++total;
            inside.fetch_sub(1);
        });
        Scope s;
        for (int i = 0; i < senders; ++i)
            s.spawn([&, i] {
                for (int k = 0; k < per; ++k) {
                    Msg m{i, k};
                    EXPECT_EQ(box->post(m), PostResult::Posted);
                }
            });
        s.join();
        EXPECT_TRUE(eventually([&] { return box->handled() == std::uint64_t(senders * per); }));
        EXPECT_LE(box->peak(), 100u);
    });
    EXPECT_EQ(overlap.load(), 0);
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(total, senders * per);
}

// An idle mailbox holds no task; the next post starts one again.
TEST_P(MailboxTest, NoTaskWhileIdle) {
    Runtime rt(options());
    rt.block_on([&] {
        std::atomic<int> seen{0};
        auto box = make_box({}, [&](Msg&) { seen.fetch_add(1); });
        EXPECT_FALSE(box->scheduled());
        Msg m{0, 0};
        box->post(m);
        EXPECT_TRUE(eventually([&] { return seen.load() == 1 && !box->scheduled(); }));
        m = {0, 1};
        box->post(m);
        EXPECT_TRUE(eventually([&] { return seen.load() == 2 && !box->scheduled(); }));
    });
}

// Suspended, messages wait (the bound applies to them); each policy then does what it says.
TEST_P(MailboxTest, OverflowPolicies) {
    Runtime rt(options());
    rt.block_on([&] {
        for (Overflow ov : {Overflow::DropNew, Overflow::Error}) {
            Log got;
            auto box = make_box({2, ov, 64}, [&](Msg& m) { got.add(m.seq); });
            box->suspend();
            for (int k = 0; k < 2; ++k) {
                Msg m{0, k};
                EXPECT_EQ(box->post(m), PostResult::Posted);
            }
            Msg extra{0, 2};
            EXPECT_EQ(box->post(extra), PostResult::Rejected);
            EXPECT_EQ(extra.seq, 2);  // left with the caller
            EXPECT_EQ(box->len(), 2u);
            box->resume();
            EXPECT_TRUE(eventually([&] { return got.size() == 2; }));
            EXPECT_EQ(got.get(), (std::vector<int>{0, 1}));
        }
        {
            Log got, dropped;
            auto box = make_box({2, Overflow::DropOldest, 64}, [&](Msg& m) { got.add(m.seq); },
                                [&](Msg& m) { dropped.add(m.seq); });
            box->suspend();
            for (int k = 0; k < 5; ++k) {
                Msg m{0, k};
                EXPECT_EQ(box->post(m), PostResult::Posted);
            }
            EXPECT_EQ(dropped.get(), (std::vector<int>{0, 1, 2}));
            EXPECT_EQ(box->dropped_oldest(), 3u);
            box->resume();
            EXPECT_TRUE(eventually([&] { return got.size() == 2; }));
            EXPECT_EQ(got.get(), (std::vector<int>{3, 4}));
        }
        {
            // Block: the sender parks until the handler makes room.
            std::atomic<int> got{0};
            auto box = make_box({1, Overflow::Block, 64}, [&](Msg&) { got.fetch_add(1); });
            box->suspend();
            Msg a{0, 0};
            box->post(a);
            std::atomic<bool> posted{false};
            Scope s;
            s.spawn([&] {
                Msg b{0, 1};
                EXPECT_EQ(box->post(b), PostResult::Posted);
                posted = true;
            });
            sleep_for(0.02);
            EXPECT_FALSE(posted.load());  // still waiting for room
            box->resume();
            s.join();
            EXPECT_TRUE(posted.load());
            EXPECT_TRUE(eventually([&] { return got.load() == 2; }));
        }
    });
}

// close(): queued messages go to on_drop unhandled, later posts are Closed, and a sender
// parked on a full mailbox wakes with Closed.
TEST_P(MailboxTest, CloseDropsQueuedAndWakesBlockedSenders) {
    Runtime rt(options());
    rt.block_on([&] {
        std::atomic<int> handled{0}, dropped{0};
        auto box = make_box({2, Overflow::Block, 64}, [&](Msg&) { handled.fetch_add(1); },
                            [&](Msg&) { dropped.fetch_add(1); });
        box->suspend();
        for (int k = 0; k < 2; ++k) {
            Msg m{0, k};
            box->post(m);
        }
        std::atomic<PostResult> blocked_result{PostResult::Posted};
        Scope s;
        s.spawn([&] {
            Msg m{0, 9};
            blocked_result = box->post(m);
        });
        sleep_for(0.01);
        box->close();
        s.join();
        EXPECT_EQ(blocked_result.load(), PostResult::Closed);
        EXPECT_TRUE(eventually([&] { return dropped.load() == 2; }));
        EXPECT_EQ(handled.load(), 0);
        Msg late{0, 3};
        EXPECT_EQ(box->post(late), PostResult::Closed);
    });
}

// Many mailboxes, many messages, from many tasks: nothing lost, nothing handled twice.
TEST_P(MailboxTest, StressManyMailboxes) {
    Runtime rt(options());
    const int boxes = 2000 / kScale + 10, per = 50;
    std::atomic<long> total{0};
    rt.block_on([&] {
        std::vector<std::shared_ptr<Mailbox<Msg>>> all;
        std::vector<std::atomic<int>> counts(boxes);
        for (int b = 0; b < boxes; ++b)
            all.push_back(make_box({16, Overflow::Block, 8}, [&, b](Msg&) {
                counts[b].fetch_add(1, std::memory_order_relaxed);
                total.fetch_add(1, std::memory_order_relaxed);
            }));
        Scope s;
        for (int t = 0; t < 4; ++t)
            s.spawn([&, t] {
                for (int k = 0; k < per; ++k)
                    for (int b = t; b < boxes; b += 4) {
                        Msg m{t, k};
                        all[b]->post(m);
                    }
            });
        s.join();
        EXPECT_TRUE(eventually([&] { return total.load() == long(boxes) * per; }));
        for (int b = 0; b < boxes; ++b) EXPECT_EQ(counts[b].load(), per);
    });
}
