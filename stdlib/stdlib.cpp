// stdlib.cpp — the table of standard modules.
//
// `http` is not here yet: it needs the runtime's reactor (libcurl's multi-socket
// API driven by it), which lands with the runtime issue.
#include "stdlib/stdlib.h"

#include "vm/interp.h"

namespace weft {

void register_stdlib() {
    Vm::register_native_module("fs", init_fs_module);
    Vm::register_native_module("json", init_json_module);
    Vm::register_native_module("re", init_re_module);
    Vm::register_native_module("math", init_math_module);
    Vm::register_native_module("time", init_time_module);
    Vm::register_native_module("random", init_random_module);
    Vm::register_native_module("uuid", init_uuid_module);
    Vm::register_native_module("proc", init_proc_module);
    Vm::register_native_module("db", init_db_module);
}

}  // namespace weft
