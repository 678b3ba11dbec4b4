// misc_test.cpp — one small test per behaviour not isolated elsewhere:
// constructors, conversions with no arguments, type values, odd reprs.
#include <climits>
#include <cmath>

#include "test_support.h"

namespace weft::test {
namespace {
using ast::BinaryOp;
using ast::CmpOp;

TEST(Misc, RangeZeroStep) {
    EXPECT_EQ(err([] { make_range(0, 1, 0); }), "ValueError: range() arg 3 must not be zero");
}

TEST(Misc, EmptyConversions) {
    EXPECT_EQ(repr(callb("int", {})), "0");
    EXPECT_EQ(repr(callb("float", {})), "0.0");
    EXPECT_EQ(repr(callb("str", {})), "''");
    EXPECT_EQ(repr(callb("bool", {})), "False");
    EXPECT_EQ(repr(callb("list", {})), "[]");
    EXPECT_EQ(repr(callb("dict", {})), "{}");
    EXPECT_EQ(repr(callb("set", {})), "set()");
    EXPECT_EQ(repr(callb("tuple", {})), "()");
    EXPECT_EQ(repr(callb("bytes", {})), "b''");
}

TEST(Misc, RangeAndTypeArity) {
    EXPECT_EQ(err([] { callb("range", {}); }),
              "TypeError: range expected at least 1 argument, got 0");
    EXPECT_EQ(err([] {
                  callb("range", {I(1), I(2), I(3), I(4)});
              }),
              "TypeError: range expected at most 3 arguments, got 4");
    EXPECT_EQ(err([] { callb("type", {}); }), "TypeError: type() takes 1 argument");
}

TEST(Misc, ConversionsReturnSameImmutable) {
    Value s = S("x");
    EXPECT_EQ(callb("str", {s}).as_obj(), s.as_obj());
    Value t = T({I(1)});
    EXPECT_EQ(callb("tuple", {t}).as_obj(), t.as_obj());
    Value l = L({I(1)});
    EXPECT_NE(callb("list", {l}).as_obj(), l.as_obj());
}

TEST(Misc, TypeValueNames) {
    EXPECT_EQ(builtin_type_value(BuiltinType::NoneType).as<TypeObj>()->name, "NoneType");
    EXPECT_EQ(builtin_type_value(BuiltinType::Dict).as<TypeObj>()->name, "dict");
    EXPECT_EQ(repr(type_of(callb("map", {builtin("abs"), L({})}))), "<class 'iterator'>");
    EXPECT_EQ(repr(type_of(builtin("len"))), "<class 'function'>");
}

TEST(Misc, IsInstanceSpecialTypes) {
    EXPECT_TRUE(is_instance(I(1), builtin_type_value(BuiltinType::Any)));
    EXPECT_TRUE(is_instance(builtin("len"), builtin_type_value(BuiltinType::Function)));
    EXPECT_TRUE(is_instance(iter_begin(L({})), builtin_type_value(BuiltinType::Iterator)));
    EXPECT_TRUE(is_instance(N(), builtin_type_value(BuiltinType::NoneType)));
    EXPECT_FALSE(is_instance(I(0), builtin_type_value(BuiltinType::NoneType)));
    EXPECT_TRUE(
        is_instance(make_error(ErrorKind::Error, "x"), builtin_type_value(BuiltinType::Struct)));
}

TEST(Misc, ValueLessDirect) {
    EXPECT_TRUE(value_less(I(1), I(2)));
    EXPECT_FALSE(value_less(F(NAN), F(1)));
    EXPECT_TRUE(value_less(S("a"), S("b")));
    EXPECT_TRUE(value_less(Set({I(1)}), Set({I(1), I(2)})));
    EXPECT_EQ(err([] { value_less(N(), I(1)); }),
              "TypeError: '<' not supported between instances of 'NoneType' and 'int'");
}

TEST(Misc, CompareReturnsBoolValues) {
    EXPECT_TRUE(compare(CmpOp::Eq, I(1), I(1)).is_bool());
    EXPECT_TRUE(compare(CmpOp::Lt, F(1), F(2)).is_bool());
    EXPECT_TRUE(compare(CmpOp::In, I(1), L({})).is_bool());
}

TEST(Misc, TruthyOfOtherObjects) {
    EXPECT_TRUE(truthy(iter_begin(L({}))));
    EXPECT_TRUE(truthy(builtin("len")));
    EXPECT_TRUE(truthy(builtin_type_value(BuiltinType::Int)));
    EXPECT_TRUE(truthy(make_error(ErrorKind::Error, "")));
}

TEST(Misc, HashOfRangesAndNone) {
    EXPECT_EQ(value_hash(make_range(0, 3, 1)), value_hash(make_range(0, 3, 1)));
    EXPECT_EQ(value_hash(make_range(0, 0, 1)), value_hash(make_range(5, 5, 2)));
    EXPECT_EQ(value_hash(N()), value_hash(N()));
    EXPECT_EQ(value_hash(builtin("len")), value_hash(builtin("len")));
}

TEST(Misc, StrLenCached) {
    Value s = S("añb");
    auto* o = s.as<StrObj>();
    EXPECT_EQ(o->cp_len, -1);
    EXPECT_EQ(str_len(o), 3);
    EXPECT_EQ(o->cp_len, 3);
}

TEST(Misc, HugeRepeatRaises) {
    EXPECT_EQ(err([] { binop(BinaryOp::Mul, S("ab"), I(INT64_MAX)); }),
              "OverflowError: repeated sequence is too long");
    EXPECT_EQ(err([] { binop(BinaryOp::Mul, L({I(1)}), I(1LL << 60)); }),
              "OverflowError: repeated sequence is too long");
    // Representable but more than the machine's memory: MemoryError before allocating.
    EXPECT_EQ(err([] { binop(BinaryOp::Mul, L({I(1)}), I(1LL << 50)); }).rfind("MemoryError: cannot allocate a list of ", 0),
              0u);
    EXPECT_EQ(repr(binop(BinaryOp::Mul, S(""), I(INT64_MAX))), "''");
}

TEST(Misc, ReprOfQuotesAlone) {
    EXPECT_EQ(repr(S("'")), "\"'\"");
    EXPECT_EQ(repr(S("\"")), "'\"'");
    EXPECT_EQ(repr(S("\x7f")), "'\\x7f'");
    EXPECT_EQ(repr(S("")), "''");
}

TEST(Misc, ToStrOfNestedStringsUsesRepr) {
    EXPECT_EQ(to_str(T({S("a")})), "('a',)");
    EXPECT_EQ(to_str(D({{S("k"), S("v")}})), "{'k': 'v'}");
}

TEST(Misc, HexOfBoolAndChrSurrogate) {
    EXPECT_EQ(repr(callb("hex", {B(true)})), "'0x1'");
    EXPECT_NE(err([] { callb("chr", {I(0xD800)}); }), "");
    EXPECT_EQ(repr(callb("chr", {I(0x41)})), "'A'");
}

TEST(Misc, FormatBuiltinArgTypes) {
    EXPECT_EQ(err([] {
                  callb("format", {I(1), I(2)});
              }),
              "TypeError: format() argument 2 must be str, not int");
    EXPECT_EQ(repr(callb("format", {L({I(1)})})), "'[1]'");
}

TEST(Misc, InputWithoutPrompt) {
    TestContext cx;
    cx.input.push_back("héllo");
    EXPECT_EQ(repr(callb(cx, "input", {})), "'héllo'");
    EXPECT_EQ(cx.out, "");
}

TEST(Misc, FilterNoneDropsFalsy) {
    TestContext cx;
    Value f = callb(cx, "filter", {N(), L({I(0), S(""), N(), I(3), L({}), S("x")})});
    EXPECT_EQ(repr(L(collect(cx, f))), "[3, 'x']");
}

TEST(Misc, MapSeveralIterablesStopsAtShortest) {
    TestContext cx;
    Value pow = native("pow2", [](CallContext&, const CallArgs& a) {
        return binary_op(BinaryOp::Pow, a.pos[0], a.pos[1]);
    });
    Value m = callb(cx, "map", {pow, L({I(2), I(3), I(4)}), L({I(2), I(2)})});
    EXPECT_EQ(repr(L(collect(cx, m))), "[4, 9]");
}

TEST(Misc, EnumerateOverflowGuard) {
    TestContext cx;
    Value e = callb(cx, "enumerate", {L({I(1), I(2)}), I(INT64_MAX)});
    Value x;
    EXPECT_TRUE(iter_next(cx, e.as<IteratorObj>(), x));
    EXPECT_EQ(repr(x), "(9223372036854775807, 1)");
    EXPECT_EQ(err([&] { iter_next(cx, e.as<IteratorObj>(), x); }),
              "OverflowError: integer overflow");
}

TEST(Misc, DictPopDefaultAndKeyError) {
    Value d = D({{I(1), S("a")}});
    EXPECT_EQ(repr(callm(d, "pop", {I(2), N()})), "None");
    EXPECT_EQ(err([&] { callm(d, "pop", {S("k")}); }), "KeyError: 'k'");
    EXPECT_EQ(repr(callm(d, "pop", {F(1.0)})), "'a'");
    EXPECT_EQ(repr(d), "{}");
}

TEST(Misc, BytesIndexingAndIteration) {
    Value b = make_bytes("\x01\xff");
    EXPECT_EQ(get_item(b, I(-1)).as_int(), 255);
    TestContext cx;
    EXPECT_EQ(repr(L(collect(cx, b))), "[1, 255]");
    EXPECT_EQ(repr(callm(b, "hex")), "'01ff'");
    EXPECT_TRUE(callm(b, "startswith", {make_bytes("\x01")}).as_bool());
}

TEST(Misc, StringIterationNonAscii) {
    TestContext cx;
    EXPECT_EQ(repr(L(collect(cx, S("a€😀")))), "['a', '€', '😀']");
}

TEST(Misc, SliceOfStringSharesNothing) {
    Value s = S("hello");
    Value t = get_item(s, make_slice(N(), N(), N()));
    EXPECT_TRUE(values_equal(s, t));
}

TEST(Misc, StructHashUnhashableField) {
    auto* t = new StructTypeObj();
    t->name = "Box";
    t->fields.push_back(FieldInfo{"items", Value(), Value(), false});
    Value b = Value::adopt(new StructObj(t));
    obj_decref(t);
    b.as<StructObj>()->fields[0] = L({});
    EXPECT_EQ(err([&] { value_hash(b); }), "TypeError: unhashable type: 'list'");
}

TEST(Misc, ErrorValuesCompareByIdentity) {
    Value e1 = make_error(ErrorKind::ValueError, "x");
    Value e2 = make_error(ErrorKind::ValueError, "x");
    Value e3 = e1;
    EXPECT_FALSE(values_equal(e1, e2));
    EXPECT_TRUE(values_equal(e1, e3));
}

}  // namespace
}  // namespace weft::test
