// table_test.cpp — OrderedTable: insertion order, overwrite, erase and
// re-insert, compaction of deleted entries, large tables, unhashable keys.
#include <algorithm>
#include <map>
#include <random>

#include "test_support.h"

namespace weft::test {
namespace {

std::vector<int64_t> keys_of(const OrderedTable& t) {
    std::vector<int64_t> out;
    for (size_t i = 0; i < t.end_index(); ++i)
        if (t.entry(i).live) out.push_back(t.entry(i).key.as_int());
    return out;
}

TEST(OrderedTable, InsertKeepsOrderAndOverwrites) {
    OrderedTable t;
    EXPECT_TRUE(t.insert(I(3), I(30)));
    EXPECT_TRUE(t.insert(I(1), I(10)));
    EXPECT_TRUE(t.insert(I(2), I(20)));
    EXPECT_FALSE(t.insert(I(1), I(11)));
    EXPECT_EQ(t.size(), 3u);
    EXPECT_EQ(keys_of(t), (std::vector<int64_t>{3, 1, 2}));
    EXPECT_EQ(t.entry(size_t(t.find(I(1)))).value.as_int(), 11);
}

TEST(OrderedTable, EraseAndReinsertGoesToEnd) {
    OrderedTable t;
    for (int i = 0; i < 5; ++i)
        t.insert(I(i), I(i));
    Value old;
    EXPECT_TRUE(t.erase(I(1), &old));
    EXPECT_EQ(old.as_int(), 1);
    EXPECT_FALSE(t.erase(I(1)));
    EXPECT_EQ(t.find(I(1)), -1);
    t.insert(I(1), I(100));
    EXPECT_EQ(keys_of(t), (std::vector<int64_t>{0, 2, 3, 4, 1}));
    EXPECT_EQ(t.size(), 5u);
}

TEST(OrderedTable, NumericKeysUnify) {
    OrderedTable t;
    t.insert(I(1), S("a"));
    EXPECT_FALSE(t.insert(F(1.0), S("b")));
    EXPECT_FALSE(t.insert(B(true), S("c")));
    EXPECT_EQ(t.size(), 1u);
    EXPECT_TRUE(t.entry(0).key.is_int());  // first key kept, like Python
    EXPECT_EQ(repr(t.entry(0).value), "'c'");
}

TEST(OrderedTable, HundredThousandKeys) {
    OrderedTable t;
    const int n = 100000;
    for (int i = 0; i < n; ++i)
        t.insert(S("k" + std::to_string(i)), I(i));
    EXPECT_EQ(t.size(), size_t(n));
    for (int i = 0; i < n; i += 997) {
        int64_t e = t.find(S("k" + std::to_string(i)));
        ASSERT_GE(e, 0);
        EXPECT_EQ(t.entry(size_t(e)).value.as_int(), i);
    }
    EXPECT_EQ(t.find(S("nope")), -1);
    // Order is insertion order.
    size_t k = 0;
    for (size_t i = 0; i < t.end_index(); ++i) {
        if (t.entry(i).live) {
            EXPECT_EQ(t.entry(i).value.as_int(), int64_t(k++));
        }
    }
}

TEST(OrderedTable, DeletionCompactsOnGrowth) {
    OrderedTable t;
    // Churn: insert/delete many distinct keys while few are live.
    for (int i = 0; i < 200000; ++i) {
        t.insert(I(i), I(i));
        if (i >= 10) t.erase(I(i - 10));
    }
    EXPECT_EQ(t.size(), 10u);
    EXPECT_LT(t.end_index(), 64u);  // dead entries were dropped, not accumulated
    EXPECT_EQ(keys_of(t).front(), 199990);
    EXPECT_EQ(keys_of(t).back(), 199999);
}

TEST(OrderedTable, EraseMiddleThenCompactKeepsOrder) {
    OrderedTable t;
    for (int i = 0; i < 1000; ++i)
        t.insert(I(i), I(i));
    for (int i = 0; i < 1000; i += 2)
        t.erase(I(i));
    for (int i = 1000; i < 3000; ++i)
        t.insert(I(i), I(i));  // forces rebuilds
    auto ks = keys_of(t);
    ASSERT_EQ(ks.size(), 2500u);
    EXPECT_EQ(ks[0], 1);
    EXPECT_EQ(ks[499], 999);
    EXPECT_EQ(ks[500], 1000);
    for (int i = 1; i < 1000; i += 2)
        EXPECT_GE(t.find(I(i)), 0);
    for (int i = 0; i < 1000; i += 2)
        EXPECT_EQ(t.find(I(i)), -1);
}

TEST(OrderedTable, TrailingErasesShrinkEntries) {
    OrderedTable t;
    for (int i = 0; i < 10; ++i)
        t.insert(I(i), I(i));
    for (int i = 9; i >= 5; --i)
        t.erase(I(i));
    EXPECT_EQ(t.end_index(), 5u);
    for (int i = 0; i < 5; ++i)
        t.erase(I(i));
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.end_index(), 0u);
    t.insert(I(7), I(7));
    EXPECT_EQ(keys_of(t), (std::vector<int64_t>{7}));
}

TEST(OrderedTable, InsertEraseChurnWithLiveKeyTerminates) {
    // A live key plus many short-lived keys: deleted index slots must not fill the
    // index (lookups of absent keys would never meet an empty slot).
    OrderedTable t;
    t.insert(S("keep"), I(1));
    for (int i = 0; i < 100000; ++i) {
        Value k = I(i * 7919);
        t.insert(k, I(i));
        EXPECT_TRUE(t.erase(k));
    }
    EXPECT_EQ(t.size(), 1u);
    EXPECT_EQ(t.find(S("absent")), -1);
    EXPECT_EQ(t.find(I(-1)), -1);
    EXPECT_GE(t.find(S("keep")), 0);
    EXPECT_LE(t.end_index(), 2u);
}

TEST(OrderedTable, EraseFromEmptyAndReuse) {
    OrderedTable t;
    EXPECT_FALSE(t.erase(I(1)));
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 100; ++i)
            t.insert(I(i), I(i));
        for (int i = 0; i < 100; ++i)
            EXPECT_TRUE(t.erase(I(i)));
        EXPECT_EQ(t.size(), 0u);
        EXPECT_EQ(t.find(I(5)), -1);
    }
}

