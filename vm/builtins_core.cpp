// builtins_core.cpp — the core builtins of spec section 12 (print, len, sorted,
// min/max, round, zip, ...) and the built-in types as callable values (`int`,
// `str`, `list`, ... are TypeObj singletons; calling one goes to call_type).
//
// Every builtin mirrors CPython 3.11: argument handling (positional-only where
// CPython has them, the same keyword names), edge cases and error wording, so
// programs and their error output port unchanged. Lazy builtins (map, filter,
// zip, enumerate, reversed) return IteratorObj values advanced by iter_next.
// Sorting is stable and exception-safe: it sorts an index permutation and
// applies it only when every comparison succeeded.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>

#include "compiler/ast.h"
#include "vm/lib_internal.h"
#include "vm/memory.h"
#include "vm/sys.h"

namespace weft {

using namespace lib;

// ---------------------------------------------------------------------------
// Argument helpers

namespace lib {

void check_args(const CallArgs& a, const char* fname, size_t min, size_t max) {
    size_t n = a.pos.size();
    if (n >= min && n <= max) return;
    if (min == max) {
        if (min == 0)
            type_error(std::string(fname) + "() takes no arguments (" + std::to_string(n) +
                       " given)");
        if (min == 1)
            type_error(std::string(fname) + "() takes exactly one argument (" + std::to_string(n) +
                       " given)");
        type_error(std::string(fname) + " expected " + std::to_string(min) + " arguments, got " +
                   std::to_string(n));
    }
    if (n < min)
        type_error(std::string(fname) + " expected at least " + std::to_string(min) + " argument" +
                   (min == 1 ? "" : "s") + ", got " + std::to_string(n));
    type_error(std::string(fname) + " expected at most " + std::to_string(max) + " argument" +
               (max == 1 ? "" : "s") + ", got " + std::to_string(n));
}

void no_kwargs(const CallArgs& a, const char* fname) {
    check_kwargs(nullptr, fname, a.kw);
}

void allow_kwargs(const CallArgs& a, const char* fname,
                  std::initializer_list<const char*> allowed) {
    for (auto& k : a.kw) {
        bool ok = false;
        for (const char* n : allowed)
            if (k.name == n) ok = true;
        if (!ok)
            type_error(std::string(fname) + "() got an unexpected keyword argument '" +
                       std::string(k.name) + "'");
    }
}

const StrObj* str_arg(const Value& v, const char* fname, int pos) {
    if (!v.is(ObjType::Str))
        type_error(std::string(fname) + "() argument " + std::to_string(pos) +
                   " must be str, not " + type_name(v));
    return v.as<StrObj>();
}

int64_t int_arg(const Value& v, const char* fname) {
    if (v.is_int()) return v.as_int();
    if (v.is_bool()) return v.as_bool();
    type_error("'" + type_name(v) + "' object cannot be interpreted as an integer");
}

void sort_values(CallContext& cx, std::vector<Value>& items, const Value* key, bool reverse) {
    size_t n = items.size();
    if (n < 2) return;
    std::vector<Value> keyvals;
    if (key && !key->is_none()) {
        keyvals.reserve(n);
        for (auto& x : items) {
            Value arg[1] = {x};
            keyvals.push_back(cx.call(*key, arg));
        }
    }
    const std::vector<Value>& keys = keyvals.empty() ? items : keyvals;
    bool all_int = true, all_str = true, all_float = true;
    for (auto& k : keys) {
        if (!k.is_int()) all_int = false;
        if (!k.is(ObjType::Str)) all_str = false;
        if (!k.is_float()) all_float = false;
    }
    if (all_int && keyvals.empty()) {
        // Plain ints: equal ints are indistinguishable, so an unstable sort of the
        // raw numbers is exact and several times faster than sorting indices.
        std::vector<int64_t> nums(n);
        for (size_t i = 0; i < n; ++i)
            nums[i] = items[i].as_int();
        if (reverse)
            std::sort(nums.begin(), nums.end(), std::greater<int64_t>());
        else
            std::sort(nums.begin(), nums.end());
        for (size_t i = 0; i < n; ++i)
            items[i].set_int(nums[i]);
        return;
    }
    std::vector<uint32_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0u);
    if (all_int) {
        if (reverse)
            std::stable_sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) {
                return keys[b].as_int() < keys[a].as_int();
            });
        else
            std::stable_sort(idx.begin(), idx.end(), [&](uint32_t a, uint32_t b) {
                return keys[a].as_int() < keys[b].as_int();
            });
    } else if (all_str) {
        auto lt = [&](uint32_t a, uint32_t b) {
            return keys[a].as<StrObj>()->data < keys[b].as<StrObj>()->data;
        };
        if (reverse)
            std::stable_sort(idx.begin(), idx.end(),
                             [&](uint32_t a, uint32_t b) { return lt(b, a); });
        else
            std::stable_sort(idx.begin(), idx.end(), lt);
    } else if (all_float) {
        auto lt = [&](uint32_t a, uint32_t b) { return keys[a].as_float() < keys[b].as_float(); };
        if (reverse)
            std::stable_sort(idx.begin(), idx.end(),
                             [&](uint32_t a, uint32_t b) { return lt(b, a); });
        else
            std::stable_sort(idx.begin(), idx.end(), lt);
    } else {
        auto lt = [&](uint32_t a, uint32_t b) { return value_less(keys[a], keys[b]); };
        if (reverse)
            std::stable_sort(idx.begin(), idx.end(),
                             [&](uint32_t a, uint32_t b) { return lt(b, a); });
        else
            std::stable_sort(idx.begin(), idx.end(), lt);
    }
    std::vector<Value> out;
    out.reserve(n);
    for (uint32_t i : idx)
        out.push_back(std::move(items[i]));
    items = std::move(out);
}

}  // namespace lib

