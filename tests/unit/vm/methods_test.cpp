// methods_test.cpp — methods of str, bytes, list, tuple, dict and set against
// a table generated with CPython 3.11 (result repr, error, receiver afterwards).
#include "test_support.h"

namespace weft::test {
namespace {

struct MethodCase {
    Value recv;
    const char* name;
    std::vector<Value> args;
    std::vector<KwArg> kw;
    const char* expect;
    const char* error;
    const char* after;
};

TEST(Methods, MatchesPythonTable) {
    const MethodCase cases[] = {
#include "method_table.inc"
    };
    size_t n = 0;
    for (auto& c : cases) {
        SCOPED_TRACE(repr(c.recv) + "." + c.name + repr(T(c.args)));
        Value r = c.recv;
        Value got;
        std::string e = err([&] { got = callm(r, c.name, c.args, c.kw); });
        EXPECT_EQ(e, c.error);
        if (!*c.error) {
            EXPECT_EQ(repr(got), c.expect);
        }
        if (*c.after) {
            EXPECT_EQ(repr(r), c.after);
        }
        // The original value never changes (value semantics).
        ++n;
    }
    EXPECT_GT(n, 400u);
}

TEST(Methods, ReceiverNeverAliased) {
    Value xs = L({I(1)});
    Value ys = xs;
    callm(xs, "append", {I(2)});
    EXPECT_EQ(repr(ys), "[1]");
    EXPECT_EQ(repr(xs), "[1, 2]");
    Value c = callm(xs, "copy");
    callm(xs, "append", {I(3)});
    EXPECT_EQ(repr(c), "[1, 2]");
}

TEST(Methods, MutatingFlags) {
    EXPECT_TRUE(find_method(L({}), "append")->mutates);
    EXPECT_TRUE(find_method(L({}), "sort")->mutates);
    EXPECT_FALSE(find_method(L({}), "index")->mutates);
    EXPECT_TRUE(find_method(make_dict(), "update")->mutates);
    EXPECT_TRUE(find_method(make_dict(), "setdefault")->mutates);
    EXPECT_FALSE(find_method(make_dict(), "get")->mutates);
    EXPECT_TRUE(find_method(make_set(), "add")->mutates);
    EXPECT_FALSE(find_method(make_set(), "union")->mutates);
    EXPECT_FALSE(find_method(S(""), "upper")->mutates);
    EXPECT_EQ(find_method(S(""), "append"), nullptr);
    EXPECT_EQ(find_method(I(1), "x"), nullptr);
    EXPECT_NE(find_method(make_range(0, 1, 1), "index"), nullptr);
    EXPECT_NE(find_method(make_bytes(""), "decode"), nullptr);
}

TEST(Methods, MissingAttribute) {
    Value xs = L({});
    EXPECT_EQ(err([&] { callm(xs, "push", {I(1)}); }),
              "AttributeError: 'list' object has no attribute 'push'");
}

Value key_neg(CallContext&, const CallArgs& a) {
    return I(-a.pos[0].as_int());
}
Value key_len(CallContext&, const CallArgs& a) {
    return I(length(a.pos[0]));
}

TEST(Methods, SortWithKeyIsStable) {
    Value xs = L({S("bb"), S("a"), S("cc"), S("d"), S("")});
    callm(xs, "sort", {}, {KwArg{"key", native("len", key_len)}});
    EXPECT_EQ(repr(xs), "['', 'a', 'd', 'bb', 'cc']");
    callm(xs, "sort", {}, {KwArg{"key", native("len", key_len)}, KwArg{"reverse", B(true)}});
    EXPECT_EQ(repr(xs), "['bb', 'cc', 'a', 'd', '']");
    Value ys = L({I(3), I(1), I(2)});
    callm(ys, "sort", {}, {KwArg{"key", native("neg", key_neg)}});
    EXPECT_EQ(repr(ys), "[3, 2, 1]");
}

TEST(Methods, SortFailureLeavesListIntact) {
    Value xs = L({I(3), S("a"), I(1)});
    EXPECT_NE(err([&] { callm(xs, "sort"); }), "");
    EXPECT_EQ(repr(xs), "[3, 'a', 1]");
}

TEST(Methods, SortMixedNumbers) {
    Value xs = L({F(2.5), I(1), B(true), F(-1.0), I(3)});
    callm(xs, "sort");
    EXPECT_EQ(repr(xs), "[-1.0, 1, True, 2.5, 3]");
}

TEST(Methods, RangeIndexCount) {
    Value r = make_range(0, 20, 5);
    EXPECT_EQ(callm(r, "index", {I(15)}).as_int(), 3);
    EXPECT_EQ(callm(r, "count", {I(15)}).as_int(), 1);
    EXPECT_EQ(callm(r, "count", {I(16)}).as_int(), 0);
    EXPECT_EQ(err([&] { callm(r, "index", {I(16)}); }), "ValueError: 16 is not in range");
}

TEST(Methods, ListExtendSelf) {
    Value xs = L({I(1), I(2)});
    Value arg = xs;
    callm(xs, "extend", {arg});
    EXPECT_EQ(repr(xs), "[1, 2, 1, 2]");
    EXPECT_EQ(repr(arg), "[1, 2]");
}

TEST(Methods, DictPopitemOrderAndCompaction) {
    Value d = D({{I(1), I(1)}, {I(2), I(2)}, {I(3), I(3)}});
    EXPECT_EQ(repr(callm(d, "popitem")), "(3, 3)");
    EXPECT_EQ(repr(callm(d, "popitem")), "(2, 2)");
    set_item(d, I(9), I(9));
    EXPECT_EQ(repr(d), "{1: 1, 9: 9}");
}

TEST(Methods, StrFormatMethod) {
    Value s = S("{:>6.2f}|{name}");
    EXPECT_EQ(repr(callm(s, "format", {F(3.14159)}, {KwArg{"name", S("x")}})), "'  3.14|x'");
}

}  // namespace
}  // namespace weft::test

namespace weft::test {
namespace {

TEST(Methods, LookupByInternedAndPlainNames) {
    Value xs = L({});
    const MethodInfo* a = find_method(xs, intern("append")->data);
    std::string plain = "append";
    EXPECT_EQ(a, find_method(xs, plain));
    ASSERT_NE(a, nullptr);
    EXPECT_STREQ(a->name, "append");
    // A prefix view of an interned name shares its address but is another name.
    std::string_view prefix(intern("append")->data.data(), 3);
    EXPECT_EQ(find_method(xs, prefix), nullptr);
    EXPECT_EQ(find_method(xs, intern("appendx")->data), nullptr);
    EXPECT_EQ(find_method(S("x"), intern("append")->data), nullptr);
    EXPECT_NE(find_method(S("x"), intern("split")->data), nullptr);
}

}  // namespace
}  // namespace weft::test
