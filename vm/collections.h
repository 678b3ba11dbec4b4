// collections.h — the object library: constructors, copy-on-write, the value
// protocol (truthiness, hashing, equality, ordering, arithmetic), Python
// formatting, containers, iteration, methods of the built-in types and the core
// builtins. The interpreter calls these on its slow paths (it inlines the
// int/float fast paths itself) and natives call them everywhere.
//
// Implementation is split by concern, one module per file:
//   vm/objects.cpp       constructors, interning, OrderedTable, copy-on-write, struct lifetime
//   vm/protocol.cpp      truthy, hash, equality, comparison, type names
//   vm/arith.cpp         binary and unary operators (overflow-checked 64-bit ints)
//   vm/format.cpp        repr/str, float repr, format-spec mini-language, str % and str.format
//   vm/containers.cpp    len, indexing, slicing, item assignment, membership, iteration
//   vm/methods_str.cpp   methods of str and bytes
//   vm/methods_coll.cpp  methods of list, tuple, dict, set, range; find_method
//   vm/builtins_core.cpp core builtins (print, len, sorted, ...) and built-in type objects
//
// Errors: every function here reports a Weft error by throwing
// WeftError(kind, message) with CPython's wording; none of them catches.
// Thread safety: none of these functions touches global mutable state except
// intern() (internally locked) and the lazily built method tables (static init).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vm/native.h"
#include "vm/object.h"
#include "vm/value.h"

