// format_test.cpp — repr/str, float repr, format specs, str % args, str.format.
#include <bit>
#include <climits>
#include <cmath>

#include "test_support.h"

namespace weft::test {
namespace {

struct FloatCase {
    double d;
    const char* expect;
};
const FloatCase kFloatCases[] = {
#include "float_table.inc"
};

TEST(FloatRepr, MatchesPythonTable) {
    for (auto& c : kFloatCases)
        EXPECT_EQ(float_repr(c.d), c.expect) << c.expect;
}

TEST(FloatRepr, Specials) {
    EXPECT_EQ(float_repr(INFINITY), "inf");
    EXPECT_EQ(float_repr(-INFINITY), "-inf");
    EXPECT_EQ(float_repr(NAN), "nan");
    EXPECT_EQ(float_repr(-0.0), "-0.0");
    EXPECT_EQ(repr(F(1e16)), "1e+16");
    EXPECT_EQ(repr(F(1e-5)), "1e-05");
    EXPECT_EQ(repr(F(0.1 + 0.2)), "0.30000000000000004");
}

struct SpecCase {
    Value v;
    const char* spec;
    const char* expect;
};

TEST(FormatSpec, MatchesPythonTable) {
    const SpecCase cases[] = {
#include "format_table.inc"
    };
    for (auto& c : cases) {
        std::string got;
        std::string e = err([&] { got = format_spec(c.v, c.spec); });
        EXPECT_EQ(e, "") << repr(c.v) << " spec '" << c.spec << "'";
        EXPECT_EQ(got, c.expect) << repr(c.v) << " spec '" << c.spec << "'";
    }
}

TEST(FormatSpec, Errors) {
    EXPECT_EQ(err([] { format_spec(I(1), ".2d"); }),
              "ValueError: Precision not allowed in integer format specifier");
    EXPECT_EQ(err([] { format_spec(I(1), "q"); }),
              "ValueError: Unknown format code 'q' for object of type 'int'");
    EXPECT_EQ(err([] { format_spec(F(1), "d"); }),
              "ValueError: Unknown format code 'd' for object of type 'float'");
    EXPECT_EQ(err([] { format_spec(S("a"), "d"); }),
              "ValueError: Unknown format code 'd' for object of type 'str'");
    EXPECT_EQ(err([] { format_spec(S("a"), "+"); }),
              "ValueError: Sign not allowed in string format specifier");
    EXPECT_EQ(err([] { format_spec(S("a"), "=5"); }),
              "ValueError: '=' alignment not allowed in string format specifier");
    EXPECT_EQ(err([] { format_spec(I(1), ",_"); }), "ValueError: Cannot specify both ',' and '_'.");
    EXPECT_EQ(err([] { format_spec(L({}), "5"); }),
              "TypeError: unsupported format string passed to list.__format__");
    EXPECT_EQ(format_spec(L({I(1)}), ""), "[1]");
    EXPECT_EQ(format_spec(N(), ""), "None");
}

TEST(Repr, Scalars) {
    EXPECT_EQ(repr(N()), "None");
    EXPECT_EQ(repr(B(true)), "True");
    EXPECT_EQ(repr(B(false)), "False");
    EXPECT_EQ(repr(I(-42)), "-42");
    EXPECT_EQ(repr(I(INT64_MIN)), "-9223372036854775808");
    EXPECT_EQ(repr(F(2.0)), "2.0");
}

TEST(Repr, StringsQuoteChoiceAndEscapes) {
    EXPECT_EQ(repr(S("abc")), "'abc'");
    EXPECT_EQ(repr(S("it's")), "\"it's\"");
    EXPECT_EQ(repr(S("say \"hi\"")), "'say \"hi\"'");
    EXPECT_EQ(repr(S("both ' and \"")), "'both \\' and \"'");
    EXPECT_EQ(repr(S("tab\there")), "'tab\\there'");
    EXPECT_EQ(repr(S("nl\n")), "'nl\\n'");
    EXPECT_EQ(repr(S(std::string("\x00\x7f\x1b", 3))), "'\\x00\\x7f\\x1b'");
    EXPECT_EQ(repr(S("é ü 中文")), "'é ü 中文'");
    EXPECT_EQ(repr(S("\u00a0\u00ad")), "'\\xa0\\xad'");
    EXPECT_EQ(repr(S("\u2028")), "'\\u2028'");
    EXPECT_EQ(repr(S("back\\slash")), "'back\\\\slash'");
    EXPECT_EQ(repr(S("\r")), "'\\r'");
}

TEST(Repr, Bytes) {
    EXPECT_EQ(repr(make_bytes(std::string("ab\x00\xff'\"", 6))), "b'ab\\x00\\xff\\'\"'");
    EXPECT_EQ(repr(make_bytes("it's")), "b\"it's\"");
    EXPECT_EQ(repr(make_bytes("")), "b''");
}

TEST(Repr, Containers) {
    EXPECT_EQ(repr(L({I(1), S("a")})), "[1, 'a']");
    EXPECT_EQ(repr(L({})), "[]");
    EXPECT_EQ(repr(T({I(1)})), "(1,)");
    EXPECT_EQ(repr(T({})), "()");
    EXPECT_EQ(repr(T({I(1), I(2)})), "(1, 2)");
    EXPECT_EQ(repr(D({{S("k"), F(1.5)}})), "{'k': 1.5}");
    EXPECT_EQ(repr(make_dict()), "{}");
    EXPECT_EQ(repr(make_set()), "set()");
    EXPECT_EQ(repr(Set({I(1), I(2)})), "{1, 2}");
    EXPECT_EQ(repr(L({L({I(1)}), D({{I(1), N()}})})), "[[1], {1: None}]");
    EXPECT_EQ(repr(make_range(0, 5, 1)), "range(0, 5)");
    EXPECT_EQ(repr(make_range(0, 10, 2)), "range(0, 10, 2)");
    EXPECT_EQ(repr(make_slice(I(1), N(), N())), "slice(1, None, None)");
}

TEST(Repr, TypesIteratorsNatives) {
    EXPECT_EQ(repr(builtin_type_value(BuiltinType::Int)), "<class 'int'>");
    EXPECT_EQ(repr(callb("map", {builtin("abs"), L({})})), "<map object>");
    EXPECT_EQ(repr(callb("zip", {L({})})), "<zip object>");
    EXPECT_EQ(repr(iter_begin(L({}))), "<list_iterator object>");
    EXPECT_EQ(repr(builtin("len")), "<built-in function len>");
}

Value make_user(std::string name, int64_t age) {
    auto* t = new StructTypeObj();
    t->name = "User";
    t->fields.push_back(FieldInfo{"name", Value(), Value(), false});
    t->fields.push_back(FieldInfo{"age", Value(), Value(), false});
    auto* s = new StructObj(t);
    obj_decref(t);
    s->fields[0] = S(name);
    s->fields[1] = I(age);
    return Value::adopt(s);
}

TEST(Repr, StructsAndErrors) {
    EXPECT_EQ(repr(make_user("Ada", 36)), "User(name='Ada', age=36)");
    EXPECT_EQ(to_str(make_user("Ada", 36)), "User(name='Ada', age=36)");
    Value e = make_error(ErrorKind::ValueError, "bad");
    EXPECT_EQ(repr(e), "ValueError('bad')");
    EXPECT_EQ(to_str(e), "bad");
}

TEST(ToStr, StringsRawOthersRepr) {
    EXPECT_EQ(to_str(S("a'b")), "a'b");
    EXPECT_EQ(to_str(L({S("a")})), "['a']");
    EXPECT_EQ(to_str(F(1.0)), "1.0");
    EXPECT_EQ(to_str(N()), "None");
}

struct PctCase {
    const char* fmt;
    Value args;
    const char* expect;
};

TEST(PercentFormat, MatchesPython) {
    const PctCase cases[] = {
        {"%s", S("x"), "x"},
        {"%d", I(42), "42"},
        {"%5d|", I(42), "   42|"},
        {"%-5d|", I(42), "42   |"},
        {"%05d", I(-42), "-0042"},
        {"%+d", I(42), "+42"},
        {"%x", I(255), "ff"},
        {"%#x", I(255), "0xff"},
        {"%X", I(255), "FF"},
        {"%o", I(8), "10"},
        {"%#o", I(8), "0o10"},
        {"%f", F(3.14159), "3.141590"},
        {"%.2f", F(3.14159), "3.14"},
        {"%10.3f|", F(3.14159), "     3.142|"},
        {"%e", F(12345.678), "1.234568e+04"},
        {"%g", F(0.0001), "0.0001"},
        {"%r", S("a"), "'a'"},
        {"%s and %s", T({I(1), S("b")}), "1 and b"},
        {"%c", I(65), "A"},
        {"%c", S("z"), "z"},
        {"%%", T({}), "%"},
        {"%d%%", I(50), "50%"},
        {"%.3s", S("abcdef"), "abc"},
        {"%5s|", S("ab"), "   ab|"},
        {"%-5s|", S("ab"), "ab   |"},
        {"%d", F(3.99), "3"},
        {"%s", L({I(1), I(2)}), "[1, 2]"},
        {"%s", T({T({I(1), I(2)})}), "(1, 2)"},
        {"%(a)s-%(b)d", D({{S("a"), S("x")}, {S("b"), I(2)}}), "x-2"},
        {"%i", I(-7), "-7"},
        {"%.3d", I(5), "005"},
        {"% d", I(5), " 5"},
        {"%*d", T({I(5), I(42)}), "   42"},
        {"%.*f", T({I(2), F(3.14159)}), "3.14"},
    };
    for (auto& c : cases)
        EXPECT_EQ(sv_of(binop(ast::BinaryOp::Mod, S(c.fmt), c.args)), c.expect) << c.fmt;
}

TEST(PercentFormat, Errors) {
    EXPECT_EQ(err([] { percent_format("%d %d", T({I(1)})); }),
              "TypeError: not enough arguments for format string");
    EXPECT_EQ(err([] {
                  percent_format("%d", T({I(1), I(2)}));
              }),
              "TypeError: not all arguments converted during string formatting");
    EXPECT_EQ(err([] { percent_format("x", I(1)); }),
              "TypeError: not all arguments converted during string formatting");
    EXPECT_EQ(err([] { percent_format("%d", S("a")); }),
              "TypeError: %d format: a real number is required, not str");
    EXPECT_EQ(err([] { percent_format("%q", I(1)); }),
              "ValueError: unsupported format character 'q' (0x71) at index 1");
    EXPECT_EQ(err([] { percent_format("%", I(1)); }), "ValueError: incomplete format");
}

std::string fmt(const char* f, std::vector<Value> pos, std::vector<KwArg> kw = {}) {
    return str_format(f, CallArgs{pos, kw});
}

TEST(StrFormat, Fields) {
    EXPECT_EQ(fmt("{} {}", {I(1), S("a")}), "1 a");
    EXPECT_EQ(fmt("{1} {0} {1}", {I(1), I(2)}), "2 1 2");
    EXPECT_EQ(fmt("{name}!", {}, {KwArg{"name", S("Ada")}}), "Ada!");
    EXPECT_EQ(fmt("{:>5}|{:<4}|{:^5}", {I(1), S("a"), S("b")}), "    1|a   |  b  ");
    EXPECT_EQ(fmt("{:.2f}", {F(3.14159)}), "3.14");
    EXPECT_EQ(fmt("{!r}", {S("a")}), "'a'");
    EXPECT_EQ(fmt("{{}} {}", {I(7)}), "{} 7");
    EXPECT_EQ(fmt("{0[1]}", {L({I(5), I(6)})}), "6");
    EXPECT_EQ(fmt("{d[k]}", {}, {KwArg{"d", D({{S("k"), I(9)}})}}), "9");
    EXPECT_EQ(fmt("{:{}}", {I(3), I(4)}), "   3");
    EXPECT_EQ(fmt("{0.name}", {make_user("Ada", 3)}), "Ada");
}

TEST(StrFormat, Errors) {
    EXPECT_EQ(err([] { fmt("{}", {}); }),
              "IndexError: Replacement index 0 out of range for positional args tuple");
    EXPECT_EQ(err([] { fmt("{x}", {}); }), "KeyError: 'x'");
    EXPECT_EQ(err([] { fmt("}", {}); }), "ValueError: Single '}' encountered in format string");
    EXPECT_EQ(err([] { fmt("{", {}); }), "ValueError: Single '{' encountered in format string");
    EXPECT_EQ(
        err([] { fmt("{}{0}", {I(1)}); }),
        "ValueError: cannot switch from automatic field numbering to manual field specification");
}

}  // namespace
}  // namespace weft::test