// ---------------------------------------------------------------------------
// Built-in types as values

namespace {
const char* const kTypeNames[] = {"NoneType", "bool",   "int",    "float", "str",   "bytes",
                                  "list",     "tuple",  "dict",   "set",   "range", "function",
                                  "iterator", "struct", "module", "type",  "any"};
constexpr size_t kTypeCount = sizeof(kTypeNames) / sizeof(kTypeNames[0]);

TypeObj* type_singleton(BuiltinType t) {
    static TypeObj** table = [] {
        auto** tab = new TypeObj*[kTypeCount];
        for (size_t i = 0; i < kTypeCount; ++i) {
            tab[i] = new TypeObj(BuiltinType(i), kTypeNames[i]);
            tab[i]->flags |= Obj::kImmortal;
        }
        return tab;
    }();
    return table[size_t(t)];
}
}  // namespace

Value builtin_type_value(BuiltinType t) {
    return Value::adopt(type_singleton(t));
}

Value type_of(const Value& v) {
    switch (v.tag()) {
        case Tag::None:
            return builtin_type_value(BuiltinType::NoneType);
        case Tag::Bool:
            return builtin_type_value(BuiltinType::Bool);
        case Tag::Int:
            return builtin_type_value(BuiltinType::Int);
        case Tag::Float:
            return builtin_type_value(BuiltinType::Float);
        case Tag::Object:
            break;
    }
    switch (v.as_obj()->type) {
        case ObjType::Str:
            return builtin_type_value(BuiltinType::Str);
        case ObjType::Bytes:
            return builtin_type_value(BuiltinType::Bytes);
        case ObjType::List:
            return builtin_type_value(BuiltinType::List);
        case ObjType::Tuple:
            return builtin_type_value(BuiltinType::Tuple);
        case ObjType::Dict:
            return builtin_type_value(BuiltinType::Dict);
        case ObjType::Set:
            return builtin_type_value(BuiltinType::Set);
        case ObjType::Range:
            return builtin_type_value(BuiltinType::Range);
        case ObjType::Iterator:
            return builtin_type_value(BuiltinType::Iterator);
        case ObjType::Function:
        case ObjType::Native:
        case ObjType::BoundMethod:
            return builtin_type_value(BuiltinType::Function);
        case ObjType::Struct:
            return Value::borrow(v.as<StructObj>()->type);
        case ObjType::Module:
            return builtin_type_value(BuiltinType::Module);
        case ObjType::StructType:
        case ObjType::TypeObj:
            return builtin_type_value(BuiltinType::Type);
        default:
            return builtin_type_value(BuiltinType::Any);
    }
}

namespace {
bool instance_of_builtin(const Value& v, BuiltinType t) {
    switch (t) {
        case BuiltinType::NoneType:
            return v.is_none();
        case BuiltinType::Bool:
            return v.is_bool();
        case BuiltinType::Int:
            return v.is_int() || v.is_bool();
        case BuiltinType::Float:
            return v.is_float();
        case BuiltinType::Str:
            return v.is(ObjType::Str);
        case BuiltinType::Bytes:
            return v.is(ObjType::Bytes);
        case BuiltinType::List:
            return v.is(ObjType::List);
        case BuiltinType::Tuple:
            return v.is(ObjType::Tuple);
        case BuiltinType::Dict:
            return v.is(ObjType::Dict);
        case BuiltinType::Set:
            return v.is(ObjType::Set);
        case BuiltinType::Range:
            return v.is(ObjType::Range);
        case BuiltinType::Function:
            return v.is(ObjType::Function) || v.is(ObjType::Native) || v.is(ObjType::BoundMethod);
        case BuiltinType::Iterator:
            return v.is(ObjType::Iterator);
        case BuiltinType::Struct:
            return v.is(ObjType::Struct);
        case BuiltinType::Module:
            return v.is(ObjType::Module);
        case BuiltinType::Type:
            return v.is(ObjType::TypeObj) || v.is(ObjType::StructType);
        case BuiltinType::Any:
            return true;
    }
    return false;
}
}  // namespace

bool is_instance(const Value& v, const Value& type) {
    if (type.is(ObjType::TypeObj)) return instance_of_builtin(v, type.as<TypeObj>()->which);
    if (type.is(ObjType::StructType))
        return v.is(ObjType::Struct) &&
               v.as<StructObj>()->type->is_subtype_of(type.as<StructTypeObj>());
    if (type.is(ObjType::Tuple)) {
        for (auto& t : type.as<TupleObj>()->items)
            if (is_instance(v, t)) return true;
        return false;
    }
    type_error("isinstance() arg 2 must be a type, a tuple of types, or a union");
}

// ---------------------------------------------------------------------------
// Conversions

