// stdlib.h — registers Weft's standard modules with the VM.
#pragma once

namespace weft {

// Makes every standard module (fs, ...) importable. Call once before running a program.
void register_stdlib();

// Module initializers (one per file in stdlib/).
struct ModuleObj;
void init_fs_module(ModuleObj& m);

}  // namespace weft
