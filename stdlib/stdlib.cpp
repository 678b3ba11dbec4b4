// stdlib.cpp — the table of standard modules.
#include "stdlib/stdlib.h"

#include "vm/interp.h"

namespace weft {

void register_stdlib() {
    Vm::register_native_module("fs", init_fs_module);
}

}  // namespace weft
