// parser.cpp — recursive-descent parser for Weft.
//
// The grammar and its precedence levels are Python's (lambda < if-else < or < and < not <
// comparisons < | < ^ < & < shifts < + - < * / // % @ < unary < ** < primary). The binary
// levels from `|` to `*` share one precedence-climbing loop, which keeps the recursion per
// bracket level short; every recursive entry point counts depth so hostile input cannot
// exhaust the stack. Errors are thrown at the first mistake (one mistake, one message) with
// the wording CPython uses where there is one. F-strings arrive from the lexer as raw bodies;
// parse_fstring_body() splits them and parses each replacement field with a nested Parser over a
// re-lexed substring, so positions inside f-strings are exact.
#include "compiler/parser.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "compiler/lexer.h"
#include "compiler/token.h"

namespace weft {

namespace {

using namespace ast;

constexpr int kMaxDepth = 1000;

class Parser {
  public:
    Parser(const std::vector<Token>& toks, const std::string& path, int depth = 0)
        : toks_(toks), path_(path), depth_(depth) {}

    std::unique_ptr<Module> parse_file();
    ExprPtr parse_fstring_field_expr();  // whole token stream is one expression

  private:
    // --- token access ---
    const Token& peek(size_t k = 0) const {
        size_t i = std::min(pos_ + k, toks_.size() - 1);
        return toks_[i];
    }
    TokenKind kind(size_t k = 0) const { return peek(k).kind; }
    bool at(TokenKind k) const { return kind() == k; }
    const Token& next() {
        const Token& t = toks_[pos_];
        if (pos_ + 1 < toks_.size()) ++pos_;
        return t;
    }
    bool accept(TokenKind k) {
        if (!at(k)) return false;
        next();
        return true;
    }
    // Where the last consumed token ends.
    Pos prev_end() const { return pos_ > 0 ? toks_[pos_ - 1].end : Pos{}; }
    // `e` with its end set (when not set yet) to where the last consumed token ends.
    ExprPtr ended(ExprPtr e) const {
        if (e && e->end.line == 0) e->end = prev_end();
        return e;
    }
    [[noreturn]] void fail(Pos p, std::string msg, bool incomplete = false) const {
        throw CompileError(Diagnostic{path_, p, std::move(msg)}, incomplete);
    }
    // Reports the current token as unexpected: "unexpected indent", reserved keywords, or the
    // given message (default "invalid syntax").
    [[noreturn]] void fail_here(const char* msg = nullptr) const {
        const Token& t = peek();
        if (t.kind == TokenKind::Indent) fail(t.pos, "unexpected indent");
        if (t.kind == TokenKind::Dedent) fail(t.pos, msg ? msg : "unexpected unindent");
        if (is_concurrency_keyword(t.kind) && !msg) {
            fail(t.pos, token_kind_spelling(t.kind) + " is a reserved keyword");
        }
        fail(t.pos, msg ? msg : "invalid syntax");
    }
    // True when only Dedents remain before the end of input: the input stopped early.
    bool at_end_of_input() const {
        for (size_t i = pos_; i < toks_.size(); ++i) {
            if (toks_[i].kind == TokenKind::EndOfFile) return true;
            if (toks_[i].kind != TokenKind::Dedent) return false;
        }
        return true;
    }
    const Token& expect(TokenKind k) {
        if (!at(k)) {
            if (at(TokenKind::Indent)) fail_here();
            if ((k == TokenKind::RParen || k == TokenKind::RBracket || k == TokenKind::RBrace) &&
                can_start_expression(kind())) {
                fail(peek().pos, "invalid syntax. Perhaps you forgot a comma?");
            }
            fail(peek().pos, "expected " + token_kind_spelling(k));
        }
        return next();
    }
    std::string expect_name(const char* what = nullptr) {
        const Token& t = peek();
        if (t.kind == TokenKind::Name) return next().text;
        if (t.kind == TokenKind::KwMatch || t.kind == TokenKind::KwCase) {
            next();
            return t.kind == TokenKind::KwMatch ? "match" : "case";
        }
        if (is_concurrency_keyword(t.kind)) {
            fail(t.pos, token_kind_spelling(t.kind) + " is a reserved keyword");
        }
        if (t.kind == TokenKind::Indent) fail_here();
        fail(t.pos, what ? what : "invalid syntax");
    }

    struct DepthGuard {
        Parser& p;
        DepthGuard(Parser& parser, Pos pos) : p(parser) {
            if (++p.depth_ > kMaxDepth) p.fail(pos, "too deeply nested");
        }
        ~DepthGuard() { --p.depth_; }
    };

    // --- statements ---
    void parse_statement(Block& out);
    void parse_simple_line(Block& out);
    void parse_simple_stmt(Block& out);
    void parse_block(Block& out, const std::string& what, Pos header);
    void expect_colon();
    StmtPtr parse_if(bool is_elif);
    StmtPtr parse_while();
    StmtPtr parse_for();
    StmtPtr parse_try();
    StmtPtr parse_with();
    std::unique_ptr<FunctionDefStmt> parse_def(std::vector<ExprPtr> decorators);
    std::unique_ptr<StructDefStmt> parse_struct(std::vector<ExprPtr> decorators);
    StmtPtr parse_decorated();
    void parse_import(Block& out);
    StmtPtr parse_from_import();
    bool is_match_statement() const;
    StmtPtr parse_match();
    StmtPtr parse_select();
    StmtPtr parse_concurrent();
    StmtPtr parse_expression_statement();
    void parse_params(std::vector<Param>& params, TokenKind close, bool allow_annotations);

    // --- patterns ---
    PatternPtr parse_patterns();
    PatternPtr parse_as_pattern();
    PatternPtr parse_or_pattern();
    PatternPtr parse_closed_pattern();
    PatternPtr parse_star_or_pattern(bool& is_star, std::string& star_name);
    ExprPtr parse_pattern_literal_or_value(bool& is_singleton);
    PatternPtr finish_sequence_pattern(Pos p, TokenKind close);

    // --- expressions ---
    ExprPtr parse_star_expressions() { return ended(parse_star_expressions_impl()); }
    ExprPtr parse_star_expressions_impl();  // a, *b, c  (a tuple if there is a comma)
    ExprPtr parse_star_item() { return ended(parse_star_item_impl()); }
    ExprPtr parse_star_item_impl();
    ExprPtr parse_test() { return ended(parse_test_impl()); }
    ExprPtr parse_test_impl();
    ExprPtr parse_lambda() { return ended(parse_lambda_impl()); }
    ExprPtr parse_lambda_impl();
    ExprPtr parse_or() { return ended(parse_or_impl()); }
    ExprPtr parse_or_impl();
    ExprPtr parse_and() { return ended(parse_and_impl()); }
    ExprPtr parse_and_impl();
    ExprPtr parse_not() { return ended(parse_not_impl()); }
    ExprPtr parse_not_impl();
    ExprPtr parse_comparison() { return ended(parse_comparison_impl()); }
    ExprPtr parse_comparison_impl();
    ExprPtr parse_binary(int min_prec);
    ExprPtr parse_unary() { return ended(parse_unary_impl()); }
    ExprPtr parse_unary_impl();
    ExprPtr parse_power() { return ended(parse_power_impl()); }
    ExprPtr parse_power_impl();
    ExprPtr parse_primary() { return ended(parse_primary_impl()); }
    ExprPtr parse_primary_impl();
    ExprPtr parse_atom() { return ended(parse_atom_impl()); }
    ExprPtr parse_atom_impl();
    ExprPtr parse_paren() { return ended(parse_paren_impl()); }
    ExprPtr parse_paren_impl();
    ExprPtr parse_list_display() { return ended(parse_list_display_impl()); }
    ExprPtr parse_list_display_impl();
    ExprPtr parse_brace_display() { return ended(parse_brace_display_impl()); }
    ExprPtr parse_brace_display_impl();
    ExprPtr parse_strings() { return ended(parse_strings_impl()); }
    ExprPtr parse_strings_impl();
    ExprPtr parse_target_list();
    ExprPtr parse_subscript();
    ExprPtr parse_slice_item();
    void parse_call_args(CallExpr& call);
    void parse_comp_clauses(ComprehensionExpr& comp);
    bool can_start_expression(TokenKind k) const;

    // f-strings
    void parse_fstring_body(const std::string& body, Pos body_pos, bool raw, bool in_spec,
                            std::vector<FStringPart>& parts, Pos lit_pos);

    // --- checks ---
    void check_target(const Expr* e, bool top);
    void check_aug_target(const Expr* e);

