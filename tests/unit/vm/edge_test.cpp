// edge_test.cpp — focused edge cases across the object library that the
// generated tables do not isolate: code-point indices, laziness, numeric
// conversions, argument errors and value semantics of method results.
#include <climits>
#include <cmath>

#include "test_support.h"

namespace weft::test {
namespace {
using ast::BinaryOp;

TEST(StrEdge, FindReturnsCodePointIndex) {
    Value s = S("héllo wörld");
    EXPECT_EQ(callm(s, "find", {S("w")}).as_int(), 6);
    EXPECT_EQ(callm(s, "rfind", {S("l")}).as_int(), 9);
    EXPECT_EQ(callm(s, "find", {S("ö"), I(7)}).as_int(), 7);
    EXPECT_EQ(callm(s, "find", {S("ö"), I(8)}).as_int(), -1);
    EXPECT_EQ(callm(s, "index", {S("é")}).as_int(), 1);
}

TEST(StrEdge, SplitMultiCharSeparator) {
    Value s = S("a::b::::c");
    EXPECT_EQ(repr(callm(s, "split", {S("::")})), "['a', 'b', '', 'c']");
    EXPECT_EQ(repr(callm(s, "rsplit", {S("::"), I(1)})), "['a::b::', 'c']");
}

TEST(StrEdge, SplitKeywordArguments) {
    Value s = S("a b c");
    EXPECT_EQ(repr(callm(s, "split", {}, {KwArg{"maxsplit", I(1)}})), "['a', 'b c']");
    EXPECT_EQ(repr(callm(s, "split", {}, {KwArg{"sep", S(" ")}})), "['a', 'b', 'c']");
    EXPECT_EQ(err([&] {
                  callm(s, "split", {}, {KwArg{"x", I(1)}});
              }),
              "TypeError: split() got an unexpected keyword argument 'x'");
}

TEST(StrEdge, JoinIterables) {
    TestContext cx;
    Value sep = S("-");
    EXPECT_EQ(repr(callm(sep, "join", {callb(cx, "map", {builtin("str"), L({I(1), I(2)})})})),
              "'1-2'");
    EXPECT_EQ(repr(callm(sep, "join", {D({{S("a"), I(1)}, {S("b"), I(2)}})})), "'a-b'");
    EXPECT_EQ(err([&] { callm(sep, "join", {I(5)}); }), "TypeError: can only join an iterable");
}

TEST(StrEdge, JoinSingleItemSharesString) {
    Value x = S("only");
    Value sep = S(", ");
    Value r = callm(sep, "join", {L({x})});
    EXPECT_EQ(r.as_obj(), x.as_obj());
}

TEST(StrEdge, StripNonAsciiChars) {
    Value s = S("ééabcéé");
    EXPECT_EQ(repr(callm(s, "strip", {S("é")})), "'abc'");
    EXPECT_EQ(repr(callm(s, "rstrip", {S("éc")})), "'ééab'");
    Value w = S("\u3000 x \u00a0");
    EXPECT_EQ(repr(callm(w, "strip")), "'x'");
}

TEST(StrEdge, UnchangedResultsShareReceiver) {
    Value s = S("abc");
    EXPECT_EQ(callm(s, "strip").as_obj(), s.as_obj());
    EXPECT_EQ(callm(s, "lower").as_obj(), s.as_obj());
    EXPECT_EQ(callm(s, "replace", {S("x"), S("y")}).as_obj(), s.as_obj());
}

TEST(StrEdge, IndexingAsciiIsInternedAndCheap) {
    Value s = S("abc");
    Value a = get_item(s, I(0));
    Value b = get_item(S("xa"), I(1));
    EXPECT_EQ(a.as_obj(), b.as_obj());
    EXPECT_TRUE(a.as_obj()->flags & Obj::kImmortal);
}

TEST(StrEdge, CenterMatchesPythonParity) {
    Value ab = S("ab");
    EXPECT_EQ(repr(callm(ab, "center", {I(5)})), "'  ab '");
    Value x = S("abc");
    EXPECT_EQ(repr(callm(x, "center", {I(6), S("*")})), "'*abc**'");
    EXPECT_EQ(err([&] {
                  callm(x, "center", {I(6), S("")});
              }),
              "TypeError: The fill character must be exactly one character long");
}

TEST(StrEdge, EncodeDecodeRoundTrip) {
    Value s = S("naïve ☃ 😀");
    Value b = callm(s, "encode");
    EXPECT_EQ(length(b), int64_t(sv_of(s).size()));
    EXPECT_TRUE(values_equal(callm(b, "decode"), s));
    EXPECT_EQ(err([&] { callm(b, "decode", {S("klingon")}); }),
              "ValueError: unknown encoding: klingon");
}

TEST(StrEdge, ConcatInternedNeverMutated) {
    Value a = Value::borrow(intern("shared_name"));
    Value r = str_concat(a, S("!"));
    EXPECT_EQ(intern("shared_name")->data, "shared_name");
    EXPECT_EQ(sv_of(r), "shared_name!");
}

TEST(NumEdge, IntParsing) {
    EXPECT_EQ(callb("int", {S("  -0  ")}).as_int(), 0);
    EXPECT_EQ(callb("int", {S("0o17"), I(0)}).as_int(), 15);
    EXPECT_EQ(callb("int", {S("0B11"), I(0)}).as_int(), 3);
    EXPECT_EQ(callb("int", {S("-9223372036854775808")}).as_int(), INT64_MIN);
    EXPECT_EQ(err([] { callb("int", {S("9223372036854775808")}); }),
              "OverflowError: integer overflow");
    EXPECT_EQ(err([] { callb("int", {S("_1")}); }),
              "ValueError: invalid literal for int() with base 10: '_1'");
    EXPECT_EQ(err([] { callb("int", {S("1_")}); }),
              "ValueError: invalid literal for int() with base 10: '1_'");
    EXPECT_EQ(err([] { callb("int", {S("0x")}); }),
              "ValueError: invalid literal for int() with base 10: '0x'");
    EXPECT_EQ(callb("int", {S("0x_ff"), I(16)}).as_int(), 255);
    EXPECT_EQ(err([] {
                  callb("int", {I(5), I(2)});
              }),
              "TypeError: int() can't convert non-string with explicit base");
}

TEST(NumEdge, FloatParsing) {
    EXPECT_EQ(callb("float", {S("1e3")}).as_float(), 1000.0);
    EXPECT_TRUE(std::isnan(callb("float", {S("-nan")}).as_float()));
    EXPECT_EQ(err([] { callb("float", {S("1__0")}); }),
              "ValueError: could not convert string to float: '1__0'");
    EXPECT_EQ(err([] { callb("float", {S("0x1p3")}); }),
              "ValueError: could not convert string to float: '0x1p3'");
    EXPECT_EQ(err([] { callb("float", {S(" ")}); }),
              "ValueError: could not convert string to float: ' '");
}

TEST(NumEdge, RoundBankers) {
    EXPECT_EQ(callb("round", {F(0.5)}).as_int(), 0);
    EXPECT_EQ(callb("round", {F(1.5)}).as_int(), 2);
    EXPECT_EQ(callb("round", {F(-0.5)}).as_int(), 0);
    EXPECT_EQ(repr(callb("round", {F(-0.4), I(0)})), "-0.0");
    EXPECT_EQ(repr(callb("round", {I(-15), I(-1)})), "-20");
    EXPECT_EQ(repr(callb("round", {F(2.5)}, {KwArg{"ndigits", I(0)}})), "2.0");
    EXPECT_EQ(err([] { callb("round", {F(1e300)}); }), "OverflowError: integer overflow");
    EXPECT_EQ(err([] {
                  callb("round", {I(INT64_MAX), I(-1)});
              }),
              "OverflowError: integer overflow");
}

TEST(NumEdge, DivmodConsistentWithOperators) {
    for (int64_t a : {-7, -1, 0, 1, 7, 13})
        for (int64_t b : {-3, -1, 2, 5}) {
            Value r = callb("divmod", {I(a), I(b)});
            EXPECT_TRUE(values_equal(get_item(r, I(0)), binop(BinaryOp::FloorDiv, I(a), I(b))));
            EXPECT_TRUE(values_equal(get_item(r, I(1)), binop(BinaryOp::Mod, I(a), I(b))));
        }
}

TEST(NumEdge, FloatFloorDivAndModSigns) {
    EXPECT_EQ(repr(binop(BinaryOp::FloorDiv, F(-7.5), I(2))), "-4.0");
    EXPECT_EQ(repr(binop(BinaryOp::Mod, F(-7.5), I(2))), "0.5");
    EXPECT_EQ(repr(binop(BinaryOp::Mod, F(7.5), I(-2))), "-0.5");
    EXPECT_EQ(repr(binop(BinaryOp::Mod, F(-0.0), I(5))), "0.0");
    EXPECT_EQ(repr(binop(BinaryOp::FloorDiv, F(1), F(INFINITY))), "0.0");
}

TEST(NumEdge, MixedIntFloatDictKeys) {
    Value d = make_dict();
    set_item(d, I(1), S("a"));
    EXPECT_EQ(repr(get_item(d, F(1.0))), "'a'");
    set_item(d, F(1.0), S("b"));
    EXPECT_EQ(repr(d), "{1: 'b'}");
    set_item(d, F(1.5), S("c"));
    EXPECT_EQ(repr(d), "{1: 'b', 1.5: 'c'}");
}

TEST(IterEdge, ZipStrictMessages) {
    TestContext cx;
    Value z = callb(cx, "zip", {L({I(1), I(2)}), L({I(1)}), L({I(1)})}, {KwArg{"strict", B(true)}});
    EXPECT_EQ(err([&] { collect(cx, z); }),
              "ValueError: zip() argument 2 is shorter than argument 1");
    Value z2 =
        callb(cx, "zip", {L({I(1)}), L({I(1)}), L({I(1), I(2)})}, {KwArg{"strict", B(true)}});
    EXPECT_EQ(err([&] { collect(cx, z2); }),
              "ValueError: zip() argument 3 is longer than arguments 1-2");
}

TEST(IterEdge, ContainsConsumesIterator) {
    TestContext cx;
    Value it = iter_begin(L({I(1), I(2), I(3)}));
    EXPECT_TRUE(contains(it, I(2)));
    Value x;
    EXPECT_TRUE(iter_next(cx, it.as<IteratorObj>(), x));
    EXPECT_EQ(x.as_int(), 3);
}

TEST(IterEdge, EnumerateOverIterator) {
    TestContext cx;
    Value e = callb(cx, "enumerate", {callb(cx, "reversed", {S("ab")})}, {KwArg{"start", I(1)}});
    EXPECT_EQ(repr(L(collect(cx, e))), "[(1, 'b'), (2, 'a')]");
}

TEST(IterEdge, DictItemsIterationKind) {
    Value d = D({{S("a"), I(1)}});
    Value items = callm(d, "items");
    EXPECT_EQ(repr(items), "[('a', 1)]");
    EXPECT_EQ(repr(callm(d, "keys")), "['a']");
    EXPECT_EQ(repr(callm(d, "values")), "[1]");
}

TEST(IterEdge, ReversedRangeEmptyAndNegative) {
    TestContext cx;
    EXPECT_EQ(repr(L(collect(cx, callb(cx, "reversed", {make_range(0, 0, 1)})))), "[]");
    EXPECT_EQ(repr(L(collect(cx, callb(cx, "reversed", {make_range(5, 0, -2)})))), "[1, 3, 5]");
}

TEST(IterEdge, SortedOfNonIterable) {
    EXPECT_EQ(err([] { callb("sorted", {I(5)}); }), "TypeError: 'int' object is not iterable");
    EXPECT_EQ(err([] {
                  callb("sorted", {L({}), L({})});
              }),
              "TypeError: sorted expected 1 argument, got 2");
    EXPECT_EQ(err([] {
                  callb("sorted", {L({})}, {KwArg{"cmp", N()}});
              }),
              "TypeError: sorted() got an unexpected keyword argument 'cmp'");
}

TEST(IterEdge, SumStartsAndTypes) {
    EXPECT_EQ(repr(callb("sum", {L({F(0.5), I(1)})}, {KwArg{"start", F(0.25)}})), "1.75");
    EXPECT_EQ(repr(callb("sum", {T({L({I(1)}), L({I(2)})}), L({})})), "[1, 2]");
    EXPECT_EQ(err([] { callb("sum", {L({S("a")})}); }),
              "TypeError: unsupported operand type(s) for +: 'int' and 'str'");
}

TEST(CollEdge, SetMethodsAcceptIterables) {
    Value s = Set({I(1), I(2)});
    EXPECT_EQ(repr(callm(s, "union", {L({I(3)}), S("a")})), "{1, 2, 3, 'a'}");
    EXPECT_EQ(repr(callm(s, "intersection")), "{1, 2}");
    EXPECT_TRUE(callm(s, "issubset", {make_range(0, 5, 1)}).as_bool());
    EXPECT_EQ(err([&] { callm(s, "union", {I(3)}); }), "TypeError: 'int' object is not iterable");
}

TEST(CollEdge, SetPopRemovesFirstInserted) {
    Value s = Set({S("x"), S("y")});
    EXPECT_EQ(repr(callm(s, "pop")), "'x'");
    EXPECT_EQ(repr(s), "{'y'}");
}

TEST(CollEdge, DictUpdateKwargsAndPairs) {
    Value d = make_dict();
    callm(d, "update", {L({T({S("a"), I(1)})})}, {KwArg{"b", I(2)}});
    EXPECT_EQ(repr(d), "{'a': 1, 'b': 2}");
    EXPECT_EQ(err([&] { callm(d, "update", {L({T({I(1)})})}); }),
              "ValueError: dictionary update sequence element #0 has length 1; 2 is required");
}

TEST(CollEdge, ClearOnSharedReceiverDetaches) {
    Value xs = L({I(1)});
    Value ys = xs;
    auto* m = find_method(xs, "clear");
    TestContext cx;
    CallArgs none{};
    m->fn(cx, xs, none);  // called without unsharing first: still must not touch ys
    EXPECT_EQ(repr(ys), "[1]");
    EXPECT_EQ(repr(xs), "[]");
}

TEST(CollEdge, ListInsertPopBounds) {
    Value xs = L({});
    callm(xs, "insert", {I(-10), S("a")});
    callm(xs, "insert", {I(10), S("c")});
    callm(xs, "insert", {I(1), S("b")});
    EXPECT_EQ(repr(xs), "['a', 'b', 'c']");
    EXPECT_EQ(err([&] { callm(xs, "pop", {I(-4)}); }), "IndexError: pop index out of range");
    EXPECT_EQ(repr(callm(xs, "pop", {I(-3)})), "'a'");
}

TEST(CollEdge, TupleEqualityAndHashAcrossNumbers) {
    Value d = make_dict();
    set_item(d, T({I(1), I(2)}), S("t"));
    EXPECT_EQ(repr(get_item(d, T({F(1.0), F(2.0)}))), "'t'");
    EXPECT_EQ(err([&] { get_item(d, T({I(1), B(false)})); }), "KeyError: (1, False)");
}

TEST(CollEdge, RepeatCopiesNotAliases) {
    Value inner = L({I(0)});
    Value outer = binop(BinaryOp::Mul, L({inner}), I(3));
    Value first = get_item(outer, I(0));
    list_unshare(first)->items.push_back(I(1));
    EXPECT_EQ(repr(outer), "[[0], [0], [0]]");
}

TEST(FormatEdge, BoolAndNoneFormatting) {
    EXPECT_EQ(format_spec(B(true), ""), "True");
    EXPECT_EQ(format_spec(B(true), ">5"), "    1");
    EXPECT_EQ(format_spec(B(false), "d"), "0");
    EXPECT_EQ(format_spec(N(), ""), "None");
}

TEST(FormatEdge, GroupingWidthsAndFill) {
    EXPECT_EQ(format_spec(I(1234567), "_d"), "1_234_567");
    EXPECT_EQ(format_spec(I(-1234), "010,"), "-0,001,234");
    EXPECT_EQ(format_spec(F(-1234.5), "012,.1f"), "-0,001,234.5");
    EXPECT_EQ(format_spec(I(65), "c"), "A");
    EXPECT_EQ(format_spec(S("é"), "*^5"), "**é**");
}

TEST(FormatEdge, PercentWithMappingMissingKey) {
    EXPECT_EQ(err([] { percent_format("%(x)s", D({})); }), "KeyError: 'x'");
    EXPECT_EQ(err([] { percent_format("%(x)s", I(1)); }), "TypeError: format requires a mapping");
}

TEST(FormatEdge, ReprNestedStructInList) {
    auto* t = new StructTypeObj();
    t->name = "P";
    t->fields.push_back(FieldInfo{"s", Value(), Value(), false});
    Value p = Value::adopt(new StructObj(t));
    obj_decref(t);
    p.as<StructObj>()->fields[0] = S("it's");
    EXPECT_EQ(repr(L({p, D({{S("k"), p}})})), "[P(s=\"it's\"), {'k': P(s=\"it's\")}]");
    EXPECT_EQ(repr(callb("type", {p})), "<class 'P'>");
}

TEST(ArgEdge, ArityMessages) {
    EXPECT_EQ(err([] { callb("len", {}); }),
              "TypeError: len() takes exactly one argument (0 given)");
    EXPECT_EQ(err([] {
                  callb("abs", {I(1), I(2)});
              }),
              "TypeError: abs() takes exactly one argument (2 given)");
    EXPECT_EQ(err([] { callb("divmod", {I(1)}); }),
              "TypeError: divmod expected 2 arguments, got 1");
    EXPECT_EQ(err([] {
                  callb("len", {S("a")}, {KwArg{"x", I(1)}});
              }),
              "TypeError: len() got an unexpected keyword argument 'x'");
    EXPECT_EQ(err([] { callb("range", {F(1.0)}); }),
              "TypeError: 'float' object cannot be interpreted as an integer");
}

}  // namespace
}  // namespace weft::test

namespace weft::test {
namespace {

TEST(StrEdge, EmptyNeedleWithReversedSpan) {
    Value s = S("abc");
    EXPECT_EQ(callm(s, "find", {S(""), I(2), I(1)}).as_int(), -1);
    EXPECT_EQ(callm(s, "count", {S(""), I(2), I(1)}).as_int(), 0);
    EXPECT_FALSE(callm(s, "startswith", {S(""), I(2), I(1)}).as_bool());
    EXPECT_EQ(callm(s, "find", {S(""), I(3)}).as_int(), 3);
    EXPECT_TRUE(callm(s, "endswith", {S(""), I(1), I(1)}).as_bool());
}

}  // namespace
}  // namespace weft::test
