// json.cpp — placeholder.
#include "stdlib/stdlib.h"
#include "vm/function.h"
namespace weft {
void init_json_module(ModuleObj&) {}
}  // namespace weft
