// F-string parsing: parts, conversions, format specs with nested fields, escapes, nested
// quotes, positions of the embedded expressions, and f-string errors.
#include <gtest/gtest.h>

#include <string>

#include "compiler/ast_dump.h"
#include "compiler/parser.h"

namespace weft {
namespace {

std::string fexpr(const std::string& src) {
    try {
        std::string d = dump_module(*parse_module(src + "\n", "t.weft"));
        if (d.rfind("(expr ", 0) == 0) return d.substr(6, d.size() - 7);
        return d;
    } catch (const CompileError& e) {
        return "ERROR " + std::to_string(e.diag.pos.line) + ":" + std::to_string(e.diag.pos.col) +
               ": " + e.diag.message;
    }
}

TEST(FString, PlainText) {
    EXPECT_EQ(fexpr("f'abc'"), "(fstr \"abc\")");
}
TEST(FString, Empty) {
    EXPECT_EQ(fexpr("f''"), "(fstr)");
}
TEST(FString, Fields) {
    EXPECT_EQ(fexpr("f\"{x} {y}\""), "(fstr (fmt x) \" \" (fmt y))");
}
TEST(FString, Conversion) {
    EXPECT_EQ(fexpr("f'{y!r} {z!s} {w!a}'"), "(fstr (fmt y !r) \" \" (fmt z !s) \" \" (fmt w !a))");
}
TEST(FString, FormatSpec) {
    EXPECT_EQ(fexpr("f'{z:.2f}'"), "(fstr (fmt z \".2f\"))");
}
TEST(FString, ConversionAndSpec) {
    EXPECT_EQ(fexpr("f'{z!r:>10}'"), "(fstr (fmt z !r \">10\"))");
}
TEST(FString, NestedFieldInSpec) {
    EXPECT_EQ(fexpr("f'{x:{width}}'"), "(fstr (fmt x (fstr (fmt width))))");
    EXPECT_EQ(fexpr("f'{x:{w}.{p}f}'"), "(fstr (fmt x (fstr (fmt w) \".\" (fmt p) \"f\")))");
}
TEST(FString, DoubledBraces) {
    EXPECT_EQ(fexpr("f'{{literal}} {x}'"), "(fstr \"{literal} \" (fmt x))");
}
TEST(FString, Escapes) {
    EXPECT_EQ(fexpr("f'a\\tb{x}\\n'"), "(fstr \"a\\tb\" (fmt x) \"\\n\")");
}
TEST(FString, RawFString) {
    EXPECT_EQ(fexpr("rf'\\d{x}'"), "(fstr \"\\\\d\" (fmt x))");
}
TEST(FString, NestedQuotesOfOtherKind) {
    EXPECT_EQ(fexpr("f\"{d['k']} {'a' if c else 'b'}\""),
              "(fstr (fmt ([] d \"k\")) \" \" (fmt (ifexp c \"a\" \"b\")))");
}
TEST(FString, ExpressionsWithBrackets) {
    EXPECT_EQ(
        fexpr("f'{[1, 2][0]} {f(a, b)} { {1: 2}[1]}'"),
        "(fstr (fmt ([] (list 1 2) 0)) \" \" (fmt (call f a b)) \" \" (fmt ([] (dict (1 2)) 1)))");
}
TEST(FString, NotEqualIsNotAConversion) {
    EXPECT_EQ(fexpr("f'{a != b}'"), "(fstr (fmt (cmp a != b)))");
}
TEST(FString, ColonInsideBracketsIsNotASpec) {
    EXPECT_EQ(fexpr("f'{xs[1:2]}'"), "(fstr (fmt ([] xs (slice 1 2 nil))))");
}
TEST(FString, LambdaInParens) {
    EXPECT_EQ(fexpr("f'{(lambda: 1)()}'"), "(fstr (fmt (call (lambda (params) 1))))");
}
TEST(FString, TupleField) {
    EXPECT_EQ(fexpr("f'{a, b}'"), "(fstr (fmt (tuple a b)))");
}
TEST(FString, NestedFString) {
    EXPECT_EQ(fexpr("f\"{f'{x}!'}\""), "(fstr (fmt (fstr (fmt x) \"!\")))");
}
TEST(FString, ConcatenationWithPlainStrings) {
    EXPECT_EQ(fexpr("'a' f'{x}' 'b' f'c'"), "(fstr \"a\" (fmt x) \"bc\")");
}
TEST(FString, TripleQuotedMultiline) {
    EXPECT_EQ(fexpr("f'''line {x}\nnext {y +\n  1}'''"),
              "(fstr \"line \" (fmt x) \"\\nnext \" (fmt (+ y 1)))");
}
TEST(FString, ExprTextIsKept) {
    auto m = parse_module("f'{ a + b !r}'\n", "t");
    auto* f = m->body[0]->as<ast::ExprStmt>()->value->as<ast::FStringExpr>();
    ASSERT_EQ(f->parts.size(), 1u);
    EXPECT_EQ(f->parts[0].expr_text, " a + b ");
    EXPECT_EQ(f->parts[0].conversion, 'r');
}
TEST(FString, PositionsOfFieldExpressions) {
    auto m = parse_module("x = 1\ns = f'ab {foo} {bar.baz}'\n", "t");
    auto* f = m->body[1]->as<ast::AssignStmt>()->value->as<ast::FStringExpr>();
    EXPECT_EQ(f->pos.line, 2u);
    EXPECT_EQ(f->pos.col, 5u);
    EXPECT_EQ(f->parts[1].expr->pos.line, 2u);
    EXPECT_EQ(f->parts[1].expr->pos.col, 11u);
    EXPECT_EQ(f->parts[3].expr->pos.col, 17u);
}
TEST(FString, PositionsAcrossLinesInTripleQuoted) {
    auto m = parse_module("s = f'''\n  {x}'''\n", "t");
    auto* f = m->body[0]->as<ast::AssignStmt>()->value->as<ast::FStringExpr>();
    EXPECT_EQ(f->parts[1].expr->pos.line, 2u);
    EXPECT_EQ(f->parts[1].expr->pos.col, 4u);
}
TEST(FString, ErrorInsideFieldHasFilePosition) {
    EXPECT_EQ(fexpr("x = 1\ny = f'ab {1 +}'"), "ERROR 2:14: invalid syntax");
}
TEST(FString, SingleClosingBrace) {
    EXPECT_EQ(fexpr("f'a } b'"), "ERROR 1:5: f-string: single '}' is not allowed");
}
TEST(FString, EmptyExpression) {
    EXPECT_EQ(fexpr("f'a {} b'"), "ERROR 1:5: f-string: empty expression not allowed");
}
TEST(FString, UnclosedField) {
    EXPECT_EQ(fexpr("f'a {x'"), "ERROR 1:5: f-string: expecting '}'");
}
TEST(FString, BadConversion) {
    EXPECT_EQ(fexpr("f'{x!z}'"),
              "ERROR 1:5: f-string: invalid conversion character: expected 's', 'r', or 'a'");
}
TEST(FString, SelfDocumenting) {
    EXPECT_EQ(fexpr("f'{x=}'"), "(fstr \"x=\" (fmt x !r))");
    EXPECT_EQ(fexpr("f'a {x + 1 = }'"), "(fstr \"a x + 1 = \" (fmt (+ x 1) !r))");
    EXPECT_EQ(fexpr("f'{x=!s}'"), "(fstr \"x=\" (fmt x !s))");
    EXPECT_EQ(fexpr("f'{x=:>5}'"), "(fstr \"x=\" (fmt x \">5\"))");
    EXPECT_EQ(fexpr("f'{a==b}'"), "(fstr (fmt (cmp a == b)))");
}
TEST(FString, AssignmentInFieldIsAnError) {
    EXPECT_EQ(fexpr("f'{x = 1}'"),
              "ERROR 1:6: f-string: expecting '}' (assignment is not an expression)");
}

}  // namespace
}  // namespace weft
