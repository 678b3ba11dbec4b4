// parser.h — Weft source text to AST (see compiler/ast.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "compiler/ast.h"
#include "compiler/diagnostic.h"

namespace weft {

// Parses a whole file (lexing included) into a Module whose `path` is `path`.
// Throws CompileError for the first lexical or syntax error only, with path, line, col and a
// Python-style message. `CompileError::incomplete` is set when the input merely ends too
// early — an unclosed bracket, a block header with no body yet, an unterminated triple-quoted
// string, a trailing backslash — so a REPL can ask for another line instead.
// Not checked here (left to the resolver): `break`/`continue` outside a loop, `return`
// outside a function, unreachable match cases. Nesting is bounded (about 200 brackets, 100
// indentation levels), so any input parses or fails without exhausting the stack; the deepest
// accepted input needs well under 1 MB of stack in a Release build.
// Thread-safe: no shared state.
std::unique_ptr<ast::Module> parse_module(std::string_view source, const std::string& path);

}  // namespace weft
