// containers.cpp — length, indexing, slicing, item assignment and deletion,
// membership and iteration for the built-in container types.
//
// Strings index by code point: ASCII strings (flag set at construction) index in
// O(1); others walk the UTF-8 bytes. Mutations go through *_unshare, so an
// assignment through one variable never shows through another. Iterators hold a
// reference to the collection they walk, which by copy-on-write is a snapshot.
#include <cmath>
#include <limits>

#include "vm/lib_internal.h"
#include "vm/task_context.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

using namespace lib;

// ---------------------------------------------------------------------------
// Helpers

namespace lib {

CallContext& null_context() {
    struct NullContext : CallContext {
        Value call(const Value&, std::span<const Value>) override {
            type_error("cannot call here");
        }
        Value call_kw(const Value&, std::span<const Value>, std::span<const KwArg>) override {
            type_error("cannot call here");
        }
        void write_stdout(std::string_view) override {}
        bool read_line(std::string&) override { return false; }
    };
    static NullContext cx;
    return cx;
}

int64_t index_arg(const Value& v, const char* what) {
    if (v.is_int()) return v.as_int();
    if (v.is_bool()) return v.as_bool();
    type_error(std::string(what) + " indices must be integers or slices, not " + type_name(v));
}

namespace {
int64_t slice_bound(const Value& v) {
    if (v.is_int()) return v.as_int();
    if (v.is_bool()) return v.as_bool();
    type_error("slice indices must be integers or None or have an __index__ method");
}
}  // namespace

int64_t slice_indices(const SliceObj* s, int64_t len, int64_t& start, int64_t& stop,
                      int64_t& step) {
    step = s->step.is_none() ? 1 : slice_bound(s->step);
    if (step == 0) value_error("slice step cannot be zero");
    if (step == std::numeric_limits<int64_t>::min()) step = -std::numeric_limits<int64_t>::max();
    int64_t lo_default = step < 0 ? len - 1 : 0;
    int64_t hi_default = step < 0 ? -1 : len;
    if (s->lower.is_none()) {
        start = lo_default;
    } else {
        start = slice_bound(s->lower);
        if (start < 0) {
            start += len;
            if (start < 0) start = step < 0 ? -1 : 0;
        } else if (start >= len) {
            start = step < 0 ? len - 1 : len;
        }
    }
    if (s->upper.is_none()) {
        stop = hi_default;
    } else {
        stop = slice_bound(s->upper);
        if (stop < 0) {
            stop += len;
            if (stop < 0) stop = step < 0 ? -1 : 0;
        } else if (stop >= len) {
            stop = step < 0 ? len - 1 : len;
        }
    }
    if (step < 0) {
        if (stop < start) return (start - stop - 1) / (-step) + 1;
    } else {
        if (start < stop) return (stop - start - 1) / step + 1;
    }
    return 0;
}

}  // namespace lib

int64_t str_len(const StrObj* s) {
    int64_t n = cached_load(s->cp_len);
    if (n < 0) {
        n = utf8_count(s->data);
        cached_store(s->cp_len, n);
    }
    return n;
}

size_t str_byte_offset(const StrObj* s, int64_t cp_index) {
    if (s->ascii) return size_t(cp_index);
    size_t i = 0;
    const std::string& d = s->data;
    for (int64_t k = 0; k < cp_index && i < d.size(); ++k)
        i += size_t(utf8_seq_len((unsigned char)d[i]));
    return i;
}

