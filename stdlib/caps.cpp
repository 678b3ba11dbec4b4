// caps.cpp — the capability builtins of spec section 11: restrict(...) blocks,
// caps(...) values, capabilities(), the @effects(...) decorator, and env().
//
// How narrowing is spelled: each keyword (net, read, write, run, env) takes a
// list of grants (hosts, paths, program names, variable names), True ("what I
// hold of this kind") or False/None/[] (nothing). `restrict` keeps kinds it does
// not mention; `caps` and `@effects` grant nothing of an unmentioned kind (they
// describe the whole authority of an actor or a function).
//
// restrict and caps raise PermissionDenied when they ask for more than the task
// holds. @effects is checked at each call instead and intersects its request
// with what the caller holds: a library function may declare net=True and still
// be called (and fail only if it really connects) in a task without net access.
//
// The @effects wrapper is a NativeObj bound to a host object holding the
// wrapped function and its request (a closure without a Weft frame); while it
// runs, the task's capability set is the intersection, restored afterwards even
// when the function raises.
#include <cstdlib>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/tasks.h"
#include "vm/capabilities.h"
#include "vm/interp.h"
#include "vm/lib_internal.h"
#include "vm/pending.h"

namespace weft {

namespace {

using stdlib::bound_native;
using stdlib::self_as;
using Grant = CapabilitySet::Grant;

struct Kind {
    const char* name;
    Grant CapabilitySet::*grant;
    bool paths;
};
constexpr Kind kKinds[] = {
    {"net", &CapabilitySet::net, false},    {"read", &CapabilitySet::read, true},
    {"write", &CapabilitySet::write, true}, {"run", &CapabilitySet::run, false},
    {"env", &CapabilitySet::env, false},
};

std::shared_ptr<const CapabilitySet> held(CallContext& cx) {
    auto c = cx.capabilities();
    return c ? c : CapabilitySet::none();
}

// One keyword's value -> a grant request. `all` in the result means "True".
Grant parse_grant(CallContext& cx, const Value& v, const char* fn, const Kind& k) {
    Grant g;
    if (v.is_bool()) {
        g.all = v.as_bool();
        return g;
    }
    if (v.is_none()) return g;
    std::vector<Value> items;
    if (v.is(ObjType::Str))
        items.push_back(v);
    else if (v.is(ObjType::List) || v.is(ObjType::Tuple) || v.is(ObjType::Set))
        items = collect(cx, v);
    else
        throw WeftError(ErrorKind::TypeError, std::string(fn) + "() argument '" + k.name +
                                                  "' must be a list of str, True or False, not " +
                                                  type_name(v));
    for (auto& it : items) {
        if (!it.is(ObjType::Str))
            throw WeftError(ErrorKind::TypeError, std::string(fn) + "() argument '" + k.name +
                                                      "' must hold str items, not " +
                                                      type_name(it));
        const std::string& s = it.as<StrObj>()->data;
        g.items.push_back(k.paths ? canonical_path(s) : s);
    }
    return g;
}

// ---------------------------------------------------------------------------
// Capabilities values: caps(...)

struct CapsObj : OpaqueObj {
    std::shared_ptr<const CapabilitySet> set;
    CapsObj(const OpaqueClass* c, std::shared_ptr<const CapabilitySet> s)
        : OpaqueObj(c), set(std::move(s)) {}
};

extern const OpaqueClass kCapsClass;

// Builds the set a restrict()/caps() call asks for, relative to `have`.
// Raises PermissionDenied when it is wider than `have`.
std::shared_ptr<const CapabilitySet> requested_set(CallContext& cx, const CapabilitySet& have,
                                                   const CallArgs& a, const char* fn,
                                                   bool keep_unmentioned) {
    if (!a.pos.empty()) {
        // restrict(c) with a caps(...) value: exactly that authority.
        if (a.pos.size() == 1 && a.kw.empty() && a.pos[0].is(ObjType::Opaque) &&
            a.pos[0].as<OpaqueObj>()->cls == &kCapsClass) {
            auto set = static_cast<const CapsObj*>(a.pos[0].as<OpaqueObj>())->set;
            std::string excess;
            if (!have.covers(*set, excess))
                throw WeftError(ErrorKind::PermissionDenied,
                                std::string(fn) + "() asks for " + excess +
                                    ", which the current task does not hold");
            return set;
        }
        throw WeftError(ErrorKind::TypeError,
                        std::string(fn) +
                            "() takes keyword arguments (net=, read=, write=, "
                            "run=, env=) or one caps(...) value");
    }
    auto out = std::make_shared<CapabilitySet>();
    out->own_sources = have.own_sources;
    out->narrowed = true;
    for (auto& k : kKinds)
        (*out).*k.grant = keep_unmentioned ? have.*k.grant : Grant{};
    for (auto& kw : a.kw) {
        const Kind* kind = nullptr;
        for (auto& k : kKinds)
            if (kw.name == k.name) kind = &k;
        if (!kind)
            throw WeftError(ErrorKind::TypeError, std::string(fn) +
                                                      "() got an unexpected keyword argument '" +
                                                      std::string(kw.name) + "'");
        Grant g = parse_grant(cx, kw.value, fn, *kind);
        if (g.all) g = have.*kind->grant;  // True: what the task holds of this kind
        (*out).*kind->grant = std::move(g);
    }
    std::string excess;
    if (!have.covers(*out, excess))
        throw WeftError(ErrorKind::PermissionDenied, std::string(fn) + "() asks for " + excess +
                                                         ", which the current task does not hold");
    return out;
}

// The part of request `r` that `have` holds (for @effects).
std::shared_ptr<const CapabilitySet> intersect(const CapabilitySet& have, const CapabilitySet& r,
                                               const bool mentioned_all[5]) {
    auto out = std::make_shared<CapabilitySet>();
    out->own_sources = have.own_sources;
    out->narrowed = true;
    for (size_t i = 0; i < 5; ++i) {
        const Kind& k = kKinds[i];
        const Grant& h = have.*k.grant;
        const Grant& q = r.*k.grant;
        Grant& o = (*out).*k.grant;
        if (mentioned_all[i]) {
            o = h;
            continue;
        }
        if (h.all) {
            o = q;
            continue;
        }
        for (auto& item : q.items) {
            CapabilitySet probe;
            (probe.*k.grant).items.push_back(item);
            std::string excess;
            if (have.covers(probe, excess)) {
                o.items.push_back(item);
            } else if (k.paths) {
                // A requested directory that contains held ones: keep the held ones below it.
                for (auto& hp : h.items)
                    if (hp.size() > item.size() && hp.compare(0, item.size(), item) == 0 &&
                        (item == "/" || hp[item.size()] == '/'))
                        o.items.push_back(hp);
            } else if (k.grant == &CapabilitySet::net) {
                // A requested bare host: keep the held host:port grants of that host.
                for (auto& hn : h.items)
                    if (hn.rfind(item + ":", 0) == 0) o.items.push_back(hn);
            }
        }
    }
    return out;
}

Value grant_value(const Grant& g) {
    if (g.all) return Value::boolean(true);
    std::vector<Value> items;
    for (auto& s : g.items)
        items.push_back(make_str(s));
    return make_list(std::move(items));
}

Value set_to_dict(const CapabilitySet& c) {
    Value d = make_dict();
    for (auto& k : kKinds)
        stdlib::dict_put(d, k.name, grant_value(c.*k.grant));
    return d;
}

bool caps_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* c = static_cast<const CapsObj*>(self);
    for (auto& k : kKinds)
        if (name == k.name) {
            out = grant_value((*c->set).*k.grant);
            return true;
        }
    return false;
}

std::string caps_repr(const OpaqueObj* self) {
    return "caps(" + repr(set_to_dict(*static_cast<const CapsObj*>(self)->set)) + ")";
}

Value caps_to_dict(CallContext&, Value& self, const CallArgs&) {
    return set_to_dict(*self_as<CapsObj>(self)->set);
}

const MethodInfo kCapsMethods[] = {{"to_dict", caps_to_dict, false}, {nullptr, nullptr, false}};
const OpaqueClass kCapsClass{"Capabilities", kCapsMethods, caps_get_attr, caps_repr};

Value bi_caps(CallContext& cx, const CallArgs& a) {
    auto have = held(cx);
    return Value::adopt(new CapsObj(&kCapsClass, requested_set(cx, *have, a, "caps", false)));
}

Value bi_capabilities(CallContext& cx, const CallArgs& a) {
    stdlib::Params p(a, "capabilities", {}, 0);
    return set_to_dict(*held(cx));
}

// ---------------------------------------------------------------------------
// restrict(...) blocks

struct RestrictObj : OpaqueObj {
    std::shared_ptr<const CapabilitySet> set;
    std::vector<std::shared_ptr<const CapabilitySet>> saved;  // one per active __enter__
    RestrictObj(const OpaqueClass* c, std::shared_ptr<const CapabilitySet> s)
        : OpaqueObj(c), set(std::move(s)) {}
};

Value restrict_enter(CallContext& cx, Value& self, const CallArgs&) {
    auto* r = self_as<RestrictObj>(self);
    auto have = held(cx);
    std::string excess;
    if (!have->covers(*r->set, excess))
        throw WeftError(ErrorKind::PermissionDenied,
                        "restrict() asks for " + excess + ", which the current task does not hold");
    r->saved.push_back(have);
    cx.set_capabilities(r->set);
    return set_to_dict(*r->set);
}

Value restrict_exit(CallContext& cx, Value& self, const CallArgs&) {
    auto* r = self_as<RestrictObj>(self);
    if (!r->saved.empty()) {
        // Deferred calls made in the block keep its capabilities: start them while they exist.
        start_pending_with_caps(static_cast<Interp&>(cx), cx.capabilities().get());
        cx.set_capabilities(r->saved.back());
        r->saved.pop_back();
    }
    return Value::boolean(false);  // never swallows the error
}

std::string restrict_repr(const OpaqueObj* self) {
    return "restrict(" + repr(set_to_dict(*static_cast<const RestrictObj*>(self)->set)) + ")";
}

const MethodInfo kRestrictMethods[] = {{"__enter__", restrict_enter, false},
                                       {"__exit__", restrict_exit, false},
                                       {nullptr, nullptr, false}};
const OpaqueClass kRestrictClass{"Restrict", kRestrictMethods, nullptr, restrict_repr};

Value bi_restrict(CallContext& cx, const CallArgs& a) {
    auto have = held(cx);
    return Value::adopt(
        new RestrictObj(&kRestrictClass, requested_set(cx, *have, a, "restrict", true)));
}

// ---------------------------------------------------------------------------
// @effects(...)

struct EffectsObj : OpaqueObj {
    CapabilitySet request;  // items canonicalized; `all` unused
    bool all[5] = {};       // kinds given as True
    Value fn;               // the wrapped function (None for the decorator itself)
    explicit EffectsObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

void effects_share(OpaqueObj* self) { share(static_cast<EffectsObj*>(self)->fn); }
const OpaqueClass kEffectsClass{"Effects", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, effects_share};

Value effects_call(CallContext& cx, Value& self, const CallArgs& a) {
    auto* e = self_as<EffectsObj>(self);
    auto have = held(cx);
    auto narrowed = intersect(*have, e->request, e->all);
    cx.set_capabilities(narrowed);
    struct Restore {
        CallContext& cx;
        std::shared_ptr<const CapabilitySet> have;
        ~Restore() {
            start_pending_with_caps(static_cast<Interp&>(cx), cx.capabilities().get());
            cx.set_capabilities(have);
        }
    } restore{cx, have};
    return cx.call_kw(e->fn, a.pos, a.kw);
}

Value effects_decorate(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.size() != 1 || !a.kw.empty())
        throw WeftError(ErrorKind::TypeError, "effects(...) decorates one function");
    auto* spec = self_as<EffectsObj>(self);
    auto* w = new EffectsObj(&kEffectsClass);
    w->request = spec->request;
    std::copy(std::begin(spec->all), std::end(spec->all), std::begin(w->all));
    w->fn = a.pos[0];
    std::string name = "effects";
    if (a.pos[0].is(ObjType::Function)) name = a.pos[0].as<FunctionObj>()->proto->chunk->name;
    return bound_native(name, effects_call, Value::adopt(w), kAnyKeywords);  // passed on
}

Value bi_effects(CallContext& cx, const CallArgs& a) {
    if (!a.pos.empty())
        throw WeftError(ErrorKind::TypeError,
                        "effects() takes keyword arguments only (net=, read=, write=, run=, env=)");
    auto* spec = new EffectsObj(&kEffectsClass);
    Value keep = Value::adopt(spec);
    for (auto& kw : a.kw) {
        size_t i = 0;
        while (i < 5 && kw.name != kKinds[i].name)
            ++i;
        if (i == 5)
            throw WeftError(ErrorKind::TypeError, "effects() got an unexpected keyword argument '" +
                                                      std::string(kw.name) + "'");
        Grant g = parse_grant(cx, kw.value, "effects", kKinds[i]);
        spec->all[i] = g.all;
        g.all = false;
        spec->request.*kKinds[i].grant = std::move(g);
    }
    return bound_native("effects", effects_decorate, std::move(keep));
}

// ---------------------------------------------------------------------------
// env(name, default=None)

Value bi_env(CallContext& cx, const CallArgs& a) {
    stdlib::Params p(a, "env", {"name", "default"}, 1);
    std::string name = p.str(0);
    require_env(cx, name);
    const char* v = getenv(name.c_str());  // blocking-free: the process environment
    if (!v) return p.get(1) ? *p.get(1) : Value();
    std::string s(v);
    if (lib::utf8_validate(s) != std::string::npos)
        throw WeftError(ErrorKind::ValueError,
                        "environment variable '" + name + "' is not valid UTF-8");
    return make_str(std::move(s));
}

// The authority a caps(...) value holds, for X.spawn(capabilities=...) (vm/actors.cpp); null
// for any other value.
std::shared_ptr<const CapabilitySet> caps_value_set(const Value& v) {
    if (!v.is(ObjType::Opaque) || v.as<OpaqueObj>()->cls != &kCapsClass) return nullptr;
    return static_cast<CapsObj*>(v.as<OpaqueObj>())->set;
}

}  // namespace

// Set by register_stdlib_builtins: vm/actors.cpp reads caps(...) values through it (the VM
// layer does not depend on the standard library).
extern std::shared_ptr<const CapabilitySet> (*caps_value_set_hook)(const Value&);

void register_stdlib_builtins(Vm& vm) {
    caps_value_set_hook = caps_value_set;
    // Each binds its keywords itself (the capability kinds, or Params), rejecting unknown ones.
    auto native = [&](const char* n, NativeFn f) {
        auto* o = new NativeObj(n, f);
        o->kwargs = kAnyKeywords;
        vm.add_builtin(n, Value::adopt(o));
    };
    native("restrict", bi_restrict);
    native("caps", bi_caps);
    native("capabilities", bi_capabilities);
    native("effects", bi_effects);
    native("env", bi_env);
    register_llm_builtin(vm);
    register_circuit_breaker_builtin(vm);
}

}  // namespace weft
