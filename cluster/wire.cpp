// wire.cpp — the cluster value codec, function bundles and capability sets as data (wire.h).
#include "cluster/wire.h"

#include <openssl/evp.h>

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "vm/capabilities.h"
#include "vm/collections.h"
#include "vm/function.h"
#include "vm/interp.h"
#include "vm/native.h"
#include "vm/tasks.h"

namespace weft::cluster {

namespace {

enum WireTag : uint8_t {
    kNone = 0, kFalse, kTrue, kInt, kFloat, kStr, kBytes, kList, kTuple, kDict, kSet, kRange,
    kFunction, kNative, kBoundMethod, kModule, kType, kErrorType, kError,
    kStructType, kStructRef, kStruct,
};

constexpr int kMaxDepth = 2000;
constexpr char kBundleMagic[] = "WB1";

[[noreturn]] void cluster_error(const std::string& msg) { throw WeftError(ErrorKind::ClusterError, msg); }

// Why a kind of value cannot cross, and what to do instead.
std::string advice_for(const std::string& kind) {
    if (kind == "channel") return "share work between processes with parallel_map(..., cluster=True) or pass data instead";
    if (kind == "atom") return "shared state across processes needs an actor or a database";
    if (kind == "ActorRef") return "actor references do not cross processes in this version";
    if (kind == "Capabilities" || kind == "Restrict" || kind == "Effects")
        return "the task carries the caller's capabilities by itself";
    return "only data and functions cross processes";
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    // OpenSSL's SHA-256 (libcrypto, which nats.c links already).
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1 || len != 32)
        cluster_error("SHA-256 failed (OpenSSL EVP_Digest)");
    static const char* hex = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

// ---------------------------------------------------------------------------
// Encoder

void Encoder::u64(uint64_t x) {
    while (x >= 0x80) {
        out_ += char(uint8_t(x) | 0x80);
        x >>= 7;
    }
    out_ += char(x);
}
void Encoder::i64(int64_t x) { u64((uint64_t(x) << 1) ^ uint64_t(x >> 63)); }
void Encoder::str(std::string_view s) {
    u64(s.size());
    out_.append(s);
}

int Encoder::module_index(const ModuleObj* m, const std::string& path) {
    for (size_t i = 0; i < module_objs.size(); ++i)
        if (module_objs[i] == m) return int(i);
    // The module's text: kept by the module, else by its compiled unit (one unit: a file).
    const std::string* text = &m->source;
    if (text->empty() && m->protos.size() == 1 && m->protos[0]->chunk->source) text = &m->protos[0]->chunk->source->text;
    if (text->empty() || m->protos.size() != 1)
        cluster_error("cannot send a function to a cluster worker: " + path + " comes from module '" + m->name +
                      "', which has no source file");
    std::string sha = sha256_hex(*text);
    if (sources) (*sources)[sha] = *text;
    modules.push_back({sha, m->path, m->name});
    module_objs.push_back(m);
    return int(modules.size() - 1);
}

namespace {
// The child indices from a module's compiled unit down to `target` (depth-first).
bool find_proto(const Proto* p, const Proto* target, std::vector<uint64_t>& path) {
    if (p == target) return true;
    for (size_t i = 0; i < p->children.size(); ++i) {
        path.push_back(i);
        if (find_proto(p->children[i].get(), target, path)) return true;
        path.pop_back();
    }
    return false;
}
}  // namespace

void Encoder::function(const Value& v, const std::string& path) {
    auto* fn = v.as<FunctionObj>();
    const Chunk* c = fn->proto->chunk;
    std::string fname = c->name;
    int mi = module_index(fn->module, path);
    std::vector<uint64_t> ppath;
    size_t unit = 0;
    for (; unit < fn->module->protos.size(); ++unit) {
        ppath.clear();
        if (find_proto(fn->module->protos[unit].get(), fn->proto, ppath)) break;
    }
    if (unit == fn->module->protos.size())
        cluster_error("cannot send function '" + fname + "' to a cluster worker: its code was not found in its module");
    if (unit != 0)
        cluster_error("cannot send function '" + fname + "' to a cluster worker: it was defined interactively (REPL); "
                      "define it in a file");
    out_ += char(kFunction);
    u64(uint64_t(mi));
    u64(ppath.size());
    for (auto i : ppath) u64(i);
    u64(fn->captures.size());
    for (size_t i = 0; i < fn->captures.size(); ++i) {
        std::string cname = i < c->captures.size() ? c->captures[i].name : "#" + std::to_string(i);
        value(fn->captures[i], path + ": '" + fname + "' captures '" + cname + "' -> " + cname);
    }
    u64(fn->defaults.size());
    for (size_t i = 0; i < fn->defaults.size(); ++i)
        value(fn->defaults[i], path + ": '" + fname + "' default value #" + std::to_string(i + 1));
    // Annotation types: built-in types cross; a struct type does not (the worker then skips
    // that check, as for an unannotated parameter).
    u64(fn->types.size());
    for (auto& t : fn->types) {
        if (t.is(ObjType::TypeObj) || (t.is(ObjType::StructType) && t.as<StructTypeObj>()->builtin_error >= 0))
            value(t, path);
        else
            out_ += char(kNone);
    }
}

// A struct type crosses as its definition: the module that defined it (by its number in the
// message's module table: the receiver has compiled that module from the same source), its
// name, base, fields (annotations and defaults) and methods (functions of that module). The
// receiver reuses the type it already has for (module, name) — the driver its own, so results
// are instances of the program's types — or builds it once from the definition (a worker, which
// never runs the module's top level). A second use in one message is a back reference.
void Encoder::struct_type(const StructTypeObj* t, const std::string& path) {
    if (auto it = struct_ids_.find(t); it != struct_ids_.end()) {
        out_ += char(kStructRef);
        u64(it->second);
        return;
    }
    if (t->actor_kind)
        cluster_error("cannot send " + path + " (the " + std::string(t->actor_kind == 1 ? "actor" : "agent") + " type " +
                      t->name + ") to a cluster worker: actors cross as refs to named cluster actors, not as types");
    if (!t->module)
        cluster_error("cannot send " + path + " (the struct type " + t->name + ") to a cluster worker: it has no module");
    uint64_t id = struct_ids_.size();
    struct_ids_[t] = id;
    out_ += char(kStructType);
    u64(uint64_t(module_index(t->module, path + " (struct " + t->name + ")")));
    str(t->name);
    if (t->base) value(Value::borrow(t->base), path + " (base of " + t->name + ")");
    else out_ += char(kNone);
    u64(t->fields.size());
    for (const FieldInfo& f : t->fields) {
        str(f.name);
        // A struct type as an annotation crosses too, but not the type being written (its own
        // fields cannot name it): that check is skipped on the receiver.
        if (f.annotation.is(ObjType::StructType) && struct_ids_.count(f.annotation.as<StructTypeObj>()) &&
            struct_ids_[f.annotation.as<StructTypeObj>()] == id)
            out_ += char(kNone);
        else
            value(f.annotation, path + " (annotation of " + t->name + "." + f.name + ")");
        out_ += char(f.has_default ? 1 : 0);
        if (f.has_default) value(f.default_value, path + " (default of " + t->name + "." + f.name + ")");
    }
    std::vector<std::pair<std::string, Value>> methods;
    if (t->methods)
        for (size_t j = 0; j < t->methods->table.end_index(); ++j) {
            auto& e = t->methods->table.entry(j);
            if (e.live) methods.emplace_back(e.key.as<StrObj>()->data, e.value);
        }
    u64(methods.size());
    for (auto& [name, fn] : methods) {
        str(name);
        value(fn, path + " (method " + t->name + "." + name + ")");
    }
}

void Encoder::value(const Value& v0, const std::string& path) {
    Value v = v0;
    resolve_if_promise(v);  // a remote task needs the value: force it here
    if (++depth_ > kMaxDepth) cluster_error("cannot send " + path + " to a cluster worker: nested too deeply");
    struct Leave {
        int& d;
        ~Leave() { --d; }
    } leave{depth_};
    switch (v.tag()) {
        case weft::Tag::None: out_ += char(kNone); return;
        case weft::Tag::Bool: out_ += char(v.as_bool() ? kTrue : kFalse); return;
        case weft::Tag::Int: out_ += char(kInt); i64(v.as_int()); return;
        case weft::Tag::Float: {
            out_ += char(kFloat);
            double d = v.as_float();
            char b[8];
            std::memcpy(b, &d, 8);
            out_.append(b, 8);
            return;
        }
        case weft::Tag::Object: break;
    }
    switch (v.as_obj()->type) {
        case ObjType::Str: out_ += char(kStr); str(v.as<StrObj>()->data); return;
        case ObjType::Bytes: out_ += char(kBytes); str(v.as<BytesObj>()->data); return;
        case ObjType::List:
        case ObjType::Tuple: {
            const auto& items = v.is(ObjType::List) ? v.as<ListObj>()->items : v.as<TupleObj>()->items;
            out_ += char(v.is(ObjType::List) ? kList : kTuple);
            u64(items.size());
            for (size_t i = 0; i < items.size(); ++i) value(items[i], path + "[" + std::to_string(i) + "]");
            return;
        }
        case ObjType::Dict:
        case ObjType::Set: {
            const OrderedTable& t = v.is(ObjType::Dict) ? v.as<DictObj>()->table : v.as<SetObj>()->table;
            bool dict = v.is(ObjType::Dict);
            out_ += char(dict ? kDict : kSet);
            u64(t.size());
            for (size_t i = 0; i < t.end_index(); ++i) {
                const HashEntry& e = t.entry(i);
                if (!e.live) continue;
                value(e.key, path + " (a key)");
                if (dict) value(e.value, path + "[" + repr(e.key) + "]");
            }
            return;
        }
        case ObjType::Range: {
            auto* r = v.as<RangeObj>();
            out_ += char(kRange);
            i64(r->start);
            i64(r->stop);
            i64(r->step);
            return;
        }
        case ObjType::Function: function(v, path); return;
        case ObjType::Native: {
            auto* n = v.as<NativeObj>();
            if (!n->self.is_none() || n->method)
                cluster_error("cannot send " + path + " (the bound built-in method " + n->name + ") to a cluster worker");
            out_ += char(kNative);
            str(n->name);
            return;
        }
        case ObjType::BoundMethod: {
            auto* b = v.as<BoundMethodObj>();
            out_ += char(kBoundMethod);
            value(b->self, path + " (the receiver)");
            value(b->func, path);
            return;
        }
        case ObjType::Module: {
            auto* m = v.as<ModuleObj>();
            if (!m->path.empty())
                cluster_error("cannot send " + path + " (the module " + m->name + ") to a cluster worker: only standard modules cross");
            out_ += char(kModule);
            str(m->name);
            return;
        }
        case ObjType::TypeObj: out_ += char(kType); str(v.as<TypeObj>()->name); return;
        case ObjType::StructType: {
            auto* t = v.as<StructTypeObj>();
            if (t->builtin_error < 0) {
                struct_type(t, path);
                return;
            }
            out_ += char(kErrorType);
            str(t->name);
            return;
        }
        case ObjType::Struct: {
            auto* s = v.as<StructObj>();
            if (s->error) {
                encode_error(*this, v);
                return;
            }
            out_ += char(kStruct);
            struct_type(s->type, path);
            u64(s->fields.size());
            for (size_t i = 0; i < s->fields.size(); ++i) {
                const std::string& f = i < s->type->fields.size() ? s->type->fields[i].name : "#" + std::to_string(i);
                value(s->fields[i], path + "." + f);
            }
            return;
        }
        case ObjType::Opaque: {
            std::string kind = v.as<OpaqueObj>()->cls->name;
            bool vowel = !kind.empty() && std::strchr("aeiouAEIOU", kind[0]);
            cluster_error("cannot send " + std::string(vowel ? "an " : "a ") + kind + " to a cluster worker\n  " + path +
                          " (" + (vowel ? "an " : "a ") + kind + ")\n  " + advice_for(kind));
        }
        default:
            cluster_error("cannot send " + path + " (a " + type_name(v) + ") to a cluster worker");
    }
}

std::string Encoder::bundle(const Value& fn, const std::string& what, std::map<std::string, std::string>& sources,
                            Encoder* table) {
    Encoder e;
    e.sources = &sources;
    e.value(fn, what);
    std::string root = e.take();
    // The globals snapshot of every module a shipped function comes from (more modules may
    // appear while encoding globals: functions of imported modules).
    std::vector<std::string> globals;
    for (size_t i = 0; i < e.module_objs.size(); ++i) {
        const ModuleObj* m = e.module_objs[i];
        Encoder g;  // one global at a time: a global that cannot cross is left out
        std::string body;
        uint64_t count = 0;
        for (auto& [name, slot] : m->layout.slots) {
            if (!m->read_by_functions(slot) || size_t(slot) >= m->globals.size()) continue;
            Value gv;
            m->load(slot, gv);
            if (ModuleObj::is_undefined(gv)) continue;
            g.out_.clear();
            g.modules = e.modules;
            g.module_objs = e.module_objs;
            g.sources = &sources;
            try {
                g.str(name);
                g.value(gv, "global '" + name + "'");
            } catch (const WeftError&) {
                continue;
            }
            e.modules = g.modules;
            e.module_objs = g.module_objs;
            body += g.out_;
            ++count;
        }
        Encoder c;
        c.u64(count);
        globals.push_back(c.take() + body);
    }
    if (table) {
        table->modules = e.modules;
        table->module_objs = e.module_objs;
    }
    Encoder out;
    out.out_ = kBundleMagic;
    out.u64(e.modules.size());
    for (auto& m : e.modules) {
        out.str(m.sha);
        out.str(m.path);
        out.str(m.name);
    }
    std::string s = out.take();
    for (auto& g : globals) s += g;
    return s + root;
}

// ---------------------------------------------------------------------------
// Decoder

uint64_t Decoder::u64() {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p_ >= end_) cluster_error("malformed cluster message (truncated)");
        uint8_t b = uint8_t(*p_++);
        x |= uint64_t(b & 0x7f) << shift;
        if (!(b & 0x80)) return x;
    }
    cluster_error("malformed cluster message (bad varint)");
}
int64_t Decoder::i64() {
    uint64_t z = u64();
    return int64_t(z >> 1) ^ -int64_t(z & 1);
}
std::string Decoder::str() {
    uint64_t n = u64();
    if (n > uint64_t(end_ - p_)) cluster_error("malformed cluster message (string past the end)");
    std::string s(p_, n);
    p_ += n;
    return s;
}