namespace {
// The number of items of a range, which can reach 2**64 - 1 (range(-2**63, 2**63 - 1)):
// computed in unsigned arithmetic to avoid overflow on extreme bounds.
uint64_t range_len_unsigned(const RangeObj* r) {
    if (r->step > 0) {
        if (r->start >= r->stop) return 0;
        return (uint64_t(r->stop) - uint64_t(r->start) - 1) / uint64_t(r->step) + 1;
    }
    if (r->start <= r->stop) return 0;
    return (uint64_t(r->start) - uint64_t(r->stop) - 1) / (uint64_t(0) - uint64_t(r->step)) + 1;
}

// The length as an int: OverflowError past 2**63 - 1 items, as CPython's len() raises past
// sys.maxsize (the length would otherwise wrap to a negative number).
int64_t range_len(const RangeObj* r) {
    uint64_t n = range_len_unsigned(r);
    if (n > uint64_t(INT64_MAX))
        raise(ErrorKind::OverflowError,
              "range has more than 9223372036854775807 items (" + std::to_string(n) + ")");
    return int64_t(n);
}

[[noreturn]] void index_error(const char* tname) {
    raise(ErrorKind::IndexError, std::string(tname) + " index out of range");
}

[[noreturn]] void key_error(const Value& key) {
    throw WeftError(ErrorKind::KeyError, repr(key));
}

Value str_char(const StrObj* s, int64_t i) {
    size_t b = str_byte_offset(s, i);
    size_t n = size_t(utf8_seq_len((unsigned char)s->data[b]));
    if (s->ascii) {
        // Single ASCII characters are interned: no allocation on s[i] in loops.
        return ascii_char((unsigned char)s->data[b]);
    }
    return make_str(s->data.substr(b, n));
}

Value seq_slice(const std::vector<Value>& items, const SliceObj* sl, bool list) {
    int64_t start, stop, step;
    int64_t n = slice_indices(sl, int64_t(items.size()), start, stop, step);
    std::vector<Value> r;
    r.reserve(size_t(n));
    if (step == 1)
        r.assign(items.begin() + start, items.begin() + start + n);
    else
        for (int64_t k = 0, i = start; k < n; ++k, i += step)
            r.push_back(items[size_t(i)]);
    return list ? make_list(std::move(r)) : make_tuple(std::move(r));
}

Value str_slice(const StrObj* s, const SliceObj* sl) {
    int64_t start, stop, step;
    int64_t n = slice_indices(sl, str_len(s), start, stop, step);
    if (step == 1) {
        size_t b = str_byte_offset(s, start);
        size_t e = size_t(start + n);
        if (!s->ascii) {
            e = b;
            for (int64_t k = 0; k < n; ++k)
                e += size_t(utf8_seq_len((unsigned char)s->data[e]));
        }
        return make_str(s->data.substr(b, e - b));
    }
    std::string r;
    if (s->ascii) {
        r.reserve(size_t(n));
        for (int64_t k = 0, i = start; k < n; ++k, i += step)
            r += s->data[size_t(i)];
    } else {
        // Decode once into code point offsets.
        std::vector<uint32_t> offs;
        offs.reserve(s->data.size());
        for (size_t i = 0; i < s->data.size(); i += size_t(utf8_seq_len((unsigned char)s->data[i])))
            offs.push_back(uint32_t(i));
        offs.push_back(uint32_t(s->data.size()));
        for (int64_t k = 0, i = start; k < n; ++k, i += step)
            r.append(s->data, offs[size_t(i)], offs[size_t(i) + 1] - offs[size_t(i)]);
    }
    return make_str(std::move(r));
}

Value dict_lookup(const DictObj* d, const Value& key) {
    int64_t i = d->table.find(key);
    if (i < 0) key_error(key);
    return d->table.entry(size_t(i)).value;
}
}  // namespace

