// objects.cpp — object construction, string interning, the insertion-ordered
// hash table behind dict and set, copy-on-write, and struct lifetime.
//
// OrderedTable follows CPython 3.6+'s compact dict: a dense `entries_` array in
// insertion order plus a sparse power-of-two `index_` of int32 slots probed
// linearly from a mixed hash. Deleting marks the entry dead (order of the rest
// is kept); dead entries are dropped when the index is rebuilt, so repeated
// insert/delete cycles do not grow memory. Linear probing with a multiplicative
// mix keeps lookups cache friendly; the load factor stays <= 2/3.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "vm/lib_internal.h"

namespace weft {

// ---------------------------------------------------------------------------
// Strings

StrObj::StrObj(std::string s) : Obj(ObjType::Str), data(std::move(s)) {
    // ASCII check a word at a time: strings are built constantly (split, slices,
    // file contents), so this scan is on the hot path.
    const unsigned char* p = (const unsigned char*)data.data();
    size_t n = data.size(), i = 0;
    uint64_t acc = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; ++i)
        acc |= p[i];
    ascii = (acc & 0x8080808080808080ull) == 0;
    if (ascii) cp_len = int64_t(n);
}

namespace {
struct InternTable {
    std::mutex mu;
    std::unordered_map<std::string_view, StrObj*> map;
};
InternTable& intern_table() {
    static InternTable* t = new InternTable;  // never destroyed: interned strings are immortal
    return *t;
}
}  // namespace

StrObj* intern(std::string_view s) {
    auto& t = intern_table();
    std::lock_guard<std::mutex> lock(t.mu);
    auto it = t.map.find(s);
    if (it != t.map.end()) return it->second;
    auto* o = new StrObj(std::string(s));
    o->flags |= Obj::kImmortal;
    o->interned = true;
    t.map.emplace(std::string_view(o->data), o);
    return o;
}

namespace lib {
// One immortal string per ASCII character: s[i], iteration and chr() on ASCII
// text allocate nothing and take no lock.
Value ascii_char(unsigned char c) {
    static StrObj* const* table = [] {
        auto** t = new StrObj*[128];
        for (int i = 0; i < 128; ++i)
            t[i] = intern(std::string(1, char(i)));
        return t;
    }();
    return Value::adopt(table[c & 0x7F]);
}
}  // namespace lib

// ---------------------------------------------------------------------------
// Freeing
//
// Deleting a container runs the destructors of its items, which free the
// objects whose counts reach zero, and so on down: a chain nested a million
// deep would need a million native frames, far more than a fiber's stack. So
// nesting is counted per thread, and past kFreeNesting levels an object whose
// count reached zero is queued instead; the outermost obj_free frees the queue
// in a loop, each queued object with the full nesting budget again (CPython's
// "trashcan" does the same). Shallow values, the common case, are freed as
// before with no queue traffic.
//
// The state is per thread, not per task: no destructor waits or switches
// fibers, so one free runs start to end on one thread.

namespace {
constexpr int kFreeNesting = 48;  // levels freed by recursion (~100 bytes of stack each)

struct FreeQueue {
    int depth = 0;
    bool gone = false;  // the thread is exiting: free directly
    std::vector<Obj*> later;
    ~FreeQueue() { gone = true; }
};
thread_local FreeQueue t_free_queue;
}  // namespace

void obj_free(Obj* o) noexcept {
    FreeQueue& q = t_free_queue;
    if (q.depth >= kFreeNesting && !q.gone) {
        try {
            q.later.push_back(o);
            return;
        } catch (...) {
            // No memory for the queue: free this one by recursion (it may have been a leaf).
        }
    }
    ++q.depth;
    delete o;
    --q.depth;
    if (q.depth == 0) {
        while (!q.later.empty()) {
            Obj* next = q.later.back();
            q.later.pop_back();
            ++q.depth;
            delete next;
            --q.depth;
        }
    }
}

void unshare(Value& v) {
    if (!v.is_obj()) return;
    switch (v.as_obj()->type) {
        case ObjType::List:
            list_unshare(v);
            break;
        case ObjType::Dict:
            dict_unshare(v);
            break;
        case ObjType::Set:
            set_unshare(v);
            break;
        case ObjType::Struct:
            struct_unshare(v);
            break;
        default:
            break;
    }
}

