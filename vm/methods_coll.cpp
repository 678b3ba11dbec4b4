// methods_coll.cpp — methods of list, tuple, dict, set and range, and the
// method lookup (find_method) for every built-in type.
//
// Mutating methods (flagged `mutates`) are called with a uniquely owned
// receiver — the interpreter unshares it first — and change it in place; they
// still go through *_unshare, which is a single count test when the receiver is
// already unique, so a caller that forgets cannot break value semantics.
// dict.keys()/values()/items() return new lists (not views): Weft values never
// alias, so a live view would have nothing to observe, and a list is what the
// result is almost always used as. Method lookup is a per-type hash map built
// once on first use.
#include <algorithm>
#include <unordered_map>

#include "vm/lib_internal.h"

namespace weft {

using namespace lib;

extern const MethodInfo kStrMethods[];
extern const size_t kStrMethodCount;
extern const MethodInfo kBytesMethods[];
extern const size_t kBytesMethodCount;

namespace {

// ---------------------------------------------------------------------------
// list

Value l_append(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "append");
    check_args(a, "list.append", 1, 1);
    list_unshare(self)->items.push_back(a.pos[0]);
    return Value();
}

Value l_extend(CallContext& cx, Value& self, const CallArgs& a) {
    no_kwargs(a, "extend");
    check_args(a, "list.extend", 1, 1);
    if (!a.pos[0].is_obj() || a.pos[0].is(ObjType::Struct))
        type_error("'" + type_name(a.pos[0]) + "' object is not iterable");
    std::vector<Value> more = collect(cx, a.pos[0]);
    auto& items = list_unshare(self)->items;
    items.insert(items.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
    return Value();
}

Value l_insert(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "insert");
    check_args(a, "insert", 2, 2);
    int64_t i = int_arg(a.pos[0], "insert");
    auto& items = list_unshare(self)->items;
    int64_t n = int64_t(items.size());
    if (i < 0) i = std::max<int64_t>(0, i + n);
    if (i > n) i = n;
    items.insert(items.begin() + i, a.pos[1]);
    return Value();
}

Value l_pop(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "pop");
    check_args(a, "pop", 0, 1);
    auto& items = list_unshare(self)->items;
    if (items.empty()) raise(ErrorKind::IndexError, "pop from empty list");
    int64_t n = int64_t(items.size());
    int64_t i = a.pos.empty() ? n - 1 : int_arg(a.pos[0], "pop");
    if (i < 0) i += n;
    if (i < 0 || i >= n) raise(ErrorKind::IndexError, "pop index out of range");
    Value r = std::move(items[size_t(i)]);
    items.erase(items.begin() + i);
    return r;
}

Value l_remove(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "remove");
    check_args(a, "list.remove", 1, 1);
    auto& items = self.as<ListObj>()->items;
    for (size_t i = 0; i < items.size(); ++i) {
        if (values_equal(items[i], a.pos[0])) {
            auto& mut = list_unshare(self)->items;
            mut.erase(mut.begin() + int64_t(i));
            return Value();
        }
    }
    value_error("list.remove(x): x not in list");
}

Value seq_index(const std::vector<Value>& items, const CallArgs& a, const char* what) {
    no_kwargs(a, "index");
    check_args(a, "index", 1, 3);
    int64_t n = int64_t(items.size());
    int64_t st = 0, en = n;
    if (a.pos.size() > 1) {
        st = int_arg(a.pos[1], "index");
        if (st < 0) st = std::max<int64_t>(0, st + n);
    }
    if (a.pos.size() > 2) {
        en = int_arg(a.pos[2], "index");
        if (en < 0) en = std::max<int64_t>(0, en + n);
    }
    en = std::min(en, n);
    for (int64_t i = st; i < en; ++i)
        if (values_equal(items[size_t(i)], a.pos[0])) return Value::integer(i);
    if (std::string(what) == "tuple") value_error("tuple.index(x): x not in tuple");
    value_error(repr(a.pos[0]) + " is not in list");
}