int64_t length(const Value& v) {
    if ((v.is(ObjType::Promise)) && promise_resolver) {  // a promise is forced when inspected
        Value r_v = v;
        resolve_if_promise(r_v);
        return length(r_v);
    }
    if (v.is_obj()) {
        Obj* o = v.as_obj();
        switch (o->type) {
            case ObjType::Str:
                return str_len(static_cast<StrObj*>(o));
            case ObjType::Bytes:
                return int64_t(static_cast<BytesObj*>(o)->data.size());
            case ObjType::List:
                return int64_t(static_cast<ListObj*>(o)->items.size());
            case ObjType::Tuple:
                return int64_t(static_cast<TupleObj*>(o)->items.size());
            case ObjType::Dict:
                return int64_t(static_cast<DictObj*>(o)->table.size());
            case ObjType::Set:
                return int64_t(static_cast<SetObj*>(o)->table.size());
            case ObjType::Range:
                return range_len(static_cast<RangeObj*>(o));
            case ObjType::Opaque: {
                auto* h = static_cast<OpaqueObj*>(o);
                if (h->cls->len) return h->cls->len(h);
                break;
            }
            default:
                break;
        }
    }
    type_error("object of type '" + type_name(v) + "' has no len()");
}

Value get_item(const Value& obj, const Value& key) {
    if (!obj.is_obj()) type_error("'" + type_name(obj) + "' object is not subscriptable");
    Obj* o = obj.as_obj();
    switch (o->type) {
        case ObjType::List:
        case ObjType::Tuple: {
            bool list = o->type == ObjType::List;
            auto& items = list ? static_cast<ListObj*>(o)->items : static_cast<TupleObj*>(o)->items;
            if (key.is_int()) {
                int64_t i = norm_index(key.as_int(), int64_t(items.size()));
                if (i < 0) index_error(list ? "list" : "tuple");
                return items[size_t(i)];
            }
            if (key.is(ObjType::Slice)) return seq_slice(items, key.as<SliceObj>(), list);
            int64_t i = norm_index(index_arg(key, list ? "list" : "tuple"), int64_t(items.size()));
            if (i < 0) index_error(list ? "list" : "tuple");
            return items[size_t(i)];
        }
        case ObjType::Dict:
            return dict_lookup(static_cast<DictObj*>(o), key);
        case ObjType::Str: {
            auto* s = static_cast<StrObj*>(o);
            if (key.is(ObjType::Slice)) return str_slice(s, key.as<SliceObj>());
            int64_t i = norm_index(index_arg(key, "string"), str_len(s));
            if (i < 0) raise(ErrorKind::IndexError, "string index out of range");
            return str_char(s, i);
        }
        case ObjType::Bytes: {
            auto& d = static_cast<BytesObj*>(o)->data;
            if (key.is(ObjType::Slice)) {
                int64_t start, stop, step;
                int64_t n = slice_indices(key.as<SliceObj>(), int64_t(d.size()), start, stop, step);
                std::string r;
                for (int64_t k = 0, i = start; k < n; ++k, i += step)
                    r += d[size_t(i)];
                return make_bytes(std::move(r));
            }
            int64_t i = norm_index(index_arg(key, "byte"), int64_t(d.size()));
            if (i < 0) raise(ErrorKind::IndexError, "index out of range");
            return Value::integer((unsigned char)d[size_t(i)]);
        }
        case ObjType::Range: {
            auto* r = static_cast<RangeObj*>(o);
            if (!key.is(ObjType::Slice)) {
                // In unsigned arithmetic: a range may hold more than 2**63 - 1 items, and each of
                // them still fits an int (start + i * step wraps back into range).
                uint64_t n = range_len_unsigned(r);
                int64_t i = index_arg(key, "range");
                uint64_t back = i < 0 ? uint64_t(-(i + 1)) + 1 : 0;  // |i| for a negative i
                if (i >= 0 ? uint64_t(i) >= n : back > n)
                    raise(ErrorKind::IndexError, "range object index out of range");
                uint64_t at = i >= 0 ? uint64_t(i) : n - back;
                return Value::integer(int64_t(uint64_t(r->start) + at * uint64_t(r->step)));
            }
            int64_t start, stop, step;
            slice_indices(key.as<SliceObj>(), range_len(r), start, stop, step);
            // Like CPython: range(r[start], r[stop], r.step * step), computed without indexing
            // checks.
            int64_t nstep, nstart, nstop;
            if (__builtin_mul_overflow(r->step, step, &nstep) ||
                __builtin_add_overflow(r->start, start * r->step, &nstart) ||
                __builtin_add_overflow(r->start, stop * r->step, &nstop))
                raise(ErrorKind::OverflowError, "integer overflow");
            return make_range(nstart, nstop, nstep);
        }
        case ObjType::Struct: {
            // dict-style access to struct fields is not Python; keep the Python error.
            break;
        }
        default:
            break;
    }
    type_error("'" + type_name(obj) + "' object is not subscriptable");
}