namespace {

bool is_py_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view strip_ws(std::string_view s) {
    while (!s.empty() && is_py_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_py_space(s.back()))
        s.remove_suffix(1);
    return s;
}

[[noreturn]] void bad_int_literal(std::string_view orig, int base) {
    value_error("invalid literal for int() with base " + std::to_string(base) + ": " +
                str_repr(orig));
}

int64_t parse_int(std::string_view orig, int base) {
    std::string_view s = strip_ws(orig);
    bool neg = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    int b = base;
    bool prefixed = false;
    if (s.size() >= 2 && s[0] == '0') {
        char p = char(std::tolower((unsigned char)s[1]));
        int pb = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
        if (pb && (base == 0 || base == pb)) {
            b = pb;
            s.remove_prefix(2);
            prefixed = true;
            if (!s.empty() && s[0] == '_') s.remove_prefix(1);
        }
    }
    if (b == 0) {
        b = 10;
        // Base 0 forbids leading zeros in non-zero decimals ("010").
        if (s.size() > 1 && s[0] == '0') {
            for (char c : s)
                if (c != '0' && c != '_') bad_int_literal(orig, 0);
        }
    }
    if (s.empty()) bad_int_literal(orig, base);
    uint64_t acc = 0;
    uint64_t limit = neg ? uint64_t(1) << 63 : (uint64_t(1) << 63) - 1;
    bool prev_us = true;
    bool overflowed = false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '_') {
            if (prev_us) bad_int_literal(orig, base);
            prev_us = true;
            continue;
        }
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'Z')
            d = c - 'A' + 10;
        else
            bad_int_literal(orig, base);
        if (d >= b) bad_int_literal(orig, base);
        prev_us = false;
        if (acc > (limit - uint64_t(d)) / uint64_t(b))
            overflowed = true;
        else
            acc = acc * uint64_t(b) + uint64_t(d);
    }
    (void)prefixed;
    if (prev_us) bad_int_literal(orig, base);
    if (overflowed) raise(ErrorKind::OverflowError, "integer overflow");
    return neg ? int64_t(uint64_t(0) - acc) : int64_t(acc);
}

int64_t float_to_int(double d) {
    if (std::isnan(d)) value_error("cannot convert float NaN to integer");
    if (std::isinf(d)) raise(ErrorKind::OverflowError, "cannot convert float infinity to integer");
    double t = std::trunc(d);
    if (t >= 9223372036854775808.0 || t < -9223372036854775808.0)
        raise(ErrorKind::OverflowError, "integer overflow");
    return int64_t(t);
}

double parse_float(std::string_view orig) {
    std::string_view s = strip_ws(orig);
    auto fail = [&]() -> double {
        value_error("could not convert string to float: " + str_repr(orig));
    };
    if (s.empty()) fail();
    std::string low;
    for (char c : s)
        low += char(std::tolower((unsigned char)c));
    std::string_view l = low;
    bool neg = false;
    std::string_view body = l;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
        neg = body[0] == '-';
        body.remove_prefix(1);
    }
    if (body == "inf" || body == "infinity") return neg ? -INFINITY : INFINITY;
    if (body == "nan") return neg ? -NAN : NAN;
    // Validate: digits with single underscores between digits, '.', exponent.
    std::string clean;
    clean.reserve(s.size());
    bool digit_before = false;
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '_') {
            bool next_digit = i + 1 < s.size() && std::isdigit((unsigned char)s[i + 1]);
            if (!digit_before || !next_digit) fail();
            continue;
        }
        if (!(std::isdigit((unsigned char)c) || c == '.' || c == 'e' || c == 'E' || c == '+' ||
              c == '-'))
            fail();
        digit_before = std::isdigit((unsigned char)c);
        clean += c;
    }
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(clean.c_str(), &end);
    if (end != clean.c_str() + clean.size() || clean == "." || clean.empty()) fail();
    return d;
}

Value to_int_value(const Value& x) {
    if (x.is_int()) return x;
    if (x.is_bool()) return Value::integer(x.as_bool());
    if (x.is_float()) return Value::integer(float_to_int(x.as_float()));
    if (x.is(ObjType::Str)) return Value::integer(parse_int(sv(x), 10));
    if (x.is(ObjType::Bytes)) return Value::integer(parse_int(x.as<BytesObj>()->data, 10));
    type_error("int() argument must be a string, a bytes-like object or a real number, not '" +
               type_name(x) + "'");
}

Value dict_from(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() > 1)
        type_error("dict expected at most 1 argument, got " + std::to_string(a.pos.size()));
    Value d = make_dict();
    auto* t = &d.as<DictObj>()->table;
    if (a.pos.size() == 1) {
        const Value& src = a.pos[0];
        if (src.is(ObjType::Dict)) {
            *t = src.as<DictObj>()->table;
        } else if (src.is(ObjType::Struct)) {
            auto* s = src.as<StructObj>();
            for (size_t i = 0; i < s->fields.size() && i < s->type->fields.size(); ++i)
                t->insert(Value::borrow(intern(s->type->fields[i].name)), s->fields[i]);
        } else {
            Value it = iter_begin(src);
            Value x;
            size_t n = 0;
            while (iter_next(cx, it.as<IteratorObj>(), x)) {
                std::vector<Value> pair;
                if (x.is(ObjType::Tuple))
                    pair = x.as<TupleObj>()->items;
                else if (x.is(ObjType::List))
                    pair = x.as<ListObj>()->items;
                else if (x.is(ObjType::Str) || x.is(ObjType::Iterator) || x.is(ObjType::Range) ||
                         x.is(ObjType::Set) || x.is(ObjType::Dict) || x.is(ObjType::Bytes))
                    pair = collect(cx, x);
                else
                    type_error("cannot convert dictionary update sequence element #" +
                               std::to_string(n) + " to a sequence");
                if (pair.size() != 2)
                    value_error("dictionary update sequence element #" + std::to_string(n) +
                                " has length " + std::to_string(pair.size()) + "; 2 is required");
                t->insert(pair[0], std::move(pair[1]));
                ++n;
            }
        }
    }
    for (auto& k : a.kw)
        t->insert(make_str(k.name), k.value);
    return d;
}

