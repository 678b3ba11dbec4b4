// sys.h — leaving a program and its standard streams: the `exit`/`quit` builtins, the `sys`
// module (exit, argv, stdout, stderr) and print()'s `file=`.
//
// exit(code) does not end the process on the spot: it raises SystemExit, an error kind that,
// like Cancelled, stands apart from Error (a bare `except:` or `except Error` does not catch
// it), so every `finally` and `with` exit on the way out runs, as for any other error; the
// command line turns an uncaught SystemExit into the exit status without a traceback.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vm/native.h"

namespace weft {

struct ModuleObj;

// Declares the keywords native `n` accepts (NativeObj::kwargs, checked by the interpreter)
// when this build's NativeObj has that field; a no-op otherwise.
template <class N>
void set_native_kwargs(N* n, const char* accepted) {
    if constexpr (requires { n->kwargs = accepted; }) n->kwargs = accepted;
}

// sys.stdout (fd 1) or sys.stderr (fd 2): immortal stream objects with write(s) and flush().
Value std_stream(int fd);

// print(..., file=f, flush=...): writes `s` to `f`, which is sys.stdout, sys.stderr or None
// (standard output). Standard output goes through the program's buffer (cx.write_stdout) and
// is flushed when `flush` is true; standard error is written at once. Raises TypeError for
// any other `f`. Thread-safe.
void write_to_file(CallContext& cx, const Value& file, std::string_view s, bool flush);

// exit(code=0) / quit(code=0) / sys.exit(code=0): raises SystemExit carrying `code` (an int,
// None for 0, or a string printed on stderr with status 1, as in Python).
Value bi_exit(CallContext& cx, const CallArgs& a);

// Fills the `sys` module: exit, argv ([program] + arguments, as Python's sys.argv), stdout,
// stderr.
void init_sys_module(ModuleObj& m, const std::string& program, const std::vector<std::string>& args);

// Raises `kind(message)` marked as a failed import (a missing module or file, a compile error
// in an imported file): uncaught, it ends the program with status 2, as a compile error of
// the program itself does. It is an ordinary error otherwise (`except IOError` catches it).
[[noreturn]] void throw_import_failure(ErrorKind kind, std::string message);
// Was `err` raised by throw_import_failure?
bool is_import_failure(const Value& err);

// Is `err` a SystemExit error value?
bool is_system_exit(const Value& err);

// The process exit status an uncaught error asks for when it is a SystemExit (or an ErrorGroup
// of SystemExits only, from exit() in tasks): its code, after printing a string code on
// stderr. -1 for any other error (which the caller reports with a traceback).
int system_exit_status(const Value& err);

}  // namespace weft
