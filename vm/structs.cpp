// structs.cpp — struct types and values, attribute access, method calls,
// closures, and run-time type checks of annotations.
//
// Struct values follow value semantics like every collection: `p.x = 1`
// unshares p's storage first (struct_unshare), methods receive `self` by value,
// and `.with(...)` returns a modified copy. Attribute lookup on an instance looks
// at its fields, then at methods up the base chain; error values also answer
// `message`, `kind`, `trace` (and `errors`, `results`, ... for groups).
#include <algorithm>

#include "compiler/suggest.h"
#include "vm/collections.h"
#include "vm/actors.h"
#include "vm/interp.h"
#include "vm/tasks.h"

namespace weft {

namespace {
// The field names of a struct type (for "did you mean" hints).
std::vector<std::string> field_names(const StructTypeObj* t) {
    std::vector<std::string> out;
    for (auto& f : t->fields) out.push_back(f.name);
    return out;
}

// The fields and methods of a struct type, its bases' included, sorted (as CPython's dir()).
std::vector<std::string> struct_attr_names(const StructTypeObj* t, bool with_fields) {
    std::vector<std::string> out;
    if (with_fields) out = field_names(t);
    for (auto* s = t; s; s = s->base) {
        if (!s->methods) continue;
        auto& tab = s->methods->table;
        for (size_t e = 0; e < tab.end_index(); ++e)
            if (tab.entry(e).live && tab.entry(e).key.is(ObjType::Str)) out.push_back(tab.entry(e).key.as<StrObj>()->data);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The attributes a module defines, sorted.
std::vector<std::string> module_attr_names(const ModuleObj* m) {
    std::vector<std::string> out;
    for (auto& [n, slot] : m->layout.slots)
        if (Value v; m->find(n, v)) out.push_back(n);
    std::sort(out.begin(), out.end());
    return out;
}
}  // namespace

// ---------------------------------------------------------------------------
// Type specs: a TypeObj, a StructTypeObj, None (NoneType), a tuple of
// alternatives, or a string naming a type (forward reference; accepted).

bool value_matches_type(const Value& v, const Value& type) {
    if (type.is_none()) return v.is_none();
    if (!type.is_obj()) return true;
    switch (type.as_obj()->type) {
        case ObjType::TypeObj: {
            auto* t = type.as<TypeObj>();
            switch (t->which) {
                case BuiltinType::Any:
                    return true;
                case BuiltinType::Float:
                    return v.is_float() || v.is_int();  // an int is acceptable where a float is expected
                case BuiltinType::Int:
                    return v.is_int() || v.is_bool();
                default:
                    return is_instance(v, type);
            }
        }
        case ObjType::StructType:
            return v.is(ObjType::Struct) && v.as<StructObj>()->type->is_subtype_of(type.as<StructTypeObj>());
        case ObjType::Tuple:
            for (auto& alt : type.as<TupleObj>()->items)
                if (value_matches_type(v, alt)) return true;
            return false;
        default:
            return true;  // strings (forward references) and other values: not checked
    }
}

std::string type_spec_name(const Value& type) {
    if (type.is_none()) return "None";
    if (type.is(ObjType::TypeObj)) return type.as<TypeObj>()->name;
    if (type.is(ObjType::StructType)) return type.as<StructTypeObj>()->name;
    if (type.is(ObjType::Tuple)) {
        std::string out;
        for (auto& alt : type.as<TupleObj>()->items) {
            if (!out.empty()) out += " | ";
            out += type_spec_name(alt);
        }
        return out;
    }
    if (type.is(ObjType::Str)) return type.as<StrObj>()->data;
    return repr(type);
}

void Interp::check_type(const Value& v, const Value& type, CheckKind kind, const std::string& name) {
    if (value_matches_type(v, type)) return;
    std::string want = type_spec_name(type), got = type_name(v);
    const Frame& f = frames_.back();
    const std::string& fn = f.proto->chunk->name;
    switch (kind) {
        case CheckKind::Param:
            raise(ErrorKind::TypeError, fn + "() argument '" + name + "' must be " + want + ", not " + got);
        case CheckKind::Return:
            raise(ErrorKind::TypeError, name + "() must return " + want + ", not " + got);
        case CheckKind::Assign:
            raise(ErrorKind::TypeError, "variable '" + name + "' is declared " + want + ", not " + got);
        case CheckKind::Field:
            raise(ErrorKind::TypeError, name + " must be " + want + ", not " + got);
    }
}

// ---------------------------------------------------------------------------
// Closures and struct types

Value Interp::make_closure(Proto* parent, FunctionObj* cur, Value* regs, int child, int first) {
    Proto* p = parent->children[child].get();
    const Chunk* c = p->chunk;
    auto* fn = new FunctionObj(p, cur->module);
    Value fv = Value::adopt(fn);
    fn->captures.reserve(c->captures.size());
    for (auto& cap : c->captures) {
        if (cap.from_parent_register) {
            fn->captures.push_back(regs[cap.index]);
        } else {
            fn->captures.push_back(cur->captures[cap.index]);
        }
    }
    for (int j = 0; j < c->num_defaults; ++j) fn->defaults.push_back(regs[first + j]);
    for (int j = 0; j < c->num_types; ++j) fn->types.push_back(regs[first + c->num_defaults + j]);
    return fv;
}

void StructTypeObj::build_lookup_caches() {
    field_keys.clear();
    method_cache.clear();
    for (auto& fi : fields) field_keys.push_back(intern(fi.name));
    for (const StructTypeObj* s = this; s; s = s->base) {
        if (!s->methods) continue;
        for (size_t j = 0; j < s->methods->table.end_index(); ++j) {
            auto& e = s->methods->table.entry(j);
            if (!e.live) continue;
            const StrObj* key = intern(e.key.as<StrObj>()->data);
            if (!method_interned(key)) method_cache.emplace_back(key, e.value);
        }
    }
}

Value Interp::make_struct_type(Proto* p, Value* regs, int idx, int first) {
    const StructDesc& d = *p->chunk->structs[idx];
    auto* t = new StructTypeObj();
    Value tv = Value::adopt(t);
    t->name = d.name;
    t->actor_kind = d.actor_kind;
    if (!frames_.empty()) t->module = frames_.back().fn->module;
    int r = first;
    if (d.has_base) {
        const Value& base = regs[r++];
        if (!base.is(ObjType::StructType))
            raise(ErrorKind::TypeError, "struct " + d.name + ": base must be a struct or error type, not " + type_name(base));
        auto* b = base.as<StructTypeObj>();
        obj_incref(b);
        t->base = b;
        t->is_error = b->is_error;
        t->fields = b->fields;  // inherited fields come first
    }
    for (auto& f : d.fields) {
        FieldInfo fi;
        fi.name = f.name;
        if (f.has_annotation) fi.annotation = regs[r++];
        if (f.has_default) {
            fi.default_value = regs[r++];
            fi.has_default = true;
        }
        int existing = t->field_index(f.name);
        if (existing >= 0)
            t->fields[existing] = fi;
        else
            t->fields.push_back(std::move(fi));
    }
    Value methods = make_dict();
    for (auto& m : d.method_names) {
        dict_unshare(methods)->table.insert(Value::borrow(intern(m)), regs[r++]);
    }
    t->methods = static_cast<DictObj*>(methods.release_obj());
    t->build_lookup_caches();
    // Defaults are checked against their annotations once, at definition time.
    for (auto& fi : t->fields) {
        if (fi.has_default && !fi.annotation.is_none() && !value_matches_type(fi.default_value, fi.annotation))
            raise(ErrorKind::TypeError, d.name + "." + fi.name + " default must be " + type_spec_name(fi.annotation) +
                                            ", not " + type_name(fi.default_value));
    }
    return tv;
}

namespace {
thread_local bool t_actor_state = false;  // new_struct() is building an actor's state
}

Value Interp::new_struct(StructTypeObj* t, std::span<const Value> pos, std::span<const KwArg> kw) {
    t_actor_state = true;
    struct Reset {
        ~Reset() { t_actor_state = false; }
    } reset;
    return construct_struct(t, pos, kw);
}

Value Interp::construct_struct(StructTypeObj* t, std::span<const Value> pos, std::span<const KwArg> kw) {
    if (t->actor_kind && !t_actor_state)
        raise(ErrorKind::TypeError, std::string(t->actor_kind == 2 ? "agent" : "actor") + " '" + t->name +
                                        "' is started with " + t->name + ".spawn(...), not called");
    t_actor_state = false;  // fields' own values are built as usual
    // Field values are type-checked, which inspects them: force promises first.
    bool any = false;
    for (auto& v : pos) any = any || v.is(ObjType::Promise);
    for (auto& k : kw) any = any || k.value.is(ObjType::Promise);
    if (any) {
        std::vector<Value> fpos(pos.begin(), pos.end());
        std::vector<KwArg> fkw(kw.begin(), kw.end());
        for (auto& v : fpos) force(v);
        for (auto& k : fkw) force(k.value);
        return construct_struct(t, fpos, fkw);
    }
    auto* s = new StructObj(t);
    Value sv = Value::adopt(s);
    size_t nf = t->fields.size();
    s->fields.resize(nf);
    std::vector<bool> set(nf, false);
    std::string message;
    bool has_message = false;
    if (t->is_error && !s->error) s->error = new ErrorData();
    size_t npos = pos.size();
    if (t->is_error && nf == 0 && npos >= 1) {
        // Error("message") — errors without declared fields take their message positionally.
        message = pos[0].is(ObjType::Str) ? pos[0].as<StrObj>()->data : to_str(pos[0]);
        has_message = true;
        if (npos > 1 && t->builtin_error == int(ErrorKind::ErrorGroup)) {
            s->error->errors = collect(*this, pos[1]);
        } else if (npos > 1 && t->builtin_error == int(ErrorKind::PartialFailure)) {
            s->error->errors = collect(*this, pos[1]);
            if (npos > 2) s->error->results = pos[2];
        } else if (npos > 1) {
            raise(ErrorKind::TypeError, t->name + "() takes at most 1 positional argument (" + std::to_string(npos) + " given)");
        }
        npos = 0;
    }
    if (npos > nf)
        raise(ErrorKind::TypeError, t->name + "() takes " + std::to_string(nf) + " positional argument" +
                                        (nf == 1 ? "" : "s") + " but " + std::to_string(npos) + " were given");
    for (size_t j = 0; j < npos; ++j) {
        s->fields[j] = pos[j];
        set[j] = true;
    }
    for (auto& k : kw) {
        int idx = t->field_index(k.name);
        if (idx < 0) {
            if (t->is_error && k.name == "message") {
                message = to_str(k.value);
                has_message = true;
                continue;
            }
            raise(ErrorKind::TypeError, t->name + "() got an unexpected keyword argument '" + std::string(k.name) + "'" +
                                            did_you_mean(k.name, field_names(t)));
        }
        if (set[idx]) raise(ErrorKind::TypeError, t->name + "() got multiple values for field '" + std::string(k.name) + "'");
        s->fields[idx] = k.value;
        set[idx] = true;
    }
    for (size_t j = 0; j < nf; ++j) {
        const FieldInfo& fi = t->fields[j];
        if (!set[j]) {
            if (!fi.has_default) raise(ErrorKind::TypeError, t->name + "() missing required field '" + fi.name + "'");
            s->fields[j] = fi.default_value;
        } else if (!fi.annotation.is_none() && !value_matches_type(s->fields[j], fi.annotation)) {
            raise(ErrorKind::TypeError, t->name + "() field '" + fi.name + "' must be " + type_spec_name(fi.annotation) +
                                            ", not " + type_name(s->fields[j]));
        }
    }
    if (t->is_error) {
        if (!has_message && nf > 0) {
            // A field error's message lists its fields: MyError(code=3) -> "code=3".
            std::string m;
            for (size_t j = 0; j < nf; ++j) {
                if (j) m += ", ";
                m += t->fields[j].name + "=" + repr(s->fields[j]);
            }
            message = m;
        }
        s->error->message = message;
    }
    return sv;
}

// ---------------------------------------------------------------------------
// Attributes

namespace {

const Value* find_struct_method(const StructTypeObj* t, StrObj* name) {
    Value key = Value::borrow(name);
    for (auto* s = t; s; s = s->base) {
        if (!s->methods) continue;
        int64_t e = s->methods->table.find(key);
        if (e >= 0) return &s->methods->table.entry(e).value;
    }
    return nullptr;
}

Value struct_with(CallContext& cx, Value& self, const CallArgs& args);

const MethodInfo* find_opaque_method(const OpaqueObj* o, std::string_view name) {
    // First letters first: most entries differ there, and a full compare measures the name.
    // (Method calls reach this through cached_opaque_method, once per class and name.)
    if (name.empty()) return nullptr;
    for (const MethodInfo* m = o->cls->methods; m && m->name; ++m)
        if (m->name[0] == name[0] && name == m->name) return m;
    return nullptr;
}

// find_opaque_method through a small per-thread cache keyed by (class, interned name): method
// calls on channels and other opaque values (`ch.recv()` in a loop) skip the table scan.
// Classes are static and interned names immortal (call_method's names are), so an entry never
// dangles.
const MethodInfo* cached_opaque_method(const OpaqueObj* o, const StrObj* name) {
    struct Entry {
        const OpaqueClass* cls;
        const StrObj* name;
        const MethodInfo* mi;
    };
    thread_local Entry cache[8] = {};
    Entry& e = cache[((reinterpret_cast<uintptr_t>(name) >> 4) ^ (reinterpret_cast<uintptr_t>(o->cls) >> 3)) & 7];
    if (e.name == name && e.cls == o->cls) return e.mi;
    e = Entry{o->cls, name, find_opaque_method(o, name->data)};
    return e.mi;
}

Value error_attr(const StructObj* s, const std::string& n, bool* found) {
    *found = true;
    const ErrorData* e = s->error;
    if (n == "message") return make_str(e->message);
    if (n == "kind") return make_str(s->type->name);
    if (n == "trace") {
        std::vector<Value> items;
        // The frames' lines, without the source excerpts the printed traceback shows under them.
        for (auto& t : e->trace) items.push_back(make_str(t.substr(0, t.find('\n'))));
        return make_list(std::move(items));
    }
    if (n == "errors") return make_list(e->errors);
    if (n == "code" && s->type->builtin_error == int(ErrorKind::SystemExit)) return e->results;  // exit(code)
    if (n == "sqlstate" && s->type->builtin_error == int(ErrorKind::DatabaseError)) return e->results;
    bool partial = s->type->builtin_error == int(ErrorKind::PartialFailure);
    if (partial && n == "results") return e->results.is_none() ? make_list() : e->results;
    if (partial && (n == "successful_results" || n == "failed")) {
        std::vector<Value> out;
        if (e->results.is(ObjType::List)) {
            auto& items = e->results.as<ListObj>()->items;
            for (size_t j = 0; j < items.size(); ++j) {
                bool is_err = items[j].is(ObjType::Struct) && items[j].as<StructObj>()->error;
                if (n == "failed" && is_err) out.push_back(Value::integer(int64_t(j)));
                if (n == "successful_results" && !is_err) out.push_back(items[j]);
            }
        }
        return make_list(std::move(out));
    }
    *found = false;
    return Value();
}

}  // namespace

Value Interp::get_attr(const Value& obj, StrObj* name) {
    const std::string& n = name->data;
    if (obj.is(ObjType::Struct)) {
        auto* s = obj.as<StructObj>();
        int idx = s->type->field_index_interned(name);
        if (idx >= 0) return s->fields[idx];
        if (const Value* m = find_struct_method(s->type, name)) return Value::adopt(new BoundMethodObj(obj, *m));
        if (s->error) {
            bool found;
            Value v = error_attr(s, n, &found);
            if (found) return v;
        }
        if (s->type->actor_kind) {
            Value out;
            if (actor_state_attr(*this, s, n, out)) return out;
        }
        if (n == "with" && !s->type->actor_kind) {
            auto* nat = new NativeObj("with", nullptr);
            nat->method = struct_with;
            nat->kwargs = kAnyKeywords;  // the fields to replace; struct_with checks them
            nat->self = obj;
            return Value::adopt(nat);
        }
        raise(ErrorKind::AttributeError, "'" + s->type->name + "' object has no attribute '" + n + "'" +
                                             did_you_mean(n, struct_attr_names(s->type, true)));
    }
    if (obj.is(ObjType::Module)) {
        auto* m = obj.as<ModuleObj>();
        if (Value v; m->find(n, v)) return v;
        raise(ErrorKind::AttributeError,
              "module '" + m->name + "' has no attribute '" + n + "'" + did_you_mean(n, module_attr_names(m)));
    }
    if (obj.is(ObjType::StructType)) {
        auto* t = obj.as<StructTypeObj>();
        if (n == "__name__" || n == "name") return make_str(t->name);
        if (t->actor_kind && n == "spawn") return actor_spawn_attr(obj);
        if (const Value* m = find_struct_method(t, name)) return *m;
        raise(ErrorKind::AttributeError,
              "struct '" + t->name + "' has no attribute '" + n + "'" + did_you_mean(n, struct_attr_names(t, false)));
    }
    if (obj.is(ObjType::Opaque)) {
        auto* o = obj.as<OpaqueObj>();
        Value out;
        if (o->cls->get_attr && o->cls->get_attr(o, n, out)) return out;
        if (const MethodInfo* mi = find_opaque_method(o, n)) {
            auto* nat = new NativeObj(n, nullptr);
            nat->method = mi->fn;
            nat->kwargs = mi->kwargs;
            nat->self = obj;
            return Value::adopt(nat);
        }
        raise(ErrorKind::AttributeError, "'" + std::string(o->cls->name) + "' object has no attribute '" + n + "'" +
                                             did_you_mean(n, method_names(obj)));
    }
    if (obj.is(ObjType::Function) && n == "__name__") return make_str(obj.as<FunctionObj>()->proto->chunk->name);
    if (const MethodInfo* mi = find_method(obj, n)) {
        auto* nat = new NativeObj(n, nullptr);
        nat->method = mi->fn;
        nat->mutates = mi->mutates;
        nat->kwargs = mi->kwargs;
        nat->self = obj;
        return Value::adopt(nat);
    }
    raise(ErrorKind::AttributeError,
          "'" + type_name(obj) + "' object has no attribute '" + n + "'" + did_you_mean(n, method_names(obj)));
}

void Interp::set_attr(Value& obj, StrObj* name, Value v) {
    const std::string& n = name->data;
    if (obj.is(ObjType::Struct)) {
        StructTypeObj* t = obj.as<StructObj>()->type;
        int idx = t->field_index_interned(name);
        if (idx < 0) raise(ErrorKind::AttributeError, "'" + t->name + "' object has no field '" + n + "'");
        const FieldInfo& fi = t->fields[idx];
        if (!fi.annotation.is_none()) force(v);  // checked against the field's type: needs the value
        if (!fi.annotation.is_none() && !value_matches_type(v, fi.annotation))
            raise(ErrorKind::TypeError, t->name + "." + n + " must be " + type_spec_name(fi.annotation) + ", not " +
                                            type_name(v));
        StructObj* s = struct_unshare(obj);
        s->fields[idx] = std::move(v);
        return;
    }
    if (obj.is(ObjType::Module))
        raise(ErrorKind::AttributeError, "cannot assign to attribute '" + n + "' of module '" +
                                             obj.as<ModuleObj>()->name + "': modules are read-only");
    raise(ErrorKind::AttributeError, "'" + type_name(obj) + "' object attribute '" + n + "' is read-only");
}

namespace {

// u.with(age=37): a copy with some fields changed (checked like construction).
Value struct_with(CallContext& cx, Value& self, const CallArgs& args) {
    if (!args.pos.empty()) throw WeftError(ErrorKind::TypeError, "with() takes keyword arguments only");
    Value copy = self;
    StructObj* s = struct_unshare(copy);
    for (auto& k : args.kw) {
        int idx = s->type->field_index(k.name);
        if (idx < 0)
            throw WeftError(ErrorKind::TypeError, s->type->name + ".with() got an unexpected field '" +
                                                      std::string(k.name) + "'" + did_you_mean(k.name, field_names(s->type)));
        const FieldInfo& fi = s->type->fields[idx];
        if (!fi.annotation.is_none() && !value_matches_type(k.value, fi.annotation))
            throw WeftError(ErrorKind::TypeError, s->type->name + "() field '" + fi.name + "' must be " +
                                                      type_spec_name(fi.annotation) + ", not " + type_name(k.value));
        s->fields[idx] = k.value;
    }
    return copy;
}

}  // namespace

namespace {
// Is `name` one of the built-in methods that only store their arguments (so a promise passed
// to them stays unforced)? Attribute names in bytecode are interned: pointer compares.
bool stores_arguments(const StrObj* name) {
    static const StrObj* const names[] = {intern("append"), intern("insert"), intern("add"),
                                          intern("send"), intern("setdefault"), intern("try_send")};
    return std::find(std::begin(names), std::end(names), name) != std::end(names);
}
}  // namespace

// Method call. `a` points at the instruction's register A: the result goes to
// a[0]; a[1] is scratch (receiver copy for Weft methods); arguments start at a[2].
bool Interp::call_method(Value& recv, StrObj* name, Value* a, int nargs, const Constant* kwnames) {
    int nkw = kwnames ? int(kwnames->names.size()) : 0;
    if (recv.is(ObjType::Promise)) {
        // Task handle methods act on the task; any other method forces the value.
        bool handled = false;
        std::vector<KwArg> pkw;
        for (int j = 0; j < nkw; ++j) pkw.push_back(KwArg{kwnames->names[j], a[2 + nargs + j]});
        CallArgs args{std::span<const Value>(a + 2, nargs), pkw};
        Value r = call_promise_method(*this, recv.as<PromiseObj>(), name->data, args, &handled);
        if (handled) {
            for (int j = 0; j < nargs + nkw; ++j) a[2 + j] = Value();
            a[1] = Value();
            a[0] = std::move(r);
            return false;
        }
        if (recv.as<PromiseObj>()->is_handle) {
            // Any other method goes to the task's value; the variable stays a handle.
            Value value = recv;
            force(value);
            return call_method(value, name, a, nargs, kwnames);
        }
        force(recv);
    }
    // Built-in methods inspect their arguments (promises are forced), except the
    // ones that only store them.
    if (!recv.is(ObjType::Struct) && !stores_arguments(name)) {
        for (int j = 0; j < nargs + nkw; ++j) force(a[2 + j]);
    }
    std::vector<KwArg> kw;
    if (nkw) {
        kw.reserve(nkw);
        for (int j = 0; j < nkw; ++j) kw.push_back(KwArg{kwnames->names[j], a[2 + nargs + j]});
    }
    // Drops the arguments and the scratch receiver copy, so no stale reference
    // keeps a container shared (which would make the next in-place update copy it).
    auto clear_args = [&]() __attribute__((always_inline)) {
        for (int j = 0; j < nargs + nkw; ++j) a[2 + j].clear();
        a[1].clear();
    };
    if (recv.is(ObjType::Struct)) {
        auto* s = recv.as<StructObj>();
        const Value* m = s->type->method_not_shadowed(name);
        if (m && m->is(ObjType::Function)) {
            a[0] = *m;
            a[1] = recv;
            FunctionObj* fn = a[0].as<FunctionObj>();
            const Chunk* c = fn->proto->chunk;
            Value* nb = &a[1];
            if (nkw == 0 && c->num_positional == nargs + 1 && int(c->params.size()) == nargs + 1 && c->vararg_reg < 0 &&
                c->kwarg_reg < 0) {
                // in place
            } else {
                bind_args(fn, nb, std::span<const Value>(nb, nargs + 1), kw);
            }
            push_frame(fn, nb, FrameExit::Normal);
            return true;
        }
    }
    // Built-in methods operate on the receiver in place (after unsharing).
    if (!recv.is(ObjType::Struct) && !recv.is(ObjType::Module)) {
        const MethodInfo* mi = nullptr;
        if (recv.is(ObjType::Opaque)) {
            note_may_wait();  // a channel's recv, a pool's submit, a cancel scope's __exit__, ...
            mi = cached_opaque_method(recv.as<OpaqueObj>(), name);
        } else {
            mi = find_method(recv, name->data);
        }
        if (mi) {
            if (mi->mutates) {
                if (recv.is(ObjType::List))
                    list_unshare(recv);
                else if (recv.is(ObjType::Dict))
                    dict_unshare(recv);
                else if (recv.is(ObjType::Set))
                    set_unshare(recv);
            }
            CallArgs args{std::span<const Value>(a + 2, nargs), kw};
            if (nkw) check_kwargs(mi->kwargs, mi->name, kw);
            Value result = mi->fn(*this, recv, args);
            clear_args();
            a[0] = std::move(result);
            return false;
        }
    }
    // Anything else: fetch the attribute (a field holding a function, a module
    // function, `.with`, a bound method) and call it.
    Value callee = get_attr(recv, name);
    if (callee.is(ObjType::Function)) {
        a[0] = std::move(callee);
        // Shift arguments down by one: the frame starts at a[1].
        for (int j = 0; j < nargs + nkw; ++j) a[1 + j] = std::move(a[2 + j]);
        FunctionObj* fn = a[0].as<FunctionObj>();
        Value* nb = &a[1];
        if (nkw) {
            std::vector<KwArg> kw2;
            for (int j = 0; j < nkw; ++j) kw2.push_back(KwArg{kwnames->names[j], a[1 + nargs + j]});
            bind_args(fn, nb, std::span<const Value>(nb, nargs), kw2);
        } else {
            const Chunk* c = fn->proto->chunk;
            if (!(c->num_positional == nargs && int(c->params.size()) == nargs && c->vararg_reg < 0 && c->kwarg_reg < 0))
                bind_args(fn, nb, std::span<const Value>(nb, nargs), {});
        }
        push_frame(fn, nb, FrameExit::Normal);
        return true;
    }
    Value result = call_object(callee, std::span<const Value>(a + 2, nargs), kw);
    clear_args();
    a[0] = std::move(result);
    return false;
}

// ---------------------------------------------------------------------------

std::string callable_repr(const Value& v) {
    if (!v.is_obj()) return "?";
    switch (v.as_obj()->type) {
        case ObjType::Function:
            return "<function " + v.as<FunctionObj>()->proto->chunk->name + ">";
        case ObjType::BoundMethod: {
            auto* b = v.as<BoundMethodObj>();
            if (b->func.is(ObjType::Function)) return "<bound method " + b->func.as<FunctionObj>()->proto->chunk->name + ">";
            return "<bound method>";
        }
        case ObjType::Native: {
            auto* n = v.as<NativeObj>();
            if (n->method) return "<built-in method " + n->name + " of " + type_name(n->self) + " object>";
            return "<built-in function " + n->name + ">";
        }
        case ObjType::StructType: {
            auto* t = v.as<StructTypeObj>();
            return std::string(t->is_error ? "<error type " : "<struct ") + t->name + ">";
        }
        case ObjType::Module:
            return "<module '" + v.as<ModuleObj>()->name + "'>";
        case ObjType::TypeObj:
            return "<type '" + v.as<TypeObj>()->name + "'>";
        case ObjType::Promise: {
            auto* p = v.as<PromiseObj>();
            if (promise_resolver) {
                try {
                    return repr(promise_resolver(v));
                } catch (WeftError&) {
                    // a failed task prints as its handle; the error surfaces where it is forced
                }
            }
            if (p->resolved && p->error.is_none()) return repr(p->value);
            return "<task " + (p->kind == PromiseObj::Kind::Task ? p->task->label() : std::string("lazy")) + ">";
        }
        case ObjType::Opaque: {
            auto* o = v.as<OpaqueObj>();
            if (o->cls->repr) return o->cls->repr(o);
            return std::string("<") + o->cls->name + " object>";
        }
        default:
            return "<" + type_name(v) + " object>";
    }
}

}  // namespace weft
