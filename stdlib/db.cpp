// db.cpp — placeholder.
#include "stdlib/stdlib.h"
#include "vm/function.h"
namespace weft {
void init_db_module(ModuleObj&) {}
}  // namespace weft
