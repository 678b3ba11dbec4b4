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
    bool initialized = false;
    bool initializing = false;
    ModuleObj() : Obj(ObjType::Module) { flags = kImmortal; }

    // Native modules: define an attribute.
    void define(const std::string& n, Value v) {
        int s = layout.slot_for(n);
        if (int(globals.size()) <= s) globals.resize(s + 1, undefined_marker());
        globals[s] = std::move(v);
    }
    const Value* find(const std::string& n) const {
        auto it = layout.slots.find(n);
        if (it == layout.slots.end() || it->second >= int(globals.size())) return nullptr;
        const Value& v = globals[it->second];
        if (is_undefined(v)) return nullptr;
        return &v;
    }
    // The marker stored in unassigned global slots (and unassigned locals).
    static Value undefined_marker();
    static bool is_undefined(const Value& v) { return v.is_obj() && v.as_obj() == undefined_obj; }
    static Obj* const undefined_obj;
};

}  // namespace weft
