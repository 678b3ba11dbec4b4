// ast.h — the abstract syntax tree produced by the parser and consumed by the
// resolver and the bytecode compiler.
//
// Nodes are plain structs owned through std::unique_ptr: the tree is built once,
// walked a few times and dropped, so an arena would buy little and ownership by
// unique_ptr keeps the parser's error paths leak-free. Every node carries the
// source position of its first token (1-based line and column, columns counted in
// code points) so that every later error can say `file:line:col`.
//
// Expressions and statements each have a `kind` tag; consumers switch on it and
// downcast with `as<T>()`. Annotations are kept as ordinary expressions
// (`list[str]` is a Subscript, `int | None` a Binary) and interpreted by the
// compiler.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace weft::ast {

struct Pos {
    uint32_t line = 0;  // 1-based
    uint32_t col = 0;   // 1-based, in code points
};

struct Expr;
struct Stmt;
struct Pattern;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using PatternPtr = std::unique_ptr<Pattern>;
using Block = std::vector<StmtPtr>;

// ---------------------------------------------------------------------------
// Expressions

enum class ExprKind : uint8_t {
    Name,        // x
    NoneLit,     // None / null
    BoolLit,     // True False true false
    IntLit,      // 42 0xff 0b1010 1_000
    FloatLit,    // 3.14 1e-3, and durations (250ms is FloatLit 0.25)
    StrLit,      // "..." (escapes already decoded; adjacent literals concatenated)
    BytesLit,    // b"..."
    FString,     // f"..."
    List,        // [a, b, *c]
    Tuple,       // (a, b)  a, b
    Dict,        // {k: v, **d}
    Set,         // {a, b}
    Comprehension,  // [x for ...] {k: v for ...} {x for ...} (x for ...)
    Unary,       // -x +x not x ~x
    Binary,      // x + y, x | y, ...
    BoolOp,      // x and y / x or y (left-assoc chain flattened into `values`)
    Compare,     // a < b <= c (chained)
    Call,        // f(a, *b, k=c, **d)
    Attribute,   // x.name
    Subscript,   // x[i]
    Slice,       // only as the index of a Subscript: a:b:c (any part may be null)
    Lambda,      // lambda a, b=1: body
    IfExp,       // a if cond else b
    Starred,     // *x inside list/tuple/set displays, call args, assignment targets
    Spawn,       // spawn f(x)        (expression form; concurrency issue)
    Lazy,        // lazy f(x)         (concurrency issue)
};

struct Expr {
    ExprKind kind;
    Pos pos;
    Pos end;  // just past the expression's last token (set by the parser; carets in tracebacks)
    explicit Expr(ExprKind k, Pos p) : kind(k), pos(p) {}
    virtual ~Expr() = default;
    template <class T> T* as() { return static_cast<T*>(this); }
    template <class T> const T* as() const { return static_cast<const T*>(this); }
};

struct NameExpr : Expr {
    std::string name;
    NameExpr(Pos p, std::string n) : Expr(ExprKind::Name, p), name(std::move(n)) {}
};
struct NoneLitExpr : Expr {
    explicit NoneLitExpr(Pos p) : Expr(ExprKind::NoneLit, p) {}
};
struct BoolLitExpr : Expr {
    bool value;
    BoolLitExpr(Pos p, bool v) : Expr(ExprKind::BoolLit, p), value(v) {}
};
struct IntLitExpr : Expr {
    int64_t value;
    IntLitExpr(Pos p, int64_t v) : Expr(ExprKind::IntLit, p), value(v) {}
};
struct FloatLitExpr : Expr {
    double value;
    bool is_duration = false;  // written with a unit suffix (ms, s, m, h)
    FloatLitExpr(Pos p, double v) : Expr(ExprKind::FloatLit, p), value(v) {}
};
struct StrLitExpr : Expr {
    std::string value;  // UTF-8, escapes decoded
    StrLitExpr(Pos p, std::string v) : Expr(ExprKind::StrLit, p), value(std::move(v)) {}
};
struct BytesLitExpr : Expr {
    std::string value;  // raw bytes
    BytesLitExpr(Pos p, std::string v) : Expr(ExprKind::BytesLit, p), value(std::move(v)) {}
};

