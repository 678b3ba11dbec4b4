// reader.h — the datum reader of the Lisp surface (`.wlisp`, docs/language/lisp.md).
//
// Source text becomes a sequence of Datums, each carrying the position of its first character
// (and of the character after its last), so every later error — in the lowering
// (compiler/lisp/lower.h), in the code generator or at run time — can say `file:line:col`.
// The reader knows nothing of special forms: it only builds data. Errors are CompileErrors
// (compiler/diagnostic.h) with the messages of spec section 2; an error that only means the
// input ended too early (an unclosed bracket or string) is `incomplete`, so the REPL asks for
// another line instead of reporting it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ast.h"

namespace weft::lisp {

enum class DatumKind : uint8_t { Nil, Bool, Int, Float, Str, Keyword, Symbol, List, Vector, Map };

struct Datum {
    DatumKind kind = DatumKind::Nil;
    ast::Pos pos;  // first character
    ast::Pos end;  // just past the last character
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;             // Str (decoded), Keyword (without ':'), Symbol
    std::vector<Datum> items;  // List, Vector, Map (keys and values alternate)

    bool is_symbol(std::string_view name) const { return kind == DatumKind::Symbol && s == name; }
    bool is_list() const { return kind == DatumKind::List; }
};

// Reads every datum of `source`. `path` is used in error messages only. Throws CompileError
// for the first read error (spec section 2). Nesting deeper than 200 brackets is an error
// ("too deeply nested"), so reading never exhausts the stack. Thread-safe: no shared state.
std::vector<Datum> read_all(std::string_view source, const std::string& path);

// The name of a datum kind for error messages ("symbol", "list", ...).
const char* kind_name(DatumKind k);

// The datum as Lisp source (for error messages and the REPL's echo). Pure.
std::string datum_to_string(const Datum& d);

}  // namespace weft::lisp