Value bytes_from(CallContext& cx, const CallArgs& a) {
    allow_kwargs(a, "bytes", {"encoding", "errors"});
    if (a.pos.empty() && a.kw.empty()) return make_bytes("");
    const Value* enc = a.find_kw("encoding");
    if (a.pos.size() > 1) enc = &a.pos[1];
    if (a.pos.empty()) type_error("bytes() missing required argument 'source'");
    const Value& src = a.pos[0];
    if (src.is(ObjType::Str)) {
        if (!enc) type_error("string argument without an encoding");
        return make_bytes(std::string(sv(src)));
    }
    if (enc) type_error("encoding without a string argument");
    if (src.is(ObjType::Bytes)) return src;
    if (is_intlike(src)) {
        int64_t n = int_of(src);
        if (n < 0) value_error("negative count");
        check_alloc(uint64_t(n), "a bytes");  // MemoryError, not mimalloc's silent abort
        return make_bytes(std::string(size_t(n), '\0'));
    }
    std::string out;
    for (auto& x : collect(cx, src)) {
        if (!is_intlike(x))
            type_error("'" + type_name(x) + "' object cannot be interpreted as an integer");
        int64_t b = int_of(x);
        if (b < 0 || b > 255) value_error("bytes must be in range(0, 256)");
        out += char(b);
    }
    return make_bytes(std::move(out));
}

}  // namespace

Value call_type(CallContext& cx, const TypeObj* t, const CallArgs& a) {
    switch (t->which) {
        case BuiltinType::Int: {
            allow_kwargs(a, "int", {"base"});
            const Value* basev = a.find_kw("base");
            if (a.pos.size() > 2)
                type_error("int() takes at most 2 arguments (" + std::to_string(a.pos.size()) +
                           " given)");
            if (a.pos.size() == 2) basev = &a.pos[1];
            if (a.pos.empty()) {
                if (basev) type_error("int() missing string argument");
                return Value::integer(0);
            }
            if (!basev) return to_int_value(a.pos[0]);
            int64_t base = int_arg(*basev, "int");
            if (base != 0 && (base < 2 || base > 36))
                value_error("int() base must be >= 2 and <= 36, or 0");
            if (a.pos[0].is(ObjType::Str))
                return Value::integer(parse_int(sv(a.pos[0]), int(base)));
            if (a.pos[0].is(ObjType::Bytes))
                return Value::integer(parse_int(a.pos[0].as<BytesObj>()->data, int(base)));
            type_error("int() can't convert non-string with explicit base");
        }
        case BuiltinType::Float: {
            no_kwargs(a, "float");
            check_args(a, "float", 0, 1);
            if (a.pos.empty()) return Value::number(0.0);
            const Value& x = a.pos[0];
            if (x.is_float()) return x;
            if (is_intlike(x)) return Value::number(double(int_of(x)));
            if (x.is(ObjType::Str)) return Value::number(parse_float(sv(x)));
            type_error("float() argument must be a string or a real number, not '" + type_name(x) +
                       "'");
        }
        case BuiltinType::Str: {
            allow_kwargs(a, "str", {"encoding", "errors"});
            if (a.pos.size() > 3)
                type_error("str() takes at most 3 arguments (" + std::to_string(a.pos.size()) +
                           " given)");
            if (a.pos.empty()) return make_str(std::string());
            bool decode = a.pos.size() > 1 || a.find_kw("encoding") || a.find_kw("errors");
            if (decode) {
                if (!a.pos[0].is(ObjType::Bytes)) type_error("decoding str is not supported");
                Value self = a.pos[0];
                return call_method(cx, self, "decode", CallArgs{a.pos.subspan(1), a.kw});
            }
            if (a.pos[0].is(ObjType::Str)) return a.pos[0];
            return make_str(to_str(a.pos[0]));
        }
        case BuiltinType::Bool:
            no_kwargs(a, "bool");
            check_args(a, "bool", 0, 1);
            return vbool(!a.pos.empty() && truthy(a.pos[0]));
        case BuiltinType::List:
            no_kwargs(a, "list");
            check_args(a, "list", 0, 1);
            if (a.pos.empty()) return make_list();
            return make_list(collect(cx, a.pos[0]));
        case BuiltinType::Tuple:
            no_kwargs(a, "tuple");
            check_args(a, "tuple", 0, 1);
            if (a.pos.empty()) return make_tuple({});
            if (a.pos[0].is(ObjType::Tuple)) return a.pos[0];
            return make_tuple(collect(cx, a.pos[0]));
        case BuiltinType::Set: {
            no_kwargs(a, "set");
            check_args(a, "set", 0, 1);
            Value s = make_set();
            if (a.pos.empty()) return s;
            auto& t = s.as<SetObj>()->table;
            if (a.pos[0].is(ObjType::Set)) {
                t = a.pos[0].as<SetObj>()->table;
                return s;
            }
            for (auto& x : collect(cx, a.pos[0]))
                t.insert(x, Value());
            return s;
        }
        case BuiltinType::Dict:
            return dict_from(cx, a);
        case BuiltinType::Bytes:
            return bytes_from(cx, a);
        case BuiltinType::Range: {
            no_kwargs(a, "range");
            check_args(a, "range", 1, 3);
            if (a.pos.size() == 1) return make_range(0, int_arg(a.pos[0], "range"), 1);
            int64_t step = a.pos.size() == 3 ? int_arg(a.pos[2], "range") : 1;
            return make_range(int_arg(a.pos[0], "range"), int_arg(a.pos[1], "range"), step);
        }
        case BuiltinType::Type:
            no_kwargs(a, "type");
            if (a.pos.size() != 1) type_error("type() takes 1 argument");
            return type_of(a.pos[0]);
        default:
            break;
    }
    type_error("cannot create '" + t->name + "' instances");
}

// ---------------------------------------------------------------------------
// Builtin functions

