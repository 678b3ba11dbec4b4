// arith_test.cpp — binary and unary operators, overflow and division edges.
#include <bit>
#include <climits>
#include <cmath>

#include "test_support.h"

namespace weft::test {
namespace {
using ast::BinaryOp;
using ast::UnaryOp;

struct ArithCase {
    BinaryOp op;
    Value a, b, expect;
    const char* error;
};

bool same_value(const Value& x, const Value& y) {
    if (x.tag() != y.tag()) return false;
    if (x.is_float()) {
        double p = x.as_float(), q = y.as_float();
        if (std::isnan(p)) return std::isnan(q);
        return p == q && std::signbit(p) == std::signbit(q);
    }
    return values_equal(x, y);
}

TEST(Arith, MatchesPythonTable) {
    const ArithCase cases[] = {
#include "arith_table.inc"
    };
    int n = 0;
    for (auto& c : cases) {
        Value got;
        std::string e = err([&] { got = binary_op(c.op, c.a, c.b); });
        SCOPED_TRACE(repr(c.a) + " op" + std::to_string(int(c.op)) + " " + repr(c.b));
        if (*c.error) {
            EXPECT_EQ(e, c.error);
        } else {
            EXPECT_EQ(e, "");
            EXPECT_TRUE(same_value(got, c.expect)) << repr(got) << " vs " << repr(c.expect);
        }
        ++n;
    }
    EXPECT_GT(n, 2000);
}

TEST(Arith, OverflowEdges) {
    EXPECT_EQ(err([] { binop(BinaryOp::FloorDiv, I(INT64_MIN), I(-1)); }),
              "OverflowError: integer overflow");
    EXPECT_EQ(binop(BinaryOp::Mod, I(INT64_MIN), I(-1)).as_int(), 0);
    EXPECT_EQ(err([] { binop(BinaryOp::Pow, I(2), I(63)); }), "OverflowError: integer overflow");
    EXPECT_EQ(binop(BinaryOp::Pow, I(-2), I(63)).as_int(), INT64_MIN);
    EXPECT_EQ(binop(BinaryOp::Pow, I(2), I(62)).as_int(), 1LL << 62);
    EXPECT_EQ(err([] { binop(BinaryOp::Add, I(INT64_MAX), I(1)); }),
              "OverflowError: integer overflow");
    EXPECT_EQ(err([] { binop(BinaryOp::Sub, I(INT64_MIN), I(1)); }),
              "OverflowError: integer overflow");
    EXPECT_EQ(err([] { binop(BinaryOp::Mul, I(1LL << 32), I(1LL << 31)); }),
              "OverflowError: integer overflow");
    EXPECT_EQ(err([] { binop(BinaryOp::Shl, I(1), I(63)); }), "OverflowError: integer overflow");
    EXPECT_EQ(binop(BinaryOp::Shl, I(-1), I(63)).as_int(), INT64_MIN);
    EXPECT_EQ(binop(BinaryOp::Shl, I(0), I(1000)).as_int(), 0);
    EXPECT_EQ(binop(BinaryOp::Shr, I(-5), I(1000)).as_int(), -1);
    EXPECT_EQ(err([] { binop(BinaryOp::Shr, I(1), I(-1)); }), "ValueError: negative shift count");
    EXPECT_EQ(err([] { unary_op(UnaryOp::Neg, I(INT64_MIN)); }), "OverflowError: integer overflow");
    EXPECT_EQ(err([] { callb("abs", {I(INT64_MIN)}); }), "OverflowError: integer overflow");
}

TEST(Arith, DivisionByZeroMessages) {
    EXPECT_EQ(err([] { binop(BinaryOp::Div, I(1), I(0)); }), "ZeroDivisionError: division by zero");
    EXPECT_EQ(err([] { binop(BinaryOp::FloorDiv, I(1), I(0)); }),
              "ZeroDivisionError: integer division or modulo by zero");
    EXPECT_EQ(err([] { binop(BinaryOp::Mod, I(1), I(0)); }),
              "ZeroDivisionError: integer modulo by zero");
    EXPECT_EQ(err([] { binop(BinaryOp::Div, F(1), I(0)); }),
              "ZeroDivisionError: float division by zero");
    EXPECT_EQ(err([] { binop(BinaryOp::FloorDiv, F(1), F(0)); }),
              "ZeroDivisionError: float floor division by zero");
    EXPECT_EQ(err([] { binop(BinaryOp::Mod, F(1), F(0)); }), "ZeroDivisionError: float modulo");
    EXPECT_EQ(err([] { binop(BinaryOp::Pow, I(0), I(-1)); }),
              "ZeroDivisionError: 0.0 cannot be raised to a negative power");
}

TEST(Arith, TrueDivisionAlwaysFloat) {
    Value r = binop(BinaryOp::Div, I(4), I(2));
    EXPECT_TRUE(r.is_float());
    EXPECT_EQ(r.as_float(), 2.0);
    EXPECT_TRUE(binop(BinaryOp::Pow, I(2), I(-1)).is_float());
    EXPECT_EQ(binop(BinaryOp::Pow, I(2), I(-1)).as_float(), 0.5);
}

TEST(Arith, FloatSums) {
    EXPECT_FALSE(values_equal(binop(BinaryOp::Add, F(0.1), F(0.2)), F(0.3)));
    EXPECT_EQ(repr(binop(BinaryOp::Add, F(0.1), F(0.2))), "0.30000000000000004");
    EXPECT_EQ(repr(binop(BinaryOp::Mul, F(1e308), F(10))), "inf");
}

TEST(Arith, BoolsActAsInts) {
    EXPECT_EQ(repr(binop(BinaryOp::Add, B(true), B(true))), "2");
    EXPECT_EQ(repr(binop(BinaryOp::BitAnd, B(true), B(false))), "False");
    EXPECT_EQ(repr(binop(BinaryOp::BitOr, B(true), B(false))), "True");
    EXPECT_EQ(repr(binop(BinaryOp::BitXor, B(true), B(true))), "False");
    EXPECT_EQ(repr(binop(BinaryOp::BitAnd, B(true), I(3))), "1");
    EXPECT_EQ(repr(binop(BinaryOp::Mul, B(true), F(2.5))), "2.5");
}

TEST(Arith, Strings) {
    EXPECT_EQ(repr(binop(BinaryOp::Add, S("ab"), S("cd"))), "'abcd'");
    EXPECT_EQ(repr(binop(BinaryOp::Mul, S("ab"), I(3))), "'ababab'");
    EXPECT_EQ(repr(binop(BinaryOp::Mul, I(2), S("é"))), "'éé'");
    EXPECT_EQ(repr(binop(BinaryOp::Mul, S("ab"), I(-1))), "''");
    EXPECT_EQ(repr(binop(BinaryOp::Mul, S("ab"), B(true))), "'ab'");
    EXPECT_EQ(err([] { binop(BinaryOp::Add, S("a"), I(1)); }),
              "TypeError: can only concatenate str (not \"int\") to str");
    EXPECT_EQ(err([] { binop(BinaryOp::Add, I(1), S("a")); }),
              "TypeError: unsupported operand type(s) for +: 'int' and 'str'");
    EXPECT_EQ(err([] { binop(BinaryOp::Mul, S("a"), S("b")); }),
              "TypeError: can't multiply sequence by non-int of type 'str'");
    EXPECT_EQ(err([] { binop(BinaryOp::Mul, S("a"), F(2)); }),
              "TypeError: can't multiply sequence by non-int of type 'float'");
    EXPECT_EQ(err([] { binop(BinaryOp::Sub, S("a"), S("b")); }),
              "TypeError: unsupported operand type(s) for -: 'str' and 'str'");
    EXPECT_EQ(err([] { binop(BinaryOp::Pow, I(1), S("b")); }),
              "TypeError: unsupported operand type(s) for ** or pow(): 'int' and 'str'");
}

TEST(Arith, StrConcatInPlaceWhenUnique) {
    Value a = S("ab");
    StrObj* before = a.as<StrObj>();
    value_hash(a);
    Value r = str_concat(a, S("cd"));
    EXPECT_EQ(r.as<StrObj>(), before);
    EXPECT_EQ(sv_of(a), "abcd");
    EXPECT_EQ(a.as<StrObj>()->hash, 0u);  // cache invalidated
    EXPECT_EQ(value_hash(a), value_hash(S("abcd")));
    Value shared = a;  // now shared: must copy
    Value r2 = str_concat(a, S("é"));
    EXPECT_NE(r2.as<StrObj>(), a.as<StrObj>());
    EXPECT_EQ(sv_of(a), "abcd");
    EXPECT_EQ(sv_of(r2), "abcdé");
    EXPECT_FALSE(r2.as<StrObj>()->ascii);
    EXPECT_EQ(str_len(r2.as<StrObj>()), 5);
}

TEST(Arith, ListsAndTuples) {
    Value xs = L({I(1)}), ys = L({I(2)});
    Value r = binop(BinaryOp::Add, xs, ys);
    EXPECT_EQ(repr(r), "[1, 2]");
    EXPECT_NE(r.as_obj(), xs.as_obj());
    EXPECT_EQ(repr(binop(BinaryOp::Mul, L({I(0)}), I(3))), "[0, 0, 0]");
    EXPECT_EQ(repr(binop(BinaryOp::Mul, I(2), T({I(1), I(2)}))), "(1, 2, 1, 2)");
    EXPECT_EQ(repr(binop(BinaryOp::Add, T({I(1)}), T({}))), "(1,)");
    EXPECT_EQ(err([] { binop(BinaryOp::Add, L({}), T({})); }),
              "TypeError: can only concatenate list (not \"tuple\") to list");
    EXPECT_EQ(repr(binop(BinaryOp::Add, make_bytes("a"), make_bytes("b"))), "b'ab'");
}

TEST(Arith, DictAndSetOperators) {
    EXPECT_EQ(repr(binop(BinaryOp::BitOr, D({{S("a"), I(1)}, {S("b"), I(2)}}),
                         D({{S("b"), I(3)}, {S("c"), I(4)}}))),
              "{'a': 1, 'b': 3, 'c': 4}");
    Value a = Set({I(1), I(2), I(3)}), b = Set({I(2), I(3), I(4)});
    EXPECT_EQ(repr(binop(BinaryOp::BitOr, a, b)), "{1, 2, 3, 4}");
    EXPECT_EQ(repr(binop(BinaryOp::BitAnd, a, b)), "{2, 3}");
    EXPECT_EQ(repr(binop(BinaryOp::Sub, a, b)), "{1}");
    EXPECT_EQ(repr(binop(BinaryOp::BitXor, a, b)), "{1, 4}");
    EXPECT_EQ(err([] { binop(BinaryOp::BitOr, make_dict(), L({})); }),
              "TypeError: unsupported operand type(s) for |: 'dict' and 'list'");
    EXPECT_EQ(err([] { binop(BinaryOp::Add, Set({}), Set({})); }),
              "TypeError: unsupported operand type(s) for +: 'set' and 'set'");
}

TEST(Arith, Unary) {
    EXPECT_EQ(repr(unary_op(UnaryOp::Neg, I(5))), "-5");
    EXPECT_EQ(repr(unary_op(UnaryOp::Neg, F(0.0))), "-0.0");
    EXPECT_EQ(repr(unary_op(UnaryOp::Neg, B(true))), "-1");
    EXPECT_EQ(repr(unary_op(UnaryOp::Pos, B(true))), "1");
    EXPECT_EQ(repr(unary_op(UnaryOp::Invert, I(5))), "-6");
    EXPECT_EQ(repr(unary_op(UnaryOp::Invert, B(false))), "-1");
    EXPECT_EQ(repr(unary_op(UnaryOp::Not, L({}))), "True");
    EXPECT_EQ(repr(unary_op(UnaryOp::Not, S("x"))), "False");
    EXPECT_EQ(err([] { unary_op(UnaryOp::Neg, S("a")); }),
              "TypeError: bad operand type for unary -: 'str'");
    EXPECT_EQ(err([] { unary_op(UnaryOp::Invert, F(1)); }),
              "TypeError: bad operand type for unary ~: 'float'");
    EXPECT_EQ(err([] { unary_op(UnaryOp::Pos, L({})); }),
              "TypeError: bad operand type for unary +: 'list'");
}

TEST(Arith, FloatPowEdges) {
    EXPECT_EQ(err([] { binop(BinaryOp::Pow, F(10), F(400)); }),
              "OverflowError: (34, 'Numerical result out of range')");
    EXPECT_EQ(err([] { binop(BinaryOp::Pow, F(0), F(-1)); }),
              "ZeroDivisionError: 0.0 cannot be raised to a negative power");
    EXPECT_EQ(repr(binop(BinaryOp::Pow, F(2), I(10))), "1024.0");
    EXPECT_EQ(repr(binop(BinaryOp::Pow, I(0), I(0))), "1");
}

}  // namespace
}  // namespace weft::test
