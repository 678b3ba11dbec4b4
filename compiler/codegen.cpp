// codegen.cpp — AST to register bytecode, with name resolution on the way.
//
// Register discipline (as in Lua's lcode.c): a function's locals occupy the
// lowest registers, fixed for the whole function (the pre-pass knows them all);
// temporaries are allocated above them stack-wise and released at the end of
// each statement or sub-expression. Calls put the callee and its arguments in
// consecutive registers so the callee's frame starts right there, without
// copying.
//
// Definite assignment: the generator tracks which locals are certainly assigned
// at each point (a sequential walk; branches intersect). Reads of other locals
// get a CheckDef so an unassigned variable raises NameError instead of reading
// None — without a check on every read.
//
// Value semantics: stores into a nested place (`a.b[k] = v`, `d[k].append(x)`)
// are compiled as a walk of the place with Place* instructions, which unshare
// each container on the way down and then mutate in place, so no intermediate
// copy is ever made when the storage is not shared.
#include "compiler/codegen.h"

#include <algorithm>
#include <bitset>
#include <functional>
#include <set>
#include <unordered_set>

#include "compiler/diagnostic.h"
#include "compiler/suggest.h"

namespace weft {

namespace {

using namespace ast;

[[noreturn]] void fail(Pos pos, const std::string& msg) {
    throw CompileError(Diagnostic{"", pos, msg});
}

const std::unordered_set<std::string> kMutatingMethods = {
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update",
    "setdefault", "popitem", "add", "discard", "difference_update", "intersection_update",
    "symmetric_difference_update",
};

// ---------------------------------------------------------------------------
// Pre-pass: names bound in a function body (not descending into nested scopes).

struct Bindings {
    std::vector<std::string> order;  // first-binding order
    std::unordered_set<std::string> names;
    // First position of a plain assignment (`x = ...`, `x += ...`, `x: T = ...`) of
    // each name. Only these may not target a module name inside a function: a
    // loop variable, `except ... as`, `with ... as`, an import or a nested def
    // simply shadows the module name with a local.
    std::unordered_map<std::string, Pos> plain_assign;
    void add(const std::string& n, Pos pos = {}, bool plain = false) {
        if (names.insert(n).second) order.push_back(n);
        if (plain && !plain_assign.count(n)) plain_assign.emplace(n, pos);
    }
};

void collect_target(const Expr* e, Bindings& b, bool plain) {
    switch (e->kind) {
        case ExprKind::Name: {
            auto& n = e->as<NameExpr>()->name;
            b.add(n, e->pos, plain);
            break;
        }
        case ExprKind::Tuple:
            for (auto& x : e->as<TupleExpr>()->elts) collect_target(x.get(), b, plain);
            break;
        case ExprKind::List:
            for (auto& x : e->as<ListExpr>()->elts) collect_target(x.get(), b, plain);
            break;
        case ExprKind::Starred:
            collect_target(e->as<StarredExpr>()->value.get(), b, plain);
            break;
        default:
            break;  // attribute / subscript targets bind nothing
    }
}

void collect_pattern(const Pattern* p, Bindings& b) {
    switch (p->kind) {
        case PatternKind::Capture:
            b.add(p->as<CapturePattern>()->name, p->pos);
            break;
        case PatternKind::Sequence: {
            auto* s = p->as<SequencePattern>();
            for (auto& x : s->patterns) collect_pattern(x.get(), b);
            break;
        }
        case PatternKind::Mapping: {
            auto* m = p->as<MappingPattern>();
            for (auto& x : m->patterns) collect_pattern(x.get(), b);
            if (!m->rest.empty()) b.add(m->rest, p->pos);
            break;
        }
        case PatternKind::Class: {
            auto* c = p->as<ClassPattern>();
            for (auto& x : c->positional) collect_pattern(x.get(), b);
            for (auto& x : c->kw_patterns) collect_pattern(x.get(), b);
            break;
        }
        case PatternKind::As: {
            auto* a = p->as<AsPattern>();
            collect_pattern(a->pattern.get(), b);
            b.add(a->name, p->pos);
            break;
        }
        case PatternKind::Or:
            for (auto& x : p->as<OrPattern>()->alternatives) collect_pattern(x.get(), b);
            break;
        default:
            break;
    }
}

void collect_block(const Block& block, Bindings& b);

void collect_stmt(const Stmt* s, Bindings& b) {
    switch (s->kind) {
        case StmtKind::Assign:
            for (auto& t : s->as<AssignStmt>()->targets) collect_target(t.get(), b, true);
            break;
        case StmtKind::AugAssign:
            collect_target(s->as<AugAssignStmt>()->target.get(), b, true);
            break;
        case StmtKind::AnnAssign:
            collect_target(s->as<AnnAssignStmt>()->target.get(), b, true);
            break;
        case StmtKind::If: {
            auto* x = s->as<IfStmt>();
            collect_block(x->body, b);
            collect_block(x->orelse, b);
            break;
        }
        case StmtKind::While: {
            auto* x = s->as<WhileStmt>();
            collect_block(x->body, b);
            collect_block(x->orelse, b);
            break;
        }
        case StmtKind::For: {
            auto* x = s->as<ForStmt>();
            collect_target(x->target.get(), b, false);
            collect_block(x->body, b);
            collect_block(x->orelse, b);
            break;
        }
        case StmtKind::Try: {
            auto* x = s->as<TryStmt>();
            collect_block(x->body, b);
            for (auto& h : x->handlers) {
                if (!h.name.empty()) b.add(h.name, h.pos);
                collect_block(h.body, b);
            }
            collect_block(x->orelse, b);
            collect_block(x->finalbody, b);
            break;
        }
        case StmtKind::With: {
            auto* x = s->as<WithStmt>();
            for (auto& it : x->items)
                if (it.target) collect_target(it.target.get(), b, false);
            collect_block(x->body, b);
            break;
        }
        case StmtKind::FunctionDef:
            b.add(s->as<FunctionDefStmt>()->name, s->pos);
            break;
        case StmtKind::StructDef:
        case StmtKind::ActorDef:
            b.add(s->as<StructDefStmt>()->name, s->pos);
            break;
        case StmtKind::Import: {
            auto* x = s->as<ImportStmt>();
            if (!x->alias.empty()) {
                b.add(x->alias, s->pos);
            } else {
                auto dot = x->module.find('.');
                b.add(dot == std::string::npos ? x->module : x->module.substr(0, dot), s->pos);
            }
            break;
        }
        case StmtKind::ImportFrom:
            for (auto& n : s->as<ImportFromStmt>()->names) b.add(n.alias.empty() ? n.name : n.alias, n.pos);
            break;
        case StmtKind::Match: {
            auto* x = s->as<MatchStmt>();
            for (auto& c : x->cases) {
                collect_pattern(c.pattern.get(), b);
                collect_block(c.body, b);
            }
            break;
        }
        case StmtKind::SpawnBlock:
            collect_block(s->as<SpawnBlockStmt>()->body, b);
            break;
        case StmtKind::Concurrent:
            collect_block(s->as<ConcurrentStmt>()->body, b);
            break;
        case StmtKind::Race:
            for (auto& branch : s->as<RaceStmt>()->branches) collect_block(branch, b);
            break;
        case StmtKind::Sequential:
            collect_block(s->as<SequentialStmt>()->body, b);
            break;
        case StmtKind::Select:
            for (auto& c : s->as<SelectStmt>()->cases) {
                if (c.target) collect_target(c.target.get(), b, false);
                if (c.ok_target) collect_target(c.ok_target.get(), b, false);
                collect_block(c.body, b);
            }
            break;
        default:
            break;
    }
}

void collect_block(const Block& block, Bindings& b) {
    for (auto& s : block) collect_stmt(s.get(), b);
}

// ---------------------------------------------------------------------------

struct LoopInfo {
    std::vector<int> breaks;
    std::vector<int> continues;
    int continue_target = -1;  // known target (while loops), else patched later
    size_t finally_depth;      // number of enclosing finally blocks at loop entry
};

struct FuncState {
    FuncState* parent = nullptr;
    Chunk* chunk = nullptr;
    bool is_module = false;
    std::unordered_map<std::string, int> locals;       // name -> register
    std::vector<std::unordered_map<std::string, int>> comp_scopes;  // comprehension variables
    std::unordered_map<std::string, int> capture_index;  // name -> capture slot
    std::string self_name;                               // a def's own name (self-recursion)
    std::set<std::string> defined;                       // definitely assigned locals
    int nactive = 0;                                     // registers used by locals
    int freereg = 0;
    std::vector<LoopInfo> loops;
    std::vector<const Block*> finally_blocks;  // enclosing finally bodies (innermost last)
    // Parallel to finally_blocks: -1 for a finally body; r >= 0 for a concurrent:
    // scope in register r; -(r + 2) for a `with` whose manager is in register r.
    std::vector<int> finally_regs;
    std::unordered_map<std::string, int> type_index;  // param name -> annotation type index
    int return_type_index = -1;
    std::vector<int> pending_handlers;
};

class Codegen {
public:
    Codegen(GlobalLayout& g, const CompileOptions& o) : globals_(g), opts_(o) {}

    std::unique_ptr<Chunk> module(const Module& m) {
        auto chunk = std::make_unique<Chunk>();
        chunk->name = "<module>";
        chunk->path = m.path;
        chunk->doc = m.doc;
        path_ = m.path;
        FuncState fs;
        fs.chunk = chunk.get();
        fs.is_module = true;
        Bindings b;
        collect_block(m.body, b);
        for (auto& n : b.order) {
            module_names_.insert(n);
            globals_.slot_for(n);
        }
        // Names defined by earlier REPL inputs are module names too.
        for (auto& n : globals_.names) module_names_.insert(n);
        fs_ = &fs;
        try {
            block(m.body, /*top=*/true);
            emit(make_abc(Op::ReturnNone, 0, 0, 0));
        } catch (CompileError& e) {
            if (e.diag.path.empty()) e.diag.path = path_;
            throw;
        }
        chunk->nregs = std::max(chunk->nregs, 1);
        return chunk;
    }

private:
    GlobalLayout& globals_;
    const CompileOptions& opts_;
    // Spec section 5: how the next call compiled may be deferred. A call in a
    // deferral position (the whole right-hand side of an assignment, an element of
    // a display or of a comprehension's result, the operand of return) is `Always`:
    // CallDefer defers it at run time when its callee is a Weft function. An
    // argument of a call is deferred only when that outer call turns out to be a
    // call of a Weft function: `IfCallee` names the register of the outer callee
    // (CallDeferIf), `IfMethod` the register of the outer receiver and the constant
    // of the method's name (CallDeferIfM). Deferral is only a permission: the
    // instructions fall back to a plain call at run time.
    struct DeferMode {
        enum class Kind : uint8_t { None, Always, IfCallee, IfMethod };
        Kind kind = Kind::None;
        int reg = 0;     // IfCallee: the outer callee; IfMethod: the outer receiver
        int name_k = 0;  // IfMethod: the constant of the outer method's name
    };
    DeferMode defer_next_;
    int sequential_depth_ = 0;
    bool deferral_allowed() const { return !opts_.sequential && sequential_depth_ == 0; }
    // Compiles `e` into `target`, deferring it (as `mode` says) if it is a call in a
    // deferral position.
    //
    // Where deferral is off for a region (a `sequential:` block, an `@sequential`
    // function, a try body), a call in a deferral position still runs here, but a callee
    // may return a deferred call's promise (`return g(x)`): it is forced here too, so the
    // region's order holds and a try's handlers see its error (Force B=1 leaves task
    // handles and lazy values alone).
    void deferred_to(const Expr* e, int target, const DeferMode& mode) {
        if (e->kind != ExprKind::Call) {
            expr_to(e, target);
            return;
        }
        if (deferral_allowed()) defer_next_ = mode;
        expr_to(e, target);
        defer_next_ = DeferMode{};
        if (!opts_.sequential && sequential_depth_ > 0) emit(make_abc(Op::Force, target, 1, 0));
    }
    void deferred_to(const Expr* e, int target) { deferred_to(e, target, DeferMode{DeferMode::Kind::Always}); }
    std::string path_;
    std::unordered_set<std::string> module_names_;
    FuncState* fs_ = nullptr;
    Pos pos_{1, 1};
    // The expression being compiled (expr_to, cond_jump): its instructions get its columns in
    // Chunk::cols when pos_ is still its start (a statement's own instructions get none).
    Pos span_start_, span_end_;

    // ---- emission helpers -------------------------------------------------
    Chunk& ch() { return *fs_->chunk; }
    int pc() const { return int(fs_->chunk->code.size()); }
    int emit(Instr i) {
        ch().code.push_back(i);
        ch().lines.push_back(pos_.line);
        uint32_t cols = 0;
        if (span_start_.line == pos_.line && span_start_.col == pos_.col && span_end_.line >= pos_.line &&
            pos_.col < 0xffff) {
            uint32_t end = span_end_.line > pos_.line ? 0xffff : std::min<uint32_t>(span_end_.col, 0xfffe);
            if (end > pos_.col) cols = (pos_.col << 16) | end;
        }
        ch().cols.push_back(cols);
        return pc() - 1;
    }
    void emit_checkdef(int reg, const std::string& n) {
        emit(make_abx(Op::CheckDef, reg, const_str(n)));
        ch().uses_checkdef = true;
    }
    int emit_jump() { return emit(make_sj(Op::Jmp, 0)); }
    void patch(int at, int target) {
        Op op = get_op(ch().code[at]);
        if (op == Op::Jmp || op == Op::Loop) {
            ch().code[at] = make_sj(op, target - (at + 1));
        } else {  // ForIter / ForPrep / ForLoop use sBx
            ch().code[at] = make_asbx(op, get_a(ch().code[at]), target - (at + 1));
        }
    }
    void patch_here(int at) { patch(at, pc()); }
    void patch_all(const std::vector<int>& v, int target) {
        for (int x : v) patch(x, target);
    }
    void emit_loop_back(int target) { emit(make_sj(Op::Loop, target - (pc() + 1))); }

    int alloc() {
        int r = fs_->freereg++;
        if (r >= kMaxRegisters) fail(pos_, "function too complex (more than 250 registers)");
        if (fs_->freereg > ch().nregs) ch().nregs = fs_->freereg;
        return r;
    }
    int alloc_n(int n) {
        int r = fs_->freereg;
        for (int i = 0; i < n; ++i) alloc();
        return r;
    }
    void free_to(int r) { fs_->freereg = r; }

    // Attribute instructions (GetAttr, SetAttr, SetAttrP, PlaceAttr) hold the name's constant
    // index in 8 bits. So that a function with hundreds of constants can still read `p.x`, the
    // constants from kAttrReserveStart to 255 are kept for attribute names (attr_const): other
    // constants skip to 256 once the table reaches that point. (Before, such a read compiled
    // into a subscript, `p["x"]`.)
    static constexpr size_t kAttrReserveStart = 200;
    static Constant reserved_slot() {
        Constant c;
        c.s = std::string("\0reserved for an attribute name", 32);  // equal to no real constant
        return c;
    }
    int add_const(Constant c) {
        auto& k = ch().consts;
        for (size_t i = 0; i < k.size(); ++i)
            if (k[i] == c) return int(i);
        if (k.size() == kAttrReserveStart)
            while (k.size() < 256) k.push_back(reserved_slot());
        k.push_back(std::move(c));
        if (k.size() > 65535) fail(pos_, "too many constants in one function");
        return int(k.size() - 1);
    }
    // The constant index of an attribute name, at most 255 (see add_const). Compile error when
    // a function uses more than 56 attribute names after 200 other constants.
    int attr_const(const std::string& name) {
        Constant c;
        c.kind = Constant::Kind::Str;
        c.s = name;
        auto& k = ch().consts;
        for (size_t i = 0; i < k.size() && i < 256; ++i)
            if (k[i] == c) return int(i);
        if (k.size() < kAttrReserveStart) return add_const(std::move(c));
        static const Constant reserved = reserved_slot();
        if (k.size() == kAttrReserveStart)  // opens the reserved range
            while (k.size() < 256) k.push_back(reserved);
        for (size_t i = kAttrReserveStart; i < 256; ++i)
            if (k[i] == reserved) {
                k[i] = std::move(c);
                return int(i);
            }
        fail(pos_, "too many attribute names and constants in one function (split it)");
    }
    int const_str(const std::string& s) {
        Constant c;
        c.kind = Constant::Kind::Str;
        c.s = s;
        return add_const(std::move(c));
    }
    int const_int(int64_t i) {
        Constant c;
        c.kind = Constant::Kind::Int;
        c.i = i;
        return add_const(std::move(c));
    }
    int const_float(double f) {
        Constant c;
        c.kind = Constant::Kind::Float;
        c.f = f;
        return add_const(std::move(c));
    }
    int const_names(std::vector<std::string> names) {
        Constant c;
        c.kind = Constant::Kind::NameTuple;
        c.names = std::move(names);
        return add_const(std::move(c));
    }

