// bench/embed/bench_embed.cpp — the embedding API's costs beside Lua 5.4's C API (issue 18):
//   engine   creating an Engine on a shared Runtime (time, and resident memory per Engine)
//            vs luaL_newstate + luaL_openlibs (time, and lua_gc(LUA_GCCOUNT) bytes)
//   call     a host -> script call of add(i, 1) (Engine::call<int>) vs lua_getglobal + lua_pcall
//   def      a script -> host call of a sync host function from a Weft loop vs a Lua loop
//            calling a lua_CFunction
// Usage: weft-bench-embed [N]   (N calls per call benchmark, default 200000). Prints one line
// per figure; the "Embedding API" section of BENCHMARKS.md says how the figures were taken.
//        weft-bench-embed N calls  only the host -> script call loop (for perf stat / callgrind:
//                                  the difference between two N is the cost of N calls).
#include <weft/weft.hpp>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

long rss_bytes() {
    std::ifstream f("/proc/self/statm");
    long pages = 0, resident = 0;
    f >> pages >> resident;
    return resident * sysconf(_SC_PAGESIZE);
}

int l_inc(lua_State* L) {
    lua_Integer x = luaL_checkinteger(L, 1);
    lua_pushinteger(L, x + 1);
    return 1;
}

}  // namespace

int calls_only(long n) {
    weft::EngineOptions o;
    o.workers = 1;
    weft::Engine e(o);
    e.exec("def add(a, b):\n    return a + b\n");
    long sum = 0;
    double t0 = now_s();
    for (long i = 0; i < n; ++i) sum += e.call<std::int64_t>("add", i, 1);
    double t = (now_s() - t0) / double(n);
    std::printf("call_ns %.0f (sum %ld)\n", t * 1e9, sum);
    return 0;
}

int main(int argc, char** argv) {
    long n = argc > 1 ? std::atol(argv[1]) : 200000;
    if (argc > 2 && std::string(argv[2]) == "calls") return calls_only(n);
    constexpr int kEngines = 200;

    // ---- Engine creation on a shared runtime
    weft::RuntimeOptions ro;
    ro.workers = 2;
    auto rt = weft::Runtime::create(ro);
    {
        weft::EngineOptions warm;  // the first Engine pays for process-wide initialization
        warm.runtime = rt;
        weft::Engine e(warm);
    }
    std::vector<std::unique_ptr<weft::Engine>> engines;
    long rss0 = rss_bytes();
    double t0 = now_s();
    for (int i = 0; i < kEngines; ++i) {
        weft::EngineOptions o;
        o.runtime = rt;
        engines.push_back(std::make_unique<weft::Engine>(o));
    }
    double t_engine = (now_s() - t0) / kEngines;
    long rss_engine = (rss_bytes() - rss0) / kEngines;
    engines.clear();

    std::vector<lua_State*> states;
    t0 = now_s();
    for (int i = 0; i < kEngines; ++i) {
        lua_State* L = luaL_newstate();
        luaL_openlibs(L);
        states.push_back(L);
    }
    double t_lua_state = (now_s() - t0) / kEngines;
    long lua_bytes = long(lua_gc(states[0], LUA_GCCOUNT, 0)) * 1024 + lua_gc(states[0], LUA_GCCOUNTB, 0);
    for (auto* L : states) lua_close(L);

    std::printf("engine_create_us %.1f  lua_state_create_us %.1f\n", t_engine * 1e6, t_lua_state * 1e6);
    std::printf("engine_rss_kib %.1f  lua_state_kib %.1f\n", rss_engine / 1024.0, lua_bytes / 1024.0);

    // ---- host -> script calls
    weft::EngineOptions o;
    o.workers = 1;
    weft::Engine e(o);
    e.def("inc", [](std::int64_t x) { return x + 1; });
    e.exec("def add(a, b):\n    return a + b\n"
           "def loop(n):\n    s = 0\n    for i in range(n):\n        s = inc(s)\n    return s\n");
    long sum = 0;
    t0 = now_s();
    for (long i = 0; i < n; ++i) sum += e.call<std::int64_t>("add", i, 1);
    double t_call = (now_s() - t0) / double(n);

    lua_State* L = luaL_newstate();
    luaL_openlibs(L);
    lua_register(L, "inc", l_inc);
    luaL_dostring(L, "function add(a, b) return a + b end\n"
                     "function loop(n) local s = 0 for i = 1, n do s = inc(s) end return s end");
    long lsum = 0;
    t0 = now_s();
    for (long i = 0; i < n; ++i) {
        lua_getglobal(L, "add");
        lua_pushinteger(L, i);
        lua_pushinteger(L, 1);
        if (lua_pcall(L, 2, 1, 0) != LUA_OK) return 1;
        lsum += long(lua_tointeger(L, -1));
        lua_pop(L, 1);
    }
    double t_lua_call = (now_s() - t0) / double(n);
    if (sum != lsum) return 1;
    std::printf("call_ns %.0f  lua_pcall_ns %.0f  ratio %.2f\n", t_call * 1e9, t_lua_call * 1e9, t_call / t_lua_call);

    // ---- script -> host calls (sync def)
    long m = n * 10;
    t0 = now_s();
    long r = e.call<long>("loop", m);
    double t_def = (now_s() - t0) / double(m);
    lua_getglobal(L, "loop");
    lua_pushinteger(L, m);
    t0 = now_s();
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) return 1;
    double t_lua_def = (now_s() - t0) / double(m);
    if (r != long(lua_tointeger(L, -1))) return 1;
    lua_close(L);
    std::printf("def_call_ns %.0f  lua_cfunction_ns %.0f  ratio %.2f\n", t_def * 1e9, t_lua_def * 1e9,
                t_def / t_lua_def);
    return 0;
}
