// diagnostic.h — compile-time errors (lexical, syntax, resolution).
//
// The front end stops at the first error: one mistake gives one message, never a
// cascade. A CompileError carries the position; format_diagnostic() renders the
// user-facing form `path:line:col: message`, the source line and a caret.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "compiler/ast.h"

namespace weft {

struct Diagnostic {
    std::string path;
    ast::Pos pos;
    std::string message;
};

class CompileError : public std::runtime_error {
public:
    // `incomplete` is true when the error is only that the input ended too early
    // (open bracket, block header with no body, unterminated triple-quoted string):
    // the REPL uses it to ask for another line instead of reporting an error.
    CompileError(Diagnostic d, bool incomplete = false)
        : std::runtime_error(d.message), diag(std::move(d)), incomplete(incomplete) {}
    Diagnostic diag;
    bool incomplete;
};

// Renders "path:line:col: message\n<source line>\n<spaces>^\n". Tabs in the source
// line are kept in the caret line so the caret lines up.
std::string format_diagnostic(const Diagnostic& d, std::string_view source);

}  // namespace weft