// One piece of an f-string: either literal text or a replacement field.
struct FStringPart {
    bool is_literal = true;
    std::string literal;      // when is_literal
    ExprPtr expr;             // when !is_literal
    char conversion = 0;      // 0, 'r', 's' or 'a'
    ExprPtr format_spec;      // null, or an FString/StrLit giving the spec after ':'
    std::string expr_text;    // the source text of expr (for f"{x=}" if ever supported)
};
struct FStringExpr : Expr {
    std::vector<FStringPart> parts;
    explicit FStringExpr(Pos p) : Expr(ExprKind::FString, p) {}
};

struct ListExpr : Expr {
    std::vector<ExprPtr> elts;  // may contain Starred
    explicit ListExpr(Pos p) : Expr(ExprKind::List, p) {}
};
struct TupleExpr : Expr {
    std::vector<ExprPtr> elts;  // may contain Starred
    bool parenthesized = false;
    explicit TupleExpr(Pos p) : Expr(ExprKind::Tuple, p) {}
};
struct DictExpr : Expr {
    // keys[i] == nullptr means `**values[i]` (dict unpacking).
    std::vector<ExprPtr> keys;
    std::vector<ExprPtr> values;
    explicit DictExpr(Pos p) : Expr(ExprKind::Dict, p) {}
};
struct SetExpr : Expr {
    std::vector<ExprPtr> elts;
    explicit SetExpr(Pos p) : Expr(ExprKind::Set, p) {}
};

struct ComprehensionClause {
    ExprPtr target;                 // Name, Tuple or List of targets
    ExprPtr iter;
    std::vector<ExprPtr> conditions;  // the `if` parts following this `for`
    Pos pos;
};
enum class CompKind : uint8_t { List, Set, Dict, Generator };
struct ComprehensionExpr : Expr {
    CompKind comp_kind;
    ExprPtr element;  // the element, or the key for Dict
    ExprPtr value;    // Dict only
    std::vector<ComprehensionClause> clauses;  // in source order, at least one
    ComprehensionExpr(Pos p, CompKind k) : Expr(ExprKind::Comprehension, p), comp_kind(k) {}
};

enum class UnaryOp : uint8_t { Neg, Pos, Not, Invert };
struct UnaryExpr : Expr {
    UnaryOp op;
    ExprPtr operand;
    UnaryExpr(Pos p, UnaryOp o, ExprPtr e) : Expr(ExprKind::Unary, p), op(o), operand(std::move(e)) {}
};

enum class BinaryOp : uint8_t {
    Add, Sub, Mul, Div, FloorDiv, Mod, Pow, MatMul,
    BitAnd, BitOr, BitXor, Shl, Shr,
};
struct BinaryExpr : Expr {
    BinaryOp op;
    ExprPtr left, right;
    BinaryExpr(Pos p, BinaryOp o, ExprPtr l, ExprPtr r)
        : Expr(ExprKind::Binary, p), op(o), left(std::move(l)), right(std::move(r)) {}
};

struct BoolOpExpr : Expr {
    bool is_and;                  // true: and, false: or
    std::vector<ExprPtr> values;  // >= 2
    BoolOpExpr(Pos p, bool a) : Expr(ExprKind::BoolOp, p), is_and(a) {}
};

enum class CmpOp : uint8_t { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn, Is, IsNot };
struct CompareExpr : Expr {
    ExprPtr left;
    std::vector<CmpOp> ops;            // ops.size() == comparators.size() >= 1
    std::vector<ExprPtr> comparators;
    explicit CompareExpr(Pos p) : Expr(ExprKind::Compare, p) {}
};

struct Keyword {
    std::string name;  // empty means `**value`
    ExprPtr value;
    Pos pos;
};
struct CallExpr : Expr {
    ExprPtr func;
    std::vector<ExprPtr> args;      // may contain Starred (`*xs`)
    std::vector<Keyword> keywords;  // name=value and **mapping, in source order
    explicit CallExpr(Pos p) : Expr(ExprKind::Call, p) {}
};
struct AttributeExpr : Expr {
    ExprPtr object;
    std::string name;
    AttributeExpr(Pos p, ExprPtr o, std::string n)
        : Expr(ExprKind::Attribute, p), object(std::move(o)), name(std::move(n)) {}
};
struct SubscriptExpr : Expr {
    ExprPtr object;
    ExprPtr index;  // a Slice expr, a Tuple (x[a, b]) or any expression
    SubscriptExpr(Pos p, ExprPtr o, ExprPtr i)
        : Expr(ExprKind::Subscript, p), object(std::move(o)), index(std::move(i)) {}
};
struct SliceExpr : Expr {
    ExprPtr lower, upper, step;  // each may be null
    explicit SliceExpr(Pos p) : Expr(ExprKind::Slice, p) {}
};

