// lower.cpp — Lisp datums to the Weft AST (see lower.h for the contract).
//
// Every form is lowered against a destination (Dest): its value is discarded, assigned to a
// variable, returned, or assigned and the enclosing loop left. Expressions that need no
// statements (calls, arithmetic, an `if` of plain expressions) stay Weft expressions, so the
// hot paths compile to the same bytecode as the equivalent Weft; forms that need statements
// (`let`, `try`, `and`/`or` of non-boolean values, bodies with `define`) are lowered into the
// statement list before the expression that uses their value, and earlier operands of the same
// call are first saved in temporaries so that evaluation stays left to right.
//
// Tail calls (spec section 4): a call in tail position of a named let's body to that let's
// name, or of a function's body to its own `define` name, is a jump — the parameters are
// reassigned and the loop around the body continues (`while True:`; the VM's loop back-edge is
// a safepoint, so preemption, cancellation and `timeout` reach it).
#include "compiler/lisp/lower.h"

#include <algorithm>
#include <functional>

#include "compiler/diagnostic.h"
#include "compiler/suggest.h"

namespace weft::lisp {

using namespace weft::ast;

std::string mangle(std::string_view name) {
    std::string out(name);
    for (auto& c : out)
        if (c == '-') c = '_';
    return out;
}

bool is_lisp_path(std::string_view path) {
    return path.size() > 6 && path.compare(path.size() - 6, 6, ".wlisp") == 0;
}

namespace {

// A primitive of spec section 7: the prelude function (or native) it calls, and the options
// (`:name value` pairs after the positional arguments) it takes.
struct Prim {
    const char* lisp;
    const char* weft;  // "__lisp_x": a native builtin; otherwise a function of the prelude
    const char* options = nullptr;  // space-separated Lisp option names
    bool returns_bool = false;
    // With options: how many positional arguments come first (-1: any number, none of them
    // a keyword literal). A keyword literal after them starts the options.
    int positional = -1;
};

const Prim kPrims[] = {
    // arithmetic and comparison (calls with operands are usually lowered inline)
    {"+", "add"}, {"-", "sub"}, {"*", "mul"}, {"/", "div"}, {"quotient", "quotient"}, {"mod", "mod"},
    {"abs", "abs_"}, {"min", "min_"}, {"max", "max_"},
    {"=", "eq", nullptr, true}, {"not=", "not_eq", nullptr, true}, {"<", "lt", nullptr, true},
    {">", "gt", nullptr, true}, {"<=", "le", nullptr, true}, {">=", "ge", nullptr, true},
    {"not", "not_", nullptr, true},
    // predicates
    {"nil?", "nil_p", nullptr, true}, {"number?", "number_p", nullptr, true},
    {"string?", "string_p", nullptr, true}, {"keyword?", "keyword_p", nullptr, true},
    {"list?", "list_p", nullptr, true}, {"map?", "map_p", nullptr, true}, {"fn?", "fn_p", nullptr, true},
    {"empty?", "empty_p", nullptr, true}, {"error?", "error_p", nullptr, true},
    // lists
    {"list", "list_"}, {"cons", "cons"}, {"first", "first"}, {"rest", "rest"}, {"nth", "nth"}, {"last", "last"},
    {"append", "append"}, {"reverse", "reverse"}, {"length", "length"}, {"range", "range_"}, {"map", "map_"},
    {"filter", "filter_"}, {"reduce", "reduce"}, {"for-each", "for_each"}, {"sort", "sort"}, {"apply", "apply"},
    // maps
    {"map-get", "map_get"}, {"get", "map_get"}, {"assoc", "assoc"}, {"dissoc", "dissoc"}, {"keys", "keys"},
    {"vals", "vals"}, {"contains?", "contains_p", nullptr, true}, {"merge", "merge"},
    // strings
    {"str", "str_"}, {"repr", "repr_"}, {"string-append", "string_append"}, {"string-lines", "string_lines"},
    {"string-contains?", "string_contains_p", nullptr, true},
    {"string-starts-with?", "string_starts_with_p", nullptr, true}, {"string-trim", "string_trim"},
    {"string-upcase", "string_upcase"}, {"string-downcase", "string_downcase"},
    {"number->string", "number_to_string"}, {"string-split", "string_split"}, {"string-join", "string_join"},
    {"substring", "substring"}, {"string->number", "string_to_number"},
    // errors
    {"error", "error_"}, {"error-msg", "error_msg"}, {"error-kind", "error_kind"}, {"raise", "raise_"},
    // output
    {"println", "println"}, {"print", "print_"}, {"prn", "prn"},
    // concurrency
    {"spawn", "spawn_"}, {"spawn-link", "spawn_link"},
    {"parallel-map", "parallel_map", "max-threads timeout", false, 2},
    {"parallel-filter", "parallel_filter", "max-threads timeout", false, 2},
    {"parallel-grep", "parallel_grep", "max-threads", false, 2}, {"timeout", "timeout_"},
    {"atom", "atom_"}, {"atom-deref", "atom_deref"}, {"deref", "atom_deref"}, {"atom-reset!", "atom_reset"},
    {"reset!", "atom_reset"}, {"atom-swap!", "atom_swap"}, {"swap!", "atom_swap"},
    {"compare-and-set!", "compare_and_set", nullptr, true},
    {"make-channel", "make_channel"}, {"channel-send", "channel_send"},
    {"channel-recv", "channel_recv", "timeout", false, 1}, {"channel-close", "channel_close"},
    {"select", "select_", "timeout"}, {"make-worker-pool", "make_worker_pool"},
    {"worker-pool-submit", "worker_pool_submit"}, {"worker-pool-shutdown", "worker_pool_shutdown"},
    {"stream-map", "stream_map", "workers ordered", false, 2}, {"set-max-threads!", "set_max_threads"},
    {"set-default-timeout!", "set_default_timeout"}, {"restrict", "restrict_"},
    // the outside world
    {"http-get", "http_get", "timeout headers", false, 1}, {"http-post", "http_post", "timeout headers", false, 2},
    {"read-file", "read_file"}, {"write-file", "write_file"}, {"file-size", "file_size"}, {"glob", "glob_"},
    {"db-open", "db_open"}, {"db-query", "db_query"}, {"db-exec", "db_exec"}, {"json-parse", "json_parse"},
    {"json-str", "json_str"}, {"env", "env"}, {"args", "args_"}, {"now", "now"}, {"sleep", "sleep_"},
};

const std::unordered_set<std::string> kSpecialForms = {
    "define", "set!", "lambda", "let", "let*", "if", "when", "unless", "cond", "begin", "do", "and", "or",
    "quote", "try", "catch", "finally", "->", "->>", "import", "else"};

const std::unordered_set<std::string> kStdModules = {"fs", "http", "proc", "json", "re", "sys",
                                                     "db", "math", "time", "random", "uuid"};

const Prim* find_prim(const std::string& name) {
    static const std::unordered_map<std::string, const Prim*> table = [] {
        std::unordered_map<std::string, const Prim*> t;
        for (auto& p : kPrims) t[p.lisp] = &p;
        return t;
    }();
    auto it = table.find(name);
    return it == table.end() ? nullptr : it->second;
}

struct FnCtx;
struct LoopInfo {
    std::string lisp;                // the named let's or function's name
    std::vector<std::string> params;  // the Weft names reassigned by a jump
    bool used = false;               // some tail call jumped
    std::string self_weft;           // a function's own Weft name ("" for a named-let loop)
    FnCtx* fn = nullptr;             // the function whose body loops
};

struct Binding {
    std::string weft;
    FnCtx* fn = nullptr;
    LoopInfo* loop = nullptr;  // a named let lowered as a loop: only tail calls may use it
};

struct FnCtx {
    FnCtx* parent = nullptr;
    bool toplevel = false;
    std::unordered_set<std::string> used;  // Weft names taken in this function (and outer ones)
};

struct Scope {
    Scope* parent = nullptr;
    FnCtx* fn = nullptr;
    std::unordered_map<std::string, Binding> names;
};

enum class DestKind : uint8_t { Effect, Assign, Return, AssignBreak, Break };
struct Dest {
    DestKind kind = DestKind::Effect;
    std::string var;
    LoopInfo* loop = nullptr;  // a tail position of this loop's body
    bool tail() const { return loop != nullptr; }
};

template <class T, class... A> std::unique_ptr<T> mk(A&&... a) { return std::make_unique<T>(std::forward<A>(a)...); }

class Lowerer {
public:
    Lowerer(const std::string& path, const LowerOptions& o) : path_(path), opts_(o) {}

