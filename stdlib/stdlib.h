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

}  // namespace weft