enum class ParamKind : uint8_t { Normal, VarArgs, KwArgs };
struct Param {
    std::string name;
    ExprPtr annotation;   // may be null
    ExprPtr default_value;  // may be null
    ParamKind kind = ParamKind::Normal;
    bool keyword_only = false;  // declared after `*` or `*args`
    Pos pos;
};

struct LambdaExpr : Expr {
    std::vector<Param> params;
    ExprPtr body;
    explicit LambdaExpr(Pos p) : Expr(ExprKind::Lambda, p) {}
};
struct IfExpExpr : Expr {
    ExprPtr cond, then_value, else_value;
    explicit IfExpExpr(Pos p) : Expr(ExprKind::IfExp, p) {}
};
struct StarredExpr : Expr {
    ExprPtr value;
    StarredExpr(Pos p, ExprPtr v) : Expr(ExprKind::Starred, p), value(std::move(v)) {}
};
struct SpawnExpr : Expr {  // `spawn call`
    ExprPtr call;
    SpawnExpr(Pos p, ExprPtr c) : Expr(ExprKind::Spawn, p), call(std::move(c)) {}
};
struct LazyExpr : Expr {  // `lazy expr`
    ExprPtr value;
    LazyExpr(Pos p, ExprPtr v) : Expr(ExprKind::Lazy, p), value(std::move(v)) {}
};

// ---------------------------------------------------------------------------
// Patterns (match statement)

enum class PatternKind : uint8_t {
    Value,      // a literal (incl. negative numbers, strings) or a dotted name `Color.RED`
    Singleton,  // None, True, False
    Capture,    // name
    Wildcard,   // _
    Sequence,   // [a, *rest] or (a, b)
    Mapping,    // {"k": p, **rest}
    Class,      // Point(x=0, y=p) or Point(a, b)
    As,         // p as name
    Or,         // p1 | p2
};

struct Pattern {
    PatternKind kind;
    Pos pos;
    explicit Pattern(PatternKind k, Pos p) : kind(k), pos(p) {}
    virtual ~Pattern() = default;
    template <class T> T* as() { return static_cast<T*>(this); }
    template <class T> const T* as() const { return static_cast<const T*>(this); }
};
struct ValuePattern : Pattern {
    ExprPtr value;
    ValuePattern(Pos p, ExprPtr v) : Pattern(PatternKind::Value, p), value(std::move(v)) {}
};
struct SingletonPattern : Pattern {
    ExprPtr value;  // NoneLit or BoolLit
    SingletonPattern(Pos p, ExprPtr v) : Pattern(PatternKind::Singleton, p), value(std::move(v)) {}
};
struct CapturePattern : Pattern {
    std::string name;
    CapturePattern(Pos p, std::string n) : Pattern(PatternKind::Capture, p), name(std::move(n)) {}
};
struct WildcardPattern : Pattern {
    explicit WildcardPattern(Pos p) : Pattern(PatternKind::Wildcard, p) {}
};
struct SequencePattern : Pattern {
    std::vector<PatternPtr> patterns;
    int star_index = -1;       // index in `patterns` of the `*name` element, or -1
    std::string star_name;     // "" for `*_`
    explicit SequencePattern(Pos p) : Pattern(PatternKind::Sequence, p) {}
    // The star element itself is stored as a CapturePattern/WildcardPattern at star_index.
};
struct MappingPattern : Pattern {
    std::vector<ExprPtr> keys;         // literal or dotted-name keys
    std::vector<PatternPtr> patterns;  // same length as keys
    std::string rest;                  // name after `**`, or ""
    explicit MappingPattern(Pos p) : Pattern(PatternKind::Mapping, p) {}
};
struct ClassPattern : Pattern {
    ExprPtr cls;  // Name or Attribute chain
    std::vector<PatternPtr> positional;
    std::vector<std::string> kw_names;
    std::vector<PatternPtr> kw_patterns;
    explicit ClassPattern(Pos p) : Pattern(PatternKind::Class, p) {}
};
struct AsPattern : Pattern {
    PatternPtr pattern;
    std::string name;
    AsPattern(Pos p, PatternPtr pat, std::string n)
        : Pattern(PatternKind::As, p), pattern(std::move(pat)), name(std::move(n)) {}
};
struct OrPattern : Pattern {
    std::vector<PatternPtr> alternatives;  // >= 2
    explicit OrPattern(Pos p) : Pattern(PatternKind::Or, p) {}
};

