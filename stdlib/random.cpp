// random.cpp — placeholder.
#include "stdlib/stdlib.h"
#include "vm/function.h"
namespace weft {
void init_random_module(ModuleObj&) {}
}  // namespace weft
