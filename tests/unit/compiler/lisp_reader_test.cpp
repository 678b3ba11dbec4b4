// lisp_reader_test.cpp — the Lisp surface's reader (compiler/lisp/reader.h) and lowering
// (compiler/lisp/lower.h): positions on every datum, read errors with their positions and the
// `incomplete` flag the REPL relies on, and the names the lowering gives.
#include <gtest/gtest.h>

#include "compiler/diagnostic.h"
#include "compiler/lisp/lower.h"
#include "compiler/lisp/reader.h"

namespace weft::lisp {
namespace {

std::vector<Datum> read(const std::string& s) { return read_all(s, "t.wlisp"); }

CompileError read_error(const std::string& s) {
    try {
        read(s);
    } catch (CompileError& e) {
        return e;
    }
    ADD_FAILURE() << "no error reading: " << s;
    return CompileError(Diagnostic{});
}

TEST(LispReader, EveryDatumHasItsPosition) {
    auto forms = read("(define (f x)\n  [x \"s\" :k {1 2}])\n'q");
    ASSERT_EQ(forms.size(), 2u);
    const Datum& def = forms[0];
    EXPECT_EQ(def.kind, DatumKind::List);
    EXPECT_EQ(def.pos.line, 1u);
    EXPECT_EQ(def.pos.col, 1u);
    EXPECT_EQ(def.end.line, 2u);
    EXPECT_EQ(def.end.col, 20u);  // just past the closing ')'
    const Datum& head = def.items[1];
    EXPECT_EQ(head.pos.col, 9u);
    EXPECT_EQ(head.items[1].s, "x");
    EXPECT_EQ(head.items[1].pos.col, 12u);
    const Datum& vec = def.items[2];
    EXPECT_EQ(vec.kind, DatumKind::Vector);
    EXPECT_EQ(vec.pos.line, 2u);
    EXPECT_EQ(vec.pos.col, 3u);
    EXPECT_EQ(vec.items[1].kind, DatumKind::Str);
    EXPECT_EQ(vec.items[1].pos.col, 6u);
    EXPECT_EQ(vec.items[2].kind, DatumKind::Keyword);
    EXPECT_EQ(vec.items[2].s, "k");
    EXPECT_EQ(vec.items[3].kind, DatumKind::Map);
    EXPECT_EQ(vec.items[3].items[1].pos.col, 16u);
    // 'q is (quote q); the generated symbol carries the quote's position.
    const Datum& q = forms[1];
    ASSERT_EQ(q.items.size(), 2u);
    EXPECT_TRUE(q.items[0].is_symbol("quote"));
    EXPECT_EQ(q.items[0].pos.line, 3u);
    EXPECT_EQ(q.items[1].pos.col, 2u);
}

TEST(LispReader, ColumnsCountCodePoints) {
    auto forms = read("(println \"héllo\" x)");
    EXPECT_EQ(forms[0].items[2].pos.col, 18u);
}

TEST(LispReader, Atoms) {
    auto all = read("42 -7 0xff -0x10 3.5 1e3 nil #t false :kw sym a/b .m .-f - ->");
    EXPECT_EQ(all[0].i, 42);
    EXPECT_EQ(all[1].i, -7);
    EXPECT_EQ(all[2].i, 255);
    EXPECT_EQ(all[3].i, -16);
    EXPECT_DOUBLE_EQ(all[4].f, 3.5);
    EXPECT_DOUBLE_EQ(all[5].f, 1000.0);
    EXPECT_EQ(all[6].kind, DatumKind::Nil);
    EXPECT_TRUE(all[7].b);
    EXPECT_EQ(all[8].kind, DatumKind::Bool);
    EXPECT_FALSE(all[8].b);
    EXPECT_EQ(all[9].kind, DatumKind::Keyword);
    for (int i = 10; i < 16; ++i) EXPECT_EQ(all[size_t(i)].kind, DatumKind::Symbol) << i;
}

TEST(LispReader, StringsEscapesAndCommas) {
    auto all = read("\"a\\n\\t\\\"\\\\\\u00e9\\u{1F600}\",, \"two\nlines\"");
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].s, "a\n\t\"\\\xc3\xa9\xf0\x9f\x98\x80");
    EXPECT_EQ(all[1].s, "two\nlines");
}