namespace {

Value bi_print(CallContext& cx, const CallArgs& a) {
    allow_kwargs(a, "print", {"sep", "end", "flush", "file"});
    std::string_view sep = " ", end = "\n";
    if (const Value* v = a.find_kw("sep"); v && !v->is_none()) {
        if (!v->is(ObjType::Str)) type_error("sep must be None or a string, not " + type_name(*v));
        sep = sv(*v);
    }
    if (const Value* v = a.find_kw("end"); v && !v->is_none()) {
        if (!v->is(ObjType::Str)) type_error("end must be None or a string, not " + type_name(*v));
        end = sv(*v);
    }
    std::string out;
    for (size_t i = 0; i < a.pos.size(); ++i) {
        if (i) out += sep;
        append_str(out, a.pos[i]);
    }
    out += end;
    const Value* file = a.find_kw("file");
    const Value* flush = a.find_kw("flush");
    write_to_file(cx, file ? *file : Value(), out, flush && truthy(*flush));
    return Value();
}

Value bi_len(CallContext&, const CallArgs& a) {
    no_kwargs(a, "len");
    check_args(a, "len", 1, 1);
    return Value::integer(length(a.pos[0]));
}

Value bi_repr(CallContext&, const CallArgs& a) {
    no_kwargs(a, "repr");
    check_args(a, "repr", 1, 1);
    return make_str(repr(a.pos[0]));
}

Value bi_hash(CallContext&, const CallArgs& a) {
    no_kwargs(a, "hash");
    check_args(a, "hash", 1, 1);
    return Value::integer(int64_t(value_hash(a.pos[0])));
}

Value bi_abs(CallContext&, const CallArgs& a) {
    no_kwargs(a, "abs");
    check_args(a, "abs", 1, 1);
    const Value& x = a.pos[0];
    if (x.is_float()) return Value::number(std::fabs(x.as_float()));
    if (is_intlike(x)) {
        int64_t i = int_of(x);
        if (i == std::numeric_limits<int64_t>::min())
            raise(ErrorKind::OverflowError, "integer overflow");
        return Value::integer(i < 0 ? -i : i);
    }
    type_error("bad operand type for abs(): '" + type_name(x) + "'");
}

Value bi_sorted(CallContext& cx, const CallArgs& a) {
    allow_kwargs(a, "sorted", {"key", "reverse"});
    if (a.pos.size() != 1)
        type_error("sorted expected 1 argument, got " + std::to_string(a.pos.size()));
    std::vector<Value> items = collect(cx, a.pos[0]);
    const Value* key = a.find_kw("key");
    const Value* rev = a.find_kw("reverse");
    sort_values(cx, items, key, rev && truthy(*rev));
    return make_list(std::move(items));
}

Value bi_reversed(CallContext& cx, const CallArgs& a) {
    no_kwargs(a, "reversed");
    check_args(a, "reversed", 1, 1);
    const Value& s = a.pos[0];
    if (s.is(ObjType::List))
        return make_iterator(IterKind::Reversed, s, Value(),
                             int64_t(s.as<ListObj>()->items.size()) - 1);
    if (s.is(ObjType::Tuple))
        return make_iterator(IterKind::Reversed, s, Value(),
                             int64_t(s.as<TupleObj>()->items.size()) - 1);
    if (s.is(ObjType::Range)) {
        auto* r = s.as<RangeObj>();
        int64_t n = length(s);
        return make_iterator(IterKind::Range, Value(), Value(),
                             n ? r->start + (n - 1) * r->step : 0, n, -r->step);
    }
    if (s.is(ObjType::Str) || s.is(ObjType::Dict) || s.is(ObjType::Bytes)) {
        Value l = make_list(collect(cx, s));
        int64_t n = int64_t(l.as<ListObj>()->items.size());
        return make_iterator(IterKind::Reversed, l, Value(), n - 1);
    }
    type_error("'" + type_name(s) + "' object is not reversible");
}

Value bi_sum(CallContext& cx, const CallArgs& a) {
    allow_kwargs(a, "sum", {"start"});
    check_args(a, "sum", 1, 2);
    Value acc = Value::integer(0);
    if (a.pos.size() == 2)
        acc = a.pos[1];
    else if (const Value* s = a.find_kw("start"))
        acc = *s;
    if (acc.is(ObjType::Str)) type_error("sum() can't sum strings [use ''.join(seq) instead]");
    if (acc.is(ObjType::Bytes)) type_error("sum() can't sum bytes [use b''.join(seq) instead]");
    auto add = [&](const Value& x) {
        if (acc.is_int() && x.is_int()) {
            int64_t r;
            if (__builtin_add_overflow(acc.as_int(), x.as_int(), &r))
                raise(ErrorKind::OverflowError, "integer overflow");
            acc.set_int(r);
        } else if (acc.is_float() && x.is_float()) {
            acc.set_float(acc.as_float() + x.as_float());
        } else {
            acc = binary_op(ast::BinaryOp::Add, acc, x);
        }
    };
    const Value& src = a.pos[0];
    uint32_t polls = 0;  // sum(range(10**12)) must stop when its task is cancelled
    if (src.is(ObjType::List) || src.is(ObjType::Tuple)) {
        auto& items = src.is(ObjType::List) ? src.as<ListObj>()->items : src.as<TupleObj>()->items;
        for (auto& x : items) {
            add(x);
            poll_cancellation_every(polls);
        }
        return acc;
    }
    Value it = iter_begin(src);
    Value x;
    while (iter_next(cx, it.as<IteratorObj>(), x)) {
        add(x);
        poll_cancellation_every(polls);
    }
    return acc;
}

Value min_max(CallContext& cx, const CallArgs& a, bool is_max) {
    const char* name = is_max ? "max" : "min";
    allow_kwargs(a, name, {"key", "default"});
    if (a.pos.empty()) type_error(std::string(name) + " expected at least 1 argument, got 0");
    const Value* key = a.find_kw("key");
    if (key && key->is_none()) key = nullptr;
    const Value* def = a.find_kw("default");
    std::vector<Value> items;
    if (a.pos.size() == 1) {
        items = collect(cx, a.pos[0]);
    } else {
        if (def)
            type_error(std::string("Cannot specify a default for ") + name +
                       "() with multiple positional arguments");
        items.assign(a.pos.begin(), a.pos.end());
    }
    if (items.empty()) {
        if (def) return *def;
        value_error(std::string(name) + "() arg is an empty sequence");
    }
    size_t best = 0;
    Value best_key;
    if (key) {
        Value arg[1] = {items[0]};
        best_key = cx.call(*key, arg);
    } else {
        best_key = items[0];
    }
    for (size_t i = 1; i < items.size(); ++i) {
        Value k;
        if (key) {
            Value arg[1] = {items[i]};
            k = cx.call(*key, arg);
        } else {
            k = items[i];
        }
        bool better = is_max ? value_less(best_key, k) : value_less(k, best_key);
        if (better) {
            best = i;
            best_key = std::move(k);
        }
    }
    return items[best];
}

Value bi_min(CallContext& cx, const CallArgs& a) {
    return min_max(cx, a, false);
}
Value bi_max(CallContext& cx, const CallArgs& a) {
    return min_max(cx, a, true);
}

// Rounds the decimal digit string of a non-negative integer at `k` digits from
// the right, half to even; `has_frac` marks a non-zero fraction below the digits.
std::string round_digits(std::string d, size_t k, bool has_frac) {
    if (k == 0) return d;
    if (k > d.size()) return "0";
    std::string keep = d.substr(0, d.size() - k), tail = d.substr(d.size() - k);
    int cmp;  // tail vs half
    if (tail[0] > '5')
        cmp = 1;
    else if (tail[0] < '5')
        cmp = -1;
    else {
        cmp = has_frac ? 1 : 0;
        for (size_t i = 1; i < tail.size(); ++i)
            if (tail[i] != '0') cmp = 1;
    }
    bool up = cmp > 0 || (cmp == 0 && !keep.empty() && ((keep.back() - '0') & 1));
    if (keep.empty()) keep = "0";
    if (up) {
        int i = int(keep.size()) - 1;
        while (i >= 0 && keep[size_t(i)] == '9')
            keep[size_t(i--)] = '0';
        if (i < 0)
            keep.insert(keep.begin(), '1');
        else
            keep[size_t(i)]++;
    }
    return keep + std::string(k, '0');
}

double round_float(double x, int64_t nd) {
    if (!std::isfinite(x) || x == 0.0) return x;
    if (nd >= 0) {
        if (nd > 330) return x;
        char buf[512];
        snprintf(buf, sizeof buf, "%.*f", int(nd), x);
        return std::strtod(buf, nullptr);
    }
    double ax = std::fabs(x);
    double ip = std::trunc(ax);
    bool has_frac = ax != ip;
    char buf[400];
    snprintf(buf, sizeof buf, "%.0f", ip);
    std::string r = round_digits(buf, size_t(std::min<int64_t>(-nd, 400)), has_frac);
    double v = std::strtod(r.c_str(), nullptr);
    return std::copysign(v, x);
}

Value bi_round(CallContext&, const CallArgs& a) {
    allow_kwargs(a, "round", {"ndigits", "number"});
    const Value* num = a.pos.size() >= 1 ? &a.pos[0] : a.find_kw("number");
    if (!num) type_error("round() missing required argument 'number' (pos 1)");
    if (a.pos.size() > 2)
        type_error("round() takes at most 2 arguments (" + std::to_string(a.pos.size()) +
                   " given)");
    const Value* nd = a.pos.size() == 2 ? &a.pos[1] : a.find_kw("ndigits");
    if (nd && nd->is_none()) nd = nullptr;
    const Value& x = *num;
    if (is_intlike(x)) {
        int64_t v = int_of(x);
        if (!nd) return Value::integer(v);
        int64_t n = int_arg(*nd, "round");
        if (n >= 0) return Value::integer(v);
        if (n < -18) return Value::integer(0);
        int64_t p = 1;
        for (int64_t i = 0; i < -n; ++i)
            p *= 10;
        uint64_t av = v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v);
        uint64_t q = av / uint64_t(p), r = av % uint64_t(p);
        if (2 * r > uint64_t(p) || (2 * r == uint64_t(p) && (q & 1))) ++q;
        unsigned __int128 res = (unsigned __int128)q * uint64_t(p);
        if (res > (unsigned __int128)(uint64_t(1) << 63) - (v < 0 ? 0 : 1))
            raise(ErrorKind::OverflowError, "integer overflow");
        return Value::integer(v < 0 ? -int64_t(uint64_t(res)) : int64_t(uint64_t(res)));
    }
    if (x.is_float()) {
        double d = x.as_float();
        if (!nd) {
            double r = std::nearbyint(d);  // default rounding mode: half to even
            return Value::integer(float_to_int(r));
        }
        return Value::number(round_float(d, int_arg(*nd, "round")));
    }
    type_error("type " + type_name(x) + " doesn't define __round__ method");
}

