// repl.cpp — the REPL: line editing and history from libedit's readline interface.
//
// An input is complete when the parser stops reporting "incomplete" (an open bracket, a
// triple-quoted string) — except a block (a line ending in ':' outside brackets), which ends
// with an empty line, as in Python. Only a terminal gets a REPL: a program piped into `weft`
// runs as a program (cli/main.cpp).
//
// Ctrl-C: a SIGINT handler (installed without SA_RESTART, libedit's own signal handling off)
// sets a flag and writes a byte to a pipe. At the prompt the interrupted read makes readline()
// return NULL: the flag tells it from Ctrl-D, and the line is dropped. While a statement runs,
// a watcher thread reading the pipe cancels the main task (Vm::interrupt_main: `finally`
// blocks run, tasks are cancelled) and the REPL reports KeyboardInterrupt and prompts again.
// The handler itself only does async-signal-safe things (a flag, write(2)).
//
// History is written at exit to a temporary file beside ~/.weft_history, then renamed over
// it: a session killed while writing (the terminal closed) leaves the old history whole.
#include "cli/repl.h"

#include <editline/readline.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "vm/interp.h"
#include "vm/lib_internal.h"

namespace weft {

namespace {

constexpr int kHistoryLines = 1000;

volatile sig_atomic_t g_interrupted = 0;
int g_wake[2] = {-1, -1};  // SIGINT handler -> watcher thread

void on_sigint(int) {
    int saved = errno;
    g_interrupted = 1;
    char c = 1;
    ssize_t r = write(g_wake[1], &c, 1);
    (void)r;
    errno = saved;
}

const char* kHelpText = R"(Weft is a concurrent-by-default scripting language that reads like Python.

  Type a statement or an expression and press Enter: an expression's value is printed.
  A block (a line ending in ':') ends with an empty line; an open bracket or a triple-quoted
  string continues on the next line until it closes.
  Ctrl-C cancels a running statement (its `finally` blocks run) or clears the line;
  Ctrl-D, exit() or quit() leaves.
  help(x) tells what x is.

  The guide: docs/language/README.md (basics, functions, concurrency, errors, builtins,
  standard modules). `weft --help` lists the command line.
)";

Value bi_help(CallContext& cx, const CallArgs& a) {
    if (!a.kw.empty()) lib::type_error("help() takes no keyword arguments");
    if (a.pos.size() > 1) lib::type_error("help() takes at most 1 argument (" + std::to_string(a.pos.size()) + " given)");
    if (a.pos.empty()) {
        cx.write_stdout(kHelpText);
        return Value();
    }
    const Value& x = a.pos[0];
    std::string what = type_name(x);
    std::string out = repr(x) + " is a value of type " + what + ".";
    if (x.is(ObjType::Native)) out = repr(x) + " is a built-in function: see docs/language/builtins.md.";
    else if (x.is(ObjType::Function)) out = repr(x) + " is a function.";
    else if (x.is(ObjType::Module)) out = repr(x) + " is a module: see docs/language/stdlib.md.";
    else if (x.is(ObjType::StructType)) out = repr(x) + " is a type.";
    cx.write_stdout(out + "\n");
    return Value();
}

std::string history_path() {
    const char* home = getenv("HOME");
    return home ? std::string(home) + "/.weft_history" : std::string();
}

// Writes the history beside `path` and renames it over `path` (atomic on one file system).
void save_history(const std::string& path) {
    std::string tmp = path + ".tmp." + std::to_string(getpid());
    if (write_history(tmp.c_str()) == 0 && rename(tmp.c_str(), path.c_str()) == 0) return;
    unlink(tmp.c_str());
    fprintf(stderr, "weft: could not save the history to %s\n", path.c_str());
}

// Is the buffer a block statement: a compound statement (it starts with `if`, `def`, `@`, ...:
// a one-line `if x: f()` may still get an `else:`) or some line ends in ':' outside brackets
// and strings? Such input runs at the empty line that follows, as in Python; any other runs
// as soon as it compiles.
bool is_block(const std::string& src) {
    // The others (match, struct, concurrent, select, ...) always end their first line with ':'.
    static const char* kCompound[] = {"if", "for", "while", "def", "try", "with"};
    size_t start = src.find_first_not_of(" \t");
    if (start != std::string::npos && src[start] == '@') return true;
    for (const char* k : kCompound) {
        size_t n = strlen(k);
        if (start == std::string::npos || src.compare(start, n, k) != 0 || start + n >= src.size()) continue;
        char next = src[start + n];
        size_t after = src.find_first_not_of(" \t", start + n);
        // `if_ready = 3` or `with = 1` would be a name, not the statement.
        if (next == ':' || ((next == ' ' || next == '\t') && after != std::string::npos && src[after] != '=' &&
                            src[after] != '\n'))
            return true;
    }
    int depth = 0;
    char last = 0;  // last significant character of the current line
    bool block = false;
    for (size_t i = 0; i < src.size(); ++i) {
        char c = src[i];
        if (c == '#') {
            while (i + 1 < src.size() && src[i + 1] != '\n') ++i;
        } else if (c == '"' || c == '\'') {
            bool triple = src.compare(i, 3, std::string(3, c)) == 0;
            size_t j = i + (triple ? 3 : 1);
            while (j < src.size()) {
                if (src[j] == '\\') {
                    j += 2;
                    continue;
                }
                if (triple ? src.compare(j, 3, std::string(3, c)) == 0 : (src[j] == c || src[j] == '\n')) break;
                ++j;
            }
            i = std::min(src.size(), j + (triple ? 3 : 1)) - 1;
            last = c;
        } else if (c == '(' || c == '[' || c == '{') {
            ++depth;
            last = c;
        } else if (c == ')' || c == ']' || c == '}') {
            if (depth > 0) --depth;
            last = c;
        } else if (c == '\n') {
            if (depth == 0 && last == ':') block = true;
            last = 0;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            last = c;
        }
    }
    return block || (depth == 0 && last == ':');
}

}  // namespace