// ---------------------------------------------------------------------------
// Statements

enum class StmtKind : uint8_t {
    Expr, Assign, AugAssign, AnnAssign, Pass, Break, Continue, Return, Raise, Assert,
    If, While, For, Try, With, FunctionDef, StructDef, Import, ImportFrom, Match,
    // concurrency (later issues compile these; the parser accepts them now)
    SpawnBlock, Concurrent, Race, Sequential, Select, ActorDef,
};

struct Stmt {
    StmtKind kind;
    Pos pos;
    explicit Stmt(StmtKind k, Pos p) : kind(k), pos(p) {}
    virtual ~Stmt() = default;
    template <class T> T* as() { return static_cast<T*>(this); }
    template <class T> const T* as() const { return static_cast<const T*>(this); }
};

struct ExprStmt : Stmt {
    ExprPtr value;
    ExprStmt(Pos p, ExprPtr v) : Stmt(StmtKind::Expr, p), value(std::move(v)) {}
};
// a = b = value ; targets are Name, Attribute, Subscript, Tuple/List (with at most one Starred)
struct AssignStmt : Stmt {
    std::vector<ExprPtr> targets;  // >= 1, assigned left to right
    ExprPtr value;
    explicit AssignStmt(Pos p) : Stmt(StmtKind::Assign, p) {}
};
struct AugAssignStmt : Stmt {
    ExprPtr target;  // Name, Attribute or Subscript
    BinaryOp op;
    ExprPtr value;
    explicit AugAssignStmt(Pos p) : Stmt(StmtKind::AugAssign, p) {}
};
struct AnnAssignStmt : Stmt {  // x: int = 1   (value may be null)
    ExprPtr target;
    ExprPtr annotation;
    ExprPtr value;
    explicit AnnAssignStmt(Pos p) : Stmt(StmtKind::AnnAssign, p) {}
};
struct PassStmt : Stmt {
    explicit PassStmt(Pos p) : Stmt(StmtKind::Pass, p) {}
};
struct BreakStmt : Stmt {
    explicit BreakStmt(Pos p) : Stmt(StmtKind::Break, p) {}
};
struct ContinueStmt : Stmt {
    explicit ContinueStmt(Pos p) : Stmt(StmtKind::Continue, p) {}
};
struct ReturnStmt : Stmt {
    ExprPtr value;  // may be null
    explicit ReturnStmt(Pos p) : Stmt(StmtKind::Return, p) {}
};
struct RaiseStmt : Stmt {
    ExprPtr exc;    // may be null (re-raise)
    ExprPtr cause;  // `from cause`, may be null
    explicit RaiseStmt(Pos p) : Stmt(StmtKind::Raise, p) {}
};
struct AssertStmt : Stmt {
    ExprPtr test, msg;  // msg may be null
    explicit AssertStmt(Pos p) : Stmt(StmtKind::Assert, p) {}
};
struct IfStmt : Stmt {
    ExprPtr cond;
    Block body;
    Block orelse;  // `elif` becomes a single nested IfStmt here
    explicit IfStmt(Pos p) : Stmt(StmtKind::If, p) {}
};
struct WhileStmt : Stmt {
    ExprPtr cond;
    Block body, orelse;
    explicit WhileStmt(Pos p) : Stmt(StmtKind::While, p) {}
};
struct ForStmt : Stmt {
    ExprPtr target;  // Name, Tuple/List of targets, Attribute, Subscript
    ExprPtr iter;
    Block body, orelse;
    explicit ForStmt(Pos p) : Stmt(StmtKind::For, p) {}
};
struct ExceptHandler {
    std::vector<ExprPtr> types;  // empty: bare `except:`; `except (A, B)` gives two
    std::string name;            // `as e`, or ""
    Block body;
    Pos pos;
};
struct TryStmt : Stmt {
    Block body;
    std::vector<ExceptHandler> handlers;
    Block orelse, finalbody;
    explicit TryStmt(Pos p) : Stmt(StmtKind::Try, p) {}
};
struct WithItem {
    ExprPtr context;
    ExprPtr target;  // may be null
};
struct WithStmt : Stmt {
    std::vector<WithItem> items;  // >= 1
    Block body;
    explicit WithStmt(Pos p) : Stmt(StmtKind::With, p) {}
};
struct FunctionDefStmt : Stmt {
    std::string name;
    std::vector<Param> params;
    ExprPtr returns;                  // annotation, may be null
    std::vector<ExprPtr> decorators;  // in source order (top first)
    Block body;
    std::string doc;  // docstring if the body starts with a string literal
    // The name tracebacks and repr show, when not `name` (the Lisp surface binds `fetch-url`
    // as `fetch_url`, and its lambdas are `<lambda>`); "" means `name`.
    std::string display_name;
    explicit FunctionDefStmt(Pos p) : Stmt(StmtKind::FunctionDef, p) {}
};
struct FieldDecl {
    std::string name;
    ExprPtr annotation;     // may be null (`name = default` with no type)
    ExprPtr default_value;  // may be null
    Pos pos;
};
// `struct Name(Base):` — fields, methods; also used for `actor` / `agent` (ActorDef)
struct StructDefStmt : Stmt {
    std::string name;
    std::vector<ExprPtr> bases;  // e.g. Error
    std::vector<FieldDecl> fields;
    std::vector<std::unique_ptr<FunctionDefStmt>> methods;
    std::vector<ExprPtr> decorators;
    std::string doc;
    bool is_agent = false;  // ActorDef only: `agent` rather than `actor`
    StructDefStmt(StmtKind k, Pos p) : Stmt(k, p) {}
};
// import json / import a.b as c / import "./x.weft" as x
struct ImportStmt : Stmt {
    std::string module;  // dotted name, or the path string for file imports
    bool is_path = false;
    std::string alias;   // "" when none (then the binding is the last dotted component)
    explicit ImportStmt(Pos p) : Stmt(StmtKind::Import, p) {}
};
struct ImportName {
    std::string name, alias;  // alias "" when none
    Pos pos;
};
// from fs import glob, read_file as rf / from "./x.weft" import f
struct ImportFromStmt : Stmt {
    std::string module;
    bool is_path = false;
    std::vector<ImportName> names;  // a single entry with name "*" for `import *`
    explicit ImportFromStmt(Pos p) : Stmt(StmtKind::ImportFrom, p) {}
};
struct MatchCase {
    PatternPtr pattern;
    ExprPtr guard;  // may be null
    Block body;
    Pos pos;
};
struct MatchStmt : Stmt {
    ExprPtr subject;
    std::vector<MatchCase> cases;
    explicit MatchStmt(Pos p) : Stmt(StmtKind::Match, p) {}
};