    // Returns the constant index of a literal expression, or -1.
    int literal_const(const Expr* e) {
        switch (e->kind) {
            case ExprKind::IntLit:
                return const_int(e->as<IntLitExpr>()->value);
            case ExprKind::FloatLit:
                return const_float(e->as<FloatLitExpr>()->value);
            case ExprKind::StrLit:
                return const_str(e->as<StrLitExpr>()->value);
            default:
                return -1;
        }
    }

    // ---- name resolution --------------------------------------------------
    enum class NameKind { Local, Capture, SelfFn, Global, Builtin };
    struct NameRef {
        NameKind kind;
        int index;
    };

    static int find_local(FuncState* f, const std::string& n) {
        for (auto it = f->comp_scopes.rbegin(); it != f->comp_scopes.rend(); ++it) {
            auto x = it->find(n);
            if (x != it->end()) return x->second;
        }
        auto x = f->locals.find(n);
        return x == f->locals.end() ? -1 : x->second;
    }

    // Capture index of `n` in function `f`, creating the capture chain; -1 if not
    // an outer local.
    int resolve_capture(FuncState* f, const std::string& n) {
        auto it = f->capture_index.find(n);
        if (it != f->capture_index.end()) return it->second;
        FuncState* p = f->parent;
        if (!p) return -1;
        CaptureDesc d;
        d.name = n;
        int reg = p->is_module ? (p->comp_scopes.empty() ? -1 : find_local(p, n)) : find_local(p, n);
        if (reg >= 0) {
            d.from_parent_register = true;
            d.index = reg;
        } else {
            if (p->is_module) return -1;
            if (!p->self_name.empty() && p->self_name == n && !p->locals.count(n)) return -1;
            int ci = resolve_capture(p, n);
            if (ci < 0) return -1;
            d.from_parent_register = false;
            d.index = ci;
        }
        int idx = int(f->chunk->captures.size());
        f->chunk->captures.push_back(d);
        f->capture_index.emplace(n, idx);
        return idx;
    }

    NameRef resolve(const std::string& n) {
        FuncState* f = fs_;
        int reg = f->is_module ? (f->comp_scopes.empty() ? -1 : find_local(f, n)) : find_local(f, n);
        if (reg >= 0) return {NameKind::Local, reg};
        if (!f->is_module) {
            if (!f->self_name.empty() && f->self_name == n) return {NameKind::SelfFn, 0};
            int ci = resolve_capture(f, n);
            if (ci >= 0) return {NameKind::Capture, ci};
        }
        if (module_names_.count(n) || globals_.slots.count(n)) return {NameKind::Global, globals_.slot_for(n)};
        if (opts_.builtins) {
            auto it = opts_.builtins->find(n);
            if (it != opts_.builtins->end()) return {NameKind::Builtin, it->second};
        }
        // Every module name is assigned somewhere in the module's top level, so a
        // name found nowhere is a mistake the compiler can report.
        fail(pos_, "name '" + n + "' is not defined" + did_you_mean(n, names_in_scope()));
    }

    // The names a function body could mean, innermost first (for "did you mean" hints):
    // comprehension variables, locals and the enclosing functions' locals, module names,
    // builtins; each group sorted, as CPython's dir() is.
    std::vector<std::string> names_in_scope() const {
        std::vector<std::string> out;
        auto add_sorted = [&](std::vector<std::string> group) {
            std::sort(group.begin(), group.end());
            out.insert(out.end(), group.begin(), group.end());
        };
        for (FuncState* f = fs_; f; f = f->parent) {
            std::vector<std::string> group;
            for (auto& scope : f->comp_scopes)
                for (auto& [name, reg] : scope) group.push_back(name);
            if (!f->is_module)
                for (auto& [name, reg] : f->locals) group.push_back(name);
            if (!f->self_name.empty()) group.push_back(f->self_name);
            add_sorted(std::move(group));
        }
        std::vector<std::string> globals(module_names_.begin(), module_names_.end());
        for (auto& [name, slot] : globals_.slots) globals.push_back(name);
        add_sorted(std::move(globals));
        if (opts_.builtins) {
            std::vector<std::string> builtins;
            for (auto& [name, index] : *opts_.builtins)
                if (name.rfind("__", 0) != 0) builtins.push_back(name);  // not the hidden ones
            add_sorted(std::move(builtins));
        }
        return out;
    }

    bool is_builtin_name(const Expr* e, const char* name) {
        if (e->kind != ExprKind::Name || e->as<NameExpr>()->name != name) return false;
        return resolve(name).kind == NameKind::Builtin;
    }

    // Register of a local variable that is definitely assigned, else -1.
    int local_reg_if_defined(const Expr* e) {
        if (e->kind != ExprKind::Name) return -1;
        auto& n = e->as<NameExpr>()->name;
        NameRef r = resolve(n);
        if (r.kind != NameKind::Local) return -1;
        if (!is_defined(n, r.index)) return -1;
        return r.index;
    }
    bool is_defined(const std::string& n, int reg) {
        if (reg >= fs_->nactive) return true;  // comprehension variable (always assigned)
        return fs_->defined.count(n) > 0;
    }

    // ---- expressions ------------------------------------------------------

    // Compiles `e` into some register and returns it: the variable's own register
    // for a defined local, else a new temporary.
    int expr_any(const Expr* e) {
        int r = local_reg_if_defined(e);
        if (r >= 0) return r;
        int t = alloc();
        expr_to(e, t);
        return t;
    }

    void expr_to(const Expr* e, int target) {
        Pos saved = pos_, saved_start = span_start_, saved_end = span_end_;
        pos_ = span_start_ = e->pos;
        span_end_ = e->end;
        expr_to_inner(e, target);
        pos_ = saved;
        span_start_ = saved_start;
        span_end_ = saved_end;
    }

    void load_name(const std::string& n, int target) {
        NameRef r = resolve(n);
        switch (r.kind) {
            case NameKind::Local:
                if (!is_defined(n, r.index)) emit_checkdef(r.index, n);
                if (r.index != target) emit(make_abc(Op::Move, target, r.index, 0));
                break;
            case NameKind::Capture:
                emit(make_abc(Op::GetCapture, target, r.index, 0));
                break;
            case NameKind::SelfFn:
                emit(make_abc(Op::GetSelfFn, target, 0, 0));
                break;
            case NameKind::Global:
                if (!fs_->is_module) globals_.note_function_read(r.index);
                emit(make_abx(fs_->is_module ? Op::GetGlobalTop : Op::GetGlobal, target, r.index));
                break;
            case NameKind::Builtin:
                emit(make_abx(Op::GetBuiltin, target, r.index));
                break;
        }
    }

    void expr_to_inner(const Expr* e, int target) {
        switch (e->kind) {
            case ExprKind::Name:
                load_name(e->as<NameExpr>()->name, target);
                return;
            case ExprKind::NoneLit:
                emit(make_abc(Op::LoadNone, target, 0, 0));
                return;
            case ExprKind::BoolLit:
                emit(make_abc(Op::LoadBool, target, e->as<BoolLitExpr>()->value ? 1 : 0, 0));
                return;
            case ExprKind::IntLit: {
                int64_t v = e->as<IntLitExpr>()->value;
                if (v >= -kSBxBias && v <= kSBxBias)
                    emit(make_asbx(Op::LoadI, target, int(v)));
                else
                    emit(make_abx(Op::LoadK, target, const_int(v)));
                return;
            }
            case ExprKind::FloatLit:
                emit(make_abx(Op::LoadK, target, const_float(e->as<FloatLitExpr>()->value)));
                return;
            case ExprKind::StrLit:
                emit(make_abx(Op::LoadK, target, const_str(e->as<StrLitExpr>()->value)));
                return;
            case ExprKind::BytesLit: {
                Constant c;
                c.kind = Constant::Kind::Bytes;
                c.s = e->as<BytesLitExpr>()->value;
                emit(make_abx(Op::LoadK, target, add_const(std::move(c))));
                return;
            }
            case ExprKind::FString:
                fstring(e->as<FStringExpr>(), target);
                return;
            case ExprKind::List:
                sequence(e->as<ListExpr>()->elts, Op::NewList, target);
                return;
            case ExprKind::Tuple:
                sequence(e->as<TupleExpr>()->elts, Op::NewTuple, target);
                return;
            case ExprKind::Set:
                sequence(e->as<SetExpr>()->elts, Op::NewSet, target);
                return;
            case ExprKind::Dict:
                dict(e->as<DictExpr>(), target);
                return;
            case ExprKind::Comprehension:
                comprehension(e->as<ComprehensionExpr>(), target);
                return;
            case ExprKind::Unary: {
                auto* u = e->as<UnaryExpr>();
                int save = fs_->freereg;
                if (u->op == UnaryOp::Neg && (u->operand->kind == ExprKind::IntLit)) {
                    int64_t v = u->operand->as<IntLitExpr>()->value;
                    if (v != INT64_MIN) {
                        IntLitExpr lit(e->pos, -v);
                        expr_to(&lit, target);
                        return;
                    }
                }
                if (u->op == UnaryOp::Neg && u->operand->kind == ExprKind::FloatLit) {
                    emit(make_abx(Op::LoadK, target, const_float(-u->operand->as<FloatLitExpr>()->value)));
                    return;
                }
                int r = expr_any(u->operand.get());
                Op op = u->op == UnaryOp::Neg ? Op::Neg
                        : u->op == UnaryOp::Not ? Op::Not
                        : u->op == UnaryOp::Invert ? Op::Invert
                                                   : Op::Plus;
                emit(make_abc(op, target, r, 0));
                free_to(save);
                return;
            }
            case ExprKind::Binary:
                binary(e->as<BinaryExpr>(), target);
                return;
            case ExprKind::BoolOp: {
                auto* b = e->as<BoolOpExpr>();
                std::vector<int> ends;
                for (size_t i = 0; i < b->values.size(); ++i) {
                    expr_to(b->values[i].get(), target);
                    if (i + 1 < b->values.size()) {
                        // and: stop when falsy; or: stop when truthy
                        emit(make_abc(Op::Test, target, b->is_and ? 0 : 1, 0));
                        ends.push_back(emit_jump());
                    }
                }
                patch_all(ends, pc());
                return;
            }
            case ExprKind::Compare:
                compare(e->as<CompareExpr>(), target);
                return;
            case ExprKind::Call:
                call(e->as<CallExpr>(), target);
                return;
            case ExprKind::Attribute: {
                auto* a = e->as<AttributeExpr>();
                int save = fs_->freereg;
                int r = expr_any(a->object.get());
                emit(make_abc(Op::GetAttr, target, r, attr_const(a->name)));
                free_to(save);
                return;
            }
            case ExprKind::Subscript: {
                auto* s = e->as<SubscriptExpr>();
                int save = fs_->freereg;
                int o = expr_any(s->object.get());
                int k = index_expr(s->index.get());
                emit(make_abc(Op::GetItem, target, o, k));
                free_to(save);
                return;
            }
            case ExprKind::Slice: {
                int save = fs_->freereg;
                slice_to(e->as<SliceExpr>(), target);
                free_to(save);
                return;
            }
            case ExprKind::Lambda: {
                auto* l = e->as<LambdaExpr>();
                function(nullptr, "<lambda>", l->params, nullptr, nullptr, l->body.get(), target, e->pos);
                return;
            }
            case ExprKind::IfExp: {
                auto* x = e->as<IfExpExpr>();
                std::vector<int> to_else;
                cond_jump(x->cond.get(), false, to_else);
                expr_to(x->then_value.get(), target);
                int to_end = emit_jump();
                patch_all(to_else, pc());
                expr_to(x->else_value.get(), target);
                patch_here(to_end);
                return;
            }
            case ExprKind::Starred:
                fail(e->pos, "can't use starred expression here");
            case ExprKind::Spawn: {
                auto* sp = e->as<SpawnExpr>();
                if (sp->call->kind != ExprKind::Call) fail(e->pos, "'spawn' needs a call, like spawn f(x)");
                spawn_call(sp->call->as<CallExpr>(), target);
                return;
            }
            case ExprKind::Lazy: {
                // `lazy expr`: a closure over the expression, run on first force.
                auto* lz = e->as<LazyExpr>();
                std::vector<Param> none;
                function(nullptr, "<lazy>", none, nullptr, nullptr, lz->value.get(), target, e->pos);
                emit(make_abc(Op::MakeLazy, target, 0, 0));
                return;
            }
        }
    }

    // Starts `c` as a task and leaves its handle in `target` (None when `discard`: a `spawn`
    // statement, whose handle nobody can use).
    void spawn_call(const CallExpr* c, int target, bool discard = false) {
        int save = fs_->freereg;
        int base = alloc();
        expr_to(c->func.get(), base);
        if (simple_args(c) && c->keywords.empty()) {
            // Plain positional arguments stay in registers (C=1): no list and dict
            // built per spawn. They are evaluated here, in the spawner, not deferred.
            int n = int(c->args.size());
            check_args(c, n);
            for (int i = 0; i < n; ++i) expr_to(c->args[i].get(), alloc());
            emit(make_abc(Op::SpawnCall, base, n, discard ? 2 : 1));
        } else {
            star_call_args(c, base);
            emit(make_abc(Op::SpawnCall, base, 0, 0));
        }
        if (base != target) emit(make_abc(Op::Move, target, base, 0));
        free_to(save);
    }

    // Index of a subscript: a slice becomes a slice object.
    int index_expr(const Expr* idx) {
        if (idx->kind == ExprKind::Slice) {
            int t = alloc();
            slice_to(idx->as<SliceExpr>(), t);
            return t;
        }
        return expr_any(idx);
    }

    void slice_to(const SliceExpr* s, int target) {
        int base = alloc_n(3);
        const Expr* parts[3] = {s->lower.get(), s->upper.get(), s->step.get()};
        for (int i = 0; i < 3; ++i) {
            if (parts[i])
                expr_to(parts[i], base + i);
            else
                emit(make_abc(Op::LoadNone, base + i, 0, 0));
        }
        emit(make_abc(Op::Slice, target, base, 0));
    }

    void fstring(const FStringExpr* f, int target) {
        int save = fs_->freereg;
        int n = int(f->parts.size());
        if (n == 0) {
            emit(make_abx(Op::LoadK, target, const_str("")));
            return;
        }
        int base = alloc_n(n);
        for (int i = 0; i < n; ++i) {
            auto& p = f->parts[i];
            if (p.is_literal) {
                emit(make_abx(Op::LoadK, base + i, const_str(p.literal)));
            } else {
                int inner = fs_->freereg;
                int v = expr_any(p.expr.get());
                int spec = 255;
                if (p.format_spec) {
                    spec = alloc();
                    expr_to(p.format_spec.get(), spec);
                }
                emit(make_abc(Op::FormatX, base + i, v, spec));
                emit(Instr(uint8_t(p.conversion)));
                free_to(inner);
            }
        }
        if (n == 1 && !f->parts[0].is_literal) {
            emit(make_abc(Op::Move, target, base, 0));
        } else {
            emit(make_abc(Op::Concat, target, base, n));
        }
        free_to(save);
    }

    bool has_starred(const std::vector<ExprPtr>& elts) {
        for (auto& e : elts)
            if (e->kind == ExprKind::Starred) return true;
        return false;
    }