void set_item(Value& obj, const Value& key, Value v) {
    if (obj.is(ObjType::List)) {
        if (key.is(ObjType::Slice)) {
            std::vector<Value> src;
            if (v.is(ObjType::List))
                src = v.as<ListObj>()->items;
            else if (v.is(ObjType::Tuple))
                src = v.as<TupleObj>()->items;
            else {
                if (!(v.is_obj() &&
                      (v.is(ObjType::Str) || v.is(ObjType::Range) || v.is(ObjType::Dict) ||
                       v.is(ObjType::Set) || v.is(ObjType::Iterator) || v.is(ObjType::Bytes))))
                    type_error("must assign iterable to extended slice");
                src = collect(null_context(), v);
            }
            ListObj* l = list_unshare(obj);
            int64_t start, stop, step;
            int64_t n =
                slice_indices(key.as<SliceObj>(), int64_t(l->items.size()), start, stop, step);
            if (step == 1) {
                if (stop < start) stop = start;
                auto b = l->items.begin() + start;
                l->items.erase(b, l->items.begin() + stop);
                l->items.insert(l->items.begin() + start, std::make_move_iterator(src.begin()),
                                std::make_move_iterator(src.end()));
                return;
            }
            if (int64_t(src.size()) != n)
                value_error("attempt to assign sequence of size " + std::to_string(src.size()) +
                            " to extended slice of size " + std::to_string(n));
            for (int64_t k = 0, i = start; k < n; ++k, i += step)
                l->items[size_t(i)] = std::move(src[size_t(k)]);
            return;
        }
        int64_t n = int64_t(obj.as<ListObj>()->items.size());
        int64_t i = norm_index(index_arg(key, "list"), n);
        if (i < 0) raise(ErrorKind::IndexError, "list assignment index out of range");
        ListObj* l = list_unshare(obj);
        l->items[size_t(i)] = std::move(v);
        return;
    }
    if (obj.is(ObjType::Dict)) {
        value_hash(key);  // raise for unhashable keys before copying
        DictObj* d = dict_unshare(obj);
        d->table.insert(key, std::move(v));
        return;
    }
    type_error("'" + type_name(obj) + "' object does not support item assignment");
}

void del_item(Value& obj, const Value& key) {
    if (obj.is(ObjType::List)) {
        if (key.is(ObjType::Slice)) {
            ListObj* l = list_unshare(obj);
            int64_t start, stop, step;
            int64_t n =
                slice_indices(key.as<SliceObj>(), int64_t(l->items.size()), start, stop, step);
            if (n == 0) return;
            if (step < 0) {  // normalise to an ascending walk
                start = start + (n - 1) * step;
                step = -step;
            }
            std::vector<Value> kept;
            kept.reserve(l->items.size() - size_t(n));
            for (int64_t i = 0; i < int64_t(l->items.size()); ++i) {
                bool del = i >= start && (i - start) % step == 0 && (i - start) / step < n;
                if (!del) kept.push_back(std::move(l->items[size_t(i)]));
            }
            l->items = std::move(kept);
            return;
        }
        int64_t n = int64_t(obj.as<ListObj>()->items.size());
        int64_t i = norm_index(index_arg(key, "list"), n);
        if (i < 0) raise(ErrorKind::IndexError, "list assignment index out of range");
        ListObj* l = list_unshare(obj);
        l->items.erase(l->items.begin() + i);
        return;
    }
    if (obj.is(ObjType::Dict)) {
        if (obj.as<DictObj>()->table.find(key) < 0) key_error(key);
        DictObj* d = dict_unshare(obj);
        d->table.erase(key);
        return;
    }
    type_error("'" + type_name(obj) + "' object doesn't support item deletion");
}

