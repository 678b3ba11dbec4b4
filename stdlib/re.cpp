// re.cpp — placeholder.
#include "stdlib/stdlib.h"
#include "vm/function.h"
namespace weft {
void init_re_module(ModuleObj&) {}
}  // namespace weft