    void sequence(const std::vector<ExprPtr>& elts, Op op, int target) {
        int save = fs_->freereg;
        if (!has_starred(elts) && elts.size() < 200) {
            int n = int(elts.size());
            int base = n ? alloc_n(n) : fs_->freereg;
            // Display elements are deferral positions (spec section 5): `[f(a), g(b)]`
            // starts both calls before the list is built. A set's elements are hashed
            // by NewSet, which forces them, but only after all of them have started.
            for (int i = 0; i < n; ++i) deferred_to(elts[i].get(), base + i);
            emit(make_abc(op, target, base, n));
            free_to(save);
            return;
        }
        // Build a list incrementally (starred items or a long display), then convert.
        int acc = alloc();
        emit(make_abc(op == Op::NewSet ? Op::NewSet : Op::NewList, acc, 0, 0));
        for (auto& e : elts) {
            int inner = fs_->freereg;
            if (e->kind == ExprKind::Starred) {
                int v = expr_any(e->as<StarredExpr>()->value.get());
                if (op == Op::NewSet) {
                    // set.update via ListExtend semantics on sets
                    emit(make_abc(Op::ListExtend, acc, v, 1));
                } else {
                    emit(make_abc(Op::ListExtend, acc, v, 0));
                }
            } else if (op != Op::NewSet && e->kind == ExprKind::Call) {
                // A long or starred list/tuple display defers its call elements too;
                // a set's would be forced at once by SetAdd (hashing), so they are not.
                int v = alloc();
                deferred_to(e.get(), v);
                emit(make_abc(Op::ListAppend, acc, v, 0));
            } else {
                int v = expr_any(e.get());
                emit(make_abc(op == Op::NewSet ? Op::SetAdd : Op::ListAppend, acc, v, 0));
            }
            free_to(inner);
        }
        if (op == Op::NewTuple)
            emit(make_abc(Op::ToTuple, target, acc, 0));
        else
            emit(make_abc(Op::Move, target, acc, 0));
        free_to(save);
    }

    void dict(const DictExpr* d, int target) {
        int save = fs_->freereg;
        bool simple = d->keys.size() < 100;
        for (auto& k : d->keys)
            if (!k) simple = false;
        if (simple) {
            int n = int(d->keys.size());
            int base = n ? alloc_n(2 * n) : fs_->freereg;
            // Values are deferral positions (spec section 5); keys are hashed now.
            for (int i = 0; i < n; ++i) {
                expr_to(d->keys[i].get(), base + 2 * i);
                deferred_to(d->values[i].get(), base + 2 * i + 1);
            }
            emit(make_abc(Op::NewDict, target, base, n));
            free_to(save);
            return;
        }
        int acc = alloc();
        emit(make_abc(Op::NewDict, acc, 0, 0));
        for (size_t i = 0; i < d->keys.size(); ++i) {
            int inner = fs_->freereg;
            if (!d->keys[i]) {
                int v = expr_any(d->values[i].get());
                emit(make_abc(Op::DictMerge, acc, v, 0));
            } else {
                int k = expr_any(d->keys[i].get());
                int v;
                if (d->values[i]->kind == ExprKind::Call) {
                    v = alloc();
                    deferred_to(d->values[i].get(), v);
                } else {
                    v = expr_any(d->values[i].get());
                }
                emit(make_abc(Op::DictSet, acc, k, v));
            }
            free_to(inner);
        }
        emit(make_abc(Op::Move, target, acc, 0));
        free_to(save);
    }

    void comprehension(const ComprehensionExpr* c, int target) {
        int save = fs_->freereg;
        int acc = alloc();
        Op make = c->comp_kind == CompKind::Dict  ? Op::NewDict
                  : c->comp_kind == CompKind::Set ? Op::NewSet
                                                  : Op::NewList;
        emit(make_abc(make, acc, 0, 0));
        fs_->comp_scopes.emplace_back();
        comp_clause(c, 0, acc);
        fs_->comp_scopes.pop_back();
        emit(make_abc(Op::Move, target, acc, 0));
        free_to(save);
    }

    void comp_clause(const ComprehensionExpr* c, size_t i, int acc) {
        if (i == c->clauses.size()) {
            int save = fs_->freereg;
            if (c->comp_kind == CompKind::Dict) {
                int k = expr_any(c->element.get());
                int v;
                if (c->value->kind == ExprKind::Call) {  // the value is a deferral position
                    v = alloc();
                    deferred_to(c->value.get(), v);
                } else {
                    v = expr_any(c->value.get());
                }
                emit(make_abc(Op::DictSet, acc, k, v));
            } else {
                int v = alloc();
                if (c->comp_kind == CompKind::Set)
                    expr_to(c->element.get(), v);  // set elements are hashed: needed now
                else
                    deferred_to(c->element.get(), v);
                emit(make_abc(c->comp_kind == CompKind::Set ? Op::SetAdd : Op::ListAppend, acc, v, 0));
            }
            free_to(save);
            return;
        }
        auto& cl = c->clauses[i];
        Pos saved = pos_;
        pos_ = cl.pos;
        int save = fs_->freereg;
        // The iterable of the first clause is evaluated before the variables exist.
        int it = alloc_n(2);
        {
            int inner = fs_->freereg;
            int src = expr_any(cl.iter.get());
            emit(make_abc(Op::GetIter, it, src, 0));
            free_to(inner);
        }
        // Bind the clause's target names in the comprehension scope.
        Bindings b;
        collect_target(cl.target.get(), b, false);
        for (auto& n : b.order) {
            if (!fs_->comp_scopes.back().count(n)) fs_->comp_scopes.back()[n] = alloc();
        }
        int top = pc();
        int exit = emit(make_asbx(Op::ForIter, it, 0));
        store_target(cl.target.get(), it + 1);
        std::vector<int> skip;
        for (auto& cond : cl.conditions) cond_jump(cond.get(), false, skip);
        comp_clause(c, i + 1, acc);
        patch_all(skip, pc());
        emit_loop_back(top);
        patch_here(exit);
        free_to(save);
        pos_ = saved;
    }

    bool is_mutating_method(const std::string& n) { return kMutatingMethods.count(n) > 0; }

    static BinaryOp aug_op(BinaryOp o) { return o; }

    void binary(const BinaryExpr* b, int target) {
        int save = fs_->freereg;
        // A left operand that needs a temporary goes straight to the target when the target is
        // the newest temporary (nothing else reads it before the result lands): a chain
        // `y + y + ... + y` (left-nested) then uses one register, not one per term.
        bool into_target = target == fs_->freereg - 1 && target >= fs_->nactive && b->left->kind != ExprKind::Name;
        int l = into_target ? (expr_to(b->left.get(), target), target) : expr_any(b->left.get());
        if ((b->op == BinaryOp::Add || b->op == BinaryOp::Sub) && b->right->kind == ExprKind::IntLit) {
            int k = const_int(b->right->as<IntLitExpr>()->value);
            if (k < 256) {
                emit(make_abc(b->op == BinaryOp::Add ? Op::AddK : Op::SubK, target, l, k));
                free_to(save);
                return;
            }
        }
        if (b->right->kind == ExprKind::IntLit || b->right->kind == ExprKind::FloatLit) {
            int k = literal_const(b->right.get());
            if (k < 256) {
                // (int + - constants took the AddK/SubK path above)
                emit(make_abc(Op::BinOpK, target, l, k));
                emit(Instr(b->op));
                free_to(save);
                return;
            }
        }
        int r = expr_any(b->right.get());
        emit_binop(b->op, target, l, r);
        free_to(save);
    }

    void emit_binop(BinaryOp op, int target, int l, int r) {
        switch (op) {
            case BinaryOp::Add:
                emit(make_abc(Op::Add, target, l, r));
                break;
            case BinaryOp::Sub:
                emit(make_abc(Op::Sub, target, l, r));
                break;
            case BinaryOp::Mul:
                emit(make_abc(Op::Mul, target, l, r));
                break;
            default:
                emit(make_abc(Op::BinOp, target, l, r));
                emit(Instr(op));
        }
    }

    void compare(const CompareExpr* c, int target) {
        int save = fs_->freereg;
        if (c->ops.size() == 1) {
            int l = expr_any(c->left.get());
            int r = expr_any(c->comparators[0].get());
            emit_cmp(c->ops[0], target, l, r);
            free_to(save);
            return;
        }
        // a < b < c: evaluate each operand once; stop at the first false.
        std::vector<int> ends;
        int l = expr_any(c->left.get());
        for (size_t i = 0; i < c->ops.size(); ++i) {
            int r = alloc();
            expr_to(c->comparators[i].get(), r);
            emit_cmp(c->ops[i], target, l, r);
            if (i + 1 < c->ops.size()) {
                emit(make_abc(Op::Test, target, 0, 0));
                ends.push_back(emit_jump());
            }
            l = r;
        }
        patch_all(ends, pc());
        free_to(save);
    }

    void emit_cmp(CmpOp op, int target, int l, int r) {
        switch (op) {
            case CmpOp::Lt:
                emit(make_abc(Op::Lt, target, l, r));
                break;
            case CmpOp::Le:
                emit(make_abc(Op::Le, target, l, r));
                break;
            case CmpOp::Gt:
                emit(make_abc(Op::Lt, target, r, l));
                break;
            case CmpOp::Ge:
                emit(make_abc(Op::Le, target, r, l));
                break;
            case CmpOp::Eq:
                emit(make_abc(Op::Eq, target, l, r));
                break;
            default:
                emit(make_abc(Op::Cmp, target, l, r));
                emit(Instr(op));
        }
    }

    // Emits code that jumps (adding the jump to `jumps`) when truthy(e) == when;
    // falls through otherwise.
    void cond_jump(const Expr* e, bool when, std::vector<int>& jumps) {
        Pos saved = pos_, saved_start = span_start_, saved_end = span_end_;
        pos_ = span_start_ = e->pos;
        span_end_ = e->end;
        int save = fs_->freereg;
        if (e->kind == ExprKind::Unary && e->as<UnaryExpr>()->op == UnaryOp::Not) {
            cond_jump(e->as<UnaryExpr>()->operand.get(), !when, jumps);
        } else if (e->kind == ExprKind::BoolOp) {
            auto* b = e->as<BoolOpExpr>();
            // and with when=false: any false jumps. and with when=true: all true -> jump.
            if (b->is_and != when) {
                for (auto& v : b->values) cond_jump(v.get(), when, jumps);
            } else {
                std::vector<int> skip;
                for (size_t i = 0; i + 1 < b->values.size(); ++i) cond_jump(b->values[i].get(), !when, skip);
                cond_jump(b->values.back().get(), when, jumps);
                patch_all(skip, pc());
            }
        } else if (e->kind == ExprKind::BoolLit) {
            if (e->as<BoolLitExpr>()->value == when) jumps.push_back(emit_jump());
        } else if (e->kind == ExprKind::Compare && e->as<CompareExpr>()->ops.size() == 1 &&
                   cmp_jump(e->as<CompareExpr>(), when, jumps)) {
            // done
        } else {
            int r = expr_any(e);
            emit(make_abc(Op::Test, r, when ? 1 : 0, 0));
            jumps.push_back(emit_jump());
        }
        free_to(save);
        pos_ = saved;
        span_start_ = saved_start;
        span_end_ = saved_end;
    }

    bool cmp_jump(const CompareExpr* c, bool when, std::vector<int>& jumps) {
        CmpOp op = c->ops[0];
        const Expr* rhs = c->comparators[0].get();
        int k = -1;
        if (rhs->kind == ExprKind::IntLit || rhs->kind == ExprKind::FloatLit || rhs->kind == ExprKind::StrLit)
            k = literal_const(rhs);
        if (k >= 0 && k < 256 &&
            (op == CmpOp::Lt || op == CmpOp::Le || op == CmpOp::Gt || op == CmpOp::Ge || op == CmpOp::Eq ||
             op == CmpOp::Ne)) {
            int l = expr_any(c->left.get());
            Op o = op == CmpOp::Lt   ? Op::TLtK
                   : op == CmpOp::Le ? Op::TLeK
                   : op == CmpOp::Gt ? Op::TGtK
                   : op == CmpOp::Ge ? Op::TGeK
                                     : Op::TEqK;
            bool k_when = op == CmpOp::Ne ? !when : when;
            emit(make_abc(o, l, k, k_when ? 1 : 0));
            jumps.push_back(emit_jump());
            return true;
        }
        if (op == CmpOp::Lt || op == CmpOp::Le || op == CmpOp::Gt || op == CmpOp::Ge || op == CmpOp::Eq ||
            op == CmpOp::Ne) {
            int l = expr_any(c->left.get());
            int r = expr_any(rhs);
            Op o;
            int a = l, b = r;
            bool k_when = when;
            switch (op) {
                case CmpOp::Lt: o = Op::TLt; break;
                case CmpOp::Le: o = Op::TLe; break;
                case CmpOp::Gt: o = Op::TLt; a = r; b = l; break;
                case CmpOp::Ge: o = Op::TLe; a = r; b = l; break;
                case CmpOp::Eq: o = Op::TEq; break;
                default: o = Op::TEq; k_when = !when; break;
            }
            emit(make_abc(o, a, b, k_when ? 1 : 0));
            jumps.push_back(emit_jump());
            return true;
        }
        return false;
    }

    // ---- calls ------------------------------------------------------------

    // Can the call pass its arguments in registers? Not with *args/**kw, nor with more than
    // kMaxRegisterArgs arguments or more than the function's registers have room for: such a
    // call builds a list and a dict (star_call_args, CallEx), two registers however many
    // arguments, so a 300-argument call compiles (its arguments are then not deferred).
    static constexpr size_t kMaxRegisterArgs = 100;
    bool simple_args(const CallExpr* c) {
        for (auto& a : c->args)
            if (a->kind == ExprKind::Starred) return false;
        for (auto& k : c->keywords)
            if (k.name.empty()) return false;
        size_t n = c->args.size() + c->keywords.size();
        return n <= kMaxRegisterArgs && fs_->freereg + int(n) + 4 < kMaxRegisters;
    }

    // Is `e` a place whose storage a mutating method may change (a variable, or
    // an attribute/item path rooted at one)?
    bool is_place(const Expr* e) {
        switch (e->kind) {
            case ExprKind::Name: {
                NameRef r = resolve(e->as<NameExpr>()->name);
                return r.kind == NameKind::Local || (r.kind == NameKind::Global && fs_->is_module);
            }
            case ExprKind::Attribute:
                return is_place(e->as<AttributeExpr>()->object.get());
            case ExprKind::Subscript:
                return is_place(e->as<SubscriptExpr>()->object.get());
            case ExprKind::Call:
                return is_setdefault_place(e);
            default:
                return false;
        }
    }

    // `d.setdefault(k, default)` on a place is itself a place (the entry d[k]),
    // so Python's idiom `groups.setdefault(k, []).append(v)` updates `groups`.
    bool is_setdefault_place(const Expr* e) {
        if (e->kind != ExprKind::Call) return false;
        auto* c = e->as<CallExpr>();
        if (c->func->kind != ExprKind::Attribute || c->func->as<AttributeExpr>()->name != "setdefault") return false;
        if (c->args.empty() || c->args.size() > 2 || !c->keywords.empty() || !simple_args(c)) return false;
        return is_place(c->func->as<AttributeExpr>()->object.get());
    }