// --- concurrency statements (parsed now, compiled by the concurrency issue) ---
struct SpawnBlockStmt : Stmt {  // spawn:  body        (also `x = spawn:` is not allowed)
    Block body;
    explicit SpawnBlockStmt(Pos p) : Stmt(StmtKind::SpawnBlock, p) {}
};
struct ConcurrentStmt : Stmt {  // concurrent: / concurrent(fail_fast=False):
    std::vector<Keyword> options;
    Block body;
    explicit ConcurrentStmt(Pos p) : Stmt(StmtKind::Concurrent, p) {}
};
struct RaceStmt : Stmt {  // race: — each top-level statement is a branch
    std::vector<Block> branches;  // one statement each, in source order
    explicit RaceStmt(Pos p) : Stmt(StmtKind::Race, p) {}
};
struct SequentialStmt : Stmt {
    Block body;
    explicit SequentialStmt(Pos p) : Stmt(StmtKind::Sequential, p) {}
};
enum class SelectCaseKind : uint8_t { Recv, Send, After, Default };
struct SelectCase {
    SelectCaseKind case_kind;
    // Recv: `case [target[, ok_target] =] channel_expr.recv():`
    //   channel = the object of the .recv() call; target/ok_target may be null.
    // Send: `case channel_expr.send(value):`
    // After: `case after(duration):` — value = duration
    ExprPtr channel, value;
    ExprPtr target, ok_target;
    Block body;
    Pos pos;
};
struct SelectStmt : Stmt {
    std::vector<SelectCase> cases;
    explicit SelectStmt(Pos p) : Stmt(StmtKind::Select, p) {}
};

// A parsed source file.
struct Module {
    std::string path;  // as given to the parser (used in error messages)
    Block body;
    std::string doc;
};

}  // namespace weft::ast
