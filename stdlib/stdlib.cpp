// stdlib.cpp — the table of standard modules.
#include "stdlib/stdlib.h"

#include "vm/interp.h"
#include "vm/lib_internal.h"
#include "stdlib/stdlib_internal.h"

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
    Vm::register_native_module("net", init_net_module);
}

namespace stdlib {
std::string utf8_lossy(const std::string& s) {
    if (lib::utf8_validate(s) == std::string::npos) return s;
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        size_t bad = lib::utf8_validate(std::string_view(s).substr(i));
        if (bad == std::string::npos) {
            out.append(s, i, std::string::npos);
            break;
        }
        out.append(s, i, bad);
        out += "\xEF\xBF\xBD";
        i += bad + 1;
    }
    return out;
}
}  // namespace stdlib

}  // namespace weft