    std::unique_ptr<Module> run(const std::vector<Datum>& forms) {
        auto m = mk<Module>();
        m->path = path_;
        top_.toplevel = true;
        for (auto& f : forms) collect_defines(f);
        if (opts_.known_globals)
            for (auto& g : *opts_.known_globals) known_.insert(g);
        for (auto& [lisp, weft] : defines_) top_.used.insert(weft);
        for (auto& g : known_) top_.used.insert(g);
        Scope scope;
        scope.fn = &top_;
        Block body;
        for (auto& f : forms) toplevel(f, body, scope);
        // Imports of the prelude's functions, hoisted modules and keywords come first.
        Pos p0{1, 1};
        if (!prelude_names_.empty()) {
            auto imp = mk<ImportFromStmt>(p0);
            imp->module = "__lisp__";
            for (auto& n : prelude_names_) imp->names.push_back(ImportName{"l_" + n, "__lp_" + n, p0});
            m->body.push_back(std::move(imp));
        }
        for (auto& mod : auto_modules_) {
            auto imp = mk<ImportStmt>(p0);
            imp->module = mod;
            imp->alias = "__mod_" + mod;
            m->body.push_back(std::move(imp));
        }
        for (auto& k : keywords_) {
            auto a = mk<AssignStmt>(p0);
            a->targets.push_back(mk<NameExpr>(p0, kw_global(k)));
            auto c = mk<CallExpr>(p0);
            c->func = mk<NameExpr>(p0, "__lisp_kw");
            c->args.push_back(mk<StrLitExpr>(p0, k));
            a->value = std::move(c);
            m->body.push_back(std::move(a));
        }
        for (auto& s : body) m->body.push_back(std::move(s));
        return m;
    }

private:
    const std::string& path_;
    const LowerOptions& opts_;
    FnCtx top_;
    std::unordered_map<std::string, std::string> defines_;  // top-level define: Lisp -> Weft
    std::unordered_set<std::string> known_;
    std::unordered_map<std::string, std::string> module_aliases_;  // `:as m` -> Weft global
    std::vector<std::string> prelude_names_;
    std::unordered_set<std::string> prelude_set_;
    std::vector<std::string> auto_modules_;
    std::vector<std::string> keywords_;
    std::unordered_set<std::string> keyword_set_;
    int temp_counter_ = 0;
    int depth_ = 0;

    [[noreturn]] void fail(Pos p, const std::string& msg) { throw CompileError(Diagnostic{path_, p, msg}); }
    [[noreturn]] void fail(const Datum& d, const std::string& msg) { fail(d.pos, msg); }

    // Names the lowered code refers to (the type `Error` in catch clauses, the `__lisp_*` natives, the
    // `__lp_*` primitives, temporaries): a Lisp binding of the same name gets a suffix.
    static bool reserved_weft(const std::string& w) { return w == "Error" || w.rfind("__", 0) == 0; }

    std::string global_name(const std::string& lisp) {
        std::string w = mangle(lisp);
        if (reserved_weft(w)) w += "_";
        return w;
    }

    std::string kw_global(const std::string& k) { return "__kw_" + k; }

    // ---- names ----------------------------------------------------------------
    void collect_defines(const Datum& f) {
        if (!f.is_list() || f.items.empty() || f.items[0].kind != DatumKind::Symbol) return;
        const std::string& h = f.items[0].s;
        if (h == "begin" || h == "do") {
            for (size_t i = 1; i < f.items.size(); ++i) collect_defines(f.items[i]);
        } else if (h == "define" && f.items.size() >= 2) {
            const Datum& t = f.items[1];
            const Datum* n = t.kind == DatumKind::Symbol                               ? &t
                             : (t.is_list() && !t.items.empty() && t.items[0].kind == DatumKind::Symbol) ? &t.items[0]
                                                                                                   : nullptr;
            if (n && !kSpecialForms.count(n->s)) defines_.emplace(n->s, global_name(n->s));
        }
    }

    // A fresh Weft name for a new local binding of `lisp` in function `fn`.
    std::string fresh_local(FnCtx* fn, const std::string& lisp) {
        std::string base = mangle(lisp);
        if (reserved_weft(base) || base == "." || base.empty()) base += "_";
        std::string w = base;
        for (int k = 2; taken(fn, w); ++k) w = base + "_" + std::to_string(k);
        fn->used.insert(w);
        return w;
    }
    bool taken(FnCtx* fn, const std::string& w) {
        if (fn->used.count(w)) return true;
        if (defines_.count(w) || known_.count(w)) return true;
        for (auto& [l, g] : defines_)
            if (g == w) return true;
        return false;
    }
    std::string temp(FnCtx* fn) {
        std::string w = "__t" + std::to_string(++temp_counter_);
        fn->used.insert(w);
        return w;
    }

    const Binding* lookup(Scope* s, const std::string& name) {
        for (; s; s = s->parent) {
            auto it = s->names.find(name);
            if (it != s->names.end()) return &it->second;
        }
        return nullptr;
    }

    std::vector<std::string> candidates(Scope* s) {
        std::vector<std::string> out;
        for (; s; s = s->parent)
            for (auto& [n, b] : s->names) out.push_back(n);
        for (auto& [n, w] : defines_) out.push_back(n);
        for (auto& p : kPrims) out.push_back(p.lisp);
        return out;
    }

    void check_bindable(const Datum& d) {
        if (d.kind != DatumKind::Symbol) fail(d, std::string("expected a name, got a ") + kind_name(d.kind));
        if (kSpecialForms.count(d.s)) fail(d, "'" + d.s + "' is a special form and cannot be used as a name");
        if (d.s.find('/') != std::string::npos && d.s != "/")
            fail(d, "'" + d.s + "' cannot be bound: 'm/name' names a module member");
        if (d.s.size() > 1 && d.s[0] == '.') fail(d, "'" + d.s + "' cannot be bound: '.name' is a method call");
    }

    std::string use_prelude(const std::string& weft) {
        if (prelude_set_.insert(weft).second) prelude_names_.push_back(weft);
        return "__lp_" + weft;
    }

    ExprPtr keyword(const Datum& d) {
        if (keyword_set_.insert(d.s).second) keywords_.push_back(d.s);
        return name_at(d, kw_global(d.s));
    }

    ExprPtr name_at(const Datum& d, const std::string& n) {
        auto e = mk<NameExpr>(d.pos, n);
        e->end = d.end;
        return e;
    }

    ExprPtr module_ref(const Datum& d, const std::string& mod) {
        auto it = module_aliases_.find(mod);
        if (it != module_aliases_.end()) return name_at(d, it->second);
        if (!kStdModules.count(mod)) {
            std::vector<std::string> c(kStdModules.begin(), kStdModules.end());
            for (auto& [a, w] : module_aliases_) c.push_back(a);
            std::string hint = closest_name(mod, c);
            fail(d, "unknown module '" + mod + "' in '" + d.s + "'" +
                        (hint.empty() ? std::string(" (import it with (import \"./file\" :as " + mod + "))")
                                      : " (did you mean '" + hint + "'?)"));
        }
        if (std::find(auto_modules_.begin(), auto_modules_.end(), mod) == auto_modules_.end())
            auto_modules_.push_back(mod);
        return name_at(d, "__mod_" + mod);
    }