Value bi_enumerate(CallContext&, const CallArgs& a) {
    allow_kwargs(a, "enumerate", {"start", "iterable"});
    const Value* src = a.pos.size() >= 1 ? &a.pos[0] : a.find_kw("iterable");
    if (!src) type_error("enumerate() missing required argument 'iterable' (pos 1)");
    if (a.pos.size() > 2)
        type_error("enumerate() takes at most 2 arguments (" + std::to_string(a.pos.size()) +
                   " given)");
    const Value* st = a.pos.size() == 2 ? &a.pos[1] : a.find_kw("start");
    int64_t start = st ? int_arg(*st, "enumerate") : 0;
    return make_iterator(IterKind::Enumerate, iter_begin(*src), Value(), start);
}

Value bi_zip(CallContext&, const CallArgs& a) {
    allow_kwargs(a, "zip", {"strict"});
    const Value* strict = a.find_kw("strict");
    std::vector<Value> its;
    its.reserve(a.pos.size());
    for (size_t i = 0; i < a.pos.size(); ++i) {
        its.push_back(iter_begin(a.pos[i]));
    }
    return make_iterator(IterKind::Zip, make_tuple(std::move(its)), Value(), 0, 0,
                         strict && truthy(*strict) ? 2 : 1);
}

Value bi_map(CallContext&, const CallArgs& a) {
    no_kwargs(a, "map");
    if (a.pos.size() < 2) type_error("map() must have at least two arguments.");
    std::vector<Value> its;
    for (size_t i = 1; i < a.pos.size(); ++i)
        its.push_back(iter_begin(a.pos[i]));
    return make_iterator(IterKind::Map, make_tuple(std::move(its)), a.pos[0]);
}

