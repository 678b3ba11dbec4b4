// repl.h — the interactive loop of `weft` with no arguments.
#pragma once

namespace weft {

class Vm;

// Reads lines with libedit (history in ~/.weft_history), gathers multi-line
// blocks until they compile, runs each input and prints expression values.
// Returns the process exit status (0 at end of input).
int run_repl(Vm& vm);

}  // namespace weft