    const std::vector<Token>& toks_;
    const std::string& path_;
    size_t pos_ = 0;
    int depth_ = 0;
};

bool is_reserved_name(const std::string& s) {
    return s == "race" || s == "select" || s == "sequential" || s == "concurrent";
}

// ---------------------------------------------------------------------------
// Target checks

const char* expr_description(const Expr* e) {
    switch (e->kind) {
        case ExprKind::Call:
            return "function call";
        case ExprKind::IntLit:
        case ExprKind::FloatLit:
        case ExprKind::StrLit:
        case ExprKind::BytesLit:
            return "literal";
        case ExprKind::NoneLit:
            return "None";
        case ExprKind::BoolLit:
            return e->as<BoolLitExpr>()->value ? "True" : "False";
        case ExprKind::FString:
            return "f-string expression";
        case ExprKind::Dict:
            return "dict literal";
        case ExprKind::Set:
            return "set display";
        case ExprKind::Comprehension:
            switch (e->as<ComprehensionExpr>()->comp_kind) {
                case CompKind::List:
                    return "list comprehension";
                case CompKind::Set:
                    return "set comprehension";
                case CompKind::Dict:
                    return "dict comprehension";
                case CompKind::Generator:
                    return "generator expression";
            }
            return "comprehension";
        case ExprKind::Lambda:
            return "lambda";
        case ExprKind::IfExp:
            return "conditional expression";
        case ExprKind::Compare:
            return "comparison";
        case ExprKind::Spawn:
            return "spawn expression";
        case ExprKind::Lazy:
            return "lazy expression";
        case ExprKind::Tuple:
            return "tuple";
        case ExprKind::List:
            return "list";
        case ExprKind::Slice:
            return "slice";
        default:
            return "expression";
    }
}

void Parser::check_target(const Expr* e, bool top) {
    switch (e->kind) {
        case ExprKind::Name: {
            const auto& n = e->as<NameExpr>()->name;
            if (is_reserved_name(n)) fail(e->pos, "'" + n + "' is a reserved keyword");
            return;
        }
        case ExprKind::Attribute:
        case ExprKind::Subscript:
            return;
        case ExprKind::Tuple:
        case ExprKind::List: {
            const auto& elts =
                e->kind == ExprKind::Tuple ? e->as<TupleExpr>()->elts : e->as<ListExpr>()->elts;
            int stars = 0;
            for (const auto& x : elts) {
                if (x->kind == ExprKind::Starred) {
                    if (++stars > 1) fail(x->pos, "multiple starred expressions in assignment");
                    const Expr* v = x->as<StarredExpr>()->value.get();
                    if (v->kind == ExprKind::Starred) fail(v->pos, "cannot assign to starred");
                    check_target(v, false);
                } else {
                    check_target(x.get(), false);
                }
            }
            return;
        }
        case ExprKind::Starred:
            if (top) fail(e->pos, "starred assignment target must be in a list or tuple");
            check_target(e->as<StarredExpr>()->value.get(), false);
            return;
        default:
            fail(e->pos, std::string("cannot assign to ") + expr_description(e));
    }
}

void Parser::check_aug_target(const Expr* e) {
    switch (e->kind) {
        case ExprKind::Name:
            check_target(e, true);
            return;
        case ExprKind::Attribute:
        case ExprKind::Subscript:
            return;
        default:
            fail(e->pos, std::string("'") + expr_description(e) +
                             "' is an illegal expression for augmented assignment");
    }
}

// Why a pattern always matches ("name capture 'x'", "wildcard"), or "" if it may fail.
std::string irrefutable_reason(const Pattern* p) {
    switch (p->kind) {
        case PatternKind::Capture:
            return "name capture '" + p->as<CapturePattern>()->name + "'";
        case PatternKind::Wildcard:
            return "wildcard";
        case PatternKind::As:
            return irrefutable_reason(p->as<AsPattern>()->pattern.get());
        case PatternKind::Or:
            for (const auto& alt : p->as<OrPattern>()->alternatives) {
                std::string why = irrefutable_reason(alt.get());
                if (!why.empty()) return why;
            }
            return "";
        default:
            return "";
    }
}

// ---------------------------------------------------------------------------
// Statements

std::unique_ptr<Module> Parser::parse_file() {
    auto mod = std::make_unique<Module>();
    while (!at(TokenKind::EndOfFile)) {
        if (accept(TokenKind::Newline)) continue;
        if (at(TokenKind::Dedent)) fail_here();
        parse_statement(mod->body);
    }
    if (!mod->body.empty() && mod->body[0]->kind == StmtKind::Expr) {
        const Expr* v = mod->body[0]->as<ExprStmt>()->value.get();
        if (v->kind == ExprKind::StrLit) mod->doc = v->as<StrLitExpr>()->value;
    }
    return mod;
}

void Parser::parse_statement(Block& out) {
    DepthGuard guard(*this, peek().pos);
    switch (kind()) {
        case TokenKind::KwIf:
            out.push_back(parse_if(false));
            return;
        case TokenKind::KwWhile:
            out.push_back(parse_while());
            return;
        case TokenKind::KwFor:
            out.push_back(parse_for());
            return;
        case TokenKind::KwTry:
            out.push_back(parse_try());
            return;
        case TokenKind::KwWith:
            out.push_back(parse_with());
            return;
        case TokenKind::KwDef:
            out.push_back(parse_def({}));
            return;
        case TokenKind::At:
            out.push_back(parse_decorated());
            return;
        case TokenKind::KwStruct:
        case TokenKind::KwActor:
        case TokenKind::KwAgent:
            if (kind(1) != TokenKind::Name) fail_here();
            out.push_back(parse_struct({}));
            return;
        case TokenKind::KwMatch:
            if (is_match_statement()) {
                out.push_back(parse_match());
                return;
            }
            break;
        case TokenKind::KwSpawn:
            if (kind(1) == TokenKind::Colon) {
                Pos p = next().pos;
                next();
                auto s = std::make_unique<SpawnBlockStmt>(p);
                parse_block(s->body, "'spawn' statement", p);
                out.push_back(std::move(s));
                return;
            }
            break;
        case TokenKind::KwConcurrent:
            if (kind(1) != TokenKind::Colon && kind(1) != TokenKind::LParen) fail_here();
            out.push_back(parse_concurrent());
            return;
        case TokenKind::KwRace:
            if (kind(1) == TokenKind::Colon) {
                Pos p = next().pos;
                next();
                auto s = std::make_unique<RaceStmt>(p);
                Block body;
                parse_block(body, "'race' statement", p);
                for (auto& st : body) {
                    s->branches.emplace_back();
                    s->branches.back().push_back(std::move(st));
                }
                out.push_back(std::move(s));
                return;
            }
            break;
        case TokenKind::KwSequential:
            if (kind(1) == TokenKind::Colon) {
                Pos p = next().pos;
                next();
                auto s = std::make_unique<SequentialStmt>(p);
                parse_block(s->body, "'sequential' statement", p);
                out.push_back(std::move(s));
                return;
            }
            break;
        case TokenKind::KwSelect:
            if (kind(1) == TokenKind::Colon) {
                out.push_back(parse_select());
                return;
            }
            break;
        case TokenKind::Indent:
            fail_here();
        default:
            break;
    }
    parse_simple_line(out);
}

void Parser::parse_simple_line(Block& out) {
    for (;;) {
        parse_simple_stmt(out);
        if (accept(TokenKind::Semicolon)) {
            if (at(TokenKind::Newline)) break;
            continue;
        }
        break;
    }
    if (!accept(TokenKind::Newline)) {
        if (at(TokenKind::EndOfFile)) return;
        fail_here();
    }
}

void Parser::parse_simple_stmt(Block& out) {
    const Token& t = peek();
    Pos p = t.pos;
    switch (t.kind) {
        case TokenKind::KwPass:
            next();
            out.push_back(std::make_unique<PassStmt>(p));
            return;
        case TokenKind::Ellipsis:
            // `...` / `…` as a whole statement is a placeholder, like `pass`.
            if (kind(1) == TokenKind::Newline || kind(1) == TokenKind::Semicolon ||
                kind(1) == TokenKind::EndOfFile) {
                next();
                out.push_back(std::make_unique<PassStmt>(p));
                return;
            }
            break;
        case TokenKind::KwBreak:
            next();
            out.push_back(std::make_unique<BreakStmt>(p));
            return;
        case TokenKind::KwContinue:
            next();
            out.push_back(std::make_unique<ContinueStmt>(p));
            return;
        case TokenKind::KwReturn: {
            next();
            auto s = std::make_unique<ReturnStmt>(p);
            if (can_start_expression(kind()) || at(TokenKind::Star)) {
                s->value = parse_star_expressions();
            }
            out.push_back(std::move(s));
            return;
        }
        case TokenKind::KwRaise: {
            next();
            auto s = std::make_unique<RaiseStmt>(p);
            if (can_start_expression(kind())) {
                s->exc = parse_test();
                if (accept(TokenKind::KwFrom)) s->cause = parse_test();
            }
            out.push_back(std::move(s));
            return;
        }
        case TokenKind::KwAssert: {
            next();
            auto s = std::make_unique<AssertStmt>(p);
            s->test = parse_test();
            if (accept(TokenKind::Comma)) s->msg = parse_test();
            out.push_back(std::move(s));
            return;
        }
        case TokenKind::KwImport:
            parse_import(out);
            return;
        case TokenKind::KwFrom:
            out.push_back(parse_from_import());
            return;
        case TokenKind::Name:
            // Python statements Weft leaves out: say why rather than "invalid syntax".
            if (kind(1) == TokenKind::Name) {
                if (t.text == "class")
                    fail(p, "'class' is not supported; define a 'struct' instead");
                if (t.text == "global" || t.text == "nonlocal") {
                    fail(p, "'" + t.text +
                                "' is not supported: closures capture values; use an atom for "
                                "shared state");
                }
                if (t.text == "del") fail(p, "'del' is not supported");
            }
            if (t.text == "yield" && kind(1) != TokenKind::Assign) {
                fail(p, "'yield' is not supported (no generators); build and return a list");
            }
            break;
        default:
            break;
    }
    out.push_back(parse_expression_statement());
}

StmtPtr Parser::parse_expression_statement() {
    Pos p = peek().pos;
    ExprPtr first = parse_star_expressions();
    TokenKind k = kind();
    if (k == TokenKind::Colon) {
        // Annotated assignment.
        if (first->kind == ExprKind::Tuple) {
            fail(first->pos, "only single target (not tuple) can be annotated");
        }
        if (first->kind == ExprKind::List) {
            fail(first->pos, "only single target (not list) can be annotated");
        }
        if (first->kind != ExprKind::Name && first->kind != ExprKind::Attribute &&
            first->kind != ExprKind::Subscript) {
            fail(first->pos, "illegal target for annotation");
        }
        check_target(first.get(), true);
        next();
        auto s = std::make_unique<AnnAssignStmt>(p);
        s->target = std::move(first);
        s->annotation = parse_test();
        if (accept(TokenKind::Assign)) s->value = parse_star_expressions();
        return s;
    }
    BinaryOp aug{};
    bool is_aug = true;
    switch (k) {
        case TokenKind::PlusEqual:
            aug = BinaryOp::Add;
            break;
        case TokenKind::MinusEqual:
            aug = BinaryOp::Sub;
            break;
        case TokenKind::StarEqual:
            aug = BinaryOp::Mul;
            break;
        case TokenKind::SlashEqual:
            aug = BinaryOp::Div;
            break;
        case TokenKind::DoubleSlashEqual:
            aug = BinaryOp::FloorDiv;
            break;
        case TokenKind::PercentEqual:
            aug = BinaryOp::Mod;
            break;
        case TokenKind::DoubleStarEqual:
            aug = BinaryOp::Pow;
            break;
        case TokenKind::AtEqual:
            aug = BinaryOp::MatMul;
            break;
        case TokenKind::AmpEqual:
            aug = BinaryOp::BitAnd;
            break;
        case TokenKind::PipeEqual:
            aug = BinaryOp::BitOr;
            break;
        case TokenKind::CaretEqual:
            aug = BinaryOp::BitXor;
            break;
        case TokenKind::LShiftEqual:
            aug = BinaryOp::Shl;
            break;
        case TokenKind::RShiftEqual:
            aug = BinaryOp::Shr;
            break;
        default:
            is_aug = false;
    }
    if (is_aug) {
        check_aug_target(first.get());
        next();
        auto s = std::make_unique<AugAssignStmt>(p);
        s->target = std::move(first);
        s->op = aug;
        s->value = parse_star_expressions();
        return s;
    }
    if (k == TokenKind::Assign) {
        auto s = std::make_unique<AssignStmt>(p);
        s->targets.push_back(std::move(first));
        while (accept(TokenKind::Assign)) {
            if (at(TokenKind::KwSpawn) && kind(1) == TokenKind::Colon) {
                fail(peek().pos, "a 'spawn:' block is a statement; use 'spawn f(...)' here");
            }
            s->targets.push_back(parse_star_expressions());
        }
        s->value = std::move(s->targets.back());
        s->targets.pop_back();
        for (const auto& t : s->targets)
            check_target(t.get(), true);
        if (s->value->kind == ExprKind::Starred) {
            fail(s->value->pos, "can't use starred expression here");
        }
        return s;
    }
    if (first->kind == ExprKind::Starred) fail(first->pos, "can't use starred expression here");
    return std::make_unique<ExprStmt>(p, std::move(first));
}

// The ':' ending a block header.
void Parser::expect_colon() {
    if (at(TokenKind::Assign)) {
        fail(peek().pos, "invalid syntax. Maybe you meant '==' instead of '='?");
    }
    if (!at(TokenKind::Colon)) fail(peek().pos, "expected ':'");
    next();
}

// Parses the body after a header's ':' (already consumed): an indented block, or simple
// statements on the same line.
void Parser::parse_block(Block& out, const std::string& what, Pos header) {
    DepthGuard guard(*this, peek().pos);
    if (!accept(TokenKind::Newline)) {
        if (at(TokenKind::EndOfFile)) {
            fail(peek().pos,
                 "expected an indented block after " + what + " on line " +
                     std::to_string(header.line),
                 true);
        }
        parse_simple_line(out);
        return;
    }
    if (!at(TokenKind::Indent)) {
        fail(peek().pos,
             "expected an indented block after " + what + " on line " + std::to_string(header.line),
             at_end_of_input());
    }
    next();
    while (!at(TokenKind::Dedent) && !at(TokenKind::EndOfFile)) {
        parse_statement(out);
    }
    accept(TokenKind::Dedent);
}

StmtPtr Parser::parse_if(bool is_elif) {
    DepthGuard guard(*this, peek().pos);  // elif chains nest IfStmts
    Pos p = next().pos;
    auto s = std::make_unique<IfStmt>(p);
    s->cond = parse_test();
    expect_colon();
    parse_block(s->body, is_elif ? "'elif' statement" : "'if' statement", p);
    if (at(TokenKind::KwElif)) {
        s->orelse.push_back(parse_if(true));
    } else if (at(TokenKind::KwElse)) {
        Pos ep = next().pos;
        expect_colon();
        parse_block(s->orelse, "'else' statement", ep);
    }
    return s;
}

StmtPtr Parser::parse_while() {
    Pos p = next().pos;
    auto s = std::make_unique<WhileStmt>(p);
    s->cond = parse_test();
    expect_colon();
    parse_block(s->body, "'while' statement", p);
    if (at(TokenKind::KwElse)) {
        Pos ep = next().pos;
        expect_colon();
        parse_block(s->orelse, "'else' statement", ep);
    }
    return s;
}

StmtPtr Parser::parse_for() {
    Pos p = next().pos;
    auto s = std::make_unique<ForStmt>(p);
    s->target = parse_target_list();
    if (!at(TokenKind::KwIn)) fail(peek().pos, "expected 'in'");
    next();
    s->iter = parse_star_expressions();
    expect_colon();
    parse_block(s->body, "'for' statement", p);
    if (at(TokenKind::KwElse)) {
        Pos ep = next().pos;
        expect_colon();
        parse_block(s->orelse, "'else' statement", ep);
    }
    return s;
}

StmtPtr Parser::parse_try() {
    Pos p = next().pos;
    auto s = std::make_unique<TryStmt>(p);
    expect_colon();
    parse_block(s->body, "'try' statement", p);
    bool saw_bare = false;
    while (at(TokenKind::KwExcept)) {
        ExceptHandler h;
        h.pos = next().pos;
        if (saw_bare) fail(h.pos, "default 'except:' must be last");
        if (!at(TokenKind::Colon)) {
            ExprPtr type = parse_test();
            if (at(TokenKind::Comma)) {
                fail(type->pos, "multiple exception types must be parenthesized");
            }
            if (type->kind == ExprKind::Tuple && type->as<TupleExpr>()->parenthesized) {
                for (auto& e : type->as<TupleExpr>()->elts)
                    h.types.push_back(std::move(e));
            } else {
                h.types.push_back(std::move(type));
            }
            if (accept(TokenKind::KwAs)) h.name = expect_name();
        } else {
            saw_bare = true;
        }
        expect_colon();
        parse_block(h.body, "'except' statement", h.pos);
        s->handlers.push_back(std::move(h));
    }
    if (at(TokenKind::KwElse)) {
        Pos ep = next().pos;
        if (s->handlers.empty()) fail(ep, "expected 'except' or 'finally' block");
        expect_colon();
        parse_block(s->orelse, "'else' statement", ep);
    }
    if (at(TokenKind::KwFinally)) {
        Pos fp = next().pos;
        expect_colon();
        parse_block(s->finalbody, "'finally' statement", fp);
    } else if (s->handlers.empty()) {
        fail(peek().pos, "expected 'except' or 'finally' block", at_end_of_input());
    }
    return s;
}

StmtPtr Parser::parse_with() {
    Pos p = next().pos;
    auto s = std::make_unique<WithStmt>(p);
    do {
        WithItem item;
        item.context = parse_test();
        if (accept(TokenKind::KwAs)) {
            item.target = parse_binary(0);  // one target; `as (a, b)` needs parentheses
            check_target(item.target.get(), true);
        }
        s->items.push_back(std::move(item));
    } while (accept(TokenKind::Comma));
    expect_colon();
    parse_block(s->body, "'with' statement", p);
    return s;
}

void Parser::parse_params(std::vector<Param>& params, TokenKind close, bool allow_annotations) {
    bool seen_default = false, seen_star = false, seen_kwargs = false;
    Pos bare_star_pos{};
    bool bare_star_pending = false;
    std::unordered_set<std::string> names;
    auto check_dup = [&](const std::string& name, Pos pos) {
        if (!names.insert(name).second) {
            fail(pos, "duplicate argument '" + name + "' in function definition");
        }
    };
    while (!at(close)) {
        if (seen_kwargs) fail(peek().pos, "arguments cannot follow var-keyword argument");
        Param prm;
        prm.pos = peek().pos;
        if (at(TokenKind::Slash)) fail(peek().pos, "positional-only parameters are not supported");
        if (accept(TokenKind::DoubleStar)) {
            prm.kind = ParamKind::KwArgs;
            prm.pos = peek().pos;
            prm.name = expect_name();
            seen_kwargs = true;
        } else if (accept(TokenKind::Star)) {
            if (seen_star) fail(prm.pos, "* argument may appear only once");
            seen_star = true;
            if (at(TokenKind::Comma) || at(close)) {
                bare_star_pending = true;
                bare_star_pos = prm.pos;
                if (at(close)) fail(prm.pos, "named arguments must follow bare *");
                next();
                continue;
            }
            prm.kind = ParamKind::VarArgs;
            prm.pos = peek().pos;
            prm.name = expect_name();
        } else {
            prm.name = expect_name();
            prm.keyword_only = seen_star;
            if (seen_star) bare_star_pending = false;
        }
        check_dup(prm.name, prm.pos);
        if (allow_annotations && accept(TokenKind::Colon)) prm.annotation = parse_test();
        if (at(TokenKind::Assign)) {
            if (prm.kind != ParamKind::Normal) {
                fail(peek().pos, prm.kind == ParamKind::VarArgs
                                     ? "var-positional argument cannot have default value"
                                     : "var-keyword argument cannot have default value");
            }
            next();
            prm.default_value = parse_test();
            if (!prm.keyword_only) seen_default = true;
        } else if (prm.kind == ParamKind::Normal && !prm.keyword_only && seen_default) {
            fail(prm.pos, "non-default argument follows default argument");
        }
        params.push_back(std::move(prm));
        if (!accept(TokenKind::Comma)) break;
    }
    if (bare_star_pending) fail(bare_star_pos, "named arguments must follow bare *");
    if (!at(close)) {
        if (close == TokenKind::Colon) fail(peek().pos, "expected ':'");
        fail(peek().pos, "expected ')'");
    }
}

std::unique_ptr<FunctionDefStmt> Parser::parse_def(std::vector<ExprPtr> decorators) {
    Pos p = next().pos;
    auto s = std::make_unique<FunctionDefStmt>(p);
    s->decorators = std::move(decorators);
    s->name = expect_name("expected a function name after 'def'");
    if (!at(TokenKind::LParen)) fail(peek().pos, "expected '('");
    next();
    parse_params(s->params, TokenKind::RParen, true);
    next();
    if (accept(TokenKind::Arrow)) s->returns = parse_test();
    expect_colon();
    parse_block(s->body, "function definition", p);
    if (!s->body.empty() && s->body[0]->kind == StmtKind::Expr) {
        const Expr* v = s->body[0]->as<ExprStmt>()->value.get();
        if (v->kind == ExprKind::StrLit) s->doc = v->as<StrLitExpr>()->value;
    }
    return s;
}

StmtPtr Parser::parse_decorated() {
    std::vector<ExprPtr> decorators;
    while (at(TokenKind::At)) {
        next();
        decorators.push_back(parse_test());
        if (!accept(TokenKind::Newline)) fail_here();
    }
    switch (kind()) {
        case TokenKind::KwDef:
            return parse_def(std::move(decorators));
        case TokenKind::KwStruct:
        case TokenKind::KwActor:
        case TokenKind::KwAgent:
            return parse_struct(std::move(decorators));
        default:
            fail(peek().pos, "expected a function or struct definition after a decorator",
                 at_end_of_input());
    }
}

std::unique_ptr<StructDefStmt> Parser::parse_struct(std::vector<ExprPtr> decorators) {
    const Token& kw = next();
    Pos p = kw.pos;
    bool is_struct = kw.kind == TokenKind::KwStruct;
    auto s =
        std::make_unique<StructDefStmt>(is_struct ? StmtKind::StructDef : StmtKind::ActorDef, p);
    s->is_agent = kw.kind == TokenKind::KwAgent;
    s->decorators = std::move(decorators);
    std::string what = is_struct     ? "struct definition"
                       : s->is_agent ? "agent definition"
                                     : "actor definition";
    s->name = expect_name(is_struct ? "expected a struct name" : "expected a name");
    if (accept(TokenKind::LParen)) {
        while (!at(TokenKind::RParen)) {
            s->bases.push_back(parse_test());
            if (!accept(TokenKind::Comma)) break;
        }
        expect(TokenKind::RParen);
    }
    expect_colon();
    // The body is parsed as an ordinary block, then sorted into fields and methods.
    Block body;
    parse_block(body, what, p);
    bool first = true;
    std::unordered_set<std::string> field_names;
    for (auto& st : body) {
        switch (st->kind) {
            case StmtKind::Expr: {
                const Expr* v = st->as<ExprStmt>()->value.get();
                if (first && v->kind == ExprKind::StrLit) {
                    s->doc = v->as<StrLitExpr>()->value;
                    break;
                }
                fail(st->pos, "expected a field or method definition in " +
                                  std::string(is_struct ? "struct" : "actor") + " body");
            }
            case StmtKind::Pass:
                break;
            case StmtKind::AnnAssign: {
                auto* a = st->as<AnnAssignStmt>();
                if (a->target->kind != ExprKind::Name) {
                    fail(a->target->pos, "a field must be a plain name");
                }
                FieldDecl f;
                f.name = a->target->as<NameExpr>()->name;
                f.annotation = std::move(a->annotation);
                f.default_value = std::move(a->value);
                f.pos = st->pos;
                if (!field_names.insert(f.name).second) {
                    fail(f.pos, "duplicate field '" + f.name + "'");
                }
                s->fields.push_back(std::move(f));
                break;
            }
            case StmtKind::Assign: {
                auto* a = st->as<AssignStmt>();
                if (a->targets.size() != 1 || a->targets[0]->kind != ExprKind::Name) {
                    fail(a->targets[0]->pos, "a field must be a plain name");
                }
                FieldDecl f;
                f.name = a->targets[0]->as<NameExpr>()->name;
                f.default_value = std::move(a->value);
                f.pos = st->pos;
                if (!field_names.insert(f.name).second) {
                    fail(f.pos, "duplicate field '" + f.name + "'");
                }
                s->fields.push_back(std::move(f));
                break;
            }
            case StmtKind::FunctionDef:
                s->methods.emplace_back(static_cast<FunctionDefStmt*>(st.release()));
                break;
            default:
                fail(st->pos, "expected a field or method definition in " +
                                  std::string(is_struct ? "struct" : "actor") + " body");
        }
        first = false;
    }
    return s;
}

void Parser::parse_import(Block& out) {
    next();  // import
    do {
        auto s = std::make_unique<ImportStmt>(peek().pos);
        if (at(TokenKind::String)) {
            s->module = next().text;
            s->is_path = true;
            if (!at(TokenKind::KwAs)) {
                fail(peek().pos,
                     "a path import needs a name: import \"" + s->module + "\" as name");
            }
        } else {
            s->module = expect_name("expected a module name after 'import'");
            while (accept(TokenKind::Dot)) {
                s->module += '.';
                s->module += expect_name();
            }
        }
        if (accept(TokenKind::KwAs)) s->alias = expect_name();
        out.push_back(std::move(s));
    } while (accept(TokenKind::Comma));
}

StmtPtr Parser::parse_from_import() {
    Pos p = next().pos;
    auto s = std::make_unique<ImportFromStmt>(p);
    if (at(TokenKind::String)) {
        s->module = next().text;
        s->is_path = true;
    } else if (at(TokenKind::Dot) || at(TokenKind::Ellipsis)) {
        fail(peek().pos, "relative imports are not supported; import a path string instead");
    } else {
        s->module = expect_name("expected a module name after 'from'");
        while (accept(TokenKind::Dot)) {
            s->module += '.';
            s->module += expect_name();
        }
    }
    if (!at(TokenKind::KwImport)) fail(peek().pos, "expected 'import'");
    next();
    if (at(TokenKind::Star)) {
        ImportName n;
        n.pos = next().pos;
        n.name = "*";
        s->names.push_back(std::move(n));
        return s;
    }
    bool paren = accept(TokenKind::LParen);
    do {
        if (paren && at(TokenKind::RParen)) break;
        ImportName n;
        n.pos = peek().pos;
        n.name = expect_name("expected a name to import");
        if (accept(TokenKind::KwAs)) n.alias = expect_name();
        s->names.push_back(std::move(n));
    } while (accept(TokenKind::Comma));
    if (paren) expect(TokenKind::RParen);
    if (s->names.empty()) fail(peek().pos, "expected a name to import");
    return s;
}

StmtPtr Parser::parse_concurrent() {
    Pos p = next().pos;
    auto s = std::make_unique<ConcurrentStmt>(p);
    if (accept(TokenKind::LParen)) {
        CallExpr tmp(p);
        parse_call_args(tmp);
        expect(TokenKind::RParen);
        if (!tmp.args.empty()) {
            fail(tmp.args[0]->pos, "'concurrent' options must be keyword arguments");
        }
        s->options = std::move(tmp.keywords);
    }
    expect_colon();
    parse_block(s->body, "'concurrent' statement", p);
    return s;
}

StmtPtr Parser::parse_select() {
    Pos p = next().pos;
    next();  // ':'
    auto s = std::make_unique<SelectStmt>(p);
    if (!accept(TokenKind::Newline) || !at(TokenKind::Indent)) {
        fail(
            peek().pos,
            "expected an indented block after 'select' statement on line " + std::to_string(p.line),
            at_end_of_input());
    }
    next();
    bool seen_default = false;
    while (!at(TokenKind::Dedent) && !at(TokenKind::EndOfFile)) {
        SelectCase c;
        c.pos = peek().pos;
        if (at(TokenKind::Name) && peek().text == "default" && kind(1) == TokenKind::Colon) {
            if (seen_default) fail(c.pos, "a 'select' may have only one 'default' case");
            seen_default = true;
            next();
            next();
            c.case_kind = SelectCaseKind::Default;
            parse_block(c.body, "'default' statement", c.pos);
            s->cases.push_back(std::move(c));
            continue;
        }
        if (!at(TokenKind::KwCase)) fail(peek().pos, "expected 'case' or 'default' in 'select'");
        next();
        ExprPtr e = parse_star_expressions();
        const char* bad = "a select case must be 'v = ch.recv()', 'ch.send(x)' or 'after(t)'";
        if (accept(TokenKind::Assign)) {
            if (e->kind == ExprKind::Tuple) {
                auto& elts = e->as<TupleExpr>()->elts;
                if (elts.size() != 2) fail(e->pos, bad);
                check_target(elts[0].get(), true);
                check_target(elts[1].get(), true);
                c.target = std::move(elts[0]);
                c.ok_target = std::move(elts[1]);
            } else {
                check_target(e.get(), true);
                c.target = std::move(e);
            }
            e = parse_test();
            if (e->kind != ExprKind::Call) fail(e->pos, bad);
            auto* call = e->as<CallExpr>();
            if (call->func->kind != ExprKind::Attribute ||
                call->func->as<AttributeExpr>()->name != "recv") {
                fail(e->pos, bad);
            }
            c.case_kind = SelectCaseKind::Recv;
            c.channel = std::move(call->func->as<AttributeExpr>()->object);
        } else {
            if (e->kind != ExprKind::Call) fail(e->pos, bad);
            auto* call = e->as<CallExpr>();
            if (call->func->kind == ExprKind::Attribute &&
                call->func->as<AttributeExpr>()->name == "recv") {
                c.case_kind = SelectCaseKind::Recv;
                c.channel = std::move(call->func->as<AttributeExpr>()->object);
            } else if (call->func->kind == ExprKind::Attribute &&
                       call->func->as<AttributeExpr>()->name == "send") {
                if (call->args.size() != 1 || !call->keywords.empty()) {
                    fail(e->pos, "'send' in a select case takes exactly one value");
                }
                c.case_kind = SelectCaseKind::Send;
                c.channel = std::move(call->func->as<AttributeExpr>()->object);
                c.value = std::move(call->args[0]);
            } else if (call->func->kind == ExprKind::Name &&
                       call->func->as<NameExpr>()->name == "after") {
                if (call->args.size() != 1 || !call->keywords.empty()) {
                    fail(e->pos, "'after' in a select case takes exactly one duration");
                }
                c.case_kind = SelectCaseKind::After;
                c.value = std::move(call->args[0]);
            } else {
                fail(e->pos, bad);
            }
        }
        expect_colon();
        parse_block(c.body, "'case' statement", c.pos);
        s->cases.push_back(std::move(c));
    }
    accept(TokenKind::Dedent);
    return s;
}

// `match` is a soft keyword: it starts a match statement only when the logical line ends
// with ':' and the next token does not make it an ordinary name (`match = 1`, `match.x`).
bool Parser::is_match_statement() const {
    switch (kind(1)) {
        case TokenKind::Assign:
        case TokenKind::Dot:
        case TokenKind::Colon:
        case TokenKind::Newline:
        case TokenKind::Comma:
        case TokenKind::RParen:
        case TokenKind::PlusEqual:
        case TokenKind::MinusEqual:
        case TokenKind::StarEqual:
        case TokenKind::SlashEqual:
        case TokenKind::DoubleSlashEqual:
        case TokenKind::PercentEqual:
        case TokenKind::DoubleStarEqual:
        case TokenKind::AtEqual:
        case TokenKind::AmpEqual:
        case TokenKind::PipeEqual:
        case TokenKind::CaretEqual:
        case TokenKind::LShiftEqual:
        case TokenKind::RShiftEqual:
        case TokenKind::EndOfFile:
            return false;
        default:
            break;
    }
    for (size_t i = pos_ + 1; i < toks_.size(); ++i) {
        TokenKind k = toks_[i].kind;
        if (k == TokenKind::Newline || k == TokenKind::EndOfFile) {
            return toks_[i - 1].kind == TokenKind::Colon;
        }
    }
    return false;
}

StmtPtr Parser::parse_match() {
    Pos p = next().pos;
    auto s = std::make_unique<MatchStmt>(p);
    s->subject = parse_star_expressions();
    expect_colon();
    if (!accept(TokenKind::Newline) || !at(TokenKind::Indent)) {
        fail(peek().pos,
             "expected an indented block after 'match' statement on line " + std::to_string(p.line),
             at_end_of_input());
    }
    next();
    while (!at(TokenKind::Dedent) && !at(TokenKind::EndOfFile)) {
        if (!at(TokenKind::KwCase)) fail_here("expected 'case' in 'match' statement");
        // As in Python, an unguarded irrefutable case must be the last one.
        if (!s->cases.empty() && !s->cases.back().guard) {
            const Pattern* prev = s->cases.back().pattern.get();
            if (std::string why = irrefutable_reason(prev); !why.empty()) {
                fail(prev->pos, why + " makes remaining patterns unreachable");
            }
        }
        MatchCase c;
        c.pos = next().pos;
        c.pattern = parse_patterns();
        if (accept(TokenKind::KwIf)) c.guard = parse_test();
        expect_colon();
        parse_block(c.body, "'case' statement", c.pos);
        s->cases.push_back(std::move(c));
    }
    accept(TokenKind::Dedent);
    return s;
}

// ---------------------------------------------------------------------------
// Patterns

// Top level of a case: `a, b` is an (open) sequence pattern.
PatternPtr Parser::parse_patterns() {
    Pos p = peek().pos;
    bool is_star = false;
    std::string star_name;
    PatternPtr first = parse_star_or_pattern(is_star, star_name);
    if (!at(TokenKind::Comma) && !is_star) return first;
    auto seq = std::make_unique<SequencePattern>(p);
    if (is_star) {
        seq->star_index = 0;
        seq->star_name = star_name;
    }
    seq->patterns.push_back(std::move(first));
    while (accept(TokenKind::Comma)) {
        if (at(TokenKind::Colon) || at(TokenKind::KwIf)) break;
        Pos ip = peek().pos;
        PatternPtr item = parse_star_or_pattern(is_star, star_name);
        if (is_star) {
            if (seq->star_index >= 0) fail(ip, "multiple starred names in sequence pattern");
            seq->star_index = static_cast<int>(seq->patterns.size());
            seq->star_name = star_name;
        }
        seq->patterns.push_back(std::move(item));
    }
    return seq;
}

PatternPtr Parser::parse_star_or_pattern(bool& is_star, std::string& star_name) {
    is_star = false;
    if (at(TokenKind::Star)) {
        next();
        Pos p = peek().pos;
        std::string name = expect_name("expected a name after '*' in a pattern");
        is_star = true;
        if (name == "_") {
            star_name.clear();
            return std::make_unique<WildcardPattern>(p);
        }
        star_name = name;
        return std::make_unique<CapturePattern>(p, name);
    }
    return parse_as_pattern();
}

PatternPtr Parser::parse_as_pattern() {
    DepthGuard guard(*this, peek().pos);
    Pos p = peek().pos;
    PatternPtr pat = parse_or_pattern();
    while (accept(TokenKind::KwAs)) {
        Pos np = peek().pos;
        std::string name = expect_name("invalid pattern target");
        if (name == "_") fail(np, "cannot use '_' as a target");
        pat = std::make_unique<AsPattern>(p, std::move(pat), name);
    }
    return pat;
}

PatternPtr Parser::parse_or_pattern() {
    Pos p = peek().pos;
    PatternPtr first = parse_closed_pattern();
    if (!at(TokenKind::Pipe)) return first;
    auto o = std::make_unique<OrPattern>(p);
    o->alternatives.push_back(std::move(first));
    while (accept(TokenKind::Pipe))
        o->alternatives.push_back(parse_closed_pattern());
    return o;
}

// A literal (with optional leading '-'), None/True/False, or a dotted name with a dot.
ExprPtr Parser::parse_pattern_literal_or_value(bool& is_singleton) {
    is_singleton = false;
    const Token& t = peek();
    Pos p = t.pos;
    switch (t.kind) {
        case TokenKind::KwNone:
            next();
            is_singleton = true;
            return std::make_unique<NoneLitExpr>(p);
        case TokenKind::KwTrue:
        case TokenKind::KwFalse:
            next();
            is_singleton = true;
            return std::make_unique<BoolLitExpr>(p, t.kind == TokenKind::KwTrue);
        case TokenKind::String:
        case TokenKind::Bytes:
            return parse_strings();
        case TokenKind::FString:
            fail(p, "patterns may only match literals and attribute lookups");
        case TokenKind::Minus: {
            next();
            const Token& n = peek();
            if (n.kind == TokenKind::Int) {
                next();
                return std::make_unique<IntLitExpr>(
                    p, n.int_is_min_magnitude ? INT64_MIN : -n.int_value);
            }
            if (n.kind == TokenKind::Float || n.kind == TokenKind::Duration) {
                next();
                auto f = std::make_unique<FloatLitExpr>(p, -n.float_value);
                f->is_duration = n.kind == TokenKind::Duration;
                return f;
            }
            fail(n.pos, "expected a number after '-' in a pattern");
        }
        case TokenKind::Int:
            next();
            if (t.int_is_min_magnitude) fail(p, "integer literal too large");
            return std::make_unique<IntLitExpr>(p, t.int_value);
        case TokenKind::Float:
        case TokenKind::Duration: {
            next();
            auto f = std::make_unique<FloatLitExpr>(p, t.float_value);
            f->is_duration = t.kind == TokenKind::Duration;
            return f;
        }
        default:
            return nullptr;
    }
}

PatternPtr Parser::finish_sequence_pattern(Pos p, TokenKind close) {
    auto seq = std::make_unique<SequencePattern>(p);
    while (!at(close)) {
        bool is_star;
        std::string star_name;
        Pos ip = peek().pos;
        PatternPtr item = parse_star_or_pattern(is_star, star_name);
        if (is_star) {
            if (seq->star_index >= 0) fail(ip, "multiple starred names in sequence pattern");
            seq->star_index = static_cast<int>(seq->patterns.size());
            seq->star_name = star_name;
        }
        seq->patterns.push_back(std::move(item));
        if (!accept(TokenKind::Comma)) break;
    }
    expect(close);
    return seq;
}

PatternPtr Parser::parse_closed_pattern() {
    DepthGuard guard(*this, peek().pos);
    const Token& t = peek();
    Pos p = t.pos;
    bool singleton = false;
    if (ExprPtr lit = parse_pattern_literal_or_value(singleton)) {
        if (singleton) return std::make_unique<SingletonPattern>(p, std::move(lit));
        return std::make_unique<ValuePattern>(p, std::move(lit));
    }
    switch (t.kind) {
        case TokenKind::Name:
        case TokenKind::KwMatch:
        case TokenKind::KwCase: {
            std::string name = expect_name();
            if (!at(TokenKind::Dot) && !at(TokenKind::LParen)) {
                if (name == "_") return std::make_unique<WildcardPattern>(p);
                return std::make_unique<CapturePattern>(p, name);
            }
            ExprPtr value = std::make_unique<NameExpr>(p, name);
            while (accept(TokenKind::Dot)) {
                Pos ap = peek().pos;
                (void)ap;
                value = std::make_unique<AttributeExpr>(p, std::move(value), expect_name());
            }
            if (!accept(TokenKind::LParen))
                return std::make_unique<ValuePattern>(p, std::move(value));
            auto cp = std::make_unique<ClassPattern>(p);
            cp->cls = std::move(value);
            std::unordered_set<std::string> kw_seen;
            while (!at(TokenKind::RParen)) {
                if ((at(TokenKind::Name) || at(TokenKind::KwMatch) || at(TokenKind::KwCase)) &&
                    kind(1) == TokenKind::Assign) {
                    Pos kp = peek().pos;
                    std::string kw = expect_name();
                    next();
                    if (!kw_seen.insert(kw).second) {
                        fail(kp, "attribute name repeated in class pattern: " + kw);
                    }
                    cp->kw_names.push_back(kw);
                    cp->kw_patterns.push_back(parse_as_pattern());
                } else {
                    Pos pp = peek().pos;
                    PatternPtr sub = parse_as_pattern();
                    if (!cp->kw_names.empty()) {
                        fail(pp, "positional patterns follow keyword patterns");
                    }
                    cp->positional.push_back(std::move(sub));
                }
                if (!accept(TokenKind::Comma)) break;
            }
            expect(TokenKind::RParen);
            return cp;
        }
        case TokenKind::LBracket:
            next();
            return finish_sequence_pattern(p, TokenKind::RBracket);
        case TokenKind::LParen: {
            next();
            if (accept(TokenKind::RParen)) return std::make_unique<SequencePattern>(p);
            bool is_star;
            std::string star_name;
            PatternPtr first = parse_star_or_pattern(is_star, star_name);
            if (!is_star && accept(TokenKind::RParen)) return first;  // a group
            auto seq = std::make_unique<SequencePattern>(p);
            if (is_star) {
                seq->star_index = 0;
                seq->star_name = star_name;
            }
            seq->patterns.push_back(std::move(first));
            if (accept(TokenKind::Comma)) {
                while (!at(TokenKind::RParen)) {
                    Pos ip = peek().pos;
                    PatternPtr item = parse_star_or_pattern(is_star, star_name);
                    if (is_star) {
                        if (seq->star_index >= 0) {
                            fail(ip, "multiple starred names in sequence pattern");
                        }
                        seq->star_index = static_cast<int>(seq->patterns.size());
                        seq->star_name = star_name;
                    }
                    seq->patterns.push_back(std::move(item));
                    if (!accept(TokenKind::Comma)) break;
                }
            }
            expect(TokenKind::RParen);
            return seq;
        }
        case TokenKind::LBrace: {
            next();
            auto mp = std::make_unique<MappingPattern>(p);
            while (!at(TokenKind::RBrace)) {
                if (accept(TokenKind::DoubleStar)) {
                    Pos rp = peek().pos;
                    mp->rest = expect_name("expected a name after '**'");
                    if (mp->rest == "_") fail(rp, "cannot use '_' as a target");
                    accept(TokenKind::Comma);
                    if (!at(TokenKind::RBrace)) {
                        fail(peek().pos, "'**' pattern must be last in a mapping pattern");
                    }
                    break;
                }
                Pos kp = peek().pos;
                bool single;
                ExprPtr key = parse_pattern_literal_or_value(single);
                if (!key) {
                    if (at(TokenKind::Name)) {
                        ExprPtr value = std::make_unique<NameExpr>(kp, next().text);
                        if (!at(TokenKind::Dot)) {
                            fail(kp,
                                 "mapping pattern keys may only match literals and attribute "
                                 "lookups");
                        }
                        while (accept(TokenKind::Dot)) {
                            value = std::make_unique<AttributeExpr>(kp, std::move(value),
                                                                    expect_name());
                        }
                        key = std::move(value);
                    } else {
                        fail(kp, "invalid mapping pattern key");
                    }
                }
                expect(TokenKind::Colon);
                mp->keys.push_back(std::move(key));
                mp->patterns.push_back(parse_as_pattern());
                if (!accept(TokenKind::Comma)) break;
            }
            expect(TokenKind::RBrace);
            return mp;
        }
        default:
            fail_here("invalid pattern");
    }
}

// ---------------------------------------------------------------------------
// Expressions

bool Parser::can_start_expression(TokenKind k) const {
    switch (k) {
        case TokenKind::Name:
        case TokenKind::Int:
        case TokenKind::Float:
        case TokenKind::Duration:
        case TokenKind::String:
        case TokenKind::Bytes:
        case TokenKind::FString:
        case TokenKind::LParen:
        case TokenKind::LBracket:
        case TokenKind::LBrace:
        case TokenKind::Minus:
        case TokenKind::Plus:
        case TokenKind::Tilde:
        case TokenKind::KwNot:
        case TokenKind::KwLambda:
        case TokenKind::KwNone:
        case TokenKind::KwTrue:
        case TokenKind::KwFalse:
        case TokenKind::KwSpawn:
        case TokenKind::KwLazy:
        case TokenKind::KwMatch:
        case TokenKind::KwCase:
        case TokenKind::KwRace:
        case TokenKind::KwSelect:
        case TokenKind::KwSequential:
            return true;
        default:
            return false;
    }
}

ExprPtr Parser::parse_star_item_impl() {
    if (at(TokenKind::Star)) {
        Pos p = next().pos;
        return std::make_unique<StarredExpr>(p, parse_binary(0));
    }
    return parse_test();
}

ExprPtr Parser::parse_star_expressions_impl() {
    Pos p = peek().pos;
    ExprPtr first = parse_star_item();
    if (!at(TokenKind::Comma)) return first;
    auto t = std::make_unique<TupleExpr>(p);
    t->elts.push_back(std::move(first));
    while (accept(TokenKind::Comma)) {
        if (!can_start_expression(kind()) && !at(TokenKind::Star)) break;
        t->elts.push_back(parse_star_item());
    }
    return t;
}

// Assignment targets for `for`, comprehensions and `with ... as`: stops before `in`.
ExprPtr Parser::parse_target_list() {
    Pos p = peek().pos;
    auto item = [&]() -> ExprPtr {
        if (at(TokenKind::Star)) {
            Pos sp = next().pos;
            return std::make_unique<StarredExpr>(sp, parse_binary(0));
        }
        return parse_binary(0);
    };
    ExprPtr first = item();
    if (at(TokenKind::Comma)) {
        auto t = std::make_unique<TupleExpr>(p);
        t->elts.push_back(std::move(first));
        while (accept(TokenKind::Comma)) {
            if (!can_start_expression(kind()) && !at(TokenKind::Star)) break;
            t->elts.push_back(item());
        }
        first = std::move(t);
    }
    check_target(first.get(), true);
    return first;
}

ExprPtr Parser::parse_test_impl() {
    DepthGuard guard(*this, peek().pos);
    if (at(TokenKind::KwLambda)) return parse_lambda();
    Pos p = peek().pos;
    ExprPtr e = parse_or();
    if (at(TokenKind::KwIf)) {
        next();
        auto ie = std::make_unique<IfExpExpr>(p);
        ie->then_value = std::move(e);
        ie->cond = parse_or();
        if (!at(TokenKind::KwElse)) fail(peek().pos, "expected 'else' after 'if' expression");
        next();
        ie->else_value = parse_test();
        return ie;
    }
    return e;
}

ExprPtr Parser::parse_lambda_impl() {
    Pos p = next().pos;
    auto l = std::make_unique<LambdaExpr>(p);
    parse_params(l->params, TokenKind::Colon, false);
    next();
    l->body = parse_test();
    return l;
}

ExprPtr Parser::parse_or_impl() {
    Pos p = peek().pos;
    ExprPtr e = parse_and();
    if (!at(TokenKind::KwOr)) return e;
    auto b = std::make_unique<BoolOpExpr>(p, false);
    b->values.push_back(std::move(e));
    while (accept(TokenKind::KwOr))
        b->values.push_back(parse_and());
    return b;
}

ExprPtr Parser::parse_and_impl() {
    Pos p = peek().pos;
    ExprPtr e = parse_not();
    if (!at(TokenKind::KwAnd)) return e;
    auto b = std::make_unique<BoolOpExpr>(p, true);
    b->values.push_back(std::move(e));
    while (accept(TokenKind::KwAnd))
        b->values.push_back(parse_not());
    return b;
}

ExprPtr Parser::parse_not_impl() {
    if (at(TokenKind::KwNot)) {
        DepthGuard guard(*this, peek().pos);
        Pos p = next().pos;
        return std::make_unique<UnaryExpr>(p, UnaryOp::Not, parse_not());
    }
    return parse_comparison();
}

ExprPtr Parser::parse_comparison_impl() {
    Pos p = peek().pos;
    ExprPtr left = parse_binary(0);
    std::unique_ptr<CompareExpr> cmp;
    for (;;) {
        CmpOp op;
        switch (kind()) {
            case TokenKind::EqEqual:
                op = CmpOp::Eq;
                next();
                break;
            case TokenKind::NotEqual:
                op = CmpOp::Ne;
                next();
                break;
            case TokenKind::Less:
                op = CmpOp::Lt;
                next();
                break;
            case TokenKind::LessEqual:
                op = CmpOp::Le;
                next();
                break;
            case TokenKind::Greater:
                op = CmpOp::Gt;
                next();
                break;
            case TokenKind::GreaterEqual:
                op = CmpOp::Ge;
                next();
                break;
            case TokenKind::KwIn:
                op = CmpOp::In;
                next();
                break;
            case TokenKind::KwNot:
                if (kind(1) != TokenKind::KwIn) goto done;
                next();
                next();
                op = CmpOp::NotIn;
                break;
            case TokenKind::KwIs:
                next();
                op = accept(TokenKind::KwNot) ? CmpOp::IsNot : CmpOp::Is;
                break;
            default:
                goto done;
        }
        if (!cmp) {
            cmp = std::make_unique<CompareExpr>(p);
            cmp->left = std::move(left);
        }
        cmp->ops.push_back(op);
        cmp->comparators.push_back(parse_binary(0));
    }
done:
    if (cmp) return cmp;
    return left;
}

// Precedence of the binary operators handled by precedence climbing (higher binds tighter).
int binary_precedence(TokenKind k, BinaryOp& op) {
    switch (k) {
        case TokenKind::Pipe:
            op = BinaryOp::BitOr;
            return 1;
        case TokenKind::Caret:
            op = BinaryOp::BitXor;
            return 2;
        case TokenKind::Amp:
            op = BinaryOp::BitAnd;
            return 3;
        case TokenKind::LShift:
            op = BinaryOp::Shl;
            return 4;
        case TokenKind::RShift:
            op = BinaryOp::Shr;
            return 4;
        case TokenKind::Plus:
            op = BinaryOp::Add;
            return 5;
        case TokenKind::Minus:
            op = BinaryOp::Sub;
            return 5;
        case TokenKind::Star:
            op = BinaryOp::Mul;
            return 6;
        case TokenKind::Slash:
            op = BinaryOp::Div;
            return 6;
        case TokenKind::DoubleSlash:
            op = BinaryOp::FloorDiv;
            return 6;
        case TokenKind::Percent:
            op = BinaryOp::Mod;
            return 6;
        case TokenKind::At:
            op = BinaryOp::MatMul;
            return 6;
        default:
            return -1;
    }
}

ExprPtr Parser::parse_binary(int min_prec) {
    Pos p = peek().pos;
    ExprPtr left = parse_unary();
    // Each link of a left-leaning chain (a + b + c ...) deepens the tree by one; count it like
    // nesting so every consumer's recursion over the tree stays bounded.
    int links = 0;
    for (;;) {
        BinaryOp op;
        int prec = binary_precedence(kind(), op);
        if (prec < 0 || prec < min_prec) {
            depth_ -= links;
            return left;
        }
        if (++depth_ > kMaxDepth) fail(peek().pos, "too deeply nested");
        ++links;
        next();
        ExprPtr right = parse_binary(prec + 1);
        left = std::make_unique<BinaryExpr>(p, op, std::move(left), std::move(right));
        left->end = prev_end();
    }
}

ExprPtr Parser::parse_unary_impl() {
    DepthGuard guard(*this, peek().pos);
    Pos p = peek().pos;
    UnaryOp op;
    switch (kind()) {
        case TokenKind::Minus:
            op = UnaryOp::Neg;
            break;
        case TokenKind::Plus:
            op = UnaryOp::Pos;
            break;
        case TokenKind::Tilde:
            op = UnaryOp::Invert;
            break;
        default:
            return parse_power();
    }
    next();
    // -9223372036854775808 is the one literal whose magnitude does not fit in int64.
    if (op == UnaryOp::Neg && at(TokenKind::Int) && peek().int_is_min_magnitude &&
        kind(1) != TokenKind::DoubleStar && kind(1) != TokenKind::Dot &&
        kind(1) != TokenKind::LBracket && kind(1) != TokenKind::LParen) {
        next();
        return std::make_unique<IntLitExpr>(p, INT64_MIN);
    }
    return std::make_unique<UnaryExpr>(p, op, parse_unary());
}

ExprPtr Parser::parse_power_impl() {
    Pos p = peek().pos;
    ExprPtr base = parse_primary();
    if (at(TokenKind::DoubleStar)) {
        next();
        ExprPtr exp = parse_unary();
        return std::make_unique<BinaryExpr>(p, BinaryOp::Pow, std::move(base), std::move(exp));
    }
    return base;
}

ExprPtr Parser::parse_primary_impl() {
    Pos p = peek().pos;
    ExprPtr e = parse_atom();
    int links = 0;  // trailers deepen the tree like nesting (see parse_binary)
    for (;;) {
        TokenKind k = kind();
        if (k == TokenKind::Dot || k == TokenKind::LParen || k == TokenKind::LBracket) {
            if (++depth_ > kMaxDepth) fail(peek().pos, "too deeply nested");
            ++links;
        }
        switch (k) {
            case TokenKind::Dot: {
                next();
                const Token& t = peek();
                std::string name;
                // Keywords are fine as attribute names (`Counter.spawn(...)`).
                if (t.kind == TokenKind::Name) {
                    name = t.text;
                } else if (t.kind >= TokenKind::KwAnd && t.kind <= TokenKind::KwFalse) {
                    name = token_kind_spelling(t.kind);
                    name = name.substr(1, name.size() - 2);
                } else {
                    fail(t.pos, "expected an attribute name after '.'");
                }
                next();
                e = std::make_unique<AttributeExpr>(p, std::move(e), std::move(name));
                e->end = prev_end();
                break;
            }
            case TokenKind::LParen: {
                next();
                auto call = std::make_unique<CallExpr>(p);
                call->func = std::move(e);
                parse_call_args(*call);
                expect(TokenKind::RParen);
                e = std::move(call);
                e->end = prev_end();
                break;
            }
            case TokenKind::LBracket: {
                next();
                ExprPtr index = parse_subscript();
                expect(TokenKind::RBracket);
                e = std::make_unique<SubscriptExpr>(p, std::move(e), std::move(index));
                e->end = prev_end();
                break;
            }
            default:
                depth_ -= links;
                return e;
        }
    }
}

void Parser::parse_call_args(CallExpr& call) {
    bool seen_keyword = false, seen_kwunpack = false;
    std::unordered_set<std::string> seen_names;
    while (!at(TokenKind::RParen)) {
        Pos p = peek().pos;
        if (accept(TokenKind::Star)) {
            if (seen_kwunpack) {
                fail(p, "iterable argument unpacking follows keyword argument unpacking");
            }
            call.args.push_back(std::make_unique<StarredExpr>(p, parse_test()));
        } else if (accept(TokenKind::DoubleStar)) {
            seen_kwunpack = true;
            Keyword kw;
            kw.pos = p;
            kw.value = parse_test();
            call.keywords.push_back(std::move(kw));
        } else {
            ExprPtr e = parse_test();
            if (at(TokenKind::Assign)) {
                if (e->kind != ExprKind::Name) {
                    fail(e->pos, "expression cannot contain assignment, perhaps you meant \"==\"?");
                }
                next();
                Keyword kw;
                kw.pos = p;
                kw.name = e->as<NameExpr>()->name;
                if (!seen_names.insert(kw.name).second) {
                    fail(p, "keyword argument repeated: " + kw.name);
                }
                kw.value = parse_test();
                call.keywords.push_back(std::move(kw));
                seen_keyword = true;
            } else if (at(TokenKind::KwFor)) {
                auto comp = std::make_unique<ComprehensionExpr>(p, CompKind::Generator);
                comp->element = std::move(e);
                parse_comp_clauses(*comp);
                if (!call.args.empty() || !call.keywords.empty() || !at(TokenKind::RParen)) {
                    fail(p, "generator expression must be parenthesized");
                }
                call.args.push_back(std::move(comp));
            } else {
                if (seen_kwunpack) {
                    fail(e->pos, "positional argument follows keyword argument unpacking");
                }
                if (seen_keyword) fail(e->pos, "positional argument follows keyword argument");
                call.args.push_back(std::move(e));
            }
        }
        if (!accept(TokenKind::Comma)) break;
    }
}

ExprPtr Parser::parse_slice_item() {
    Pos p = peek().pos;
    ExprPtr lower;
    if (!at(TokenKind::Colon)) {
        lower = parse_test();
        if (!at(TokenKind::Colon)) return lower;
    }
    next();  // ':'
    auto s = std::make_unique<SliceExpr>(p);
    s->lower = std::move(lower);
    if (!at(TokenKind::Colon) && !at(TokenKind::Comma) && !at(TokenKind::RBracket)) {
        s->upper = parse_test();
    }
    if (accept(TokenKind::Colon)) {
        if (!at(TokenKind::Comma) && !at(TokenKind::RBracket)) s->step = parse_test();
    }
    return s;
}

ExprPtr Parser::parse_subscript() {
    Pos p = peek().pos;
    if (at(TokenKind::RBracket)) fail(peek().pos, "expected an index or slice");
    ExprPtr first = at(TokenKind::Star) ? parse_star_item() : parse_slice_item();
    if (!at(TokenKind::Comma)) return first;
    auto t = std::make_unique<TupleExpr>(p);
    t->elts.push_back(std::move(first));
    while (accept(TokenKind::Comma)) {
        if (at(TokenKind::RBracket)) break;
        t->elts.push_back(at(TokenKind::Star) ? parse_star_item() : parse_slice_item());
    }
    return t;
}

void Parser::parse_comp_clauses(ComprehensionExpr& comp) {
    while (at(TokenKind::KwFor)) {
        ComprehensionClause c;
        c.pos = next().pos;
        c.target = parse_target_list();
        if (!at(TokenKind::KwIn)) fail(peek().pos, "expected 'in'");
        next();
        c.iter = parse_or();
        while (at(TokenKind::KwIf)) {
            next();
            c.conditions.push_back(parse_or());
        }
        comp.clauses.push_back(std::move(c));
    }
}

ExprPtr Parser::parse_paren_impl() {
    Pos p = next().pos;
    if (accept(TokenKind::RParen)) {
        auto t = std::make_unique<TupleExpr>(p);
        t->parenthesized = true;
        return t;
    }
    ExprPtr first = parse_star_item();
    if (at(TokenKind::KwFor)) {
        if (first->kind == ExprKind::Starred) {
            fail(first->pos, "iterable unpacking cannot be used in comprehension");
        }
        auto comp = std::make_unique<ComprehensionExpr>(p, CompKind::Generator);
        comp->element = std::move(first);
        parse_comp_clauses(*comp);
        expect(TokenKind::RParen);
        return comp;
    }
    if (at(TokenKind::RParen)) {
        next();
        if (first->kind == ExprKind::Starred) fail(first->pos, "can't use starred expression here");
        if (first->kind == ExprKind::Tuple) first->as<TupleExpr>()->parenthesized = true;
        return first;
    }
    if (!at(TokenKind::Comma)) {
        if (at(TokenKind::Assign)) {
            fail(peek().pos, "invalid syntax. Maybe you meant '==' instead of '='?");
        }
        expect(TokenKind::RParen);  // throws: not at ")"
    }
    auto t = std::make_unique<TupleExpr>(p);
    t->parenthesized = true;
    t->elts.push_back(std::move(first));
    while (accept(TokenKind::Comma)) {
        if (at(TokenKind::RParen)) break;
        t->elts.push_back(parse_star_item());
    }
    expect(TokenKind::RParen);
    return t;
}

ExprPtr Parser::parse_list_display_impl() {
    Pos p = next().pos;
    auto l = std::make_unique<ListExpr>(p);
    if (accept(TokenKind::RBracket)) return l;
    ExprPtr first = parse_star_item();
    if (at(TokenKind::KwFor)) {
        if (first->kind == ExprKind::Starred) {
            fail(first->pos, "iterable unpacking cannot be used in comprehension");
        }
        auto comp = std::make_unique<ComprehensionExpr>(p, CompKind::List);
        comp->element = std::move(first);
        parse_comp_clauses(*comp);
        expect(TokenKind::RBracket);
        return comp;
    }
    l->elts.push_back(std::move(first));
    while (accept(TokenKind::Comma)) {
        if (at(TokenKind::RBracket)) break;
        l->elts.push_back(parse_star_item());
    }
    expect(TokenKind::RBracket);
    return l;
}

ExprPtr Parser::parse_brace_display_impl() {
    Pos p = next().pos;
    if (accept(TokenKind::RBrace)) return std::make_unique<DictExpr>(p);
    // Dict (first item `k: v` or `**d`) or set.
    {
        ExprPtr first_key, first_value;
        bool is_dict;
        if (accept(TokenKind::DoubleStar)) {
            first_value = parse_binary(0);
            is_dict = true;
        } else {
            first_key = parse_star_item();
            is_dict = at(TokenKind::Colon);
            if (is_dict) {
                if (first_key->kind == ExprKind::Starred) {
                    fail(first_key->pos, "cannot use a starred expression in a dictionary key");
                }
                next();
                first_value = parse_test();
            }
        }
        if (is_dict) {
            if (first_key && at(TokenKind::KwFor)) {
                auto comp = std::make_unique<ComprehensionExpr>(p, CompKind::Dict);
                comp->element = std::move(first_key);
                comp->value = std::move(first_value);
                parse_comp_clauses(*comp);
                expect(TokenKind::RBrace);
                return comp;
            }
            auto d = std::make_unique<DictExpr>(p);
            d->keys.push_back(std::move(first_key));
            d->values.push_back(std::move(first_value));
            while (accept(TokenKind::Comma)) {
                if (at(TokenKind::RBrace)) break;
                if (accept(TokenKind::DoubleStar)) {
                    d->keys.push_back(nullptr);
                    d->values.push_back(parse_binary(0));
                    continue;
                }
                d->keys.push_back(parse_test());
                if (!at(TokenKind::Colon)) fail(peek().pos, "expected ':'");
                next();
                d->values.push_back(parse_test());
            }
            if (at(TokenKind::KwFor)) {
                fail(peek().pos, "dict unpacking cannot be used in dict comprehension");
            }
            expect(TokenKind::RBrace);
            return d;
        }
        if (at(TokenKind::KwFor)) {
            if (first_key->kind == ExprKind::Starred) {
                fail(first_key->pos, "iterable unpacking cannot be used in comprehension");
            }
            auto comp = std::make_unique<ComprehensionExpr>(p, CompKind::Set);
            comp->element = std::move(first_key);
            parse_comp_clauses(*comp);
            expect(TokenKind::RBrace);
            return comp;
        }
        auto s = std::make_unique<SetExpr>(p);
        s->elts.push_back(std::move(first_key));
        while (accept(TokenKind::Comma)) {
            if (at(TokenKind::RBrace)) break;
            s->elts.push_back(parse_star_item());
        }
        expect(TokenKind::RBrace);
        return s;
    }
}

ExprPtr Parser::parse_atom_impl() {
    const Token& t = peek();
    Pos p = t.pos;
    switch (t.kind) {
        case TokenKind::Name:
            next();
            return std::make_unique<NameExpr>(p, t.text);
        case TokenKind::KwMatch:
            next();
            return std::make_unique<NameExpr>(p, "match");
        case TokenKind::KwCase:
            next();
            return std::make_unique<NameExpr>(p, "case");
        // race(...), select([...]) and @sequential are also builtins/decorators.
        case TokenKind::KwRace:
        case TokenKind::KwSelect:
            if (kind(1) == TokenKind::LParen) {
                next();
                return std::make_unique<NameExpr>(p,
                                                  t.kind == TokenKind::KwRace ? "race" : "select");
            }
            fail_here();
        case TokenKind::KwSequential:
            if (kind(1) == TokenKind::LParen || kind(1) == TokenKind::Newline) {
                next();
                return std::make_unique<NameExpr>(p, "sequential");
            }
            fail_here();
        case TokenKind::Int:
            next();
            if (t.int_is_min_magnitude) fail(p, "integer literal too large");
            return std::make_unique<IntLitExpr>(p, t.int_value);
        case TokenKind::Float:
            next();
            return std::make_unique<FloatLitExpr>(p, t.float_value);
        case TokenKind::Duration: {
            next();
            auto f = std::make_unique<FloatLitExpr>(p, t.float_value);
            f->is_duration = true;
            return f;
        }
        case TokenKind::String:
        case TokenKind::Bytes:
        case TokenKind::FString:
            return parse_strings();
        case TokenKind::KwNone:
            next();
            return std::make_unique<NoneLitExpr>(p);
        case TokenKind::KwTrue:
        case TokenKind::KwFalse:
            next();
            return std::make_unique<BoolLitExpr>(p, t.kind == TokenKind::KwTrue);
        case TokenKind::LParen:
            return parse_paren();
        case TokenKind::LBracket:
            return parse_list_display();
        case TokenKind::LBrace:
            return parse_brace_display();
        case TokenKind::KwSpawn: {
            if (!can_start_expression(kind(1))) fail_here();
            next();
            Pos cp = peek().pos;
            ExprPtr call = parse_primary();
            if (call->kind != ExprKind::Call) fail(cp, "expected a call after 'spawn'");
            return std::make_unique<SpawnExpr>(p, std::move(call));
        }
        case TokenKind::KwLazy: {
            if (!can_start_expression(kind(1))) fail_here();
            DepthGuard guard(*this, p);
            next();
            return std::make_unique<LazyExpr>(p, parse_test());
        }
        case TokenKind::Ellipsis:
            fail(p, "'...' is only allowed as a placeholder statement");
        default:
            fail_here();
    }
}

// Adjacent string literals: "a" 'b' -> one StrLit; with any f-string -> one FString.
ExprPtr Parser::parse_strings_impl() {
    Pos p = peek().pos;
    bool any_f = false, any_bytes = false, any_str = false;
    size_t start = pos_;
    while (at(TokenKind::String) || at(TokenKind::Bytes) || at(TokenKind::FString)) {
        const Token& t = next();
        if (t.kind == TokenKind::Bytes) {
            any_bytes = true;
        } else {
            any_str = true;
            if (t.kind == TokenKind::FString) any_f = true;
        }
        if (any_bytes && any_str) fail(t.pos, "cannot mix bytes and nonbytes literals");
    }
    size_t end = pos_;
    if (any_bytes) {
        std::string v;
        for (size_t i = start; i < end; ++i)
            v += toks_[i].text;
        return std::make_unique<BytesLitExpr>(p, std::move(v));
    }
    if (!any_f) {
        std::string v;
        for (size_t i = start; i < end; ++i)
            v += toks_[i].text;
        return std::make_unique<StrLitExpr>(p, std::move(v));
    }
    auto f = std::make_unique<FStringExpr>(p);
    for (size_t i = start; i < end; ++i) {
        const Token& t = toks_[i];
        if (t.kind == TokenKind::String) {
            if (t.text.empty()) continue;
            if (!f->parts.empty() && f->parts.back().is_literal) {
                f->parts.back().literal += t.text;
            } else {
                FStringPart part;
                part.literal = t.text;
                f->parts.push_back(std::move(part));
            }
        } else {
            parse_fstring_body(t.text, t.body_pos, t.raw, false, f->parts, t.pos);
        }
    }
    return f;
}

// Splits an f-string body (or a format spec, when in_spec) into parts. Literal text has its
// escapes decoded and `{{`/`}}` collapsed; each `{expr[!c][:spec]}` is parsed from a re-lexed
// substring whose tokens carry their true file positions.
void Parser::parse_fstring_body(const std::string& body, Pos body_pos, bool raw, bool in_spec,
                                std::vector<FStringPart>& parts, Pos lit_pos) {
    DepthGuard guard(*this, body_pos);
    uint32_t line = body_pos.line, col = body_pos.col;
    size_t i = 0;
    auto step = [&]() {
        char c = body[i++];
        if (c == '\n') {
            ++line;
            col = 1;
        } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
            ++col;
        }
    };
    std::string literal_raw;
    auto flush_literal = [&]() {
        if (literal_raw.empty()) return;
        std::string decoded;
        if (raw) {
            decoded = literal_raw;
        } else {
            std::string err;
            if (!decode_escapes(literal_raw, false, decoded, err)) fail(lit_pos, err);
        }
        literal_raw.clear();
        if (!parts.empty() && parts.back().is_literal) {
            parts.back().literal += decoded;
        } else {
            FStringPart part;
            part.literal = std::move(decoded);
            parts.push_back(std::move(part));
        }
    };
    while (i < body.size()) {
        char c = body[i];
        if (c == '\\' && !raw && i + 1 < body.size()) {
            // Keep escapes together so `\{` is not mistaken for a field (it stays literal).
            literal_raw += c;
            step();
            literal_raw += body[i];
            step();
            continue;
        }
        if (c == '}') {
            if (!in_spec && i + 1 < body.size() && body[i + 1] == '}') {
                literal_raw += '}';
                step();
                step();
                continue;
            }
            fail(Pos{line, col}, "f-string: single '}' is not allowed");
        }
        if (c != '{') {
            literal_raw += c;
            step();
            continue;
        }
        if (!in_spec && i + 1 < body.size() && body[i + 1] == '{') {
            literal_raw += '{';
            step();
            step();
            continue;
        }
        // A replacement field.
        flush_literal();
        Pos field_pos{line, col};
        step();  // '{'
        size_t expr_begin = i;
        Pos expr_pos{line, col};
        int depth = 0;
        char quote = 0;
        size_t expr_end = std::string::npos;
        while (i < body.size()) {
            char d = body[i];
            if (quote) {
                if (d == '\\' && i + 1 < body.size()) {
                    step();
                } else if (d == quote) {
                    quote = 0;
                }
                step();
                continue;
            }
            if (d == '\'' || d == '"') {
                quote = d;
            } else if (d == '(' || d == '[' || d == '{') {
                ++depth;
            } else if (d == ')' || d == ']' || (d == '}' && depth > 0)) {
                --depth;
            } else if (depth == 0 && (d == '}' || d == ':' ||
                                      (d == '!' && !(i + 1 < body.size() && body[i + 1] == '=')))) {
                expr_end = i;
                break;
            }
            step();
        }
        if (expr_end == std::string::npos) fail(field_pos, "f-string: expecting '}'");
        std::string expr_text = body.substr(expr_begin, expr_end - expr_begin);
        if (expr_text.find_first_not_of(" \t\n") == std::string::npos) {
            fail(field_pos, "f-string: empty expression not allowed");
        }
        FStringPart part;
        part.is_literal = false;
        part.expr_text = expr_text;
        // Self-documenting `{expr=}`: the text up to and including '=' is printed literally,
        // then the value (repr unless a conversion or format spec says otherwise).
        bool self_doc = false;
        size_t last = expr_text.find_last_not_of(" \t\n");
        if (last != std::string::npos && last > 0 && expr_text[last] == '=' &&
            std::strchr("=!<>", expr_text[last - 1]) == nullptr) {
            self_doc = true;
            if (!parts.empty() && parts.back().is_literal) {
                parts.back().literal += expr_text;
            } else {
                FStringPart lit;
                lit.literal = expr_text;
                parts.push_back(std::move(lit));
            }
            expr_text.resize(last);
            part.expr_text = expr_text;
        }
        {
            std::vector<Token> sub = tokenize_expression(expr_text, path_, expr_pos);
            Parser sp(sub, path_, depth_);
            part.expr = sp.parse_fstring_field_expr();
        }
        if (body[i] == '!') {
            Pos cpos{line, col};
            step();
            char conv = i < body.size() ? body[i] : 0;
            if (conv != 'r' && conv != 's' && conv != 'a') {
                fail(cpos, "f-string: invalid conversion character: expected 's', 'r', or 'a'");
            }
            part.conversion = conv;
            step();
            if (i >= body.size() || (body[i] != '}' && body[i] != ':')) {
                fail(Pos{line, col}, "f-string: expecting '}'");
            }
        }
        if (body[i] == ':') {
            step();
            // The spec runs to the matching '}', and may hold nested fields.
            size_t spec_begin = i;
            Pos spec_pos{line, col};
            int nest = 0;
            while (i < body.size() && !(body[i] == '}' && nest == 0)) {
                if (body[i] == '{') ++nest;
                if (body[i] == '}') --nest;
                step();
            }
            if (i >= body.size()) fail(field_pos, "f-string: expecting '}'");
            std::string spec = body.substr(spec_begin, i - spec_begin);
            std::vector<FStringPart> spec_parts;
            parse_fstring_body(spec, spec_pos, raw, true, spec_parts, lit_pos);
            bool all_literal = true;
            for (const auto& sp : spec_parts)
                all_literal = all_literal && sp.is_literal;
            if (all_literal) {
                part.format_spec = std::make_unique<StrLitExpr>(
                    spec_pos, spec_parts.empty() ? std::string() : spec_parts[0].literal);
            } else {
                auto fs = std::make_unique<FStringExpr>(spec_pos);
                fs->parts = std::move(spec_parts);
                part.format_spec = std::move(fs);
            }
        }
        if (i >= body.size() || body[i] != '}') fail(field_pos, "f-string: expecting '}'");
        if (self_doc && part.conversion == 0 && !part.format_spec) part.conversion = 'r';
        step();  // '}'
        parts.push_back(std::move(part));
    }
    flush_literal();
}

ExprPtr Parser::parse_fstring_field_expr() {
    ExprPtr e = parse_star_expressions();
    if (!at(TokenKind::EndOfFile)) {
        if (at(TokenKind::Assign)) {
            fail(peek().pos, "f-string: expecting '}' (assignment is not an expression)");
        }
        fail_here();
    }
    return e;
}

}  // namespace

std::unique_ptr<ast::Module> parse_module(std::string_view source, const std::string& path) {
    std::vector<Token> tokens = tokenize(source, path);
    Parser parser(tokens, path);
    auto mod = parser.parse_file();
    mod->path = path;
    return mod;
}

}  // namespace weft