Value seq_count(const std::vector<Value>& items, const CallArgs& a) {
    no_kwargs(a, "count");
    check_args(a, "count", 1, 1);
    int64_t c = 0;
    for (auto& x : items)
        if (values_equal(x, a.pos[0])) ++c;
    return Value::integer(c);
}

Value l_index(CallContext&, Value& self, const CallArgs& a) {
    return seq_index(self.as<ListObj>()->items, a, "list");
}
Value l_count(CallContext&, Value& self, const CallArgs& a) {
    return seq_count(self.as<ListObj>()->items, a);
}

Value l_sort(CallContext& cx, Value& self, const CallArgs& a) {
    if (!a.pos.empty()) type_error("sort() takes no positional arguments");
    allow_kwargs(a, "sort", {"key", "reverse"});
    const Value* key = a.find_kw("key");
    const Value* rev = a.find_kw("reverse");
    auto& items = list_unshare(self)->items;
    sort_values(cx, items, key, rev && truthy(*rev));
    return Value();
}

Value l_reverse(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "reverse", 0, 0);
    auto& items = list_unshare(self)->items;
    std::reverse(items.begin(), items.end());
    return Value();
}

Value l_copy(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "copy", 0, 0);
    return self;  // copy-on-write: sharing the storage is a copy
}

Value l_clear(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "clear", 0, 0);
    if (obj_unique(self.as_obj()))
        self.as<ListObj>()->items.clear();
    else
        self = make_list();
    return Value();
}

// ---------------------------------------------------------------------------
// tuple, range

Value t_index(CallContext&, Value& self, const CallArgs& a) {
    return seq_index(self.as<TupleObj>()->items, a, "tuple");
}
Value t_count(CallContext&, Value& self, const CallArgs& a) {
    return seq_count(self.as<TupleObj>()->items, a);
}

Value r_index(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "index");
    check_args(a, "index", 1, 1);
    if (contains(self, a.pos[0])) {
        auto* r = self.as<RangeObj>();
        return Value::integer(
            (int_of(is_intlike(a.pos[0]) ? a.pos[0]
                                         : Value::integer(int64_t(a.pos[0].as_float()))) -
             r->start) /
            r->step);
    }
    value_error(repr(a.pos[0]) + " is not in range");
}

Value r_count(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "count");
    check_args(a, "count", 1, 1);
    return Value::integer(contains(self, a.pos[0]) ? 1 : 0);
}

// ---------------------------------------------------------------------------
// dict

[[noreturn]] void key_error(const Value& key) {
    throw WeftError(ErrorKind::KeyError, repr(key));
}

Value d_get(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "get");
    check_args(a, "get", 1, 2);
    auto& t = self.as<DictObj>()->table;
    int64_t i = t.find(a.pos[0]);
    if (i >= 0) return t.entry(size_t(i)).value;
    return a.pos.size() == 2 ? a.pos[1] : Value();
}

template <int kWhat>  // 0 keys, 1 values, 2 items
Value d_view(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, kWhat == 0 ? "keys" : kWhat == 1 ? "values" : "items", 0, 0);
    auto& t = self.as<DictObj>()->table;
    std::vector<Value> out;
    out.reserve(t.size());
    for (size_t i = 0; i < t.end_index(); ++i) {
        auto& e = t.entry(i);
        if (!e.live) continue;
        if (kWhat == 0)
            out.push_back(e.key);
        else if (kWhat == 1)
            out.push_back(e.value);
        else
            out.push_back(make_tuple({e.key, e.value}));
    }
    return make_list(std::move(out));
}

Value d_pop(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "pop");
    check_args(a, "pop", 1, 2);
    if (self.as<DictObj>()->table.find(a.pos[0]) < 0) {
        if (a.pos.size() == 2) return a.pos[1];
        key_error(a.pos[0]);
    }
    Value out;
    dict_unshare(self)->table.erase(a.pos[0], &out);
    return out;
}

