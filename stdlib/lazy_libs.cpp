// lazy_libs.cpp — dlopen and dlsym of libcurl and libpq on first use (see lazy_libs.h for why).
#include "stdlib/lazy_libs.h"

#include <dlfcn.h>

#include <string>

#include "vm/native.h"

namespace weft::lazy {
namespace {

// One library's table, or the reason it could not be loaded.
template <class Api>
struct Loaded {
    Api api;
    std::string error;  // empty when loaded
};

// Opens `soname` and fills `api` through `fill(handle, missing)`; RTLD_LOCAL keeps the
// library's symbols (and its dependencies') out of the process's global scope.
template <class Api, class Fill>
Loaded<Api> load(const char* soname, Fill fill) {
    Loaded<Api> out;
    void* h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char* why = dlerror();
        out.error = std::string("cannot load ") + soname + ": " + (why ? why : "unknown error");
        return out;
    }
    std::string missing;
    fill(h, out.api, missing);
    if (!missing.empty()) out.error = std::string(soname) + " lacks " + missing + " (too old?)";
    return out;  // the handle stays open for the life of the process
}

template <class Api>
const Api& checked(const Loaded<Api>& l) {
    if (!l.error.empty()) throw WeftError(ErrorKind::IOError, l.error);
    return l.api;
}

}  // namespace

const CurlApi& curl() {
    static const Loaded<CurlApi> lib = load<CurlApi>("libcurl.so.4", [](void* h, CurlApi& a, std::string& missing) {
#define WEFT_CURL_LOAD(name)                                                            \
    a.name = reinterpret_cast<decltype(a.name)>(dlsym(h, "curl_" #name));               \
    if (!a.name && missing.empty()) missing = "curl_" #name;
        WEFT_CURL_FUNCTIONS(WEFT_CURL_LOAD)
#undef WEFT_CURL_LOAD
    });
    return checked(lib);
}

const PqApi& pq() {
    static const Loaded<PqApi> lib = load<PqApi>("libpq.so.5", [](void* h, PqApi& a, std::string& missing) {
#define WEFT_PQ_LOAD(name)                                                              \
    a.name = reinterpret_cast<decltype(a.name)>(dlsym(h, "PQ" #name));                  \
    if (!a.name && missing.empty()) missing = "PQ" #name;
        WEFT_PQ_FUNCTIONS(WEFT_PQ_LOAD)
#undef WEFT_PQ_LOAD
    });
    return checked(lib);
}

}  // namespace weft::lazy
