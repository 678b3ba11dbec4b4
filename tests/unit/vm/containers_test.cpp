// containers_test.cpp — len, indexing, slicing, item assignment, deletion,
// membership, iteration and copy-on-write.
#include <climits>

#include "test_support.h"

namespace weft::test {
namespace {

Value range_list(int n) {
    std::vector<Value> v;
    for (int i = 0; i < n; ++i)
        v.push_back(I(i));
    return L(std::move(v));
}

struct SliceCase {
    Value lo, hi, step;
    const char* list_expect;
    const char* str_expect;
    const char* range_expect;
};

TEST(Slice, MatchesPythonTable) {
    const SliceCase cases[] = {
#include "slice_table.inc"
    };
    Value xs = range_list(10), s = S("héllo wörl"), r = make_range(3, 23, 2);
    for (auto& c : cases) {
        Value sl = make_slice(c.lo, c.hi, c.step);
        SCOPED_TRACE(repr(sl));
        EXPECT_EQ(repr(get_item(xs, sl)), c.list_expect);
        EXPECT_EQ(repr(get_item(s, sl)), c.str_expect);
        EXPECT_EQ(repr(get_item(r, sl)), c.range_expect);
    }
}

TEST(Slice, TuplesAndBytes) {
    Value t = T({I(1), I(2), I(3)});
    EXPECT_EQ(repr(get_item(t, make_slice(I(1), N(), N()))), "(2, 3)");
    EXPECT_EQ(repr(get_item(t, make_slice(N(), N(), I(-1)))), "(3, 2, 1)");
    EXPECT_EQ(repr(get_item(make_bytes("hello"), make_slice(I(1), I(3), N()))), "b'el'");
    EXPECT_EQ(err([] { get_item(L({}), make_slice(N(), N(), I(0))); }),
              "ValueError: slice step cannot be zero");
    EXPECT_EQ(err([] { get_item(L({}), make_slice(S("a"), N(), N())); }),
              "TypeError: slice indices must be integers or None or have an __index__ method");
}

TEST(Length, AllTypes) {
    EXPECT_EQ(length(S("héllo")), 5);
    EXPECT_EQ(length(make_bytes("héllo")), 6);
    EXPECT_EQ(length(L({I(1), I(2)})), 2);
    EXPECT_EQ(length(D({{I(1), I(1)}})), 1);
    EXPECT_EQ(length(make_range(0, 10, 3)), 4);
    EXPECT_EQ(length(make_range(10, 0, -3)), 4);
    EXPECT_EQ(length(make_range(0, -5, 1)), 0);
    EXPECT_EQ(length(make_range(INT64_MIN, INT64_MAX, INT64_MAX)), 3);
    EXPECT_EQ(err([] { length(I(1)); }), "TypeError: object of type 'int' has no len()");
    EXPECT_EQ(err([] { length(N()); }), "TypeError: object of type 'NoneType' has no len()");
}

TEST(GetItem, Indexing) {
    Value xs = L({I(10), I(20), I(30)});
    EXPECT_EQ(get_item(xs, I(0)).as_int(), 10);
    EXPECT_EQ(get_item(xs, I(-1)).as_int(), 30);
    EXPECT_EQ(get_item(xs, B(true)).as_int(), 20);
    EXPECT_EQ(err([&] { get_item(xs, I(3)); }), "IndexError: list index out of range");
    EXPECT_EQ(err([&] { get_item(xs, I(-4)); }), "IndexError: list index out of range");
    EXPECT_EQ(err([&] { get_item(xs, S("a")); }),
              "TypeError: list indices must be integers or slices, not str");
    EXPECT_EQ(err([] { get_item(T({}), I(0)); }), "IndexError: tuple index out of range");
    EXPECT_EQ(repr(get_item(S("héllo"), I(1))), "'é'");
    EXPECT_EQ(repr(get_item(S("héllo"), I(-1))), "'o'");
    EXPECT_EQ(err([] { get_item(S("ab"), I(2)); }), "IndexError: string index out of range");
    EXPECT_EQ(get_item(make_bytes("A"), I(0)).as_int(), 65);
    EXPECT_EQ(get_item(make_range(5, 100, 5), I(-1)).as_int(), 95);
    EXPECT_EQ(err([] { get_item(make_range(0, 2, 1), I(2)); }),
              "IndexError: range object index out of range");
    EXPECT_EQ(err([] { get_item(I(1), I(0)); }), "TypeError: 'int' object is not subscriptable");
    EXPECT_EQ(err([] { get_item(make_set(), I(0)); }),
              "TypeError: 'set' object is not subscriptable");
}

TEST(GetItem, Dict) {
    Value d = D({{S("x"), I(1)}, {I(1), S("one")}});
    EXPECT_EQ(get_item(d, S("x")).as_int(), 1);
    EXPECT_EQ(repr(get_item(d, F(1.0))), "'one'");
    EXPECT_EQ(repr(get_item(d, B(true))), "'one'");
    EXPECT_EQ(err([&] { get_item(d, S("y")); }), "KeyError: 'y'");
    EXPECT_EQ(err([&] { get_item(d, T({I(1)})); }), "KeyError: (1,)");
    EXPECT_EQ(err([&] { get_item(d, L({})); }), "TypeError: unhashable type: 'list'");
}

TEST(SetItem, ListAndDict) {
    Value xs = L({I(1), I(2)});
    set_item(xs, I(-1), I(9));
    EXPECT_EQ(repr(xs), "[1, 9]");
    EXPECT_EQ(err([&] { set_item(xs, I(2), I(0)); }),
              "IndexError: list assignment index out of range");
    Value d = make_dict();
    set_item(d, S("a"), I(1));
    set_item(d, S("a"), I(2));
    set_item(d, S("b"), I(3));
    EXPECT_EQ(repr(d), "{'a': 2, 'b': 3}");
    EXPECT_EQ(err([&] { set_item(d, L({}), I(1)); }), "TypeError: unhashable type: 'list'");
    Value s = S("abc");
    EXPECT_EQ(err([&] { set_item(s, I(0), S("x")); }),
              "TypeError: 'str' object does not support item assignment");
    Value t = T({I(1)});
    EXPECT_EQ(err([&] { set_item(t, I(0), I(2)); }),
              "TypeError: 'tuple' object does not support item assignment");
}

TEST(SetItem, SliceAssignment) {
    Value xs = range_list(5);
    set_item(xs, make_slice(I(1), I(3), N()), L({S("a"), S("b"), S("c")}));
    EXPECT_EQ(repr(xs), "[0, 'a', 'b', 'c', 3, 4]");
    set_item(xs, make_slice(N(), N(), I(2)), L({I(7), I(8), I(9)}));
    EXPECT_EQ(repr(xs), "[7, 'a', 8, 'c', 9, 4]");
    set_item(xs, make_slice(I(0), I(0), N()), T({I(-1)}));
    EXPECT_EQ(repr(xs), "[-1, 7, 'a', 8, 'c', 9, 4]");
    set_item(xs, make_slice(I(5), I(2), N()), L({I(0)}));  // empty range inserts at start
    EXPECT_EQ(repr(xs), "[-1, 7, 'a', 8, 'c', 0, 9, 4]");
    set_item(xs, make_slice(N(), N(), N()), S("ab"));
    EXPECT_EQ(repr(xs), "['a', 'b']");
    EXPECT_EQ(err([&] { set_item(xs, make_slice(N(), N(), I(-1)), L({})); }),
              "ValueError: attempt to assign sequence of size 0 to extended slice of size 2");
}

TEST(DelItem, ListSlicesAndDict) {
    Value xs = range_list(10);
    del_item(xs, I(0));
    del_item(xs, I(-1));
    EXPECT_EQ(repr(xs), "[1, 2, 3, 4, 5, 6, 7, 8]");
    del_item(xs, make_slice(N(), N(), I(2)));
    EXPECT_EQ(repr(xs), "[2, 4, 6, 8]");
    del_item(xs, make_slice(N(), N(), I(-3)));
    EXPECT_EQ(repr(xs), "[4, 6]");
    del_item(xs, make_slice(I(5), I(9), N()));
    EXPECT_EQ(repr(xs), "[4, 6]");
    EXPECT_EQ(err([&] { del_item(xs, I(5)); }), "IndexError: list assignment index out of range");
    Value d = D({{S("a"), I(1)}, {S("b"), I(2)}});
    del_item(d, S("a"));
    EXPECT_EQ(repr(d), "{'b': 2}");
    EXPECT_EQ(err([&] { del_item(d, S("a")); }), "KeyError: 'a'");
    Value s = S("x");
    EXPECT_EQ(err([&] { del_item(s, I(0)); }),
              "TypeError: 'str' object doesn't support item deletion");
}

TEST(Contains, AllTypes) {
    EXPECT_TRUE(contains(L({I(1), S("a")}), S("a")));
    EXPECT_TRUE(contains(T({F(2.0)}), I(2)));
    EXPECT_TRUE(contains(S("héllo"), S("él")));
    EXPECT_TRUE(contains(S("abc"), S("")));
    EXPECT_EQ(err([] { contains(S("abc"), I(1)); }),
              "TypeError: 'in <string>' requires string as left operand, not int");
    EXPECT_TRUE(contains(D({{S("k"), N()}}), S("k")));
    EXPECT_FALSE(contains(D({{S("k"), N()}}), N()));
    EXPECT_TRUE(contains(Set({I(1)}), F(1.0)));
    EXPECT_TRUE(contains(make_range(0, 10, 3), I(9)));
    EXPECT_FALSE(contains(make_range(0, 10, 3), I(10)));
    EXPECT_FALSE(contains(make_range(0, 10, 3), I(4)));
    EXPECT_TRUE(contains(make_range(10, 0, -2), I(2)));
    EXPECT_TRUE(contains(make_range(0, 10, 1), F(3.0)));
    EXPECT_FALSE(contains(make_range(0, 10, 1), F(3.5)));
    EXPECT_TRUE(contains(make_bytes("abc"), I(98)));
    EXPECT_TRUE(contains(make_bytes("abc"), make_bytes("bc")));
    EXPECT_EQ(err([] { contains(I(1), I(1)); }),
              "TypeError: argument of type 'int' is not iterable");
    EXPECT_EQ(err([] { contains(L({}), L({})); }), "");
    EXPECT_EQ(err([] { contains(make_dict(), L({})); }), "TypeError: unhashable type: 'list'");
}

std::string drain(const Value& v) {
    TestContext cx;
    Value it = iter_begin(v);
    std::vector<Value> out;
    Value x;
    while (iter_next(cx, it.as<IteratorObj>(), x))
        out.push_back(x);
    return repr(L(std::move(out)));
}

TEST(Iter, Collections) {
    EXPECT_EQ(drain(L({I(1), I(2)})), "[1, 2]");
    EXPECT_EQ(drain(T({I(1)})), "[1]");
    EXPECT_EQ(drain(S("hé!")), "['h', 'é', '!']");
    EXPECT_EQ(drain(make_bytes("AB")), "[65, 66]");
    EXPECT_EQ(drain(make_range(0, 10, 3)), "[0, 3, 6, 9]");
    EXPECT_EQ(drain(make_range(5, 0, -2)), "[5, 3, 1]");
    EXPECT_EQ(drain(make_range(0, 0, 1)), "[]");
    EXPECT_EQ(drain(make_range(INT64_MAX - 2, INT64_MAX, 1)),
              "[9223372036854775805, 9223372036854775806]");
    EXPECT_EQ(drain(D({{S("a"), I(1)}, {S("b"), I(2)}})), "['a', 'b']");
    EXPECT_EQ(drain(Set({I(3), I(1)})), "[3, 1]");
    EXPECT_EQ(err([] { iter_begin(I(1)); }), "TypeError: 'int' object is not iterable");
    EXPECT_EQ(err([] { iter_begin(N()); }), "TypeError: 'NoneType' object is not iterable");
}

TEST(Iter, IteratorReturnsItselfAndExhausts) {
    Value it = iter_begin(L({I(1)}));
    EXPECT_EQ(iter_begin(it).as_obj(), it.as_obj());
    TestContext cx;
    Value x;
    EXPECT_TRUE(iter_next(cx, it.as<IteratorObj>(), x));
    EXPECT_FALSE(iter_next(cx, it.as<IteratorObj>(), x));
    EXPECT_FALSE(iter_next(cx, it.as<IteratorObj>(), x));
}

TEST(Iter, SnapshotUnderMutation) {
    Value xs = L({I(1), I(2), I(3)});
    Value it = iter_begin(xs);
    list_unshare(xs)->items.push_back(I(4));  // the iterator holds a reference, so this copies
    EXPECT_EQ(drain(it), "[1, 2, 3]");
    EXPECT_EQ(repr(xs), "[1, 2, 3, 4]");
}

TEST(Iter, DictSkipsDeleted) {
    Value d = D({{I(1), I(1)}, {I(2), I(2)}, {I(3), I(3)}});
    del_item(d, I(2));
    EXPECT_EQ(drain(d), "[1, 3]");
}

TEST(Cow, UnshareCopiesOnlyWhenShared) {
    Value xs = L({I(1)});
    ListObj* p = xs.as<ListObj>();
    EXPECT_EQ(p->rc, 1u);
    EXPECT_EQ(list_unshare(xs), p);  // unique: in place
    Value ys = xs;
    EXPECT_EQ(p->rc, 2u);
    ListObj* q = list_unshare(xs);
    EXPECT_NE(q, p);
    EXPECT_EQ(p->rc, 1u);
    EXPECT_EQ(q->rc, 1u);
    q->items.push_back(I(2));
    EXPECT_EQ(repr(ys), "[1]");
    EXPECT_EQ(repr(xs), "[1, 2]");
}

TEST(Cow, DictSetStruct) {
    Value d = D({{S("a"), I(1)}});
    Value d2 = d;
    set_item(d, S("b"), I(2));
    EXPECT_EQ(repr(d2), "{'a': 1}");
    EXPECT_EQ(repr(d), "{'a': 1, 'b': 2}");
    DictObj* dp = d.as<DictObj>();
    EXPECT_EQ(dict_unshare(d), dp);

    Value s = Set({I(1)});
    SetObj* sp = s.as<SetObj>();
    EXPECT_EQ(set_unshare(s), sp);
    Value s2 = s;
    EXPECT_NE(set_unshare(s), sp);
    set_unshare(s)->table.insert(I(2), Value());
    EXPECT_EQ(repr(s2), "{1}");

    auto* t = new StructTypeObj();
    t->name = "P";
    t->fields.push_back(FieldInfo{"x", Value(), Value(), false});
    Value p = Value::adopt(new StructObj(t));
    obj_decref(t);
    EXPECT_EQ(t->rc, 1u);  // held by the instance
    StructObj* pp = p.as<StructObj>();
    EXPECT_EQ(struct_unshare(p), pp);
    Value p2 = p;
    StructObj* np = struct_unshare(p);
    EXPECT_NE(np, pp);
    EXPECT_EQ(t->rc, 2u);
    np->fields[0] = I(5);
    EXPECT_EQ(repr(p2), "P(x=None)");
    EXPECT_EQ(repr(p), "P(x=5)");
}

TEST(Cow, ImmortalAlwaysCopies) {
    Value xs = L({});
    xs.as_obj()->flags |= Obj::kImmortal;
    ListObj* p = xs.as<ListObj>();
    EXPECT_NE(list_unshare(xs), p);
    delete p;
}

TEST(Cow, ErrorStructCopiesErrorData) {
    Value e = make_error(ErrorKind::ValueError, "bad");
    Value e2 = e;
    StructObj* c = struct_unshare(e);
    EXPECT_NE(c, e2.as<StructObj>());
    ASSERT_NE(c->error, nullptr);
    EXPECT_EQ(c->error->message, "bad");
    EXPECT_NE(c->error, e2.as<StructObj>()->error);
}

TEST(Strings, LengthAndOffsets) {
    Value s = S("aé中😀b");
    auto* o = s.as<StrObj>();
    EXPECT_FALSE(o->ascii);
    EXPECT_EQ(str_len(o), 5);
    EXPECT_EQ(str_byte_offset(o, 0), 0u);
    EXPECT_EQ(str_byte_offset(o, 2), 3u);
    EXPECT_EQ(str_byte_offset(o, 4), 10u);
    EXPECT_EQ(str_byte_offset(o, 5), 11u);
    EXPECT_EQ(repr(get_item(s, I(3))), "'😀'");
    Value a = S("abc");
    EXPECT_TRUE(a.as<StrObj>()->ascii);
    EXPECT_EQ(a.as<StrObj>()->cp_len, 3);
}

TEST(Strings, InternDeduplicatesAndIsImmortal) {
    StrObj* a = intern("name");
    StrObj* b = intern(std::string("na") + "me");
    EXPECT_EQ(a, b);
    EXPECT_TRUE(a->interned);
    EXPECT_TRUE(a->flags & Obj::kImmortal);
    { Value v = Value::borrow(a); }
    EXPECT_EQ(a->data, "name");
    Value d = make_dict();
    set_item(d, Value::borrow(a), I(1));
    EXPECT_EQ(get_item(d, S("name")).as_int(), 1);
}

TEST(Collect, FastPaths) {
    TestContext cx;
    EXPECT_EQ(collect(cx, make_range(0, 3, 1)).size(), 3u);
    Value d = D({{I(1), I(2)}});
    EXPECT_EQ(repr(L(collect(cx, d))), "[1]");
    EXPECT_EQ(repr(L(collect(cx, S("ab")))), "['a', 'b']");
}

}  // namespace
}  // namespace weft::test