TEST(LispReader, ErrorsHaveTheirPositions) {
    auto e = read_error("(println 1)\n(define (f x)\n  (let ((y x)\n");
    EXPECT_EQ(e.diag.message, "'(' was never closed");
    EXPECT_EQ(e.diag.pos.line, 2u);  // where the top-level form opens
    EXPECT_EQ(e.diag.pos.col, 1u);
    EXPECT_TRUE(e.incomplete);

    e = read_error("(x \"abc");
    EXPECT_EQ(e.diag.message, "string was never closed");
    EXPECT_EQ(e.diag.pos.col, 4u);
    EXPECT_TRUE(e.incomplete);

    e = read_error("(+ 1 12abc)");
    EXPECT_EQ(e.diag.message, "invalid number '12abc'");
    EXPECT_EQ(e.diag.pos.col, 6u);
    EXPECT_FALSE(e.incomplete);

    e = read_error("\"a\\qb\"");
    EXPECT_EQ(e.diag.pos.col, 3u);
    EXPECT_NE(e.diag.message.find("invalid escape '\\q'"), std::string::npos);

    e = read_error("{:a 1 :b}");
    EXPECT_NE(e.diag.message.find("even number"), std::string::npos);
    EXPECT_EQ(e.diag.pos.col, 1u);

    e = read_error("(a))");
    EXPECT_EQ(e.diag.message, "unexpected ')'");
    EXPECT_EQ(e.diag.pos.col, 4u);
    EXPECT_FALSE(e.incomplete);

    e = read_error("[1 2)");
    EXPECT_NE(e.diag.message.find("does not match"), std::string::npos);

    e = read_error("#x");
    EXPECT_NE(e.diag.message.find("invalid token '#x'"), std::string::npos);

    e = read_error("(:)");
    EXPECT_NE(e.diag.message.find("a keyword needs a name"), std::string::npos);
}

TEST(LispReader, NestingIsBounded) {
    std::string deep(300, '[');
    auto e = read_error(deep + std::string(300, ']'));
    EXPECT_EQ(e.diag.message, "too deeply nested");
}

TEST(LispReader, ShebangLineIsIgnored) {
    auto all = read("#!/usr/bin/env weft\n(x)");
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].pos.line, 2u);
}

TEST(LispLower, NamesAndErrors) {
    EXPECT_EQ(mangle("fetch-url"), "fetch_url");
    EXPECT_EQ(primitive_name("l_parallel_map"), "parallel-map");
    EXPECT_EQ(primitive_name("fetch"), "");
    EXPECT_TRUE(is_lisp_path("a/b.wlisp"));
    EXPECT_FALSE(is_lisp_path("a/b.weft"));
    try {
        parse_lisp_module("(define (fetch-url u) u)\n(fetch-urll 1)", "t.wlisp", LowerOptions{});
        ADD_FAILURE() << "no error";
    } catch (CompileError& e) {
        EXPECT_EQ(e.diag.message, "unbound symbol 'fetch-urll' (did you mean 'fetch-url'?)");
        EXPECT_EQ(e.diag.pos.line, 2u);
        EXPECT_EQ(e.diag.pos.col, 2u);
    }
    auto m = parse_lisp_module("(define (f a) (if (< a 1) a (f (- a 1))))", "t.wlisp", LowerOptions{});
    ASSERT_FALSE(m->body.empty());
    EXPECT_EQ(m->body.back()->kind, ast::StmtKind::FunctionDef);  // the self tail call loops inside it
    auto* def = m->body.back()->as<ast::FunctionDefStmt>();
    ASSERT_EQ(def->body.size(), 1u);
    EXPECT_EQ(def->body[0]->kind, ast::StmtKind::While);
}

}  // namespace
}  // namespace weft::lisp