Value Decoder::value() {
    if (p_ >= end_) cluster_error("malformed cluster message (truncated)");
    if (++depth_ > kMaxDepth) cluster_error("malformed cluster message (nested too deeply)");
    struct Leave {
        int& d;
        ~Leave() { --d; }
    } leave{depth_};
    if (!in_) cluster_error("malformed cluster message (a value where none was expected)");
    Vm& vm = in_->vm();
    uint8_t tag = uint8_t(*p_++);
    switch (tag) {
        case kNone: return Value();
        case kFalse: return Value::boolean(false);
        case kTrue: return Value::boolean(true);
        case kInt: return Value::integer(i64());
        case kFloat: {
            if (end_ - p_ < 8) cluster_error("malformed cluster message (truncated float)");
            double d;
            std::memcpy(&d, p_, 8);
            p_ += 8;
            return Value::number(d);
        }
        case kStr: return make_str(str());
        case kBytes: return make_bytes(str());
        case kList:
        case kTuple: {
            uint64_t n = u64();
            std::vector<Value> items;
            items.reserve(std::min<uint64_t>(n, 1 << 16));
            for (uint64_t i = 0; i < n; ++i) items.push_back(value());
            return tag == kList ? make_list(std::move(items)) : make_tuple(std::move(items));
        }
        case kDict: {
            uint64_t n = u64();
            Value d = make_dict();
            for (uint64_t i = 0; i < n; ++i) {
                Value k = value();
                Value v = value();
                d.as<DictObj>()->table.insert(k, std::move(v));
            }
            return d;
        }
        case kSet: {
            uint64_t n = u64();
            Value s = make_set();
            for (uint64_t i = 0; i < n; ++i) s.as<SetObj>()->table.insert(value(), Value());
            return s;
        }
        case kRange: {
            int64_t a = i64(), b = i64(), c = i64();
            return make_range(a, b, c);
        }
        case kFunction: {
            uint64_t mi = u64();
            if (!modules_ || mi >= modules_->size()) cluster_error("malformed cluster message (function of an unknown module)");
            ModuleObj* m = (*modules_)[mi];
            if (m->protos.empty()) cluster_error("malformed cluster message (module without code)");
            Proto* p = m->protos[0].get();
            uint64_t depth = u64();
            for (uint64_t i = 0; i < depth; ++i) {
                uint64_t k = u64();
                if (k >= p->children.size())
                    cluster_error("the function's place in " + m->path + " does not exist on this worker (different source?)");
                p = p->children[k].get();
            }
            auto* fn = new FunctionObj(p, m);
            Value fv = Value::adopt(fn);
            uint64_t nc = u64();
            for (uint64_t i = 0; i < nc; ++i) fn->captures.push_back(value());
            uint64_t nd = u64();
            for (uint64_t i = 0; i < nd; ++i) fn->defaults.push_back(value());
            uint64_t nt = u64();
            for (uint64_t i = 0; i < nt; ++i) fn->types.push_back(value());
            if (fn->captures.size() != p->chunk->captures.size() || int(fn->defaults.size()) != p->chunk->num_defaults ||
                int(fn->types.size()) != p->chunk->num_types)
                cluster_error("function '" + p->chunk->name + "' does not match its code on this worker");
            return fv;
        }
        case kNative:
        case kType:
        case kErrorType: {
            std::string name = str();
            // A standard module's function is named "module.function".
            if (auto dot = name.find('.'); tag == kNative && dot != std::string::npos) {
                ModuleObj* m = vm.import_module(*in_, name.substr(0, dot), nullptr);
                Value f;
                if (!m->find(name.substr(dot + 1), f)) cluster_error("the function '" + name + "' does not exist on this worker");
                return f;
            }
            auto it = vm.builtin_index.find(name);
            if (it == vm.builtin_index.end()) cluster_error("the builtin '" + name + "' does not exist on this worker");
            return vm.builtins[size_t(it->second)];
        }
        case kBoundMethod: {
            Value self = value();
            Value fn = value();
            return Value::adopt(new BoundMethodObj(std::move(self), std::move(fn)));
        }
        case kModule: {
            std::string name = str();
            ModuleObj* m = vm.import_module(*in_, name, nullptr);
            return Value::borrow(m);
        }
        case kError: {
            --p_;
            return decode_error(*in_, *this);
        }
        case kStructType:
        case kStructRef: {
            --p_;
            return struct_type();
        }
        case kStruct: {
            Value tv = struct_type();
            if (!tv.is(ObjType::StructType))
                cluster_error("a value of a struct type inside that type's own definition cannot cross");
            auto* t = tv.as<StructTypeObj>();
            uint64_t n = u64();
            if (n != t->fields.size())
                cluster_error("struct " + t->name + " has " + std::to_string(t->fields.size()) + " fields here, not " +
                              std::to_string(n) + " (different source?)");
            auto* s = new StructObj(t);
            Value sv = Value::adopt(s);
            for (uint64_t i = 0; i < n; ++i) s->fields[size_t(i)] = value();  // sized by the type
            return sv;
        }
        default: cluster_error("malformed cluster message (unknown tag " + std::to_string(tag) + ")");
    }
}

