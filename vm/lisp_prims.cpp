// lisp_prims.cpp — the keyword type, the Lisp printer and the natives `__lisp_*` that lowered
// `.wlisp` code calls (see lisp_prims.h; the rest of the primitives are Weft functions of the
// prelude, compiler/lisp/prelude.cpp).
//
// These natives are the ones on hot paths (truthiness, `=`, `map-get`, keyword literals) or
// the ones that need the object model (printing); they only compute, so they are marked so
// for the scheduler's quick-call prediction.
#include "vm/lisp_prims.h"

#include "compiler/lisp/lower.h"

#include <memory>
#include <mutex>
#include <unordered_map>

#include "vm/collections.h"
#include "vm/function.h"
#include "vm/interp.h"
#include "vm/native.h"

namespace weft {

namespace {

struct KeywordObj : OpaqueObj {
    std::string name;
    KeywordObj(const OpaqueClass* c, std::string n) : OpaqueObj(c), name(std::move(n)) { flags = kImmortal; }
};

std::string keyword_repr(const OpaqueObj* self) { return ":" + static_cast<const KeywordObj*>(self)->name; }

bool keyword_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    if (name != "name") return false;
    out = make_str(static_cast<const KeywordObj*>(self)->name);
    return true;
}

const OpaqueClass kKeywordClass{"keyword", nullptr, keyword_attr, keyword_repr};

}  // namespace

Value make_keyword(std::string_view name) {
    // Interned for the life of the process: identity is equality (the table is never freed,
    // like the interned strings of vm/objects.cpp).
    static std::mutex mu;
    static auto* table = new std::unordered_map<std::string, KeywordObj*>();
    std::lock_guard<std::mutex> g(mu);
    auto it = table->find(std::string(name));
    if (it != table->end()) return Value::borrow(it->second);
    auto* k = new KeywordObj(&kKeywordClass, std::string(name));
    table->emplace(k->name, k);
    return Value::borrow(k);
}

bool is_keyword(const Value& v) { return v.is(ObjType::Opaque) && v.as<OpaqueObj>()->cls == &kKeywordClass; }

const std::string& keyword_name(const Value& v) { return static_cast<const KeywordObj*>(v.as<OpaqueObj>())->name; }

namespace {

void show(std::string& out, const Value& v0, bool readable, int depth);

void show_seq(std::string& out, const std::vector<Value>& items, int depth) {
    check_nesting(depth, "printing");
    out += '(';
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ' ';
        show(out, items[i], true, depth + 1);
    }
    out += ')';
}

std::string function_name(const Value& v) {
    if (v.is(ObjType::Function)) {
        const std::string& n = v.as<FunctionObj>()->proto->chunk->name;
        // A primitive written in the prelude prints under its Lisp name.
        if (v.as<FunctionObj>()->module && v.as<FunctionObj>()->module->name == "__lisp__") {
            std::string lisp = lisp::primitive_name(n);
            if (!lisp.empty()) return lisp;
        }
        return n;
    }
    if (v.is(ObjType::Native)) return v.as<NativeObj>()->name;
    if (v.is(ObjType::BoundMethod)) return function_name(v.as<BoundMethodObj>()->func);
    return "?";
}

