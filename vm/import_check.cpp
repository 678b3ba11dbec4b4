// import_check.cpp — `weft check` follows a program's imports: every file import must exist
// and compile, every module name must be a standard module; the first that does not is
// reported at the import (file:line:col) with status 2. (At run time a failed import raises an
// error which, uncaught, also ends the program with status 2: vm/sys.h.)
//
// Imports are found by walking the syntax tree (imports inside functions and blocks too), each
// file once (a cycle ends at a file already seen). The files are parsed and compiled here and
// again when they are imported: parsing is cheap next to running, and keeping the import
// machinery itself unchanged keeps its once-only and cycle semantics in one place.

#include <filesystem>

#include "compiler/parser.h"
#include "compiler/lisp/lower.h"
#include "vm/interp.h"

namespace weft {

namespace {

namespace fs = std::filesystem;

void collect_imports(const ast::Block& body, std::vector<const ast::Stmt*>& out);

void collect_one(const ast::Stmt* s, std::vector<const ast::Stmt*>& out) {
    using K = ast::StmtKind;
    switch (s->kind) {
        case K::Import:
        case K::ImportFrom:
            out.push_back(s);
            break;
        case K::If: {
            auto* x = s->as<ast::IfStmt>();
            collect_imports(x->body, out);
            collect_imports(x->orelse, out);
            break;
        }
        case K::While: {
            auto* x = s->as<ast::WhileStmt>();
            collect_imports(x->body, out);
            collect_imports(x->orelse, out);
            break;
        }
        case K::For: {
            auto* x = s->as<ast::ForStmt>();
            collect_imports(x->body, out);
            collect_imports(x->orelse, out);
            break;
        }
        case K::Try: {
            auto* x = s->as<ast::TryStmt>();
            collect_imports(x->body, out);
            for (auto& h : x->handlers) collect_imports(h.body, out);
            collect_imports(x->orelse, out);
            collect_imports(x->finalbody, out);
            break;
        }
        case K::With:
            collect_imports(s->as<ast::WithStmt>()->body, out);
            break;
        case K::FunctionDef:
            collect_imports(s->as<ast::FunctionDefStmt>()->body, out);
            break;
        case K::StructDef:
        case K::ActorDef:
            for (auto& m : s->as<ast::StructDefStmt>()->methods) collect_imports(m->body, out);
            break;
        case K::Match:
            for (auto& c : s->as<ast::MatchStmt>()->cases) collect_imports(c.body, out);
            break;
        case K::SpawnBlock:
            collect_imports(s->as<ast::SpawnBlockStmt>()->body, out);
            break;
        case K::Concurrent:
            collect_imports(s->as<ast::ConcurrentStmt>()->body, out);
            break;
        case K::Race:
            for (auto& b : s->as<ast::RaceStmt>()->branches) collect_imports(b, out);
            break;
        case K::Sequential:
            collect_imports(s->as<ast::SequentialStmt>()->body, out);
            break;
        case K::Select:
            for (auto& c : s->as<ast::SelectStmt>()->cases) collect_imports(c.body, out);
            break;
        default:
            break;
    }
}

void collect_imports(const ast::Block& body, std::vector<const ast::Stmt*>& out) {
    for (auto& s : body) collect_one(s.get(), out);
}


// The folder imports of `importer_path` are relative to (the current folder for "<stdin>",
// "<string>" and the REPL).
fs::path import_base(const std::string& importer_path) {
    if (importer_path.empty() || importer_path[0] == '<') return fs::current_path();
    return fs::path(importer_path).parent_path();
}

}  // namespace

std::string Vm::module_name_hint(const std::string& name, const std::string& importer_path) {
    std::error_code ec;
    fs::path beside = import_base(importer_path) / (name + ".weft");
    if (name.find('/') != std::string::npos || !fs::is_regular_file(beside, ec)) return "";
    return "; " + name + ".weft is a file beside " +
           (importer_path.empty() || importer_path[0] == '<' ? std::string("the current folder")
                                                              : fs::path(importer_path).filename().string()) +
           ": import it by its path, `import \"./" + name + ".weft\" as " + name + "`";
}

int Vm::check_imports(const ast::Module& module, const std::string& path, const std::string& source,
                      std::unordered_set<std::string>& seen) {
    std::vector<const ast::Stmt*> imports;
    collect_imports(module.body, imports);
    for (const ast::Stmt* s : imports) {
        bool is_path = s->kind == ast::StmtKind::Import ? s->as<ast::ImportStmt>()->is_path
                                                         : s->as<ast::ImportFromStmt>()->is_path;
        const std::string& name = s->kind == ast::StmtKind::Import ? s->as<ast::ImportStmt>()->module
                                                                   : s->as<ast::ImportFromStmt>()->module;
        auto fail = [&](std::string msg) {
            return report_compile_error(CompileError(Diagnostic{path, s->pos, std::move(msg)}), source);
        };
        if (!is_path) {
            if (name == "__lisp__") continue;  // the Lisp prelude every lowered .wlisp imports
            // An embedding host's loader (VmOptions::load_module) may have it: known at run time.
            if (!has_module(name) && !options_.load_module)
                return fail("no module named '" + name + "'" + module_name_hint(name, path));
            continue;
        }
        if (options_.load_module) continue;  // the host's loader is asked first, at run time
        fs::path full = name[0] == '/' ? fs::path(name) : import_base(path) / name;
        std::error_code ec;
        fs::path canon = fs::weakly_canonical(full, ec);
        std::string key = ec ? full.string() : canon.string();
        // Only what the program may import is followed here (its own folder tree, or what
        // --allow-read grants; Vm::import_module has the rule): reading, or even reporting
        // the absence of, any other file would leak it. Those fail at run time with
        // PermissionDenied, or ValueError for a NUL byte.
        if (name.find('\0') != std::string::npos) continue;
        std::string ck = canonical_path(full.string());
        std::string ext = fs::path(ck).extension().string();
        bool own_tree = (ext == ".weft" || ext == ".wlisp") && path_within(ck, sources_->root());
        if (!own_tree && !program_caps_->allows_read(ck)) continue;
        if (!seen.insert(key).second) continue;
        std::string src;
        if (!read_source_file(key, src)) {
            std::error_code ec2;
            bool dir = fs::is_directory(key, ec2);
            return fail("cannot import '" + name + "': " + (dir ? "it is a directory: " : "no such file: ") +
                        full.lexically_normal().string());
        }
        std::string shown = full.lexically_normal().string();
        std::unique_ptr<ast::Module> ast;
        try {
            ast = lisp::is_lisp_path(shown) ? lisp::parse_lisp_module(src, shown, lisp::LowerOptions{})
                                            : parse_module(src, shown);
            GlobalLayout g;
            CompileOptions co;
            co.sequential = options_.sequential || lisp::is_lisp_path(shown);
            co.builtins = &builtin_index;
            compile_module(*ast, g, co);
        } catch (CompileError& e) {
            if (e.diag.path.empty()) e.diag.path = shown;
            return report_compile_error(e, src);
        }
        if (int rc = check_imports(*ast, shown, src, seen)) return rc;
    }
    return 0;
}

}  // namespace weft
