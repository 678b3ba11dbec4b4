// protocol.cpp — truthiness, hashing, equality, ordering and type names: the
// generic value protocol every other part of the VM builds on.
//
// Numbers compare and hash across int, float and bool exactly as in Python:
// hash(1) == hash(1.0) == hash(True), and int/float comparisons are exact (no
// rounding of the int to double), so 2**53 + 1 != float(2**53). A float with an
// integral value hashes as that int; other floats hash their bit pattern.
// Strings hash with a 64-bit FNV-1a variant and cache it in the StrObj.
#include <cmath>
#include <cstring>

#include "compiler/ast.h"
#include "vm/lib_internal.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

using namespace lib;

bool truthy(const Value& v) {
    if ((v.is(ObjType::Promise)) && promise_resolver) {  // a promise is forced when inspected
        Value r_v = v;
        resolve_if_promise(r_v);
        return truthy(r_v);
    }
    switch (v.tag()) {
        case Tag::None:
            return false;
        case Tag::Bool:
            return v.as_bool();
        case Tag::Int:
            return v.as_int() != 0;
        case Tag::Float:
            return v.as_float() != 0.0;
        case Tag::Object:
            break;
    }
    Obj* o = v.as_obj();
    switch (o->type) {
        case ObjType::Str:
            return !static_cast<StrObj*>(o)->data.empty();
        case ObjType::Bytes:
            return !static_cast<BytesObj*>(o)->data.empty();
        case ObjType::List:
            return !static_cast<ListObj*>(o)->items.empty();
        case ObjType::Tuple:
            return !static_cast<TupleObj*>(o)->items.empty();
        case ObjType::Dict:
            return static_cast<DictObj*>(o)->table.size() != 0;
        case ObjType::Set:
            return static_cast<SetObj*>(o)->table.size() != 0;
        case ObjType::Range:
            return length(v) != 0;
        default:
            return true;
    }
}

// ---------------------------------------------------------------------------
// Hashing

namespace {
inline uint64_t hash_bytes(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char* p = (const unsigned char*)s.data();
    size_t n = s.size();
    // 8 bytes at a time, then the tail: FNV-1a over words with a final avalanche.
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ *p++) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h ? h : 1;
}
inline uint64_t hash_int(int64_t i) {
    return uint64_t(i);
}
inline uint64_t hash_float(double d) {
    if (d == std::floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        return hash_int(int64_t(d));
    if (std::isnan(d)) return 0x7ff8000000000000ull;
    uint64_t b;
    std::memcpy(&b, &d, 8);
    return b * 0x9E3779B97F4A7C15ull;
}
inline uint64_t hash_combine(uint64_t h, uint64_t x) {
    return (h ^ (x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2))) * 0x100000001b3ull;
}
}  // namespace

void nesting_exceeded(const char* what) {
    throw WeftError(ErrorKind::RecursionError, std::string("maximum recursion depth exceeded ") + what);
}

void check_nesting_stack(const char* what) {
    if (rt::remaining_stack() < kMinNestingStack) nesting_exceeded(what);
}

namespace {
constexpr const char* kHashing = "while hashing a value";
constexpr const char* kComparing = "in comparison";

uint64_t hash_at(const Value& v, int depth);
}  // namespace

uint64_t value_hash(const Value& v) { return hash_at(v, 0); }

