// math.cpp — placeholder.
#include "stdlib/stdlib.h"
#include "vm/function.h"
namespace weft {
void init_math_module(ModuleObj&) {}
}  // namespace weft
