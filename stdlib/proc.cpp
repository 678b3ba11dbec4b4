// proc.cpp — placeholder.
#include "stdlib/stdlib.h"
#include "vm/function.h"
namespace weft {
void init_proc_module(ModuleObj&) {}
}  // namespace weft