void show(std::string& out, const Value& v0, bool readable, int depth) {
    Value v = v0;
    resolve_if_promise(v);
    switch (v.tag()) {
        case Tag::None: out += "nil"; return;
        case Tag::Bool: out += v.as_bool() ? "#t" : "#f"; return;
        case Tag::Int:
        case Tag::Float: append_repr(out, v); return;
        case Tag::Object: break;
    }
    Obj* o = v.as_obj();
    switch (o->type) {
        case ObjType::Str: {
            const std::string& s = v.as<StrObj>()->data;
            if (!readable) {
                out += s;
                return;
            }
            out += '"';
            for (char c : s) {
                switch (c) {
                    case '"': out += "\\\""; break;
                    case '\\': out += "\\\\"; break;
                    case '\n': out += "\\n"; break;
                    case '\t': out += "\\t"; break;
                    case '\r': out += "\\r"; break;
                    case '\0': out += "\\0"; break;
                    default: out += c;
                }
            }
            out += '"';
            return;
        }
        case ObjType::List: show_seq(out, v.as<ListObj>()->items, depth); return;
        case ObjType::Tuple: show_seq(out, v.as<TupleObj>()->items, depth); return;
        case ObjType::Range: {
            std::vector<Value> items;
            Value it = v;
            int64_t n = length(v);
            auto* r = v.as<RangeObj>();
            for (int64_t i = 0; i < n; ++i) items.push_back(Value::integer(r->start + i * r->step));
            show_seq(out, items, depth);
            return;
        }
        case ObjType::Dict: {
            check_nesting(depth, "printing");
            auto* d = v.as<DictObj>();
            out += '{';
            bool first = true;
            for (size_t i = 0; i < d->table.end_index(); ++i) {
                auto& e = d->table.entry(i);
                if (!e.live) continue;
                if (!first) out += ' ';
                first = false;
                show(out, e.key, true, depth + 1);
                out += ' ';
                show(out, e.value, true, depth + 1);
            }
            out += '}';
            return;
        }
        case ObjType::Set: {
            check_nesting(depth, "printing");
            auto* d = v.as<SetObj>();
            out += "#{";
            bool first = true;
            for (size_t i = 0; i < d->table.end_index(); ++i) {
                auto& e = d->table.entry(i);
                if (!e.live) continue;
                if (!first) out += ' ';
                first = false;
                show(out, e.key, true, depth + 1);
            }
            out += '}';
            return;
        }
        case ObjType::Struct: {
            auto* s = v.as<StructObj>();
            if (s->error) {
                out += "{:error ";
                show(out, make_str(s->error->message), true, depth + 1);
                out += '}';
                return;
            }
            out += "#<";
            append_repr(out, v);
            out += '>';
            return;
        }
        case ObjType::Function:
        case ObjType::Native:
        case ObjType::BoundMethod: {
            std::string n = function_name(v);
            out += n == "<lambda>" ? std::string("#<lambda>") : "#<function " + n + ">";
            return;
        }
        case ObjType::Opaque: {
            auto* h = v.as<OpaqueObj>();
            if (h->cls == &kKeywordClass) {
                out += ':';
                out += static_cast<KeywordObj*>(h)->name;
                return;
            }
            std::string_view cls = h->cls->name;
            if (cls == "channel") {
                out += "#<channel>";
                return;
            }
            if (cls == "worker_pool") {
                out += "#<worker-pool>";
                return;
            }
            if (cls == "atom") {
                // The atom's repr is "atom(VALUE)": show its value the Lisp way instead.
                for (const MethodInfo* m = h->cls->methods; m && m->name; ++m) {
                    if (std::string_view(m->name) != "get") continue;
                    Value self = v;
                    struct NoCx : CallContext {
                        Value call(const Value&, std::span<const Value>) override { return Value(); }
                        Value call_kw(const Value&, std::span<const Value>, std::span<const KwArg>) override {
                            return Value();
                        }
                        void write_stdout(std::string_view) override {}
                        bool read_line(std::string&) override { return false; }
                    } cx;
                    Value cur = m->fn(cx, self, CallArgs{});
                    out += "#<atom ";
                    show(out, cur, true, depth + 1);
                    out += '>';
                    return;
                }
            }
            out += "#<";
            append_repr(out, v);
            out += '>';
            return;
        }
        default:
            out += "#<";
            append_repr(out, v);
            out += '>';
            return;
    }
}

