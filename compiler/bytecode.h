// bytecode.h — the instruction set of Weft's register VM and the compiled form
// of a function (Chunk).
//
// The design follows Lua 5.4 (lopcodes.h): fixed 32-bit instructions, operands
// are register numbers in the current frame (at most 250 per function), so an
// arithmetic instruction reads two registers and writes a third without any
// stack traffic. Layouts:
//
//   iABC   op:8 A:8 B:8 C:8
//   iABx   op:8 A:8 Bx:16          (Bx unsigned)
//   iAsBx  op:8 A:8 sBx:16         (sBx = Bx - 32767)
//   isJ    op:8 sJ:24              (jump offsets, relative to the next instruction)
//
// Some instructions are followed by one extra 32-bit word (marked "+X" below):
// rare operands (a BinaryOp, a constant index of keyword names) live there so
// the common instructions stay one word.
//
// Constants are kept as `Constant` (not VM values) so the compiler does not depend
// on the object model; the VM materializes them once per loaded chunk.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace weft {

// X-macro: name, description. The order defines the opcode numbers.
#define WEFT_OPCODES(X)                                                                 \
    X(Move)          /* A B     R[A] = R[B]                                         */ \
    X(LoadK)         /* A Bx    R[A] = K[Bx]                                        */ \
    X(LoadI)         /* A sBx   R[A] = sBx (int)                                    */ \
    X(LoadNone)      /* A       R[A] = None                                         */ \
    X(LoadBool)      /* A B     R[A] = bool(B)                                      */ \
    X(GetGlobal)     /* A Bx    R[A] = module slot Bx (NameError if undefined)      */ \
    X(GetGlobalTop)  /* A Bx    GetGlobal in a module's top-level code: a finished  \
                                deferred call's promise there becomes its value (slot and R[A]) */ \
    X(SetGlobal)     /* A Bx    module slot Bx = R[A]                               */ \
    X(ReleaseGlobal) /* A C +slot  before `g += x` at the top level: when R[A] and R[C]   \
                                are str and no function reads slot, the slot lets go of   \
                                R[A] (Add then appends in place; SetGlobal stores it back) */ \
    X(GetBuiltin)    /* A Bx    R[A] = builtin Bx                                   */ \
    X(GetCapture)    /* A B     R[A] = captured value B (NameError if undefined)    */ \
    X(GetSelfFn)     /* A       R[A] = the running function (self-recursion)        */ \
    X(CheckDef)      /* A Bx    NameError (local K[Bx] unassigned) if R[A] undefined */ \
    X(Add)           /* A B C   R[A] = R[B] + R[C]                                  */ \
    X(Sub)           /* A B C                                                       */ \
    X(Mul)           /* A B C                                                       */ \
    X(AddK)          /* A B C   R[A] = R[B] + K[C]                                  */ \
    X(SubK)          /* A B C   R[A] = R[B] - K[C]                                  */ \
    X(BinOp)         /* A B C +X  R[A] = R[B] op R[C]; X = ast::BinaryOp            */ \
    X(BinOpK)        /* A B C +X  R[A] = R[B] op K[C]; X = ast::BinaryOp            */ \
    X(Neg)           /* A B     R[A] = -R[B]                                        */ \
    X(Not)           /* A B     R[A] = not R[B]                                     */ \
    X(Invert)        /* A B     R[A] = ~R[B]                                        */ \
    X(Plus)          /* A B     R[A] = +R[B]                                        */ \
    X(Lt)            /* A B C   R[A] = R[B] < R[C]                                  */ \
    X(Le)            /* A B C                                                       */ \
    X(Eq)            /* A B C                                                       */ \
    X(Cmp)           /* A B C +X  R[A] = R[B] op R[C]; X = ast::CmpOp               */ \
    X(TLt)           /* A B k   if (R[A] < R[B]) != k then skip next                */ \
    X(TLe)           /* A B k                                                       */ \
    X(TEq)           /* A B k                                                       */ \
    X(TLtK)          /* A B k   if (R[A] < K[B]) != k then skip next (B < 256)      */ \
    X(TLeK)          /* A B k                                                       */ \
    X(TEqK)          /* A B k                                                       */ \
    X(TGtK)          /* A B k   R[A] > K[B]                                         */ \
    X(TGeK)          /* A B k   R[A] >= K[B]                                        */ \
    X(Test)          /* A k     if truthy(R[A]) != k then skip next                 */ \
    X(Jmp)           /* sJ      pc += sJ                                            */ \
    X(Loop)          /* sJ      pc += sJ (backward), safepoint                      */ \
    X(NewList)       /* A B C   R[A] = [R[B] .. R[B+C-1]]                           */ \
    X(NewTuple)      /* A B C   R[A] = (R[B] .. R[B+C-1])                           */ \
    X(NewSet)        /* A B C                                                       */ \
    X(NewDict)       /* A B C   R[A] = {R[B]: R[B+1], ...} C pairs                  */ \
    X(ListAppend)    /* A B     R[A].append(R[B]) (R[A] unique)                     */ \
    X(ListExtend)    /* A B     R[A].extend(R[B])                                   */ \
    X(SetAdd)        /* A B                                                         */ \
    X(DictSet)       /* A B C   R[A][R[B]] = R[C] (R[A] unique)                     */ \
    X(DictMerge)     /* A B     R[A].update(R[B]) for {**d}                         */ \
    X(ToTuple)       /* A B     R[A] = tuple(R[B]) (list to tuple)                  */ \
    X(GetItem)       /* A B C   R[A] = R[B][R[C]]                                   */ \
    X(SetItem)       /* A B C   R[A][R[B]] = R[C]   (copy-on-write)                 */ \
    X(GetAttr)       /* A B C   R[A] = R[B].K[C]                                    */ \
    X(SetAttr)       /* A B C   R[A].K[B] = R[C]    (copy-on-write)                 */ \
    X(Slice)         /* A B     R[A] = slice(R[B], R[B+1], R[B+2])                  */ \
    X(PlaceR)        /* A       P = &R[A]                                           */ \
    X(PlaceG)        /* Bx      P = &slot Bx                                        */ \
    X(PlaceAttr)     /* C       P = &(*P).K[C] (unshares *P)                        */ \
    X(PlaceItem)     /* B       P = &(*P)[R[B]] (unshares *P)                       */ \
    X(SetItemP)      /* B C     (*P)[R[B]] = R[C]                                   */ \
    X(SetAttrP)      /* B C     (*P).K[B] = R[C]                                    */ \
    X(Call)          /* A B     R[A] = R[A](R[A+1] .. R[A+B])                       */ \
    X(CallM)         /* A B C +X  R[A] = R[C].K[X](R[A+2] .. R[A+1+B]); R[A+1] scratch */ \
    X(CallMP)        /* A B +X  like CallM with receiver *P                         */ \
    X(CallKw)        /* A B C +X  R[A] = R[A](B positional, C keyword values);       \
                                  X = K index of the tuple of keyword names      */ \
    X(CallEx)        /* A       R[A] = R[A](*R[A+1], **R[A+2])                      */ \
    X(Return)        /* A       return R[A]                                         */ \
    X(ReturnNone)    /*         return None                                         */ \
    X(Closure)       /* A Bx +X R[A] = closure of child Bx; defaults and annotation \
                                   types start at R[X]                            */ \
    X(StructDef)     /* A Bx +X R[A] = struct type from child-struct Bx, values at R[X] */ \
    X(GetIter)       /* A B     R[A] = iter(R[B])                                   */ \
    X(ForIter)       /* A sBx   R[A+1] = next(R[A]) or pc += sBx when exhausted     */ \
    X(ForPrep)       /* A sBx   numeric for: R[A]=i R[A+1]=stop R[A+2]=step; skip if empty */ \
    X(ForLoop)       /* A sBx   i += step; if i in range: R[A+3] = i, pc += sBx     */ \
    X(Unpack)        /* A B C   R[A..A+C-1] = R[B] (exactly C items)                */ \
    X(UnpackEx)      /* A B C +X  with a star at index X: R[A+X] = list of the rest */ \
    X(Raise)         /* A       raise R[A]                                          */ \
    X(RaiseFrom)     /* A B     raise R[A] from R[B]                                */ \
    X(Reraise)       /* A       re-raise the error in R[A] keeping its trace         */ \
    X(ExcMatch)      /* A B C   R[A] = error R[B] matches type(s) R[C]              */ \
    X(Format)        /* A B C   R[A] = format(R[B], spec R[C]); conversion in X     */ \
    X(FormatX)       /* A B C +X  X: conversion char (0, 'r', 's', 'a'); C=255: no spec */ \
    X(Concat)        /* A B C   R[A] = str concat of R[B .. B+C-1] (all str)        */ \
    X(Import)        /* A Bx    R[A] = module K[Bx] (string; path if starts with .) */ \
    X(ImportFrom)    /* A B C   R[A] = attribute K[C] of module R[B] (ImportError-ish) */ \
    X(LoadType)      /* A B     R[A] = running function's annotation type B         */ \
    X(TypeCheck)     /* A B C +X  check R[A] against type R[B]; C kind; X name K   */ \
    X(IsSeq)         /* A B C   R[A] = R[B] is list/tuple and len==C (C|128: >=)    */ \
    X(IsMap)         /* A B     R[A] = R[B] is a dict                               */ \
    X(HasKey)        /* A B C   R[A] = R[C] in dict R[B]                            */ \
    X(IsInstance)    /* A B C   R[A] = isinstance(R[B], R[C])                       */ \
    X(Len)           /* A B     R[A] = len(R[B])                                    */ \
    X(FieldAt)       /* A B C   R[A] = positional field C of R[B] (class patterns)  */ \
    X(SpawnCall)     /* A B C   R[A] = task running R[A](*R[A+1], **R[A+2]); C=1: R[A](R[A+1..A+B]); C=2: the same, no handle (R[A] = None) */ \
    X(CallDefer)     /* A B     like Call, but a Weft function runs as a deferred task */ \
    X(CallMDefer)    /* A B C +X  like CallM, but a Weft function or blocking builtin of a module, or a Weft method, runs as a deferred task */ \
    X(CallMDeferNow) /* A B C +X  a CallMDefer whose value the caller needs next (set by \
                                  the compiler): a Weft callee runs at once   */ \
    X(CallDeferIf)   /* A B C   an argument of a call: like CallDefer when R[C] (the  */ \
                     /*         outer call's callee) is a Weft function or a bound */ \
                     /*         method of one; otherwise like Call                 */ \
    X(CallDeferIfM)  /* A B C +X  an argument of a method call: like CallDefer when */ \
                     /*         method K[X] of R[C] (the outer receiver) is a Weft */ \
                     /*         function of a module or a struct; else like Call   */ \
    X(CallKwDefer)   /* A B C +X  like CallKw, but a Weft function or blocking      */ \
                     /*         builtin runs as a deferred call                    */ \
    X(Force)         /* A B     if R[A] is a promise, wait for it (statement calls); \
                                B=1: only a deferred call's, not a handle or lazy value */ \
    X(MakeLazy)      /* A       R[A] = lazy promise of the closure R[A]             */ \
    X(ScopeEnter)    /* A B     R[A] = new nursery (fail_fast = R[B])               */ \
    X(ScopeExit)     /* A       wait for the nursery's tasks; raise their errors     */ \
    X(ScopeAbort)    /* A B     error R[B] leaves the block: cancel and join R[A]    */ \
    X(RecordMark)    /* A       R[A] = mark of the deferred calls made from here on    */ \
                     /*         (a with block begins)                              */ \
    X(RecordSettle)  /* A B     the deferred calls made since mark R[A]: B=0 wait  */ \
                     /*         for them (the with block ends), B=1 drop them      */ \
                     /*         (it ends by an error)                              */ \
    X(Nop)