Value d_popitem(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "popitem", 0, 0);
    auto& t = dict_unshare(self)->table;
    if (t.size() == 0) throw WeftError(ErrorKind::KeyError, "'popitem(): dictionary is empty'");
    size_t i = t.end_index();
    while (i > 0 && !t.entry(i - 1).live)
        --i;
    Value k = t.entry(i - 1).key;
    Value v;
    t.erase(k, &v);
    return make_tuple({std::move(k), std::move(v)});
}

Value d_setdefault(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "setdefault");
    check_args(a, "setdefault", 1, 2);
    int64_t i = self.as<DictObj>()->table.find(a.pos[0]);
    if (i >= 0) return self.as<DictObj>()->table.entry(size_t(i)).value;
    Value d = a.pos.size() == 2 ? a.pos[1] : Value();
    dict_unshare(self)->table.insert(a.pos[0], d);
    return d;
}

void dict_update_from(CallContext& cx, OrderedTable& t, const Value& src) {
    if (src.is(ObjType::Dict)) {
        auto& s = src.as<DictObj>()->table;
        for (size_t i = 0; i < s.end_index(); ++i)
            if (s.entry(i).live) t.insert(s.entry(i).key, s.entry(i).value);
        return;
    }
    Value fake_type = builtin_type_value(BuiltinType::Dict);
    Value args[1] = {src};
    Value d = call_type(cx, fake_type.as<TypeObj>(), CallArgs{std::span<const Value>(args, 1), {}});
    auto& s = d.as<DictObj>()->table;
    for (size_t i = 0; i < s.end_index(); ++i)
        if (s.entry(i).live) t.insert(s.entry(i).key, s.entry(i).value);
}

Value d_update(CallContext& cx, Value& self, const CallArgs& a) {
    check_args(a, "update", 0, 1);
    auto& t = dict_unshare(self)->table;
    if (!a.pos.empty()) dict_update_from(cx, t, a.pos[0]);
    for (auto& k : a.kw)
        t.insert(make_str(k.name), k.value);
    return Value();
}

Value d_copy(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "copy", 0, 0);
    return self;
}

Value d_clear(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "clear", 0, 0);
    if (obj_unique(self.as_obj()))
        self.as<DictObj>()->table.clear();
    else
        self = make_dict();
    return Value();
}

// ---------------------------------------------------------------------------
// set

// The argument as a set table (a temporary for non-set iterables).
struct SetArg {
    Value holder;
    const OrderedTable* t;
};
SetArg as_set(CallContext& cx, const Value& v) {
    if (v.is(ObjType::Set)) return {v, &v.as<SetObj>()->table};
    if (v.is(ObjType::Dict)) return {v, &v.as<DictObj>()->table};
    if (!v.is_obj() || v.is(ObjType::Struct))
        type_error("'" + type_name(v) + "' object is not iterable");
    Value s = make_set();
    for (auto& x : collect(cx, v))
        s.as<SetObj>()->table.insert(x, Value());
    const OrderedTable* t = &s.as<SetObj>()->table;
    return {std::move(s), t};
}

template <class F>
void each_key(const OrderedTable& t, F f) {
    for (size_t i = 0; i < t.end_index(); ++i)
        if (t.entry(i).live) f(t.entry(i).key);
}

Value s_add(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "add");
    check_args(a, "set.add", 1, 1);
    value_hash(a.pos[0]);
    set_unshare(self)->table.insert(a.pos[0], Value());
    return Value();
}

Value s_discard(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "discard");
    check_args(a, "set.discard", 1, 1);
    if (self.as<SetObj>()->table.find(a.pos[0]) >= 0) set_unshare(self)->table.erase(a.pos[0]);
    return Value();
}

