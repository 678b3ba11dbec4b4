// Parser unit tests: every construct, checked through the S-expression dump (ast_dump.h),
// plus the precedence table and node positions.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "compiler/ast_dump.h"
#include "compiler/parser.h"

namespace weft {
namespace {

// Timing bounds hold for optimized builds only (not Debug, not under sanitizers).
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__) && !defined(WEFT_ASAN) && !defined(WEFT_TSAN)
constexpr bool kTimingChecked = true;
#else
constexpr bool kTimingChecked = false;
#endif

std::string parse(const std::string& src) {
    try {
        return dump_module(*parse_module(src, "t.weft"));
    } catch (const CompileError& e) {
        return "ERROR " + std::to_string(e.diag.pos.line) + ":" + std::to_string(e.diag.pos.col) +
               ": " + e.diag.message;
    }
}

// Dump of a single expression statement's expression.
std::string expr(const std::string& src) {
    std::string d = parse(src + "\n");
    if (d.rfind("(expr ", 0) == 0) return d.substr(6, d.size() - 7);
    return d;
}

struct Case {
    const char* name;
    const char* source;
    const char* expected;
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name;
}

class ParseCase : public ::testing::TestWithParam<Case> {};

TEST_P(ParseCase, Dump) {
    const Case& c = GetParam();
    EXPECT_EQ(parse(c.source), c.expected) << "source:\n" << c.source;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
    return info.param.name;
}

// --- expressions -----------------------------------------------------------------------------
const Case kExpressions[] = {
    {"Name", "x", "(expr x)"},
    {"IntLit", "42", "(expr 42)"},
    {"FloatLit", "3.5", "(expr 3.5)"},
    {"FloatForms", "1e-3, .5, 1., 1e22, 1e-7, 0.1", "(expr (tuple 0.001 0.5 1.0 1e+22 1e-07 0.1))"},
    {"DurationLit", "250ms", "(expr (dur 0.25))"},
    {"DurationMinutes", "1.5m", "(expr (dur 90.0))"},
    {"StrLit", "'hi'", "(expr \"hi\")"},
    {"AdjacentStrings", "'a' \"b\" '''c'''", "(expr \"abc\")"},
    {"AdjacentStringsAcrossLines", "x = ('a'\n     'b')", "(assign x \"ab\")"},
    {"BytesLit", "b'\\x00a'", "(expr b\"\\x00a\")"},
    {"AdjacentBytes", "b'a' b'b'", "(expr b\"ab\")"},
    {"NoneAndBools", "None, null, True, true, False, false",
     "(expr (tuple None None True True False False))"},
    {"List", "[1, 2, *xs]", "(expr (list 1 2 (* xs)))"},
    {"EmptyList", "[]", "(expr (list))"},
    {"ListTrailingComma", "[1, 2,]", "(expr (list 1 2))"},
    {"Tuple", "(1, 2)", "(expr (tuple 1 2))"},
    {"TupleNoParens", "1, 2", "(expr (tuple 1 2))"},
    {"SingletonTuple", "(1,)", "(expr (tuple 1))"},
    {"EmptyTuple", "()", "(expr (tuple))"},
    {"Parenthesized", "(1)", "(expr 1)"},
    {"Dict", "{'a': 1, **d, 'b': 2}", "(expr (dict (\"a\" 1) (** d) (\"b\" 2)))"},
    {"EmptyDict", "{}", "(expr (dict))"},
    {"DictStartingWithUnpack", "{**a, **b}", "(expr (dict (** a) (** b)))"},
    {"Set", "{1, 2, *s}", "(expr (set 1 2 (* s)))"},
    {"ListComp", "[x * 2 for x in xs if x if y]",
     "(expr (listcomp (* x 2) (for x xs (if x) (if y))))"},
    {"NestedComp", "[(a, b) for a in xs for b in ys if a < b]",
     "(expr (listcomp (tuple a b) (for a xs) (for b ys (if (cmp a < b)))))"},
    {"TupleTargetComp", "[k for k, v in d.items()]",
     "(expr (listcomp k (for (tuple k v) (call (. d items)))))"},
    {"SetComp", "{x for x in xs}", "(expr (setcomp x (for x xs)))"},
    {"DictComp", "{k: v for k, v in items}", "(expr (dictcomp k v (for (tuple k v) items)))"},
    {"GenExp", "(x for x in xs)", "(expr (genexp x (for x xs)))"},
    {"GenExpAsSoleArgument", "sum(x for x in xs)", "(expr (call sum (genexp x (for x xs))))"},
    {"CompWithIfExpElement", "[a if c else b for a in xs]",
     "(expr (listcomp (ifexp c a b) (for a xs)))"},
    {"Unary", "-x, +x, ~x, not x", "(expr (tuple (neg x) (pos x) (inv x) (not x)))"},
    {"Call", "f(a, *b, k=c, **d)", "(expr (call f a (* b) (kw k c) (** d)))"},
    {"CallStarAfterKeyword", "f(k=1, *a)", "(expr (call f (* a) (kw k 1)))"},
    {"CallTrailingComma", "f(a, b,)", "(expr (call f a b))"},
    {"CallNoArgs", "f()", "(expr (call f))"},
    {"Attribute", "a.b.c", "(expr (. (. a b) c))"},
    {"KeywordAsAttribute", "Counter.spawn(count=1)",
     "(expr (call (. Counter spawn) (kw count 1)))"},
    {"MethodChain", "a.b(1).c[2](3)", "(expr (call ([] (. (call (. a b) 1) c) 2) 3))"},
    {"Subscript", "a[1]", "(expr ([] a 1))"},
    {"SubscriptTuple", "a[1, 2]", "(expr ([] a (tuple 1 2)))"},
    {"Slice", "a[1:2:3]", "(expr ([] a (slice 1 2 3)))"},
    {"SliceReverse", "a[::-1]", "(expr ([] a (slice nil nil (neg 1))))"},
    {"SliceParts", "a[:], a[1:], a[:2], a[::]",
     "(expr (tuple ([] a (slice nil nil nil)) ([] a (slice 1 nil nil)) ([] a (slice nil 2 nil)) "
     "([] a (slice nil nil nil))))"},
    {"MultiSlice", "a[1:2, ::3]", "(expr ([] a (tuple (slice 1 2 nil) (slice nil nil 3))))"},
    {"Lambda", "lambda: 0", "(expr (lambda (params) 0))"},
    {"LambdaParams", "lambda a, b=1, *c, d, **e: a",
     "(expr (lambda (params a (b = 1) *c kw:d **e) a))"},
    {"LambdaBodyIfExp", "lambda x: a if x else b", "(expr (lambda (params x) (ifexp x a b)))"},
    {"IfExp", "a if c else b", "(expr (ifexp c a b))"},
    {"IfExpRightAssoc", "a if c else b if d else e", "(expr (ifexp c a (ifexp d b e)))"},
    {"ChainedCompare", "a < b <= c == d", "(expr (cmp a < b <= c == d))"},
    {"CompareOps", "a in b, a not in b, a is b, a is not b, a != b, a >= b, a > b",
     "(expr (tuple (cmp a in b) (cmp a not-in b) (cmp a is b) (cmp a is-not b) (cmp a != b) "
     "(cmp a >= b) (cmp a > b)))"},
    {"Spawn", "t = spawn f(x)", "(assign t (spawn (call f x)))"},
    {"SpawnMethod", "spawn a.b(1)", "(expr (spawn (call (. a b) 1)))"},
    {"Lazy", "x = lazy expensive(a)", "(assign x (lazy (call expensive a)))"},
    {"LazyWholeExpression", "x = lazy a + b", "(assign x (lazy (+ a b)))"},
    {"RaceAsFunction", "race(fetch(m1), fetch(m2))",
     "(expr (call race (call fetch m1) (call fetch m2)))"},
    {"SelectAsFunction", "select([a, b], timeout=1s)",
     "(expr (call select (list a b) (kw timeout (dur 1.0))))"},
    {"MatchAsName", "match = 1\nprint(match)", "(assign match 1)\n(expr (call print match))"},
    {"CaseAsName", "case.x", "(expr (. case x))"},
    {"MinInt", "-9223372036854775808", "(expr -9223372036854775808)"},
    {"Pipeline", "doc | clean | [a, b] | merge", "(expr (| (| (| doc clean) (list a b)) merge))"},
    {"StarredInTupleRhs", "x = *a, b", "(assign x (tuple (* a) b))"},
};
INSTANTIATE_TEST_SUITE_P(Expr, ParseCase, ::testing::ValuesIn(kExpressions), case_name);

// --- precedence ------------------------------------------------------------------------------
const Case kPrecedence[] = {
    {"MulOverAdd", "1 + 2 * 3", "(expr (+ 1 (* 2 3)))"},
    {"AddLeftAssoc", "1 - 2 - 3", "(expr (- (- 1 2) 3))"},
    {"MulLeftAssoc", "a / b // c % d @ e", "(expr (@ (% (// (/ a b) c) d) e))"},
    {"PowRightAssoc", "2 ** 3 ** 2", "(expr (** 2 (** 3 2)))"},
    {"NegPow", "-2 ** 2", "(expr (neg (** 2 2)))"},
    {"PowNegExponent", "2 ** -1", "(expr (** 2 (neg 1)))"},
    {"UnaryOverMul", "-a * b", "(expr (* (neg a) b))"},
    {"ShiftBelowAdd", "a << b + c", "(expr (<< a (+ b c)))"},
    {"AndBelowShift", "a & b >> c", "(expr (& a (>> b c)))"},
    {"XorBelowAnd", "a ^ b & c", "(expr (^ a (& b c)))"},
    {"OrBelowXor", "a | b ^ c", "(expr (| a (^ b c)))"},
    {"CompareBelowOr", "a | b < c | d", "(expr (cmp (| a b) < (| c d)))"},
    {"NotBelowCompare", "not a == b", "(expr (not (cmp a == b)))"},
    {"AndBelowNot", "not a and not b", "(expr (and (not a) (not b)))"},
    {"OrBelowAnd", "a or b and c or d", "(expr (or a (and b c) d))"},
    {"IfExpBelowOr", "a or b if c or d else e", "(expr (ifexp (or c d) (or a b) e))"},
    {"LambdaLowest", "lambda: a if b else c", "(expr (lambda (params) (ifexp b a c)))"},
    {"AttrOverPow", "a.b ** c.d", "(expr (** (. a b) (. c d)))"},
    {"CallOverUnary", "-f(x)", "(expr (neg (call f x)))"},
    {"InvertOverPow", "~a ** b", "(expr (inv (** a b)))"},
    {"NotNot", "not not a", "(expr (not (not a)))"},
    {"ParensOverride", "(1 + 2) * 3", "(expr (* (+ 1 2) 3))"},
    {"MixedTable", "a + b * c ** d << e & f ^ g | h < i and j or k",
     "(expr (or (and (cmp (| (^ (& (<< (+ a (* b (** c d))) e) f) g) h) < i) j) k))"},
};
INSTANTIATE_TEST_SUITE_P(Precedence, ParseCase, ::testing::ValuesIn(kPrecedence), case_name);

// --- statements ------------------------------------------------------------------------------
const Case kStatements[] = {
    {"AssignChain", "a = b = 1", "(assign a b 1)"},
    {"TupleUnpack", "a, b = b, a", "(assign (tuple a b) (tuple b a))"},
    {"StarredUnpack", "a, *rest = xs", "(assign (tuple a (* rest)) xs)"},
    {"ListTargetUnpack", "[a, b] = xs", "(assign (list a b) xs)"},
    {"NestedUnpack", "(a, b), c = x", "(assign (tuple (tuple a b) c) x)"},
    {"AttrSubscriptTargets", "p.x = d[k] = 0", "(assign (. p x) ([] d k) 0)"},
    {"AugAssignAll",
     "a += 1\na -= 1\na *= 1\na /= 1\na //= 1\na %= 1\na **= 1\na &= 1\na |= 1\na ^= 1\na <<= 1\n"
     "a >>= 1\na @= 1",
     "(augassign + a 1)\n(augassign - a 1)\n(augassign * a 1)\n(augassign / a 1)\n(augassign // a "
     "1)\n(augassign % a 1)\n(augassign ** a 1)\n(augassign & a 1)\n(augassign | a 1)\n(augassign "
     "^ "
     "a 1)\n(augassign << a 1)\n(augassign >> a 1)\n(augassign @ a 1)"},
    {"AugAssignAttr", "self.count += n", "(augassign + (. self count) n)"},
    {"AnnAssign", "x: float = 1.0", "(annassign x float 1.0)"},
    {"AnnAssignNoValue", "x: list[str]", "(annassign x ([] list str))"},
    {"AnnAssignUnion", "x: int | None = None", "(annassign x (| int None) None)"},
    {"Semicolons", "a = 1; b = 2;", "(assign a 1)\n(assign b 2)"},
    {"PassBreakContinue", "while x:\n    pass\n    break\n    continue",
     "(while x (body (pass) (break) (continue)))"},
    {"Return", "def f():\n    return\n", "(def f (params) (body (return)))"},
    {"ReturnTuple", "def f():\n    return 1, 2\n", "(def f (params) (body (return (tuple 1 2))))"},
    {"Raise", "raise\nraise E('x')\nraise E from e",
     "(raise)\n(raise (call E \"x\"))\n(raise E from e)"},
    {"Assert", "assert x\nassert x, 'msg'", "(assert x)\n(assert x \"msg\")"},
    {"If", "if a:\n    x\n", "(if a (body (expr x)))"},
    {"IfElifElse", "if a:\n    x\nelif b:\n    y\nelif c:\n    z\nelse:\n    w\n",
     "(if a (body (expr x)) (else (if b (body (expr y)) (else (if c (body (expr z)) (else (expr "
     "w)))))))"},
    {"IfInlineBody", "if a: x; y\nelse: z", "(if a (body (expr x) (expr y)) (else (expr z)))"},
    {"NestedBlocks", "if a:\n    if b:\n        x\n    y\nz",
     "(if a (body (if b (body (expr x))) (expr y)))\n(expr z)"},
    {"WhileElse", "while a:\n    x\nelse:\n    y", "(while a (body (expr x)) (else (expr y)))"},
    {"For", "for i in range(3):\n    print(i)",
     "(for i (call range 3) (body (expr (call print i))))"},
    {"ForTupleTarget", "for k, v in d.items():\n    pass",
     "(for (tuple k v) (call (. d items)) (body (pass)))"},
    {"ForStarTarget", "for a, *b in xs:\n    pass", "(for (tuple a (* b)) xs (body (pass)))"},
    {"ForElse", "for x in xs:\n    pass\nelse:\n    y", "(for x xs (body (pass)) (else (expr y)))"},
    {"ForTupleIter", "for x in 1, 2:\n    pass", "(for x (tuple 1 2) (body (pass)))"},
    {"TryExcept",
     "try:\n    x\nexcept KeyError as e:\n    a\nexcept (A, B):\n    b\nexcept:\n    c\nelse:\n    "
     "d\nfinally:\n    f",
     "(try (body (expr x)) (except KeyError as e (body (expr a))) (except A B (body (expr b))) "
     "(except (body (expr c))) (else (expr d)) (finally (expr f)))"},
    {"TryFinally", "try:\n    x\nfinally:\n    y", "(try (body (expr x)) (finally (expr y)))"},
    {"With", "with open(p) as f, lock:\n    pass",
     "(with (item (call open p) as f) (item lock) (body (pass)))"},
    {"WithTimeout", "with timeout(2s):\n    work()",
     "(with (item (call timeout (dur 2.0))) (body (expr (call work))))"},
    {"WithTupleTarget", "with x as (a, b):\n    pass",
     "(with (item x as (tuple a b)) (body (pass)))"},
    {"Def", "def f(a, b=1):\n    return a + b",
     "(def f (params a (b = 1)) (body (return (+ a b))))"},
    {"DefAnnotations", "def f(x: int, xs: list[str] = []) -> dict:\n    pass",
     "(def f (params (x : int) (xs : ([] list str) = (list))) -> dict (body (pass)))"},
    {"DefStarArgs", "def f(a, *args, k, j=2, **kw):\n    pass",
     "(def f (params a *args kw:k (kw:j = 2) **kw) (body (pass)))"},
    {"DefBareStar", "def f(a, *, k):\n    pass", "(def f (params a kw:k) (body (pass)))"},
    {"DefKwOnlyDefaultsAnyOrder", "def f(*, a=1, b):\n    pass",
     "(def f (params (kw:a = 1) kw:b) (body (pass)))"},
    {"DefTrailingComma", "def f(\n    a,\n    b,\n):\n    pass",
     "(def f (params a b) (body (pass)))"},
    {"DefDocstring", "def f():\n    \"\"\"Doc.\"\"\"\n    return 1",
     "(def f (params) (doc \"Doc.\") (body (expr \"Doc.\") (return 1)))"},
    {"DefInline", "def f(): return 1", "(def f (params) (body (return 1)))"},
    {"Decorators", "@a\n@b.c\n@d(1, k=2)\ndef f():\n    pass",
     "(def f (params) (decorators a (. b c) (call d 1 (kw k 2))) (body (pass)))"},
    {"DecoratorSequential", "@sequential\ndef f():\n    pass",
     "(def f (params) (decorators sequential) (body (pass)))"},
    {"DecoratorTimeout", "@timeout(5s)\ndef f():\n    pass",
     "(def f (params) (decorators (call timeout (dur 5.0))) (body (pass)))"},
    {"Struct",
     "struct User:\n    \"\"\"A user.\"\"\"\n    name: str\n    age: int = 0\n    tag = 'x'\n    "
     "def "
     "greeting(self) -> str:\n        return f\"hi {self.name}\"",
     "(struct User (doc \"A user.\") (fields (name : str) (age : int = 0) (tag = \"x\")) (methods "
     "(def greeting (params self) -> str (body (return (fstr \"hi \" (fmt (. self name))))))))"},
    {"StructBase", "struct MyError(Error):\n    code: int = 1",
     "(struct MyError (bases Error) (fields (code : int = 1)) (methods))"},
    {"StructPass", "struct Empty:\n    pass", "(struct Empty (fields) (methods))"},
    {"StructDecoratedMethod", "struct S:\n    @deco\n    def m(self):\n        pass",
     "(struct S (fields) (methods (def m (params self) (decorators deco) (body (pass)))))"},
    {"Actor",
     "actor Counter:\n    count: int = 0\n    def inc(self, n=1):\n        self.count += n",
     "(actor Counter (fields (count : int = 0)) (methods (def inc (params self (n = 1)) (body "
     "(augassign + (. self count) n)))))"},
    {"Agent", "agent Bot:\n    state_x = 1", "(agent Bot (fields (state_x = 1)) (methods))"},
    {"Imports", "import json\nimport a.b as c\nimport \"./x.weft\" as x\nimport os, sys",
     "(import json)\n(import a.b as c)\n(import \"./x.weft\" as x)\n(import os)\n(import sys)"},
    {"FromImports",
     "from fs import glob, read_file as rf\nfrom \"./x.weft\" import f\nfrom a.b import (c,\n  d "
     "as "
     "e,\n)\nfrom m import *",
     "(from fs glob (read_file as rf))\n(from \"./x.weft\" f)\n(from a.b c (d as e))\n(from m *)"},
    {"ModuleDocstring", "'''Module doc.'''\nx = 1", "(expr \"Module doc.\")\n(assign x 1)"},
    {"EllipsisPlaceholder", "def f(): ...\nfor v in ch: \xE2\x80\xA6",
     "(def f (params) (body (pass)))\n(for v ch (body (pass)))"},
    {"ExpressionStatementCall", "print('hi', end='')", "(expr (call print \"hi\" (kw end \"\")))"},
};
INSTANTIATE_TEST_SUITE_P(Stmt, ParseCase, ::testing::ValuesIn(kStatements), case_name);

// --- match -----------------------------------------------------------------------------------
const Case kMatch[] = {
    {"Literals",
     "match x:\n    case 1:\n        a\n    case -2:\n        b\n    case 'k':\n        c\n    "
     "case "
     "-1.5:\n        d\n    case None:\n        e\n    case True:\n        f",
     "(match x (case 1 (body (expr a))) (case -2 (body (expr b))) (case \"k\" (body (expr c))) "
     "(case -1.5 (body (expr d))) (case None (body (expr e))) (case True (body (expr f))))"},
    {"CaptureAndWildcard",
     "match x:\n    case y:\n        pass\nmatch x:\n    case _:\n        pass",
     "(match x (case y (body (pass))))\n(match x (case _ (body (pass))))"},
    {"Sequence",
     "match x:\n    case [a, *rest]:\n        pass\n    case (a, b):\n        pass\n    case [*_, "
     "z]:\n        pass\n    case []:\n        pass",
     "(match x (case (seq a *rest) (body (pass))) (case (seq a b) (body (pass))) (case (seq *_ z) "
     "(body (pass))) (case (seq) (body (pass))))"},
    {"OpenSequence", "match p:\n    case a, b:\n        pass",
     "(match p (case (seq a b) (body (pass))))"},
    {"Mapping", "match x:\n    case {\"k\": v, 1: [a], **rest}:\n        pass",
     "(match x (case (map (\"k\" v) (1 (seq a)) **rest) (body (pass))))"},
    {"ClassPattern",
     "match p:\n    case Point(x=0, y=py):\n        pass\n    case Point(a, b):\n        pass\n    "
     "case m.Point(1, y=2):\n        pass\n    case Empty():\n        pass",
     "(match p (case (class Point (x = 0) (y = py)) (body (pass))) (case (class Point a b) (body "
     "(pass))) (case (class (. m Point) 1 (y = 2)) (body (pass))) (case (class Empty) (body "
     "(pass))))"},
    {"ValuePattern", "match c:\n    case Color.RED:\n        pass",
     "(match c (case (. Color RED) (body (pass))))"},
    {"AsAndOr",
     "match x:\n    case 1 | 2 | 3 as n:\n        pass\n    case [a, b] as pair:\n        pass",
     "(match x (case (as (or 1 2 3) n) (body (pass))) (case (as (seq a b) pair) (body (pass))))"},
    {"Guard", "match x:\n    case n if n > 0:\n        pos()",
     "(match x (case n if (cmp n > 0) (body (expr (call pos)))))"},
    {"GuardedCaptureMayComeFirst",
     "match x:\n    case n if n:\n        pass\n    case _:\n        pass",
     "(match x (case n if n (body (pass))) (case _ (body (pass))))"},
    {"GroupPattern", "match x:\n    case (1 | 2):\n        pass",
     "(match x (case (or 1 2) (body (pass))))"},
    {"TupleSubject", "match a, b:\n    case x, y:\n        pass",
     "(match (tuple a b) (case (seq x y) (body (pass))))"},
    {"StringConcatPattern", "match x:\n    case 'a' 'b':\n        pass",
     "(match x (case \"ab\" (body (pass))))"},
};
INSTANTIATE_TEST_SUITE_P(Match, ParseCase, ::testing::ValuesIn(kMatch), case_name);

// --- concurrency -----------------------------------------------------------------------------
const Case kConcurrency[] = {
    {"SpawnBlock", "spawn:\n    work()", "(spawnblock (expr (call work)))"},
    {"Concurrent", "concurrent:\n    a = spawn f(1)\n",
     "(concurrent (options) (body (assign a (spawn (call f 1)))))"},
    {"ConcurrentOptions", "concurrent(fail_fast=False):\n    pass",
     "(concurrent (options (kw fail_fast False)) (body (pass)))"},
    {"Race", "race:\n    a()\n    b()", "(race (branch (expr (call a))) (branch (expr (call b))))"},
    {"Sequential", "sequential:\n    a()", "(sequential (expr (call a)))"},
    {"Select",
     "select:\n    case v = ch.recv():\n        a\n    case v, ok = ch.recv():\n        b\n    "
     "case "
     "ch.recv():\n        c\n    case ch.send(x):\n        d\n    case after(1s):\n        e\n    "
     "default:\n        f",
     "(select (recv ch v nil (body (expr a))) (recv ch v ok (body (expr b))) (recv ch nil nil "
     "(body (expr c))) (send ch x (body (expr d))) (after (dur 1.0) (body (expr e))) (default "
     "(body (expr f))))"},
    {"SelectChannelExpression", "select:\n    case m = chans[0].recv():\n        pass",
     "(select (recv ([] chans 0) m nil (body (pass))))"},
};
INSTANTIATE_TEST_SUITE_P(Concurrency, ParseCase, ::testing::ValuesIn(kConcurrency), case_name);

// --- direct checks ---------------------------------------------------------------------------

TEST(Parser, PositionsOfNodes) {
    auto m = parse_module("x = 1\nif a:\n    y = f(b, c)\n", "p.weft");
    EXPECT_EQ(m->path, "p.weft");
    ASSERT_EQ(m->body.size(), 2u);
    EXPECT_EQ(m->body[0]->pos.line, 1u);
    auto* ifs = m->body[1]->as<ast::IfStmt>();
    EXPECT_EQ(ifs->pos.line, 2u);
    EXPECT_EQ(ifs->pos.col, 1u);
    auto* assign = ifs->body[0]->as<ast::AssignStmt>();
    EXPECT_EQ(assign->pos.line, 3u);
    EXPECT_EQ(assign->pos.col, 5u);
    auto* call = assign->value->as<ast::CallExpr>();
    EXPECT_EQ(call->pos.col, 9u);
    EXPECT_EQ(call->args[1]->pos.col, 14u);
}

TEST(Parser, ModuleDocstring) {
    auto m = parse_module("\"\"\"Hello.\"\"\"\n", "p");
    EXPECT_EQ(m->doc, "Hello.");
}

TEST(Parser, DurationFlag) {
    auto m = parse_module("x = 2s\ny = 2.0\n", "p");
    auto* d = m->body[0]->as<ast::AssignStmt>()->value->as<ast::FloatLitExpr>();
    EXPECT_TRUE(d->is_duration);
    EXPECT_DOUBLE_EQ(d->value, 2.0);
    EXPECT_FALSE(m->body[1]->as<ast::AssignStmt>()->value->as<ast::FloatLitExpr>()->is_duration);
}

TEST(Parser, ParenthesizedTupleFlag) {
    auto m = parse_module("(1, 2)\n1, 2\n", "p");
    EXPECT_TRUE(m->body[0]->as<ast::ExprStmt>()->value->as<ast::TupleExpr>()->parenthesized);
    EXPECT_FALSE(m->body[1]->as<ast::ExprStmt>()->value->as<ast::TupleExpr>()->parenthesized);
}

TEST(Parser, SequencePatternStarIndex) {
    auto m = parse_module("match x:\n    case [a, *rest, b]:\n        pass\n", "p");
    auto* seq = m->body[0]->as<ast::MatchStmt>()->cases[0].pattern->as<ast::SequencePattern>();
    EXPECT_EQ(seq->star_index, 1);
    EXPECT_EQ(seq->star_name, "rest");
}

TEST(Parser, ExpressionHelper) {
    EXPECT_EQ(expr("a + b"), "(+ a b)");
}

TEST(Parser, DeepButAllowedNesting) {
    std::string src = "x = " + std::string(150, '(') + "1" + std::string(150, ')') + "\n";
    EXPECT_EQ(parse(src), "(assign x 1)");
    std::string lists = "x = " + std::string(190, '[') + std::string(190, ']') + "\n";
    EXPECT_EQ(parse(lists).rfind("(assign x (list (list", 0), 0u);
}

TEST(Parser, LongUnaryChainIsBounded) {
    std::string src = "x = " + std::string(5000, '-') + "1\n";
    EXPECT_NE(parse(src).find("too deeply nested"), std::string::npos);
    std::string nots;
    for (int i = 0; i < 3000; ++i)
        nots += "not ";
    EXPECT_NE(parse(nots + "x\n").find("too deeply nested"), std::string::npos);
}

TEST(Parser, ManyStatementsAreNotNesting) {
    std::string src;
    for (int i = 0; i < 5000; ++i)
        src += "x = " + std::to_string(i) + "\n";
    auto m = parse_module(src, "p");
    EXPECT_EQ(m->body.size(), 5000u);
}

TEST(Parser, OneMegabyteUnderASecond) {
    std::string unit =
        "def f(x, y=1, *args, **kw):\n"
        "    \"\"\"Doc.\"\"\"\n"
        "    total = 0\n"
        "    for i, v in enumerate(args):\n"
        "        if v % 2 == 0 and i > 1:\n"
        "            total += v ** 2 - x * y\n"
        "        else:\n"
        "            total -= kw.get('k', 3)\n"
        "    return [a for a in range(total) if a], {\"k\": f\"{total:>10} {x!r}\"}\n"
        "\n";
    std::string src;
    while (src.size() < (1u << 20))
        src += unit;
    auto t0 = std::chrono::steady_clock::now();
    auto m = parse_module(src, "big.weft");
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_GT(m->body.size(), 2000u);
    if (kTimingChecked) {
        EXPECT_LT(dt, 1.0);
    }
}

}  // namespace
}  // namespace weft