enum class Op : uint8_t {
#define WEFT_OP_ENUM(name) name,
    WEFT_OPCODES(WEFT_OP_ENUM)
#undef WEFT_OP_ENUM
    Count
};

const char* op_name(Op op);

using Instr = uint32_t;

constexpr int kMaxRegisters = 250;
constexpr int kSBxBias = 32767;
constexpr int kSJBias = (1 << 23) - 1;

inline Instr make_abc(Op op, int a, int b, int c) {
    return uint32_t(op) | (uint32_t(a) << 8) | (uint32_t(b) << 16) | (uint32_t(c) << 24);
}
inline Instr make_abx(Op op, int a, int bx) {
    return uint32_t(op) | (uint32_t(a) << 8) | (uint32_t(bx) << 16);
}
inline Instr make_asbx(Op op, int a, int sbx) { return make_abx(op, a, sbx + kSBxBias); }
inline Instr make_sj(Op op, int sj) { return uint32_t(op) | (uint32_t(sj + kSJBias) << 8); }

inline Op get_op(Instr i) { return Op(i & 0xff); }
inline int get_a(Instr i) { return (i >> 8) & 0xff; }
inline int get_b(Instr i) { return (i >> 16) & 0xff; }
inline int get_c(Instr i) { return (i >> 24) & 0xff; }
inline int get_bx(Instr i) { return (i >> 16) & 0xffff; }
inline int get_sbx(Instr i) { return int((i >> 16) & 0xffff) - kSBxBias; }
inline int get_sj(Instr i) { return int(i >> 8) - kSJBias; }