// Lisp `=`: Weft `==`, except that #t and #f equal only themselves, and lists, vectors and
// tuples compare as sequences.
bool lisp_equal(const Value& a0, const Value& b0, int depth) {
    Value a = a0, b = b0;
    resolve_if_promise(a);
    resolve_if_promise(b);
    if (a.is_bool() || b.is_bool()) return a.is_bool() && b.is_bool() && a.as_bool() == b.as_bool();
    auto items = [](const Value& v) -> const std::vector<Value>* {
        if (v.is(ObjType::List)) return &v.as<ListObj>()->items;
        if (v.is(ObjType::Tuple)) return &v.as<TupleObj>()->items;
        return nullptr;
    };
    auto* x = items(a);
    auto* y = items(b);
    if (x && y) {
        if (x->size() != y->size()) return false;
        check_nesting(depth, "comparing");
        for (size_t i = 0; i < x->size(); ++i)
            if (!lisp_equal((*x)[i], (*y)[i], depth + 1)) return false;
        return true;
    }
    if (a.is(ObjType::Dict) && b.is(ObjType::Dict)) {
        auto* da = a.as<DictObj>();
        auto* db = b.as<DictObj>();
        if (da->table.size() != db->table.size()) return false;
        check_nesting(depth, "comparing");
        for (size_t i = 0; i < da->table.end_index(); ++i) {
            auto& e = da->table.entry(i);
            if (!e.live) continue;
            int64_t j = db->table.find(e.key);
            if (j < 0 || !lisp_equal(e.value, db->table.entry(size_t(j)).value, depth + 1)) return false;
        }
        return true;
    }
    return values_equal(a, b);
}

Value bi_kw(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.pos[0].is(ObjType::Str)) throw WeftError(ErrorKind::TypeError, "__lisp_kw(name: str)");
    return make_keyword(a.pos[0].as<StrObj>()->data);
}

Value bi_truthy(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) throw WeftError(ErrorKind::TypeError, "__lisp_truthy() takes 1 argument");
    Value v = a.pos[0];
    resolve_if_promise(v);
    return Value::boolean(!(v.is_none() || (v.is_bool() && !v.as_bool())));
}

Value bi_eq(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 2) throw WeftError(ErrorKind::TypeError, "= takes 2 arguments here");
    return Value::boolean(lisp_equal(a.pos[0], a.pos[1], 0));
}

// (map-get m k [default]): a missing keyword key falls back to its name as a string key, so
// JSON objects and database rows read as (map-get row :name). An error value reads as the map
// {:error message}; a struct's field by name.
Value bi_get(CallContext&, const CallArgs& a) {
    if (a.pos.size() < 2 || a.pos.size() > 3)
        throw WeftError(ErrorKind::TypeError,
                        "map-get takes a map, a key and an optional default (" + std::to_string(a.pos.size()) +
                            " given)");
    Value m = a.pos[0];
    resolve_if_promise(m);
    const Value& k = a.pos[1];
    Value dflt = a.pos.size() == 3 ? a.pos[2] : Value();
    if (m.is_none()) return dflt;
    if (m.is(ObjType::Dict)) {
        auto* d = m.as<DictObj>();
        int64_t i = d->table.find(k);
        if (i >= 0) return d->table.entry(size_t(i)).value;
        if (is_keyword(k)) {
            i = d->table.find(make_str(keyword_name(k)));
            if (i >= 0) return d->table.entry(size_t(i)).value;
        }
        return dflt;
    }
    if (m.is(ObjType::Struct)) {
        auto* s = m.as<StructObj>();
        std::string name = is_keyword(k) ? keyword_name(k) : k.is(ObjType::Str) ? k.as<StrObj>()->data : "";
        if (s->error) return name == "error" ? make_str(s->error->message) : dflt;
        for (size_t f = 0; f < s->fields.size(); ++f)
            if (s->type->fields[f].name == name) return s->fields[f];
        return dflt;
    }
    if (m.is(ObjType::List) || m.is(ObjType::Tuple)) {
        if (!k.is_int()) return dflt;
        auto& items = m.is(ObjType::List) ? m.as<ListObj>()->items : m.as<TupleObj>()->items;
        int64_t i = k.as_int();
        return i >= 0 && size_t(i) < items.size() ? items[size_t(i)] : dflt;
    }
    throw WeftError(ErrorKind::TypeError, "map-get needs a map, not " + type_name(m));
}