bool contains(const Value& c, const Value& item) {
    if (!c.is_obj()) type_error("argument of type '" + type_name(c) + "' is not iterable");
    Obj* o = c.as_obj();
    switch (o->type) {
        case ObjType::Str:
            if (!item.is(ObjType::Str))
                type_error("'in <string>' requires string as left operand, not " + type_name(item));
            return static_cast<StrObj*>(o)->data.find(sv(item)) != std::string::npos;
        case ObjType::Bytes: {
            auto& d = static_cast<BytesObj*>(o)->data;
            if (is_intlike(item)) {
                int64_t b = int_of(item);
                if (b < 0 || b > 255) value_error("byte must be in range(0, 256)");
                return d.find(char(b)) != std::string::npos;
            }
            if (item.is(ObjType::Bytes))
                return d.find(item.as<BytesObj>()->data) != std::string::npos;
            type_error("a bytes-like object is required, not '" + type_name(item) + "'");
        }
        case ObjType::List:
        case ObjType::Tuple: {
            auto& items = o->type == ObjType::List ? static_cast<ListObj*>(o)->items
                                                   : static_cast<TupleObj*>(o)->items;
            for (auto& x : items)
                if (values_equal(x, item)) return true;
            return false;
        }
        case ObjType::Dict:
            return static_cast<DictObj*>(o)->table.find(item) >= 0;
        case ObjType::Set:
            return static_cast<SetObj*>(o)->table.find(item) >= 0;
        case ObjType::Range: {
            auto* r = static_cast<RangeObj*>(o);
            int64_t x;
            if (is_intlike(item))
                x = int_of(item);
            else if (item.is_float() && std::floor(item.as_float()) == item.as_float() &&
                     std::fabs(item.as_float()) < 9.2e18)
                x = int64_t(item.as_float());
            else
                return false;
            if (r->step > 0 ? (x < r->start || x >= r->stop) : (x > r->start || x <= r->stop))
                return false;
            // The distance from start, in unsigned arithmetic: it can pass 2**63 - 1.
            uint64_t dist = r->step > 0 ? uint64_t(x) - uint64_t(r->start) : uint64_t(r->start) - uint64_t(x);
            uint64_t step = r->step > 0 ? uint64_t(r->step) : uint64_t(0) - uint64_t(r->step);
            return dist % step == 0;
        }
        case ObjType::Iterator: {
            Value x;
            while (iter_next(null_context(), static_cast<IteratorObj*>(o), x))
                if (values_equal(x, item)) return true;
            return false;
        }
        default:
            break;
    }
    type_error("argument of type '" + type_name(c) + "' is not iterable");
}

// ---------------------------------------------------------------------------
// Iteration

Value iter_begin(const Value& v) {
    if (v.is_obj()) {
        Obj* o = v.as_obj();
        switch (o->type) {
            case ObjType::List:
                return make_iterator(IterKind::List, v);
            case ObjType::Tuple:
                return make_iterator(IterKind::Tuple, v);
            case ObjType::Str:
                return make_iterator(IterKind::Str, v);
            case ObjType::Bytes:
                return make_iterator(IterKind::Bytes, v);
            case ObjType::Dict:
                return make_iterator(IterKind::DictKeys, v);
            case ObjType::Set:
                return make_iterator(IterKind::Set, v);
            case ObjType::Range: {
                auto* r = static_cast<RangeObj*>(o);
                // Iterating does not need the length as an int: a range too long for len()
                // counts down from 2**63 - 1, more items than any loop reaches.
                uint64_t n = range_len_unsigned(r);
                return make_iterator(IterKind::Range, Value(), Value(), r->start,
                                     int64_t(std::min<uint64_t>(n, INT64_MAX)), r->step);
            }
            case ObjType::Iterator:
                return v;
            case ObjType::Opaque:
                // Host objects iterate through their class hook (channels: until closed and
                // drained).
                if (static_cast<OpaqueObj*>(o)->cls->iter_next)
                    return make_iterator(IterKind::Generic, v);
                break;
            default:
                break;
        }
    }
    type_error("'" + type_name(v) + "' object is not iterable");
}