    // A symbol used as a value.
    ExprPtr symbol(const Datum& d, Scope* s) {
        if (const Binding* b = lookup(s, d.s)) {
            if (b->loop) fail(d, "'" + d.s + "' is a named let: it can only be called");
            return name_at(d, b->weft);
        }
        auto it = defines_.find(d.s);
        if (it != defines_.end()) return name_at(d, it->second);
        std::string g = global_name(d.s);
        if (known_.count(g)) return name_at(d, g);
        size_t slash = d.s.find('/');
        if (slash != std::string::npos && slash > 0 && slash + 1 < d.s.size()) {
            auto obj = module_ref(d, d.s.substr(0, slash));
            auto a = mk<AttributeExpr>(d.pos, std::move(obj), mangle(d.s.substr(slash + 1)));
            a->end = d.end;
            return a;
        }
        if (const Prim* p = find_prim(d.s)) {
            std::string w = p->weft;
            if (w.rfind("__lisp_", 0) == 0) return name_at(d, w);
            return name_at(d, use_prelude(w));
        }
        if (kSpecialForms.count(d.s)) fail(d, "'" + d.s + "' is a special form, not a value");
        std::string hint = closest_name(d.s, candidates(s));
        fail(d, "unbound symbol '" + d.s + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }

    // ---- statements and destinations ----------------------------------------------
    static bool trivial(const Expr* e) {
        switch (e->kind) {
            case ExprKind::Name:
            case ExprKind::NoneLit:
            case ExprKind::BoolLit:
            case ExprKind::IntLit:
            case ExprKind::FloatLit:
            case ExprKind::StrLit:
                return true;
            default:
                return false;
        }
    }

    void deliver(ExprPtr e, const Dest& dest, Block& out, Pos p) {
        switch (dest.kind) {
            case DestKind::Effect:
            case DestKind::Break:
                if (!trivial(e.get())) out.push_back(mk<ExprStmt>(p, std::move(e)));
                break;
            case DestKind::Assign:
            case DestKind::AssignBreak: {
                auto a = mk<AssignStmt>(p);
                a->targets.push_back(mk<NameExpr>(p, dest.var));
                a->value = std::move(e);
                out.push_back(std::move(a));
                break;
            }
            case DestKind::Return: {
                auto r = mk<ReturnStmt>(p);
                r->value = std::move(e);
                out.push_back(std::move(r));
                break;
            }
        }
        if (dest.kind == DestKind::Break || dest.kind == DestKind::AssignBreak) out.push_back(mk<BreakStmt>(p));
    }

    static Dest non_tail(Dest d) {
        d.loop = nullptr;
        return d;
    }

    // The value of `d` as an expression; statements it needs go to `out` first.
    ExprPtr expr(const Datum& d, Block& out, Scope* s) {
        if (++depth_ > 900) fail(d, "too deeply nested");
        ExprPtr e = expr_inner(d, out, s);
        --depth_;
        if (e->end.line == 0) e->end = d.end;
        return e;
    }

    // Spills the value of `d` through a temporary when it needs statements.
    ExprPtr via_temp(const Datum& d, Block& out, Scope* s) {
        std::string t = temp(s->fn);
        Dest dest;
        dest.kind = DestKind::Assign;
        dest.var = t;
        stmt(d, out, dest, s);
        return name_at(d, t);
    }

    // Lowers `d` delivering its value to `dest`.
    void stmt(const Datum& d, Block& out, const Dest& dest, Scope* s) {
        if (d.is_list() && !d.items.empty() && d.items[0].kind == DatumKind::Symbol && !lookup(s, d.items[0].s)) {
            const std::string& h = d.items[0].s;
            if (h == "if") return if_stmt(d, out, dest, s);
            if (h == "when" || h == "unless") return when_stmt(d, out, dest, s, h == "unless");
            if (h == "cond") return cond_stmt(d, out, dest, s);
            if (h == "begin" || h == "do") {
                Scope inner{s, s->fn, {}};
                return body(d, 1, out, dest, &inner);
            }
            if (h == "let" || h == "let*") return let_stmt(d, out, dest, s);
            if (h == "and" || h == "or") return and_or_stmt(d, out, dest, s, h == "and");
            if (h == "try") return try_stmt(d, out, dest, s);
            if (h == "define") fail(d, "define is allowed only at the top level or in a body");
            if (h == "->" || h == "->>") return stmt(thread(d, h == "->>"), out, dest, s);
            if (h == "import") fail(d, "import is allowed only at the top level");
            if (h == "set!") {
                set_stmt(d, out, s);
                return deliver(mk<NoneLitExpr>(d.pos), dest, out, d.pos);
            }
        }
        // A tail call that jumps: to the enclosing named let's loop, or to the function's own
        // name (the name it was defined by, not shadowed).
        if (dest.tail() && d.is_list() && !d.items.empty() && d.items[0].kind == DatumKind::Symbol) {
            const Binding* b = lookup(s, d.items[0].s);
            if (b && b->loop && b->loop == dest.loop) return jump(d, out, s, *dest.loop);
            std::string resolved = b ? b->weft : defines_.count(d.items[0].s) ? defines_.at(d.items[0].s) : "";
            if (!dest.loop->self_weft.empty() && resolved == dest.loop->self_weft && s->fn == dest.loop->fn &&
                d.items.size() - 1 == dest.loop->params.size())
                return jump(d, out, s, *dest.loop);
        }
        ExprPtr e = expr(d, out, s);
        deliver(std::move(e), dest, out, d.pos);
    }

    void jump(const Datum& d, Block& out, Scope* s, LoopInfo& loop) {
        size_t n = d.items.size() - 1;
        if (n != loop.params.size())
            fail(d, "'" + loop.lisp + "' takes " + std::to_string(loop.params.size()) + " argument" +
                        (loop.params.size() == 1 ? "" : "s") + " but " + std::to_string(n) + " were given");
        // The new values are computed before any parameter changes. Values with calls are
        // evaluated in order into temporaries; plain arithmetic on names is assigned directly,
        // in an order where no parameter is overwritten before another value reads it (a
        // temporary breaks a cycle), so `(loop (+ i 1) (+ acc i))` is two assignments.
        std::vector<ExprPtr> vals = operands(d, 1, out, s);
        auto spill = [&](ExprPtr& e) {
            std::string t = temp(s->fn);
            auto a = mk<AssignStmt>(e->pos);
            a->targets.push_back(mk<NameExpr>(e->pos, t));
            a->value = std::move(e);
            out.push_back(std::move(a));
            e = mk<NameExpr>(d.pos, t);
        };
        if (n > 1)
            for (auto& e : vals)
                if (!pure(e.get())) spill(e);
        std::vector<bool> done(n, false);
        for (size_t left = n; left > 0;) {
            size_t pick = n;
            for (size_t i = 0; i < n && pick == n; ++i) {
                if (done[i]) continue;
                bool read_later = false;
                for (size_t j = 0; j < n && !read_later; ++j)
                    if (j != i && !done[j] && reads(vals[j].get(), loop.params[i])) read_later = true;
                if (!read_later) pick = i;
            }
            if (pick == n) {  // a cycle: save one value first
                for (size_t i = 0; i < n; ++i)
                    if (!done[i]) {
                        spill(vals[i]);
                        break;
                    }
                continue;
            }
            auto a = mk<AssignStmt>(d.pos);
            a->targets.push_back(mk<NameExpr>(d.pos, loop.params[pick]));
            a->value = std::move(vals[pick]);
            out.push_back(std::move(a));
            done[pick] = true;
            --left;
        }
        out.push_back(mk<ContinueStmt>(d.pos));
        loop.used = true;
    }

    // An expression without calls (names, literals, operators): evaluating it later changes
    // nothing but the values it reads.
    static bool pure(const Expr* e) {
        switch (e->kind) {
            case ExprKind::Name:
            case ExprKind::NoneLit:
            case ExprKind::BoolLit:
            case ExprKind::IntLit:
            case ExprKind::FloatLit:
            case ExprKind::StrLit:
                return true;
            case ExprKind::Binary:
                return pure(e->as<BinaryExpr>()->left.get()) && pure(e->as<BinaryExpr>()->right.get());
            case ExprKind::Unary:
                return pure(e->as<UnaryExpr>()->operand.get());
            case ExprKind::Compare: {
                auto* c = e->as<CompareExpr>();
                if (!pure(c->left.get())) return false;
                for (auto& x : c->comparators)
                    if (!pure(x.get())) return false;
                return true;
            }
            default:
                return false;
        }
    }

    // Whether the pure expression `e` reads the variable `name` (a temporary reads none).
    static bool reads(const Expr* e, const std::string& name) {
        switch (e->kind) {
            case ExprKind::Name:
                return e->as<NameExpr>()->name == name;
            case ExprKind::Binary:
                return reads(e->as<BinaryExpr>()->left.get(), name) || reads(e->as<BinaryExpr>()->right.get(), name);
            case ExprKind::Unary:
                return reads(e->as<UnaryExpr>()->operand.get(), name);
            case ExprKind::Compare: {
                auto* c = e->as<CompareExpr>();
                if (reads(c->left.get(), name)) return true;
                for (auto& x : c->comparators)
                    if (reads(x.get(), name)) return true;
                return false;
            }
            default:
                return false;
        }
    }

    // A body: forms evaluated in order, `define` adding locals, the last form's value
    // delivered to `dest`.
    void body(const Datum& list, size_t from, Block& out, const Dest& dest, Scope* s) {
        if (from >= list.items.size()) return deliver(mk<NoneLitExpr>(list.pos), dest, out, list.pos);
        for (size_t i = from; i < list.items.size(); ++i) {
            const Datum& f = list.items[i];
            bool last = i + 1 == list.items.size();
            if (f.is_list() && !f.items.empty() && f.items[0].is_symbol("define") && !lookup(s, "define")) {
                define_local(f, out, s);
                if (last) deliver(mk<NoneLitExpr>(f.pos), dest, out, f.pos);
                continue;
            }
            if (last) {
                stmt(f, out, dest, s);
            } else {
                Dest eff;
                stmt(f, out, eff, s);
            }
        }
    }

    // ---- top level ------------------------------------------------------------------
    void toplevel(const Datum& f, Block& out, Scope& scope) {
        if (f.is_list() && !f.items.empty() && f.items[0].kind == DatumKind::Symbol) {
            const std::string& h = f.items[0].s;
            if (h == "define") return define_global(f, out, scope);
            if (h == "import") return import_form(f, out);
            if (h == "begin" || h == "do") {
                for (size_t i = 1; i < f.items.size(); ++i) toplevel(f.items[i], out, scope);
                return;
            }
            if (h == "set!") return set_stmt(f, out, &scope);
        }
        if (opts_.repl) {
            ExprPtr e = top_value(f, out, scope);
            auto c = mk<CallExpr>(f.pos);
            c->func = mk<NameExpr>(f.pos, "__lisp_repl_print");
            c->args.push_back(std::move(e));
            out.push_back(mk<ExprStmt>(f.pos, std::move(c)));
            return;
        }
        if (binds_locals(f)) {
            out.push_back(mk<ExprStmt>(f.pos, top_value(f, out, scope)));
            return;
        }
        Dest eff;
        stmt(f, out, eff, &scope);
    }

    // Whether `d` has a (set! name ...) of a top-level name outside lambdas.
    bool sets_global(const Datum& d, Scope& scope) {
        if (d.kind != DatumKind::List && d.kind != DatumKind::Vector && d.kind != DatumKind::Map) return false;
        if (d.is_list() && !d.items.empty() && d.items[0].kind == DatumKind::Symbol) {
            const std::string& h = d.items[0].s;
            if (h == "quote" || h == "lambda") return false;
            if (h == "set!" && d.items.size() >= 2 && d.items[1].kind == DatumKind::Symbol &&
                (defines_.count(d.items[1].s) || known_.count(global_name(d.items[1].s))) && !lookup(&scope, d.items[1].s))
                return true;
        }
        for (auto& x : d.items)
            if (sets_global(x, scope)) return true;
        return false;
    }

    // Whether lowering `d` introduces local variables (let, a catch variable, a body define).
    static bool binds_locals(const Datum& d) {
        if (d.kind != DatumKind::List && d.kind != DatumKind::Vector && d.kind != DatumKind::Map) return false;
        if (d.is_list() && !d.items.empty() && d.items[0].kind == DatumKind::Symbol) {
            const std::string& h = d.items[0].s;
            // A lambda's variables are its own locals already.
            if (h == "quote" || h == "lambda") return false;
            if (h == "let" || h == "let*" || h == "try" || h == "define") return true;
        }
        for (auto& x : d.items)
            if (binds_locals(x)) return true;
        return false;
    }

    // The value of a top-level form. A form that binds locals runs in a function of its own
    // (`<module>` in tracebacks), so its variables are locals — captured by value by the
    // closures made there, and fast — rather than module globals.
    ExprPtr top_value(const Datum& f, Block& out, Scope& scope) {
        // A form that set!s a global stays module code (a function may not assign globals).
        if (!binds_locals(f) || sets_global(f, scope)) return expr(f, out, &scope);
        FnCtx fn;
        fn.parent = &top_;
        fn.used = top_.used;
        Scope fscope{&scope, &fn, {}};
        std::string w = temp(&top_);
        auto def = mk<FunctionDefStmt>(f.pos);
        def->name = w;
        def->display_name = "<module>";
        Dest dest;
        dest.kind = DestKind::Return;
        stmt(f, def->body, dest, &fscope);
        out.push_back(std::move(def));
        auto c = mk<CallExpr>(f.pos);
        c->func = name_at(f, w);
        c->end = f.end;
        return c;
    }

    // (define name expr) / (define (name params...) body...) at the top level.
    void define_global(const Datum& f, Block& out, Scope& scope) {
        if (f.items.size() < 2) fail(f, "define needs a name and a value");
        const Datum& t = f.items[1];
        if (t.is_list()) {
            if (t.items.empty()) fail(t, "define needs a name");
            check_bindable(t.items[0]);
            out.push_back(function_def(t.items[0].s, defines_.at(t.items[0].s), t, 1, f, 2, &scope, f.pos));
            return;
        }
        check_bindable(t);
        if (f.items.size() > 3) fail(f.items[3], "define takes one value (use (define (name args...) body...))");
        const std::string& w = defines_.at(t.s);
        if (f.items.size() == 3 && is_lambda(f.items[2])) {
            const Datum& l = f.items[2];
            out.push_back(function_def(t.s, w, l.items[1], SIZE_MAX, l, 2, &scope, f.pos));
            return;
        }
        ExprPtr v = f.items.size() == 3 ? top_value(f.items[2], out, scope) : mk<NoneLitExpr>(f.pos);
        auto a = mk<AssignStmt>(f.pos);
        a->targets.push_back(name_at(t, w));
        a->value = std::move(v);
        out.push_back(std::move(a));
    }

    bool is_lambda(const Datum& d) {
        return d.is_list() && d.items.size() >= 2 && d.items[0].is_symbol("lambda");
    }

    // (define ...) in a body: a new local from here to the end of the body.
    void define_local(const Datum& f, Block& out, Scope* s) {
        if (f.items.size() < 2) fail(f, "define needs a name and a value");
        const Datum& t = f.items[1];
        const Datum& nd = t.is_list() ? (t.items.empty() ? t : t.items[0]) : t;
        if (t.is_list() && t.items.empty()) fail(t, "define needs a name");
        check_bindable(nd);
        // Redefined in the same body: reassigned.
        auto it = s->names.find(nd.s);
        std::string w = it != s->names.end() && !it->second.loop ? it->second.weft : fresh_local(s->fn, nd.s);
        if (t.is_list()) {
            s->names[nd.s] = Binding{w, s->fn, nullptr};
            out.push_back(function_def(nd.s, w, t, 1, f, 2, s, f.pos));
            return;
        }
        if (f.items.size() > 3) fail(f.items[3], "define takes one value (use (define (name args...) body...))");
        if (f.items.size() == 3 && is_lambda(f.items[2])) {
            s->names[nd.s] = Binding{w, s->fn, nullptr};
            const Datum& l = f.items[2];
            out.push_back(function_def(nd.s, w, l.items[1], SIZE_MAX, l, 2, s, f.pos));
            return;
        }
        ExprPtr v = f.items.size() == 3 ? expr(f.items[2], out, s) : mk<NoneLitExpr>(f.pos);
        s->names[nd.s] = Binding{w, s->fn, nullptr};
        auto a = mk<AssignStmt>(f.pos);
        a->targets.push_back(name_at(nd, w));
        a->value = std::move(v);
        out.push_back(std::move(a));
    }

    // Parameters: (a b . rest), or a single symbol for all arguments. `from` is the index of
    // the first parameter in `params` (1 for (name a b), SIZE_MAX when `params` is the list
    // itself or a symbol).
    void parse_params(const Datum& params, size_t from, std::vector<Param>& out_params, Scope* fscope,
                      std::vector<std::string>& names) {
        if (from == SIZE_MAX && params.kind == DatumKind::Symbol) {
            check_bindable(params);
            Param p;
            p.name = fresh_local(fscope->fn, params.s);
            p.kind = ParamKind::VarArgs;
            p.pos = params.pos;
            fscope->names[params.s] = Binding{p.name, fscope->fn, nullptr};
            out_params.push_back(std::move(p));
            return;
        }
        if (!params.is_list() && params.kind != DatumKind::Vector)
            fail(params, std::string("expected a parameter list, got a ") + kind_name(params.kind));
        size_t i = from == SIZE_MAX ? 0 : from;
        for (; i < params.items.size(); ++i) {
            const Datum& pd = params.items[i];
            bool rest = false;
            if (pd.is_symbol(".")) {
                if (i + 2 != params.items.size()) fail(pd, "'.' must be followed by exactly one rest parameter");
                rest = true;
                ++i;
            }
            const Datum& nd = params.items[i];
            check_bindable(nd);
            if (fscope->names.count(nd.s)) fail(nd, "duplicate parameter '" + nd.s + "'");
            Param p;
            p.name = fresh_local(fscope->fn, nd.s);
            p.kind = rest ? ParamKind::VarArgs : ParamKind::Normal;
            p.pos = nd.pos;
            fscope->names[nd.s] = Binding{p.name, fscope->fn, nullptr};
            if (!rest) names.push_back(p.name);
            out_params.push_back(std::move(p));
        }
    }

    // A function: `def weft(params): body`, with self tail calls of `lisp` as jumps.
    StmtPtr function_def(const std::string& lisp, const std::string& weft, const Datum& params, size_t from,
                         const Datum& body_list, size_t body_from, Scope* s, Pos pos) {
        FnCtx fn;
        fn.parent = s->fn;
        fn.used = s->fn->used;
        Scope fscope{s, &fn, {}};
        auto def = mk<FunctionDefStmt>(pos);
        def->name = weft;
        def->display_name = lisp;
        std::vector<std::string> names;
        parse_params(params, from, def->params, &fscope, names);
        bool has_rest = !def->params.empty() && def->params.back().kind == ParamKind::VarArgs;
        LoopInfo loop{lisp, names, false, weft, &fn};
        Block b;
        Dest dest;
        dest.kind = DestKind::Return;
        // A parameter named like the function shadows it: no self calls then.
        if (!has_rest && !fscope.names.count(lisp) && lisp != "<lambda>") dest.loop = &loop;
        body(body_list, body_from, b, dest, &fscope);
        if (loop.used) {
            auto w = mk<WhileStmt>(pos);
            w->cond = mk<BoolLitExpr>(pos, true);
            w->body = std::move(b);
            def->body.push_back(std::move(w));
        } else {
            def->body = std::move(b);
        }
        return def;
    }

    // (lambda params body...) as a value.
    ExprPtr lambda(const Datum& d, Block& out, Scope* s) {
        if (d.items.size() < 2) fail(d, "lambda needs a parameter list");
        std::string w = temp(s->fn);
        auto def = function_def("<lambda>", w, d.items[1], SIZE_MAX, d, 2, s, d.pos);
        out.push_back(std::move(def));
        return name_at(d, w);
    }

    // ---- special forms ----------------------------------------------------------------
    // Whether `d` always yields #t or #f (then a condition needs no truthiness test).
    bool known_bool(const Datum& d, Scope* s) {
        if (d.kind == DatumKind::Bool) return true;
        if (!d.is_list() || d.items.empty() || d.items[0].kind != DatumKind::Symbol) return false;
        const std::string& h = d.items[0].s;
        if (lookup(s, h) || defines_.count(h)) return false;
        if (h == "and" || h == "or") {
            for (size_t i = 1; i < d.items.size(); ++i)
                if (!known_bool(d.items[i], s)) return false;
            return d.items.size() > 1 || h == "and";
        }
        const Prim* p = find_prim(h);
        return p && p->returns_bool;
    }

    ExprPtr truthy(ExprPtr e, Pos p) {
        if (e->kind == ExprKind::Name) {
            // Only nil and #f are false.
            auto a = mk<CompareExpr>(p);
            a->left = mk<NameExpr>(p, e->as<NameExpr>()->name);
            a->ops.push_back(CmpOp::IsNot);
            a->comparators.push_back(mk<NoneLitExpr>(p));
            auto b = mk<CompareExpr>(p);
            b->left = std::move(e);
            b->ops.push_back(CmpOp::IsNot);
            b->comparators.push_back(mk<BoolLitExpr>(p, false));
            auto both = mk<BoolOpExpr>(p, true);
            both->values.push_back(std::move(a));
            both->values.push_back(std::move(b));
            return both;
        }
        auto c = mk<CallExpr>(p);
        c->func = mk<NameExpr>(p, "__lisp_truthy");
        c->args.push_back(std::move(e));
        return c;
    }

    ExprPtr cond_expr(const Datum& d, Block& out, Scope* s) {
        ExprPtr e = expr(d, out, s);
        if (known_bool(d, s)) return e;
        return truthy(std::move(e), d.pos);
    }

    void if_stmt(const Datum& d, Block& out, const Dest& dest, Scope* s) {
        if (d.items.size() < 3 || d.items.size() > 4)
            fail(d, "if takes a condition, a then form and an optional else form (" +
                        std::to_string(d.items.size() - 1) + " given)");
        auto st = mk<IfStmt>(d.pos);
        st->cond = cond_expr(d.items[1], out, s);
        stmt(d.items[2], st->body, dest, s);
        if (d.items.size() == 4)
            stmt(d.items[3], st->orelse, dest, s);
        else
            deliver(mk<NoneLitExpr>(d.pos), dest, st->orelse, d.pos);
        if (st->orelse.empty()) st->orelse.clear();
        out.push_back(std::move(st));
    }

    void when_stmt(const Datum& d, Block& out, const Dest& dest, Scope* s, bool unless) {
        if (d.items.size() < 2) fail(d, std::string(unless ? "unless" : "when") + " needs a condition");
        auto st = mk<IfStmt>(d.pos);
        ExprPtr c = cond_expr(d.items[1], out, s);
        if (unless) c = mk<UnaryExpr>(d.pos, UnaryOp::Not, std::move(c));
        st->cond = std::move(c);
        Scope inner{s, s->fn, {}};
        body(d, 2, st->body, dest, &inner);
        deliver(mk<NoneLitExpr>(d.pos), dest, st->orelse, d.pos);
        out.push_back(std::move(st));
    }

    void cond_stmt(const Datum& d, Block& out, const Dest& dest, Scope* s) {
        Block* at = &out;
        for (size_t i = 1; i < d.items.size(); ++i) {
            const Datum& cl = d.items[i];
            if ((!cl.is_list() && cl.kind != DatumKind::Vector) || cl.items.empty())
                fail(cl, "a cond clause is (test body...)");
            if (cl.items[0].is_symbol("else")) {
                if (i + 1 != d.items.size()) fail(cl, "else must be the last cond clause");
                Scope inner{s, s->fn, {}};
                body(cl, 1, *at, dest, &inner);
                return;
            }
            auto st = mk<IfStmt>(cl.pos);
            st->cond = cond_expr(cl.items[0], *at, s);
            Scope inner{s, s->fn, {}};
            if (cl.items.size() == 1) {
                fail(cl, "a cond clause needs a body after its test");
            }
            body(cl, 1, st->body, dest, &inner);
            Block* next = &st->orelse;
            at->push_back(std::move(st));
            at = next;
        }
        deliver(mk<NoneLitExpr>(d.pos), dest, *at, d.pos);
    }

    void and_or_stmt(const Datum& d, Block& out, const Dest& dest, Scope* s, bool is_and) {
        size_t n = d.items.size() - 1;
        if (n == 0) return deliver(is_and ? ExprPtr(mk<BoolLitExpr>(d.pos, true)) : mk<NoneLitExpr>(d.pos), dest, out,
                                   d.pos);
        if (n == 1) return stmt(d.items[1], out, dest, s);
        // T = a; if T is falsy (and) / truthy (or): deliver T; else the rest.
        Block* at = &out;
        for (size_t i = 1; i <= n; ++i) {
            if (i == n) return stmt(d.items[i], *at, dest, s);
            std::string t = temp(s->fn);
            Dest a;
            a.kind = DestKind::Assign;
            a.var = t;
            stmt(d.items[i], *at, a, s);
            auto st = mk<IfStmt>(d.items[i].pos);
            ExprPtr c = known_bool(d.items[i], s) ? name_at(d.items[i], t) : truthy(name_at(d.items[i], t), d.pos);
            if (is_and) c = mk<UnaryExpr>(d.pos, UnaryOp::Not, std::move(c));
            st->cond = std::move(c);
            deliver(name_at(d.items[i], t), dest, st->body, d.pos);
            Block* next = &st->orelse;
            at->push_back(std::move(st));
            at = next;
        }
    }

    // Let bindings: ((x 1) (y 2)), ([x 1]), or [x 1 y 2].
    std::vector<std::pair<const Datum*, const Datum*>> bindings(const Datum& b) {
        std::vector<std::pair<const Datum*, const Datum*>> out;
        if (b.kind == DatumKind::Vector && !b.items.empty() && b.items[0].kind == DatumKind::Symbol) {
            if (b.items.size() % 2) fail(b, "let bindings [name value ...] need an even number of forms");
            for (size_t i = 0; i < b.items.size(); i += 2) out.push_back({&b.items[i], &b.items[i + 1]});
            return out;
        }
        if (!b.is_list() && b.kind != DatumKind::Vector)
            fail(b, std::string("let bindings must be a list, got a ") + kind_name(b.kind));
        for (auto& x : b.items) {
            if ((!x.is_list() && x.kind != DatumKind::Vector) || x.items.empty() || x.items.size() > 2)
                fail(x, "a let binding is (name value)");
            out.push_back({&x.items[0], x.items.size() == 2 ? &x.items[1] : nullptr});
        }
        return out;
    }

    void let_stmt(const Datum& d, Block& out, const Dest& dest, Scope* s) {
        if (d.items.size() < 2) fail(d, "let needs bindings");
        if (d.items[1].kind == DatumKind::Symbol) return named_let(d, out, dest, s);
        Scope inner{s, s->fn, {}};
        for (auto& [n, v] : bindings(d.items[1])) {
            check_bindable(*n);
            ExprPtr e = v ? expr(*v, out, &inner) : mk<NoneLitExpr>(n->pos);
            std::string w = fresh_local(s->fn, n->s);
            inner.names[n->s] = Binding{w, s->fn, nullptr};
            auto a = mk<AssignStmt>(n->pos);
            a->targets.push_back(name_at(*n, w));
            a->value = std::move(e);
            out.push_back(std::move(a));
        }
        Scope body_scope{&inner, s->fn, {}};
        body(d, 2, out, dest, &body_scope);
    }

    // Whether every use of `name` in `d` is a tail call (so the named let can be a loop).
    bool only_tail_calls(const Datum& d, const std::string& name, bool tail) {
        if (d.kind == DatumKind::Symbol) return d.s != name;
        if (d.kind == DatumKind::Vector || d.kind == DatumKind::Map) {
            for (auto& x : d.items)
                if (!only_tail_calls(x, name, false)) return false;
            return true;
        }
        if (!d.is_list() || d.items.empty()) return true;
        const Datum& h = d.items[0];
        auto all = [&](size_t from, bool last_tail) {
            for (size_t i = from; i < d.items.size(); ++i)
                if (!only_tail_calls(d.items[i], name, last_tail && i + 1 == d.items.size())) return false;
            return true;
        };
        if (h.kind == DatumKind::Symbol) {
            const std::string& n = h.s;
            if (n == name) return tail && all(1, false);
            if (n == "quote") return true;
            if (n == "if") {
                if (d.items.size() < 2 || !only_tail_calls(d.items[1], name, false)) return false;
                for (size_t i = 2; i < d.items.size(); ++i)
                    if (!only_tail_calls(d.items[i], name, tail)) return false;
                return true;
            }
            if (n == "when" || n == "unless") return d.items.size() < 2 || (only_tail_calls(d.items[1], name, false) && all(2, tail));
            if (n == "begin" || n == "do") return all(1, tail);
            if (n == "and" || n == "or") return all(1, tail);
            if (n == "cond") {
                for (size_t i = 1; i < d.items.size(); ++i) {
                    const Datum& cl = d.items[i];
                    if (!cl.is_list() || cl.items.empty()) continue;
                    if (!cl.items[0].is_symbol("else") && !only_tail_calls(cl.items[0], name, false)) return false;
                    for (size_t j = 1; j < cl.items.size(); ++j)
                        if (!only_tail_calls(cl.items[j], name, tail && j + 1 == cl.items.size())) return false;
                }
                return true;
            }
            if ((n == "let" || n == "let*") && d.items.size() >= 2 && d.items[1].kind != DatumKind::Symbol) {
                for (auto& b : d.items[1].items)
                    if (!only_tail_calls(b, name, false)) return false;
                return all(2, tail);
            }
            if (n == "define") {
                // (define x v) in a body: v is not in tail position; a nested function is.
                return all(1, false);
            }
        }
        return all(0, false);
    }

    void named_let(const Datum& d, Block& out, const Dest& dest, Scope* s) {
        const Datum& nd = d.items[1];
        check_bindable(nd);
        if (d.items.size() < 3) fail(d, "named let needs bindings");
        auto bs = bindings(d.items[2]);
        // The inits are evaluated outside (they do not see each other or the name).
        std::vector<ExprPtr> inits;
        for (auto& [n, v] : bs) {
            check_bindable(*n);
            ExprPtr e = v ? expr(*v, out, s) : mk<NoneLitExpr>(n->pos);
            if (bs.size() > 1 && !trivial(e.get())) {
                std::string t = temp(s->fn);
                auto a = mk<AssignStmt>(n->pos);
                a->targets.push_back(mk<NameExpr>(n->pos, t));
                a->value = std::move(e);
                out.push_back(std::move(a));
                e = mk<NameExpr>(n->pos, t);
            }
            inits.push_back(std::move(e));
        }
        bool loopable = true;
        for (size_t i = 3; i < d.items.size(); ++i)
            if (!only_tail_calls(d.items[i], nd.s, i + 1 == d.items.size())) loopable = false;
        if (loopable) {
            Scope inner{s, s->fn, {}};
            LoopInfo loop{nd.s, {}, false, "", s->fn};
            for (size_t i = 0; i < bs.size(); ++i) {
                std::string w = fresh_local(s->fn, bs[i].first->s);
                inner.names[bs[i].first->s] = Binding{w, s->fn, nullptr};
                loop.params.push_back(w);
                auto a = mk<AssignStmt>(bs[i].first->pos);
                a->targets.push_back(name_at(*bs[i].first, w));
                a->value = std::move(inits[i]);
                out.push_back(std::move(a));
            }
            inner.names[nd.s] = Binding{"", s->fn, &loop};
            Dest ld = dest;
            ld.loop = &loop;
            if (dest.kind == DestKind::Assign) ld.kind = DestKind::AssignBreak;
            if (dest.kind == DestKind::Effect) ld.kind = DestKind::Break;
            auto w = mk<WhileStmt>(d.pos);
            w->cond = mk<BoolLitExpr>(d.pos, true);
            Scope body_scope{&inner, s->fn, {}};
            body(d, 3, w->body, ld, &body_scope);
            out.push_back(std::move(w));
            // Inside an outer loop's tail position, leaving this loop leaves that one too.
            if (dest.kind == DestKind::AssignBreak || dest.kind == DestKind::Break) out.push_back(mk<BreakStmt>(d.pos));
            return;
        }
        // A local function whose self tail calls loop; then called with the inits.
        Scope inner{s, s->fn, {}};
        std::string fw = fresh_local(s->fn, nd.s);
        inner.names[nd.s] = Binding{fw, s->fn, nullptr};
        Datum params;
        params.kind = DatumKind::List;
        params.pos = d.items[2].pos;
        for (auto& [n, v] : bs) params.items.push_back(*n);
        auto def = function_def(nd.s, fw, params, SIZE_MAX, d, 3, &inner, d.pos);
        out.push_back(std::move(def));
        auto c = mk<CallExpr>(d.pos);
        c->func = name_at(nd, fw);
        for (auto& e : inits) c->args.push_back(std::move(e));
        deliver(std::move(c), non_tail(dest), out, d.pos);
    }

    void try_stmt(const Datum& d, Block& out, const Dest& dest, Scope* s) {
        size_t i = 1;
        auto is_clause = [&](const Datum& x, const char* k) {
            return x.is_list() && !x.items.empty() && x.items[0].is_symbol(k);
        };
        std::vector<const Datum*> forms;
        const Datum* c = nullptr;
        const Datum* fin = nullptr;
        for (; i < d.items.size(); ++i) {
            const Datum& x = d.items[i];
            if (is_clause(x, "catch")) {
                if (c || fin) fail(x, "only one catch clause, before finally");
                c = &x;
            } else if (is_clause(x, "finally")) {
                if (fin) fail(x, "only one finally clause");
                fin = &x;
            } else {
                if (c || fin) fail(x, "the body of try comes before catch and finally");
                forms.push_back(&x);
            }
        }
        if (!c && !fin) fail(d, "try needs a catch or a finally clause");
        std::string t;
        Dest td;
        if (dest.kind != DestKind::Effect && dest.kind != DestKind::Break) {
            t = temp(s->fn);
            td.kind = DestKind::Assign;
            td.var = t;
        }
        auto st = mk<TryStmt>(d.pos);
        Datum b;
        b.kind = DatumKind::List;
        b.pos = d.pos;
        b.end = d.end;
        b.items.emplace_back();
        for (auto* f : forms) b.items.push_back(*f);
        {
            Scope inner{s, s->fn, {}};
            body(b, 1, st->body, td, &inner);
        }
        if (c) {
            if (c->items.size() < 2 || c->items[1].kind != DatumKind::Symbol)
                fail(*c, "catch needs a name for the error: (catch e handler...)");
            check_bindable(c->items[1]);
            Scope inner{s, s->fn, {}};
            ExceptHandler h;
            h.pos = c->pos;
            h.types.push_back(mk<NameExpr>(c->pos, "Error"));
            h.name = fresh_local(s->fn, c->items[1].s);
            inner.names[c->items[1].s] = Binding{h.name, s->fn, nullptr};
            body(*c, 2, h.body, td, &inner);
            st->handlers.push_back(std::move(h));
        }
        if (fin) {
            Scope inner{s, s->fn, {}};
            Dest eff;
            body(*fin, 1, st->finalbody, eff, &inner);
            if (st->finalbody.empty()) st->finalbody.push_back(mk<PassStmt>(fin->pos));
        }
        if (st->body.empty()) st->body.push_back(mk<PassStmt>(d.pos));
        out.push_back(std::move(st));
        if (!t.empty())
            deliver(name_at(d, t), non_tail(dest), out, d.pos);
        else if (dest.kind == DestKind::Break)
            out.push_back(mk<BreakStmt>(d.pos));
    }

    void set_stmt(const Datum& d, Block& out, Scope* s) {
        if (d.items.size() != 3 || d.items[1].kind != DatumKind::Symbol) fail(d, "set! takes a name and a value");
        const Datum& n = d.items[1];
        std::string w;
        if (const Binding* b = lookup(s, n.s)) {
            if (b->loop) fail(n, "cannot set! '" + n.s + "': it names a named let");
            if (b->fn != s->fn)
                fail(n, "cannot set! '" + n.s +
                            "': it is a variable of an enclosing function, captured by value (use an atom for "
                            "shared mutable state)");
            w = b->weft;
        } else if (defines_.count(n.s) || known_.count(global_name(n.s))) {
            if (!s->fn->toplevel)
                fail(n, "cannot set! the global '" + n.s +
                            "' inside a function: module names are read-only in functions (use an atom for shared "
                            "mutable state)");
            w = defines_.count(n.s) ? defines_.at(n.s) : global_name(n.s);
        } else {
            std::string hint = closest_name(n.s, candidates(s));
            fail(n, "unbound symbol '" + n.s + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
        }
        ExprPtr v = expr(d.items[2], out, s);
        auto a = mk<AssignStmt>(d.pos);
        a->targets.push_back(name_at(n, w));
        a->value = std::move(v);
        out.push_back(std::move(a));
    }

    void import_form(const Datum& d, Block& out) {
        if (d.items.size() < 2) fail(d, "import needs a module name or a path");
        const Datum& m = d.items[1];
        std::string alias;
        if (d.items.size() == 4 && d.items[2].kind == DatumKind::Keyword && d.items[2].s == "as" &&
            d.items[3].kind == DatumKind::Symbol) {
            alias = d.items[3].s;
        } else if (d.items.size() != 2) {
            fail(d, "import is (import m), (import \"./file.wlisp\" :as m) or (import \"./file.weft\" :as m)");
        }
        auto st = mk<ImportStmt>(d.pos);
        if (m.kind == DatumKind::Symbol) {
            st->module = m.s;
            if (alias.empty()) alias = m.s;
        } else if (m.kind == DatumKind::Str) {
            st->module = m.s;
            st->is_path = true;
            if (alias.empty()) {
                std::string stem = m.s.substr(m.s.find_last_of('/') + 1);
                alias = stem.substr(0, stem.find('.'));
            }
        } else {
            fail(m, "import needs a module name or a path string");
        }
        std::string w = "__mod_" + mangle(alias);
        module_aliases_[alias] = w;
        st->alias = w;
        out.push_back(std::move(st));
    }

    // (-> x (f a) g) is (g (f x a)); (->> x (f a)) is (f a x).
    Datum thread(const Datum& d, bool last) {
        if (d.items.size() < 2) fail(d, d.items[0].s + " needs a value");
        Datum acc = d.items[1];
        for (size_t i = 2; i < d.items.size(); ++i) {
            const Datum& step = d.items[i];
            Datum call;
            call.kind = DatumKind::List;
            call.pos = step.pos;
            call.end = step.end;
            if (step.is_list() && !step.items.empty()) {
                call.items.push_back(step.items[0]);
                if (!last) call.items.push_back(acc);
                for (size_t j = 1; j < step.items.size(); ++j) call.items.push_back(step.items[j]);
                if (last) call.items.push_back(acc);
            } else {
                call.items.push_back(step);
                call.items.push_back(acc);
            }
            acc = std::move(call);
        }
        return acc;
    }

    // Literal data of (quote d).
    ExprPtr quoted(const Datum& d) {
        switch (d.kind) {
            case DatumKind::Symbol:
                fail(d, "quoted symbol '" + d.s +
                            "': there are no symbol values in this Lisp (use a string or a keyword)");
            case DatumKind::List:
            case DatumKind::Vector: {
                auto l = mk<ListExpr>(d.pos);
                for (auto& x : d.items) l->elts.push_back(quoted(x));
                return l;
            }
            case DatumKind::Map: {
                auto m = mk<DictExpr>(d.pos);
                for (size_t i = 0; i < d.items.size(); i += 2) {
                    m->keys.push_back(quoted(d.items[i]));
                    m->values.push_back(quoted(d.items[i + 1]));
                }
                return m;
            }
            default:
                return atom(d);
        }
    }

    ExprPtr atom(const Datum& d) {
        switch (d.kind) {
            case DatumKind::Nil: return mk<NoneLitExpr>(d.pos);
            case DatumKind::Bool: return mk<BoolLitExpr>(d.pos, d.b);
            case DatumKind::Int: return mk<IntLitExpr>(d.pos, d.i);
            case DatumKind::Float: return mk<FloatLitExpr>(d.pos, d.f);
            case DatumKind::Str: return mk<StrLitExpr>(d.pos, d.s);
            case DatumKind::Keyword: return keyword(d);
            default: fail(d, "internal: not an atom");
        }
    }

    // Lowers the items of `d` from `from` into expressions, keeping left-to-right order when
    // a later one needs statements (earlier ones are saved in temporaries first).
    std::vector<ExprPtr> operands(const Datum& d, size_t from, Block& out, Scope* s, std::vector<ExprPtr>* head = nullptr) {
        std::vector<ExprPtr> vals;
        for (size_t i = from; i < d.items.size(); ++i) {
            Block sub;
            ExprPtr e = expr(d.items[i], sub, s);
            if (!sub.empty()) {
                auto spill = [&](ExprPtr& v) {
                    if (trivial(v.get())) return;
                    std::string t = temp(s->fn);
                    auto a = mk<AssignStmt>(v->pos);
                    a->targets.push_back(mk<NameExpr>(v->pos, t));
                    a->value = std::move(v);
                    out.push_back(std::move(a));
                    v = mk<NameExpr>(d.items[i].pos, t);
                };
                if (head)
                    for (auto& h : *head) spill(h);
                for (auto& v : vals) spill(v);
                for (auto& st : sub) out.push_back(std::move(st));
            }
            vals.push_back(std::move(e));
        }
        return vals;
    }

    // A copy of a literal or a name (operands that `trivial` accepts).
    static ExprPtr clone_trivial(const Expr* e) {
        switch (e->kind) {
            case ExprKind::Name: return mk<NameExpr>(e->pos, e->as<NameExpr>()->name);
            case ExprKind::NoneLit: return mk<NoneLitExpr>(e->pos);
            case ExprKind::BoolLit: return mk<BoolLitExpr>(e->pos, e->as<BoolLitExpr>()->value);
            case ExprKind::IntLit: return mk<IntLitExpr>(e->pos, e->as<IntLitExpr>()->value);
            case ExprKind::FloatLit: return mk<FloatLitExpr>(e->pos, e->as<FloatLitExpr>()->value);
            case ExprKind::StrLit: return mk<StrLitExpr>(e->pos, e->as<StrLitExpr>()->value);
            default: return mk<NoneLitExpr>(e->pos);
        }
    }

    ExprPtr binop(BinaryOp op, std::vector<ExprPtr> v, Pos p) {
        ExprPtr acc = std::move(v[0]);
        for (size_t i = 1; i < v.size(); ++i) acc = mk<BinaryExpr>(p, op, std::move(acc), std::move(v[i]));
        return acc;
    }

    ExprPtr call(ExprPtr f, std::vector<ExprPtr> args, Pos p) {
        auto c = mk<CallExpr>(p);
        c->func = std::move(f);
        c->args = std::move(args);
        return c;
    }

    // Calls whose head is a primitive: inline operators for the hot ones.
    ExprPtr prim_call(const Datum& d, const Prim& p, Block& out, Scope* s) {
        const std::string& h = p.lisp;
        size_t n = d.items.size() - 1;
        Pos pos = d.pos;
        auto lit_like = [](const Datum& x) {
            return x.kind == DatumKind::Str || x.kind == DatumKind::Keyword || x.kind == DatumKind::Nil;
        };
        if ((h == "+" || h == "*") && n >= 2) return binop(h == "+" ? BinaryOp::Add : BinaryOp::Mul, operands(d, 1, out, s), pos);
        if (h == "-" && n >= 2) return binop(BinaryOp::Sub, operands(d, 1, out, s), pos);
        if (h == "-" && n == 1) return mk<UnaryExpr>(pos, UnaryOp::Neg, std::move(operands(d, 1, out, s)[0]));
        if (h == "/" && n >= 2) return binop(BinaryOp::Div, operands(d, 1, out, s), pos);
        if (h == "quotient" && n == 2) return binop(BinaryOp::FloorDiv, operands(d, 1, out, s), pos);
        if (h == "mod" && n == 2) return binop(BinaryOp::Mod, operands(d, 1, out, s), pos);
        if ((h == "<" || h == ">" || h == "<=" || h == ">=") && n >= 2) {
            auto v = operands(d, 1, out, s);
            auto c = mk<CompareExpr>(pos);
            CmpOp op = h == "<" ? CmpOp::Lt : h == ">" ? CmpOp::Gt : h == "<=" ? CmpOp::Le : CmpOp::Ge;
            c->left = std::move(v[0]);
            for (size_t i = 1; i < v.size(); ++i) {
                c->ops.push_back(op);
                c->comparators.push_back(std::move(v[i]));
            }
            return c;
        }
        if ((h == "=" || h == "not=") && n == 2) {
            auto v = operands(d, 1, out, s);
            ExprPtr e;
            if (lit_like(d.items[1]) || lit_like(d.items[2])) {
                auto c = mk<CompareExpr>(pos);
                c->left = std::move(v[0]);
                c->ops.push_back(CmpOp::Eq);
                c->comparators.push_back(std::move(v[1]));
                e = std::move(c);
            } else {
                e = call(mk<NameExpr>(pos, "__lisp_eq"), std::move(v), pos);
            }
            if (h == "not=") e = mk<UnaryExpr>(pos, UnaryOp::Not, std::move(e));
            return e;
        }
        if (h == "not" && n == 1) {
            ExprPtr c = cond_expr(d.items[1], out, s);
            return mk<UnaryExpr>(pos, UnaryOp::Not, std::move(c));
        }
        if (h == "nil?" && n == 1) {
            auto c = mk<CompareExpr>(pos);
            c->left = std::move(operands(d, 1, out, s)[0]);
            c->ops.push_back(CmpOp::Is);
            c->comparators.push_back(mk<NoneLitExpr>(pos));
            return c;
        }
        if (h == "list") {
            auto l = mk<ListExpr>(pos);
            l->elts = operands(d, 1, out, s);
            return l;
        }
        if (h == "spawn" && n >= 1) {
            // (spawn f args...): the arity is checked at once (TypeError here, not in the task),
            // then a Weft `spawn f(args)` starts the task, so --trace and tracebacks name this
            // call site. The value is nil.
            auto v = operands(d, 1, out, s);
            for (auto& e : v)
                if (!trivial(e.get())) {
                    std::string t = temp(s->fn);
                    auto a = mk<AssignStmt>(e->pos);
                    a->targets.push_back(mk<NameExpr>(e->pos, t));
                    a->value = std::move(e);
                    out.push_back(std::move(a));
                    e = mk<NameExpr>(pos, t);
                }
            auto chk = mk<CallExpr>(pos);
            chk->func = mk<NameExpr>(pos, "__lisp_check_arity");
            chk->args.push_back(clone_trivial(v[0].get()));
            chk->args.push_back(mk<IntLitExpr>(pos, int64_t(n - 1)));
            chk->args.push_back(mk<StrLitExpr>(pos, "spawn"));
            out.push_back(mk<ExprStmt>(pos, std::move(chk)));
            auto c = mk<CallExpr>(pos);
            c->func = std::move(v[0]);
            for (size_t i = 1; i < v.size(); ++i) c->args.push_back(std::move(v[i]));
            c->end = d.end;
            auto sp = mk<SpawnExpr>(pos, std::move(c));
            sp->end = d.end;
            out.push_back(mk<ExprStmt>(pos, std::move(sp)));
            return mk<NoneLitExpr>(pos);
        }
        if ((h == "map-get" || h == "get") && (n == 2 || n == 3))
            return call(mk<NameExpr>(pos, "__lisp_get"), operands(d, 1, out, s), pos);
        // Options: trailing `:name value` pairs become keyword arguments.
        size_t end = d.items.size();
        std::vector<std::pair<const Datum*, const Datum*>> opts;
        if (p.options) {
            size_t first_opt = end;
            size_t from = p.positional >= 0 ? size_t(p.positional) + 1 : 1;
            for (size_t i = from; i < end; ++i)
                if (d.items[i].kind == DatumKind::Keyword) {
                    first_opt = i;
                    break;
                }
            for (size_t i = first_opt; i < end; i += 2) {
                const Datum& k = d.items[i];
                if (k.kind != DatumKind::Keyword || !option_of(p, k.s)) {
                    std::vector<std::string> names;
                    std::string_view rest = p.options;
                    while (!rest.empty()) {
                        size_t sp = rest.find(' ');
                        names.emplace_back(rest.substr(0, sp));
                        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
                    }
                    std::string hint = k.kind == DatumKind::Keyword ? closest_name(k.s, names) : "";
                    fail(k, std::string("unknown option ") +
                                (k.kind == DatumKind::Keyword ? ":" + k.s : datum_to_string(k)) + " for " + h +
                                (hint.empty() ? " (it takes :" + replace_spaces(p.options) + ")"
                                              : " (did you mean :" + hint + "?)"));
                }
                if (i + 1 >= end) fail(k, "option :" + k.s + " needs a value");
                opts.push_back({&k, &d.items[i + 1]});
            }
            end = first_opt;
        }
        std::vector<ExprPtr> head;
        head.push_back(symbol(d.items[0], s));
        Datum args_only = d;
        args_only.items.resize(end);
        auto v = operands(args_only, 1, out, s, &head);
        auto c = mk<CallExpr>(pos);
        c->func = std::move(head[0]);
        c->args = std::move(v);
        for (auto& [k, val] : opts) {
            Keyword kw;
            kw.name = mangle(k->s);
            kw.pos = k->pos;
            Block sub;
            kw.value = expr(*val, sub, s);
            if (!sub.empty()) {
                // Keep the order: the call's operands are evaluated before the option's value.
                for (auto& a : c->args)
                    if (!trivial(a.get())) {
                        std::string t = temp(s->fn);
                        auto as = mk<AssignStmt>(a->pos);
                        as->targets.push_back(mk<NameExpr>(a->pos, t));
                        as->value = std::move(a);
                        out.push_back(std::move(as));
                        a = mk<NameExpr>(pos, t);
                    }
                for (auto& st : sub) out.push_back(std::move(st));
            }
            c->keywords.push_back(std::move(kw));
        }
        return c;
    }

    static std::string replace_spaces(const char* s) {
        std::string out;
        for (const char* c = s; *c; ++c) out += *c == ' ' ? std::string(", :") : std::string(1, *c);
        return out;
    }

    static bool option_of(const Prim& p, const std::string& k) {
        std::string_view rest = p.options;
        while (!rest.empty()) {
            size_t sp = rest.find(' ');
            if (rest.substr(0, sp) == k) return true;
            rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        }
        return false;
    }

    // A call of a host function (m/name) or method (.m obj ...): `:k v` are keyword arguments.
    ExprPtr host_call(const Datum& d, ExprPtr f, size_t from, Block& out, Scope* s, std::vector<ExprPtr>* head) {
        auto c = mk<CallExpr>(d.pos);
        Datum pos_only = d;
        pos_only.items.resize(from);
        std::vector<const Datum*> kw_vals;
        std::vector<const Datum*> kw_names;
        for (size_t i = from; i < d.items.size(); ++i) {
            if (d.items[i].kind == DatumKind::Keyword && i + 1 < d.items.size()) {
                kw_names.push_back(&d.items[i]);
                kw_vals.push_back(&d.items[i + 1]);
                ++i;
            } else {
                if (!kw_names.empty()) fail(d.items[i], "a positional argument cannot follow keyword arguments");
                pos_only.items.push_back(d.items[i]);
            }
        }
        for (size_t i = 0; i < kw_names.size(); ++i) pos_only.items.push_back(*kw_vals[i]);
        std::vector<ExprPtr> hd;
        if (head) hd = std::move(*head);
        hd.push_back(std::move(f));
        auto vals = operands(pos_only, from, out, s, &hd);
        c->func = std::move(hd.back());
        size_t npos = vals.size() - kw_names.size();
        for (size_t i = 0; i < npos; ++i) c->args.push_back(std::move(vals[i]));
        for (size_t i = 0; i < kw_names.size(); ++i) {
            Keyword kw;
            kw.name = mangle(kw_names[i]->s);
            kw.pos = kw_names[i]->pos;
            kw.value = std::move(vals[npos + i]);
            c->keywords.push_back(std::move(kw));
        }
        return c;
    }

    ExprPtr expr_inner(const Datum& d, Block& out, Scope* s) {
        switch (d.kind) {
            case DatumKind::Symbol: return symbol(d, s);
            case DatumKind::Vector: {
                auto l = mk<ListExpr>(d.pos);
                l->elts = operands(d, 0, out, s);
                return l;
            }
            case DatumKind::Map: {
                auto m = mk<DictExpr>(d.pos);
                auto v = operands(d, 0, out, s);
                for (size_t i = 0; i < v.size(); i += 2) {
                    m->keys.push_back(std::move(v[i]));
                    m->values.push_back(std::move(v[i + 1]));
                }
                return m;
            }
            case DatumKind::List: break;
            default: return atom(d);
        }
        if (d.items.empty()) return mk<ListExpr>(d.pos);  // () is the empty list
        const Datum& h = d.items[0];
        if (h.kind == DatumKind::Symbol && !lookup(s, h.s)) {
            const std::string& n = h.s;
            if (n == "quote") {
                if (d.items.size() != 2) fail(d, "quote takes one form");
                return quoted(d.items[1]);
            }
            if (n == "lambda") return lambda(d, out, s);
            if (n == "if" && (d.items.size() == 3 || d.items.size() == 4)) {
                // Plain expressions stay an expression.
                Block b1, b2, b3;
                ExprPtr c = cond_expr(d.items[1], b1, s);
                ExprPtr a = expr(d.items[2], b2, s);
                ExprPtr b = d.items.size() == 4 ? expr(d.items[3], b3, s) : mk<NoneLitExpr>(d.pos);
                if (b2.empty() && b3.empty()) {
                    for (auto& st : b1) out.push_back(std::move(st));
                    auto e = mk<IfExpExpr>(d.pos);
                    e->cond = std::move(c);
                    e->then_value = std::move(a);
                    e->else_value = std::move(b);
                    return e;
                }
                return via_temp(d, out, s);
            }
            if (n == "and" || n == "or") {
                bool all_bool = d.items.size() > 2;
                for (size_t i = 1; i < d.items.size(); ++i) all_bool = all_bool && known_bool(d.items[i], s);
                if (all_bool) {
                    auto v = operands(d, 1, out, s);
                    auto b = mk<BoolOpExpr>(d.pos, n == "and");
                    b->values = std::move(v);
                    return b;
                }
                return via_temp(d, out, s);
            }
            if (n == "else" || n == "catch" || n == "finally")
                fail(h, "'" + n + "' is allowed only inside " + (n == "else" ? "cond" : "try"));
            if (kSpecialForms.count(n)) return via_temp(d, out, s);
            if (n.size() > 2 && n[0] == '.' && n[1] == '-') {
                if (d.items.size() != 2) fail(d, "(" + n + " obj) reads a field: it takes one object");
                ExprPtr o = expr(d.items[1], out, s);
                auto a = mk<AttributeExpr>(d.pos, std::move(o), mangle(n.substr(2)));
                return a;
            }
            if (n.size() > 1 && n[0] == '.') {
                if (d.items.size() < 2) fail(d, "(" + n + " obj args...) calls a method: it needs an object");
                ExprPtr o = expr(d.items[1], out, s);
                // The receiver is evaluated first; the method is looked up on it.
                Block sub;
                auto c = host_call(d, mk<NameExpr>(d.pos, "__placeholder"), 2, sub, s, nullptr);
                if (!sub.empty() && !trivial(o.get())) {
                    std::string t = temp(s->fn);
                    auto a = mk<AssignStmt>(d.pos);
                    a->targets.push_back(mk<NameExpr>(d.pos, t));
                    a->value = std::move(o);
                    out.push_back(std::move(a));
                    o = mk<NameExpr>(d.pos, t);
                }
                for (auto& st : sub) out.push_back(std::move(st));
                auto* call_e = static_cast<CallExpr*>(c.get());
                call_e->func = mk<AttributeExpr>(d.pos, std::move(o), mangle(n.substr(1)));
                return c;
            }
            size_t slash = n.find('/');
            if (slash != std::string::npos && slash > 0 && slash + 1 < n.size() && !defines_.count(n) &&
                !known_.count(global_name(n)))
                return host_call(d, symbol(h, s), 1, out, s, nullptr);
            if (!defines_.count(n) && !known_.count(global_name(n)))
                if (const Prim* p = find_prim(n)) return prim_call(d, *p, out, s);
        }
        if (h.kind == DatumKind::Keyword) {
            // (:k m) is (map-get m :k); (:k m default) too.
            if (d.items.size() < 2 || d.items.size() > 3) fail(d, "(:" + h.s + " m) takes a map and an optional default");
            auto v = operands(d, 1, out, s);
            v.insert(v.begin() + 1, keyword(h));
            return call(mk<NameExpr>(d.pos, "__lisp_get"), std::move(v), d.pos);
        }
        if (h.kind != DatumKind::Symbol && h.kind != DatumKind::List)
            fail(h, "cannot call " + datum_to_string(h) + ": a " + kind_name(h.kind) + " is not a function");
        std::vector<ExprPtr> head;
        Block hb;
        head.push_back(expr(h, hb, s));
        for (auto& st : hb) out.push_back(std::move(st));
        auto v = operands(d, 1, out, s, &head);
        return call(std::move(head[0]), std::move(v), d.pos);
    }
};

}  // namespace

std::string primitive_name(std::string_view weft_name) {
    if (weft_name.substr(0, 2) != "l_") return "";
    for (auto& p : kPrims)
        if (weft_name.substr(2) == p.weft) return p.lisp;  // the first (canonical) name
    return "";
}

std::unique_ptr<Module> lower_module(const std::vector<Datum>& forms, const std::string& path,
                                     const LowerOptions& options) {
    Lowerer l(path, options);
    return l.run(forms);
}

std::unique_ptr<Module> parse_lisp_module(std::string_view source, const std::string& path,
                                          const LowerOptions& options) {
    auto forms = read_all(source, path);
    return lower_module(forms, path, options);
}

}  // namespace weft::lisp