Value make_str(std::string s) {
    return Value::adopt(new StrObj(std::move(s)));
}
Value make_str(std::string_view s) {
    return Value::adopt(new StrObj(std::string(s)));
}
Value make_str(const char* s) {
    return Value::adopt(new StrObj(std::string(s)));
}
Value make_bytes(std::string s) {
    return Value::adopt(new BytesObj(std::move(s)));
}
Value make_list(std::vector<Value> items) {
    return Value::adopt(new ListObj(std::move(items)));
}
Value make_tuple(std::vector<Value> items) {
    return Value::adopt(new TupleObj(std::move(items)));
}
Value make_dict() {
    return Value::adopt(new DictObj());
}
Value make_set() {
    return Value::adopt(new SetObj());
}
Value make_range(int64_t start, int64_t stop, int64_t step) {
    if (step == 0) lib::value_error("range() arg 3 must not be zero");
    return Value::adopt(new RangeObj(start, stop, step));
}
Value make_slice(Value lo, Value hi, Value step) {
    auto* s = new SliceObj();
    s->lower = std::move(lo);
    s->upper = std::move(hi);
    s->step = std::move(step);
    return Value::adopt(s);
}

namespace lib {
Value make_iterator(IterKind k, Value source, Value func, int64_t pos, int64_t end, int64_t step) {
    auto* it = new IteratorObj(k);
    it->source = std::move(source);
    it->func = std::move(func);
    it->pos = pos;
    it->end = end;
    it->step = step;
    return Value::adopt(it);
}
}  // namespace lib

// ---------------------------------------------------------------------------
// OrderedTable

namespace {
inline size_t mix(uint64_t h) {
    return size_t((h * 0x9E3779B97F4A7C15ull) >> 16 ^ h);
}

// Hash with the cached-string fast path inlined (dicts are mostly keyed by str).
inline uint64_t key_hash(const Value& k) {
    if (k.is(ObjType::Str)) {
        uint64_t h = lib::cached_load(k.as<StrObj>()->hash);
        if (h) return h;
    }
    return value_hash(k);
}

// Fast key equality: identical objects, interned-or-not strings, then the full protocol.
inline bool keys_equal(const Value& a, const Value& b) {
    if (a.is_obj() && b.is_obj()) {
        Obj* x = a.as_obj();
        Obj* y = b.as_obj();
        if (x == y) return true;
        if (x->type == ObjType::Str && y->type == ObjType::Str)
            return static_cast<StrObj*>(x)->data == static_cast<StrObj*>(y)->data;
    }
    return values_equal(a, b);
}
}  // namespace

// Keys are values, never promises: a promise used as a key is forced first.
int64_t OrderedTable::find(const Value& key) const {
    if (key.is(ObjType::Promise) && promise_resolver) return find(promise_resolver(key));
    if (live_count_ == 0) {
        value_hash(key);  // unhashable keys raise even on an empty table
        return -1;
    }
    uint64_t h = key_hash(key);
    size_t mask = index_.size() - 1;
    for (size_t i = mix(h) & mask;; i = (i + 1) & mask) {
        int32_t slot = index_[i];
        if (slot == -1) return -1;
        if (slot >= 0) {
            const HashEntry& e = entries_[slot];
            if (e.hash == h && keys_equal(e.key, key)) return slot;
        }
    }
}

bool OrderedTable::insert(const Value& key, Value value) {
    if (key.is(ObjType::Promise) && promise_resolver) return insert(promise_resolver(key), std::move(value));
    uint64_t h = key_hash(key);
    if (!index_.empty()) {
        size_t mask = index_.size() - 1;
        for (size_t i = mix(h) & mask;; i = (i + 1) & mask) {
            int32_t slot = index_[i];
            if (slot == -1) break;
            if (slot >= 0) {
                HashEntry& e = entries_[slot];
                if (e.hash == h && keys_equal(e.key, key)) {
                    e.value = std::move(value);
                    return false;
                }
            }
        }
    }
    // New key. Grow (and compact) when the index would pass 2/3 load, counting
    // deleted slots (they lengthen probes) and dead entries (they use memory).
    size_t used = std::max(entries_.size(), live_count_ + dead_slots_);
    if ((used + 1) * 3 > index_.size() * 2) rebuild(live_count_ + 1);
    size_t mask = index_.size() - 1;
    size_t i = mix(h) & mask;
    while (index_[i] >= 0)
        i = (i + 1) & mask;  // reuse -2 (deleted) slots too
    if (index_[i] == -2) --dead_slots_;
    index_[i] = int32_t(entries_.size());
    entries_.push_back(HashEntry{h, key, std::move(value), true});
    ++live_count_;
    return true;
}