Value bi_filter(CallContext&, const CallArgs& a) {
    no_kwargs(a, "filter");
    check_args(a, "filter", 2, 2);
    return make_iterator(IterKind::Filter, iter_begin(a.pos[1]), a.pos[0]);
}

Value any_all(CallContext& cx, const CallArgs& a, bool is_any) {
    no_kwargs(a, is_any ? "any" : "all");
    check_args(a, is_any ? "any" : "all", 1, 1);
    const Value& src = a.pos[0];
    if (src.is(ObjType::List) || src.is(ObjType::Tuple)) {
        auto& items = src.is(ObjType::List) ? src.as<ListObj>()->items : src.as<TupleObj>()->items;
        for (auto& x : items)
            if (truthy(x) == is_any) return vbool(is_any);
        return vbool(!is_any);
    }
    Value it = iter_begin(src);
    Value x;
    while (iter_next(cx, it.as<IteratorObj>(), x))
        if (truthy(x) == is_any) return vbool(is_any);
    return vbool(!is_any);
}
Value bi_any(CallContext& cx, const CallArgs& a) {
    return any_all(cx, a, true);
}
Value bi_all(CallContext& cx, const CallArgs& a) {
    return any_all(cx, a, false);
}

Value bi_isinstance(CallContext&, const CallArgs& a) {
    no_kwargs(a, "isinstance");
    check_args(a, "isinstance", 2, 2);
    return vbool(is_instance(a.pos[0], a.pos[1]));
}

Value bi_input(CallContext& cx, const CallArgs& a) {
    no_kwargs(a, "input");
    check_args(a, "input", 0, 1);
    if (!a.pos.empty()) cx.write_stdout(to_str(a.pos[0]));
    std::string line;
    if (!cx.read_line(line)) raise(ErrorKind::IOError, "EOF when reading a line");
    if (utf8_validate(line) != std::string::npos) value_error("input is not valid UTF-8");
    return make_str(std::move(line));
}

Value bi_ord(CallContext&, const CallArgs& a) {
    no_kwargs(a, "ord");
    check_args(a, "ord", 1, 1);
    const Value& c = a.pos[0];
    if (c.is(ObjType::Str)) {
        int64_t n = str_len(c.as<StrObj>());
        if (n != 1)
            type_error("ord() expected a character, but string of length " + std::to_string(n) +
                       " found");
        size_t i = 0;
        return Value::integer(utf8_decode(sv(c), i));
    }
    if (c.is(ObjType::Bytes)) {
        auto& d = c.as<BytesObj>()->data;
        if (d.size() != 1)
            type_error("ord() expected a character, but string of length " +
                       std::to_string(d.size()) + " found");
        return Value::integer((unsigned char)d[0]);
    }
    type_error("ord() expected string of length 1, but " + type_name(c) + " found");
}

Value bi_chr(CallContext&, const CallArgs& a) {
    no_kwargs(a, "chr");
    check_args(a, "chr", 1, 1);
    int64_t n = int_arg(a.pos[0], "chr");
    if (n < 0 || n > 0x10ffff) value_error("chr() arg not in range(0x110000)");
    if (n >= 0xd800 && n <= 0xdfff)
        value_error("chr() arg is a surrogate code point, which Weft strings cannot hold");
    if (n < 0x80) return ascii_char((unsigned char)n);
    std::string s;
    utf8_append(s, uint32_t(n));
    return make_str(std::move(s));
}

Value bi_divmod(CallContext&, const CallArgs& a) {
    no_kwargs(a, "divmod");
    check_args(a, "divmod", 2, 2);
    const Value &x = a.pos[0], &y = a.pos[1];
    if (!is_numlike(x) || !is_numlike(y))
        type_error("unsupported operand type(s) for divmod(): '" + type_name(x) + "' and '" +
                   type_name(y) + "'");
    if (!x.is_float() && !y.is_float() && int_of(y) == 0)
        raise(ErrorKind::ZeroDivisionError, "integer division or modulo by zero");
    if ((x.is_float() || y.is_float()) && num_of(y) == 0.0)
        raise(ErrorKind::ZeroDivisionError, "float divmod()");
    Value q = binary_op(ast::BinaryOp::FloorDiv, x, y);
    Value r = binary_op(ast::BinaryOp::Mod, x, y);
    return make_tuple({std::move(q), std::move(r)});
}

int64_t mulmod(int64_t a, int64_t b, int64_t m) {
    return int64_t(((__int128)a * b) % m);
}