Value s_remove(CallContext&, Value& self, const CallArgs& a) {
    no_kwargs(a, "remove");
    check_args(a, "set.remove", 1, 1);
    if (self.as<SetObj>()->table.find(a.pos[0]) < 0) key_error(a.pos[0]);
    set_unshare(self)->table.erase(a.pos[0]);
    return Value();
}

Value s_pop(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "pop", 0, 0);
    auto& t = set_unshare(self)->table;
    if (t.size() == 0) throw WeftError(ErrorKind::KeyError, "'pop from an empty set'");
    size_t i = 0;
    while (!t.entry(i).live)
        ++i;
    Value k = t.entry(i).key;
    t.erase(k);
    return k;
}

Value s_clear(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "clear", 0, 0);
    if (obj_unique(self.as_obj()))
        self.as<SetObj>()->table.clear();
    else
        self = make_set();
    return Value();
}

Value s_copy(CallContext&, Value& self, const CallArgs& a) {
    check_args(a, "copy", 0, 0);
    return self;
}

Value s_union(CallContext& cx, Value& self, const CallArgs& a) {
    no_kwargs(a, "union");
    Value r = make_set();
    auto& t = r.as<SetObj>()->table;
    t = self.as<SetObj>()->table;
    for (auto& o : a.pos) {
        SetArg s = as_set(cx, o);
        each_key(*s.t, [&](const Value& k) { t.insert(k, Value()); });
    }
    return r;
}

Value s_intersection(CallContext& cx, Value& self, const CallArgs& a) {
    no_kwargs(a, "intersection");
    Value cur = self;
    for (auto& o : a.pos) {
        SetArg s = as_set(cx, o);
        Value r = make_set();
        auto& t = r.as<SetObj>()->table;
        each_key(cur.as<SetObj>()->table, [&](const Value& k) {
            if (s.t->find(k) >= 0) t.insert(k, Value());
        });
        cur = std::move(r);
    }
    if (a.pos.empty()) {
        Value r = make_set();
        r.as<SetObj>()->table = self.as<SetObj>()->table;
        return r;
    }
    return cur;
}

Value s_difference(CallContext& cx, Value& self, const CallArgs& a) {
    no_kwargs(a, "difference");
    Value r = make_set();
    auto& t = r.as<SetObj>()->table;
    std::vector<SetArg> others;
    for (auto& o : a.pos)
        others.push_back(as_set(cx, o));
    each_key(self.as<SetObj>()->table, [&](const Value& k) {
        for (auto& s : others)
            if (s.t->find(k) >= 0) return;
        t.insert(k, Value());
    });
    return r;
}

Value s_symdiff(CallContext& cx, Value& self, const CallArgs& a) {
    no_kwargs(a, "symmetric_difference");
    check_args(a, "symmetric_difference", 1, 1);
    SetArg s = as_set(cx, a.pos[0]);
    Value r = make_set();
    auto& t = r.as<SetObj>()->table;
    auto& mine = self.as<SetObj>()->table;
    each_key(mine, [&](const Value& k) {
        if (s.t->find(k) < 0) t.insert(k, Value());
    });
    each_key(*s.t, [&](const Value& k) {
        if (mine.find(k) < 0) t.insert(k, Value());
    });
    return r;
}

bool subset_of(const OrderedTable& a, const OrderedTable& b) {
    if (a.size() > b.size()) return false;
    for (size_t i = 0; i < a.end_index(); ++i)
        if (a.entry(i).live && b.find(a.entry(i).key) < 0) return false;
    return true;
}

Value s_issubset(CallContext& cx, Value& self, const CallArgs& a) {
    check_args(a, "issubset", 1, 1);
    SetArg s = as_set(cx, a.pos[0]);
    return vbool(subset_of(self.as<SetObj>()->table, *s.t));
}

Value s_issuperset(CallContext& cx, Value& self, const CallArgs& a) {
    check_args(a, "issuperset", 1, 1);
    SetArg s = as_set(cx, a.pos[0]);
    return vbool(subset_of(*s.t, self.as<SetObj>()->table));
}

