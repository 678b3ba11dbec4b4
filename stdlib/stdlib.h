// stdlib.h — registers Weft's standard modules and standard builtins with the VM.
//
// Modules (fs, json, re, math, time, random, uuid, proc, db, http) are built on first
// import; the capability builtins (restrict, caps, capabilities, effects, env)
// are global names, added to a Vm by register_stdlib_builtins.
#pragma once

namespace weft {

class Vm;
struct ModuleObj;

// Makes every standard module importable. Call once before running a program.
void register_stdlib();

// Adds the standard library's global builtins (restrict, caps, capabilities,
// effects, env) to `vm`. Call after constructing the Vm, before compiling.
void register_stdlib_builtins(Vm& vm);

// Module initializers (one per file in stdlib/).
void init_fs_module(ModuleObj& m);
void init_json_module(ModuleObj& m);
void init_re_module(ModuleObj& m);
void init_math_module(ModuleObj& m);
void init_time_module(ModuleObj& m);
void init_random_module(ModuleObj& m);
void init_uuid_module(ModuleObj& m);
void init_proc_module(ModuleObj& m);
void init_db_module(ModuleObj& m);
void init_http_module(ModuleObj& m);
void init_net_module(ModuleObj& m);
void init_http_server(ModuleObj& m);  // http.serve and http.Response, part of `http`
void register_llm_builtin(Vm& vm);    // llm() (stdlib/llm.cpp)
void register_circuit_breaker_builtin(Vm& vm);  // circuit_breaker() (stdlib/circuit_breaker.cpp)

// Processes started by the `proc` module and not yet reaped: sends SIGTERM to each one's
// process group, waits up to `grace_seconds` for them to exit, then SIGKILLs the groups of
// those still running and reaps every one. Returns how many there were. For the end of a
// program stopped by SIGINT/SIGTERM (cli/signals.cpp); call it with no task running.
// Thread-safe.
int terminate_children(double grace_seconds);

// SIGKILL to the process group of every such child, without waiting or reaping: for an exit
// that cannot wait (a second Ctrl-C). Thread-safe; does nothing if the list is busy.
void kill_children_now() noexcept;

}  // namespace weft