bool iter_next(CallContext& cx, IteratorObj* it, Value& out) {
    switch (it->kind) {
        case IterKind::List: {
            auto& items = it->source.as<ListObj>()->items;
            if (size_t(it->pos) >= items.size()) return false;
            out = items[size_t(it->pos++)];
            return true;
        }
        case IterKind::Tuple: {
            auto& items = it->source.as<TupleObj>()->items;
            if (size_t(it->pos) >= items.size()) return false;
            out = items[size_t(it->pos++)];
            return true;
        }
        case IterKind::Str: {
            auto* s = it->source.as<StrObj>();
            size_t b = size_t(it->pos);
            if (b >= s->data.size()) return false;
            unsigned char c = (unsigned char)s->data[b];
            if (c < 0x80) {
                out = ascii_char(c);
                it->pos += 1;
            } else {
                size_t n = size_t(utf8_seq_len(c));
                out = make_str(s->data.substr(b, n));
                it->pos += int64_t(n);
            }
            return true;
        }
        case IterKind::Bytes: {
            auto& d = it->source.as<BytesObj>()->data;
            if (size_t(it->pos) >= d.size()) return false;
            out = Value::integer((unsigned char)d[size_t(it->pos++)]);
            return true;
        }
        case IterKind::Range: {
            // pos = next value, end = remaining count.
            if (it->end <= 0) return false;
            out = Value::integer(it->pos);
            --it->end;
            if (it->end > 0) it->pos += it->step;
            return true;
        }
        case IterKind::DictKeys:
        case IterKind::DictValues:
        case IterKind::DictItems:
        case IterKind::Set: {
            const OrderedTable& t = it->kind == IterKind::Set ? it->source.as<SetObj>()->table
                                                              : it->source.as<DictObj>()->table;
            size_t i = size_t(it->pos);
            while (i < t.end_index() && !t.entry(i).live)
                ++i;
            if (i >= t.end_index()) {
                it->pos = int64_t(i);
                return false;
            }
            auto& e = t.entry(i);
            it->pos = int64_t(i + 1);
            if (it->kind == IterKind::DictValues)
                out = e.value;
            else if (it->kind == IterKind::DictItems)
                out = make_tuple({e.key, e.value});
            else
                out = e.key;
            return true;
        }
        case IterKind::Enumerate: {
            Value x;
            if (!iter_next(cx, it->source.as<IteratorObj>(), x)) return false;
            // `end` flags a counter that passed INT64_MAX: only an item that
            // would need it raises.
            if (it->end) raise(ErrorKind::OverflowError, "integer overflow");
            out = make_tuple({Value::integer(it->pos), std::move(x)});
            if (__builtin_add_overflow(it->pos, 1, &it->pos)) it->end = 1;
            return true;
        }
        case IterKind::Zip: {
            auto& its = it->source.as<TupleObj>()->items;
            if (its.empty() || it->pos < 0) return false;
            std::vector<Value> row;
            row.reserve(its.size());
            for (size_t k = 0; k < its.size(); ++k) {
                Value x;
                if (!iter_next(cx, its[k].as<IteratorObj>(), x)) {
                    if (it->step == 2) {  // strict
                        if (k > 0)
                            value_error("zip() argument " + std::to_string(k + 1) +
                                        " is shorter than argument" +
                                        (k == 1 ? std::string(" 1") : "s 1-" + std::to_string(k)));
                        for (size_t m = 1; m < its.size(); ++m) {
                            Value y;
                            if (iter_next(cx, its[m].as<IteratorObj>(), y))
                                value_error(
                                    "zip() argument " + std::to_string(m + 1) +
                                    " is longer than argument" +
                                    (m == 1 ? std::string(" 1") : "s 1-" + std::to_string(m)));
                        }
                    }
                    it->pos = -1;
                    return false;
                }
                row.push_back(std::move(x));
            }
            out = make_tuple(std::move(row));
            return true;
        }
        case IterKind::Map: {
            auto& its = it->source.as<TupleObj>()->items;
            std::vector<Value> args;
            args.reserve(its.size());
            for (auto& sub : its) {
                Value x;
                if (!iter_next(cx, sub.as<IteratorObj>(), x)) return false;
                args.push_back(std::move(x));
            }
            out = cx.call(it->func, args);
            return true;
        }
        case IterKind::Filter: {
            Value x;
            while (iter_next(cx, it->source.as<IteratorObj>(), x)) {
                bool keep;
                if (it->func.is_none())
                    keep = truthy(x);
                else {
                    Value arg[1] = {x};
                    keep = truthy(cx.call(it->func, arg));
                }
                if (keep) {
                    out = std::move(x);
                    return true;
                }
            }
            return false;
        }
        case IterKind::Reversed: {
            // source: list or tuple; pos counts down.
            if (it->pos < 0) return false;
            auto& items = it->source.is(ObjType::List) ? it->source.as<ListObj>()->items
                                                       : it->source.as<TupleObj>()->items;
            if (size_t(it->pos) >= items.size()) {
                it->pos = -1;
                return false;
            }
            out = items[size_t(it->pos--)];
            return true;
        }
        case IterKind::Generic:
            if (it->source.is(ObjType::Opaque)) {
                auto* h = it->source.as<OpaqueObj>();
                if (h->cls->iter_next) {
                    cx.note_may_wait();  // `for v in ch`
                    return h->cls->iter_next(h, cx, out);
                }
            }
            break;
    }
    type_error("'" + type_name(Value::borrow(it)) + "' object is not an iterator");
}