Value s_isdisjoint(CallContext& cx, Value& self, const CallArgs& a) {
    check_args(a, "isdisjoint", 1, 1);
    SetArg s = as_set(cx, a.pos[0]);
    auto& mine = self.as<SetObj>()->table;
    for (size_t i = 0; i < mine.end_index(); ++i)
        if (mine.entry(i).live && s.t->find(mine.entry(i).key) >= 0) return vbool(false);
    return vbool(true);
}

Value s_update(CallContext& cx, Value& self, const CallArgs& a) {
    no_kwargs(a, "update");
    std::vector<SetArg> others;
    for (auto& o : a.pos)
        others.push_back(as_set(cx, o));
    auto& t = set_unshare(self)->table;
    for (auto& s : others)
        each_key(*s.t, [&](const Value& k) { t.insert(k, Value()); });
    return Value();
}

Value s_intersection_update(CallContext& cx, Value& self, const CallArgs& a) {
    Value r = s_intersection(cx, self, a);
    set_unshare(self)->table = std::move(r.as<SetObj>()->table);
    return Value();
}

Value s_difference_update(CallContext& cx, Value& self, const CallArgs& a) {
    Value r = s_difference(cx, self, a);
    set_unshare(self)->table = std::move(r.as<SetObj>()->table);
    return Value();
}

Value s_symdiff_update(CallContext& cx, Value& self, const CallArgs& a) {
    Value r = s_symdiff(cx, self, a);
    set_unshare(self)->table = std::move(r.as<SetObj>()->table);
    return Value();
}

const MethodInfo kListMethods[] = {
    {"append", l_append, true}, {"extend", l_extend, true}, {"insert", l_insert, true},
    {"pop", l_pop, true},       {"remove", l_remove, true}, {"index", l_index, false},
    {"count", l_count, false},  {"sort", l_sort, true, "key reverse"},     {"reverse", l_reverse, true},
    {"copy", l_copy, false},    {"clear", l_clear, true},
};

const MethodInfo kTupleMethods[] = {{"index", t_index, false}, {"count", t_count, false}};
const MethodInfo kRangeMethods[] = {{"index", r_index, false}, {"count", r_count, false}};

const MethodInfo kDictMethods[] = {
    {"get", d_get, false},
    {"keys", d_view<0>, false},
    {"values", d_view<1>, false},
    {"items", d_view<2>, false},
    {"pop", d_pop, true},
    {"popitem", d_popitem, true},
    {"setdefault", d_setdefault, true},
    {"update", d_update, true, kAnyKeywords},  // the pairs to set
    {"copy", d_copy, false},
    {"clear", d_clear, true},
};

const MethodInfo kSetMethods[] = {
    {"add", s_add, true},
    {"discard", s_discard, true},
    {"remove", s_remove, true},
    {"pop", s_pop, true},
    {"clear", s_clear, true},
    {"copy", s_copy, false},
    {"union", s_union, false},
    {"intersection", s_intersection, false},
    {"difference", s_difference, false},
    {"symmetric_difference", s_symdiff, false},
    {"issubset", s_issubset, false},
    {"issuperset", s_issuperset, false},
    {"isdisjoint", s_isdisjoint, false},
    {"update", s_update, true},
    {"intersection_update", s_intersection_update, true},
    {"difference_update", s_difference_update, true},
    {"symmetric_difference_update", s_symdiff_update, true},
};

using MethodMap = std::unordered_map<std::string_view, const MethodInfo*>;