namespace {
// value_hash of `v` found `depth` containers deep.
uint64_t hash_at(const Value& v, int depth) {
    switch (v.tag()) {
        case Tag::None:
            return 0x5bd1e995ull;
        case Tag::Bool:
            return v.as_bool() ? 1 : 0;
        case Tag::Int:
            return hash_int(v.as_int());
        case Tag::Float:
            return hash_float(v.as_float());
        case Tag::Object:
            break;
    }
    Obj* o = v.as_obj();
    // A promise is forced when inspected: one inside a tuple used as a key too.
    if (o->type == ObjType::Promise && promise_resolver) return hash_at(promise_resolver(v), depth);
    switch (o->type) {
        case ObjType::Str: {
            auto* s = static_cast<StrObj*>(o);
            uint64_t h = cached_load(s->hash);
            if (h == 0) {
                h = hash_bytes(s->data);
                cached_store(s->hash, h);
            }
            return h;
        }
        case ObjType::Bytes: {
            auto* s = static_cast<BytesObj*>(o);
            uint64_t h = cached_load(s->hash);
            if (h == 0) {
                h = hash_bytes(s->data) * 31 + 7;
                if (h == 0) h = 1;
                cached_store(s->hash, h);
            }
            return h;
        }
        case ObjType::Tuple: {
            auto* t = static_cast<TupleObj*>(o);
            uint64_t th = cached_load(t->hash);
            if (th == 0) {
                check_nesting(depth, kHashing);
                uint64_t h = 0x345678ull + t->items.size();
                for (auto& x : t->items)
                    h = hash_combine(h, hash_at(x, depth + 1));
                th = h ? h : 1;
                cached_store(t->hash, th);
            }
            return th;
        }
        case ObjType::Range: {
            auto* r = static_cast<RangeObj*>(o);
            int64_t n = length(v);
            uint64_t h = hash_combine(0x72616e6765ull, uint64_t(n));
            if (n > 0) h = hash_combine(h, uint64_t(r->start));
            if (n > 1) h = hash_combine(h, uint64_t(r->step));
            return h;
        }
        case ObjType::Struct: {
            auto* s = static_cast<StructObj*>(o);
            if (s->error) return uint64_t(uintptr_t(o)) * 0x9E3779B97F4A7C15ull;
            check_nesting(depth, kHashing);
            uint64_t h = uint64_t(uintptr_t(s->type));
            for (auto& x : s->fields)
                h = hash_combine(h, hash_at(x, depth + 1));
            return h;
        }
        case ObjType::List:
        case ObjType::Dict:
        case ObjType::Set:
        case ObjType::Slice:
            type_error("unhashable type: '" + type_name(v) + "'");
        default:
            // Identity hash for functions, types, modules, iterators, host objects.
            return uint64_t(uintptr_t(o) >> 4) * 0x9E3779B97F4A7C15ull;
    }
}
}  // namespace

// ---------------------------------------------------------------------------
// Equality and ordering

namespace {
// Exact three-way comparison of an int and a double. Returns -1, 0, 1, or 2 for NaN.
int cmp_int_double(int64_t i, double d) {
    if (std::isnan(d)) return 2;
    if (d >= 9223372036854775808.0) return -1;
    if (d < -9223372036854775808.0) return 1;
    double t = std::trunc(d);
    int64_t ti = int64_t(t);
    if (i < ti) return -1;
    if (i > ti) return 1;
    double frac = d - t;
    if (frac > 0) return -1;
    if (frac < 0) return 1;
    return 0;
}

bool num_equal(const Value& a, const Value& b) {
    if (a.is_float()) {
        if (b.is_float()) return a.as_float() == b.as_float();
        return cmp_int_double(int_of(b), a.as_float()) == 0;
    }
    if (b.is_float()) return cmp_int_double(int_of(a), b.as_float()) == 0;
    return int_of(a) == int_of(b);
}

bool equal_at(const Value& a, const Value& b, int depth);

// The items of two containers found `depth` deep, compared one by one.
bool seq_equal(const std::vector<Value>& x, const std::vector<Value>& y, int depth) {
    if (x.size() != y.size()) return false;
    check_nesting(depth, kComparing);
    for (size_t i = 0; i < x.size(); ++i)
        if (!equal_at(x[i], y[i], depth + 1)) return false;
    return true;
}

bool range_equal(const RangeObj* a, const RangeObj* b) {
    Value va = Value::borrow(const_cast<RangeObj*>(a)),
          vb = Value::borrow(const_cast<RangeObj*>(b));
    int64_t n = length(va), m = length(vb);
    if (n != m) return false;
    if (n == 0) return true;
    if (a->start != b->start) return false;
    if (n == 1) return true;
    return a->step == b->step;
}
}  // namespace

bool values_equal(const Value& a, const Value& b) { return equal_at(a, b, 0); }

