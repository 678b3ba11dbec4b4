// ast_dump.cpp — S-expression printer for the AST (see ast_dump.h for the format).
#include "compiler/ast_dump.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace weft {

using namespace ast;

namespace {

std::string quote(const std::string& s, const char* prefix = "") {
    std::string out = prefix;
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
    return out;
}

// Python's repr() of a float: the shortest digits that read back to the same double, in
// fixed notation for exponents -4..15 and scientific notation otherwise.
std::string format_double(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
    char buf[48];
    int prec = 0;
    for (; prec < 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*e", prec, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    std::string sci = buf;  // [-]d.ddde[+-]xx
    bool neg = sci[0] == '-';
    if (neg) sci.erase(0, 1);
    size_t e = sci.find('e');
    int exp = std::atoi(sci.c_str() + e + 1);
    std::string digits;
    for (size_t i = 0; i < e; ++i) {
        if (sci[i] != '.') digits += sci[i];
    }
    while (digits.size() > 1 && digits.back() == '0')
        digits.pop_back();
    std::string out;
    if (exp < -4 || exp >= 16) {
        out = digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        std::snprintf(buf, sizeof buf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        out += buf;
    } else if (exp < 0) {
        out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else {
        size_t int_len = static_cast<size_t>(exp) + 1;
        if (digits.size() <= int_len) {
            out = digits + std::string(int_len - digits.size(), '0') + ".0";
        } else {
            out = digits.substr(0, int_len) + "." + digits.substr(int_len);
        }
    }
    return neg ? "-" + out : out;
}

const char* binop_name(BinaryOp op) {
    switch (op) {
        case BinaryOp::Add:
            return "+";
        case BinaryOp::Sub:
            return "-";
        case BinaryOp::Mul:
            return "*";
        case BinaryOp::Div:
            return "/";
        case BinaryOp::FloorDiv:
            return "//";
        case BinaryOp::Mod:
            return "%";
        case BinaryOp::Pow:
            return "**";
        case BinaryOp::MatMul:
            return "@";
        case BinaryOp::BitAnd:
            return "&";
        case BinaryOp::BitOr:
            return "|";
        case BinaryOp::BitXor:
            return "^";
        case BinaryOp::Shl:
            return "<<";
        case BinaryOp::Shr:
            return ">>";
    }
    return "?";
}

const char* cmpop_name(CmpOp op) {
    switch (op) {
        case CmpOp::Eq:
            return "==";
        case CmpOp::Ne:
            return "!=";
        case CmpOp::Lt:
            return "<";
        case CmpOp::Le:
            return "<=";
        case CmpOp::Gt:
            return ">";
        case CmpOp::Ge:
            return ">=";
        case CmpOp::In:
            return "in";
        case CmpOp::NotIn:
            return "not-in";
        case CmpOp::Is:
            return "is";
        case CmpOp::IsNot:
            return "is-not";
    }
    return "?";
}

std::string opt(const ExprPtr& e) {
    return e ? dump_expr(*e) : "nil";
}

std::string dump_block(const char* head, const Block& b) {
    std::string out = "(";
    out += head;
    for (const auto& s : b) {
        out += ' ';
        out += dump_stmt(*s);
    }
    return out + ")";
}

std::string dump_params(const std::vector<Param>& params) {
    std::string out = "(params";
    for (const auto& p : params) {
        std::string base = p.kind == ParamKind::VarArgs  ? "*" + p.name
                           : p.kind == ParamKind::KwArgs ? "**" + p.name
                           : p.keyword_only              ? "kw:" + p.name
                                                         : p.name;
        if (p.annotation || p.default_value) {
            base = "(" + base;
            if (p.annotation) base += " : " + dump_expr(*p.annotation);
            if (p.default_value) base += " = " + dump_expr(*p.default_value);
            base += ")";
        }
        out += " " + base;
    }
    return out + ")";
}

std::string dump_keywords(const std::vector<Keyword>& kws) {
    std::string out;
    for (const auto& k : kws) {
        if (k.name.empty()) {
            out += " (** " + dump_expr(*k.value) + ")";
        } else {
            out += " (kw " + k.name + " " + dump_expr(*k.value) + ")";
        }
    }
    return out;
}

std::string dump_fstring_parts(const std::vector<FStringPart>& parts) {
    std::string out;
    for (const auto& p : parts) {
        if (p.is_literal) {
            out += ' ';
            out += quote(p.literal);
        } else {
            out += " (fmt " + dump_expr(*p.expr);
            if (p.conversion) out += std::string(" !") + p.conversion;
            if (p.format_spec) out += " " + dump_expr(*p.format_spec);
            out += ")";
        }
    }
    return out;
}

std::string dump_elts(const char* head, const std::vector<ExprPtr>& elts) {
    std::string out = "(";
    out += head;
    for (const auto& e : elts) {
        out += ' ';
        out += dump_expr(*e);
    }
    return out + ")";
}

}  // namespace

std::string dump_expr(const Expr& e) {
    switch (e.kind) {
        case ExprKind::Name:
            return e.as<NameExpr>()->name;
        case ExprKind::NoneLit:
            return "None";
        case ExprKind::BoolLit:
            return e.as<BoolLitExpr>()->value ? "True" : "False";
        case ExprKind::IntLit:
            return std::to_string(e.as<IntLitExpr>()->value);
        case ExprKind::FloatLit: {
            auto* f = e.as<FloatLitExpr>();
            if (f->is_duration) return "(dur " + format_double(f->value) + ")";
            return format_double(f->value);
        }
        case ExprKind::StrLit:
            return quote(e.as<StrLitExpr>()->value);
        case ExprKind::BytesLit:
            return quote(e.as<BytesLitExpr>()->value, "b");
        case ExprKind::FString:
            return "(fstr" + dump_fstring_parts(e.as<FStringExpr>()->parts) + ")";
        case ExprKind::List:
            return dump_elts("list", e.as<ListExpr>()->elts);
        case ExprKind::Tuple:
            return dump_elts("tuple", e.as<TupleExpr>()->elts);
        case ExprKind::Set:
            return dump_elts("set", e.as<SetExpr>()->elts);
        case ExprKind::Dict: {
            auto* d = e.as<DictExpr>();
            std::string out = "(dict";
            for (size_t i = 0; i < d->keys.size(); ++i) {
                if (d->keys[i]) {
                    out += " (" + dump_expr(*d->keys[i]) + " " + dump_expr(*d->values[i]) + ")";
                } else {
                    out += " (** " + dump_expr(*d->values[i]) + ")";
                }
            }
            return out + ")";
        }
        case ExprKind::Comprehension: {
            auto* c = e.as<ComprehensionExpr>();
            const char* head = c->comp_kind == CompKind::List   ? "listcomp"
                               : c->comp_kind == CompKind::Set  ? "setcomp"
                               : c->comp_kind == CompKind::Dict ? "dictcomp"
                                                                : "genexp";
            std::string out = std::string("(") + head + " " + dump_expr(*c->element);
            if (c->value) out += " " + dump_expr(*c->value);
            for (const auto& cl : c->clauses) {
                out += " (for " + dump_expr(*cl.target) + " " + dump_expr(*cl.iter);
                for (const auto& cond : cl.conditions)
                    out += " (if " + dump_expr(*cond) + ")";
                out += ")";
            }
            return out + ")";
        }
        case ExprKind::Unary: {
            auto* u = e.as<UnaryExpr>();
            const char* op = u->op == UnaryOp::Neg   ? "neg"
                             : u->op == UnaryOp::Pos ? "pos"
                             : u->op == UnaryOp::Not ? "not"
                                                     : "inv";
            return std::string("(") + op + " " + dump_expr(*u->operand) + ")";
        }
        case ExprKind::Binary: {
            auto* b = e.as<BinaryExpr>();
            return std::string("(") + binop_name(b->op) + " " + dump_expr(*b->left) + " " +
                   dump_expr(*b->right) + ")";
        }
        case ExprKind::BoolOp:
            return dump_elts(e.as<BoolOpExpr>()->is_and ? "and" : "or", e.as<BoolOpExpr>()->values);
        case ExprKind::Compare: {
            auto* c = e.as<CompareExpr>();
            std::string out = "(cmp " + dump_expr(*c->left);
            for (size_t i = 0; i < c->ops.size(); ++i) {
                out +=
                    std::string(" ") + cmpop_name(c->ops[i]) + " " + dump_expr(*c->comparators[i]);
            }
            return out + ")";
        }
        case ExprKind::Call: {
            auto* c = e.as<CallExpr>();
            std::string out = "(call " + dump_expr(*c->func);
            for (const auto& a : c->args)
                out += " " + dump_expr(*a);
            return out + dump_keywords(c->keywords) + ")";
        }
        case ExprKind::Attribute: {
            auto* a = e.as<AttributeExpr>();
            return "(. " + dump_expr(*a->object) + " " + a->name + ")";
        }
        case ExprKind::Subscript: {
            auto* s = e.as<SubscriptExpr>();
            return "([] " + dump_expr(*s->object) + " " + dump_expr(*s->index) + ")";
        }
        case ExprKind::Slice: {
            auto* s = e.as<SliceExpr>();
            return "(slice " + opt(s->lower) + " " + opt(s->upper) + " " + opt(s->step) + ")";
        }
        case ExprKind::Lambda: {
            auto* l = e.as<LambdaExpr>();
            return "(lambda " + dump_params(l->params) + " " + dump_expr(*l->body) + ")";
        }
        case ExprKind::IfExp: {
            auto* i = e.as<IfExpExpr>();
            return "(ifexp " + dump_expr(*i->cond) + " " + dump_expr(*i->then_value) + " " +
                   dump_expr(*i->else_value) + ")";
        }
        case ExprKind::Starred:
            return "(* " + dump_expr(*e.as<StarredExpr>()->value) + ")";
        case ExprKind::Spawn:
            return "(spawn " + dump_expr(*e.as<SpawnExpr>()->call) + ")";
        case ExprKind::Lazy:
            return "(lazy " + dump_expr(*e.as<LazyExpr>()->value) + ")";
    }
    return "?";
}

std::string dump_pattern(const Pattern& p) {
    switch (p.kind) {
        case PatternKind::Value:
            return dump_expr(*p.as<ValuePattern>()->value);
        case PatternKind::Singleton:
            return dump_expr(*p.as<SingletonPattern>()->value);
        case PatternKind::Capture:
            return p.as<CapturePattern>()->name;
        case PatternKind::Wildcard:
            return "_";
        case PatternKind::Sequence: {
            auto* s = p.as<SequencePattern>();
            std::string out = "(seq";
            for (size_t i = 0; i < s->patterns.size(); ++i) {
                out += " ";
                if (static_cast<int>(i) == s->star_index) out += "*";
                out += dump_pattern(*s->patterns[i]);
            }
            return out + ")";
        }
        case PatternKind::Mapping: {
            auto* m = p.as<MappingPattern>();
            std::string out = "(map";
            for (size_t i = 0; i < m->keys.size(); ++i) {
                out += " (" + dump_expr(*m->keys[i]) + " " + dump_pattern(*m->patterns[i]) + ")";
            }
            if (!m->rest.empty()) out += " **" + m->rest;
            return out + ")";
        }
        case PatternKind::Class: {
            auto* c = p.as<ClassPattern>();
            std::string out = "(class " + dump_expr(*c->cls);
            for (const auto& q : c->positional)
                out += " " + dump_pattern(*q);
            for (size_t i = 0; i < c->kw_names.size(); ++i) {
                out += " (" + c->kw_names[i] + " = " + dump_pattern(*c->kw_patterns[i]) + ")";
            }
            return out + ")";
        }
        case PatternKind::As: {
            auto* a = p.as<AsPattern>();
            return "(as " + dump_pattern(*a->pattern) + " " + a->name + ")";
        }
        case PatternKind::Or: {
            auto* o = p.as<OrPattern>();
            std::string out = "(or";
            for (const auto& q : o->alternatives)
                out += " " + dump_pattern(*q);
            return out + ")";
        }
    }
    return "?";
}

namespace {

std::string dump_function(const FunctionDefStmt& f) {
    std::string out = "(def " + f.name + " " + dump_params(f.params);
    if (f.returns) out += " -> " + dump_expr(*f.returns);
    if (!f.decorators.empty()) out += " " + dump_elts("decorators", f.decorators);
    if (!f.doc.empty()) out += " (doc " + quote(f.doc) + ")";
    return out + " " + dump_block("body", f.body) + ")";
}

}  // namespace

std::string dump_stmt(const Stmt& s) {
    switch (s.kind) {
        case StmtKind::Expr:
            return "(expr " + dump_expr(*s.as<ExprStmt>()->value) + ")";
        case StmtKind::Assign: {
            auto* a = s.as<AssignStmt>();
            std::string out = "(assign";
            for (const auto& t : a->targets)
                out += " " + dump_expr(*t);
            return out + " " + dump_expr(*a->value) + ")";
        }
        case StmtKind::AugAssign: {
            auto* a = s.as<AugAssignStmt>();
            return std::string("(augassign ") + binop_name(a->op) + " " + dump_expr(*a->target) +
                   " " + dump_expr(*a->value) + ")";
        }
        case StmtKind::AnnAssign: {
            auto* a = s.as<AnnAssignStmt>();
            std::string out =
                "(annassign " + dump_expr(*a->target) + " " + dump_expr(*a->annotation);
            if (a->value) out += " " + dump_expr(*a->value);
            return out + ")";
        }
        case StmtKind::Pass:
            return "(pass)";
        case StmtKind::Break:
            return "(break)";
        case StmtKind::Continue:
            return "(continue)";
        case StmtKind::Return: {
            auto* r = s.as<ReturnStmt>();
            return r->value ? "(return " + dump_expr(*r->value) + ")" : "(return)";
        }
        case StmtKind::Raise: {
            auto* r = s.as<RaiseStmt>();
            std::string out = "(raise";
            if (r->exc) out += " " + dump_expr(*r->exc);
            if (r->cause) out += " from " + dump_expr(*r->cause);
            return out + ")";
        }
        case StmtKind::Assert: {
            auto* a = s.as<AssertStmt>();
            std::string out = "(assert " + dump_expr(*a->test);
            if (a->msg) out += " " + dump_expr(*a->msg);
            return out + ")";
        }
        case StmtKind::If: {
            auto* i = s.as<IfStmt>();
            std::string out = "(if " + dump_expr(*i->cond) + " " + dump_block("body", i->body);
            if (!i->orelse.empty()) out += " " + dump_block("else", i->orelse);
            return out + ")";
        }
        case StmtKind::While: {
            auto* w = s.as<WhileStmt>();
            std::string out = "(while " + dump_expr(*w->cond) + " " + dump_block("body", w->body);
            if (!w->orelse.empty()) out += " " + dump_block("else", w->orelse);
            return out + ")";
        }
        case StmtKind::For: {
            auto* f = s.as<ForStmt>();
            std::string out = "(for " + dump_expr(*f->target) + " " + dump_expr(*f->iter) + " " +
                              dump_block("body", f->body);
            if (!f->orelse.empty()) out += " " + dump_block("else", f->orelse);
            return out + ")";
        }
        case StmtKind::Try: {
            auto* t = s.as<TryStmt>();
            std::string out = "(try " + dump_block("body", t->body);
            for (const auto& h : t->handlers) {
                out += " (except";
                for (const auto& ty : h.types)
                    out += " " + dump_expr(*ty);
                if (!h.name.empty()) out += " as " + h.name;
                out += " " + dump_block("body", h.body) + ")";
            }
            if (!t->orelse.empty()) out += " " + dump_block("else", t->orelse);
            if (!t->finalbody.empty()) out += " " + dump_block("finally", t->finalbody);
            return out + ")";
        }
        case StmtKind::With: {
            auto* w = s.as<WithStmt>();
            std::string out = "(with";
            for (const auto& it : w->items) {
                out += " (item " + dump_expr(*it.context);
                if (it.target) out += " as " + dump_expr(*it.target);
                out += ")";
            }
            return out + " " + dump_block("body", w->body) + ")";
        }
        case StmtKind::FunctionDef:
            return dump_function(*s.as<FunctionDefStmt>());
        case StmtKind::StructDef:
        case StmtKind::ActorDef: {
            auto* d = s.as<StructDefStmt>();
            const char* head = s.kind == StmtKind::StructDef ? "struct"
                               : d->is_agent                 ? "agent"
                                                             : "actor";
            std::string out = std::string("(") + head + " " + d->name;
            if (!d->bases.empty()) out += " " + dump_elts("bases", d->bases);
            if (!d->decorators.empty()) out += " " + dump_elts("decorators", d->decorators);
            if (!d->doc.empty()) out += " (doc " + quote(d->doc) + ")";
            out += " (fields";
            for (const auto& f : d->fields) {
                std::string fd = f.name;
                if (f.annotation || f.default_value) {
                    fd = "(" + fd;
                    if (f.annotation) fd += " : " + dump_expr(*f.annotation);
                    if (f.default_value) fd += " = " + dump_expr(*f.default_value);
                    fd += ")";
                }
                out += " " + fd;
            }
            out += ") (methods";
            for (const auto& m : d->methods)
                out += " " + dump_function(*m);
            return out + "))";
        }
        case StmtKind::Import: {
            auto* i = s.as<ImportStmt>();
            std::string out = "(import " + (i->is_path ? quote(i->module) : i->module);
            if (!i->alias.empty()) out += " as " + i->alias;
            return out + ")";
        }
        case StmtKind::ImportFrom: {
            auto* i = s.as<ImportFromStmt>();
            std::string out = "(from " + (i->is_path ? quote(i->module) : i->module);
            for (const auto& n : i->names) {
                out += n.alias.empty() ? " " + n.name : " (" + n.name + " as " + n.alias + ")";
            }
            return out + ")";
        }
        case StmtKind::Match: {
            auto* m = s.as<MatchStmt>();
            std::string out = "(match " + dump_expr(*m->subject);
            for (const auto& c : m->cases) {
                out += " (case " + dump_pattern(*c.pattern);
                if (c.guard) out += " if " + dump_expr(*c.guard);
                out += " " + dump_block("body", c.body) + ")";
            }
            return out + ")";
        }
        case StmtKind::SpawnBlock:
            return dump_block("spawnblock", s.as<SpawnBlockStmt>()->body);
        case StmtKind::Concurrent: {
            auto* c = s.as<ConcurrentStmt>();
            return "(concurrent (options" + dump_keywords(c->options) + ") " +
                   dump_block("body", c->body) + ")";
        }
        case StmtKind::Race: {
            std::string out = "(race";
            for (const auto& b : s.as<RaceStmt>()->branches) out += " " + dump_block("branch", b);
            return out + ")";
        }
        case StmtKind::Sequential:
            return dump_block("sequential", s.as<SequentialStmt>()->body);
        case StmtKind::Select: {
            auto* sel = s.as<SelectStmt>();
            std::string out = "(select";
            for (const auto& c : sel->cases) {
                switch (c.case_kind) {
                    case SelectCaseKind::Recv:
                        out += " (recv " + dump_expr(*c.channel) + " " + opt(c.target) + " " +
                               opt(c.ok_target);
                        break;
                    case SelectCaseKind::Send:
                        out += " (send " + dump_expr(*c.channel) + " " + dump_expr(*c.value);
                        break;
                    case SelectCaseKind::After:
                        out += " (after " + dump_expr(*c.value);
                        break;
                    case SelectCaseKind::Default:
                        out += " (default";
                        break;
                }
                out += " " + dump_block("body", c.body) + ")";
            }
            return out + ")";
        }
    }
    return "?";
}

std::string dump_module(const Module& m) {
    std::string out;
    for (const auto& s : m.body) {
        if (!out.empty()) out += "\n";
        out += dump_stmt(*s);
    }
    return out;
}

}  // namespace weft
