// repl.cpp — the REPL: line editing and history from libedit's readline
// interface; an input is complete when the parser stops reporting "incomplete"
// (open brackets, a block header, a triple-quoted string) and, for blocks, when
// the user enters an empty line.
#include "cli/repl.h"

#include <editline/readline.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "vm/interp.h"

namespace weft {

namespace {

std::string history_path() {
    const char* home = getenv("HOME");
    return home ? std::string(home) + "/.weft_history" : std::string();
}

bool read_input_line(Vm& vm, bool tty, const char* prompt, std::string& out) {
    if (tty) {
        char* line = readline(prompt);
        if (!line) return false;
        out = line;
        if (!out.empty()) add_history(line);
        free(line);
        return true;
    }
    return vm.main_interp().read_line(out);  // the same line reader as input()
}

}  // namespace

int run_repl(Vm& vm) {
    bool tty = isatty(0);
    std::string hist = history_path();
    if (tty) {
        printf("Weft 0.1 — type code to run it, an empty line ends a block, Ctrl-D exits.\n");
        if (!hist.empty()) read_history(hist.c_str());
    }
    std::string buffer, line;
    for (;;) {
        const char* prompt = buffer.empty() ? ">>> " : "... ";
        if (!read_input_line(vm, tty, prompt, line)) break;
        if (buffer.empty() && line.find_first_not_of(" \t") == std::string::npos) continue;
        bool continuing = !buffer.empty();
        buffer += line;
        buffer += "\n";
        // Inside a block, wait for the empty line that ends it.
        bool block_open = continuing && !line.empty();
        bool starts_block = !continuing && !line.empty() && line.find_last_not_of(" \t") != std::string::npos &&
                            line[line.find_last_not_of(" \t")] == ':';
        if (block_open || starts_block) continue;
        if (!vm.repl_input(buffer)) continue;  // incomplete: keep reading
        buffer.clear();
    }
    if (!buffer.empty()) vm.repl_input(buffer);
    if (tty) {
        printf("\n");
        if (!hist.empty()) write_history(hist.c_str());
    }
    return 0;
}

}  // namespace weft