    void call(const CallExpr* c, int target) {
        DeferMode defer_this = defer_next_;
        defer_next_ = DeferMode{};
        int save = fs_->freereg;
        if (c->func->kind == ExprKind::Attribute && simple_args(c)) {
            // An argument that is a method call is not deferred (only Always is).
            method_call(c, target, defer_this.kind == DeferMode::Kind::Always);
            free_to(save);
            return;
        }
        // Reuse the target as the call base when it is the topmost temporary.
        int base = (target == fs_->freereg - 1 && target >= fs_->nactive) ? target : alloc();
        expr_to(c->func.get(), base);
        if (simple_args(c)) {
            int n = int(c->args.size());
            // race(f(a), g(b)): the arguments are deferred calls, started together.
            bool race = is_builtin_name(c->func.get(), "race");
            // Other arguments are deferral positions when the callee is a Weft
            // function (spec section 5), which only the run time knows: CallDeferIf
            // looks at the callee in `base`. Builtins never defer their arguments,
            // and those are known here.
            DeferMode arg_mode{DeferMode::Kind::IfCallee, base};
            bool defer_args = !race && !is_builtin(c->func.get());
            for (int i = 0; i < n; ++i) {
                int r = alloc();
                if (race && c->args[i]->kind == ExprKind::Call)
                    spawn_call(c->args[i]->as<CallExpr>(), r);
                else if (defer_args)
                    deferred_to(c->args[i].get(), r, arg_mode);
                else
                    expr_to(c->args[i].get(), r);
            }
            if (c->keywords.empty()) {
                if (is_pure_builtin(c->func.get())) ch().pure_calls.push_back(uint32_t(pc()));
                emit_call(defer_this, base, n);
            } else {
                std::vector<std::string> names;
                for (auto& k : c->keywords) {
                    names.push_back(k.name);
                    int r = alloc();
                    if (defer_args)
                        deferred_to(k.value.get(), r, arg_mode);
                    else
                        expr_to(k.value.get(), r);
                }
                check_args(c, n);
                // Keyword arguments do not change whether a call is deferred; as an argument
                // of another call (IfCallee/IfMethod) it is not deferred (no keyword form).
                Op op = defer_this.kind == DeferMode::Kind::Always ? Op::CallKwDefer : Op::CallKw;
                emit(make_abc(op, base, n, int(c->keywords.size())));
                emit(Instr(const_names(std::move(names))));
            }
        } else {
            star_call_args(c, base);
            emit(make_abc(Op::CallEx, base, 0, 0));
        }
        if (base != target) emit(make_abc(Op::Move, target, base, 0));
        free_to(save);
    }

    // Emits the call of R[base] with `n` arguments, deferred as `mode` says.
    void emit_call(const DeferMode& mode, int base, int n) {
        switch (mode.kind) {
            case DeferMode::Kind::None:
                emit(make_abc(Op::Call, base, n, 0));
                break;
            case DeferMode::Kind::Always:
                emit(make_abc(Op::CallDefer, base, n, 0));
                break;
            case DeferMode::Kind::IfCallee:
                emit(make_abc(Op::CallDeferIf, base, n, mode.reg));
                break;
            case DeferMode::Kind::IfMethod:
                emit(make_abc(Op::CallDeferIfM, base, n, mode.reg));
                emit(Instr(mode.name_k));
                break;
        }
    }

    // Is `e` the name of a builtin that only computes from its arguments: it cannot block, has
    // no effect outside its result, and does not iterate an argument (which could be a channel)?
    // Calls of these do not stop a function from being a leaf (Chunk::leaf).
    bool is_pure_builtin(const Expr* e) {
        static const std::unordered_set<std::string> pure = {
            "len", "repr", "hash", "abs", "round", "isinstance", "ord", "chr", "divmod", "pow",
            "hex", "oct", "bin", "format", "str", "int", "float", "bool"};
        return is_builtin(e) && pure.count(e->as<NameExpr>()->name);
    }

    // Is `e` the name of a builtin (resolved at compile time)?
    bool is_builtin(const Expr* e) {
        return e->kind == ExprKind::Name && resolve(e->as<NameExpr>()->name).kind == NameKind::Builtin;
    }

    void check_args(const CallExpr* c, int n) {
        if (n > 200 || c->keywords.size() > 200) fail(c->pos, "too many arguments in one call");
    }

    // Builds R[base+1] = list of positional args, R[base+2] = dict of keywords.
    void star_call_args(const CallExpr* c, int base) {
        int args = alloc();
        int kw = alloc();
        emit(make_abc(Op::NewList, args, 0, 0));
        for (auto& a : c->args) {
            int inner = fs_->freereg;
            if (a->kind == ExprKind::Starred) {
                int v = expr_any(a->as<StarredExpr>()->value.get());
                emit(make_abc(Op::ListExtend, args, v, 0));
            } else {
                int v = expr_any(a.get());
                emit(make_abc(Op::ListAppend, args, v, 0));
            }
            free_to(inner);
        }
        emit(make_abc(Op::NewDict, kw, 0, 0));
        for (auto& k : c->keywords) {
            int inner = fs_->freereg;
            int v = expr_any(k.value.get());
            if (k.name.empty()) {
                emit(make_abc(Op::DictMerge, kw, v, 0));
            } else {
                int key = alloc();
                emit(make_abx(Op::LoadK, key, const_str(k.name)));
                emit(make_abc(Op::DictSet, kw, key, v));
            }
            free_to(inner);
        }
    }

    // `defer`: the call is in a deferral position (spec section 5): CallMDefer
    // starts a task when the method is a Weft function or a module's blocking builtin.
    //
    // Arguments that are calls are deferred when the method turns out to be a Weft
    // function (CallDeferIfM looks it up on the receiver), which needs the receiver
    // in a register before them: a defined local is; another name is loaded into
    // base+1 first. Other receivers (`a.b.m(x)`, `f().m(x)`) are still evaluated
    // after the arguments, and those arguments are not deferred. An argument that is
    // itself a method call is not deferred either (see call()).
    void method_call(const CallExpr* c, int target, bool defer = false) {
        auto* attr = c->func->as<AttributeExpr>();
        int base = (target == fs_->freereg - 1 && target >= fs_->nactive) ? target : alloc();
        alloc();  // base+1: receiver copy for Weft methods
        const Expr* recv = attr->object.get();
        int reg = local_reg_if_defined(recv);
        bool via_place = reg < 0 && is_mutating_method(attr->name) && is_place(recv);
        int name_k = const_str(attr->name);
        bool any_call = false;
        for (auto& a : c->args) any_call = any_call || a->kind == ExprKind::Call;
        for (auto& k : c->keywords) any_call = any_call || k.value->kind == ExprKind::Call;
        // Hoisting depends only on the syntax, so --sequential evaluates in the same order.
        // A receiver changed in place (`xs.append(f(x))`, CallMP) is loaded only for the
        // look-up and dropped before the call, which then finds its storage unshared.
        bool hoisted = false;
        if (reg < 0 && any_call && recv->kind == ExprKind::Name) {
            NameKind k = resolve(recv->as<NameExpr>()->name).kind;
            if (k == NameKind::Local || k == NameKind::Capture || k == NameKind::Global) {
                expr_to(recv, base + 1);
                hoisted = true;
            }
        }
        int recv_reg = reg >= 0 ? reg : hoisted ? base + 1 : -1;
        DeferMode arg_mode{recv_reg >= 0 && name_k <= 0xffff ? DeferMode::Kind::IfMethod : DeferMode::Kind::None,
                           recv_reg, name_k};
        int n = int(c->args.size());
        for (int i = 0; i < n; ++i) deferred_to(c->args[i].get(), alloc(), arg_mode);
        std::vector<std::string> names;
        for (auto& k : c->keywords) {
            names.push_back(k.name);
            deferred_to(k.value.get(), alloc(), arg_mode);
        }
        check_args(c, n);
        int kw_k = names.empty() ? 0 : const_names(names) + 1;
        if (kw_k > 0xffff) fail(c->pos, "too many constants");
        Instr extra = Instr(name_k) | (Instr(kw_k) << 16);
        Op callm = defer ? Op::CallMDefer : Op::CallM;
        if (reg >= 0) {
            emit(make_abc(callm, base, n, reg));
            emit(extra);
        } else if (via_place) {
            if (hoisted) emit(make_abc(Op::LoadNone, base + 1, 0, 0));
            emit_place(recv);
            emit(make_abc(Op::CallMP, base, n, 0));
            emit(extra);
        } else {
            if (!hoisted) expr_to(recv, base + 1);
            emit(make_abc(callm, base, n, base + 1));
            emit(extra);
        }
        if (base != target) emit(make_abc(Op::Move, target, base, 0));
    }


    // Emits Place* instructions leaving P pointing at the storage of `e`.
    // Subscript keys are evaluated first (left to right) into temporaries.
    void emit_place(const Expr* e) {
        std::vector<const Expr*> path;
        for (const Expr* x = e;;) {
            path.push_back(x);
            if (x->kind == ExprKind::Attribute)
                x = x->as<AttributeExpr>()->object.get();
            else if (x->kind == ExprKind::Subscript)
                x = x->as<SubscriptExpr>()->object.get();
            else if (is_setdefault_place(x))
                x = x->as<CallExpr>()->func->as<AttributeExpr>()->object.get();
            else
                break;
        }
        std::reverse(path.begin(), path.end());
        // Phase 1: evaluate every key (and setdefault default) once, left to right.
        std::vector<int> keys(path.size(), -1);
        for (size_t i = 1; i < path.size(); ++i) {
            if (path[i]->kind == ExprKind::Subscript) {
                keys[i] = index_expr(path[i]->as<SubscriptExpr>()->index.get());
            } else if (path[i]->kind == ExprKind::Call) {
                auto* c = path[i]->as<CallExpr>();
                // result, scratch, key argument, default argument, key (kept: the call clears its arguments)
                int blk = alloc_n(5);
                expr_to(c->args[0].get(), blk + 4);
                if (c->args.size() > 1)
                    expr_to(c->args[1].get(), blk + 3);
                else
                    emit(make_abc(Op::LoadNone, blk + 3, 0, 0));
                keys[i] = blk;
            }
        }
        // Phase 2: walk the place; a setdefault step inserts the default, then
        // walks to the same place again and descends into the entry.
        auto walk = [&](size_t upto) {
            place_root(path[0]);
            for (size_t i = 1; i < upto; ++i) {
                if (path[i]->kind == ExprKind::Attribute) {
                    emit(make_abc(Op::PlaceAttr, 0, 0, attr_const(path[i]->as<AttributeExpr>()->name)));
                } else if (path[i]->kind == ExprKind::Subscript) {
                    emit(make_abc(Op::PlaceItem, 0, keys[i], 0));
                } else {
                    emit(make_abc(Op::PlaceItem, 0, keys[i] + 4, 0));
                }
            }
        };
        for (size_t i = 1; i < path.size(); ++i) {
            if (path[i]->kind != ExprKind::Call) continue;
            walk(i);
            emit(make_abc(Op::Move, keys[i] + 2, keys[i] + 4, 0));
            emit(make_abc(Op::CallMP, keys[i], 2, 0));
            emit(Instr(const_str("setdefault")));
        }
        walk(path.size());
    }

    void place_root(const Expr* root) {
        if (root->kind != ExprKind::Name) fail(root->pos, "cannot modify a temporary value (assign it to a variable first)");
        auto& n = root->as<NameExpr>()->name;
        NameRef r = resolve(n);
        if (r.kind == NameKind::Local) {
            if (!is_defined(n, r.index)) emit_checkdef(r.index, n);
            emit(make_abc(Op::PlaceR, r.index, 0, 0));
        } else if (r.kind == NameKind::Global && fs_->is_module) {
            emit(make_abx(Op::PlaceG, 0, r.index));
        } else if (r.kind == NameKind::Global || r.kind == NameKind::Builtin) {
            fail(root->pos, "cannot modify module name '" + n +
                                "' inside a function: module names are read-only there (use an atom for shared "
                                "mutable state, or pass the value in and return the new one)");
        } else {
            fail(root->pos, "cannot modify captured variable '" + n +
                                "': closures capture values, not variables (use an atom for shared state)");
        }
    }

    // ---- statements -------------------------------------------------------

    bool block(const Block& b, bool top = false) {
        // Returns true when the block always ends by a jump (return/raise/break/continue).
        for (auto& s : b) {
            if (stmt(s.get(), top)) return true;
        }
        return false;
    }

    // Returns true if the statement never falls through.
    bool stmt(const Stmt* s, bool top) {
        Pos saved = pos_;
        pos_ = s->pos;
        int save = fs_->freereg;  // temporaries of enclosing statements (loop iterators) stay
        bool r = stmt_inner(s, top);
        free_to(save);
        pos_ = saved;
        return r;
    }

    void mark_defined(const Expr* target) {
        Bindings b;
        collect_target(target, b, false);
        for (auto& n : b.order) fs_->defined.insert(n);
    }

