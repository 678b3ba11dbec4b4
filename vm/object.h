// object.h — the layouts of Weft's heap objects.
//
// Every object starts with the Obj header (count, type, flags). Collections are
// copy-on-write: an operation that mutates first calls the matching `*_unshare`
// helper (see collections.h), which copies the storage when the object has
// other holders. Strings, bytes and tuples are immutable.
//
// Dict and Set keep insertion order (iteration and printing follow it), like
// Python's dict; for sets this is a deliberate, documented difference from
// CPython, whose set order depends on hashes.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vm/value.h"

namespace weft {

// ---------------------------------------------------------------------------
// Strings and bytes

struct StrObj : Obj {
    std::string data;        // UTF-8
    mutable int64_t cp_len = -1;  // code point count, computed lazily
    mutable uint64_t hash = 0;    // 0 = not computed yet
    bool ascii = false;           // every byte < 0x80 (O(1) indexing)
    bool interned = false;
    explicit StrObj(std::string s);
};

struct BytesObj : Obj {
    std::string data;
    mutable uint64_t hash = 0;
    explicit BytesObj(std::string s) : Obj(ObjType::Bytes), data(std::move(s)) {}
};

// ---------------------------------------------------------------------------
// Sequences

struct ListObj : Obj {
    std::vector<Value> items;
    ListObj() : Obj(ObjType::List) {}
    explicit ListObj(std::vector<Value> v) : Obj(ObjType::List), items(std::move(v)) {}
};

struct TupleObj : Obj {
    std::vector<Value> items;
    mutable uint64_t hash = 0;
    TupleObj() : Obj(ObjType::Tuple) {}
    explicit TupleObj(std::vector<Value> v) : Obj(ObjType::Tuple), items(std::move(v)) {}
};

struct RangeObj : Obj {
    int64_t start, stop, step;  // step != 0
    RangeObj(int64_t a, int64_t b, int64_t s) : Obj(ObjType::Range), start(a), stop(b), step(s) {}
};

struct SliceObj : Obj {
    Value lower, upper, step;  // None or int
    SliceObj() : Obj(ObjType::Slice) {}
};

// ---------------------------------------------------------------------------
// Hash tables (insertion ordered, CPython 3.6+ "compact dict" layout:
// a dense entries array plus a sparse index table of int32 slots).

struct HashEntry {
    uint64_t hash;
    Value key;
    Value value;  // unused by sets
    bool live;    // false for deleted entries (compacted on resize)
};

class OrderedTable {
public:
    // Lookup returns the entry index or -1. Keys compare with values_equal();
    // hashing with value_hash(); both may throw TypeError for unhashable keys.
    int64_t find(const Value& key) const;
    // Inserts or overwrites. Returns true when the key was new.
    bool insert(const Value& key, Value value);
    // Removes; returns false when absent. `out` receives the old value.
    bool erase(const Value& key, Value* out = nullptr);
    void clear();
    size_t size() const { return live_count_; }
    // Iteration over live entries in insertion order: for (i = 0; i < capacity_end(); ++i) if (entry(i).live) ...
    size_t end_index() const { return entries_.size(); }
    const HashEntry& entry(size_t i) const { return entries_[i]; }
    HashEntry& entry(size_t i) { return entries_[i]; }

private:
    void rebuild(size_t min_capacity);
    std::vector<HashEntry> entries_;
    std::vector<int32_t> index_;  // -1 empty, -2 deleted, else entry index
    size_t live_count_ = 0;
    // Added by the object library: index slots marked deleted (-2). They lengthen
    // probe chains, so they count towards the load factor until the next rebuild.
    size_t dead_slots_ = 0;
};

struct DictObj : Obj {
    OrderedTable table;
    DictObj() : Obj(ObjType::Dict) {}
};

struct SetObj : Obj {
    OrderedTable table;  // values unused
    SetObj() : Obj(ObjType::Set) {}
};

// ---------------------------------------------------------------------------
// Iterators: one object type with a kind tag; `iter_next` in collections.h
// advances any of them. Iterating a collection iterates a snapshot (the
// iterator holds a reference, and copy-on-write protects it from mutation of
// the variable during the loop).

enum class IterKind : uint8_t {
    List, Tuple, Str, Bytes, Range, DictKeys, DictValues, DictItems, Set,
    Enumerate, Zip, Map, Filter, Reversed, Generic,
};

struct IteratorObj : Obj {
    IterKind kind;
    Value source;                // the collection or inner iterator(s) (a Tuple for zip)
    Value func;                  // map/filter function
    int64_t pos = 0;             // index / byte offset / range current
    int64_t end = 0;             // range stop, or cached length
    int64_t step = 1;
    explicit IteratorObj(IterKind k) : Obj(ObjType::Iterator), kind(k) {}
};

// ---------------------------------------------------------------------------
// Callables, structs and modules: defined by the interpreter (vm/interp.h,
// vm/function.h); forward declarations for code that only passes them along.

struct FunctionObj;
struct NativeObj;
struct StructTypeObj;
struct StructObj;
struct ModuleObj;

// Built-in types usable as values (`int`, `str`, `list`, ... for isinstance,
// conversion calls and annotations).
enum class BuiltinType : uint8_t {
    NoneType, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Set, Range,
    Function, Iterator, Struct, Module, Type, Any,
};

struct TypeObj : Obj {
    BuiltinType which;
    std::string name;
    explicit TypeObj(BuiltinType w, std::string n) : Obj(ObjType::TypeObj), which(w), name(std::move(n)) {}
};

}  // namespace weft