namespace weft {
namespace {

std::string repeat(const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i)
        out += s;
    return out;
}

TEST(ParserLimits, LongOperatorChainsAreBounded) {
    // Chains build left-deep trees; they are bounded like nesting so later passes that
    // recurse over the tree (and the destructors) cannot overflow the stack.
    EXPECT_EQ(parse("x = a" + repeat(" + a", 500) + "\n").rfind("(assign x (+ (+", 0), 0u);
    EXPECT_NE(parse("x = a" + repeat(" + a", 5000) + "\n").find("too deeply nested"),
              std::string::npos);
    EXPECT_EQ(parse("x = a" + repeat(".b", 500) + "\n").rfind("(assign x (. (.", 0), 0u);
    EXPECT_NE(parse("x = a" + repeat("()", 5000) + "\n").find("too deeply nested"),
              std::string::npos);
    EXPECT_NE(parse("x = a" + repeat("[0]", 5000) + "\n").find("too deeply nested"),
              std::string::npos);
}

TEST(ParserLimits, FlatListsAreNotNesting) {
    // Comparisons, boolean chains, displays and arguments are flat vectors: no limit.
    EXPECT_EQ(parse("x = a" + repeat(" and a", 5000) + "\n").rfind("(assign x (and a a", 0), 0u);
    EXPECT_EQ(parse("x = [" + repeat("1, ", 20000) + "]\n").rfind("(assign x (list 1 1", 0), 0u);
    EXPECT_EQ(parse("f(" + repeat("a, ", 20000) + ")\n").rfind("(expr (call f a a", 0), 0u);
}

TEST(ParserLimits, ElifChains) {
    std::string ok = "if a:\n    pass\n" + repeat("elif a:\n    pass\n", 300);
    EXPECT_EQ(parse(ok).rfind("(if a", 0), 0u);
    std::string bad = "if a:\n    pass\n" + repeat("elif a:\n    pass\n", 3000);
    EXPECT_NE(parse(bad).find("too deeply nested"), std::string::npos);
}

TEST(ParserLimits, ManyKeywordArgumentsAreLinear) {
    std::string src = "f(";
    for (int i = 0; i < 50000; ++i) {
        src += 'k';
        src += std::to_string(i);
        src += "=1, ";
    }
    src += ")\n";
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(parse(src).rfind("(expr (call f (kw k0 1)", 0), 0u);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(dt, 20.0);  // quadratic duplicate checks would take minutes
}

}  // namespace
}  // namespace weft