namespace {
// The struct types a process has received or owns, by (module, name): one type object per
// definition, so that values of it from several messages compare equal and pass isinstance.
std::mutex g_struct_types_mu;
std::map<std::pair<const ModuleObj*, std::string>, Value> g_struct_types;
}  // namespace

Value Decoder::struct_type() {
    uint8_t tag = uint8_t(*p_++);
    if (tag == kStructRef) {
        uint64_t id = u64();
        if (id >= struct_types_.size()) cluster_error("malformed cluster message (unknown struct type reference)");
        return struct_types_[size_t(id)];
    }
    if (tag != kStructType) cluster_error("malformed cluster message (a struct without its type)");
    uint64_t mi = u64();
    if (!modules_ || mi >= modules_->size())
        cluster_error("malformed cluster message (a struct type of an unknown module)");
    ModuleObj* m = (*modules_)[size_t(mi)];
    std::string name = str();
    size_t id = struct_types_.size();
    struct_types_.push_back(Value());  // a placeholder: its own definition cannot refer to it
    Value base = value();
    if (!base.is_none() && !base.is(ObjType::StructType))
        cluster_error("malformed cluster message (the base of struct " + name + " is not a type)");
    uint64_t nf = u64();
    std::vector<FieldInfo> fields;
    for (uint64_t i = 0; i < nf; ++i) {
        FieldInfo f;
        f.name = str();
        f.annotation = value();
        if (p_ >= end_) cluster_error("malformed cluster message (truncated struct type)");
        f.has_default = *p_++ != 0;
        if (f.has_default) f.default_value = value();
        fields.push_back(std::move(f));
    }
    uint64_t nm = u64();
    std::vector<std::pair<std::string, Value>> methods;
    for (uint64_t i = 0; i < nm; ++i) {
        std::string mname = str();
        Value fn = value();
        methods.emplace_back(std::move(mname), std::move(fn));
    }
    std::lock_guard<std::mutex> g(g_struct_types_mu);
    auto key = std::make_pair(static_cast<const ModuleObj*>(m), name);
    if (auto it = g_struct_types.find(key); it != g_struct_types.end()) {
        struct_types_[id] = it->second;
        return it->second;
    }
    Value tv;
    if (Value have; m->find(name, have) && have.is(ObjType::StructType) && have.as<StructTypeObj>()->name == name) {
        tv = have;  // the program's own type (the driver), or one a snapshot installed
    } else {
        auto* t = new StructTypeObj();
        tv = Value::adopt(t);
        t->name = name;
        t->module = m;
        if (base.is(ObjType::StructType)) {
            auto* b = base.as<StructTypeObj>();
            obj_incref(b);
            t->base = b;
            t->is_error = b->is_error;
        }
        t->fields = std::move(fields);
        Value md = make_dict();
        for (auto& [mname, fn] : methods) dict_unshare(md)->table.insert(Value::borrow(intern(mname)), fn);
        t->methods = static_cast<DictObj*>(md.release_obj());
        t->build_lookup_caches();
    }
    share(tv);
    pin(tv);
    g_struct_types.emplace(key, tv);
    struct_types_[id] = tv;
    return tv;
}