Value bi_show(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 2) throw WeftError(ErrorKind::TypeError, "__lisp_show(value, readable)");
    return make_str(lisp_show(a.pos[0], a.pos[1].is_bool() && a.pos[1].as_bool()));
}

Value bi_repl_print(CallContext& cx, const CallArgs& a) {
    if (a.pos.size() != 1) throw WeftError(ErrorKind::TypeError, "__lisp_repl_print(value)");
    cx.write_stdout(lisp_show(a.pos[0], true) + "\n");
    return Value();
}

Value bi_is_keyword(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) throw WeftError(ErrorKind::TypeError, "keyword? takes 1 argument");
    return Value::boolean(is_keyword(a.pos[0]));
}

Value bi_fn_p(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 1) throw WeftError(ErrorKind::TypeError, "fn? takes 1 argument");
    const Value& v = a.pos[0];
    return Value::boolean(v.is(ObjType::Function) || v.is(ObjType::Native) || v.is(ObjType::BoundMethod));
}

// (spawn f args...) checks at once that f takes the arguments: a TypeError in the caller, not
// an error of the task when the program ends.
Value bi_check_arity(CallContext&, const CallArgs& a) {
    if (a.pos.size() != 3 || !a.pos[1].is_int() || !a.pos[2].is(ObjType::Str))
        throw WeftError(ErrorKind::TypeError, "__lisp_check_arity(f, n, who)");
    const Value& f = a.pos[0];
    int64_t n = a.pos[1].as_int();
    const std::string& who = a.pos[2].as<StrObj>()->data;
    if (!(f.is(ObjType::Function) || f.is(ObjType::Native) || f.is(ObjType::BoundMethod) ||
          f.is(ObjType::StructType)))
        throw WeftError(ErrorKind::TypeError, who + ": expected a function, got " + lisp_show(f, true));
    if (!f.is(ObjType::Function)) return Value();
    const Chunk* c = f.as<FunctionObj>()->proto->chunk;
    int64_t max = c->num_positional, min = max - c->num_defaults;
    if (n < min || (c->vararg_reg < 0 && n > max)) {
        std::string takes = c->vararg_reg >= 0 ? "at least " + std::to_string(min)
                            : min == max       ? std::to_string(max)
                                               : std::to_string(min) + " to " + std::to_string(max);
        throw WeftError(ErrorKind::TypeError, who + ": " + c->name + "() takes " + takes + " argument" +
                                                  (takes == "1" ? "" : "s") + " but " + std::to_string(n) +
                                                  (n == 1 ? " was" : " were") + " given");
    }
    return Value();
}

}  // namespace

std::string lisp_show(const Value& v, bool readable) {
    std::string out;
    show(out, v, readable, 0);
    return out;
}

void register_lisp_builtins(Vm& vm) {
    auto native = [&](const char* n, NativeFn f) {
        auto* nf = new NativeObj(n, f);
        nf->computes = true;
        vm.add_builtin(n, Value::adopt(nf));
    };
    native("__lisp_kw", bi_kw);
    native("__lisp_truthy", bi_truthy);
    native("__lisp_eq", bi_eq);
    native("__lisp_get", bi_get);
    native("__lisp_show", bi_show);
    native("__lisp_is_keyword", bi_is_keyword);
    native("__lisp_fn_p", bi_fn_p);
    native("__lisp_check_arity", bi_check_arity);
    auto* rp = new NativeObj("__lisp_repl_print", bi_repl_print);
    vm.add_builtin("__lisp_repl_print", Value::adopt(rp));
}

}  // namespace weft