std::string version_string() {
    std::string commit = WEFT_GIT_COMMIT;
    return std::string(WEFT_VERSION) + (commit.empty() ? " (no git commit)" : " (commit " + commit + ")");
}

int run_repl(Vm& vm) {
    auto* help = new NativeObj("help", bi_help);
    vm.add_builtin("help", Value::adopt(help));

    std::string hist = history_path();
    if (vm.options().lisp)
        printf("Weft %s, Lisp surface — type a form to evaluate it (docs/language/lisp.md), Ctrl-D exits.\n",
               version_string().c_str());
    else
        printf("Weft %s — type code to run it, an empty line ends a block, help() for help, Ctrl-D exits.\n",
               version_string().c_str());
    fflush(stdout);
    rl_catch_signals = 0;  // our handler, not libedit's (which re-raises SIGINT and kills us)
    using_history();
    stifle_history(kHistoryLines);
    if (!hist.empty()) read_history(hist.c_str());

    // SIGINT must reach this (the main) thread, the one in readline() at the prompt and idle
    // in the runtime's block_on while a statement runs: every other thread blocks it. Threads
    // inherit the mask of their creator, so the watcher and the runtime's workers (started by
    // a first, empty input) are created with SIGINT blocked.
    sigset_t sigint;
    sigemptyset(&sigint);
    sigaddset(&sigint, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigint, nullptr);
    if (pipe(g_wake) != 0) g_wake[0] = g_wake[1] = -1;
    // The watcher: a byte is a Ctrl-C (cancel what runs, if anything), 0 means "stop".
    std::thread watcher([&vm] {
        for (;;) {
            char c = 0;
            ssize_t n = read(g_wake[0], &c, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n != 1 || c == 0) break;
            vm.interrupt_main();
        }
    });
    // Starts the runtime's threads (with SIGINT blocked); an empty Lisp input reads no form.
    vm.repl_input(vm.options().lisp ? "" : "pass\n");
    struct sigaction sa = {}, old_sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the read at the prompt returns EINTR
    sigaction(SIGINT, &sa, &old_sa);
    pthread_sigmask(SIG_UNBLOCK, &sigint, nullptr);

    int status = 0;
    bool at_eof = false;
    std::string buffer;
    for (;;) {
        g_interrupted = 0;
        char* raw = readline(buffer.empty() ? ">>> " : "... ");
        if (g_interrupted) {  // Ctrl-C at the prompt: drop the line (and the input so far)
            free(raw);
            fputs("\nKeyboardInterrupt\n", stdout);
            fflush(stdout);
            buffer.clear();
            continue;
        }
        if (!raw) {  // Ctrl-D
            at_eof = true;
            break;
        }
        std::string line = raw;
        free(raw);
        if (line.find_first_not_of(" \t") != std::string::npos) add_history(line.c_str());
        if (buffer.empty() && line.find_first_not_of(" \t") == std::string::npos) continue;
        buffer += line;
        buffer += "\n";
        // A block ends with an empty line; Lisp input ends when its brackets balance.
        if (!vm.options().lisp && is_block(buffer) && !line.empty()) continue;
        int exit_status = -1;
        if (!vm.repl_input(buffer, nullptr, &exit_status)) continue;  // incomplete: keep reading
        buffer.clear();
        if (exit_status >= 0) {
            status = exit_status;
            break;
        }
    }
    if (at_eof) printf("\n");
    fflush(stdout);

    pthread_sigmask(SIG_BLOCK, &sigint, nullptr);
    sigaction(SIGINT, &old_sa, nullptr);
    char stop = 0;
    ssize_t r = write(g_wake[1], &stop, 1);
    (void)r;
    watcher.join();
    close(g_wake[0]);
    close(g_wake[1]);
    if (!hist.empty()) save_history(hist);
    pthread_sigmask(SIG_UNBLOCK, &sigint, nullptr);
    return status;
}

}  // namespace weft
