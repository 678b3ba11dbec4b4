// Lexer unit tests: token streams for layout (indent/dedent/newline), every literal form,
// operators and keywords, and lexical errors with their positions.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <string>

#include "compiler/lexer.h"

namespace weft {
namespace {

// Timing bounds hold for optimized builds only (not Debug, not under sanitizers).
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__) && !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
constexpr bool kTimingChecked = true;
#else
constexpr bool kTimingChecked = false;
#endif

// Renders a token stream compactly: `x = 1` -> "x = 1 NL EOF".
std::string render(const std::vector<Token>& toks) {
    std::string out;
    for (const auto& t : toks) {
        if (!out.empty()) out += ' ';
        switch (t.kind) {
            case TokenKind::Name:
                out += t.text;
                break;
            case TokenKind::Int:
                out += "int:" + std::to_string(t.int_value);
                break;
            case TokenKind::Float: {
                char buf[64];
                std::snprintf(buf, sizeof buf, "float:%g", t.float_value);
                out += buf;
                break;
            }
            case TokenKind::Duration: {
                char buf[64];
                std::snprintf(buf, sizeof buf, "dur:%g", t.float_value);
                out += buf;
                break;
            }
            case TokenKind::String:
                out += "str:[" + t.text + "]";
                break;
            case TokenKind::Bytes:
                out += "bytes:[" + t.text + "]";
                break;
            case TokenKind::FString:
                out += std::string(t.raw ? "rf" : "f") + ":[" + t.text + "]";
                break;
            case TokenKind::Newline:
                out += "NL";
                break;
            case TokenKind::Indent:
                out += "INDENT";
                break;
            case TokenKind::Dedent:
                out += "DEDENT";
                break;
            case TokenKind::EndOfFile:
                out += "EOF";
                break;
            default: {
                std::string s = token_kind_spelling(t.kind);
                if (s.size() >= 2 && s.front() == '\'') s = s.substr(1, s.size() - 2);
                out += s;
            }
        }
    }
    return out;
}

std::string lex(const std::string& src) {
    return render(tokenize(src, "t.weft"));
}

// "line:col: message" of the error tokenize() throws, or "" if none.
std::string lex_error(const std::string& src, bool* incomplete = nullptr) {
    try {
        tokenize(src, "t.weft");
    } catch (const CompileError& e) {
        if (incomplete) *incomplete = e.incomplete;
        return std::to_string(e.diag.pos.line) + ":" + std::to_string(e.diag.pos.col) + ": " +
               e.diag.message;
    }
    return "";
}

TEST(Lexer, EmptySource) {
    EXPECT_EQ(lex(""), "EOF");
}
TEST(Lexer, OnlyCommentsAndBlankLines) {
    EXPECT_EQ(lex("# hi\n\n   # indented comment\n\n"), "EOF");
}
TEST(Lexer, SimpleAssignment) {
    EXPECT_EQ(lex("x = 1\n"), "x = int:1 NL EOF");
}
TEST(Lexer, MissingFinalNewlineIsAdded) {
    EXPECT_EQ(lex("x"), "x NL EOF");
}

TEST(Lexer, IndentDedent) {
    EXPECT_EQ(lex("if a:\n    b\n    c\nd\n"), "if a : NL INDENT b NL c NL DEDENT d NL EOF");
}

TEST(Lexer, NestedDedentsAtEof) {
    EXPECT_EQ(lex("if a:\n  if b:\n    c"),
              "if a : NL INDENT if b : NL INDENT c NL DEDENT DEDENT EOF");
}

TEST(Lexer, MultipleDedentsAtOnce) {
    EXPECT_EQ(lex("a:\n  b:\n    c\nd\n"),
              "a : NL INDENT b : NL INDENT c NL DEDENT DEDENT d NL EOF");
}

TEST(Lexer, BlankAndCommentLinesDoNotAffectIndentation) {
    EXPECT_EQ(lex("if a:\n\n    b\n# c\n        # d\n    e\n"),
              "if a : NL INDENT b NL e NL DEDENT EOF");
}

TEST(Lexer, ImplicitLineJoiningInBrackets) {
    EXPECT_EQ(lex("f(1,\n      2,\n  3)\n"), "f ( int:1 , int:2 , int:3 ) NL EOF");
    EXPECT_EQ(lex("x = [\n  1,\n]\n"), "x = [ int:1 , ] NL EOF");
    EXPECT_EQ(lex("d = {\n 'a': 1, # c\n}\n"), "d = { str:[a] : int:1 , } NL EOF");
}

TEST(Lexer, BackslashContinuation) {
    EXPECT_EQ(lex("x = 1 + \\\n    2\n"), "x = int:1 + int:2 NL EOF");
}

TEST(Lexer, CrLfLineEndings) {
    EXPECT_EQ(lex("if a:\r\n    b\r\n"), "if a : NL INDENT b NL DEDENT EOF");
}

TEST(Lexer, BomIsSkipped) {
    EXPECT_EQ(lex("\xEF\xBB\xBFx\n"), "x NL EOF");
}

TEST(Lexer, Integers) {
    EXPECT_EQ(lex("42 1_000 0xff 0XFF 0b1010 0o17 0 00"),
              "int:42 int:1000 int:255 int:255 int:10 int:15 int:0 int:0 NL EOF");
    EXPECT_EQ(lex("9223372036854775807"), "int:9223372036854775807 NL EOF");
}

TEST(Lexer, IntegerTooLarge) {
    EXPECT_EQ(lex_error("x = 99999999999999999999\n"), "1:5: integer literal too large");
    EXPECT_EQ(lex_error("x = 0xffffffffffffffffff\n"), "1:5: integer literal too large");
    EXPECT_EQ(lex_error("x = 9223372036854775809\n"), "1:5: integer literal too large");
}

TEST(Lexer, MalformedNumbers) {
    EXPECT_EQ(lex_error("1__0"), "1:1: invalid decimal literal");
    EXPECT_EQ(lex_error("1_"), "1:1: invalid decimal literal");
    EXPECT_EQ(lex_error("0x"), "1:1: invalid hexadecimal literal");
    EXPECT_EQ(lex_error("0b12"), "1:1: invalid binary literal");
    EXPECT_EQ(lex_error("12abc"), "1:1: invalid decimal literal");
    EXPECT_EQ(lex_error("012"),
              "1:1: leading zeros in decimal integer literals are not permitted; use an 0o prefix "
              "for octal integers");
}

TEST(Lexer, Floats) {
    EXPECT_EQ(lex("3.14 1e-3 .5 1. 1E5 1_0.5"),
              "float:3.14 float:0.001 float:0.5 float:1 float:100000 float:10.5 NL EOF");
}

TEST(Lexer, Durations) {
    auto toks = tokenize("250ms 2s 1.5m 1h 0.5s", "t");
    ASSERT_EQ(toks[0].kind, TokenKind::Duration);
    EXPECT_DOUBLE_EQ(toks[0].float_value, 0.25);
    EXPECT_DOUBLE_EQ(toks[1].float_value, 2.0);
    EXPECT_DOUBLE_EQ(toks[2].float_value, 90.0);
    EXPECT_DOUBLE_EQ(toks[3].float_value, 3600.0);
    EXPECT_DOUBLE_EQ(toks[4].float_value, 0.5);
    EXPECT_EQ(lex_error("5min"), "1:1: invalid decimal literal");
}

TEST(Lexer, Strings) {
    EXPECT_EQ(lex(R"('a' "b" '''c''' """d""")"), "str:[a] str:[b] str:[c] str:[d] NL EOF");
    EXPECT_EQ(lex(R"("it's" 'say "hi"')"), "str:[it's] str:[say \"hi\"] NL EOF");
}

TEST(Lexer, TripleQuotedSpansLines) {
    auto toks = tokenize("x = '''a\nb\n'''\ny\n", "t");
    ASSERT_EQ(toks[2].kind, TokenKind::String);
    EXPECT_EQ(toks[2].text, "a\nb\n");
    EXPECT_EQ(toks[5].pos.line, 4u);  // y
}

TEST(Lexer, StringEscapes) {
    auto toks = tokenize(R"("a\nb\tc\\d\'e\"f\rg\0h\x41\u00e9\U0001F600\q")", "t");
    EXPECT_EQ(toks[0].text,
              "a\nb\tc\\d'e\"f\rg" + std::string(1, '\0') + "hA\xC3\xA9\xF0\x9F\x98\x80\\q");
}

TEST(Lexer, BackslashNewlineInString) {
    EXPECT_EQ(tokenize("'a\\\nb'", "t")[0].text, "ab");
}

TEST(Lexer, RawStrings) {
    EXPECT_EQ(tokenize(R"(r"a\nb" R'\d+' r"\"")", "t")[0].text, "a\\nb");
    EXPECT_EQ(tokenize(R"(r"a\nb" R'\d+' r"\"")", "t")[1].text, "\\d+");
    EXPECT_EQ(tokenize(R"(r"a\nb" R'\d+' r"\"")", "t")[2].text, "\\\"");
}

TEST(Lexer, BytesLiterals) {
    auto toks = tokenize(R"(b"ab\x00\xff" rb"\x00" B'z')", "t");
    ASSERT_EQ(toks[0].kind, TokenKind::Bytes);
    EXPECT_EQ(toks[0].text, std::string("ab\0\xff", 4));
    EXPECT_EQ(toks[1].text, "\\x00");
    EXPECT_EQ(toks[2].text, "z");
    EXPECT_EQ(lex_error("b'\xC3\xA9'"), "1:1: bytes can only contain ASCII literal characters");
}

TEST(Lexer, FStringTokenKeepsRawBody) {
    auto toks = tokenize(R"(f"{x} {y!r}" rf'\d{z}')", "t");
    ASSERT_EQ(toks[0].kind, TokenKind::FString);
    EXPECT_EQ(toks[0].text, "{x} {y!r}");
    EXPECT_EQ(toks[0].body_pos.col, 3u);
    EXPECT_TRUE(toks[1].raw);
    EXPECT_EQ(toks[1].text, "\\d{z}");
}

TEST(Lexer, PrefixLikeNamesAreNames) {
    EXPECT_EQ(lex("rb br fr f r b"), "rb br fr f r b NL EOF");
}

TEST(Lexer, BadEscapes) {
    EXPECT_EQ(lex_error(R"(x = "\x4")"), "1:5: truncated \\xXX escape");
    EXPECT_EQ(lex_error(R"(x = "\u12")"), "1:5: truncated \\uXXXX escape");
}

TEST(Lexer, Keywords) {
    EXPECT_EQ(lex("and as assert break case continue def elif else except finally for from if"),
              "and as assert break case continue def elif else except finally for from if NL EOF");
    EXPECT_EQ(lex("import in is lambda match not or pass raise return try while with"),
              "import in is lambda match not or pass raise return try while with NL EOF");
    EXPECT_EQ(lex("actor agent concurrent lazy race select sequential spawn struct"),
              "actor agent concurrent lazy race select sequential spawn struct NL EOF");
}

TEST(Lexer, LiteralAliases) {
    auto toks = tokenize("None null True true False false", "t");
    EXPECT_EQ(toks[0].kind, TokenKind::KwNone);
    EXPECT_EQ(toks[1].kind, TokenKind::KwNone);
    EXPECT_EQ(toks[2].kind, TokenKind::KwTrue);
    EXPECT_EQ(toks[3].kind, TokenKind::KwTrue);
    EXPECT_EQ(toks[4].kind, TokenKind::KwFalse);
    EXPECT_EQ(toks[5].kind, TokenKind::KwFalse);
}

TEST(Lexer, Operators) {
    EXPECT_EQ(lex("+ - * / // % ** @ & | ^ ~ << >> < > <= >= == != = -> . , : ; ..."),
              "+ - * / // % ** @ & | ^ ~ << >> < > <= >= == != = -> . , : ; ... NL EOF");
    EXPECT_EQ(
        lex("a += 1; a -= 1; a *= 1; a /= 1; a //= 1; a %= 1; a **= 1"),
        "a += int:1 ; a -= int:1 ; a *= int:1 ; a /= int:1 ; a //= int:1 ; a %= int:1 ; a **= "
        "int:1 NL EOF");
    EXPECT_EQ(
        lex("a &= 1; a |= 1; a ^= 1; a <<= 1; a >>= 1; a @= 1"),
        "a &= int:1 ; a |= int:1 ; a ^= int:1 ; a <<= int:1 ; a >>= int:1 ; a @= int:1 NL EOF");
}

TEST(Lexer, UnicodeEllipsisIsEllipsis) {
    EXPECT_EQ(lex("\xE2\x80\xA6"), "... NL EOF");
}

TEST(Lexer, Positions) {
    auto toks = tokenize("x = 1\nif y:\n    zz = 'é' + w\n", "t");
    // x = 1 NL if y : NL INDENT zz = 'é' + w
    EXPECT_EQ(toks[0].pos.line, 1u);
    EXPECT_EQ(toks[0].pos.col, 1u);
    EXPECT_EQ(toks[2].pos.col, 5u);
    EXPECT_EQ(toks[4].pos.line, 2u);
    EXPECT_EQ(toks[9].pos.line, 3u);
    EXPECT_EQ(toks[9].pos.col, 5u);    // zz
    EXPECT_EQ(toks[11].pos.col, 10u);  // 'é'
    EXPECT_EQ(toks[12].pos.col, 14u);  // + : columns count code points
    EXPECT_EQ(toks[13].pos.col, 16u);  // w
}

TEST(Lexer, TabInIndentation) {
    EXPECT_EQ(lex_error("if x:\n\ty = 1\n"), "2:1: tab in indentation; use spaces");
    EXPECT_EQ(lex_error("if x:\n  \ty = 1\n"), "2:3: tab in indentation; use spaces");
    EXPECT_EQ(lex("x =\t1\n"), "x = int:1 NL EOF");  // tabs between tokens are fine
}

TEST(Lexer, InconsistentDedent) {
    EXPECT_EQ(lex_error("if x:\n    a\n  b\n"),
              "3:3: unindent does not match any outer indentation level");
}

TEST(Lexer, UnterminatedStrings) {
    bool incomplete = true;
    EXPECT_EQ(lex_error("x = 'abc\ny\n", &incomplete), "1:5: unterminated string literal");
    EXPECT_FALSE(incomplete);
    EXPECT_EQ(lex_error("x = \"abc", &incomplete), "1:5: unterminated string literal");
    EXPECT_EQ(lex_error("\n\n\nx = '''abc\n\n", &incomplete),
              "4:5: unterminated triple-quoted string literal (started at line 4)");
    EXPECT_TRUE(incomplete);
}

TEST(Lexer, Brackets) {
    bool incomplete = false;
    EXPECT_EQ(lex_error("f(1,\n  2\n", &incomplete), "1:2: '(' was never closed");
    EXPECT_TRUE(incomplete);
    EXPECT_EQ(lex_error("x = [1, 2)"),
              "1:10: closing parenthesis ')' does not match opening parenthesis '['");
    EXPECT_EQ(lex_error("x = 1)"), "1:6: unmatched ')'");
}

TEST(Lexer, TooManyNestedParentheses) {
    std::string deep(201, '(');
    EXPECT_EQ(lex_error(deep), "1:201: too many nested parentheses");
    std::string ok(200, '[');
    EXPECT_EQ(lex_error(ok), "1:200: '[' was never closed");
}

TEST(Lexer, BackslashErrors) {
    bool incomplete = false;
    EXPECT_EQ(lex_error("x = 1 + \\", &incomplete),
              "1:9: unexpected end of file after line continuation character");
    EXPECT_TRUE(incomplete);
    EXPECT_EQ(lex_error("x = 1 \\ 2"),
              "1:7: unexpected character after line continuation character");
}

TEST(Lexer, InvalidCharacters) {
    EXPECT_EQ(lex_error("x = 5 \xE2\x82\xAC"), "1:7: invalid character '\xE2\x82\xAC' (U+20AC)");
    EXPECT_EQ(lex_error("a $ b"), "1:3: invalid character '$' (U+0024)");
    EXPECT_EQ(lex_error("a ? b"), "1:3: invalid character '?' (U+003F)");
    EXPECT_EQ(lex_error(std::string("a \x01 b")), "1:3: invalid non-printable character U+0001");
    EXPECT_EQ(lex_error("caf\xC3\xA9 = 1"), "1:4: invalid character '\xC3\xA9' (U+00E9)");
}

TEST(Lexer, InvalidUtf8) {
    EXPECT_EQ(lex_error("x = 1\ny = '\xff'\n"), "2:6: invalid UTF-8 byte 0xff in source");
    EXPECT_EQ(lex_error("# \xC0\xAF\n"), "1:3: invalid UTF-8 byte 0xc0 in source");    // overlong
    EXPECT_EQ(lex_error("'\xED\xA0\x80'"), "1:2: invalid UTF-8 byte 0xed in source");  // surrogate
    EXPECT_EQ(lex_error("'\xE2\x82'"), "1:2: invalid UTF-8 byte 0xe2 in source");      // truncated
}

TEST(Lexer, NonAsciiInStringsAndComments) {
    EXPECT_EQ(lex("s = 'h\xC3\xA9llo \xE2\x82\xAC' # \xF0\x9F\x98\x80\n"),
              "s = str:[h\xC3\xA9llo \xE2\x82\xAC] NL EOF");
}

TEST(Lexer, TooManyIndentationLevels) {
    std::string src;
    for (int i = 0; i < 102; ++i)
        src += std::string(static_cast<size_t>(i), ' ') + "if x:\n";
    src += std::string(102, ' ') + "pass\n";
    EXPECT_NE(lex_error(src).find("too many levels of indentation"), std::string::npos);
}

TEST(Lexer, TokenizeExpressionPositions) {
    auto toks = tokenize_expression("a +\n b", "t", ast::Pos{3, 7});
    EXPECT_EQ(render(toks), "a + b EOF");
    EXPECT_EQ(toks[0].pos.line, 3u);
    EXPECT_EQ(toks[0].pos.col, 7u);
    EXPECT_EQ(toks[2].pos.line, 4u);
    EXPECT_EQ(toks[2].pos.col, 2u);
}

TEST(Lexer, OneMegabyteIsFast) {
    std::string src;
    while (src.size() < (1u << 20)) {
        src += "def f(x, y=1):\n    return [x * 2 for x in range(10) if x % 3] + {'k': \"v\"}\n";
    }
    auto t0 = std::chrono::steady_clock::now();
    auto toks = tokenize(src, "big.weft");
    auto dt = std::chrono::steady_clock::now() - t0;
    EXPECT_GT(toks.size(), 100000u);
    if (kTimingChecked) {
        EXPECT_LT(std::chrono::duration<double>(dt).count(), 1.0);
    }
}

}  // namespace
}  // namespace weft