Value load_bundle(Interp& in, std::string_view bundle,
                  const std::function<std::string(const std::string& sha)>& source_of,
                  std::vector<ModuleObj*>* modules_out) {
    if (bundle.substr(0, 3) != kBundleMagic) cluster_error("malformed cluster bundle (not WB1)");
    std::vector<ModuleObj*> modules;
    Decoder d(&in, bundle.substr(3), &modules);
    uint64_t n = d.u64();
    for (uint64_t i = 0; i < n; ++i) {
        std::string sha = d.str(), path = d.str(), name = d.str();
        std::string src = source_of(sha);
        if (sha256_hex(src) != sha) cluster_error("the source of " + path + " fetched from the cluster does not match its hash");
        // Immortal like every module; cached by the caller per bundle hash, so compiled once.
        auto* m = new ModuleObj();
        m->name = name;
        m->path = path;
        m->source = src;
        in.vm().compile_detached(*m, src);
        m->initialized = true;  // its top level never runs here: the snapshot replaces it
        modules.push_back(m);
    }
    for (ModuleObj* m : modules) {
        uint64_t count = d.u64();
        for (uint64_t i = 0; i < count; ++i) {
            std::string name = d.str();
            Value v = d.value();
            share(v);
            pin(v);
            auto it = m->layout.slots.find(name);
            if (it == m->layout.slots.end()) continue;
            if (size_t(it->second) >= m->globals.size()) m->globals.resize(size_t(it->second) + 1, ModuleObj::undefined_marker());
            m->globals[size_t(it->second)] = std::move(v);
        }
    }
    Value fn = d.value();
    share(fn);
    if (modules_out) *modules_out = modules;
    return fn;
}