// TypeCheck kinds (operand C).
enum class CheckKind : uint8_t { Param, Return, Assign, Field };

// A compile-time constant.
struct Constant {
    enum class Kind : uint8_t { None, Bool, Int, Float, Str, Bytes, NameTuple } kind = Kind::None;
    int64_t i = 0;
    double f = 0;
    std::string s;
    std::vector<std::string> names;  // NameTuple: keyword names of a call
    bool operator==(const Constant& o) const {
        return kind == o.kind && i == o.i && (f == o.f || (f != f && o.f != o.f)) && s == o.s &&
               names == o.names;
    }
};

// How a closure obtains a captured value when it is created.
struct CaptureDesc {
    bool from_parent_register;  // true: parent's register `index`; false: parent's capture
    int index;
    std::string name;
};

// An exception-table entry: an error raised at pc in [start, end) jumps to
// `handler` with the error value in register `reg`.
struct Handler {
    uint32_t start, end, handler;
    uint8_t reg;
};

// Parameters of a function, for argument binding.
struct ParamDesc {
    std::string name;
    bool has_default = false;
    bool keyword_only = false;
    bool annotated = false;
};

struct StructDesc;

// The source text of one compilation unit (a file, a REPL input), shared by its chunks, for
// the source lines that tracebacks show. Immutable once built, so any thread may read it.
struct SourceText {
    std::string text;
    std::vector<uint32_t> line_starts;  // byte offset of each line's first character
    explicit SourceText(std::string t) : text(std::move(t)) {
        line_starts.push_back(0);
        for (size_t i = 0; i < text.size(); ++i)
            if (text[i] == '\n') line_starts.push_back(uint32_t(i + 1));
    }
    // Line `n` (1-based) without its newline; empty when out of range.
    std::string_view line(uint32_t n) const {
        if (n == 0 || n > line_starts.size()) return {};
        size_t b = line_starts[n - 1];
        size_t e = n < line_starts.size() ? line_starts[n] - 1 : text.size();
        return std::string_view(text).substr(b, e - b);
    }
};