// ---------------------------------------------------------------------------
// Structs (and error values). Declared here because formatting, equality and
// hashing (collections.cpp) treat them generically; the interpreter creates them.

namespace weft {

struct FieldInfo {
    std::string name;
    Value annotation;     // a type value for runtime checks, or None
    Value default_value;  // None when `has_default` is false
    bool has_default = false;
};

struct StructTypeObj : Obj {
    std::string name;
    std::vector<FieldInfo> fields;
    DictObj* methods = nullptr;        // name -> FunctionObj (owned reference)
    StructTypeObj* base = nullptr;     // owned reference, or null
    bool is_error = false;             // Error or a subtype: instances are error values
    int builtin_error = -1;            // ErrorKind for built-in error types, else -1
    // 1 for an `actor`, 2 for an `agent` (vm/actors.h): instances are actor states, changed
    // in place by their handlers (one message at a time) instead of copied on write.
    uint8_t actor_kind = 0;
    // The module whose code defined it (modules are immortal), or null (built-in types): how
    // cluster mode names a struct type to another process (cluster/wire.cpp).
    const ModuleObj* module = nullptr;
    StructTypeObj() : Obj(ObjType::StructType) {}
    ~StructTypeObj() override;
    int field_index(std::string_view n) const {
        for (size_t i = 0; i < fields.size(); ++i)
            if (fields[i].name == n) return int(i);
        return -1;
    }
    // Fast lookups by interned name (attribute names in bytecode are interned):
    // pointer comparisons over small arrays built when the type is created.
    std::vector<const StrObj*> field_keys;                      // parallel to `fields`
    std::vector<std::pair<const StrObj*, Value>> method_cache;  // own and inherited methods
    int field_index_interned(const StrObj* n) const {
        for (size_t i = 0; i < field_keys.size(); ++i)
            if (field_keys[i] == n) return int(i);
        return -1;
    }
    const Value* method_interned(const StrObj* n) const {
        for (auto& m : method_cache)
            if (m.first == n) return &m.second;
        return nullptr;
    }
    // What `obj.n(...)` calls on an instance: the method `n`, unless a field of that name hides
    // it (then the field's value is called, through the generic path). Null when neither.
    const Value* method_not_shadowed(const StrObj* n) const {
        return field_index_interned(n) < 0 ? method_interned(n) : nullptr;
    }
    // Fills field_keys and method_cache from `fields`, `methods` and the base's (own methods
    // first, then inherited ones not overridden). Call once the type is complete.
    void build_lookup_caches();
    bool is_subtype_of(const StructTypeObj* t) const {
        for (auto* s = this; s; s = s->base)
            if (s == t) return true;
        return false;
    }
};

// Extra state carried by error values.
struct ErrorData {
    std::string message;
    std::vector<std::string> trace;  // "path:line in func", outermost first
    std::vector<Value> errors;       // ErrorGroup / PartialFailure members
    Value results;                   // PartialFailure.results (a list), or None
};

struct StructObj : Obj {
    StructTypeObj* type;   // owned reference
    std::vector<Value> fields;
    ErrorData* error = nullptr;  // non-null for error values (owned)
    explicit StructObj(StructTypeObj* t);
    StructObj(const StructObj& other);  // copy for copy-on-write
    ~StructObj() override;
};

}  // namespace weft

// ---------------------------------------------------------------------------
// Host objects: values implemented in C++ by the standard library (HTTP
// responses, database connections, process handles, `restrict(...)` blocks,
// later channels and atoms). A class gives the type name, the methods (looked up
// by the interpreter for `obj.m(...)`, including `__enter__`/`__exit__` for
// `with`), and optional attribute and repr hooks.

namespace weft {

struct MethodInfo;
struct CallArgs;
class CallContext;
struct OpaqueObj;

struct OpaqueClass {
    const char* name;                      // type name, e.g. "Response"
    const MethodInfo* methods = nullptr;   // array terminated by {nullptr, nullptr, false}
    // Attribute read (`resp.status`); return false when there is no such attribute.
    bool (*get_attr)(const OpaqueObj* self, std::string_view name, Value& out) = nullptr;
    // repr(); nullptr gives "<name object>".
    std::string (*repr)(const OpaqueObj* self) = nullptr;
    // len(); nullptr: no len().
    int64_t (*len)(const OpaqueObj* self) = nullptr;
    // Iteration (`for v in obj`): the next item into `out`, false when done.
    // nullptr: not iterable.
    bool (*iter_next)(OpaqueObj* self, CallContext& cx, Value& out) = nullptr;
    // Calling the object (`obj(args)`, e.g. `@timeout(5s)` as a decorator); nullptr: not callable.
    Value (*call)(OpaqueObj* self, CallContext& cx, std::span<const Value> pos) = nullptr;
    // Called by share() (vm/share.cpp) when the object becomes visible to several
    // threads: call share() on every Value the object holds. nullptr: holds none
    // (or shares them itself when they are stored, as channels do).
    void (*share_children)(OpaqueObj* self) = nullptr;
    // Calling the object with keyword arguments too (`cb(x, k=v)`); takes precedence over
    // `call`. The arguments come as they are (promises unforced), to be passed on.
    Value (*call_kw)(OpaqueObj* self, CallContext& cx, const CallArgs& args) = nullptr;
    // Its calls can take time (they call Weft code, as circuit_breaker's do): a call in a
    // deferral position is deferred like a Weft function's (spec section 5).
    bool deferrable = false;
};

struct OpaqueObj : Obj {
    const OpaqueClass* cls;
    explicit OpaqueObj(const OpaqueClass* c) : Obj(ObjType::Opaque), cls(c) {}
};

}  // namespace weft