    bool stmt_inner(const Stmt* s, bool top) {
        switch (s->kind) {
            case StmtKind::Expr: {
                auto* e = s->as<ExprStmt>()->value.get();
                if (opts_.repl && top && fs_->is_module) {
                    int r = alloc();
                    expr_to(e, r);
                    // REPL echo: call the hidden builtin "__repl_print__".
                    int base = alloc();
                    auto it = opts_.builtins->find("__repl_print__");
                    emit(make_abx(Op::GetBuiltin, base, it->second));
                    emit(make_abc(Op::Move, alloc(), r, 0));
                    emit(make_abc(Op::Call, base, 1, 0));
                } else if (e->kind == ExprKind::Spawn && e->as<SpawnExpr>()->call->kind == ExprKind::Call) {
                    spawn_call(e->as<SpawnExpr>()->call->as<CallExpr>(), alloc(), /*discard=*/true);
                } else {
                    int r = alloc();
                    expr_to(e, r);
                    // A call used as a statement finishes before the next statement,
                    // including a promise it returns (spec section 5).
                    if (e->kind == ExprKind::Call) emit(make_abc(Op::Force, r, 0, 0));
                }
                return false;
            }
            case StmtKind::Assign:
                assign(s->as<AssignStmt>());
                return false;
            case StmtKind::AugAssign:
                aug_assign(s->as<AugAssignStmt>());
                return false;
            case StmtKind::AnnAssign: {
                auto* a = s->as<AnnAssignStmt>();
                if (!a->value) {
                    return false;  // a declaration only
                }
                int v = alloc();
                expr_to(a->value.get(), v);
                int t = alloc();
                type_expr(a->annotation.get(), t);
                std::string name = a->target->kind == ExprKind::Name ? a->target->as<NameExpr>()->name : "value";
                emit(make_abc(Op::TypeCheck, v, t, int(CheckKind::Assign)));
                emit(Instr(const_str(name)));
                store_target(a->target.get(), v);
                return false;
            }
            case StmtKind::Pass:
                return false;
            case StmtKind::Break:
            case StmtKind::Continue: {
                bool is_break = s->kind == StmtKind::Break;
                if (fs_->loops.empty())
                    fail(s->pos, is_break ? "'break' outside loop" : "'continue' not properly in loop");
                auto& loop = fs_->loops.back();
                for (size_t i = fs_->finally_blocks.size(); i > loop.finally_depth; --i) inline_finally(i - 1);
                // `continue` jumps back to the loop's head: a Loop (a safepoint), or a loop whose
                // every iteration ends in `continue` could never be cancelled or preempted.
                int j = is_break ? emit_jump() : emit(make_sj(Op::Loop, 0));
                (is_break ? loop.breaks : loop.continues).push_back(j);
                return true;
            }
            case StmtKind::Return: {
                if (fs_->is_module) fail(s->pos, "'return' outside function");
                auto* r = s->as<ReturnStmt>();
                int v = -1;
                // `return x` of a defined local with nothing to run on the way out: Return
                // takes the variable's own register (the frame is being left, so moving the
                // value out of it is unobservable). Saves a Move on every such return (the
                // leaf half of fib's calls).
                if (r->value && fs_->return_type_index < 0 && fs_->finally_blocks.empty()) {
                    int local = local_reg_if_defined(r->value.get());
                    if (local >= 0) {
                        emit(make_abc(Op::Return, local, 0, 0));
                        return true;
                    }
                }
                if (r->value) {
                    v = alloc();
                    // The operand of return is a deferral position (spec section 5):
                    // the caller gets the promise, and Interp::force follows a chain of
                    // returned promises. Not when a declared return type checks the
                    // value here (that forces it at once), nor when a `with` or
                    // `finally` block is left by this return: its exit code (closing a
                    // file, committing a transaction) runs before the deferred call
                    // would, so nothing in the operand is deferred there.
                    bool leaves_block = false;
                    for (int fr : fs_->finally_regs) leaves_block = leaves_block || fr < 0;
                    if (fs_->return_type_index >= 0) {
                        expr_to(r->value.get(), v);
                    } else if (leaves_block) {
                        ++sequential_depth_;
                        deferred_to(r->value.get(), v);
                        --sequential_depth_;
                    } else {
                        deferred_to(r->value.get(), v);
                    }
                }
                if (fs_->return_type_index >= 0) {
                    if (v < 0) {
                        v = alloc();
                        emit(make_abc(Op::LoadNone, v, 0, 0));
                    }
                    int t = alloc();
                    emit(make_abc(Op::LoadType, t, fs_->return_type_index, 0));
                    emit(make_abc(Op::TypeCheck, v, t, int(CheckKind::Return)));
                    emit(Instr(const_str(ch().name)));
                }
                for (size_t i = fs_->finally_blocks.size(); i > 0; --i) inline_finally(i - 1);
                if (v >= 0)
                    emit(make_abc(Op::Return, v, 0, 0));
                else
                    emit(make_abc(Op::ReturnNone, 0, 0, 0));
                return true;
            }
            case StmtKind::Raise: {
                auto* r = s->as<RaiseStmt>();
                if (!r->exc) {
                    // bare raise: re-raise the error being handled
                    if (fs_->pending_handlers.empty()) fail(s->pos, "'raise' with no argument outside an except block");
                    emit(make_abc(Op::Reraise, fs_->pending_handlers.back(), 0, 0));
                    return true;
                }
                int e = alloc();
                expr_to(r->exc.get(), e);
                if (r->cause) {
                    int c = alloc();
                    expr_to(r->cause.get(), c);
                    emit(make_abc(Op::RaiseFrom, e, c, 0));
                } else {
                    emit(make_abc(Op::Raise, e, 0, 0));
                }
                return true;
            }
            case StmtKind::Assert: {
                auto* a = s->as<AssertStmt>();
                // `assert a OP b` without a message: the failure names both values
                // ("assert 3 == 5"), evaluated once, as pytest shows them.
                if (!a->msg && a->test->kind == ExprKind::Compare && a->test->as<CompareExpr>()->ops.size() == 1 &&
                    opts_.builtins && opts_.builtins->count("__assert_message__")) {
                    auto msg_fn = opts_.builtins->find("__assert_message__");
                    auto* c = a->test->as<CompareExpr>();
                    int save = fs_->freereg;
                    int l = alloc();
                    expr_to(c->left.get(), l);
                    int r = alloc();
                    expr_to(c->comparators[0].get(), r);
                    int t = alloc();
                    emit_cmp(c->ops[0], t, l, r);
                    emit(make_abc(Op::Test, t, 1, 0));
                    int ok = emit_jump();
                    int base = alloc();
                    int m = alloc_n(4);  // __assert_message__(left, right, op) -> base + 1
                    auto err = opts_.builtins->find("AssertionError");
                    emit(make_abx(Op::GetBuiltin, base, err->second));
                    emit(make_abx(Op::GetBuiltin, m, msg_fn->second));
                    emit(make_abc(Op::Move, m + 1, l, 0));
                    emit(make_abc(Op::Move, m + 2, r, 0));
                    static const char* kOpText[] = {"==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"};
                    emit(make_abx(Op::LoadK, m + 3, const_str(kOpText[int(c->ops[0])])));
                    emit(make_abc(Op::Call, m, 3, 0));
                    emit(make_abc(Op::Call, base, 1, 0));
                    emit(make_abc(Op::Raise, base, 0, 0));
                    patch_all({ok}, pc());
                    free_to(save);
                    return false;
                }
                std::vector<int> ok;
                cond_jump(a->test.get(), true, ok);
                int base = alloc();
                auto it = opts_.builtins ? opts_.builtins->find("AssertionError") : opts_.builtins->end();
                emit(make_abx(Op::GetBuiltin, base, it->second));
                if (a->msg) {
                    expr_to(a->msg.get(), alloc());
                    emit(make_abc(Op::Call, base, 1, 0));
                } else {
                    emit(make_abc(Op::Call, base, 0, 0));
                }
                emit(make_abc(Op::Raise, base, 0, 0));
                patch_all(ok, pc());
                return false;
            }
            case StmtKind::If: {
                auto* x = s->as<IfStmt>();
                std::vector<int> to_else;
                cond_jump(x->cond.get(), false, to_else);
                auto d0 = fs_->defined;
                bool t1 = block(x->body);
                auto d1 = fs_->defined;
                fs_->defined = d0;
                if (x->orelse.empty()) {
                    patch_all(to_else, pc());
                    if (t1) fs_->defined = d0;
                    else intersect(d1, d0);
                    return false;
                }
                int to_end = t1 ? -1 : emit_jump();
                patch_all(to_else, pc());
                bool t2 = block(x->orelse);
                auto d2 = fs_->defined;
                if (to_end >= 0) patch_here(to_end);
                if (t1 && t2) return true;
                if (t1) fs_->defined = d2;
                else if (t2) fs_->defined = d1;
                else intersect(d1, d2);
                return false;
            }
            case StmtKind::While:
                while_stmt(s->as<WhileStmt>());
                return false;
            case StmtKind::For:
                for_stmt(s->as<ForStmt>());
                return false;
            case StmtKind::Try:
                try_stmt(s->as<TryStmt>());
                return false;
            case StmtKind::With:
                with_stmt(s->as<WithStmt>(), 0);
                return false;
            case StmtKind::FunctionDef: {
                auto* f = s->as<FunctionDefStmt>();
                int save = fs_->freereg;
                std::vector<int> decs;
                for (auto& d : f->decorators) {
                    int r = alloc();
                    expr_to(d.get(), r);
                    decs.push_back(r);
                }
                int fr = alloc();
                function(f, f->display_name.empty() ? f->name : f->display_name, f->params, f->returns.get(),
                         &f->body, nullptr, fr, f->pos);
                for (auto it = decs.rbegin(); it != decs.rend(); ++it) {
                    int base = alloc();
                    emit(make_abc(Op::Move, base, *it, 0));
                    emit(make_abc(Op::Move, alloc(), fr, 0));
                    emit(make_abc(Op::Call, base, 1, 0));
                    emit(make_abc(Op::Move, fr, base, 0));
                    free_to(base);
                }
                store_name(f->name, fr, f->pos);
                free_to(save);
                return false;
            }
            case StmtKind::StructDef:
                struct_def(s->as<StructDefStmt>());
                return false;
            case StmtKind::ActorDef:
                struct_def(s->as<StructDefStmt>());
                return false;
            case StmtKind::Import: {
                auto* x = s->as<ImportStmt>();
                int r = alloc();
                emit(make_abx(Op::Import, r, const_str(x->module)));
                std::string bind = x->alias;
                if (bind.empty()) {
                    auto dot = x->module.find('.');
                    bind = dot == std::string::npos ? x->module : x->module.substr(0, dot);
                    if (dot != std::string::npos) fail(s->pos, "dotted imports need 'as': import " + x->module + " as name");
                }
                store_name(bind, r, s->pos);
                return false;
            }
            case StmtKind::ImportFrom: {
                auto* x = s->as<ImportFromStmt>();
                int m = alloc();
                emit(make_abx(Op::Import, m, const_str(x->module)));
                for (auto& n : x->names) {
                    if (n.name == "*") fail(n.pos, "'import *' is not supported: name what you import");
                    int r = alloc();
                    int k = const_str(n.name);
                    if (k > 255) fail(n.pos, "too many constants");
                    emit(make_abc(Op::ImportFrom, r, m, k));
                    store_name(n.alias.empty() ? n.name : n.alias, r, n.pos);
                    free_to(r);
                }
                return false;
            }
            case StmtKind::Match:
                match_stmt(s->as<MatchStmt>());
                return false;
            case StmtKind::Sequential: {
                // No call in the block is deferred: everything happens in program order.
                ++sequential_depth_;
                bool t = block(s->as<SequentialStmt>()->body);
                --sequential_depth_;
                return t;
            }
            case StmtKind::SpawnBlock: {
                // spawn: block  ==  spawn (a closure of the block)()
                int base = alloc_n(3);
                std::vector<Param> none;
                function(nullptr, "<spawn>", none, nullptr, &s->as<SpawnBlockStmt>()->body, nullptr, base, s->pos);
                emit(make_abc(Op::SpawnCall, base, 0, 1));
                return false;
            }
            case StmtKind::Concurrent:
                concurrent_stmt(s->as<ConcurrentStmt>());
                return false;
            case StmtKind::Select:
                select_stmt(s->as<SelectStmt>());
                return false;
            case StmtKind::Race:
                race_stmt(s->as<RaceStmt>());
                return false;
        }
        return false;
    }

    static void intersect(std::set<std::string>& a, const std::set<std::string>& b) {
        std::set<std::string> out;
        for (auto& x : a)
            if (b.count(x)) out.insert(x);
        a = std::move(out);
    }

    void inline_finally(size_t i) {
        if (fs_->finally_regs[i] >= 0) {
            // Leaving a concurrent: block early waits for its tasks like its normal end.
            emit(make_abc(Op::ScopeExit, fs_->finally_regs[i], 0, 0));
            return;
        }
        if (fs_->finally_regs[i] <= -2) {
            // Leaving a with block early (return/break/continue): mgr.__exit__(None).
            int mgr = -(fs_->finally_regs[i] + 2);
            int save = fs_->freereg;
            emit(make_abc(Op::RecordSettle, mgr + 1, 0, 0));
            int b = alloc_n(3);
            emit(make_abc(Op::LoadNone, b + 2, 0, 0));
            emit(make_abc(Op::CallM, b, 1, mgr));
            emit(Instr(const_str("__exit__")));
            free_to(save);
            return;
        }
        const Block* fb = fs_->finally_blocks[i];
        // The finally body runs outside its own protection.
        auto saved = fs_->finally_blocks;
        auto saved_regs = fs_->finally_regs;
        fs_->finally_blocks.resize(i);
        fs_->finally_regs.resize(i);
        block(*fb);
        fs_->finally_blocks = saved;
        fs_->finally_regs = saved_regs;
    }

    void store_name(const std::string& n, int src, Pos pos) {
        NameRef r = resolve(n);
        switch (r.kind) {
            case NameKind::Local:
                if (r.index != src) emit(make_abc(Op::Move, r.index, src, 0));
                fs_->defined.insert(n);
                break;
            case NameKind::Global:
                if (!fs_->is_module) fail(pos, "cannot assign module name '" + n + "' inside a function");
                emit(make_abx(Op::SetGlobal, src, r.index));
                break;
            default:
                fail(pos, "cannot assign to '" + n + "' here");
        }
    }

    // Stores register `src` into an assignment target.
    void store_target(const Expr* t, int src) {
        Pos saved = pos_;
        pos_ = t->pos;
        switch (t->kind) {
            case ExprKind::Name:
                store_name(t->as<NameExpr>()->name, src, t->pos);
                break;
            case ExprKind::Attribute: {
                auto* a = t->as<AttributeExpr>();
                int k = attr_const(a->name);
                int reg = local_reg_if_defined(a->object.get());
                if (reg >= 0) {
                    emit(make_abc(Op::SetAttr, reg, k, src));
                } else {
                    int save = fs_->freereg;
                    emit_place(a->object.get());
                    emit(make_abc(Op::SetAttrP, 0, k, src));
                    free_to(save);
                }
                break;
            }
            case ExprKind::Subscript: {
                auto* s = t->as<SubscriptExpr>();
                int save = fs_->freereg;
                int reg = local_reg_if_defined(s->object.get());
                if (reg >= 0) {
                    int k = index_expr(s->index.get());
                    emit(make_abc(Op::SetItem, reg, k, src));
                } else {
                    int k = index_expr(s->index.get());
                    emit_place(s->object.get());
                    emit(make_abc(Op::SetItemP, 0, k, src));
                }
                free_to(save);
                break;
            }
            case ExprKind::Tuple:
            case ExprKind::List: {
                auto& elts = t->kind == ExprKind::Tuple ? t->as<TupleExpr>()->elts : t->as<ListExpr>()->elts;
                int save = fs_->freereg;
                int n = int(elts.size());
                int star = -1;
                for (int i = 0; i < n; ++i) {
                    if (elts[i]->kind == ExprKind::Starred) {
                        if (star >= 0) fail(elts[i]->pos, "multiple starred expressions in assignment");
                        star = i;
                    }
                }
                int base = alloc_n(n);
                if (star < 0) {
                    emit(make_abc(Op::Unpack, base, src, n));
                } else {
                    emit(make_abc(Op::UnpackEx, base, src, n));
                    emit(Instr(star));
                }
                for (int i = 0; i < n; ++i) {
                    const Expr* e = elts[i].get();
                    if (e->kind == ExprKind::Starred) e = e->as<StarredExpr>()->value.get();
                    store_target(e, base + i);
                }
                free_to(save);
                break;
            }
            case ExprKind::Starred:
                fail(t->pos, "starred assignment target must be in a list or tuple");
            case ExprKind::Call:
                fail(t->pos, "cannot assign to function call");
            default:
                fail(t->pos, "cannot assign to expression");
        }
        pos_ = saved;
    }

    void assign(const AssignStmt* a) {
        // Fast paths: `x = expr` into a local register; `a, b = b, a`.
        if (a->targets.size() == 1) {
            const Expr* t = a->targets[0].get();
            if (t->kind == ExprKind::Name) {
                NameRef r = resolve(t->as<NameExpr>()->name);
                if (r.kind == NameKind::Local) {
                    deferred_to(a->value.get(), r.index);
                    fs_->defined.insert(t->as<NameExpr>()->name);
                    return;
                }
            }
            if (t->kind == ExprKind::Tuple && a->value->kind == ExprKind::Tuple) {
                auto& te = t->as<TupleExpr>()->elts;
                auto& ve = a->value->as<TupleExpr>()->elts;
                if (te.size() == ve.size() && !has_starred(te) && !has_starred(ve)) {
                    int base = alloc_n(int(ve.size()));
                    // The right side is a tuple display: its elements are deferral positions.
                    for (size_t i = 0; i < ve.size(); ++i) deferred_to(ve[i].get(), base + int(i));
                    for (size_t i = 0; i < te.size(); ++i) store_target(te[i].get(), base + int(i));
                    return;
                }
            }
        }
        int v = alloc();
        bool names_only = true;
        for (auto& t : a->targets) names_only = names_only && t->kind == ExprKind::Name;
        if (names_only)
            deferred_to(a->value.get(), v);
        else
            deferred_to(a->value.get(), v, DeferMode{});  // d[k] = f() / a, b = f(): the call runs now
        for (auto& t : a->targets) store_target(t.get(), v);
    }

    void aug_assign(const AugAssignStmt* a) {
        const Expr* t = a->target.get();
        if (t->kind == ExprKind::Name) {
            auto& n = t->as<NameExpr>()->name;
            NameRef r = resolve(n);
            if (r.kind == NameKind::Local) {
                if (!is_defined(n, r.index)) emit_checkdef(r.index, n);
                if ((a->op == BinaryOp::Add || a->op == BinaryOp::Sub) && a->value->kind == ExprKind::IntLit) {
                    int k = const_int(a->value->as<IntLitExpr>()->value);
                    if (k < 256) {
                        emit(make_abc(a->op == BinaryOp::Add ? Op::AddK : Op::SubK, r.index, r.index, k));
                        return;
                    }
                }
                int v = expr_any(a->value.get());
                emit_binop(a->op, r.index, r.index, v);
                return;
            }
            if (r.kind != NameKind::Global || !fs_->is_module) {
                if (r.kind == NameKind::Global)
                    fail(t->pos, "cannot assign module name '" + n +
                                     "' inside a function: module names are read-only there (use an atom "
                                     "for a shared counter)");
                fail(t->pos, "cannot assign to '" + n + "' here");
            }
            int cur = alloc();
            emit(make_abx(Op::GetGlobalTop, cur, r.index));
            int v = expr_any(a->value.get());
            if (a->op == BinaryOp::Add) {
                // `s += piece` in a loop: the slot's reference would make every append copy
                // the string (quadratic; a local appends in place).
                emit(make_abc(Op::ReleaseGlobal, cur, 0, v));
                emit(Instr(r.index));
            }
            emit_binop(a->op, cur, cur, v);
            emit(make_abx(Op::SetGlobal, cur, r.index));
            return;
        }
        if (t->kind == ExprKind::Attribute) {
            auto* at = t->as<AttributeExpr>();
            int obj = alloc();
            expr_to(at->object.get(), obj);
            int cur = alloc();
            int k = attr_const(at->name);
            emit(make_abc(Op::GetAttr, cur, obj, k));
            emit(make_abc(Op::LoadNone, obj, 0, 0));  // drop the extra reference before the store
            int v = expr_any(a->value.get());
            emit_binop(a->op, cur, cur, v);
            int reg = local_reg_if_defined(at->object.get());
            if (reg >= 0) {
                emit(make_abc(Op::SetAttr, reg, k, cur));
            } else {
                emit_place(at->object.get());
                emit(make_abc(Op::SetAttrP, 0, k, cur));
            }
            return;
        }
        if (t->kind == ExprKind::Subscript) {
            auto* s = t->as<SubscriptExpr>();
            int key = index_expr(s->index.get());
            int reg = local_reg_if_defined(s->object.get());
            int cur = alloc();
            if (reg >= 0) {
                emit(make_abc(Op::GetItem, cur, reg, key));
            } else {
                int obj = alloc();
                expr_to(s->object.get(), obj);
                emit(make_abc(Op::GetItem, cur, obj, key));
                emit(make_abc(Op::LoadNone, obj, 0, 0));
            }
            int v = expr_any(a->value.get());
            emit_binop(a->op, cur, cur, v);
            if (reg >= 0) {
                emit(make_abc(Op::SetItem, reg, key, cur));
            } else {
                // emit_place evaluates keys again only for nested subscripts; the
                // outermost key is already in `key`.
                emit_place(s->object.get());
                emit(make_abc(Op::SetItemP, 0, key, cur));
            }
            return;
        }
        fail(t->pos, "illegal expression for augmented assignment");
    }

