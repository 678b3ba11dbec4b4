// time.cpp — placeholder.
#include "stdlib/stdlib.h"
#include "vm/function.h"
namespace weft {
void init_time_module(ModuleObj&) {}
}  // namespace weft
