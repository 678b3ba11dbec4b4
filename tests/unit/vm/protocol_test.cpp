// protocol_test.cpp — truthiness, hashing, equality, ordering, type names.
#include <climits>
#include <cmath>

#include "test_support.h"

namespace weft::test {
namespace {
using ast::CmpOp;

bool cmp(CmpOp op, const Value& a, const Value& b) {
    return compare(op, a, b).as_bool();
}

TEST(Truthy, Scalars) {
    EXPECT_FALSE(truthy(N()));
    EXPECT_FALSE(truthy(B(false)));
    EXPECT_TRUE(truthy(B(true)));
    EXPECT_FALSE(truthy(I(0)));
    EXPECT_TRUE(truthy(I(-1)));
    EXPECT_FALSE(truthy(F(0.0)));
    EXPECT_FALSE(truthy(F(-0.0)));
    EXPECT_TRUE(truthy(F(NAN)));
}

TEST(Truthy, Containers) {
    EXPECT_FALSE(truthy(S("")));
    EXPECT_TRUE(truthy(S("a")));
    EXPECT_FALSE(truthy(L({})));
    EXPECT_TRUE(truthy(L({N()})));
    EXPECT_FALSE(truthy(T({})));
    EXPECT_FALSE(truthy(make_dict()));
    EXPECT_TRUE(truthy(D({{I(1), I(2)}})));
    EXPECT_FALSE(truthy(make_set()));
    EXPECT_FALSE(truthy(make_range(0, 0, 1)));
    EXPECT_TRUE(truthy(make_range(0, 1, 1)));
    EXPECT_FALSE(truthy(make_bytes("")));
}

TEST(Hash, NumbersAgree) {
    EXPECT_EQ(value_hash(I(1)), value_hash(F(1.0)));
    EXPECT_EQ(value_hash(I(1)), value_hash(B(true)));
    EXPECT_EQ(value_hash(I(0)), value_hash(B(false)));
    EXPECT_EQ(value_hash(I(0)), value_hash(F(-0.0)));
    EXPECT_EQ(value_hash(I(-5)), value_hash(F(-5.0)));
    EXPECT_NE(value_hash(F(0.5)), value_hash(I(0)));
}

TEST(Hash, StringsCachedAndStable) {
    Value a = S("hello"), b = S("hello");
    EXPECT_EQ(a.as<StrObj>()->hash, 0u);
    uint64_t h = value_hash(a);
    EXPECT_NE(h, 0u);
    EXPECT_EQ(a.as<StrObj>()->hash, h);
    EXPECT_EQ(value_hash(b), h);
    EXPECT_NE(value_hash(S("hellp")), h);
    EXPECT_EQ(value_hash(S("")), value_hash(S("")));
}

TEST(Hash, TuplesDeep) {
    EXPECT_EQ(value_hash(T({I(1), S("a")})), value_hash(T({F(1.0), S("a")})));
    EXPECT_NE(value_hash(T({I(1), I(2)})), value_hash(T({I(2), I(1)})));
}

TEST(Hash, Unhashable) {
    EXPECT_EQ(err([] { value_hash(L({})); }), "TypeError: unhashable type: 'list'");
    EXPECT_EQ(err([] { value_hash(make_dict()); }), "TypeError: unhashable type: 'dict'");
    EXPECT_EQ(err([] { value_hash(make_set()); }), "TypeError: unhashable type: 'set'");
    EXPECT_EQ(err([] { value_hash(T({L({})})); }), "TypeError: unhashable type: 'list'");
}

TEST(Equal, Numbers) {
    EXPECT_TRUE(values_equal(I(1), F(1.0)));
    EXPECT_TRUE(values_equal(B(true), I(1)));
    EXPECT_FALSE(values_equal(F(0.1 + 0.2), F(0.3)));
    EXPECT_FALSE(values_equal(F(NAN), F(NAN)));
    // 2**53 + 1 is not equal to float(2**53): comparison is exact.
    EXPECT_FALSE(values_equal(I((1LL << 53) + 1), F(9007199254740992.0)));
    EXPECT_TRUE(values_equal(I(1LL << 53), F(9007199254740992.0)));
    EXPECT_FALSE(values_equal(I(INT64_MAX), F(9223372036854775808.0)));
    EXPECT_FALSE(values_equal(I(1), S("1")));
    EXPECT_TRUE(values_equal(N(), N()));
    EXPECT_FALSE(values_equal(N(), B(false)));
}

TEST(Equal, Containers) {
    EXPECT_TRUE(values_equal(L({I(1), L({S("a")})}), L({F(1.0), L({S("a")})})));
    EXPECT_FALSE(values_equal(L({I(1)}), T({I(1)})));
    EXPECT_TRUE(
        values_equal(D({{S("a"), I(1)}, {S("b"), I(2)}}), D({{S("b"), I(2)}, {S("a"), F(1.0)}})));
    EXPECT_FALSE(values_equal(D({{S("a"), I(1)}}), D({{S("a"), I(2)}})));
    EXPECT_TRUE(values_equal(Set({I(1), I(2)}), Set({I(2), I(1)})));
    EXPECT_TRUE(values_equal(make_range(0, 0, 1), make_range(5, 2, 3)));
    EXPECT_TRUE(values_equal(make_range(0, 3, 2), make_range(0, 4, 2)));
    EXPECT_TRUE(values_equal(make_bytes("ab"), make_bytes("ab")));
    EXPECT_FALSE(values_equal(make_bytes("ab"), S("ab")));
}

TEST(Equal, Structs) {
    auto* t = new StructTypeObj();
    t->name = "P";
    t->fields.push_back(FieldInfo{"x", Value(), Value(), false});
    auto* t2 = new StructTypeObj();
    t2->name = "P";
    t2->fields.push_back(FieldInfo{"x", Value(), Value(), false});
    Value a = Value::adopt(new StructObj(t)), b = Value::adopt(new StructObj(t)),
          c = Value::adopt(new StructObj(t2));
    obj_decref(t);
    obj_decref(t2);
    a.as<StructObj>()->fields[0] = I(1);
    b.as<StructObj>()->fields[0] = F(1.0);
    c.as<StructObj>()->fields[0] = I(1);
    EXPECT_TRUE(values_equal(a, b));
    EXPECT_FALSE(values_equal(a, c));  // same shape, different type
    EXPECT_EQ(value_hash(a), value_hash(b));
}

TEST(Compare, NumbersMixed) {
    EXPECT_TRUE(cmp(CmpOp::Lt, I(1), F(1.5)));
    EXPECT_TRUE(cmp(CmpOp::Ge, F(2.0), I(2)));
    EXPECT_TRUE(cmp(CmpOp::Lt, B(false), I(1)));
    EXPECT_FALSE(cmp(CmpOp::Lt, F(NAN), I(1)));
    EXPECT_FALSE(cmp(CmpOp::Ge, F(NAN), I(1)));
    EXPECT_TRUE(cmp(CmpOp::Lt, I(INT64_MAX), F(9223372036854775808.0)));
    EXPECT_TRUE(cmp(CmpOp::Gt, I((1LL << 53) + 1), F(9007199254740992.0)));
    EXPECT_TRUE(cmp(CmpOp::Lt, I(-1), F(-0.5)));
}

TEST(Compare, StringsAndSequences) {
    EXPECT_TRUE(cmp(CmpOp::Lt, S("abc"), S("abd")));
    EXPECT_TRUE(cmp(CmpOp::Lt, S("ab"), S("abc")));
    EXPECT_TRUE(cmp(CmpOp::Lt, S("z"), S("é")));  // code point order
    EXPECT_TRUE(cmp(CmpOp::Lt, L({I(1), I(2)}), L({I(1), I(3)})));
    EXPECT_TRUE(cmp(CmpOp::Lt, L({I(1)}), L({I(1), I(0)})));
    EXPECT_TRUE(cmp(CmpOp::Ge, T({I(2)}), T({I(1), I(9)})));
    EXPECT_TRUE(cmp(CmpOp::Le, T({I(1), S("a")}), T({I(1), S("a")})));
    EXPECT_TRUE(cmp(CmpOp::Lt, make_bytes("a"), make_bytes("b")));
}

TEST(Compare, Sets) {
    EXPECT_TRUE(cmp(CmpOp::Lt, Set({I(1)}), Set({I(1), I(2)})));
    EXPECT_FALSE(cmp(CmpOp::Lt, Set({I(1)}), Set({I(1)})));
    EXPECT_TRUE(cmp(CmpOp::Le, Set({I(1)}), Set({I(1)})));
    EXPECT_TRUE(cmp(CmpOp::Gt, Set({I(1), I(2)}), Set({I(2)})));
    EXPECT_FALSE(cmp(CmpOp::Ge, Set({I(3)}), Set({I(2)})));
}

TEST(Compare, Errors) {
    EXPECT_EQ(err([] { compare(CmpOp::Lt, I(1), S("a")); }),
              "TypeError: '<' not supported between instances of 'int' and 'str'");
    EXPECT_EQ(err([] { compare(CmpOp::Ge, L({}), T({})); }),
              "TypeError: '>=' not supported between instances of 'list' and 'tuple'");
    EXPECT_EQ(err([] { compare(CmpOp::Gt, N(), N()); }),
              "TypeError: '>' not supported between instances of 'NoneType' and 'NoneType'");
    EXPECT_EQ(err([] { compare(CmpOp::Lt, L({I(1)}), L({S("a")})); }),
              "TypeError: '<' not supported between instances of 'int' and 'str'");
    EXPECT_EQ(err([] { compare(CmpOp::Lt, make_dict(), make_dict()); }),
              "TypeError: '<' not supported between instances of 'dict' and 'dict'");
}

TEST(Compare, EqualityNeverThrows) {
    EXPECT_FALSE(cmp(CmpOp::Eq, I(1), S("a")));
    EXPECT_TRUE(cmp(CmpOp::Ne, L({}), T({})));
}

TEST(Compare, MembershipAndIdentity) {
    EXPECT_TRUE(cmp(CmpOp::In, I(2), L({I(1), I(2)})));
    EXPECT_TRUE(cmp(CmpOp::NotIn, I(3), L({I(1), I(2)})));
    EXPECT_TRUE(cmp(CmpOp::In, S("ell"), S("hello")));
    EXPECT_TRUE(cmp(CmpOp::In, F(1.0), D({{I(1), N()}})));
    Value l = L({});
    Value l2 = l;
    EXPECT_TRUE(cmp(CmpOp::Is, l, l2));
    EXPECT_FALSE(cmp(CmpOp::Is, L({}), L({})));
    EXPECT_TRUE(cmp(CmpOp::Is, N(), N()));
    EXPECT_TRUE(cmp(CmpOp::IsNot, N(), B(false)));
    EXPECT_FALSE(cmp(CmpOp::Is, I(1), B(true)));
}

TEST(TypeName, All) {
    EXPECT_EQ(type_name(N()), "NoneType");
    EXPECT_EQ(type_name(B(true)), "bool");
    EXPECT_EQ(type_name(I(1)), "int");
    EXPECT_EQ(type_name(F(1)), "float");
    EXPECT_EQ(type_name(S("")), "str");
    EXPECT_EQ(type_name(make_bytes("")), "bytes");
    EXPECT_EQ(type_name(L({})), "list");
    EXPECT_EQ(type_name(T({})), "tuple");
    EXPECT_EQ(type_name(make_dict()), "dict");
    EXPECT_EQ(type_name(make_set()), "set");
    EXPECT_EQ(type_name(make_range(0, 1, 1)), "range");
    EXPECT_EQ(type_name(callb("map", {builtin("abs"), L({})})), "map");
    EXPECT_EQ(type_name(make_error(ErrorKind::KeyError, "x")), "KeyError");
}

}  // namespace
}  // namespace weft::test