namespace {
// values_equal of two values found `depth` containers deep.
bool equal_at(const Value& a, const Value& b, int depth) {
    if ((a.is(ObjType::Promise) || b.is(ObjType::Promise)) && promise_resolver) {
        // A promise is forced when inspected: also one inside a container being compared
        // (`[f(x), g(y)] == [1, 2]`, whose items are deferred calls).
        Value r_a = a;
        resolve_if_promise(r_a);
        Value r_b = b;
        resolve_if_promise(r_b);
        return equal_at(r_a, r_b, depth);
    }
    if (is_numlike(a) && is_numlike(b)) return num_equal(a, b);
    if (a.tag() != b.tag()) return false;
    if (a.is_none()) return true;
    Obj* x = a.as_obj();
    Obj* y = b.as_obj();
    if (x == y) return true;
    if (x->type != y->type) return false;
    switch (x->type) {
        case ObjType::Str: {
            auto* s = static_cast<StrObj*>(x);
            auto* t = static_cast<StrObj*>(y);
            uint64_t hs = cached_load(s->hash), ht = cached_load(t->hash);
            if (hs && ht && hs != ht) return false;
            return s->data == t->data;
        }
        case ObjType::Bytes:
            return static_cast<BytesObj*>(x)->data == static_cast<BytesObj*>(y)->data;
        case ObjType::List:
            return seq_equal(static_cast<ListObj*>(x)->items, static_cast<ListObj*>(y)->items, depth);
        case ObjType::Tuple:
            return seq_equal(static_cast<TupleObj*>(x)->items, static_cast<TupleObj*>(y)->items, depth);
        case ObjType::Dict: {
            auto& p = static_cast<DictObj*>(x)->table;
            auto& q = static_cast<DictObj*>(y)->table;
            if (p.size() != q.size()) return false;
            check_nesting(depth, kComparing);
            for (size_t i = 0; i < p.end_index(); ++i) {
                auto& e = p.entry(i);
                if (!e.live) continue;
                int64_t j = q.find(e.key);
                if (j < 0 || !equal_at(e.value, q.entry(size_t(j)).value, depth + 1)) return false;
            }
            return true;
        }
        case ObjType::Set: {
            auto& p = static_cast<SetObj*>(x)->table;
            auto& q = static_cast<SetObj*>(y)->table;
            if (p.size() != q.size()) return false;
            for (size_t i = 0; i < p.end_index(); ++i) {
                auto& e = p.entry(i);
                if (e.live && q.find(e.key) < 0) return false;
            }
            return true;
        }
        case ObjType::Range:
            return range_equal(static_cast<RangeObj*>(x), static_cast<RangeObj*>(y));
        case ObjType::Struct: {
            auto* s = static_cast<StructObj*>(x);
            auto* t = static_cast<StructObj*>(y);
            if (s->type != t->type) return false;
            if (s->error || t->error) return false;  // errors compare by identity
            return seq_equal(s->fields, t->fields, depth);
        }
        case ObjType::Slice: {
            auto* s = static_cast<SliceObj*>(x);
            auto* t = static_cast<SliceObj*>(y);
            return equal_at(s->lower, t->lower, depth + 1) && equal_at(s->upper, t->upper, depth + 1) &&
                   equal_at(s->step, t->step, depth + 1);
        }
        default:
            return false;
    }
}
}  // namespace