// A compiled function (or the top level of a module).
struct Chunk {
    std::string name;       // "f", "<lambda>", "<module>", "Point.dist"
    std::string task_name;  // the name tasks running it get: `name` after its last dot ("dist")
    std::string path;       // source file
    uint32_t line = 0;      // where it is defined
    std::vector<Instr> code;
    std::vector<uint32_t> lines;  // one per instruction
    // One per instruction: the columns of the expression it belongs to, (first << 16) | end
    // (1-based code points, end exclusive; 0xffff: to the end of the line), or 0 when unknown.
    std::vector<uint32_t> cols;
    std::shared_ptr<const SourceText> source;  // set by the VM after compiling; may be null
    std::vector<Constant> consts;
    std::vector<Handler> handlers;
    std::vector<std::unique_ptr<Chunk>> children;           // nested functions
    std::vector<std::unique_ptr<StructDesc>> structs;       // nested struct declarations
    std::vector<CaptureDesc> captures;
    std::vector<ParamDesc> params;    // positional-or-keyword first, then keyword-only
    int num_positional = 0;           // params before keyword-only ones
    int vararg_reg = -1;              // register of *args, or -1
    int kwarg_reg = -1;               // register of **kwargs, or -1
    int num_defaults = 0;             // defaults, for the last params that have them
    int num_types = 0;                // annotation types evaluated at definition time
    bool has_return_type = false;
    int nregs = 0;
    int nactive = 0;                  // registers holding named locals
    bool uses_checkdef = false;       // locals must start out undefined
    int simple_arity = -1;            // >= 0: only positional params, no *args/**kwargs
    // A leaf: the body makes no calls, has no loops and opens no scopes, so a call of it is a
    // short computation that cannot block. A deferred call of a leaf runs at once as a plain
    // call (its error kept for whoever uses the value): see op_CallDefer in vm/interp.cpp.
    bool leaf = false;
    // Not compiled code: the VM's running prediction that deferred calls of this function are
    // quick (vm/quick_calls.h) — how many of its records in a row ran briefly without waiting,
    // or kNeverQuick. Any thread may read or write it (std::atomic_ref, relaxed).
    mutable uint8_t quick_runs = 0;
    // Likewise for "calm" (vm/quick_calls.h): records in a row that did nothing that can wait,
    // however long they ran or however many deferred calls they made; or kNeverQuick.
    mutable uint8_t calm_runs = 0;
    // Calls of builtins that only compute (len, str, abs, ...: the compiler's list): indexes of
    // their call instructions. A leaf may make these calls.
    std::vector<uint32_t> pure_calls;
    std::vector<std::pair<std::string, int>> local_names;  // for error messages
    std::string doc;
};

struct StructDesc {
    std::string name;
    std::string doc;
    uint32_t line = 0;
    struct Field {
        std::string name;
        bool has_annotation = false;
        bool has_default = false;
    };
    std::vector<Field> fields;
    std::vector<std::string> method_names;  // values are closures in registers
    bool has_base = false;
    // 0 for a struct, 1 for an `actor`, 2 for an `agent` (spec section 10; vm/actors.h).
    uint8_t actor_kind = 0;
    // Register layout at StructDef: [base?] then per field [annotation?][default?], then methods.
};

}  // namespace weft