namespace weft {
namespace ast {
enum class BinaryOp : uint8_t;
enum class UnaryOp : uint8_t;
enum class CmpOp : uint8_t;
}  // namespace ast

// ---------------------------------------------------------------------------
// Provided by the interpreter (vm/errors.cpp, vm/function.cpp).

// Builds an error value of a built-in kind with `msg` as its message.
Value make_error(ErrorKind kind, std::string msg);
// repr of Function, BoundMethod, Module, Native, StructType, Promise and Opaque values.
std::string callable_repr(const Value& v);

// Promises stored in containers flow through iteration untouched (a list of task
// handles stays a list of handles); they are forced where the object library
// inspects a value (operators, comparisons, truthiness, len, formatting, repr).
// The interpreter installs the resolver; without one (unit tests) promises pass
// through unchanged.
extern Value (*promise_resolver)(const Value& promise);
inline void resolve_if_promise(Value& v) {
    if (v.is(ObjType::Promise) && promise_resolver) v = promise_resolver(v);
}

// ---------------------------------------------------------------------------
// Constructors. Each returns a new value holding one reference.

Value make_str(std::string s);  // `s` must be valid UTF-8
Value make_str(std::string_view s);
Value make_str(const char* s);
Value make_bytes(std::string s);
Value make_list(std::vector<Value> items = {});
Value make_tuple(std::vector<Value> items);
Value make_dict();
Value make_set();
Value make_range(int64_t start, int64_t stop, int64_t step);  // ValueError when step == 0
Value make_slice(Value lo, Value hi, Value step);
// An immortal, deduplicated string (names, attribute keys, dict keys of structs).
// Thread-safe. The pointer stays valid for the life of the process.
StrObj* intern(std::string_view s);

// ---------------------------------------------------------------------------
// Copy-on-write: make `v` uniquely owned (copy the storage when shared) and return
// it for mutation. `v` must hold an object of the matching type.

ListObj* list_unshare(Value& v);
DictObj* dict_unshare(Value& v);
SetObj* set_unshare(Value& v);
StructObj* struct_unshare(Value& v);
// Unshares any list, dict, set or struct value (no-op for other values): what the
// interpreter does before calling a MethodInfo with `mutates` set.
void unshare(Value& v);

// ---------------------------------------------------------------------------
// Protocol

bool truthy(const Value& v);

// Values nested deeper than this (containers in containers, structs in structs) are not
// walked by repr/str, ==, ordering and hash, which recurse on the native stack: they raise
// RecursionError instead, as CPython does past its recursion limit. The walk also stops
// early, with the same error, when less than kMinNestingStack bytes of native stack remain
// (checked every 8 levels: a task's fiber stack is small, and sanitizer frames are large).
constexpr int kMaxValueNesting = 500;
constexpr size_t kMinNestingStack = 48 * 1024;
// Throws RecursionError "maximum recursion depth exceeded <what>" (vm/protocol.cpp).
[[noreturn]] void nesting_exceeded(const char* what);
// Called by a recursive walk before it descends into the items of a container at `depth`
// (0 for the outermost). Throws RecursionError past kMaxValueNesting or near the stack's end.
void check_nesting_stack(const char* what);
inline void check_nesting(int depth, const char* what) {
    if (__builtin_expect(depth >= kMaxValueNesting, 0)) nesting_exceeded(what);
    if (__builtin_expect((depth & 7) == 7, 0)) check_nesting_stack(what);
}

// TypeError "unhashable type: 'list'". hash(1) == hash(1.0) == hash(True).
// Strings cache their hash. Never returns 0 for str/bytes/tuple (0 marks "not cached").
uint64_t value_hash(const Value& v);
// Python ==, deep. 1 == 1.0 == True; structs: same type and equal fields.
bool values_equal(const Value& a, const Value& b);
// Python `a < b` for any ordered pair (numbers, str, bytes, list, tuple, set subset);
// TypeError "'<' not supported between instances of 'int' and 'str'".
bool value_less(const Value& a, const Value& b);
// Any comparison operator; returns a bool value.
Value compare(ast::CmpOp op, const Value& a, const Value& b);
Value binary_op(ast::BinaryOp op, const Value& a, const Value& b);
Value unary_op(ast::UnaryOp op, const Value& a);
// "int", "str", "list", "NoneType", the struct's name, "map", ...
std::string type_name(const Value& v);

// ---------------------------------------------------------------------------
// Formatting

std::string repr(const Value& v);
std::string to_str(const Value& v);  // str(): strings raw, errors their message, else repr
void append_repr(std::string& out, const Value& v);
void append_str(std::string& out, const Value& v);
// Python repr of a double (shortest round trip): 1.0, 0.1, 1e-05, 1e+16, inf, nan, -0.0.
std::string float_repr(double d);
// Python repr of a string: quote choice and escapes.
std::string str_repr(std::string_view s);
// format(v, spec): the format-spec mini-language. ValueError on a bad spec.
std::string format_spec(const Value& v, std::string_view spec);
// `fmt % args` (printf-style). `args` is a tuple, a dict (for %(name)s) or a single value.
std::string percent_format(std::string_view fmt, const Value& args);
// str.format(*pos, **kw): {} {0} {name} {0[1]} {name.field} {!r} {:spec}.
std::string str_format(std::string_view fmt, const CallArgs& args);

// ---------------------------------------------------------------------------
// Containers

// TypeError "object of type 'int' has no len()".
int64_t length(const Value& v);
// Index (negative ok), slice (SliceObj), dict key, range. IndexError
// "list index out of range"; KeyError carrying repr(key).
Value get_item(const Value& obj, const Value& key);
// list (index and slice assignment), dict; unshares `obj` first.
// TypeError "'str' object does not support item assignment".
void set_item(Value& obj, const Value& key, Value v);
void del_item(Value& obj, const Value& key);
bool contains(const Value& container, const Value& item);

// Iteration. iter_begin returns an IteratorObj value (an iterator returns
// itself); TypeError "'int' object is not iterable". iter_next stores the next
// item in `out` and returns true, or returns false when exhausted.
Value iter_begin(const Value& v);
bool iter_next(CallContext& cx, IteratorObj* it, Value& out);
// Long loops of natives (sum, list(range(...)), ...) call this every kPollEvery iterations: it
// raises the running task's cancellation (an embedding host's interrupt or time limit, a
// `with timeout`) there, since the interpreter's safepoints do not run inside a native.
// A no-op outside tasks.
constexpr uint32_t kPollEvery = 1u << 16;
void poll_cancellation();
inline void poll_cancellation_every(uint32_t& n) {
    if (__builtin_expect((++n & (kPollEvery - 1)) == 0, 0)) poll_cancellation();
}
// Drains any iterable into a vector (fast paths for list/tuple/range/str/dict/set).
std::vector<Value> collect(CallContext& cx, const Value& iterable);

// ---------------------------------------------------------------------------
// Strings

int64_t str_len(const StrObj* s);  // code points, cached
// Byte offset of code point `cp_index` (0 <= cp_index <= len). O(1) for ASCII.
size_t str_byte_offset(const StrObj* s, int64_t cp_index);
// Concatenation that reuses `a`'s buffer when `a` is uniquely owned (the
// interpreter's `s += t` path may call this with its register).
Value str_concat(Value& a, const Value& b);

// ---------------------------------------------------------------------------
// Methods of built-in types (str, bytes, list, tuple, dict, set, range).
// nullptr when the receiver's type has no such method.
const MethodInfo* find_method(const Value& receiver, std::string_view name);
// The names of the built-in methods of a value (its type's MethodInfo table, or a host object's
// class), sorted; empty for values without any. For "did you mean" hints and the keyword test.
std::vector<std::string> method_names(const Value& receiver);
// Calls a method by name (convenience for tests and natives). AttributeError
// "'list' object has no attribute 'x'" when missing. Unshares `self` for mutators.
Value call_method(CallContext& cx, Value& self, std::string_view name, const CallArgs& args);

// ---------------------------------------------------------------------------
// Core builtins (spec section 12) and built-in types as values.

// Appends (name, value) for every core builtin: NativeObj values for functions,
// TypeObj values for int, str, float, bool, list, dict, set, tuple, bytes, range, type.
void register_core_builtins(std::vector<std::pair<std::string, Value>>& out);
// The immortal singleton TypeObj for a built-in type (what `int` and type(1) are).
Value builtin_type_value(BuiltinType t);
// Calls a built-in type: int("42"), str(x), list(it), type(x), ...
Value call_type(CallContext& cx, const TypeObj* t, const CallArgs& args);
// isinstance(v, t) for a TypeObj, a StructTypeObj or a tuple of them.
// TypeError "isinstance() arg 2 must be a type or tuple of types" otherwise.
bool is_instance(const Value& v, const Value& type);
// The runtime type of a value as a type value (type(x)).
Value type_of(const Value& v);

}  // namespace weft