// Method lookup for one built-in type. The interpreter looks methods up by the
// interned name of the call site, so the name's bytes live at a fixed address:
// a flat table keyed by that address answers with one multiply and a pointer
// compare. Any other spelling of the name (not interned) falls back to hashing
// the text.
class MethodTable {
  public:
    MethodTable(const MethodInfo* tab, size_t n) {
        by_name_.reserve(n * 2);
        for (size_t i = 0; i < n; ++i) {
            by_name_.emplace(tab[i].name, &tab[i]);
            const std::string& interned = intern(tab[i].name)->data;
            size_t k = slot(interned.data());
            while (keys_[k])
                k = (k + 1) & (kSlots - 1);
            keys_[k] = interned.data();
            sizes_[k] = interned.size();
            vals_[k] = &tab[i];
        }
    }
    const MethodInfo* find(std::string_view name) const {
        for (size_t k = slot(name.data()); keys_[k]; k = (k + 1) & (kSlots - 1))
            if (keys_[k] == name.data() && sizes_[k] == name.size()) return vals_[k];
        auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : it->second;
    }

  private:
    static constexpr size_t kSlots = 128;  // > 2x the largest table (str: 44 methods)
    static size_t slot(const char* p) {
        return size_t((uintptr_t(p) * 0x9E3779B97F4A7C15ull) >> 57);
    }
    const char* keys_[kSlots] = {};
    size_t sizes_[kSlots] = {};
    const MethodInfo* vals_[kSlots] = {};
    MethodMap by_name_;
};

#define WEFT_TABLE(t) MethodTable(t, sizeof(t) / sizeof(t[0]))

}  // namespace

const MethodInfo* find_method(const Value& receiver, std::string_view name) {
    if (!receiver.is_obj()) return nullptr;
    switch (receiver.as_obj()->type) {
        case ObjType::Str: {
            static const MethodTable m(kStrMethods, kStrMethodCount);
            return m.find(name);
        }
        case ObjType::Bytes: {
            static const MethodTable m(kBytesMethods, kBytesMethodCount);
            return m.find(name);
        }
        case ObjType::List: {
            static const MethodTable m = WEFT_TABLE(kListMethods);
            return m.find(name);
        }
        case ObjType::Tuple: {
            static const MethodTable m = WEFT_TABLE(kTupleMethods);
            return m.find(name);
        }
        case ObjType::Dict: {
            static const MethodTable m = WEFT_TABLE(kDictMethods);
            return m.find(name);
        }
        case ObjType::Set: {
            static const MethodTable m = WEFT_TABLE(kSetMethods);
            return m.find(name);
        }
        case ObjType::Range: {
            static const MethodTable m = WEFT_TABLE(kRangeMethods);
            return m.find(name);
        }
        default:
            return nullptr;
    }
}

std::vector<std::string> method_names(const Value& receiver) {
    std::span<const MethodInfo> tab;
    if (receiver.is_obj()) {
        switch (receiver.as_obj()->type) {
            case ObjType::Str: tab = {kStrMethods, kStrMethodCount}; break;
            case ObjType::Bytes: tab = {kBytesMethods, kBytesMethodCount}; break;
            case ObjType::List: tab = kListMethods; break;
            case ObjType::Tuple: tab = kTupleMethods; break;
            case ObjType::Dict: tab = kDictMethods; break;
            case ObjType::Set: tab = kSetMethods; break;
            case ObjType::Range: tab = kRangeMethods; break;
            case ObjType::Opaque: {  // a table ending in a null name, or none
                const MethodInfo* first = receiver.as<OpaqueObj>()->cls->methods;
                const MethodInfo* end = first;
                while (end && end->name) ++end;
                tab = {first, size_t(end - first)};
                break;
            }
            default: break;
        }
    }
    std::vector<std::string> out;
    for (auto& m : tab) out.emplace_back(m.name);
    std::sort(out.begin(), out.end());
    return out;
}

Value call_method(CallContext& cx, Value& self, std::string_view name, const CallArgs& args) {
    const MethodInfo* m = find_method(self, name);
    if (!m)
        raise(ErrorKind::AttributeError,
              "'" + type_name(self) + "' object has no attribute '" + std::string(name) + "'");
    check_kwargs(m->kwargs, m->name, args.kw);
    if (m->mutates) unshare(self);
    return m->fn(cx, self, args);
}

}  // namespace weft