bool OrderedTable::erase(const Value& key, Value* out) {
    if (key.is(ObjType::Promise) && promise_resolver) return erase(promise_resolver(key), out);
    uint64_t h = key_hash(key);
    if (live_count_ == 0) return false;
    size_t mask = index_.size() - 1;
    for (size_t i = mix(h) & mask;; i = (i + 1) & mask) {
        int32_t slot = index_[i];
        if (slot == -1) return false;
        if (slot >= 0) {
            HashEntry& e = entries_[slot];
            if (e.hash == h && keys_equal(e.key, key)) {
                if (out) *out = std::move(e.value);
                e.value = Value();
                e.key = Value();
                e.live = false;
                --live_count_;
                if (index_[(i + 1) & mask] == -1) {
                    // No probe chain runs through this slot: empty it, and any
                    // deleted slots just before it.
                    index_[i] = -1;
                    for (size_t j = (i - 1) & mask; index_[j] == -2; j = (j - 1) & mask) {
                        index_[j] = -1;
                        --dead_slots_;
                    }
                } else {
                    index_[i] = -2;
                    ++dead_slots_;
                }
                // Trailing dead entries can be dropped at once (keeps popitem O(1)).
                while (!entries_.empty() && !entries_.back().live)
                    entries_.pop_back();
                return true;
            }
        }
    }
}

void OrderedTable::clear() {
    entries_.clear();
    index_.clear();
    live_count_ = 0;
    dead_slots_ = 0;
}

void OrderedTable::rebuild(size_t min_capacity) {
    // Compact: keep live entries in order.
    if (live_count_ != entries_.size()) {
        size_t w = 0;
        for (size_t r = 0; r < entries_.size(); ++r) {
            if (!entries_[r].live) continue;
            if (w != r) entries_[w] = std::move(entries_[r]);
            ++w;
        }
        entries_.resize(w);
    }
    size_t cap = 8;
    while (cap * 2 < min_capacity * 3)
        cap <<= 1;
    // Leave room to grow: if the table is more than half full after compaction, double.
    if (min_capacity * 2 > cap) cap <<= 1;
    index_.assign(cap, -1);
    dead_slots_ = 0;
    size_t mask = cap - 1;
    for (size_t k = 0; k < entries_.size(); ++k) {
        size_t i = mix(entries_[k].hash) & mask;
        while (index_[i] != -1)
            i = (i + 1) & mask;
        index_[i] = int32_t(k);
    }
    entries_.reserve(cap * 2 / 3 + 1);
}

// ---------------------------------------------------------------------------
// Copy-on-write

ListObj* list_unshare(Value& v) {
    auto* l = v.as<ListObj>();
    if (obj_unique(l)) return obj_localize(l);
    auto* n = new ListObj(l->items);
    v = Value::adopt(n);
    return n;
}

DictObj* dict_unshare(Value& v) {
    auto* d = v.as<DictObj>();
    if (obj_unique(d)) return obj_localize(d);
    auto* n = new DictObj();
    n->table = d->table;
    v = Value::adopt(n);
    return n;
}

SetObj* set_unshare(Value& v) {
    auto* s = v.as<SetObj>();
    if (obj_unique(s)) return obj_localize(s);
    auto* n = new SetObj();
    n->table = s->table;
    v = Value::adopt(n);
    return n;
}

StructObj* struct_unshare(Value& v) {
    auto* s = v.as<StructObj>();
    // An actor's state is the actor's own: its handlers change it in place (vm/actors.h).
    if (s->type->actor_kind) return s;
    if (obj_unique(s)) return obj_localize(s);
    auto* n = new StructObj(*s);
    v = Value::adopt(n);
    return n;
}

// ---------------------------------------------------------------------------
// Structs

StructTypeObj::~StructTypeObj() {
    if (methods) obj_decref(methods);
    if (base) obj_decref(base);
}

StructObj::StructObj(StructTypeObj* t) : Obj(ObjType::Struct), type(t) {
    obj_incref(t);
    fields.resize(t->fields.size());
    if (t->is_error) error = new ErrorData();
}

StructObj::StructObj(const StructObj& other)
    : Obj(ObjType::Struct), type(other.type), fields(other.fields) {
    obj_incref(type);
    if (other.error) error = new ErrorData(*other.error);
}

StructObj::~StructObj() {
    delete error;
    obj_decref(type);
}

}  // namespace weft