    void while_stmt(const WhileStmt* w) {
        int top = pc();
        std::vector<int> exit;
        auto d0 = fs_->defined;
        bool infinite = w->cond->kind == ExprKind::BoolLit && w->cond->as<BoolLitExpr>()->value;
        cond_jump(w->cond.get(), false, exit);
        fs_->loops.push_back(LoopInfo{{}, {}, top, fs_->finally_blocks.size()});
        block(w->body);
        emit_loop_back(top);
        LoopInfo loop = std::move(fs_->loops.back());
        fs_->loops.pop_back();
        patch_all(loop.continues, top);
        patch_all(exit, pc());
        fs_->defined = d0;
        if (!w->orelse.empty()) block(w->orelse);
        patch_all(loop.breaks, pc());
        if (!infinite || !loop.breaks.empty()) fs_->defined = d0;
    }

    void for_stmt(const ForStmt* f) {
        auto d0 = fs_->defined;
        // Numeric loop over range(...) when `range` is the builtin.
        if (f->iter->kind == ExprKind::Call) {
            auto* c = f->iter->as<CallExpr>();
            if (is_builtin_name(c->func.get(), "range") && c->keywords.empty() && c->args.size() >= 1 &&
                c->args.size() <= 3 && simple_args(c)) {
                int base = alloc_n(4);
                if (c->args.size() == 1) {
                    emit(make_asbx(Op::LoadI, base, 0));
                    expr_to(c->args[0].get(), base + 1);
                    emit(make_asbx(Op::LoadI, base + 2, 1));
                } else {
                    expr_to(c->args[0].get(), base);
                    expr_to(c->args[1].get(), base + 1);
                    if (c->args.size() == 3)
                        expr_to(c->args[2].get(), base + 2);
                    else
                        emit(make_asbx(Op::LoadI, base + 2, 1));
                }
                int prep = emit(make_asbx(Op::ForPrep, base, 0));
                int body_start = pc();
                fs_->loops.push_back(LoopInfo{{}, {}, -1, fs_->finally_blocks.size()});
                store_target(f->target.get(), base + 3);
                block(f->body);
                int cont = pc();
                int loop_at = emit(make_asbx(Op::ForLoop, base, 0));
                patch(loop_at, body_start);
                LoopInfo loop = std::move(fs_->loops.back());
                fs_->loops.pop_back();
                patch_all(loop.continues, cont);
                patch_here(prep);
                fs_->defined = d0;
                if (!f->orelse.empty()) block(f->orelse);
                patch_all(loop.breaks, pc());
                fs_->defined = d0;
                return;
            }
        }
        int it = alloc_n(2);
        {
            int inner = fs_->freereg;
            int src = expr_any(f->iter.get());
            emit(make_abc(Op::GetIter, it, src, 0));
            free_to(inner);
        }
        int top = pc();
        int exit = emit(make_asbx(Op::ForIter, it, 0));
        fs_->loops.push_back(LoopInfo{{}, {}, top, fs_->finally_blocks.size()});
        store_target(f->target.get(), it + 1);
        block(f->body);
        emit_loop_back(top);
        LoopInfo loop = std::move(fs_->loops.back());
        fs_->loops.pop_back();
        patch_all(loop.continues, top);
        patch_here(exit);
        fs_->defined = d0;
        if (!f->orelse.empty()) block(f->orelse);
        patch_all(loop.breaks, pc());
        fs_->defined = d0;
    }

    void try_stmt(const TryStmt* t) {
        auto d0 = fs_->defined;
        bool has_finally = !t->finalbody.empty();
        int fin_start = pc();
        if (has_finally) {
            fs_->finally_blocks.push_back(&t->finalbody);
            fs_->finally_regs.push_back(-1);
        }
        std::set<std::string> d_after;
        bool first = true;
        auto merge = [&](const std::set<std::string>& d) {
            if (first) {
                d_after = d;
                first = false;
            } else {
                intersect(d_after, d);
            }
        };
        if (t->handlers.empty()) {
            bool term = block(t->body);
            if (!term) merge(fs_->defined);
        } else {
            // Calls in a try body are not deferred: its handlers must see their
            // errors where they happen (a refinement of spec section 5, documented
            // in docs/language/concurrency.md).
            int start = pc();
            ++sequential_depth_;
            bool term = block(t->body);
            --sequential_depth_;
            int end = pc();
            std::vector<int> to_end;
            if (!term) {
                bool term2 = block(t->orelse);
                if (!term2) {
                    merge(fs_->defined);
                    to_end.push_back(emit_jump());
                }
            }
            // Handlers.
            int err = fs_->nactive;  // reserve a register for the error above locals
            int save = fs_->freereg;
            err = alloc();
            int handler_pc = pc();
            fs_->pending_handlers.push_back(err);
            for (auto& h : t->handlers) {
                Pos saved = pos_;
                pos_ = h.pos;
                fs_->defined = d0;
                std::vector<int> next;
                if (!h.types.empty()) {
                    int inner = fs_->freereg;
                    int types;
                    if (h.types.size() == 1) {
                        types = expr_any(h.types[0].get());
                    } else {
                        types = alloc_n(int(h.types.size()));
                        for (size_t i = 0; i < h.types.size(); ++i) expr_to(h.types[i].get(), types + int(i));
                        emit(make_abc(Op::NewTuple, types, types, int(h.types.size())));
                    }
                    int m = alloc();
                    emit(make_abc(Op::ExcMatch, m, err, types));
                    emit(make_abc(Op::Test, m, 0, 0));
                    next.push_back(emit_jump());
                    free_to(inner);
                } else {
                    // bare except: everything but Cancelled
                    int inner = fs_->freereg;
                    int m = alloc();
                    emit(make_abc(Op::ExcMatch, m, err, 255));
                    emit(make_abc(Op::Test, m, 0, 0));
                    next.push_back(emit_jump());
                    free_to(inner);
                }
                if (!h.name.empty()) store_name(h.name, err, h.pos);
                bool hterm = block(h.body);
                if (!hterm) {
                    merge(fs_->defined);
                    to_end.push_back(emit_jump());
                }
                patch_all(next, pc());
                pos_ = saved;
            }
            emit(make_abc(Op::Reraise, err, 0, 0));
            fs_->pending_handlers.pop_back();
            free_to(save);
            ch().handlers.push_back(Handler{uint32_t(start), uint32_t(end), uint32_t(handler_pc), uint8_t(err)});
            patch_all(to_end, pc());
        }
        if (has_finally) {
            fs_->finally_blocks.pop_back();
            fs_->finally_regs.pop_back();
            int fin_end = pc();
            // Normal path.
            fs_->defined = first ? d0 : d_after;
            bool fterm = block(t->finalbody);
            auto d_norm = fs_->defined;
            int over = fterm ? -1 : emit_jump();
            // Error path.
            int save = fs_->freereg;
            int err = alloc();
            int handler_pc = pc();
            fs_->defined = d0;
            block(t->finalbody);
            emit(make_abc(Op::Reraise, err, 0, 0));
            free_to(save);
            ch().handlers.push_back(Handler{uint32_t(fin_start), uint32_t(fin_end), uint32_t(handler_pc), uint8_t(err)});
            if (over >= 0) patch_here(over);
            fs_->defined = d_norm;
            return;
        }
        fs_->defined = first ? d0 : d_after;
    }

    // with a as x, b as y: body  ==  nested single-item with statements.
    void with_stmt(const WithStmt* w, size_t item) {
        if (item == w->items.size()) {
            block(w->body);
            return;
        }
        auto& it = w->items[item];
        int save = fs_->freereg;
        int mgr = alloc();
        int mark = alloc();  // mgr + 1: inline_finally finds it there
        expr_to(it.context.get(), mgr);
        // value = mgr.__enter__()
        int base = alloc_n(2);
        emit(make_abc(Op::CallM, base, 0, mgr));
        emit(Instr(const_str("__enter__")));
        if (it.target) store_target(it.target.get(), base);
        // The block owns the deferred calls made in it: they finish before __exit__ (a
        // transaction commits after its inserts, a file closes after its reads).
        emit(make_abc(Op::RecordMark, mark, 0, 0));
        int start = pc();
        fs_->finally_blocks.push_back(nullptr);
        fs_->finally_regs.push_back(-(mgr + 2));
        with_stmt(w, item + 1);
        fs_->finally_blocks.pop_back();
        fs_->finally_regs.pop_back();
        // normal exit: mgr.__exit__(None)
        {
            // Settling the block's deferred calls is still inside the block: when one of them
            // failed, its error takes the error path, so __exit__ runs with it (a restrict()
            // block restores the task's capabilities, a transaction rolls back).
            emit(make_abc(Op::RecordSettle, mark, 0, 0));
        }
        int end = pc();
        {
            int b = alloc_n(3);
            emit(make_abc(Op::LoadNone, b + 2, 0, 0));
            emit(make_abc(Op::CallM, b, 1, mgr));
            emit(Instr(const_str("__exit__")));
        }
        int over = emit_jump();
        int err = alloc();
        int handler_pc = pc();
        {
            emit(make_abc(Op::RecordSettle, mark, 1, 0));
            int b = alloc_n(3);
            emit(make_abc(Op::Move, b + 2, err, 0));
            emit(make_abc(Op::CallM, b, 1, mgr));
            emit(Instr(const_str("__exit__")));
            // A true result swallows the error (except Cancelled, checked by the VM on re-raise).
            emit(make_abc(Op::Test, b, 1, 0));
            int swallow = emit_jump();
            emit(make_abc(Op::Reraise, err, 0, 0));
            patch_here(swallow);
        }
        ch().handlers.push_back(Handler{uint32_t(start), uint32_t(end), uint32_t(handler_pc), uint8_t(err)});
        patch_here(over);
        free_to(save);
    }

    // ---- concurrency --------------------------------------------------------

    // concurrent[(fail_fast=...)]: body   — a nursery: ScopeEnter, the body under a
    // handler that cancels and joins the scope on error, ScopeExit (join) at the end.
    void concurrent_stmt(const ConcurrentStmt* c) {
        int save = fs_->freereg;
        int scope = alloc();
        int opt = alloc();
        bool have = false;
        for (auto& k : c->options) {
            if (k.name != "fail_fast") fail(k.pos, "concurrent() takes only fail_fast=");
            expr_to(k.value.get(), opt);
            have = true;
        }
        if (!have) emit(make_abc(Op::LoadBool, opt, 1, 0));
        emit(make_abc(Op::ScopeEnter, scope, opt, 0));
        fs_->finally_blocks.push_back(nullptr);
        fs_->finally_regs.push_back(scope);
        int start = pc();
        auto d0 = fs_->defined;
        bool term = block(c->body);
        int end = pc();
        fs_->finally_blocks.pop_back();
        fs_->finally_regs.pop_back();
        if (!term) emit(make_abc(Op::ScopeExit, scope, 0, 0));
        int over = term ? -1 : emit_jump();
        int err = alloc();
        int handler_pc = pc();
        emit(make_abc(Op::ScopeAbort, scope, err, 0));
        emit(make_abc(Op::Reraise, err, 0, 0));
        ch().handlers.push_back(Handler{uint32_t(start), uint32_t(end), uint32_t(handler_pc), uint8_t(err)});
        if (over >= 0) patch_here(over);
        (void)d0;
        free_to(save);
    }

    // select: the cases are evaluated in source order into a list of
    // (kind, channel, value) tuples, the hidden builtin __select__ picks one and
    // returns (index, value, ok), and a chain of tests runs the chosen body.
    void select_stmt(const SelectStmt* sel) {
        int save = fs_->freereg;
        int cases = alloc();
        emit(make_abc(Op::NewList, cases, 0, 0));
        int has_default = 0;
        std::vector<const SelectCase*> order;  // non-default cases in list order
        const SelectCase* dflt = nullptr;
        for (auto& c : sel->cases) {
            if (c.case_kind == SelectCaseKind::Default) {
                if (dflt) fail(c.pos, "select has more than one default case");
                dflt = &c;
                has_default = 1;
                continue;
            }
            int inner = fs_->freereg;
            int t = alloc_n(3);
            int kind = c.case_kind == SelectCaseKind::Recv ? (c.ok_target ? 1 : 0)
                       : c.case_kind == SelectCaseKind::Send ? 2
                                                             : 3;
            emit(make_asbx(Op::LoadI, t, kind));
            if (c.case_kind == SelectCaseKind::After) {
                emit(make_abc(Op::LoadNone, t + 1, 0, 0));
                expr_to(c.value.get(), t + 2);
            } else {
                expr_to(c.channel.get(), t + 1);
                if (c.case_kind == SelectCaseKind::Send)
                    expr_to(c.value.get(), t + 2);
                else
                    emit(make_abc(Op::LoadNone, t + 2, 0, 0));
            }
            int tup = alloc();
            emit(make_abc(Op::NewTuple, tup, t, 3));
            emit(make_abc(Op::ListAppend, cases, tup, 0));
            free_to(inner);
            order.push_back(&c);
        }
        int base = alloc_n(3);
        emit(make_abx(Op::GetBuiltin, base, opts_.builtins->at("__select__")));
        emit(make_abc(Op::Move, base + 1, cases, 0));
        emit(make_abc(Op::LoadBool, base + 2, has_default, 0));
        emit(make_abc(Op::Call, base, 2, 0));
        int res = alloc_n(3);  // index, value, ok
        emit(make_abc(Op::Unpack, res, base, 3));
        std::vector<int> ends;
        auto d0 = fs_->defined;
        for (size_t i = 0; i < order.size(); ++i) {
            const SelectCase* c = order[i];
            Pos saved = pos_;
            pos_ = c->pos;
            fs_->defined = d0;
            emit(make_abc(Op::TEqK, res, const_int(int64_t(i)), 0));
            int next = emit_jump();
            if (c->target) store_target(c->target.get(), res + 1);
            if (c->ok_target) store_target(c->ok_target.get(), res + 2);
            if (!block(c->body)) ends.push_back(emit_jump());
            patch_here(next);
            pos_ = saved;
        }
        if (dflt) {
            fs_->defined = d0;
            if (!block(dflt->body)) ends.push_back(emit_jump());
        }
        patch_all(ends, pc());
        fs_->defined = d0;
        free_to(save);
    }

