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
// outside a function, unreachable match cases, names bound differently in `|` patterns.
// Depth is bounded so any input parses or fails without exhausting the stack: at most 200
// open brackets and 100 indentation levels (lexer), and a tree height of about 1000 counting
// nesting, operator chains (`a + b + ...`), trailers (`a.b(c)[d]...`) and `elif` chains
// ("too deeply nested"). Parsing the deepest accepted input needs < 256 KB of stack in a
// Release build and < 2 MB under ASan at -O0; passes that recurse over the AST need a similar
// budget per level.
// Thread-safe: no shared state.
std::unique_ptr<ast::Module> parse_module(std::string_view source, const std::string& path);

}  // namespace weft
