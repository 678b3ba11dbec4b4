// program.h — what the `weft` command line needs of an Engine beyond the public API.
//
// The command line is the first embedder (docs/embedding.md, "The command line is an
// Engine"): `weft run` builds a weft::Engine from its flags and calls Engine::run_program.
// A few flags have no EngineOptions counterpart because they only make sense for a process
// that is the program — its line-per-event --trace on stderr, the --stats summary at exit,
// --lisp for -e and standard input, the fault handler for fiber-stack overflows, --trace-out's
// raw runtime hook — and `weft check`, `weft test`, the REPL, the signal watcher and the
// cluster driver work on the Engine's Vm itself. This header is not installed: it is the
// library's own, not part of weft.hpp's promise to hosts.
#pragma once

#include <weft/weft.hpp>

#include <functional>
#include <string>

#include "weft/runtime/runtime.hpp"

namespace weft {
class Vm;
}

namespace weft::api::detail {

struct ProgramSettings {
    std::string program;  // sys.argv[0]: the file, "-e" or "-"
    bool lisp = false;    // --lisp: -e, standard input and the REPL read Lisp
    bool trace = false;   // --trace: one line per task event on stderr
    bool stats = false;   // --stats: runtime counters on stderr when the Engine goes
    // The handler that reports a fiber-stack overflow by name (rt::RuntimeOptions).
    bool install_signal_handlers = false;
    // --trace-out's recorder (vm/trace_out.h): every runtime event, on worker threads.
    std::function<void(const rt::TraceEvent&)> trace_hook;
};

// The Vm under an Engine: for the command line's commands that are not Engine calls (check,
// test, the REPL) and its signal watcher and cluster driver. Valid while the Engine lives.
::weft::Vm& engine_vm(Engine& e);

}  // namespace weft::api::detail
