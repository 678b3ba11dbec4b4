// uuid.cpp — placeholder.
#include "stdlib/stdlib.h"
#include "vm/function.h"
namespace weft {
void init_uuid_module(ModuleObj&) {}
}  // namespace weft
