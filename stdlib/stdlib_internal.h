// stdlib_internal.h — helpers shared by the standard modules: binding a
// native's positional and keyword arguments to named parameters (Python's
// rules: each parameter once, unknown keywords rejected), typed parameter
// access with TypeErrors that name the function and parameter, and defining
// module functions.
//
// Kept header-only and small: every module needs the same argument handling,
// and writing it per function is where error messages drift apart.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <functional>
#include <string>
#include <vector>

#include "vm/collections.h"
#include "vm/function.h"
#include "vm/native.h"

namespace weft::stdlib {

// Arguments bound to parameter names, in declaration order; a missing optional
// parameter is nullptr.
class Params {
  public:
    // `params` are the parameter names; the first `required` must be given.
    // TypeError for too many positional arguments, an unknown or repeated
    // keyword, or a missing required parameter.
    Params(const CallArgs& a, const char* fn, std::initializer_list<const char*> params,
           size_t required)
        : fn_(fn), names_(params), vals_(params.size(), nullptr) {
        if (a.pos.size() > names_.size())
            throw WeftError(ErrorKind::TypeError,
                            std::string(fn) + "() takes at most " + std::to_string(names_.size()) +
                                " arguments (" + std::to_string(a.pos.size()) + " given)");
        for (size_t i = 0; i < a.pos.size(); ++i)
            vals_[i] = &a.pos[i];
        for (auto& k : a.kw) {
            size_t i = 0;
            while (i < names_.size() && k.name != names_[i])
                ++i;
            if (i == names_.size())
                throw WeftError(ErrorKind::TypeError,
                                std::string(fn) + "() got an unexpected keyword argument '" +
                                    std::string(k.name) + "'");
            if (vals_[i])
                throw WeftError(
                    ErrorKind::TypeError,
                    std::string(fn) + "() got multiple values for argument '" + names_[i] + "'");
            vals_[i] = &k.value;
        }
        for (size_t i = 0; i < required; ++i)
            if (!vals_[i])
                throw WeftError(
                    ErrorKind::TypeError,
                    std::string(fn) + "() missing required argument '" + names_[i] + "'");
    }

    // The value, or nullptr when not given.
    const Value* get(size_t i) const { return vals_[i]; }
    // Given and not None.
    bool has(size_t i) const { return vals_[i] && !vals_[i]->is_none(); }

    std::string str(size_t i) const {
        const Value* v = vals_[i];
        if (!v || !v->is(ObjType::Str)) bad(i, "str");
        return v->as<StrObj>()->data;
    }
    std::string str_or(size_t i, std::string dflt) const { return has(i) ? str(i) : dflt; }
    int64_t integer(size_t i) const {
        const Value* v = vals_[i];
        if (!v || !(v->is_int() || v->is_bool())) bad(i, "int");
        return v->is_int() ? v->as_int() : int64_t(v->as_bool());
    }
    int64_t int_or(size_t i, int64_t dflt) const { return has(i) ? integer(i) : dflt; }
    double number(size_t i) const {
        const Value* v = vals_[i];
        if (!v || !(v->is_number() || v->is_bool())) bad(i, "a number");
        return v->is_bool() ? double(v->as_bool()) : v->as_number();
    }
    bool flag_or(size_t i, bool dflt) const { return vals_[i] ? truthy(*vals_[i]) : dflt; }
    // A `timeout=` in seconds: -1 when not given (or None); ValueError when NaN or negative.
    double timeout(size_t i) const {
        if (!has(i)) return -1;
        double t = number(i);
        if (std::isnan(t) || t < 0)
            throw WeftError(ErrorKind::ValueError, "timeout must be a non-negative number");
        return t;
    }
    // Data to send or write: a str's UTF-8 or a bytes value's bytes; TypeError otherwise.
    std::string str_or_bytes(size_t i) const {
        const Value* v = vals_[i];
        if (v && v->is(ObjType::Str)) return v->as<StrObj>()->data;
        if (v && v->is(ObjType::Bytes)) return v->as<BytesObj>()->data;
        bad(i, "str or bytes");
    }

    [[noreturn]] void bad(size_t i, const char* want) const {
        std::string got = vals_[i] ? type_name(*vals_[i]) : "nothing";
        throw WeftError(ErrorKind::TypeError, std::string(fn_) + "() argument '" + names_[i] +
                                                  "' must be " + want + ", not " + got);
    }

  private:
    const char* fn_;
    std::vector<const char*> names_;
    std::vector<const Value*> vals_;
};

// Defines `module.name` as a native function named "module.name". `kwargs` are the keywords it
// takes (NativeObj::kwargs): by default the function binds them itself with Params, which
// rejects unknown ones; pass nullptr for a function that takes none.
inline void define_fn(ModuleObj& m, const char* name, NativeFn f,
                      const char* kwargs = kAnyKeywords) {
    auto* n = new NativeObj(m.name + "." + name, f);
    n->kwargs = kwargs;
    m.define(name, Value::adopt(n));
}

// A native bound to a host object: calling it calls `fn(cx, self, args)`. How
// the standard library makes closures (decorator wrappers) without a Weft frame.
// `kwargs` as for NativeObj::kwargs.
inline Value bound_native(std::string name, MethodFn fn, Value self,
                          const char* kwargs = nullptr) {
    auto* n = new NativeObj(std::move(name), nullptr);
    n->method = fn;
    n->kwargs = kwargs;
    n->self = std::move(self);
    return Value::adopt(n);
}

// IOError "<action> '<path>': <strerror(err)>".
[[noreturn]] inline void io_error(const std::string& action, const std::string& path, int err) {
    throw WeftError(ErrorKind::IOError, action + " '" + path + "': " + strerror(err));
}

// Dict helper: d[key] = v for a str key.
inline void dict_put(Value& d, const char* key, Value v) {
    set_item(d, make_str(key), std::move(v));
}

// One HTTP exchange for other modules (llm), through the `http` module's client (stdlib/
// http.cpp: capabilities checked, connections pooled, the task parks while waiting). No
// redirects are followed. With `on_data`, the body is handed over in pieces as it arrives
// (status known by then; it runs in the calling task and may wait) and HttpResult::body stays
// empty. Raises NetworkError/TimeoutError/PermissionDenied like http.get; any status is a result.
struct HttpExchange {
    std::string method = "POST";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string content_type;  // "" = none
    double timeout = -1;       // seconds, total; < 0 = none
    std::function<void(long status, std::string& piece)> on_data;
};
struct HttpResult {
    long status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;
};
HttpResult http_exchange(CallContext& cx, const HttpExchange& x);

// JSON for other modules (json.cpp): parse a document (ValueError with
// Python's message when malformed; `text` must be valid UTF-8), and dump a
// value with json.dump's defaults (TypeError for values JSON cannot hold).
Value json_parse_text(std::string_view text);
std::string json_dump_text(CallContext& cx, const Value& v);

// `s` as UTF-8 text with each invalid byte replaced by U+FFFD, so that one stray
// byte in a process's output or an HTTP body does not lose the rest.
std::string utf8_lossy(const std::string& s);

// A host object's C++ type from a receiver (the class pointer was checked by
// the interpreter's method lookup).
template <class T>
T* self_as(const Value& self) {
    return static_cast<T*>(self.as<OpaqueObj>());
}

}  // namespace weft::stdlib
