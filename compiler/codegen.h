// codegen.h — compiles a parsed module (ast::Module) to bytecode (Chunk).
//
// Resolution and code generation happen in one pass per function, after a
// pre-pass that collects the names each function assigns (Python's rule: a name
// assigned anywhere in a function is local to it). Names resolve to, in order:
// comprehension variables, locals (registers), captured outer locals (copied into
// the closure when it is created — capture by value), module globals (late
// bound, by slot), builtins.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/ast.h"
#include "compiler/bytecode.h"

namespace weft {

// The module's global slots. Shared across REPL inputs so that names defined on
// one line are seen by the next.
struct GlobalLayout {
    std::unordered_map<std::string, int> slots;
    std::vector<std::string> names;
    // Slots read by some function body (not only by module-level code): another
    // task may read them while module code writes them (vm/function.h).
    std::vector<bool> function_reads;
    void note_function_read(int slot) {
        if (function_reads.size() <= size_t(slot)) function_reads.resize(size_t(slot) + 1);
        function_reads[size_t(slot)] = true;
    }
    int slot_for(const std::string& name) {
        auto it = slots.find(name);
        if (it != slots.end()) return it->second;
        int s = int(names.size());
        slots.emplace(name, s);
        names.push_back(name);
        return s;
    }
};

struct CompileOptions {
    // REPL mode: a top-level expression statement's value is printed (if not None).
    bool repl = false;
    // No implicit deferral anywhere (`weft run --sequential`).
    bool sequential = false;
    // Names of the builtins, indexed as the VM's builtin table.
    const std::unordered_map<std::string, int>* builtins = nullptr;
};

// Compiles the module's top level into a chunk named "<module>". Throws
// CompileError (first error only) with the position of the offending node.
std::unique_ptr<Chunk> compile_module(const ast::Module& module, GlobalLayout& globals,
                                      const CompileOptions& options);

// Human-readable listing of a chunk and its children (for `weft --dump` and tests).
std::string disassemble(const Chunk& chunk);

}  // namespace weft