    // `race:` — each top-level statement is a branch, started as a task (a closure of the
    // statement; for `target = expr`, a closure returning expr). The hidden builtin __race__
    // waits for the first branch to succeed, cancels and awaits the others, and returns
    // (index, value); the winner's target is then assigned here, so only the winning branch's
    // assignment happens. All failing: an ErrorGroup.
    void race_stmt(const RaceStmt* r) {
        int save = fs_->freereg;
        int n = int(r->branches.size());
        if (n == 0) return;
        int base = alloc_n(n + 1);
        emit(make_abx(Op::GetBuiltin, base, opts_.builtins->at("__race__")));
        std::vector<Param> none;
        for (int i = 0; i < n; ++i) {
            const Stmt* st = r->branches[size_t(i)][0].get();
            if (st->kind == StmtKind::Return)
                fail(st->pos, "'return' cannot be a race: branch (each branch runs as a task of its own; "
                              "race the value instead: `v = f()` as a branch, then `return v` after the block)");
            int f = base + 1 + i;
            Pos saved = pos_;
            pos_ = st->pos;
            const auto* as = st->kind == StmtKind::Assign ? st->as<AssignStmt>() : nullptr;
            if (as && as->targets.size() == 1)
                function(nullptr, "<race>", none, nullptr, nullptr, as->value.get(), f, st->pos);
            else
                function(nullptr, "<race>", none, nullptr, &r->branches[size_t(i)], nullptr, f, st->pos);
            emit(make_abc(Op::SpawnCall, f, 0, 1));
            pos_ = saved;
        }
        emit(make_abc(Op::Call, base, n, 0));
        int res = alloc_n(2);  // index, value
        emit(make_abc(Op::Unpack, res, base, 2));
        auto d0 = fs_->defined;
        for (int i = 0; i < n; ++i) {
            const Stmt* st = r->branches[size_t(i)][0].get();
            const auto* as = st->kind == StmtKind::Assign ? st->as<AssignStmt>() : nullptr;
            if (!as || as->targets.size() != 1) continue;
            Pos saved = pos_;
            pos_ = st->pos;
            fs_->defined = d0;
            emit(make_abc(Op::TEqK, res, const_int(int64_t(i)), 0));
            int next = emit_jump();
            store_target(as->targets[0].get(), res + 1);
            patch_here(next);
            pos_ = saved;
        }
        // A name assigned by one branch is defined only if that branch won: reads check.
        fs_->defined = d0;
        free_to(save);
    }

    // ---- match ------------------------------------------------------------

    void match_stmt(const MatchStmt* m) {
        int save = fs_->freereg;
        int subj = alloc();
        expr_to(m->subject.get(), subj);
        std::vector<int> ends;
        auto d0 = fs_->defined;
        std::set<std::string> d_after;
        bool first = true, any_fallthrough = false, has_irrefutable = false;
        for (auto& c : m->cases) {
            Pos saved = pos_;
            pos_ = c.pos;
            fs_->defined = d0;
            std::vector<int> fail_jumps;
            pattern(c.pattern.get(), subj, fail_jumps);
            if (c.guard) cond_jump(c.guard.get(), false, fail_jumps);
            if (!c.guard && (c.pattern->kind == PatternKind::Wildcard || c.pattern->kind == PatternKind::Capture))
                has_irrefutable = true;
            bool term = block(c.body);
            if (!term) {
                if (first) {
                    d_after = fs_->defined;
                    first = false;
                } else {
                    intersect(d_after, fs_->defined);
                }
                any_fallthrough = true;
                ends.push_back(emit_jump());
            }
            patch_all(fail_jumps, pc());
            pos_ = saved;
        }
        patch_all(ends, pc());
        if (has_irrefutable && any_fallthrough) {
            fs_->defined = d_after;
        } else {
            fs_->defined = d0;
        }
        free_to(save);
    }

    void pattern(const Pattern* p, int subj, std::vector<int>& fail_jumps) {
        int save = fs_->freereg;
        switch (p->kind) {
            case PatternKind::Wildcard:
                break;
            case PatternKind::Capture:
                store_name(p->as<CapturePattern>()->name, subj, p->pos);
                break;
            case PatternKind::Value: {
                int v = alloc();
                expr_to(p->as<ValuePattern>()->value.get(), v);
                int t = alloc();
                emit(make_abc(Op::Eq, t, subj, v));
                emit(make_abc(Op::Test, t, 0, 0));
                fail_jumps.push_back(emit_jump());
                break;
            }
            case PatternKind::Singleton: {
                int v = alloc();
                expr_to(p->as<SingletonPattern>()->value.get(), v);
                int t = alloc();
                emit(make_abc(Op::Cmp, t, subj, v));
                emit(Instr(CmpOp::Is));
                emit(make_abc(Op::Test, t, 0, 0));
                fail_jumps.push_back(emit_jump());
                break;
            }
            case PatternKind::Sequence: {
                auto* s = p->as<SequencePattern>();
                int n = int(s->patterns.size());
                int fixed = s->star_index >= 0 ? n - 1 : n;
                int t = alloc();
                emit(make_abc(Op::IsSeq, t, subj, s->star_index >= 0 ? (fixed | 128) : fixed));
                emit(make_abc(Op::Test, t, 0, 0));
                fail_jumps.push_back(emit_jump());
                for (int i = 0; i < n; ++i) {
                    int el = alloc();
                    if (i == s->star_index) {
                        // subj[i : len - (n - 1 - i)]
                        int b = alloc_n(3);
                        emit(make_asbx(Op::LoadI, b, i));
                        int after = n - 1 - i;
                        if (after == 0)
                            emit(make_abc(Op::LoadNone, b + 1, 0, 0));
                        else
                            emit(make_asbx(Op::LoadI, b + 1, -after));
                        emit(make_abc(Op::LoadNone, b + 2, 0, 0));
                        int sl = alloc();
                        emit(make_abc(Op::Slice, sl, b, 0));
                        emit(make_abc(Op::GetItem, el, subj, sl));
                        // a list, as in Python
                        int lb = alloc_n(2);
                        emit(make_abx(Op::GetBuiltin, lb, opts_.builtins->at("list")));
                        emit(make_abc(Op::Move, lb + 1, el, 0));
                        emit(make_abc(Op::Call, lb, 1, 0));
                        emit(make_abc(Op::Move, el, lb, 0));
                    } else {
                        int idx = alloc();
                        int k = (s->star_index >= 0 && i > s->star_index) ? -(n - i) : i;
                        emit(make_asbx(Op::LoadI, idx, k));
                        emit(make_abc(Op::GetItem, el, subj, idx));
                    }
                    pattern(s->patterns[i].get(), el, fail_jumps);
                }
                break;
            }
            case PatternKind::Mapping: {
                auto* m = p->as<MappingPattern>();
                int t = alloc();
                emit(make_abc(Op::IsMap, t, subj, 0));
                emit(make_abc(Op::Test, t, 0, 0));
                fail_jumps.push_back(emit_jump());
                std::vector<int> keyregs;
                for (size_t i = 0; i < m->keys.size(); ++i) {
                    int k = alloc();
                    expr_to(m->keys[i].get(), k);
                    keyregs.push_back(k);
                    emit(make_abc(Op::HasKey, t, subj, k));
                    emit(make_abc(Op::Test, t, 0, 0));
                    fail_jumps.push_back(emit_jump());
                    int v = alloc();
                    emit(make_abc(Op::GetItem, v, subj, k));
                    pattern(m->patterns[i].get(), v, fail_jumps);
                }
                if (!m->rest.empty()) {
                    int rest = alloc();
                    emit(make_abc(Op::Move, rest, subj, 0));
                    for (int k : keyregs) {
                        int b = alloc_n(3);
                        emit(make_abc(Op::Move, b + 2, k, 0));
                        emit(make_abc(Op::CallM, b, 1, rest));
                        emit(Instr(const_str("pop")));
                    }
                    store_name(m->rest, rest, p->pos);
                }
                break;
            }
            case PatternKind::Class: {
                auto* c = p->as<ClassPattern>();
                int cls = alloc();
                expr_to(c->cls.get(), cls);
                int t = alloc();
                emit(make_abc(Op::IsInstance, t, subj, cls));
                emit(make_abc(Op::Test, t, 0, 0));
                fail_jumps.push_back(emit_jump());
                for (size_t i = 0; i < c->positional.size(); ++i) {
                    int v = alloc();
                    // Positional sub-patterns match fields in declaration order
                    // (for built-in types, `int(x)` matches the subject itself).
                    emit(make_abc(Op::FieldAt, v, subj, int(i)));
                    pattern(c->positional[i].get(), v, fail_jumps);
                }
                for (size_t i = 0; i < c->kw_names.size(); ++i) {
                    int v = alloc();
                    int k = attr_const(c->kw_names[i]);
                    // missing attribute: no match
                    int has = alloc();
                    int kr = alloc();
                    emit(make_abx(Op::LoadK, kr, k));
                    emit(make_abc(Op::HasKey, has, subj, kr));
                    emit(make_abc(Op::Test, has, 0, 0));
                    fail_jumps.push_back(emit_jump());
                    emit(make_abc(Op::GetAttr, v, subj, k));
                    pattern(c->kw_patterns[i].get(), v, fail_jumps);
                }
                break;
            }
            case PatternKind::As: {
                auto* a = p->as<AsPattern>();
                pattern(a->pattern.get(), subj, fail_jumps);
                store_name(a->name, subj, p->pos);
                break;
            }
            case PatternKind::Or: {
                auto* o = p->as<OrPattern>();
                std::vector<int> success;
                for (size_t i = 0; i < o->alternatives.size(); ++i) {
                    std::vector<int> alt_fail;
                    pattern(o->alternatives[i].get(), subj, alt_fail);
                    if (i + 1 < o->alternatives.size()) {
                        success.push_back(emit_jump());
                        patch_all(alt_fail, pc());
                    } else {
                        for (int j : alt_fail) fail_jumps.push_back(j);
                    }
                }
                patch_all(success, pc());
                break;
            }
        }
        free_to(std::max(save, fs_->freereg > save ? save : save));
    }

    // ---- functions and structs ---------------------------------------------

    // Annotation to a runtime type spec: a type value, a tuple of alternatives
    // (`A | B`), None for NoneType; generic arguments are dropped (shallow check).
    void type_expr(const Expr* e, int target) {
        switch (e->kind) {
            case ExprKind::Subscript:
                type_expr(e->as<SubscriptExpr>()->object.get(), target);
                return;
            case ExprKind::Binary: {
                auto* b = e->as<BinaryExpr>();
                if (b->op == BinaryOp::BitOr) {
                    int base = alloc_n(2);
                    type_expr(b->left.get(), base);
                    type_expr(b->right.get(), base + 1);
                    emit(make_abc(Op::NewTuple, target, base, 2));
                    free_to(base);
                    return;
                }
                break;
            }
            case ExprKind::StrLit:
                // forward reference by name: resolved when checked
                emit(make_abx(Op::LoadK, target, const_str(e->as<StrLitExpr>()->value)));
                return;
            default:
                break;
        }
        expr_to(e, target);
    }

    // Compiles a function (def or lambda) and leaves the closure in `target`.
    void function(const FunctionDefStmt* def, const std::string& name, const std::vector<Param>& params,
                  const Expr* returns, const Block* body, const Expr* lambda_body, int target, Pos pos) {
        auto chunk = std::make_unique<Chunk>();
        chunk->name = fs_->is_module ? name : (ch().name == "<module>" ? name : name);
        chunk->path = path_;
        chunk->line = pos.line;
        if (def) chunk->doc = def->doc;

        // Defaults and annotation types are evaluated now, in the enclosing scope.
        int save = fs_->freereg;
        int block_start = fs_->freereg;
        int ndefaults = 0;
        bool seen_default = false;
        std::set<std::string> seen;
        for (auto& p : params) {
            if (!seen.insert(p.name).second) fail(p.pos, "duplicate argument '" + p.name + "' in function definition");
            if (p.default_value) {
                expr_to(p.default_value.get(), alloc());
                ++ndefaults;
                seen_default = true;
            } else if (seen_default && p.kind == ParamKind::Normal && !p.keyword_only) {
                fail(p.pos, "non-default argument follows default argument");
            }
        }
        int ntypes = 0;
        for (auto& p : params) {
            if (p.annotation) {
                type_expr(p.annotation.get(), alloc());
                ++ntypes;
            }
        }
        if (returns) {
            type_expr(returns, alloc());
            ++ntypes;
        }

        FuncState fs;
        fs.parent = fs_;
        fs.chunk = chunk.get();
        // A nested def calls itself through GetSelfFn (it cannot capture its own
        // not-yet-assigned variable). Module-level functions stay late bound, so
        // a decorator that rebinds the name is honoured by recursive calls.
        if (def && !fs_->is_module && def->decorators.empty()) fs.self_name = def->name;
        // Parameters occupy the first registers, in order: positional, keyword-only,
        // *args, **kwargs.
        int reg = 0;
        int type_i = 0;
        std::vector<const Param*> ordered;
        for (auto& p : params)
            if (p.kind == ParamKind::Normal && !p.keyword_only) ordered.push_back(&p);
        chunk->num_positional = int(ordered.size());
        for (auto& p : params)
            if (p.kind == ParamKind::Normal && p.keyword_only) ordered.push_back(&p);
        for (auto* p : ordered) {
            ParamDesc d;
            d.name = p->name;
            d.has_default = p->default_value != nullptr;
            d.keyword_only = p->keyword_only;
            d.annotated = p->annotation != nullptr;
            chunk->params.push_back(d);
            fs.locals[p->name] = reg++;
            fs.defined.insert(p->name);
        }
        for (auto& p : params) {
            if (p.kind == ParamKind::VarArgs) {
                chunk->vararg_reg = reg;
                fs.locals[p.name] = reg++;
                fs.defined.insert(p.name);
            }
        }
        for (auto& p : params) {
            if (p.kind == ParamKind::KwArgs) {
                chunk->kwarg_reg = reg;
                fs.locals[p.name] = reg++;
                fs.defined.insert(p.name);
            }
        }
        // Annotation type indexes follow declaration order of `params`.
        for (auto& p : params)
            if (p.annotation) fs.type_index[p.name] = type_i++;
        if (returns) fs.return_type_index = type_i++;
        if (chunk->vararg_reg < 0 && chunk->kwarg_reg < 0 && chunk->num_positional == int(chunk->params.size()))
            chunk->simple_arity = chunk->num_positional;
        chunk->num_defaults = ndefaults;
        chunk->num_types = ntypes;
        chunk->has_return_type = returns != nullptr;

        // Locals: every name the body binds.
        Bindings b;
        if (body) collect_block(*body, b);
        for (auto& n : b.order) {
            if (fs.locals.count(n)) continue;
            if (module_names_.count(n) && b.plain_assign.count(n)) {
                fail(b.plain_assign[n], "cannot assign module name '" + n + "' inside function '" + name +
                                            "': module names are read-only in functions (use a local name, or "
                                            "an atom for shared mutable state)");
            }
            fs.locals[n] = reg++;
        }
        if (reg >= kMaxRegisters) fail(pos, "too many local variables in function '" + name + "'");
        fs.nactive = reg;
        fs.freereg = reg;
        chunk->nactive = reg;
        chunk->nregs = reg;
        for (auto& [n, r] : fs.locals) chunk->local_names.emplace_back(n, r);

        FuncState* outer = fs_;
        Pos outer_pos = pos_;
        fs_ = &fs;
        pos_ = pos;
        // Runtime checks of annotated parameters.
        for (auto* p : ordered) {
            if (!p->annotation) continue;
            int t = alloc();
            emit(make_abc(Op::LoadType, t, fs.type_index[p->name], 0));
            emit(make_abc(Op::TypeCheck, fs.locals[p->name], t, int(CheckKind::Param)));
            emit(Instr(const_str(p->name)));
            free_to(fs.nactive);
        }
        // @sequential: nothing in the body is deferred.
        bool seq = false;
        if (def)
            for (auto& d : def->decorators)
                if (d->kind == ExprKind::Name && d->as<NameExpr>()->name == "sequential") seq = true;
        int saved_seq = sequential_depth_;
        if (seq) ++sequential_depth_;
        if (lambda_body) {
            int r = alloc();
            expr_to(lambda_body, r);
            emit(make_abc(Op::Return, r, 0, 0));
        } else {
            bool term = block(*body);
            if (!term) {
                // The implicit return belongs to the body's last statement, not to the `def`
                // line: errors raised as the activation ends (its deferred calls that failed
                // unused) point at where the function ended.
                if (!body->empty()) pos_ = span_start_ = body->back()->pos;
                if (fs.return_type_index >= 0) {
                    int v = alloc();
                    emit(make_abc(Op::LoadNone, v, 0, 0));
                    int t = alloc();
                    emit(make_abc(Op::LoadType, t, fs.return_type_index, 0));
                    emit(make_abc(Op::TypeCheck, v, t, int(CheckKind::Return)));
                    emit(Instr(const_str(name)));
                }
                emit(make_abc(Op::ReturnNone, 0, 0, 0));
            }
        }
        sequential_depth_ = saved_seq;
        fs_ = outer;
        pos_ = outer_pos;
        chunk->nregs = std::max(chunk->nregs, 1);

        int child = int(ch().children.size());
        ch().children.push_back(std::move(chunk));
        emit(make_abx(Op::Closure, target, child));
        emit(Instr(block_start));
        free_to(save);
    }