namespace {
const char* cmp_symbol(ast::CmpOp op) {
    switch (op) {
        case ast::CmpOp::Lt:
            return "<";
        case ast::CmpOp::Le:
            return "<=";
        case ast::CmpOp::Gt:
            return ">";
        case ast::CmpOp::Ge:
            return ">=";
        default:
            return "==";
    }
}

[[noreturn]] void cmp_error(ast::CmpOp op, const Value& a, const Value& b) {
    type_error(std::string("'") + cmp_symbol(op) + "' not supported between instances of '" +
               type_name(a) + "' and '" + type_name(b) + "'");
}

// Three-way ordering for ordered types. Returns -1/0/1, 2 for unordered (NaN).
// Throws the TypeError for `op` when the pair has no ordering.
int order3(ast::CmpOp op, const Value& a, const Value& b, int depth = 0);

// Orders the items of two sequences found `depth` deep (lexicographically).
int seq_order(ast::CmpOp op, const std::vector<Value>& x, const std::vector<Value>& y, int depth) {
    size_t n = std::min(x.size(), y.size());
    check_nesting(depth, kComparing);
    for (size_t i = 0; i < n; ++i) {
        if (equal_at(x[i], y[i], depth + 1)) continue;
        return order3(op, x[i], y[i], depth + 1);
    }
    return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
}

int order3(ast::CmpOp op, const Value& a, const Value& b, int depth) {
    if ((a.is(ObjType::Promise) || b.is(ObjType::Promise)) && promise_resolver) {
        // Items of sequences being ordered may be promises (deferred display elements).
        Value r_a = a;
        resolve_if_promise(r_a);
        Value r_b = b;
        resolve_if_promise(r_b);
        return order3(op, r_a, r_b, depth);
    }
    if (is_numlike(a) && is_numlike(b)) {
        if (a.is_float() || b.is_float()) {
            if (a.is_float() && b.is_float()) {
                double x = a.as_float(), y = b.as_float();
                if (std::isnan(x) || std::isnan(y)) return 2;
                return x < y ? -1 : (x > y ? 1 : 0);
            }
            if (a.is_float()) {
                int r = cmp_int_double(int_of(b), a.as_float());
                return r == 2 ? 2 : -r;
            }
            return cmp_int_double(int_of(a), b.as_float());
        }
        int64_t x = int_of(a), y = int_of(b);
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (a.is_obj() && b.is_obj() && a.as_obj()->type == b.as_obj()->type) {
        switch (a.as_obj()->type) {
            case ObjType::Str: {
                int c = sv(a).compare(sv(b));  // UTF-8 byte order == code point order
                return c < 0 ? -1 : (c > 0 ? 1 : 0);
            }
            case ObjType::Bytes: {
                int c = a.as<BytesObj>()->data.compare(b.as<BytesObj>()->data);
                return c < 0 ? -1 : (c > 0 ? 1 : 0);
            }
            case ObjType::List:
                return seq_order(op, a.as<ListObj>()->items, b.as<ListObj>()->items, depth);
            case ObjType::Tuple:
                return seq_order(op, a.as<TupleObj>()->items, b.as<TupleObj>()->items, depth);
            default:
                break;
        }
    }
    cmp_error(op, a, b);
}

bool set_subset(const SetObj* a, const SetObj* b) {
    if (a->table.size() > b->table.size()) return false;
    for (size_t i = 0; i < a->table.end_index(); ++i) {
        auto& e = a->table.entry(i);
        if (e.live && b->table.find(e.key) < 0) return false;
    }
    return true;
}

bool is_identical(const Value& a, const Value& b) {
    if (a.tag() != b.tag()) return false;
    switch (a.tag()) {
        case Tag::None:
            return true;
        case Tag::Bool:
            return a.as_bool() == b.as_bool();
        case Tag::Int:
            return a.as_int() == b.as_int();
        case Tag::Float: {
            double x = a.as_float(), y = b.as_float();
            return std::memcmp(&x, &y, 8) == 0;
        }
        case Tag::Object:
            return a.as_obj() == b.as_obj();
    }
    return false;
}
}  // namespace

bool value_less(const Value& a, const Value& b) {
    if ((a.is(ObjType::Promise) || b.is(ObjType::Promise)) && promise_resolver) {  // a promise is forced when inspected
        Value r_a = a;
        resolve_if_promise(r_a);
        Value r_b = b;
        resolve_if_promise(r_b);
        return value_less(r_a, r_b);
    }
    if (a.is_int() && b.is_int()) return a.as_int() < b.as_int();
    if (a.is_float() && b.is_float()) return a.as_float() < b.as_float();
    if (a.is(ObjType::Set) && b.is(ObjType::Set))
        return a.as<SetObj>()->table.size() < b.as<SetObj>()->table.size() &&
               set_subset(a.as<SetObj>(), b.as<SetObj>());
    return order3(ast::CmpOp::Lt, a, b) == -1;
}

Value compare(ast::CmpOp op, const Value& a, const Value& b) {
    if ((a.is(ObjType::Promise) || b.is(ObjType::Promise)) && promise_resolver) {  // a promise is forced when inspected
        Value r_a = a;
        resolve_if_promise(r_a);
        Value r_b = b;
        resolve_if_promise(r_b);
        return compare(op, r_a, r_b);
    }
    using ast::CmpOp;
    switch (op) {
        case CmpOp::Eq:
            return vbool(values_equal(a, b));
        case CmpOp::Ne:
            return vbool(!values_equal(a, b));
        case CmpOp::In:
            return vbool(contains(b, a));
        case CmpOp::NotIn:
            return vbool(!contains(b, a));
        case CmpOp::Is:
            return vbool(is_identical(a, b));
        case CmpOp::IsNot:
            return vbool(!is_identical(a, b));
        default:
            break;
    }
    if (a.is_int() && b.is_int()) {
        int64_t x = a.as_int(), y = b.as_int();
        switch (op) {
            case CmpOp::Lt:
                return vbool(x < y);
            case CmpOp::Le:
                return vbool(x <= y);
            case CmpOp::Gt:
                return vbool(x > y);
            default:
                return vbool(x >= y);
        }
    }
    if (a.is(ObjType::Set) && b.is(ObjType::Set)) {
        auto* x = a.as<SetObj>();
        auto* y = b.as<SetObj>();
        size_t n = x->table.size(), m = y->table.size();
        switch (op) {
            case CmpOp::Lt:
                return vbool(n < m && set_subset(x, y));
            case CmpOp::Le:
                return vbool(set_subset(x, y));
            case CmpOp::Gt:
                return vbool(n > m && set_subset(y, x));
            default:
                return vbool(set_subset(y, x));
        }
    }
    int r = order3(op, a, b);
    if (r == 2) return vbool(false);
    switch (op) {
        case CmpOp::Lt:
            return vbool(r < 0);
        case CmpOp::Le:
            return vbool(r <= 0);
        case CmpOp::Gt:
            return vbool(r > 0);
        default:
            return vbool(r >= 0);
    }
}

// ---------------------------------------------------------------------------
// Type names

namespace {
const char* iter_type_name(IterKind k) {
    switch (k) {
        case IterKind::List:
            return "list_iterator";
        case IterKind::Tuple:
            return "tuple_iterator";
        case IterKind::Str:
            return "str_iterator";
        case IterKind::Bytes:
            return "bytes_iterator";
        case IterKind::Range:
            return "range_iterator";
        case IterKind::DictKeys:
            return "dict_keyiterator";
        case IterKind::DictValues:
            return "dict_valueiterator";
        case IterKind::DictItems:
            return "dict_itemiterator";
        case IterKind::Set:
            return "set_iterator";
        case IterKind::Enumerate:
            return "enumerate";
        case IterKind::Zip:
            return "zip";
        case IterKind::Map:
            return "map";
        case IterKind::Filter:
            return "filter";
        case IterKind::Reversed:
            return "reversed";
        case IterKind::Generic:
            return "iterator";
    }
    return "iterator";
}
}  // namespace

std::string type_name(const Value& v) {
    switch (v.tag()) {
        case Tag::None:
            return "NoneType";
        case Tag::Bool:
            return "bool";
        case Tag::Int:
            return "int";
        case Tag::Float:
            return "float";
        case Tag::Object:
            break;
    }
    Obj* o = v.as_obj();
    switch (o->type) {
        case ObjType::Str:
            return "str";
        case ObjType::Bytes:
            return "bytes";
        case ObjType::List:
            return "list";
        case ObjType::Tuple:
            return "tuple";
        case ObjType::Dict:
            return "dict";
        case ObjType::Set:
            return "set";
        case ObjType::Range:
            return "range";
        case ObjType::Slice:
            return "slice";
        case ObjType::Iterator:
            return iter_type_name(static_cast<IteratorObj*>(o)->kind);
        case ObjType::Function:
            return "function";
        case ObjType::Native:
            return "builtin_function_or_method";
        case ObjType::BoundMethod:
            return "method";
        case ObjType::StructType:
            return "type";
        case ObjType::Struct:
            return static_cast<StructObj*>(o)->type->name;
        case ObjType::Module:
            return "module";
        case ObjType::TypeObj:
            return "type";
        case ObjType::Promise:
            return "promise";
        case ObjType::Opaque:
            return static_cast<const OpaqueObj*>(v.as_obj())->cls->name;
    }
    return "object";
}

}  // namespace weft
