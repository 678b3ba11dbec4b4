// lib_internal.h — helpers shared by the object-library files (vm/objects.cpp,
// vm/protocol.cpp, vm/arith.cpp, vm/format.cpp, vm/containers.cpp,
// vm/methods_*.cpp, vm/builtins_core.cpp). Not part of the interpreter's API:
// UTF-8 walking, argument checking for natives and small numeric helpers.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "vm/collections.h"

namespace weft::lib {

[[noreturn]] inline void raise(ErrorKind k, std::string msg) {
    throw WeftError(k, std::move(msg));
}
[[noreturn]] inline void type_error(std::string msg) {
    raise(ErrorKind::TypeError, std::move(msg));
}
[[noreturn]] inline void value_error(std::string msg) {
    raise(ErrorKind::ValueError, std::move(msg));
}

// ---- UTF-8 ---------------------------------------------------------------

// Length in bytes of the sequence starting with lead byte `c` (1 for invalid leads).
inline int utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c >> 5) == 6) return 2;
    if ((c >> 4) == 14) return 3;
    if ((c >> 3) == 30) return 4;
    return 1;
}
// Decodes the code point at byte `i` and advances `i`.
inline uint32_t utf8_decode(std::string_view s, size_t& i) {
    unsigned char c = (unsigned char)s[i];
    int n = utf8_seq_len(c);
    if (n == 1 || i + n > s.size()) {
        ++i;
        return c;
    }
    uint32_t cp = c & (0x7F >> n);
    for (int k = 1; k < n; ++k)
        cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
    i += n;
    return cp;
}
inline void utf8_append(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}
// Number of code points in a UTF-8 string.
inline int64_t utf8_count(std::string_view s) {
    int64_t n = 0;
    for (unsigned char c : s)
        n += (c & 0xC0) != 0x80;
    return n;
}
// Validates UTF-8 (no overlongs, no surrogates); returns the offset of the first bad byte or npos.
size_t utf8_validate(std::string_view s);

// Unicode-lite character classes and case mapping (ASCII, Latin-1, Greek, Cyrillic).
uint32_t cp_lower(uint32_t c);
uint32_t cp_upper(uint32_t c);
bool cp_is_space(uint32_t c);
bool cp_is_alpha(uint32_t c);
bool cp_is_digit(uint32_t c);  // decimal digits (ASCII and a few scripts)
bool cp_is_lower(uint32_t c);
bool cp_is_upper(uint32_t c);

// ---- lazily cached fields --------------------------------------------------
// Hashes and code-point counts are computed on first use and cached in the
// object. Objects shared across threads (kShared) may compute them concurrently;
// relaxed atomic accesses make that race benign (every thread computes the same
// value) and cost a plain load/store on x86-64 and AArch64.
template <class T>
inline T cached_load(T& field) {
    return std::atomic_ref<T>(field).load(std::memory_order_relaxed);
}
template <class T>
inline void cached_store(T& field, T v) {
    std::atomic_ref<T>(field).store(v, std::memory_order_relaxed);
}

// ---- values ----------------------------------------------------------------

inline const StrObj* as_str(const Value& v) {
    return v.as<StrObj>();
}
inline std::string_view sv(const Value& v) {
    return v.as<StrObj>()->data;
}
inline bool is_str(const Value& v) {
    return v.is(ObjType::Str);
}
// Int-like: int or bool (Python's bool is an int).
inline bool is_intlike(const Value& v) {
    return v.is_int() || v.is_bool();
}
inline int64_t int_of(const Value& v) {
    return v.is_int() ? v.as_int() : int64_t(v.as_bool());
}
inline bool is_numlike(const Value& v) {
    return v.is_int() || v.is_float() || v.is_bool();
}
inline double num_of(const Value& v) {
    return v.is_float() ? v.as_float() : double(int_of(v));
}

// Index argument: int/bool, else TypeError "<what> indices must be integers".
int64_t index_arg(const Value& v, const char* what);
// Normalizes a possibly negative index; -1 when out of range.
inline int64_t norm_index(int64_t i, int64_t n) {
    if (i < 0) i += n;
    return (i < 0 || i >= n) ? -1 : i;
}
// Python's PySlice_AdjustIndices: start/stop/step resolved against `len`; returns the count.
int64_t slice_indices(const SliceObj* s, int64_t len, int64_t& start, int64_t& stop, int64_t& step);

// ---- argument checking for natives -----------------------------------------

void check_args(const CallArgs& a, const char* fname, size_t min, size_t max);
void no_kwargs(const CallArgs& a, const char* fname);
// Rejects keyword arguments whose names are not in `allowed` (nullptr-terminated).
void allow_kwargs(const CallArgs& a, const char* fname, std::initializer_list<const char*> allowed);
const StrObj* str_arg(const Value& v, const char* fname, int pos);
int64_t int_arg(const Value& v, const char* fname);

// The immortal one-character string for an ASCII byte (no allocation, no lock).
Value ascii_char(unsigned char c);

// Bool fast path constructor.
inline Value vbool(bool b) {
    return Value::boolean(b);
}

// Shared float helpers.
double float_floor_div(double a, double b);
double float_mod(double a, double b);

// Sorts a vector in place, stably, with Python `<` (or keys). Exception-safe:
// on error `items` is unchanged.
void sort_values(CallContext& cx, std::vector<Value>& items, const Value* key, bool reverse);

// A context for iterating built-in iterators where no interpreter is at hand
// (map/filter iterators then raise TypeError when they need to call).
CallContext& null_context();

// Builds an IteratorObj (used by builtins).
Value make_iterator(IterKind k, Value source, Value func = Value(), int64_t pos = 0,
                    int64_t end = 0, int64_t step = 1);

}  // namespace weft::lib
