// lisp_prims.h — the VM side of the Lisp surface (docs/language/lisp.md): the `keyword` type
// and the natives the lowered code calls (compiler/lisp/lower.cpp).
//
// A keyword (`:name`) is an interned host object (OpaqueObj of class "keyword"): one object
// per name for the life of the process, so equality and hashing by identity (what the object
// library does for host objects) are equality and hashing by name, and a keyword never equals
// a string. Keywords print as `:name` and `json.dump` writes them as their names.
#pragma once

#include <string>
#include <string_view>

#include "vm/object.h"

namespace weft {

class Vm;

// The keyword `:name` (interned, immortal). Thread-safe.
Value make_keyword(std::string_view name);
// Whether `v` is a keyword; its name (without ':'), valid while the process lives.
bool is_keyword(const Value& v);
const std::string& keyword_name(const Value& v);

// `v` as the Lisp printer shows it: `readable` quotes strings (prn, REPL); otherwise strings
// at the top level are raw (println, str). Containers show their items readably.
std::string lisp_show(const Value& v, bool readable);

// Registers the natives `__lisp_*` as builtins (before any program is compiled).
void register_lisp_builtins(Vm& vm);

}  // namespace weft