Value bi_pow(CallContext&, const CallArgs& a) {
    allow_kwargs(a, "pow", {"base", "exp", "mod"});
    std::vector<Value> args(a.pos.begin(), a.pos.end());
    static const char* names[] = {"base", "exp", "mod"};
    for (size_t i = args.size(); i < 3; ++i) {
        const Value* v = a.find_kw(names[i]);
        if (!v) break;
        args.push_back(*v);
    }
    if (args.size() < 2) type_error("pow() missing required argument 'exp' (pos 2)");
    if (args.size() > 3)
        type_error("pow expected at most 3 arguments, got " + std::to_string(args.size()));
    if (args.size() == 2 || args[2].is_none())
        return binary_op(ast::BinaryOp::Pow, args[0], args[1]);
    if (!is_intlike(args[0]) || !is_intlike(args[1]) || !is_intlike(args[2]))
        type_error("pow() 3rd argument not allowed unless all arguments are integers");
    int64_t b = int_of(args[0]), e = int_of(args[1]), m = int_of(args[2]);
    if (m == 0) value_error("pow() 3rd argument cannot be 0");
    bool mneg = m < 0;
    if (m == std::numeric_limits<int64_t>::min())
        raise(ErrorKind::OverflowError, "integer overflow");
    int64_t am = mneg ? -m : m;
    int64_t base = b % am;
    if (base < 0) base += am;
    if (e < 0) {
        // Modular inverse by the extended Euclidean algorithm.
        int64_t t = 0, nt = 1, r = am, nr = base;
        while (nr != 0) {
            int64_t q = r / nr;
            int64_t tmp = t - q * nt;
            t = nt;
            nt = tmp;
            tmp = r - q * nr;
            r = nr;
            nr = tmp;
        }
        if (r != 1) value_error("base is not invertible for the given modulus");
        if (t < 0) t += am;
        base = t;
        e = e == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -e;
    }
    int64_t result = 1 % am;
    while (e > 0) {
        if (e & 1) result = mulmod(result, base, am);
        base = mulmod(base, base, am);
        e >>= 1;
    }
    if (mneg && result != 0) result -= am;
    return Value::integer(result);
}

Value int_to_base_str(const CallArgs& a, const char* name, int base, const char* prefix) {
    no_kwargs(a, name);
    check_args(a, name, 1, 1);
    int64_t n = int_arg(a.pos[0], name);
    uint64_t u = n < 0 ? uint64_t(0) - uint64_t(n) : uint64_t(n);
    std::string digits;
    if (u == 0) digits = "0";
    while (u) {
        digits += "0123456789abcdef"[u % unsigned(base)];
        u /= unsigned(base);
    }
    std::string out = n < 0 ? "-" : "";
    out += prefix;
    out.append(digits.rbegin(), digits.rend());
    return make_str(std::move(out));
}
Value bi_hex(CallContext&, const CallArgs& a) {
    return int_to_base_str(a, "hex", 16, "0x");
}
Value bi_oct(CallContext&, const CallArgs& a) {
    return int_to_base_str(a, "oct", 8, "0o");
}
Value bi_bin(CallContext&, const CallArgs& a) {
    return int_to_base_str(a, "bin", 2, "0b");
}

Value bi_format(CallContext&, const CallArgs& a) {
    no_kwargs(a, "format");
    check_args(a, "format", 1, 2);
    if (a.pos.size() == 2 && !a.pos[1].is(ObjType::Str))
        type_error("format() argument 2 must be str, not " + type_name(a.pos[1]));
    return make_str(format_spec(a.pos[0], a.pos.size() == 2 ? sv(a.pos[1]) : std::string_view()));
}

Value bi_now(CallContext&, const CallArgs& a) {
    no_kwargs(a, "now");
    check_args(a, "now", 0, 0);
    auto t = std::chrono::system_clock::now().time_since_epoch();
    return Value::number(std::chrono::duration<double>(t).count());
}

Value bi_monotonic(CallContext&, const CallArgs& a) {
    no_kwargs(a, "monotonic");
    check_args(a, "monotonic", 0, 0);
    auto t = std::chrono::steady_clock::now().time_since_epoch();
    return Value::number(std::chrono::duration<double>(t).count());
}

struct BuiltinDef {
    const char* name;
    NativeFn fn;
    const char* kwargs = nullptr;  // the keywords it takes (NativeObj::kwargs)
};

const BuiltinDef kBuiltins[] = {
    {"print", bi_print, "sep end flush file"},
    {"len", bi_len},
    {"repr", bi_repr},
    {"hash", bi_hash},
    {"abs", bi_abs},
    {"sorted", bi_sorted, "key reverse"},
    {"reversed", bi_reversed},
    {"sum", bi_sum, "start"},
    {"min", bi_min, "key default"},
    {"max", bi_max, "key default"},
    {"round", bi_round, "number ndigits"},
    {"enumerate", bi_enumerate, "iterable start"},
    {"zip", bi_zip, "strict"},
    {"map", bi_map},
    {"filter", bi_filter},
    {"any", bi_any},
    {"all", bi_all},
    {"isinstance", bi_isinstance},
    {"input", bi_input},
    {"ord", bi_ord},
    {"chr", bi_chr},
    {"divmod", bi_divmod},
    {"pow", bi_pow, "base exp mod"},
    {"hex", bi_hex},
    {"oct", bi_oct},
    {"bin", bi_bin},
    {"format", bi_format},
    {"now", bi_now},
    {"monotonic", bi_monotonic},
};

}  // namespace

void register_core_builtins(std::vector<std::pair<std::string, Value>>& out) {
    for (auto& b : kBuiltins) {
        auto* n = new NativeObj(b.name, b.fn);
        n->kwargs = b.kwargs;
        n->flags |= Obj::kImmortal;  // shared by every module and thread; never freed
        out.emplace_back(b.name, Value::adopt(n));
    }
    static const BuiltinType kTypes[] = {BuiltinType::Int,   BuiltinType::Str,   BuiltinType::Float,
                                         BuiltinType::Bool,  BuiltinType::List,  BuiltinType::Dict,
                                         BuiltinType::Set,   BuiltinType::Tuple, BuiltinType::Bytes,
                                         BuiltinType::Range, BuiltinType::Type};
    for (BuiltinType t : kTypes)
        out.emplace_back(kTypeNames[size_t(t)], builtin_type_value(t));
}

}  // namespace weft
