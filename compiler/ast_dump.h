// ast_dump.h — a compact S-expression rendering of the AST, for tests and debugging.
//
// The format is meant to be read and written by hand in unit tests: `x + 1` is `(+ x 1)`,
// `f(a, k=2)` is `(call f a (kw k 2))`, statements are `(assign x 1)`, blocks `(body ...)`.
// Absent optional parts print as `nil`. Positions are not printed (tests check them directly).
#pragma once

#include <string>

#include "compiler/ast.h"

namespace weft {

std::string dump_expr(const ast::Expr& e);
std::string dump_pattern(const ast::Pattern& p);
std::string dump_stmt(const ast::Stmt& s);
// One line per top-level statement.
std::string dump_module(const ast::Module& m);

}  // namespace weft