TEST(OrderedTable, ClearAndCopy) {
    OrderedTable t;
    t.insert(S("a"), I(1));
    OrderedTable u = t;
    t.clear();
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.find(S("a")), -1);
    EXPECT_EQ(u.size(), 1u);
    EXPECT_GE(u.find(S("a")), 0);
}

TEST(OrderedTable, UnhashableKeysRaise) {
    OrderedTable t;
    EXPECT_EQ(err([&] { t.find(L({})); }), "TypeError: unhashable type: 'list'");
    EXPECT_EQ(err([&] { t.insert(make_dict(), I(1)); }), "TypeError: unhashable type: 'dict'");
    t.insert(I(1), I(1));
    EXPECT_EQ(err([&] { t.erase(make_set()); }), "TypeError: unhashable type: 'set'");
}

TEST(OrderedTable, MixedKeyTypes) {
    OrderedTable t;
    t.insert(N(), I(0));
    t.insert(S("1"), I(1));
    t.insert(I(1), I(2));
    t.insert(T({I(1), S("x")}), I(3));
    t.insert(F(0.5), I(4));
    t.insert(make_bytes("1"), I(5));
    EXPECT_EQ(t.size(), 6u);
    EXPECT_EQ(t.entry(size_t(t.find(T({F(1.0), S("x")})))).value.as_int(), 3);
    EXPECT_EQ(t.entry(size_t(t.find(N()))).value.as_int(), 0);
    EXPECT_EQ(t.entry(size_t(t.find(make_bytes("1")))).value.as_int(), 5);
}

TEST(OrderedTable, SetsAndDictsShareTheTable) {
    Value s = Set({I(1), I(2), I(1)});
    EXPECT_EQ(length(s), 2);
    Value d = D({{S("x"), I(1)}, {S("x"), I(2)}});
    EXPECT_EQ(repr(d), "{'x': 2}");
}

}  // namespace
}  // namespace weft::test

namespace weft::test {
namespace {

// Random insert/overwrite/erase against a reference model (std::map plus an
// insertion-order list), checking contents and order after every batch.
TEST(OrderedTable, RandomizedAgainstModel) {
    std::mt19937_64 rng(12345);
    OrderedTable t;
    std::map<int64_t, int64_t> model;
    std::vector<int64_t> order;
    for (int step = 0; step < 60000; ++step) {
        int64_t k = int64_t(rng() % 512);
        int op = int(rng() % 3);
        if (op < 2) {
            bool fresh = t.insert(I(k), I(step));
            EXPECT_EQ(fresh, model.count(k) == 0);
            if (fresh) order.push_back(k);
            model[k] = step;
        } else {
            bool had = t.erase(I(k));
            EXPECT_EQ(had, model.count(k) == 1);
            if (had) {
                model.erase(k);
                order.erase(std::find(order.begin(), order.end(), k));
            }
        }
        if (step % 997 == 0) {
            ASSERT_EQ(t.size(), model.size());
            std::vector<int64_t> got;
            for (size_t i = 0; i < t.end_index(); ++i)
                if (t.entry(i).live) got.push_back(t.entry(i).key.as_int());
            ASSERT_EQ(got, order);
            for (auto& [mk, mv] : model) {
                int64_t e = t.find(I(mk));
                ASSERT_GE(e, 0);
                EXPECT_EQ(t.entry(size_t(e)).value.as_int(), mv);
            }
        }
    }
}

}  // namespace
}  // namespace weft::test
