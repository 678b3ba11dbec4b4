// stdlib.cpp — the table of standard modules.
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
    Vm::register_native_module("http", init_http_module);
}

}  // namespace weft
