// builtins_test.cpp — core builtins and built-in types as values, against a
// table generated with CPython 3.11, plus print/input/isinstance/type.
#include <bit>
#include <climits>
#include <set>

#include "test_support.h"

namespace weft::test {
namespace {

struct BuiltinCase {
    const char* name;
    std::vector<Value> args;
    std::vector<KwArg> kw;
    const char* expect;
    const char* error;
};

const char* kLazy[] = {"map", "filter", "zip", "enumerate", "reversed"};

TEST(Builtins, MatchesPythonTable) {
    const BuiltinCase cases[] = {
#include "builtin_table.inc"
    };
    for (auto& c : cases) {
        SCOPED_TRACE(std::string(c.name) + repr(T(c.args)));
        TestContext cx;
        Value got;
        std::string e = err([&] {
            got = callb(cx, c.name, c.args, c.kw);
            for (const char* l : kLazy)
                if (std::string_view(c.name) == l) got = make_list(collect(cx, got));
        });
        EXPECT_EQ(e, c.error);
        if (!*c.error) {
            EXPECT_EQ(repr(got), c.expect);
        }
    }
}

TEST(Builtins, Print) {
    TestContext cx;
    callb(cx, "print", {I(1), S("a"), L({S("b")}), F(1.0), N()});
    EXPECT_EQ(cx.out, "1 a ['b'] 1.0 None\n");
    cx.out.clear();
    callb(cx, "print", {I(1), I(2)}, {KwArg{"sep", S(", ")}, KwArg{"end", S("!")}});
    EXPECT_EQ(cx.out, "1, 2!");
    cx.out.clear();
    callb(cx, "print", {});
    EXPECT_EQ(cx.out, "\n");
    cx.out.clear();
    callb(cx, "print", {S("x")}, {KwArg{"sep", N()}, KwArg{"end", N()}});
    EXPECT_EQ(cx.out, "x\n");
    cx.out.clear();
    callb(cx, "print", {make_error(ErrorKind::ValueError, "boom")});
    EXPECT_EQ(cx.out, "boom\n");
    EXPECT_EQ(err([] {
                  callb("print", {}, {KwArg{"sep", I(1)}});
              }),
              "TypeError: sep must be None or a string, not int");
    EXPECT_EQ(err([] {
                  callb("print", {}, {KwArg{"bad", I(1)}});
              }),
              "TypeError: print() got an unexpected keyword argument 'bad'");
}

TEST(Builtins, Input) {
    TestContext cx;
    cx.input.push_back("hello");
    Value v = callb(cx, "input", {S("> ")});
    EXPECT_EQ(cx.out, "> ");
    EXPECT_EQ(sv_of(v), "hello");
    EXPECT_EQ(err([&] { callb(cx, "input", {}); }), "IOError: EOF when reading a line");
}

TEST(Builtins, TypesAreSingletonsAndCallable) {
    Value t = builtin("int");
    ASSERT_TRUE(t.is(ObjType::TypeObj));
    EXPECT_EQ(t.as_obj(), type_of(I(5)).as_obj());
    EXPECT_EQ(repr(callb("type", {S("x")})), "<class 'str'>");
    EXPECT_EQ(repr(callb("type", {N()})), "<class 'NoneType'>");
    EXPECT_EQ(repr(callb("type", {builtin("int")})), "<class 'type'>");
    EXPECT_EQ(callb("type", {B(true)}).as_obj(), builtin("bool").as_obj());
    for (const char* n :
         {"int", "str", "float", "bool", "list", "dict", "set", "tuple", "bytes", "range", "type"})
        EXPECT_TRUE(builtin(n).is(ObjType::TypeObj)) << n;
}

TEST(Builtins, IsInstance) {
    EXPECT_TRUE(callb("isinstance", {I(1), builtin("int")}).as_bool());
    EXPECT_TRUE(callb("isinstance", {B(true), builtin("int")}).as_bool());
    EXPECT_FALSE(callb("isinstance", {I(1), builtin("bool")}).as_bool());
    EXPECT_FALSE(callb("isinstance", {I(1), builtin("float")}).as_bool());
    EXPECT_TRUE(callb("isinstance", {S("a"), T({builtin("int"), builtin("str")})}).as_bool());
    EXPECT_TRUE(callb("isinstance", {make_range(0, 1, 1), builtin("range")}).as_bool());
    EXPECT_TRUE(callb("isinstance", {builtin("int"), builtin("type")}).as_bool());
    EXPECT_EQ(err([] {
                  callb("isinstance", {I(1), I(2)});
              }),
              "TypeError: isinstance() arg 2 must be a type, a tuple of types, or a union");

    auto* base = new StructTypeObj();
    base->name = "Base";
    auto* sub = new StructTypeObj();
    sub->name = "Sub";
    obj_incref(base);
    sub->base = base;
    Value vb = Value::adopt(base), vs = Value::adopt(sub);
    Value x = Value::adopt(new StructObj(sub));
    EXPECT_TRUE(is_instance(x, vb));
    EXPECT_TRUE(is_instance(x, vs));
    EXPECT_FALSE(is_instance(Value::adopt(new StructObj(base)), vs));
    EXPECT_TRUE(is_instance(x, T({builtin("int"), vb})));
    EXPECT_EQ(type_of(x).as_obj(), sub);
}

TEST(Builtins, DictFromStruct) {
    auto* t = new StructTypeObj();
    t->name = "User";
    t->fields.push_back(FieldInfo{"name", Value(), Value(), false});
    t->fields.push_back(FieldInfo{"age", Value(), Value(), false});
    Value u = Value::adopt(new StructObj(t));
    obj_decref(t);
    u.as<StructObj>()->fields[0] = S("Ada");
    u.as<StructObj>()->fields[1] = I(36);
    EXPECT_EQ(repr(callb("dict", {u})), "{'name': 'Ada', 'age': 36}");
}

TEST(Builtins, LazyIteratorsAreLazy) {
    TestContext cx;
    Value m = callb(cx, "map", {builtin("abs"), L({I(-1), S("x")})});
    EXPECT_EQ(repr(m), "<map object>");
    Value x;
    EXPECT_TRUE(iter_next(cx, m.as<IteratorObj>(), x));  // first item fine
    EXPECT_EQ(x.as_int(), 1);
    EXPECT_EQ(err([&] { iter_next(cx, m.as<IteratorObj>(), x); }),
              "TypeError: bad operand type for abs(): 'str'");
    Value e = callb(cx, "enumerate", {S("ab")});
    EXPECT_EQ(repr(e), "<enumerate object>");
    EXPECT_EQ(repr(callb(cx, "reversed", {L({})})), "<reversed object>");
    EXPECT_EQ(repr(callb(cx, "filter", {N(), L({})})), "<filter object>");
}

TEST(Builtins, SortedIsStableAndCopies) {
    Value xs = L({T({I(1), S("b")}), T({I(0), S("z")}), T({I(1), S("a")})});
    Value key =
        native("first", [](CallContext&, const CallArgs& a) { return get_item(a.pos[0], I(0)); });
    Value r = callb("sorted", {xs}, {KwArg{"key", key}});
    EXPECT_EQ(repr(r), "[(0, 'z'), (1, 'b'), (1, 'a')]");
    EXPECT_NE(r.as_obj(), xs.as_obj());
    EXPECT_EQ(repr(xs), "[(1, 'b'), (0, 'z'), (1, 'a')]");
    EXPECT_EQ(repr(callb("sorted", {xs}, {KwArg{"key", key}, KwArg{"reverse", B(true)}})),
              "[(1, 'b'), (1, 'a'), (0, 'z')]");
}

TEST(Builtins, MinMaxKeyTies) {
    Value key = native("len", [](CallContext&, const CallArgs& a) { return I(length(a.pos[0])); });
    EXPECT_EQ(repr(callb("max", {L({S("ab"), S("cd"), S("e")})}, {KwArg{"key", key}})), "'ab'");
    EXPECT_EQ(repr(callb("min", {L({S("ab"), S("c"), S("e")})}, {KwArg{"key", key}})), "'c'");
}

TEST(Builtins, CoreBuiltinNamesRegistered) {
    std::vector<std::pair<std::string, Value>> out;
    register_core_builtins(out);
    std::set<std::string> names;
    for (auto& [n, v] : out)
        names.insert(n);
    for (const char* n :
         {"print", "len",   "range",     "str",        "int",      "float",  "bool", "list",
          "dict",  "set",   "tuple",     "sorted",     "reversed", "sum",    "min",  "max",
          "abs",   "round", "enumerate", "zip",        "map",      "filter", "any",  "all",
          "repr",  "hash",  "input",     "ord",        "chr",      "divmod", "pow",  "hex",
          "bin",   "oct",   "format",    "isinstance", "type",     "bytes",  "now",  "monotonic"})
        EXPECT_TRUE(names.count(n)) << n;
    // Natives are immortal: whoever registers them frees them (the VM does at exit).
    for (auto& [n, v] : out)
        if (v.is(ObjType::Native)) delete v.release_obj();
}

TEST(Builtins, BytesConstructor) {
    EXPECT_EQ(repr(callb("bytes", {S("é"), S("utf-8")})), "b'\\xc3\\xa9'");
    EXPECT_EQ(repr(callb("bytes", {I(3)})), "b'\\x00\\x00\\x00'");
    EXPECT_EQ(repr(callb("bytes", {L({I(104), I(105)})})), "b'hi'");
    EXPECT_EQ(repr(callb("bytes", {})), "b''");
    EXPECT_EQ(err([] { callb("bytes", {S("x")}); }),
              "TypeError: string argument without an encoding");
    EXPECT_EQ(err([] { callb("bytes", {L({I(256)})}); }),
              "ValueError: bytes must be in range(0, 256)");
}

TEST(Builtins, HashMatchesValueHash) {
    EXPECT_EQ(callb("hash", {S("abc")}).as_int(), int64_t(value_hash(S("abc"))));
    EXPECT_EQ(callb("hash", {F(2.0)}).as_int(), callb("hash", {I(2)}).as_int());
}

TEST(Builtins, NowAndMonotonic) {
    EXPECT_GT(callb("now", {}).as_float(), 1.6e9);
    double a = callb("monotonic", {}).as_float();
    double b = callb("monotonic", {}).as_float();
    EXPECT_LE(a, b);
}

}  // namespace
}  // namespace weft::test
