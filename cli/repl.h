// repl.h — the interactive loop of `weft` with no arguments.
#pragma once

#include <string>

namespace weft {

class Vm;

// "0.1.0 (commit 1a2b3c4d5e6f)", or "0.1.0 (no git commit)" for a build made outside a git
// checkout: what `weft --version` prints after "weft " and the REPL banner shows.
std::string version_string();

// Reads lines with libedit (history in ~/.weft_history), gathers multi-line
// blocks until they compile, runs each input and prints expression values.
// Returns the process exit status (0 at end of input).
int run_repl(Vm& vm);

}  // namespace weft