Value (*promise_resolver)(const Value&) = nullptr;

void poll_cancellation() {
    // An embedding host's memory limit too: a native filling a container grows it here.
    if (CallBudget* b = current_budget()) b->check_memory();
    rt::check_cancelled();
}

std::vector<Value> collect(CallContext& cx, const Value& v) {
    if (v.is(ObjType::List)) return v.as<ListObj>()->items;
    if (v.is(ObjType::Tuple)) return v.as<TupleObj>()->items;
    std::vector<Value> out;
    if (v.is(ObjType::Dict) || v.is(ObjType::Set)) {
        const OrderedTable& t = v.is(ObjType::Set) ? v.as<SetObj>()->table : v.as<DictObj>()->table;
        out.reserve(t.size());
        for (size_t i = 0; i < t.end_index(); ++i)
            if (t.entry(i).live) out.push_back(t.entry(i).key);
        return out;
    }
    if (v.is(ObjType::Range)) {
        auto* r = v.as<RangeObj>();
        int64_t n = range_len(r);
        out.reserve(size_t(n));
        uint32_t polls = 0;
        for (int64_t k = 0, x = r->start; k < n; ++k, x += (k < n ? r->step : 0)) {
            out.push_back(Value::integer(x));
            poll_cancellation_every(polls);
        }
        return out;
    }
    Value it = iter_begin(v);
    Value x;
    uint32_t polls = 0;
    while (iter_next(cx, it.as<IteratorObj>(), x)) {
        out.push_back(std::move(x));
        poll_cancellation_every(polls);
    }
    return out;
}

}  // namespace weft