    void struct_def(const StructDefStmt* s) {
        auto desc = std::make_unique<StructDesc>();
        desc->name = s->name;
        desc->doc = s->doc;
        desc->line = s->pos.line;
        if (s->kind == StmtKind::ActorDef) {
            const char* what = s->is_agent ? "an agent" : "an actor";
            desc->actor_kind = s->is_agent ? 2 : 1;
            if (!s->bases.empty()) fail(s->bases[0]->pos, std::string(what) + " cannot have a base");
            // X.spawn(**fields, name=, mailbox=, overflow=, capabilities=): a field named like
            // one of spawn's own keywords could never be given (spec section 10).
            for (auto& f : s->fields)
                for (const char* kw : {"name", "mailbox", "overflow", "capabilities"})
                    if (f.name == kw)
                        fail(f.pos, "a field of " + std::string(what) + " cannot be named '" + f.name +
                                        "': it is a keyword of " + s->name + ".spawn()");
            for (auto& m : s->methods)
                for (const char* reserved : {"tell", "ask", "stop", "alive", "spawn", "ref", "state", "suspend", "resume"})
                    if (m->name == reserved && (s->is_agent || m->name != std::string_view("state")) &&
                        (s->is_agent || (m->name != std::string_view("suspend") && m->name != std::string_view("resume"))))
                        fail(m->pos, "a handler of " + std::string(what) + " cannot be named '" + m->name +
                                         "': ActorRef." + m->name + " is built in");
        }
        if (s->bases.size() > 1) fail(s->pos, "a struct can have at most one base");
        int save = fs_->freereg;
        std::vector<int> decs;
        for (auto& d : s->decorators) {
            int r = alloc();
            expr_to(d.get(), r);
            decs.push_back(r);
        }
        int start = fs_->freereg;
        if (!s->bases.empty()) {
            desc->has_base = true;
            expr_to(s->bases[0].get(), alloc());
        }
        std::set<std::string> seen;
        bool seen_default = false;
        for (auto& f : s->fields) {
            if (!seen.insert(f.name).second) fail(f.pos, "duplicate field '" + f.name + "' in struct " + s->name);
            StructDesc::Field fd;
            fd.name = f.name;
            if (f.annotation) {
                fd.has_annotation = true;
                type_expr(f.annotation.get(), alloc());
            }
            if (f.default_value) {
                fd.has_default = true;
                seen_default = true;
                expr_to(f.default_value.get(), alloc());
            } else if (seen_default) {
                fail(f.pos, "field '" + f.name + "' without a default follows a field with a default");
            }
            desc->fields.push_back(fd);
        }
        for (auto& m : s->methods) {
            desc->method_names.push_back(m->name);
            int r = alloc();
            std::string qual = s->name + "." + m->name;
            int dsave = fs_->freereg;
            std::vector<int> mdecs;
            for (auto& d : m->decorators) {
                int dr = alloc();
                expr_to(d.get(), dr);
                mdecs.push_back(dr);
            }
            function(m.get(), qual, m->params, m->returns.get(), &m->body, nullptr, r, m->pos);
            for (auto it = mdecs.rbegin(); it != mdecs.rend(); ++it) {
                int base = alloc();
                emit(make_abc(Op::Move, base, *it, 0));
                emit(make_abc(Op::Move, alloc(), r, 0));
                emit(make_abc(Op::Call, base, 1, 0));
                emit(make_abc(Op::Move, r, base, 0));
            }
            free_to(std::max(dsave, r + 1));
        }
        // Methods compiled with a qualified name; the struct's own name inside
        // methods resolves normally (module global or outer local).
        int target = alloc();
        int idx = int(ch().structs.size());
        ch().structs.push_back(std::move(desc));
        emit(make_abx(Op::StructDef, target, idx));
        emit(Instr(start));
        for (auto it = decs.rbegin(); it != decs.rend(); ++it) {
            int base = alloc();
            emit(make_abc(Op::Move, base, *it, 0));
            emit(make_abc(Op::Move, alloc(), target, 0));
            emit(make_abc(Op::Call, base, 1, 0));
            emit(make_abc(Op::Move, target, base, 0));
        }
        store_name(s->name, target, s->pos);
        free_to(save);
    }
};

}  // namespace

static void finish_chunks(Chunk& c);

std::unique_ptr<Chunk> compile_module(const ast::Module& module, GlobalLayout& globals,
                                      const CompileOptions& options) {
    Codegen cg(globals, options);
    std::unique_ptr<Chunk> chunk = cg.module(module);
    finish_chunks(*chunk);
    return chunk;
}

const char* op_name(Op op) {
    static const char* names[] = {
#define WEFT_OP_NAME(name) #name,
        WEFT_OPCODES(WEFT_OP_NAME)
#undef WEFT_OP_NAME
    };
    return size_t(op) < sizeof(names) / sizeof(names[0]) ? names[size_t(op)] : "?";
}

static bool has_extra_word(Op op) {
    switch (op) {
        case Op::BinOp:
        case Op::BinOpK:
        case Op::Cmp:
        case Op::CallM:
        case Op::CallMP:
        case Op::CallMDefer:
        case Op::CallMDeferNow:
        case Op::CallDeferIfM:
        case Op::CallKw:
        case Op::CallKwDefer:
        case Op::Closure:
        case Op::StructDef:
        case Op::UnpackEx:
        case Op::FormatX:
        case Op::TypeCheck:
        case Op::ReleaseGlobal:
            return true;
        default:
            return false;
    }
}

// Is `c` a leaf function (Chunk::leaf)? Only instructions that compute, test, build and take
// apart values; forward jumps only. Calls of any kind, loops, iteration (which may read a
// channel), module writes, imports, scopes and lazy values make it not a leaf.
static bool is_leaf_chunk(const Chunk& c) {
    for (size_t i = 0; i < c.code.size(); ++i) {
        Op op = get_op(c.code[i]);
        switch (op) {
            case Op::Move: case Op::LoadK: case Op::LoadI: case Op::LoadNone: case Op::LoadBool:
            case Op::GetGlobal: case Op::GetGlobalTop: case Op::GetBuiltin: case Op::GetCapture: case Op::GetSelfFn:
            case Op::CheckDef: case Op::Add: case Op::Sub: case Op::Mul: case Op::AddK: case Op::SubK:
            case Op::BinOp: case Op::BinOpK: case Op::Neg: case Op::Not: case Op::Invert: case Op::Plus:
            case Op::Lt: case Op::Le: case Op::Eq: case Op::Cmp: case Op::TLt: case Op::TLe: case Op::TEq:
            case Op::TLtK: case Op::TLeK: case Op::TEqK: case Op::TGtK: case Op::TGeK: case Op::Test:
            case Op::NewList: case Op::NewTuple: case Op::NewSet: case Op::NewDict: case Op::ListAppend:
            case Op::SetAdd: case Op::DictSet: case Op::ToTuple: case Op::GetItem: case Op::SetItem:
            case Op::GetAttr: case Op::SetAttr: case Op::Slice: case Op::PlaceR: case Op::PlaceAttr:
            case Op::PlaceItem: case Op::SetItemP: case Op::SetAttrP: case Op::Return: case Op::ReturnNone:
            case Op::Closure: case Op::Raise: case Op::RaiseFrom: case Op::Reraise: case Op::ExcMatch:
            case Op::Format: case Op::FormatX: case Op::Concat: case Op::LoadType: case Op::TypeCheck:
            case Op::IsSeq: case Op::IsMap: case Op::HasKey: case Op::IsInstance: case Op::Len:
            case Op::FieldAt: case Op::Nop:
                break;
            case Op::Jmp:
                if (get_sj(c.code[i]) < 0) return false;
                break;
            case Op::Call:
            case Op::CallDefer:
            case Op::CallDeferIf:
                if (!std::binary_search(c.pure_calls.begin(), c.pure_calls.end(), uint32_t(i))) return false;
                break;
            default:
                return false;
        }
        if (has_extra_word(op)) ++i;
    }
    return true;
}

// The registers an instruction forces (needs the value of) before it does anything else, or
// false when it is not one of the instructions that force their operands at once.
static bool forced_operands(Instr in, int out[2], int& n) {
    n = 0;
    switch (get_op(in)) {
        case Op::Add: case Op::Sub: case Op::Mul: case Op::BinOp: case Op::Lt: case Op::Le: case Op::Eq:
        case Op::Cmp: case Op::GetItem:
            out[n++] = get_b(in);
            out[n++] = get_c(in);
            return true;
        case Op::AddK: case Op::SubK: case Op::BinOpK: case Op::Neg: case Op::Not: case Op::Invert:
        case Op::Plus: case Op::GetAttr: case Op::GetIter: case Op::Len: case Op::Unpack: case Op::UnpackEx:
        case Op::Format: case Op::FormatX: case Op::IsSeq: case Op::IsMap: case Op::HasKey:
        case Op::IsInstance: case Op::FieldAt:
            out[n++] = get_b(in);
            return true;
        case Op::TLt: case Op::TLe: case Op::TEq:
            out[n++] = get_a(in);
            out[n++] = get_b(in);
            return true;
        case Op::TLtK: case Op::TLeK: case Op::TEqK: case Op::TGtK: case Op::TGeK: case Op::Test: case Op::Force:
            out[n++] = get_a(in);
            return true;
        default:
            return false;
    }
}

// Instructions that may stand between a deferred call and the use of its value without
// costing the call any overlap: arithmetic, comparisons, indexing, attributes and calls of
// builtins that only compute, all on straight-line code. They cannot wait on the outside world
// or make a deferred call of their own, and are over in moments, so running the call before
// them rather than beside them loses nothing. (An operand that is an earlier deferred call is
// forced by them either way; whether that record or this call runs first changes no overlap:
// if either blocks, the park hook starts the other as a task.) Sets [first, last] to the
// registers the instruction may overwrite.
static bool computes_only(const Chunk& c, size_t at, int& first, int& last) {
    Instr in = c.code[at];
    first = last = get_a(in);
    switch (get_op(in)) {
        case Op::Add: case Op::Sub: case Op::Mul: case Op::AddK: case Op::SubK: case Op::BinOp:
        case Op::BinOpK: case Op::Neg: case Op::Not: case Op::Invert: case Op::Plus: case Op::Lt:
        case Op::Le: case Op::Eq: case Op::Cmp: case Op::GetItem: case Op::GetAttr: case Op::Len:
            return true;
        case Op::Call:
            last = get_a(in) + get_b(in);
            return std::binary_search(c.pure_calls.begin(), c.pure_calls.end(), uint32_t(at));
        default:
            return false;
    }
}

// Marks the deferred calls whose value the caller needs before it does anything that could
// overlap with the call (CallDefer with C=1, CallMDefer made CallMDeferNow): `x = f(a)`
// followed by `total += x`, or by `k = k * 2; total += x` — with only loads, moves, module
// stores of the value and instructions that compute only (computes_only) in between. Running
// such a call at once is a schedule the deferred call allows (it may start any time after it is
// made), and nothing of the caller's that comes before the use could have overlapped with it;
// the VM runs it at once as it runs a leaf (op_CallDefer), its error kept for the use. The scan
// follows the value through register moves and module globals, and stops at anything else: a
// call that is not of a computing builtin, a jump, a store elsewhere.
static void mark_used_at_once(Chunk& c) {
    for (size_t i = 0; i < c.code.size(); ++i) {
        Op op = get_op(c.code[i]);
        size_t call = i;
        if (has_extra_word(op)) ++i;
        if (op != Op::CallDefer && op != Op::CallMDefer) continue;
        std::bitset<256> regs;
        std::vector<int> globals;  // module slots holding the value
        Instr& ci = c.code[call];
        regs.set(size_t(get_a(ci)));
        auto holds_global = [&](int slot) { return std::find(globals.begin(), globals.end(), slot) != globals.end(); };
        auto mark = [&] {
            if (op == Op::CallDefer) ci = make_abc(Op::CallDefer, get_a(ci), get_b(ci), 1);
            if (op == Op::CallMDefer) ci = make_abc(Op::CallMDeferNow, get_a(ci), get_b(ci), get_c(ci));
        };
        for (size_t j = i + 1; j < c.code.size() && j < i + 64; ++j) {
            Instr in = c.code[j];
            int used[2], n, first, last;
            bool forces = forced_operands(in, used, n);
            bool hit = false;
            for (int k = 0; k < n; ++k) hit = hit || regs.test(size_t(used[k]));
            bool computes = computes_only(c, j, first, last);
            if (computes && get_op(in) == Op::Call)  // a computing builtin forces its arguments
                for (int r = first + 1; r <= last; ++r) hit = hit || regs.test(size_t(r));
            if (hit) {
                mark();
                break;
            }
            if (computes) {
                for (int r = first; r <= last; ++r) regs.reset(size_t(r));
                if (regs.none() && globals.empty()) break;
                continue;
            }
            if (forces) break;
            Op o = get_op(in);
            int a = get_a(in);
            if (o == Op::Move) {
                regs.set(size_t(a), regs.test(size_t(get_b(in))));
            } else if (o == Op::GetGlobal || o == Op::GetGlobalTop) {
                regs.set(size_t(a), holds_global(get_bx(in)));
            } else if (o == Op::SetGlobal) {
                if (regs.test(size_t(a))) globals.push_back(get_bx(in));
                else globals.erase(std::remove(globals.begin(), globals.end(), get_bx(in)), globals.end());
            } else if (o == Op::LoadK || o == Op::LoadI || o == Op::LoadNone || o == Op::LoadBool ||
                       o == Op::GetBuiltin || o == Op::GetCapture || o == Op::GetSelfFn) {
                regs.reset(size_t(a));
            } else if (o != Op::CheckDef) {
                break;
            }
            if (regs.none() && globals.empty()) break;
        }
    }
}

// Fills in what is derived from a finished chunk tree: Chunk::leaf and Chunk::task_name.
static void finish_chunks(Chunk& c) {
    for (auto& child : c.children) finish_chunks(*child);
    std::sort(c.pure_calls.begin(), c.pure_calls.end());
    c.leaf = c.name != "<module>" && is_leaf_chunk(c);
    mark_used_at_once(c);
    auto dot = c.name.rfind('.');
    c.task_name = dot == std::string::npos ? c.name : c.name.substr(dot + 1);
}

static void disassemble_into(const Chunk& c, std::string& out) {
    out += "function " + c.name + " (" + std::to_string(c.nregs) + " registers" + (c.leaf ? ", leaf" : "") + ")\n";
    for (size_t i = 0; i < c.code.size(); ++i) {
        Instr in = c.code[i];
        Op op = get_op(in);
        char buf[128];
        snprintf(buf, sizeof buf, "  %4zu  [%u] %-13s A=%d B=%d C=%d Bx=%d sBx=%d%s\n", i, c.lines[i], op_name(op),
                 get_a(in), get_b(in), get_c(in), get_bx(in), get_sbx(in),
                 op == Op::CallDefer && get_c(in) ? "  (value used at once)" : "");
        out += buf;
        if (has_extra_word(op) && i + 1 < c.code.size()) {
            ++i;
            snprintf(buf, sizeof buf, "  %4zu        .extra %u\n", i, c.code[i]);
            out += buf;
        }
    }
    for (auto& h : c.handlers)
        out += "  handler [" + std::to_string(h.start) + "," + std::to_string(h.end) + ") -> " +
               std::to_string(h.handler) + " r" + std::to_string(h.reg) + "\n";
    for (auto& child : c.children) disassemble_into(*child, out);
}

std::string disassemble(const Chunk& chunk) {
    std::string out;
    disassemble_into(chunk, out);
    return out;
}

}  // namespace weft