// ---------------------------------------------------------------------------
// Errors

void encode_error(Encoder& e, const Value& err) {
    auto* s = err.as<StructObj>();
    e.buffer() += char(kError);
    e.str(s->type->name);
    e.str(s->error ? s->error->message : std::string());
    const auto& trace = s->error ? s->error->trace : std::vector<std::string>{};
    e.u64(trace.size());
    for (auto& t : trace) e.str(t);
}

void encode_error_parts(Encoder& e, const std::string& kind, const std::string& message) {
    e.buffer() += char(kError);
    e.str(kind);
    e.str(message);
    e.u64(0);
}

Value decode_error(Interp& in, Decoder& d) {
    d.u64();  // the kError tag (one byte), left in place by the caller
    std::string kind = d.str();
    std::string msg = d.str();
    uint64_t n = d.u64();
    std::vector<std::string> trace;
    for (uint64_t i = 0; i < n; ++i) trace.push_back(d.str());
    ErrorKind k = ErrorKind::Error;
    bool known = false;
    for (size_t i = 0; i < size_t(ErrorKind::Count); ++i)
        if (kind == error_kind_name(ErrorKind(i))) {
            k = ErrorKind(i);
            known = true;
        }
    Value e = in.vm().make_error(k, known ? msg : kind + ": " + msg);
    e.as<StructObj>()->error->trace = std::move(trace);
    return e;
}

