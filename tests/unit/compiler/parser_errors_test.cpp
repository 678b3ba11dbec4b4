// Syntax errors: every message with its line:col, the `incomplete` flag the REPL relies on,
// and format_diagnostic's rendering.
#include <gtest/gtest.h>

#include <string>

#include "compiler/parser.h"

namespace weft {
namespace {

struct ErrorCase {
    const char* name;
    const char* source;
    const char* expected;  // "line:col: message"
    bool incomplete = false;
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
    *os << c.name;
}

class ParseError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParseError, Message) {
    const ErrorCase& c = GetParam();
    try {
        parse_module(c.source, "t.weft");
        FAIL() << "no error for:\n" << c.source;
    } catch (const CompileError& e) {
        EXPECT_EQ(std::to_string(e.diag.pos.line) + ":" + std::to_string(e.diag.pos.col) + ": " +
                      e.diag.message,
                  c.expected)
            << "source:\n"
            << c.source;
        EXPECT_EQ(e.incomplete, c.incomplete) << c.source;
        EXPECT_EQ(e.diag.path, "t.weft");
    }
}

std::string case_name(const ::testing::TestParamInfo<ErrorCase>& info) {
    return info.param.name;
}

const ErrorCase kErrors[] = {
    // block structure
    {"ExpectedColon", "if x\n    pass\n", "1:5: expected ':'"},
    {"ExpectedColonDef", "def f()\n    pass\n", "1:8: expected ':'"},
    {"ExpectedIndentedBlock", "x = 1\n\nif x:\npass\n",
     "4:1: expected an indented block after 'if' statement on line 3"},
    {"ExpectedIndentedBlockDef", "def f():\nreturn 1\n",
     "2:1: expected an indented block after function definition on line 1"},
    {"ExpectedIndentedBlockFor", "for x in y:\nz\n",
     "2:1: expected an indented block after 'for' statement on line 1"},
    {"ExpectedIndentedBlockElse", "if a:\n    b\nelse:\nc\n",
     "4:1: expected an indented block after 'else' statement on line 3"},
    {"ExpectedIndentedBlockStruct", "struct P:\nx: int\n",
     "2:1: expected an indented block after struct definition on line 1"},
    {"UnexpectedIndent", "x = 1\n    y = 2\n", "2:5: unexpected indent"},
    {"UnexpectedIndentFirstLine", "  x = 1\n", "1:3: unexpected indent"},
    {"Unindent", "if x:\n    a\n  b\n", "3:3: unindent does not match any outer indentation level"},
    {"TabInIndentation", "if x:\n\tpass\n", "2:1: tab in indentation; use spaces"},
    {"ElseWithoutIf", "else:\n    pass\n", "1:1: invalid syntax"},
    {"TryWithoutHandlers", "try:\n    x\ny\n", "3:1: expected 'except' or 'finally' block"},
    {"BareExceptNotLast", "try:\n    x\nexcept:\n    a\nexcept E:\n    b\n",
     "5:1: default 'except:' must be last"},
    {"ExceptUnparenthesized", "try:\n    x\nexcept A, B:\n    a\n",
     "3:8: multiple exception types must be parenthesized"},
    // strings and characters
    {"UnterminatedString", "x = 1\ny = 'abc\n", "2:5: unterminated string literal"},
    {"UnterminatedTriple", "a = 1\nb = 2\nc = 3\nd = \"\"\"abc\n\n",
     "4:5: unterminated triple-quoted string literal (started at line 4)", true},
    {"NeverClosed", "x = (1,\n     2\n", "1:5: '(' was never closed", true},
    {"NeverClosedBracket", "f(a, [1, 2\n", "1:6: '[' was never closed", true},
    {"Unmatched", "x = 1)\n", "1:6: unmatched ')'"},
    {"InvalidCharacter", "price = 5\xE2\x82\xAC\n",
     "1:10: invalid character '\xE2\x82\xAC' (U+20AC)"},
    {"InvalidUtf8", "x = '\xC3'\n", "1:6: invalid UTF-8 byte 0xc3 in source"},
    {"TrailingBackslash", "x = 1 + \\",
     "1:9: unexpected end of file after line continuation character", true},
    {"IntegerTooLarge", "x = 18446744073709551616\n", "1:5: integer literal too large"},
    {"PositiveMinIntTooLarge", "x = 9223372036854775808\n", "1:5: integer literal too large"},
    // generic
    {"InvalidSyntax", "x = = 1\n", "1:5: invalid syntax"},
    {"AssignInCondition", "if x = 1:\n    pass\n",
     "1:6: invalid syntax. Maybe you meant '==' instead of '='?"},
    {"Walrus", "if (n := 10) > 5:\n    pass\n",
     "1:7: assignment expressions (':=') are not supported"},
    {"ForgotComma", "f(a b)\n", "1:5: invalid syntax. Perhaps you forgot a comma?"},
    {"ForgotCommaList", "x = [1, 2 3]\n", "1:11: invalid syntax. Perhaps you forgot a comma?"},
    {"UnclosedParenThenOther", "x = (1 + 2]\n",
     "1:11: closing parenthesis ']' does not match opening parenthesis '('"},
    {"InvalidSyntaxTwoNames", "x y\n", "1:3: invalid syntax"},
    {"MissingOperand", "x = 1 +\n", "1:8: invalid syntax"},
    {"IncompleteElse", "x = a if b\n", "1:11: expected 'else' after 'if' expression"},
    {"ClassKeyword", "class A:\n    pass\n",
     "1:1: 'class' is not supported; define a 'struct' instead"},
    {"DanglingDecorator", "@deco\nx = 1\n",
     "2:1: expected a function or struct definition after a decorator"},
    // assignment targets
    {"AssignToCall", "f() = 1\n", "1:1: cannot assign to function call"},
    {"AssignToLiteral", "1 = x\n", "1:1: cannot assign to literal"},
    {"AssignToExpression", "a + b = 1\n", "1:1: cannot assign to expression"},
    {"AssignToCallInTuple", "a, f() = 1, 2\n", "1:4: cannot assign to function call"},
    {"AssignToNone", "None = 1\n", "1:1: cannot assign to None"},
    {"AssignToComparison", "a < b = 1\n", "1:1: cannot assign to comparison"},
    {"AssignToLambda", "lambda: 1 = 1\n", "1:1: cannot assign to lambda"},
    {"ForTargetCall", "for f() in x:\n    pass\n", "1:5: cannot assign to function call"},
    {"MultipleStarred", "*a, *b = x\n", "1:5: multiple starred expressions in assignment"},
    {"StarredAlone", "*a = x\n", "1:1: starred assignment target must be in a list or tuple"},
    {"AugAssignTuple", "a, b += 1\n",
     "1:1: 'tuple' is an illegal expression for augmented assignment"},
    {"AugAssignCall", "f() += 1\n",
     "1:1: 'function call' is an illegal expression for augmented assignment"},
    {"AnnotateTuple", "a, b: int = 1, 2\n", "1:1: only single target (not tuple) can be annotated"},
    {"WithTargetCall", "with x as f():\n    pass\n", "1:11: cannot assign to function call"},
    // calls and definitions
    {"PositionalAfterKeyword", "f(a=1, b)\n", "1:8: positional argument follows keyword argument"},
    {"PositionalAfterKwUnpack", "f(**d, b)\n",
     "1:8: positional argument follows keyword argument unpacking"},
    {"KeywordRepeated", "f(a=1, a=2)\n", "1:8: keyword argument repeated: a"},
    {"KeywordNotName", "f(a.b=1)\n",
     "1:3: expression cannot contain assignment, perhaps you meant \"==\"?"},
    {"GeneratorNotParenthesized", "f(x for x in y, 1)\n",
     "1:3: generator expression must be parenthesized"},
    {"DuplicateArgument", "def f(x, y, x):\n    pass\n",
     "1:13: duplicate argument 'x' in function definition"},
    {"DuplicateLambdaArgument", "g = lambda a, a: 1\n",
     "1:15: duplicate argument 'a' in function definition"},
    {"NonDefaultAfterDefault", "def f(a=1, b):\n    pass\n",
     "1:12: non-default argument follows default argument"},
    {"BareStarAlone", "def f(a, *):\n    pass\n", "1:10: named arguments must follow bare *"},
    {"ParamAfterKwargs", "def f(**kw, a):\n    pass\n",
     "1:13: arguments cannot follow var-keyword argument"},
    {"DefaultOnVarargs", "def f(*a=1):\n    pass\n",
     "1:9: var-positional argument cannot have default value"},
    {"PositionalOnly", "def f(a, /):\n    pass\n",
     "1:10: positional-only parameters are not supported"},
    // reserved keywords
    {"ReservedSpawnAssign", "spawn = 1\n", "1:1: 'spawn' is a reserved keyword"},
    {"ReservedActorName", "x = actor\n", "1:5: 'actor' is a reserved keyword"},
    {"ReservedDefName", "def spawn():\n    pass\n", "1:5: 'spawn' is a reserved keyword"},
    {"ReservedParam", "def f(lazy):\n    pass\n", "1:7: 'lazy' is a reserved keyword"},
    {"ReservedStructName", "struct = 3\n", "1:1: 'struct' is a reserved keyword"},
    {"ReservedRaceAssign", "race = 1\n", "1:1: 'race' is a reserved keyword"},
    {"ReservedSelectAssign", "select = 1\n", "1:1: 'select' is a reserved keyword"},
    {"ReservedConcurrentAssign", "concurrent = 1\n", "1:1: 'concurrent' is a reserved keyword"},
    {"SpawnNeedsCall", "t = spawn f\n", "1:11: expected a call after 'spawn'"},
    // imports
    {"PathImportNeedsAs", "import \"./x.weft\"\n",
     "1:18: a path import needs a name: import \"./x.weft\" as name"},
    {"RelativeImport", "from . import x\n",
     "1:6: relative imports are not supported; import a path string instead"},
    {"FromWithoutImport", "from a b\n", "1:8: expected 'import'"},
    // match
    {"MatchCaseNotCase", "match x:\n    y = 1\n", "2:5: expected 'case' in 'match' statement"},
    {"MatchPositionalAfterKeyword", "match p:\n    case P(x=1, y):\n        pass\n",
     "2:17: positional patterns follow keyword patterns"},
    {"MatchTwoStars", "match p:\n    case [*a, *b]:\n        pass\n",
     "2:15: multiple starred names in sequence pattern"},
    {"MatchCaptureNotLast", "match p:\n    case x:\n        pass\n    case 1:\n        pass\n",
     "2:10: name capture 'x' makes remaining patterns unreachable"},
    {"MatchWildcardNotLast", "match p:\n    case 1 | _:\n        pass\n    case 2:\n        pass\n",
     "2:10: wildcard makes remaining patterns unreachable"},
    {"MatchBadPattern", "match p:\n    case 1 + 2:\n        pass\n", "2:12: expected ':'"},
    // select / concurrency blocks
    {"SelectBadCase", "select:\n    case f(x):\n        pass\n",
     "2:10: a select case must be 'v = ch.recv()', 'ch.send(x)' or 'after(t)'"},
    {"ConcurrentPositional", "concurrent(1):\n    pass\n",
     "1:12: 'concurrent' options must be keyword arguments"},
    // struct bodies
    {"StructBodyStatement", "struct P:\n    x: int\n    print(x)\n",
     "3:5: expected a field or method definition in struct body"},
    {"StructDuplicateField", "struct P:\n    x: int\n    x: str\n", "3:5: duplicate field 'x'"},
    // misc
    {"GlobalHint", "global x\n",
     "1:1: 'global' is not supported: closures capture values; use an atom for shared state"},
    {"NonlocalHint", "def f():\n    nonlocal n\n",
     "2:5: 'nonlocal' is not supported: closures capture values; use an atom for shared state"},
    {"YieldHint", "def f():\n    yield 1\n",
     "2:5: 'yield' is not supported (no generators); build and return a list"},
    {"EllipsisInExpression", "x = ... + 1\n",
     "1:5: '...' is only allowed as a placeholder statement"},
    {"MixBytesAndStr", "x = b'a' 'b'\n", "1:10: cannot mix bytes and nonbytes literals"},
    {"StarredExpressionStatement", "*a\n", "1:1: can't use starred expression here"},
    // incomplete input (the REPL asks for more)
    {"IncompleteIfHeader", "if x:\n",
     "2:1: expected an indented block after 'if' statement on line 1", true},
    {"IncompleteDefHeader",
     "def f(x):", "1:10: expected an indented block after function definition on line 1", true},
    {"IncompleteCall", "print(1,", "1:6: '(' was never closed", true},
    {"IncompleteDecorator", "@deco\n",
     "2:1: expected a function or struct definition after a decorator", true},
    {"IncompleteTry", "try:\n    x\n", "3:1: expected 'except' or 'finally' block", true},
    {"IncompleteElseBlock", "if a:\n    b\nelse:\n",
     "4:1: expected an indented block after 'else' statement on line 3", true},
    {"IncompleteMatch", "match x:\n",
     "2:1: expected an indented block after 'match' statement on line 1", true},
    {"IncompleteCase", "match x:\n    case 1:\n",
     "3:1: expected an indented block after 'case' statement on line 2", true},
    {"IncompleteTripleInBlock", "def f():\n    '''doc\n",
     "2:5: unterminated triple-quoted string literal (started at line 2)", true},
    {"IncompleteNestedBlock", "for x in y:\n    if x:\n",
     "3:1: expected an indented block after 'if' statement on line 2", true},
};
INSTANTIATE_TEST_SUITE_P(Errors, ParseError, ::testing::ValuesIn(kErrors), case_name);

TEST(Diagnostic, Format) {
    std::string src = "x = 1\nif x\n    pass\n";
    try {
        parse_module(src, "demo.weft");
        FAIL();
    } catch (const CompileError& e) {
        EXPECT_EQ(format_diagnostic(e.diag, src), "demo.weft:2:5: expected ':'\nif x\n    ^\n");
    }
}

TEST(Diagnostic, CaretCountsCodePointsAndKeepsTabs) {
    Diagnostic d{"a.weft", {1, 6}, "boom"};
    EXPECT_EQ(format_diagnostic(d, "s=\"\xC3\xA9\xC3\xA9\"?\n"),
              "a.weft:1:6: boom\ns=\"\xC3\xA9\xC3\xA9\"?\n     ^\n");
    Diagnostic t{"a.weft", {2, 3}, "tab"};
    EXPECT_EQ(format_diagnostic(t, "x\n\tab\n"), "a.weft:2:3: tab\n\tab\n\t ^\n");
}

TEST(Diagnostic, CrLfSourceAndEndOfLine) {
    Diagnostic d{"a.weft", {2, 4}, "m"};
    EXPECT_EQ(format_diagnostic(d, "one\r\ntwo\r\n"), "a.weft:2:4: m\ntwo\n   ^\n");
}

TEST(Diagnostic, LineOutOfRange) {
    Diagnostic d{"a.weft", {9, 1}, "m"};
    EXPECT_EQ(format_diagnostic(d, "one\n"), "a.weft:9:1: m\n");
}

TEST(ParseErrorExtra, NoCascadeOnlyFirstError) {
    try {
        parse_module("x = = 1\ny = = 2\n", "t.weft");
        FAIL();
    } catch (const CompileError& e) {
        EXPECT_EQ(e.diag.pos.line, 1u);
    }
}

TEST(ParseErrorExtra, DeepNestingIsAnErrorNotACrash) {
    std::string src = "x = " + std::string(300, '(') + "1" + std::string(300, ')');
    try {
        parse_module(src, "t.weft");
        FAIL();
    } catch (const CompileError& e) {
        EXPECT_EQ(e.diag.message, "too many nested parentheses");
    }
}

TEST(ParseErrorExtra, CompleteInputIsNotIncomplete) {
    // Valid multi-line input parses; the REPL decides by `incomplete` only on errors.
    EXPECT_NO_THROW(parse_module("if x:\n    y\n", "t"));
    try {
        parse_module("if x:\n    y\n  z\n", "t");
        FAIL();
    } catch (const CompileError& e) {
        EXPECT_FALSE(e.incomplete);
    }
}

}  // namespace
}  // namespace weft
