// function.h — functions, closures, bound methods and modules as VM objects.
//
// A Proto is a compiled Chunk plus its constants materialized as Values; it is
// shared by every closure made from it. A FunctionObj is a closure: the proto,
// the values it captured when it was created (capture by value: there are no
// upvalue cells, so a closure can never observe a later change of the
// variable), its default argument values and annotation types.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/bytecode.h"
#include "compiler/codegen.h"
#include "vm/object.h"

namespace weft {

struct ModuleObj;

struct Proto {
    const Chunk* chunk = nullptr;      // owned by the module's chunk tree
    std::vector<Value> k;              // materialized constants
    std::vector<std::unique_ptr<Proto>> children;
    ModuleObj* module = nullptr;       // not owned (modules are immortal)
};

struct FunctionObj : Obj {
    Proto* proto;
    ModuleObj* module;
    std::vector<Value> captures;
    std::vector<Value> defaults;
    std::vector<Value> types;  // annotation types, in parameter order, then the return type
    FunctionObj(Proto* p, ModuleObj* m) : Obj(ObjType::Function), proto(p), module(m) {}
};

struct BoundMethodObj : Obj {
    Value self;
    Value func;
    BoundMethodObj(Value s, Value f) : Obj(ObjType::BoundMethod), self(std::move(s)), func(std::move(f)) {}
};

// A module: its global slots and, for Weft source modules, the compiled code.
// Modules are created once per program and live until it ends (immortal).
struct ModuleObj : Obj {
    std::string name;
    std::string path;  // source file, or "" for native modules
    std::string source;
    std::unique_ptr<ast::Module> ast;
    std::vector<std::unique_ptr<Chunk>> chunks;   // one per compiled unit (REPL: one per input)
    std::vector<std::unique_ptr<Proto>> protos;
    GlobalLayout layout;
    std::vector<Value> globals;                   // indexed by layout slots
    // Global slots are written only by the module's own top-level code (one
    // task) and read by every task. While other tasks run on other threads, a
    // write to a slot that functions read goes through store_shared(): a
    // seqlock (`version`) keeps readers from tearing the 16-byte value, and
    // the replaced value moves to `limbo` instead of being freed, because a
    // reader may be between loading the pointer and counting its reference.
    // Limbo is emptied when the writer finds no other task alive.
    std::atomic<uint32_t> version{0};
    std::vector<Value> limbo;
    bool initialized = false;
    bool initializing = false;
    ModuleObj() : Obj(ObjType::Module) { flags = kImmortal; }

    // Native modules: define an attribute.
    void define(const std::string& n, Value v) {
        int s = layout.slot_for(n);
        if (int(globals.size()) <= s) globals.resize(s + 1, undefined_marker());
        globals[s] = std::move(v);
    }
    // The value of global `n`, or None-with-false when undefined. Thread-safe.
    bool find(const std::string& n, Value& out) const {
        auto it = layout.slots.find(n);
        if (it == layout.slots.end() || it->second >= int(globals.size())) return false;
        load(it->second, out);
        return !is_undefined(out);
    }

    // Reads a global slot (any thread; see `version`).
    [[gnu::always_inline]] void load(int slot, Value& out) const {
        const Value& g = globals[size_t(slot)];
        uint64_t w[2];
        for (;;) {
            uint32_t v1 = version.load(std::memory_order_acquire);
            g.load_words(w);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (__builtin_expect(!(v1 & 1) && version.load(std::memory_order_relaxed) == v1, 1)) break;
        }
        out = Value::from_words(w);
    }
    // Does a function read this slot (so that another task may be reading it now)?
    // Every slot of an imported module counts: its importers read them.
    bool read_by_functions(int slot) const {
        return imported || (size_t(slot) < layout.function_reads.size() && layout.function_reads[size_t(slot)]);
    }
    bool imported = false;  // set by Vm::import_module before the module runs
    // Writes a slot that other threads may be reading (the caller shared `v`).
    void store_shared(int slot, Value v) {
        Value& g = globals[size_t(slot)];
        uint64_t neww[2], oldw[2];
        std::memcpy(neww, static_cast<const void*>(&v), sizeof(Value));
        g.load_words(oldw);
        uint32_t v0 = version.load(std::memory_order_relaxed);
        version.store(v0 + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        g.store_words(neww);
        version.store(v0 + 2, std::memory_order_release);
        (void)v.release_obj();  // the slot took v's reference
        Value old;
        std::memcpy(static_cast<void*>(&old), oldw, sizeof(Value));  // adopts the slot's old reference
        if (old.is_obj()) limbo.push_back(std::move(old));
        else (void)old.release_obj();
    }
    // The marker stored in unassigned global slots (and unassigned locals).
    static Value undefined_marker();
    static bool is_undefined(const Value& v) { return v.is_obj() && v.as_obj() == undefined_obj; }
    static Obj* const undefined_obj;
};

}  // namespace weft
