// lexer.h — turns Weft source text into tokens (Python-style layout tokens included).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "compiler/ast.h"
#include "compiler/diagnostic.h"
#include "compiler/token.h"

namespace weft {

// Tokenizes a whole file. The result always ends with EndOfFile, preceded by a Newline after
// the last logical line and by the Dedents that close every open block. `source` must be UTF-8
// (a leading BOM is skipped); CR LF and lone CR count as line breaks.
// Throws CompileError (path, line, col, message) at the first lexical error; `incomplete` is set
// when the input merely ends too early (open bracket, unterminated triple-quoted string,
// trailing backslash).
std::vector<Token> tokenize(std::string_view source, const std::string& path);

// Tokenizes the text of one f-string replacement field, which starts at `start` in the file.
// Newlines are insignificant (as inside brackets); no Newline/Indent/Dedent tokens are made;
// the result ends with EndOfFile. Throws CompileError, never with `incomplete`.
std::vector<Token> tokenize_expression(std::string_view text, const std::string& path,
                                       ast::Pos start);

// Decodes the backslash escapes of a (non-raw) string body as Python does: \n \t \r \0..\7
// (octal) \a \b \f \v \\ \' \" \xhh \uXXXX \UXXXXXXXX, backslash-newline is dropped, an
// unknown escape is kept literally. `is_bytes` makes \x produce a raw byte and leaves \u \U
// alone. Returns false and sets `error` for a malformed \x/\u/\U escape.
bool decode_escapes(std::string_view body, bool is_bytes, std::string& out, std::string& error);

}  // namespace weft