// ---------------------------------------------------------------------------
// Capabilities

void encode_caps(Encoder& e, const CapabilitySet* caps) {
    auto grant = [&](const CapabilitySet::Grant* g) {
        e.u64(g && g->all ? 1 : 0);
        e.u64(g ? g->items.size() : 0);
        if (g)
            for (auto& i : g->items) e.str(i);
    };
    grant(caps ? &caps->net : nullptr);
    grant(caps ? &caps->read : nullptr);
    grant(caps ? &caps->write : nullptr);
    grant(caps ? &caps->run : nullptr);
    grant(caps ? &caps->env : nullptr);
    e.u64(caps && caps->narrowed ? 1 : 0);
}

std::shared_ptr<const CapabilitySet> decode_caps(Decoder& d) {
    auto c = std::make_shared<CapabilitySet>();
    for (CapabilitySet::Grant* g : {&c->net, &c->read, &c->write, &c->run, &c->env}) {
        g->all = d.u64() != 0;
        uint64_t n = d.u64();
        for (uint64_t i = 0; i < n; ++i) g->items.push_back(d.str());
    }
    c->narrowed = d.u64() != 0;
    return c;
}

namespace {
// "host:port" or "host" -> (host, port or -1).
std::pair<std::string, int> split_host(const std::string& s) {
    auto colon = s.rfind(':');
    if (colon != std::string::npos && s.find(':') == colon) {
        try {
            return {s.substr(0, colon), std::stoi(s.substr(colon + 1))};
        } catch (...) {
        }
    }
    return {s, -1};
}

CapabilitySet::Grant meet(const CapabilitySet::Grant& a, const CapabilitySet::Grant& b,
                          const std::function<bool(const std::string& item, const std::string& grant)>& within) {
    CapabilitySet::Grant out;
    if (a.all && b.all) {
        out.all = true;
        return out;
    }
    if (a.all) return b;
    if (b.all) return a;
    auto add = [&](const std::string& s) {
        for (auto& x : out.items)
            if (x == s) return;
        out.items.push_back(s);
    };
    for (auto& x : b.items)
        for (auto& y : a.items)
            if (within(x, y)) add(x);
    for (auto& y : a.items)
        for (auto& x : b.items)
            if (within(y, x)) add(y);
    return out;
}
}  // namespace

std::shared_ptr<const CapabilitySet> intersect_caps(const CapabilitySet& a, const CapabilitySet& b) {
    auto c = std::make_shared<CapabilitySet>();
    auto path_in = [](const std::string& x, const std::string& y) {
        return path_within(canonical_path(x), canonical_path(y));
    };
    auto host_in = [](const std::string& x, const std::string& y) {
        auto [hx, px] = split_host(x);
        auto [hy, py] = split_host(y);
        if (hx.size() != hy.size()) return false;
        for (size_t i = 0; i < hx.size(); ++i)
            if (std::tolower(hx[i]) != std::tolower(hy[i])) return false;
        return py < 0 || px == py;
    };
    auto same = [](const std::string& x, const std::string& y) { return x == y; };
    c->net = meet(a.net, b.net, host_in);
    c->read = meet(a.read, b.read, path_in);
    c->write = meet(a.write, b.write, path_in);
    c->run = meet(a.run, b.run, same);
    c->env = meet(a.env, b.env, same);
    c->narrowed = b.narrowed;
    return c;
}

}  // namespace weft::cluster
