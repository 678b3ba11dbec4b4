// lower.h — lowering of Lisp datums (compiler/lisp/reader.h) onto the Weft AST
// (compiler/ast.h), so the same resolver, code generator, VM and runtime run `.wlisp` programs
// (spec: shared/spec/lisp.md section 10; guide: docs/language/lisp.md).
//
// Special forms become statements and expressions; primitives become calls of the natives
// `__lisp_*` (vm/lisp_prims.cpp) or of the functions of the Lisp prelude, a Weft module named
// `__lisp__` (vm/lisp_prelude.weft.h) imported by every lowered module under `__lp_` names.
// Every node carries the position of the datum it comes from. Names: a Lisp symbol `a-b` is
// the Weft name `a_b` (so Weft code importing a `.wlisp` file sees `a_b`); locals that would
// clash get a numeric suffix.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compiler/ast.h"
#include "compiler/lisp/reader.h"

namespace weft::lisp {

struct LowerOptions {
    // REPL: each top-level form's value (not define/set!/import) is printed readably.
    bool repl = false;
    // Globals defined by earlier REPL inputs (Weft names): symbols may refer to them.
    const std::vector<std::string>* known_globals = nullptr;
};

// Lowers the forms of one file. Throws CompileError (first error only) with the datum's
// position: unbound symbols (with a "did you mean" hint), misuse of special forms, `set!` of a
// captured variable, quoted symbols, unknown primitive options. Thread-safe: no shared state.
std::unique_ptr<ast::Module> lower_module(const std::vector<Datum>& forms, const std::string& path,
                                          const LowerOptions& options);

// Reads and lowers `source` (read_all + lower_module).
std::unique_ptr<ast::Module> parse_lisp_module(std::string_view source, const std::string& path,
                                               const LowerOptions& options);

// The Weft name of a Lisp symbol: '-' becomes '_' (`fetch-url` is `fetch_url`). Pure.
std::string mangle(std::string_view name);

// The Weft source of the Lisp prelude module `__lisp__` (compiled by the VM on first import).
std::string_view prelude_source();

// The Lisp name of a prelude function (`l_parallel_map` is `parallel-map`), or "" when
// `weft_name` is not one. For the printer: a primitive prints as `#<function parallel-map>`.
std::string primitive_name(std::string_view weft_name);

// True when `path` names a Lisp source file (ends in ".wlisp").
bool is_lisp_path(std::string_view path);

}  // namespace weft::lisp
