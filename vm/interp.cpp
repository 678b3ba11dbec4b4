// interp.cpp — the register interpreter loop.
//
// Dispatch is by computed goto (a GNU extension): each handler ends with its own
// indirect jump, which predicts better than one shared `switch` jump (the
// technique of Lua 5.4's ljumptab.h and CPython's ceval). Integer and float
// arithmetic, comparisons and numeric `for` loops are handled inline; anything
// else calls into the object library (vm/collections.h).
//
// Errors are C++ exceptions (WeftError) on the slow path only: a raise throws,
// execute() catches, looks for a handler in the frame's exception table
// (Chunk::handlers) and either resumes there or unwinds the frame. A try block
// costs nothing until something is thrown.
//
// Calls between Weft functions do not recurse in C++: the callee's frame starts
// at the register after the callee value (arguments are already in place) and
// the loop simply continues in the new frame. Natives that call back into Weft
// (sorted's key=, map, ...) re-enter execute() with a boundary frame; that
// nesting is bounded (RecursionError) so deep callbacks cannot overflow the C stack.
#include "vm/interp.h"
#include "vm/pending.h"
#include "vm/quick_calls.h"

#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "compiler/suggest.h"
#include "vm/collections.h"
#include "vm/tasks.h"
#include "vm/task_context.h"
#include "vm/limits.h"
#include "vm/memory.h"
#include "weft/runtime/channel.hpp"
#include "weft/runtime/runtime.hpp"

namespace weft {

using ast::BinaryOp;
using ast::CmpOp;

namespace {
constexpr int kMaxNativeDepth = 180;
// handle_error notes where a failed deferred call that ran at once was made only above this
// frame depth (see there).
constexpr size_t kNoteTraceDepth = 64;
// Native stack kept free below a nested call from C++ (a fiber's stack is 256 KiB): deeper,
// RecursionError instead of hitting the guard page.
constexpr size_t kMinNativeStack = 48 * 1024;
// A deferred call forced at once runs inline, one native nesting per level: past this depth
// (or with little native stack left) calls in deferral positions run as plain calls, which
// use only the interpreter's own frame stack. Deferral is permission, not obligation (spec
// section 5: deferred calls may run in any order), so deep recursion through `x = f(n - 1)`
// behaves like plain recursion.
constexpr int kMaxDeferNesting = 24;
// Likewise for chains of tasks each waiting on the next (a deferred call whose promise is
// returned, forced only by the scope's end): past this depth of the task tree, plain calls.
constexpr int kMaxDeferTaskDepth = 200;
constexpr size_t kMinDeferStack = 128 * 1024;

// Must a write to global `slot` of `m` be published for concurrent readers?
// Only with several worker threads, only for slots some function reads, and
// only while other tasks are alive (with none, this task is alone: it may write
// in place, and the replaced values kept for past readers can go).
[[gnu::always_inline]] inline bool global_write_is_shared(ModuleObj* m, int slot) {
    if (!g_multi_worker.load(std::memory_order_relaxed) || !m->read_by_functions(slot)) return false;
    return true;
}
// With other tasks alive, a store must be published (store_shared); alone, the
// writer may store in place, and the values kept for past readers can go.
[[gnu::always_inline]] inline bool others_alive(const limits::State& st, ModuleObj* m) {
    if (limits::live_tasks(st) > 0) return true;
    if (!m->limbo.empty()) m->limbo.clear();
    return false;
}

// No unfinished promise among the `n` arguments at `args`? (A leaf run at once would force it
// there, before its caller makes its next deferred calls: then the call is kept as a record.)
inline bool args_ready(const Value* args, int n) {
    for (int j = 0; j < n; ++j)
        if (args[j].is(ObjType::Promise) && !args[j].as<PromiseObj>()->resolved.load(std::memory_order_acquire))
            return false;
    return true;
}

// The value of a finished promise, else `v` itself. CallDeferIf and CallDeferIfM look at the
// outer callee without waiting for it: an unfinished one just does not defer the argument.
const Value& peek_value(const Value& v) {
    if (v.is(ObjType::Promise)) {
        auto* p = v.as<PromiseObj>();
        if (p->resolved.load(std::memory_order_acquire) && p->error.is_none()) return p->value;
    }
    return v;
}

// Can a call of `callee` take time, so that a deferral position defers it (spec section 5)?
// A Weft function, a builtin marked blocking or a host object whose calls are (a circuit breaker).
bool can_defer(const Value& callee) {
    return callee.is(ObjType::Function) || (callee.is(ObjType::Native) && callee.as<NativeObj>()->blocking) ||
           (callee.is(ObjType::Opaque) && callee.as<OpaqueObj>()->cls->deferrable);
}

// Is `callee` a Weft function or a bound method of one? (CallDeferIf: the arguments of
// such a call are deferral positions, spec section 5.)
bool is_weft_callee(const Value& callee) {
    const Value& v = peek_value(callee);
    return v.is(ObjType::Function) ||
           (v.is(ObjType::BoundMethod) && v.as<BoundMethodObj>()->func.is(ObjType::Function));
}

// Is method `name` of `recv` a Weft function: a function of a module, or a method of a
// struct (the same lookup as CallMDefer)? (CallDeferIfM.)
bool is_weft_method(const Value& recv_value, const Value& name_value) {
    const Value& recv = peek_value(recv_value);
    StrObj* name = name_value.as<StrObj>();
    if (recv.is(ObjType::Module)) {
        Value v;
        return recv.as<ModuleObj>()->find(name->data, v) && v.is(ObjType::Function);
    }
    if (recv.is(ObjType::Struct)) {
        auto* st = recv.as<StructObj>();
        if (st->type->field_index_interned(name) >= 0) return false;
        const Value* m = st->type->method_interned(name);
        return m && m->is(ObjType::Function);
    }
    return false;
}
}  // namespace

bool Interp::top_owns_records() const {
    return pending_.back().as<PromiseObj>()->depth >= frames_.size();
}

size_t Interp::stack_left() const {
    if (binding_.stack_low == 0) return rt::remaining_stack();
    auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    return sp > binding_.stack_low ? sp - binding_.stack_low : 0;
}

bool Interp::defer_allowed() const {
    if (native_depth_ >= kMaxDeferNesting || stack_left() < kMinDeferStack) return false;
    return (binding_.stack_low ? binding_.depth : current_task_depth()) < kMaxDeferTaskDepth;
}

void Interp::place_done() {
    ModuleObj* m = place_module_;
    bool held = place_ == &place_hold_;
    place_module_ = nullptr;
    place_ = nullptr;
    if (held) {
        share(place_hold_);
        m->store_shared(place_slot_, std::move(place_hold_));
        place_hold_ = Value();
    } else {
        share(m->globals[size_t(place_slot_)]);  // mutated in place: re-share what was added
    }
}

namespace {
// Address space for interpreters: each takes one region holding its value stack and, after it,
// its frame array. Regions are carved from large mappings and reused, not mapped one by one:
// every blocked task holds an interpreter, and a mapping per interpreter (two, with a separate
// frame array) ran into Linux's limit of 65,530 mappings per process at about 30,000 blocked
// tasks (MemoryError). A released region is emptied with MADV_DONTNEED (its pages go back to
// the kernel and read as zeros again: zero bytes are valid None values) and kept for the next
// interpreter of the same size. Chunks are never unmapped (there are a few per program).
class RegionPool {
public:
    void* take(size_t bytes) {
        std::lock_guard<std::mutex> g(mu_);
        for (auto& c : classes_) {
            if (c.bytes != bytes) continue;
            if (!c.free.empty()) {
                void* p = c.free.back();
                c.free.pop_back();
                return p;
            }
            if (c.next < c.end) {
                void* p = c.next;
                c.next += bytes;
                return p;
            }
            return new_chunk(c);
        }
        SizeClass c;
        c.bytes = bytes;
        classes_.push_back(std::move(c));
        return new_chunk(classes_.back());
    }
    void give_back(void* p, size_t bytes) {
        madvise(p, bytes, MADV_DONTNEED);
        std::lock_guard<std::mutex> g(mu_);
        for (auto& c : classes_)
            if (c.bytes == bytes) c.free.push_back(p);
    }

private:
    struct SizeClass {
        size_t bytes = 0;
        char* next = nullptr;
        char* end = nullptr;
        int chunks = 0;
        std::vector<void*> free;
    };
    // One region for the first chunk of a size (most programs have one interpreter of each
    // size in use at a time), then about 256 MiB of address space a chunk (ten task
    // interpreters). Reserved only (MAP_NORESERVE): pages are committed as they are touched.
    void* new_chunk(SizeClass& c) {
        size_t n = c.chunks++ == 0 ? 1 : std::max<size_t>(1, (size_t(256) << 20) / c.bytes);
        void* p = mmap(nullptr, n * c.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        c.next = static_cast<char*>(p) + c.bytes;
        c.end = static_cast<char*>(p) + n * c.bytes;
        return p;
    }
    std::mutex mu_;
    std::vector<SizeClass> classes_;
};
RegionPool& region_pool() {
    static RegionPool* pool = new RegionPool;  // never destroyed: interpreters outlive statics
    return *pool;
}
}  // namespace

Interp::Interp(Vm& vm, size_t stack_values) : vm_(vm) {
    caps_ = vm.program_capabilities();
    stack_cap_ = stack_values ? stack_values : vm.options().stack_values;
    // Room for as many frames as the value stack could hold at four registers a frame (the
    // callee slot and three registers). Address space only, committed as frames are pushed.
    size_t nframes = stack_cap_ / 4 + 16;
    size_t values_bytes = (stack_cap_ * sizeof(Value) + 4095) & ~size_t(4095);
    region_bytes_ = values_bytes + ((nframes * sizeof(Frame) + 4095) & ~size_t(4095));
    char* region = static_cast<char*>(region_pool().take(region_bytes_));
    stack_ = reinterpret_cast<Value*>(region);  // zero pages are valid None values
    stack_end_ = stack_ + stack_cap_;
    frames_.attach(reinterpret_cast<Frame*>(region + values_bytes), nframes);
    refresh_recursion_limit();
    run_leaves_now_ = !vm.options().trace && !vm.options().trace_hook;
}

Interp::~Interp() {
    // Release whatever the registers still hold, then the region.
    while (!frames_.empty()) pop_frame();
    for (size_t i = 0; i < 1024 && i < stack_cap_; ++i) stack_[i] = Value();
    region_pool().give_back(stack_, region_bytes_);
}

void Interp::raise(ErrorKind k, std::string msg) { throw WeftError(k, std::move(msg)); }

void Interp::refresh_recursion_limit() {
    size_t n = vm_.recursion_limit();
    // Slack above the limit: frames pushed without the check (a record run by the loop).
    if (n + 16 > frames_.capacity()) n = frames_.capacity() - 16;
    max_depth_ = n;
    frames_.set_limit(n);
}

void Interp::narrow_depth(size_t n) {
    if (n == 0 || n >= max_depth_) return;
    max_depth_ = n;
    frames_.set_limit(n);
}

size_t Interp::max_chain() const {
    // The longest chain of deferred returns (`return f(n + 1)`: each link a promise resolved
    // to the next) that force() follows, and how many of its records a task's body runs
    // before it finishes (run_leftover_records). A runaway chain costs far more per link than
    // a frame of plain recursion (records, and tasks for links run on stacks of their own:
    // 200,000 links took 3 s and 800 MB, 70 s under ASan), so it is bounded apart: the
    // recursion limit up to kMaxReturnChain links, a twentieth of it above.
    size_t d = max_depth_;
    size_t small = d < kMaxReturnChain ? d : kMaxReturnChain;
    return small > d / 20 ? small : d / 20;
}

Value* Interp::stack_top() const {
    if (frames_.empty()) return stack_;
    const Frame& f = frames_.back();
    return f.base + f.proto->chunk->nregs;
}

void Interp::push_frame_slow(FunctionObj* fn, Value* base, FrameExit exit, bool captures) {
    const Chunk* c = fn->proto->chunk;
    if (frames_.size() >= max_depth_)
        raise(ErrorKind::RecursionError, "maximum recursion depth exceeded");
    if (base + c->nregs + 256 >= stack_ + stack_cap_)
        raise(ErrorKind::RecursionError, "maximum recursion depth exceeded (value stack exhausted)");
    if (c->uses_checkdef) {
        int first = int(c->params.size()) + (c->vararg_reg >= 0) + (c->kwarg_reg >= 0);
        Value undef = ModuleObj::undefined_marker();
        for (int i = first; i < c->nactive; ++i) base[i] = undef;
    }
    frames_.push_back(Frame{fn, fn->proto, c->code.data(), base, exit, captures});
}

namespace {
// Frames of `.wlisp` code say `file.wlisp:line:col` (docs/language/lisp.md): the column of the
// form being evaluated, or where its line's text starts when the instruction has no span.
std::string lisp_frame_col(const Chunk* c, size_t idx, uint32_t line) {
    size_t n = c->path.size();
    if (n < 6 || c->path.compare(n - 6, 6, ".wlisp") != 0) return "";
    uint32_t col = idx < c->cols.size() ? c->cols[idx] >> 16 : 0;
    if (col == 0 && c->source) {
        std::string_view text = c->source->line(line);
        col = 1;
        for (char ch : text) {
            if (ch != ' ' && ch != '\t') break;
            ++col;
        }
    }
    return col ? ":" + std::to_string(col) : "";
}
}  // namespace

std::vector<std::string> Interp::current_trace() const {
    std::vector<std::string> out;
    for (size_t i = trace_floor_ < frames_.size() ? trace_floor_ : 0; i < frames_.size(); ++i) {
        const Frame& f = frames_.begin()[i];
        const Chunk* c = f.proto->chunk;
        // The Lisp prelude's functions are the primitives' insides: a traceback of a .wlisp
        // program shows the Lisp call of the primitive and the user's functions it called back.
        if (c->path == "<lisp prelude>") continue;
        // A deferred call's record run here, forced by the frame below (in this loop, or
        // nested through force_pending): where the call was made, as a task's trace says
        // where the task was started (vm/task_context.cpp).
        const PromiseObj* record = f.exit == FrameExit::Record ? f.base[-1].as<PromiseObj>() : nullptr;
        for (auto& [depth, p] : nested_records_)
            if (depth == i) record = p;
        if (record) out.push_back(started_at_line("deferred call to " + c->name, record->call.site));
        size_t idx = f.pc > c->code.data() ? size_t(f.pc - c->code.data() - 1) : 0;
        uint32_t line = idx < c->lines.size() ? c->lines[idx] : c->line;
        out.push_back(c->path + ":" + std::to_string(line) + lisp_frame_col(c, idx, line) + " in " + c->name +
                      source_excerpt(c, idx));
    }
    return out;
}

Value Interp::error_value(WeftError& e) {
    Value err = e.error.is_none() ? vm_.make_error(e.kind, e.message) : e.error;
    auto* s = err.as<StructObj>();
    if (s->error && s->error->trace.empty()) s->error->trace = current_trace();
    return err;
}

bool Interp::read_line(std::string& out) {
    vm_.flush_stdout();
    out.clear();
    int ch;
    bool any = false;
    while ((ch = fgetc(stdin)) != EOF) {
        any = true;
        if (ch == '\n') return true;
        out.push_back(char(ch));
    }
    return any;
}

// ---------------------------------------------------------------------------
// Calls from C++

Value Interp::call(const Value& callee, std::span<const Value> args) { return call_kw(callee, args, {}); }

Value Interp::call_kw(const Value& callee, std::span<const Value> args, std::span<const KwArg> kw) {
    return enter_call(callee, args, kw, false);
}

Value Interp::call_taking(const Value& callee, std::span<Value> args, std::span<const KwArg> kw) {
    return enter_call(callee, args, kw, true);
}

Value Interp::enter_call(const Value& callee, std::span<const Value> args, std::span<const KwArg> kw, bool take) {
    if (!callee.is(ObjType::Function)) return call_object(callee, args, kw);
    if (native_depth_ >= kMaxNativeDepth || stack_left() < kMinNativeStack)
        raise(ErrorKind::RecursionError, "maximum recursion depth exceeded");
    Value* slot = stack_top();
    if (slot + 1 >= stack_ + stack_cap_) raise(ErrorKind::RecursionError, "maximum recursion depth exceeded");
    slot[0] = callee;  // keeps the function alive for the frame
    auto* fn = callee.as<FunctionObj>();
    try {
        bind_args(fn, slot + 1, args, kw, take);
        push_frame(fn, slot + 1, FrameExit::Boundary);
    } catch (...) {
        slot[0] = Value();
        throw;
    }
    ++native_depth_;
    struct Guard {
        int& d;
        Value* slot;
        ~Guard() {
            --d;
            slot[0] = Value();
        }
    } guard{native_depth_, slot};
    return execute();
}

void Interp::run_module_chunk(ModuleObj* m, Proto* p) {
    Value fnv = Value::adopt(new FunctionObj(p, m));
    Value* slot = stack_top();
    slot[0] = fnv;
    push_frame(fnv.as<FunctionObj>(), slot + 1, FrameExit::Boundary);
    try {
        execute();
    } catch (...) {
        slot[0] = Value();
        throw;
    }
    slot[0] = Value();
}

Value Interp::execute() {
    for (;;) {
        Value err;
        try {
            return run();
        } catch (WeftError& e) {
            err = error_value(e);
        } catch (...) {
            // Runtime exceptions (cancellation, timeouts, closed channels, deadlock)
            // become Weft errors so handlers and `finally` blocks see them.
            err = runtime_error_value(std::current_exception());
        }
        if (!handle_error(err)) throw WeftError(err);
    }
}

Value Interp::runtime_error_value(std::exception_ptr ep) {
    Value err;
    try {
        std::rethrow_exception(ep);
    } catch (WeftError& e) {
        return error_value(e);
    } catch (const rt::Cancelled&) {
        // The main task cancelled by SIGINT (cli/signals.cpp) sees Python's KeyboardInterrupt;
        // its tasks, and every task after SIGTERM, see Cancelled.
        if (vm_.stop_signal.load(std::memory_order_acquire) == SIGINT && this == &vm_.main_interp())
            err = vm_.make_error(ErrorKind::KeyboardInterrupt, "");
        else
            err = vm_.make_error(ErrorKind::Cancelled, "the task was cancelled");
    } catch (const rt::TimeoutError& e) {
        err = vm_.make_error(ErrorKind::TimeoutError, "deadline exceeded");
    } catch (const rt::ChannelClosed&) {
        err = vm_.make_error(ErrorKind::ChannelClosed, "channel closed");
    } catch (const rt::Deadlock& e) {
        std::string raw = e.what();
        if (raw.rfind("Deadlock: ", 0) == 0) raw = raw.substr(10);
        // One line: "all tasks are blocked: main#1 waits on channel recv; worker#3 waits on ..."
        std::string what;
        bool first_item = true;
        size_t pos = 0;
        while (pos <= raw.size()) {
            size_t nl = raw.find('\n', pos);
            std::string line = raw.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
            size_t b = line.find_first_not_of(' ');
            line = b == std::string::npos ? "" : line.substr(b);
            if (!line.empty()) {
                if (what.empty()) {
                    what = line;
                } else {
                    what += first_item ? " " : "; ";
                    what += line;
                    first_item = false;
                }
            }
            if (nl == std::string::npos) break;
            pos = nl + 1;
        }
        err = vm_.make_error(ErrorKind::Deadlock, what);
    } catch (const rt::ErrorGroup& g) {
        std::vector<Value> members;
        for (auto& m : g.errors()) members.push_back(runtime_error_value(m));
        // One failure is raised as itself; several as an ErrorGroup (PartialFailure
        // for collect-all scopes).
        if (members.size() == 1 && !g.partial()) return members[0];
        size_t n = members.size();
        err = vm_.make_error(g.partial() ? ErrorKind::PartialFailure : ErrorKind::ErrorGroup,
                             std::to_string(n) + (n == 1 ? " task failed" : " tasks failed"));
        err.as<StructObj>()->error->errors = std::move(members);
    } catch (const std::bad_alloc&) {
        // The allocator refused (vm/memory.h installs the new-handler that throws this).
        err = vm_.make_error(ErrorKind::MemoryError, "out of memory");
    } catch (const std::length_error&) {
        // A container asked for more than its max_size().
        err = vm_.make_error(ErrorKind::MemoryError, "out of memory (object too large)");
    } catch (const std::exception& e) {
        err = vm_.make_error(ErrorKind::Error, std::string("internal error: ") + e.what());
    }
    auto* s = err.as<StructObj>();
    if (s->error->trace.empty()) s->error->trace = current_trace();
    return err;
}

void Interp::force(Value& v) {
    // A task may return another promise (a deferred `return f(x)`): follow the
    // chain. Its length is bounded like call depth, so runaway mutual recursion
    // through deferred returns is a RecursionError, not an endless loop.
    size_t links = 0;
    size_t max_links = max_chain();
    while (v.is(ObjType::Promise)) {
        if (++links > max_links) {
            WeftError e(ErrorKind::RecursionError, "maximum recursion depth exceeded (chain of returned promises)");
            Value err = error_value(e);
            // The rest of the chain is never run (an endless `x = f(n + 1); return x` would
            // otherwise go on when the owner settles its deferred calls); a link started as a
            // task is cancelled, and what it raises is dropped with the rest.
            drop_pending(v.as<PromiseObj>(), err);
            throw WeftError(err);
        }
        Value r = force_promise(*this, v.as<PromiseObj>());
        v = std::move(r);
    }
}

Value Interp::binary_op_forcing(ast::BinaryOp op, Value& x, Value& y) {
    Value hx, hy;
    return binary_op(op, value_of(x, hx), value_of(y, hy));
}

Value Interp::compare_forcing(ast::CmpOp op, Value& x, Value& y) {
    Value hx, hy;
    return compare(op, value_of(x, hx), value_of(y, hy));
}

bool Interp::equal_forcing(Value& x, Value& y) {
    Value hx, hy;
    return values_equal(value_of(x, hx), value_of(y, hy));
}

bool Interp::truthy_forcing(Value& x) {
    Value hx;
    return truthy(value_of(x, hx));
}

Value Interp::unary_op_forcing(ast::UnaryOp op, Value& x) {
    Value hx;
    return unary_op(op, value_of(x, hx));
}

const Value& Interp::value_of_promise(Value& r, Value& hold) {
    if (r.as<PromiseObj>()->is_handle) {
        hold = r;
        force(hold);
        return hold;
    }
    force(r);
    return r;
}

// ". Did you mean: 'x'?" for a module name read before it was assigned: the closest name that
// is assigned by now (module names, then builtins), or "".
std::string Interp::defined_name_hint(const ModuleObj* m, const std::string& n) const {
    std::vector<std::string> names;
    for (auto& [name, slot] : m->layout.slots)
        if (Value v; m->find(name, v)) names.push_back(name);
    std::sort(names.begin(), names.end());
    std::vector<std::string> builtins;
    for (auto& [name, index] : vm_.builtin_index)
        if (name.rfind("__", 0) != 0) builtins.push_back(name);
    std::sort(builtins.begin(), builtins.end());
    names.insert(names.end(), builtins.begin(), builtins.end());
    return did_you_mean(n, names);
}

void Interp::global_read_slow(ModuleObj* m, int slot, Value& r) {
    if (ModuleObj::is_undefined(r)) {
        r = Value();
        raise(ErrorKind::NameError, "name '" + m->layout.names[size_t(slot)] + "' is not defined" +
                                        defined_name_hint(m, m->layout.names[size_t(slot)]));
    }
    const Value* settled = r.as<PromiseObj>()->settled_value();
    if (settled && !settled->is(ObjType::Promise) && !m->read_by_functions(slot)) {
        Value v = *settled;
        m->globals[size_t(slot)] = v;
        r = std::move(v);
    }
}

void Interp::safepoint_slow(bool at_back_edge) {
    safepoints_left_ = kSafepointBatch;
    ++safepoint_batches_;
    // Asked here, not cached: a task run inline on this interpreter's fiber (vm/tasks.cpp) is the
    // current task while it runs, and may be gone once it returns.
    rt::Task* t = rt::current_task();
    // Records are offered to idle workers (ExposeReason::IdleWorker) from loop back-edges only,
    // as before returns were safepoints. Offered from returns too, a recursion without loops
    // handed a record over every few microseconds: a deferred fib(32) ran 1.6x faster on two
    // workers, but binary-trees 15-25% slower (its trees built on one thread and freed on the
    // other), and a link of an endless `x = f(n + 1); return x` chain taken by the idle worker
    // failed on its own after the chain's RecursionError was caught (an error nobody saw,
    // raised at the program's end).
    if (t && t->should_yield(kSafepointBatch, at_back_edge)) rt::checkpoint();
    // An embedding host's step limit (weft::Limits::max_steps), charged per batch, and its
    // memory limit (max_memory), checked per batch.
    if (TaskContext* c = t ? static_cast<TaskContext*>(t->user_data()) : nullptr; c && c->budget) {
        if (c->budget->steps_left.fetch_sub(kSafepointBatch, std::memory_order_relaxed) <= kSafepointBatch) {
            c->budget->exceed(1);
            rt::check_cancelled();
        }
        if (!c->budget->check_memory()) rt::check_cancelled();
        if (c->budget->on_slice) slice_check(*c->budget, t);
    }
}

void Interp::slice_check(CallBudget& budget, rt::Task* t) {
    // Slices of running time, measured on the wall clock between safepoint batches (a batch is
    // a few microseconds of running): a gap of more than 1 ms was a park or a long native and
    // starts a new slice, so time spent waiting is not charged.
    constexpr std::int64_t kSliceNs = 10'000'000, kSliceGapNs = 1'000'000;
    std::uint64_t steps = budget.steps.fetch_add(kSafepointBatch, std::memory_order_relaxed) + kSafepointBatch;
    std::int64_t now = rt::now_ns();
    if (slice_start_ns_ == 0 || now - slice_seen_ns_ > kSliceGapNs) slice_start_ns_ = now;
    slice_seen_ns_ = now;
    if (now - slice_start_ns_ < kSliceNs) return;
    slice_start_ns_ = now;
    bool go_on;
    try {
        go_on = budget.on_slice(t->label(), steps);
    } catch (...) {
        go_on = false;  // a throwing hook stops the call rather than the worker
    }
    if (!go_on) {
        budget.exceed(4);
        rt::check_cancelled();
    }
}

void Interp::unpredict_quick_calls(bool parked) const {
    for (const Frame& f : frames_)
        if (f.captures || f.exit == FrameExit::Record) {
            never_quick(f.proto->chunk);
            if (parked) never_calm(f.proto->chunk);
        }
}

bool Interp::run_record_here(Value& v, int len) {
    auto* p = v.as<PromiseObj>();
    if (const Value* settled = p->settled_value()) {
        // Already finished: the register takes the value, and the instruction runs again on its
        // fast path, instead of forcing and taking the generic one. (A failed promise goes on
        // below to force(), which raises its error.)
        Value value = *settled;
        v = std::move(value);
        frames_.back().pc -= len;
        return true;
    }
    FunctionObj* fn = record_callee_here(*this, p);
    if (!fn) return false;
    Frame& caller = frames_.back();
    // The callee's frame goes above the forcing frame's registers, as a call from C++ does;
    // where it would not fit, force() meets the same limits and raises.
    Value* slot = caller.base + caller.proto->chunk->nregs;
    if (frames_.at_limit() || slot + 1 + fn->proto->chunk->nregs + 256 >= stack_end_) return false;
    std::span<Value> args = claim_record(p);
    // The newest record (the usual case) leaves the list now: nothing there needs a record run
    // in the loop (it is resolved before the forcing instruction goes on), and the callee's
    // returns then find no records to settle. (Not for force_pending: await_records walks the
    // list by index while the records it forces run.) The forcing register holds the promise.
    if (pending_.back().as_obj() == p) pending_.pop_back();
    for (size_t j = 0; j < args.size(); ++j) slot[1 + j] = std::move(args[j]);
    p->call.forced_reg = uint8_t(&v - caller.base);
    p->call.forced_len = uint8_t(len);
    p->call.run_seq = record_seq_;
    p->call.run_safepoints = safepoints_passed();
    p->call.run_may_wait = may_wait_;
    p->call.run_calm_joins = calm_joins_;
    slot[0] = v;  // keeps the promise (and through it the callee) alive
    push_frame(fn, slot + 1, FrameExit::Record);
    return true;
}

void Interp::record_frame_done(Value* base, Value&& result, Value&& error) {
    Value pv = std::move(base[-1]);
    auto* p = pv.as<PromiseObj>();
    Frame& caller = frames_.back();
    Value& reg = caller.base[p->call.forced_reg];
    int len = p->call.forced_len;
    bool ok = error.is_none();
    if (ok) {
        const Chunk* c = p->thunk.as<FunctionObj>()->proto->chunk;
        note_record_run(c, safepoints_passed() - p->call.run_safepoints, record_seq_ != p->call.run_seq,
                        may_wait_ != p->call.run_may_wait);
        note_calm_run(c, may_wait_ - p->call.run_may_wait != calm_joins_ - p->call.run_calm_joins);
    }
    finish_record(*this, p, std::move(result), std::move(error));
    if (!ok) return;  // the error unwinds from the forcing instruction (handle_error)
    if (reg.is(ObjType::Promise) && reg.as<PromiseObj>() == p) {
        reg = p->value;
        // It returned a promise (a deferred `return g(x)`): followed here by force(), which
        // bounds a chain of them (an endless one is a RecursionError, not an endless loop). An
        // error is raised from the forcing instruction, whose pc is still past it.
        if (reg.is(ObjType::Promise)) force(reg);
    }
    caller.pc -= len;  // the forcing instruction runs again, on the value
}

bool Interp::handle_error(Value& err) {
    while (!frames_.empty()) {
        Frame& f = frames_.back();
        const Chunk* c = f.proto->chunk;
        uint32_t pc = uint32_t(f.pc - c->code.data() - 1);
        for (const Handler& h : c->handlers) {
            if (pc >= h.start && pc < h.end) {
                f.base[h.reg] = err;
                f.pc = c->code.data() + h.handler;
                rearm_memory_reserve();  // a MemoryError may have used it (vm/memory.h)
                return true;
            }
        }
        FrameExit exit = f.exit;
        bool captures = f.captures;
        Value* base = f.base;
        Value* result = base - 1;  // the call's register (the callee value sits there)
        // The activation ends by an error: its unstarted deferred calls are dropped and its
        // started ones cancelled (spec section 5; their nursery awaits them).
        if (__builtin_expect(!pending_.empty(), 0) && top_owns_records()) abandon_activation(*this, frames_.size());
        // The callee value sits right below the frame's base.
        pop_frame();
        if (exit == FrameExit::Boundary) return false;
        if (exit == FrameExit::Record) {
            // A forced record failed: the promise keeps the error, which goes on from the
            // forcing instruction (the frame below: its pc is still past that instruction).
            record_frame_done(base, Value(), Value(err));
            continue;
        }
        // A deferred leaf call that ran at once (op_CallDefer) fails as a deferred call does:
        // the caller goes on, and the error is raised where the value is used, or when the
        // caller's activation ends if it never is. A cancellation unwinds as usual.
        if (captures && !is_cancelled_value(err)) {
            // Its trace says where the call was made; the use adds where it was needed. Not
            // deep in a recursion: each level a RecursionError unwinds through would rebuild
            // the whole stack's trace (quadratic); there the trace stays as it was raised.
            bool shallow = frames_.size() < kNoteTraceDepth;
            Value noted = shallow ? note_deferred_failure(err, current_trace(), c->name, current_site()) : err;
            if (Value failed = failed_call(*this, noted, noted.as_obj() != err.as_obj()); !failed.is_none()) {
                *result = std::move(failed);
                return true;
            }
        }
    }
    return false;
}

// ---------------------------------------------------------------------------
// Argument binding

namespace {
std::string fn_label(const Chunk* c) { return c->name + "()"; }
}  // namespace

void Interp::bind_args(FunctionObj* fn, Value* dst, std::span<const Value> pos, std::span<const KwArg> kw,
                       bool take) {
    const Chunk* c = fn->proto->chunk;
    // Exactly the positional parameters, from somewhere else (a C++ caller's vector): copy, or
    // move when the caller gives them away (call_taking passed them as non-const).
    size_t np = pos.size();
    if (kw.empty() && int(np) == c->simple_arity && (pos.data() + np <= dst || dst + np <= pos.data())) {
        if (take) {
            auto* from = const_cast<Value*>(pos.data());
            for (size_t i = 0; i < np; ++i) dst[i] = std::move(from[i]);
        } else {
            for (size_t i = 0; i < np; ++i) dst[i] = pos[i];
        }
        return;
    }
    int nparams = int(c->params.size());
    int npos = c->num_positional;
    // Copy the arguments first: they may live in the destination registers.
    std::vector<Value> args(pos.begin(), pos.end());
    std::vector<KwArg> kws(kw.begin(), kw.end());
    int total = nparams + (c->vararg_reg >= 0) + (c->kwarg_reg >= 0);
    for (int i = 0; i < std::max<int>(total, int(args.size()) + int(kws.size())); ++i) dst[i] = Value();
    std::vector<bool> set(nparams, false);
    int n = int(args.size());
    if (n > npos) {
        if (c->vararg_reg < 0) {
            raise(ErrorKind::TypeError, fn_label(c) + " takes " + std::to_string(npos) + " positional argument" +
                                            (npos == 1 ? "" : "s") + " but " + std::to_string(n) +
                                            (n == 1 ? " was" : " were") + " given");
        }
        std::vector<Value> rest(args.begin() + npos, args.end());
        dst[c->vararg_reg] = make_tuple(std::move(rest));
        n = npos;
    } else if (c->vararg_reg >= 0) {
        dst[c->vararg_reg] = make_tuple({});
    }
    for (int i = 0; i < n; ++i) {
        dst[i] = std::move(args[i]);
        set[i] = true;
    }
    Value extra;
    if (c->kwarg_reg >= 0) extra = make_dict();
    for (auto& k : kws) {
        int idx = -1;
        for (int i = 0; i < nparams; ++i)
            if (c->params[i].name == k.name) idx = i;
        if (idx < 0) {
            if (c->kwarg_reg >= 0) {
                set_item(extra, make_str(std::string(k.name)), k.value);
                continue;
            }
            std::vector<std::string> params;
            for (auto& p : c->params) params.push_back(p.name);
            raise(ErrorKind::TypeError, fn_label(c) + " got an unexpected keyword argument '" + std::string(k.name) + "'" +
                                            did_you_mean(k.name, params));
        }
        if (set[idx]) raise(ErrorKind::TypeError, fn_label(c) + " got multiple values for argument '" + std::string(k.name) + "'");
        dst[idx] = k.value;
        set[idx] = true;
    }
    if (c->kwarg_reg >= 0) dst[c->kwarg_reg] = std::move(extra);
    // Defaults belong to the last parameters that declare one, in order.
    int d = 0;
    std::vector<std::string> missing;
    for (int i = 0; i < nparams; ++i) {
        if (c->params[i].has_default) {
            if (!set[i]) dst[i] = fn->defaults[d];
            ++d;
        } else if (!set[i]) {
            missing.push_back(c->params[i].name);
        }
    }
    if (!missing.empty()) {
        std::string names;
        for (size_t i = 0; i < missing.size(); ++i) {
            if (i) names += i + 1 == missing.size() ? " and " : ", ";
            names += "'" + missing[i] + "'";
        }
        raise(ErrorKind::TypeError, fn_label(c) + " missing " + std::to_string(missing.size()) + " required argument" +
                                        (missing.size() == 1 ? "" : "s") + ": " + names);
    }
}

Value Interp::call_native(NativeObj* n, std::span<const Value> pos, std::span<const KwArg> kw) {
    if (!kw.empty()) check_kwargs(n->kwargs, n->name, kw);  // before any effect of the call
    if (!n->computes) ++may_wait_;
    // Builtins inspect their arguments: promises among them are forced first.
    bool any = false;
    for (auto& v : pos) any = any || v.is(ObjType::Promise);
    for (auto& k : kw) any = any || k.value.is(ObjType::Promise);
    if (any && !n->lazy_args) {
        std::vector<Value> fpos(pos.begin(), pos.end());
        std::vector<KwArg> fkw(kw.begin(), kw.end());
        for (auto& v : fpos) force(v);
        for (auto& k : fkw) force(k.value);
        CallArgs a{fpos, fkw};
        if (n->method) {
            Value self = n->self;
            return n->method(*this, self, a);
        }
        return n->fn(*this, a);
    }
    CallArgs a{pos, kw};
    if (n->method) {
        Value self = n->self;
        return n->method(*this, self, a);
    }
    return n->fn(*this, a);
}

namespace {
bool has_promise(std::span<const Value> pos, std::span<const KwArg> kw) {
    for (auto& v : pos)
        if (v.is(ObjType::Promise)) return true;
    for (auto& k : kw)
        if (k.value.is(ObjType::Promise)) return true;
    return false;
}
}  // namespace

// A type called with promises among its arguments (kept out of call_object's fast path).
[[gnu::noinline]] Value Interp::call_type_forcing(const TypeObj* t, std::span<const Value> pos,
                                                 std::span<const KwArg> kw) {
    std::vector<Value> fpos(pos.begin(), pos.end());
    std::vector<KwArg> fkw(kw.begin(), kw.end());
    for (auto& v : fpos) force(v);
    for (auto& k : fkw) force(k.value);
    CallArgs a{fpos, fkw};
    return call_type(*this, t, a);
}

Value Interp::call_object(const Value& callee, std::span<const Value> pos, std::span<const KwArg> kw) {
    if (callee.is_obj()) {
        switch (callee.as_obj()->type) {
            case ObjType::Function:
                return call_kw(callee, pos, kw);
            case ObjType::Native:
                return call_native(callee.as<NativeObj>(), pos, kw);
            case ObjType::TypeObj: {
                // `type(x)`, `int(x)`, `list(x)`: like builtins, they inspect their arguments.
                if (__builtin_expect(has_promise(pos, kw), 0)) return call_type_forcing(callee.as<TypeObj>(), pos, kw);
                CallArgs a{pos, kw};
                return call_type(*this, callee.as<TypeObj>(), a);
            }
            case ObjType::StructType:
                return construct_struct(callee.as<StructTypeObj>(), pos, kw);
            case ObjType::Opaque: {
                auto* o = callee.as<OpaqueObj>();
                ++may_wait_;
                if (o->cls->call_kw) return o->cls->call_kw(o, *this, CallArgs{pos, kw});
                if (o->cls->call) {
                    check_kwargs(nullptr, o->cls->name, kw);  // a callable host object takes none
                    return o->cls->call(o, *this, pos);
                }
                break;
            }
            case ObjType::BoundMethod: {
                auto* b = callee.as<BoundMethodObj>();
                std::vector<Value> args;
                args.reserve(pos.size() + 1);
                args.push_back(b->self);
                args.insert(args.end(), pos.begin(), pos.end());
                return call_kw(b->func, args, kw);
            }
            default:
                break;
        }
    }
    raise(ErrorKind::TypeError, "'" + type_name(callee) + "' object is not callable");
}

// ---------------------------------------------------------------------------
// The dispatch loop

// Does a deferred call of `c` run at once as a plain call? A leaf's, or one predicted quick, or
// a calm function's (vm/quick_calls.h) unless a worker is idle and `unstarted` (the caller's
// interpreter's records not yet started) is zero: one record at a time is enough to feed an idle
// worker, which takes the oldest, and the first made since it went idle is the largest piece of
// the computation under way.
[[gnu::noinline]] static bool runs_at_once(const Chunk* c, size_t unstarted) {
    return c->leaf || predicted_quick(c) || (predicted_calm(c) && (unstarted > 0 || !rt::has_idle_worker()));
}

#define WEFT_LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT_UNLIKELY(x) __builtin_expect(!!(x), 0)

Value Interp::run() {
    static void* const kLabels[] = {
#define WEFT_OP_LABEL(name) &&op_##name,
        WEFT_OPCODES(WEFT_OP_LABEL)
#undef WEFT_OP_LABEL
    };

    rt::Task* const cur_task = rt::current_task();
    Frame* frame;
    Value* R;
    const Value* K;
    const Instr* pc;
    Instr i;

#define LOAD_FRAME()                       \
    do {                                   \
        frame = &frames_.back();           \
        R = frame->base;                   \
        K = frame->proto->k.data();        \
        pc = frame->pc;                    \
    } while (0)
#define SAVE_PC() (frame->pc = pc)
// A safepoint (loop back-edges, returns): counted down here, so the common case is a decrement
// and a branch; every kSafepointBatch of them the task's budget is charged (safepoint_slow),
// which preempts at the end of the time slice and lets a cancellation in.
#define SAFEPOINT(at_back_edge)                          \
    do {                                                 \
        if (WEFT_UNLIKELY(--safepoints_left_ <= 0)) {    \
            SAVE_PC();                                   \
            safepoint_slow(at_back_edge);                \
        }                                                \
    } while (0)
// Two ways to go to the next instruction. FAST_DISPATCH jumps straight to the
// next handler (replicated dispatch); it is used only in handlers whose locals
// are trivially destructible, because a computed goto out of a scope does not
// run destructors. DISPATCH is an ordinary goto to the shared dispatch point,
// which does run them.
#define FAST_DISPATCH()                \
    do {                               \
        i = *pc++;                     \
        goto* kLabels[i & 0xff];       \
    } while (0)
#define DISPATCH() goto dispatch
#define A get_a(i)
#define B get_b(i)
#define C get_c(i)
#define BX get_bx(i)
#define SBX get_sbx(i)
// In the slow path of an instruction that needs the value of the register `r`, after SAVE_PC:
// an unstarted record of a deferred call there runs as a frame of this loop, and the
// instruction (`len` words read so far) runs again once it returns (run_record_here).
#define RUN_RECORD(r, len)                                                             \
    if (WEFT_UNLIKELY((r).is(ObjType::Promise)) && run_record_here(r, len)) {          \
        LOAD_FRAME();                                                                 \
        DISPATCH();                                                                   \
    }

    LOAD_FRAME();
dispatch:
    FAST_DISPATCH();

op_Move:
    if (WEFT_UNLIKELY(R[B].is(ObjType::Promise))) {
        // Reading a variable that holds a finished promise: keep the value in the
        // variable from now on, so later reads cost nothing.
        if (const Value* settled = R[B].as<PromiseObj>()->settled_value()) {
            Value v = *settled;
            R[B] = v;
        }
    }
    R[A] = R[B];
    FAST_DISPATCH();
op_LoadK:
    R[A] = K[BX];
    FAST_DISPATCH();
op_LoadI:
    R[A].set_int(SBX);
    FAST_DISPATCH();
op_LoadNone:
    R[A] = Value();
    FAST_DISPATCH();
op_LoadBool:
    R[A] = Value::boolean(B != 0);
    FAST_DISPATCH();
op_GetGlobal: {
    ModuleObj* m = frame->fn->module;
    m->load(int(BX), R[A]);
    if (WEFT_UNLIKELY(ModuleObj::is_undefined(R[A]))) {
        SAVE_PC();
        global_read_slow(m, int(BX), R[A]);  // raises the NameError
    }
    FAST_DISPATCH();
}
op_GetGlobalTop: {
    // A module's own top-level code reading its slot: a deferred call's promise stored there
    // (`data = fetch(url)`) is replaced by its value once finished, in the slot too, so later
    // reads cost what a variable's read costs (functions never write module slots; only the
    // module's top level does, and only for slots no function reads).
    ModuleObj* m = frame->fn->module;
    m->load(int(BX), R[A]);
    if (WEFT_UNLIKELY(R[A].is_obj()) &&
        WEFT_UNLIKELY(R[A].as_obj()->type == ObjType::Promise || ModuleObj::is_undefined(R[A]))) {
        SAVE_PC();
        global_read_slow(m, int(BX), R[A]);
    }
    FAST_DISPATCH();
}
op_SetGlobal: {
    ModuleObj* m = frame->fn->module;
    if (WEFT_UNLIKELY(m->read_by_functions(int(BX)))) {
        pin(R[A]);
        share(R[A]);
        if (g_multi_worker.load(std::memory_order_relaxed) && others_alive(vm_.limits_state(), m))
            m->store_shared(int(BX), R[A]);
        else m->globals[BX] = R[A];
    } else {
        m->globals[BX] = R[A];
    }
    FAST_DISPATCH();
}
op_ReleaseGlobal: {
    // Only str + str, which cannot fail, so the slot is never left empty by an error; only a
    // slot no function reads, so no other task can see it empty; only when the slot holds R[A]'s
    // string, so the value stored back is the one that was read.
    uint32_t slot = *pc++;
    ModuleObj* m = frame->fn->module;
    if (R[A].is(ObjType::Str) && R[C].is(ObjType::Str) && !m->read_by_functions(int(slot)) &&
        m->globals[slot].is(ObjType::Str) && m->globals[slot].as_obj() == R[A].as_obj())
        m->globals[slot] = ModuleObj::undefined_marker();
    FAST_DISPATCH();
}
op_GetBuiltin:
    R[A] = vm_.builtins[BX];
    FAST_DISPATCH();
op_GetCapture: {
    const Value& v = frame->fn->captures[B];
    if (WEFT_UNLIKELY(ModuleObj::is_undefined(v))) {
        SAVE_PC();
        raise(ErrorKind::NameError, "name '" + frame->proto->chunk->captures[B].name +
                                        "' was not yet assigned when this function was created "
                                        "(closures capture values when they are created)");
    }
    R[A] = v;
    FAST_DISPATCH();
}
op_GetSelfFn:
    R[A] = Value::borrow(frame->fn);
    FAST_DISPATCH();
op_CheckDef:
    if (WEFT_UNLIKELY(ModuleObj::is_undefined(R[A]))) {
        SAVE_PC();
        raise(ErrorKind::NameError, "local variable '" + K[BX].as<StrObj>()->data + "' referenced before assignment");
    }
    FAST_DISPATCH();

#define ARITH(opname, intop, fltop, astop)                                            \
    {                                                                                 \
        const Value& x = R[B];                                                        \
        const Value& y = R[C];                                                        \
        if (WEFT_LIKELY(x.is_int() && y.is_int())) {                                   \
            int64_t r;                                                                \
            if (WEFT_UNLIKELY(intop(x.as_int(), y.as_int(), &r))) {                   \
                SAVE_PC();                                                            \
                raise(ErrorKind::OverflowError, "integer overflow");                  \
            }                                                                         \
            R[A].set_int(r);                                                          \
        } else if (x.is_float() && y.is_float()) {                                    \
            R[A].set_float(x.as_float() fltop y.as_float());                          \
        } else {                                                                      \
            SAVE_PC();                                                                \
            RUN_RECORD(R[B], 1)                                                       \
            RUN_RECORD(R[C], 1)                                                       \
            R[A] = binary_op_forcing(astop, R[B], R[C]);                              \
        }                                                                             \
        FAST_DISPATCH();                                                                   \
    }
op_Add:
    // `s = s + t` on a string held only by s appends in place; A == B is tested
    // first so int additions pay one compare of instruction fields, not type loads.
    if (A == B && R[B].is(ObjType::Str) && R[C].is(ObjType::Str)) {
        SAVE_PC();
        R[A] = str_concat(R[A], R[C]);
        FAST_DISPATCH();
    }
    ARITH(Add, __builtin_add_overflow, +, BinaryOp::Add)
op_Sub:
    ARITH(Sub, __builtin_sub_overflow, -, BinaryOp::Sub)
op_Mul:
    ARITH(Mul, __builtin_mul_overflow, *, BinaryOp::Mul)
#undef ARITH

#define ARITHK(intop, fltop, astop)                                                   \
    {                                                                                 \
        const Value& x = R[B];                                                        \
        const Value& y = K[C];                                                        \
        if (WEFT_LIKELY(x.is_int())) {                                                \
            int64_t r;                                                                \
            if (WEFT_UNLIKELY(intop(x.as_int(), y.as_int(), &r))) {                   \
                SAVE_PC();                                                            \
                raise(ErrorKind::OverflowError, "integer overflow");                  \
            }                                                                         \
            R[A].set_int(r);                                                          \
        } else if (x.is_float()) {                                                    \
            R[A].set_float(x.as_float() fltop double(y.as_int()));                    \
        } else {                                                                      \
            SAVE_PC();                                                                \
            RUN_RECORD(R[B], 1)                                                       \
            R[A] = binary_op_forcing(astop, R[B], const_cast<Value&>(y));             \
        }                                                                             \
        FAST_DISPATCH();                                                                   \
    }
op_AddK:
    ARITHK(__builtin_add_overflow, +, BinaryOp::Add)
op_SubK:
    ARITHK(__builtin_sub_overflow, -, BinaryOp::Sub)
#undef ARITHK

op_BinOp: {
    BinaryOp bop = BinaryOp(*pc++);
    const Value& x = R[B];
    const Value& y = R[C];
    if (x.is_int() && y.is_int()) {
        int64_t a = x.as_int(), b = y.as_int();
        switch (bop) {
            case BinaryOp::Mod:
                if (b > 0) {
                    int64_t r = a % b;
                    if (r < 0) r += b;
                    R[A].set_int(r);
                    FAST_DISPATCH();
                }
                break;
            case BinaryOp::FloorDiv:
                if (b > 0) {
                    int64_t q = a / b;
                    if ((a % b != 0) && (a < 0)) --q;
                    R[A].set_int(q);
                    FAST_DISPATCH();
                }
                break;
            case BinaryOp::BitAnd:
                R[A].set_int(a & b);
                FAST_DISPATCH();
            case BinaryOp::BitOr:
                R[A].set_int(a | b);
                FAST_DISPATCH();
            case BinaryOp::BitXor:
                R[A].set_int(a ^ b);
                FAST_DISPATCH();
            default:
                break;
        }
    } else if (x.is_float() && y.is_float()) {
        double a = x.as_float(), b = y.as_float();
        if (bop == BinaryOp::Div && b != 0.0) {
            R[A].set_float(a / b);
            FAST_DISPATCH();
        }
    }
    SAVE_PC();
    RUN_RECORD(R[B], 2)
    RUN_RECORD(R[C], 2)
    {
        Value hb, hc;
        const Value& vb = value_of(R[B], hb);
        const Value& vc = value_of(R[C], hc);
        if (bop == BinaryOp::BitOr && (vb.is_obj() || vc.is_obj())) {
            Value out;
            if (pipe_op(*this, vb, vc, out)) {
                R[A] = std::move(out);
                DISPATCH();
            }
        }
        R[A] = binary_op(bop, vb, vc);
    }
    FAST_DISPATCH();
}
op_BinOpK: {
    BinaryOp bop = BinaryOp(*pc++);
    const Value& x = R[B];
    const Value& y = K[C];
    if (x.is_int() && y.is_int()) {
        int64_t a = x.as_int(), b = y.as_int();
        int64_t r;
        switch (bop) {
            case BinaryOp::Mul:
                if (!__builtin_mul_overflow(a, b, &r)) {
                    R[A].set_int(r);
                    FAST_DISPATCH();
                }
                break;
            case BinaryOp::Mod:
                if (b > 0) {
                    r = a % b;
                    if (r < 0) r += b;
                    R[A].set_int(r);
                    FAST_DISPATCH();
                }
                break;
            case BinaryOp::FloorDiv:
                if (b > 0) {
                    r = a / b;
                    if ((a % b != 0) && (a < 0)) --r;
                    R[A].set_int(r);
                    FAST_DISPATCH();
                }
                break;
            case BinaryOp::BitAnd:
                R[A].set_int(a & b);
                FAST_DISPATCH();
            default:
                break;
        }
    } else if (x.is_float() && y.is_number()) {
        double a = x.as_float(), b = y.as_number();
        switch (bop) {
            case BinaryOp::Mul:
                R[A].set_float(a * b);
                FAST_DISPATCH();
            case BinaryOp::Add:
                R[A].set_float(a + b);
                FAST_DISPATCH();
            case BinaryOp::Sub:
                R[A].set_float(a - b);
                FAST_DISPATCH();
            case BinaryOp::Div:
                if (b != 0.0) {
                    R[A].set_float(a / b);
                    FAST_DISPATCH();
                }
                break;
            default:
                break;
        }
    }
    SAVE_PC();
    RUN_RECORD(R[B], 2)
    R[A] = binary_op_forcing(bop, R[B], const_cast<Value&>(y));
    FAST_DISPATCH();
}
op_Neg:
    if (R[B].is_int() && R[B].as_int() != INT64_MIN) {
        R[A].set_int(-R[B].as_int());
    } else if (R[B].is_float()) {
        R[A].set_float(-R[B].as_float());
    } else {
        SAVE_PC();
        RUN_RECORD(R[B], 1)
        R[A] = unary_op_forcing(ast::UnaryOp::Neg, R[B]);
    }
    FAST_DISPATCH();
op_Not:
    if (R[B].is_bool()) {
        R[A] = Value::boolean(!R[B].as_bool());
    } else {
        SAVE_PC();
        RUN_RECORD(R[B], 1)
        R[A] = Value::boolean(!truthy_forcing(R[B]));
    }
    FAST_DISPATCH();
op_Invert:
    SAVE_PC();
    R[A] = unary_op_forcing(ast::UnaryOp::Invert, R[B]);
    DISPATCH();
op_Plus:
    SAVE_PC();
    R[A] = unary_op_forcing(ast::UnaryOp::Pos, R[B]);
    DISPATCH();

#define CMP_VALUE(cop, astop)                                                          \
    {                                                                                 \
        const Value& x = R[B];                                                        \
        const Value& y = R[C];                                                        \
        if (x.is_int() && y.is_int()) {                                               \
            R[A] = Value::boolean(x.as_int() cop y.as_int());                         \
        } else if (x.is_float() && y.is_float()) {                                    \
            R[A] = Value::boolean(x.as_float() cop y.as_float());                     \
        } else {                                                                      \
            SAVE_PC();                                                                \
            RUN_RECORD(R[B], 1)                                                       \
            RUN_RECORD(R[C], 1)                                                       \
            R[A] = compare_forcing(astop, R[B], R[C]);                                \
        }                                                                             \
        FAST_DISPATCH();                                                                   \
    }
op_Lt:
    CMP_VALUE(<, CmpOp::Lt)
op_Le:
    CMP_VALUE(<=, CmpOp::Le)
op_Eq:
    CMP_VALUE(==, CmpOp::Eq)
#undef CMP_VALUE
op_Cmp: {
    CmpOp cop = CmpOp(*pc++);
    // `x is None` / `x is not None`, the usual identity tests, when neither side is a promise.
    if ((cop == CmpOp::Is || cop == CmpOp::IsNot) && (R[B].is_none() || R[C].is_none()) &&
        !R[B].is(ObjType::Promise) && !R[C].is(ObjType::Promise)) {
        R[A] = Value::boolean((R[B].is_none() && R[C].is_none()) == (cop == CmpOp::Is));
        FAST_DISPATCH();
    }
    SAVE_PC();
    RUN_RECORD(R[B], 2)
    RUN_RECORD(R[C], 2)
    R[A] = compare_forcing(cop, R[B], R[C]);
    DISPATCH();
}

#define CMP_JUMP(x, y, cop, astop)                                                     \
    {                                                                                 \
        bool res;                                                                     \
        if (WEFT_LIKELY(x.is_int()) && y.is_int()) {                                  \
            res = x.as_int() cop y.as_int();                                          \
        } else if (x.is_number() && y.is_number()) {                                  \
            res = x.as_number() cop y.as_number();                                    \
        } else {                                                                      \
            SAVE_PC();                                                                \
            RUN_RECORD(const_cast<Value&>(x), 1)                                      \
            RUN_RECORD(const_cast<Value&>(y), 1)                                      \
            res = compare_forcing(astop, const_cast<Value&>(x), const_cast<Value&>(y)).as_bool(); \
        }                                                                             \
        if (res != bool(C)) ++pc;                                                     \
        FAST_DISPATCH();                                                                   \
    }
#define EQ_JUMP(x, y)                                                                  \
    {                                                                                 \
        bool res;                                                                     \
        if (x.is_int() && y.is_int()) {                                               \
            res = x.as_int() == y.as_int();                                           \
        } else {                                                                      \
            SAVE_PC();                                                                \
            RUN_RECORD(const_cast<Value&>(x), 1)                                      \
            RUN_RECORD(const_cast<Value&>(y), 1)                                      \
            res = equal_forcing(const_cast<Value&>(x), const_cast<Value&>(y));        \
        }                                                                             \
        if (res != bool(C)) ++pc;                                                     \
        FAST_DISPATCH();                                                              \
    }
op_TLt:
    CMP_JUMP(R[A], R[B], <, CmpOp::Lt)
op_TLe:
    CMP_JUMP(R[A], R[B], <=, CmpOp::Le)
op_TEq:
    EQ_JUMP(R[A], R[B])
op_TLtK:
    CMP_JUMP(R[A], K[B], <, CmpOp::Lt)
op_TLeK:
    CMP_JUMP(R[A], K[B], <=, CmpOp::Le)
op_TGtK:
    CMP_JUMP(R[A], K[B], >, CmpOp::Gt)
op_TGeK:
    CMP_JUMP(R[A], K[B], >=, CmpOp::Ge)
#undef CMP_JUMP
op_TEqK:
    EQ_JUMP(R[A], K[B])
#undef EQ_JUMP
op_Test: {
    const Value& x = R[A];
    bool t;
    if (x.is_bool())
        t = x.as_bool();
    else {
        SAVE_PC();
        RUN_RECORD(R[A], 1)
        t = truthy_forcing(R[A]);
    }
    if (t != bool(B)) ++pc;
    FAST_DISPATCH();
}
op_Jmp:
    pc += get_sj(i);
    FAST_DISPATCH();
op_Loop:
    // Safepoint: cancellation and time-slice preemption reach CPU-bound loops. Taken before the
    // jump, so that an error raised here is the Loop instruction's: handlers are looked up at
    // pc - 1, and after the jump that was the instruction before the loop's head, outside a
    // `with`/`try` block whose body starts with the loop (a top-level `while True:` in
    // `with move_on_after(...)` escaped as Cancelled).
    SAFEPOINT(true);
    pc += get_sj(i);
    FAST_DISPATCH();

op_NewList: {
    std::vector<Value> items;
    items.reserve(C);
    for (int j = 0; j < C; ++j) items.push_back(std::move(R[B + j]));
    R[A] = make_list(std::move(items));
    DISPATCH();
}
op_NewTuple: {
    std::vector<Value> items;
    items.reserve(C);
    for (int j = 0; j < C; ++j) items.push_back(R[B + j]);
    R[A] = make_tuple(std::move(items));
    DISPATCH();
}
op_NewSet: {
    SAVE_PC();
    Value s = make_set();
    SetObj* so = s.as<SetObj>();
    for (int j = 0; j < C; ++j) so->table.insert(R[B + j], Value());
    R[A] = std::move(s);
    DISPATCH();
}
op_NewDict: {
    SAVE_PC();
    Value d = make_dict();
    DictObj* dobj = d.as<DictObj>();
    for (int j = 0; j < C; ++j) dobj->table.insert(R[B + 2 * j], R[B + 2 * j + 1]);
    R[A] = std::move(d);
    DISPATCH();
}
op_ListAppend:
    if (R[A].is(ObjType::Set)) {
        SAVE_PC();
        set_unshare(R[A])->table.insert(R[B], Value());
    } else {
        list_unshare(R[A])->items.push_back(R[B]);
    }
    DISPATCH();
op_ListExtend: {
    SAVE_PC();
    force(R[B]);
    std::vector<Value> xs = collect(*this, R[B]);
    if (R[A].is(ObjType::Set)) {
        SetObj* so = set_unshare(R[A]);
        for (auto& x : xs) so->table.insert(x, Value());
    } else {
        ListObj* l = list_unshare(R[A]);
        for (auto& x : xs) l->items.push_back(std::move(x));
    }
    DISPATCH();
}
op_SetAdd:
    SAVE_PC();
    set_unshare(R[A])->table.insert(R[B], Value());
    DISPATCH();
op_DictSet:
    SAVE_PC();
    dict_unshare(R[A])->table.insert(R[B], R[C]);
    DISPATCH();
op_DictMerge: {
    SAVE_PC();
    force(R[B]);
    if (!R[B].is(ObjType::Dict)) raise(ErrorKind::TypeError, "'" + type_name(R[B]) + "' object is not a mapping");
    DictObj* src = R[B].as<DictObj>();
    Value keep = R[B];
    DictObj* dst = dict_unshare(R[A]);
    for (size_t j = 0; j < src->table.end_index(); ++j) {
        auto& e = src->table.entry(j);
        if (e.live) dst->table.insert(e.key, e.value);
    }
    DISPATCH();
}
op_ToTuple: {
    SAVE_PC();
    R[A] = make_tuple(collect(*this, R[B]));
    DISPATCH();
}
op_GetItem: {
    if (WEFT_UNLIKELY(R[C].is(ObjType::Promise) || R[B].is(ObjType::Promise))) {
        SAVE_PC();
        RUN_RECORD(R[B], 1)
        RUN_RECORD(R[C], 1)
        {
            Value hb, hc;
            R[A] = get_item(value_of(R[B], hb), value_of(R[C], hc));
        }
        DISPATCH();
    }
    const Value& o = R[B];
    const Value& key = R[C];
    if (o.is(ObjType::List) && key.is_int()) {
        auto& items = o.as<ListObj>()->items;
        int64_t idx = key.as_int();
        if (idx < 0) idx += int64_t(items.size());
        if (idx >= 0 && idx < int64_t(items.size())) {
            R[A] = items[idx];
            FAST_DISPATCH();
        }
    } else if (o.is(ObjType::Dict)) {
        SAVE_PC();
        DictObj* d = o.as<DictObj>();
        int64_t e = d->table.find(key);
        if (e >= 0) {
            R[A] = d->table.entry(e).value;
            FAST_DISPATCH();
        }
    }
    SAVE_PC();
    R[A] = get_item(o, key);
    FAST_DISPATCH();
}
op_SetItem: {
    SAVE_PC();
    force(R[A]);
    force(R[B]);
    Value& o = R[A];
    if (o.is(ObjType::List) && R[B].is_int()) {
        ListObj* l = list_unshare(o);
        int64_t idx = R[B].as_int();
        if (idx < 0) idx += int64_t(l->items.size());
        if (idx >= 0 && idx < int64_t(l->items.size())) {
            l->items[idx] = R[C];
            FAST_DISPATCH();
        }
    } else if (o.is(ObjType::Dict)) {
        dict_unshare(o)->table.insert(R[B], R[C]);
        FAST_DISPATCH();
    }
    set_item(o, R[B], R[C]);
    FAST_DISPATCH();
}
op_GetAttr:
    SAVE_PC();
    if (WEFT_UNLIKELY(R[B].is(ObjType::Promise))) {
        Value out;
        if (promise_attr(*this, R[B].as<PromiseObj>(), K[C].as<StrObj>()->data, out)) {
            R[A] = std::move(out);
            DISPATCH();
        }
        RUN_RECORD(R[B], 1)
        {
            Value hb;
            R[A] = get_attr(value_of(R[B], hb), K[C].as<StrObj>());
        }
        DISPATCH();
    }
    if (R[B].is(ObjType::Struct)) {
        // A struct's field, inline: a pointer compare per field of the type (get_attr does the
        // same after a call and the tests for methods, errors and actors).
        auto* s = R[B].as<StructObj>();
        int idx = s->type->field_index_interned(K[C].as<StrObj>());
        if (WEFT_LIKELY(idx >= 0)) {
            R[A] = s->fields[size_t(idx)];
            FAST_DISPATCH();
        }
    }
    R[A] = get_attr(R[B], K[C].as<StrObj>());
    FAST_DISPATCH();
op_SetAttr:
    SAVE_PC();
    force(R[A]);
    set_attr(R[A], K[B].as<StrObj>(), R[C]);
    FAST_DISPATCH();
op_Slice:
    SAVE_PC();
    force(R[B]);
    force(R[B + 1]);
    force(R[B + 2]);
    R[A] = make_slice(R[B], R[B + 1], R[B + 2]);
    DISPATCH();

op_PlaceR:
    place_ = &R[A];
    place_module_ = nullptr;
    FAST_DISPATCH();
op_PlaceG: {
    ModuleObj* m = frame->fn->module;
    Value& g = m->globals[BX];
    if (ModuleObj::is_undefined(g)) {
        SAVE_PC();
        raise(ErrorKind::NameError, "name '" + m->layout.names[BX] + "' is not defined" +
                                        defined_name_hint(m, m->layout.names[BX]));
    }
    if (WEFT_UNLIKELY(global_write_is_shared(m, int(BX)))) {
        // Other tasks may read the slot. If some are alive, mutate a private
        // copy (the extra reference makes copy-on-write copy) and publish it
        // when the place operation ends; alone, mutate in place and share the
        // result then (place_done).
        place_module_ = m;
        place_slot_ = int(BX);
        if (others_alive(vm_.limits_state(), m)) {
            place_hold_ = g;
            place_ = &place_hold_;
        } else {
            place_ = &g;
        }
    } else {
        place_ = &g;
        place_module_ = nullptr;
    }
    FAST_DISPATCH();
}
op_PlaceAttr: {
    SAVE_PC();
    force(*place_);
    Value& o = *place_;
    StrObj* name = K[C].as<StrObj>();
    if (!o.is(ObjType::Struct))
        raise(ErrorKind::AttributeError, "cannot assign into attribute '" + name->data + "' of a '" + type_name(o) + "' value");
    StructObj* s = struct_unshare(o);
    int f = s->type->field_index_interned(name);
    if (f < 0) raise(ErrorKind::AttributeError, "'" + s->type->name + "' object has no field '" + name->data + "'");
    place_ = &s->fields[f];
    DISPATCH();
}
op_PlaceItem: {
    SAVE_PC();
    force(*place_);
    force(R[B]);
    Value& o = *place_;
    const Value& key = R[B];
    if (o.is(ObjType::List)) {
        if (!key.is_int()) raise(ErrorKind::TypeError, "list indices must be integers, not " + type_name(key));
        ListObj* l = list_unshare(o);
        int64_t idx = key.as_int();
        if (idx < 0) idx += int64_t(l->items.size());
        if (idx < 0 || idx >= int64_t(l->items.size())) raise(ErrorKind::IndexError, "list index out of range");
        place_ = &l->items[idx];
    } else if (o.is(ObjType::Dict)) {
        DictObj* d = dict_unshare(o);
        int64_t e = d->table.find(key);
        if (e < 0) throw WeftError(ErrorKind::KeyError, repr(key));
        place_ = &d->table.entry(e).value;
    } else {
        raise(ErrorKind::TypeError, "'" + type_name(o) + "' object does not support item assignment");
    }
    DISPATCH();
}
op_SetItemP:
    SAVE_PC();
    force(*place_);
    force(R[B]);
    set_item(*place_, R[B], R[C]);
    if (WEFT_UNLIKELY(place_module_ != nullptr)) place_done();
    DISPATCH();
op_SetAttrP:
    SAVE_PC();
    set_attr(*place_, K[B].as<StrObj>(), R[C]);
    if (WEFT_UNLIKELY(place_module_ != nullptr)) place_done();
    DISPATCH();

op_Call: {
    Value& fv = R[A];
    int nargs = B;
    SAVE_PC();
    if (WEFT_UNLIKELY(!fv.is(ObjType::Function)) && fv.is(ObjType::Promise))
        force(fv);  // e.g. a function returned by a deferred call
    if (WEFT_LIKELY(fv.is(ObjType::Function))) {
        FunctionObj* fn = fv.as<FunctionObj>();
        const Chunk* c = fn->proto->chunk;
        Value* nb = &R[A + 1];
        if (WEFT_LIKELY(nargs == c->simple_arity)) {
            // arguments already in place
        } else if (nargs < c->num_positional && c->vararg_reg < 0 && c->kwarg_reg < 0 &&
                   c->num_positional == int(c->params.size()) &&
                   nargs >= c->num_positional - c->num_defaults) {
            int first_default = c->num_positional - c->num_defaults;
            for (int j = nargs; j < c->num_positional; ++j) nb[j] = fn->defaults[j - first_default];
        } else {
            bind_args(fn, nb, std::span<const Value>(nb, nargs), {});
        }
        push_frame(fn, nb, FrameExit::Normal);
        LOAD_FRAME();
        FAST_DISPATCH();
    }
    if (fv.is(ObjType::BoundMethod)) {
        auto* bm = fv.as<BoundMethodObj>();
        if (bm->func.is(ObjType::Function)) {
            for (int j = nargs; j >= 1; --j) R[A + 1 + j] = std::move(R[A + j]);
            Value self = bm->self;
            Value func = bm->func;
            R[A + 1] = std::move(self);
            R[A] = std::move(func);
            FunctionObj* fn = R[A].as<FunctionObj>();
            Value* nb = &R[A + 1];
            bind_args(fn, nb, std::span<const Value>(nb, nargs + 1), {});
            push_frame(fn, nb, FrameExit::Normal);
            LOAD_FRAME();
            DISPATCH();
        }
    }
    Value result = call_object(fv, std::span<const Value>(&R[A + 1], nargs), {});
    for (int j = 1; j <= nargs; ++j) R[A + j] = Value();
    R[A] = std::move(result);
    DISPATCH();
}
op_CallDefer: {
    // A deferred call (spec section 5): a Weft function or blocking builtin becomes a
    // record whose promise is stored (vm/pending.h: it runs when forced, or as a task
    // when it must run concurrently); anything else is an ordinary call.
    Value& fv = R[A];
    if (fv.is(ObjType::Function) && run_leaves_now_) {
        // A leaf (Chunk::leaf: no calls, no loops) cannot block and is over in moments: making
        // a record to run it later would cost more than the call. It runs now, as a plain call
        // whose frame keeps an error for the use of the value (Frame::captures), as a deferred
        // call does. So does a function whose records have proved quick, or calm while no
        // worker is idle (vm/quick_calls.h).
        // Not when an argument is still a promise: the leaf would force it here,
        // before the caller makes its next deferred calls.
        // The same for any function when the caller needs the value before it does anything
        // else (C=1, set by the compiler: `x = f(a)` then `total += x`): nothing of the caller's
        // could overlap with the call, and its record would be forced at once.
        FunctionObj* fn = fv.as<FunctionObj>();
        const Chunk* c = fn->proto->chunk;
        if (B == c->simple_arity && ((C && get_op(i) == Op::CallDefer) ||
                                     (runs_at_once(c, unstarted_) && args_ready(&R[A + 1], B)))) {
            SAVE_PC();
            push_frame(fn, &R[A + 1], FrameExit::Normal, /*captures=*/true);
            LOAD_FRAME();
            FAST_DISPATCH();
        }
    }
    if (cur_task && can_defer(fv) && defer_allowed()) {
        SAVE_PC();
        R[A] = defer_call(*this, std::move(fv), std::span<Value>(&R[A + 1], size_t(B)));
        for (int j = 1; j <= B; ++j) R[A + j] = Value();
        DISPATCH();
    }
    goto op_Call;
}
op_CallMDeferNow:
op_CallMDefer: {
    // A method call in a deferral position: `x = mod.f(a)` or `x = obj.m(a)` is
    // deferred when the callee is a Weft function (a module's function or a
    // struct's method) or a module's blocking builtin; anything else is CallM.
    // CallMDeferNow: the caller needs the value next (op_CallDefer's C=1).
    Value callee;
    Value& recv = R[C];
    if (cur_task && defer_allowed()) {
        StrObj* name = K[*pc & 0xffff].as<StrObj>();
        if (recv.is(ObjType::Module)) {
            Value v;
            if (recv.as<ModuleObj>()->find(name->data, v) && can_defer(v)) callee = std::move(v);
        } else if (recv.is(ObjType::Struct)) {
            auto* s = recv.as<StructObj>();
            // An actor's own methods run in its handler's task, never beside it: its state is
            // changed in place (vm/actors.h).
            const Value* m = !s->type->actor_kind ? s->type->method_not_shadowed(name) : nullptr;
            if (m && m->is(ObjType::Function)) callee = *m;
        }
    }
    if (callee.is_none()) {
        goto op_CallM;
    }
    if (run_leaves_now_ && callee.is(ObjType::Function) && (*pc >> 16) == 0) {
        // A leaf method or module function runs at once, as op_CallDefer runs a leaf, and so
        // does any when the caller needs the value next.
        FunctionObj* fn = callee.as<FunctionObj>();
        const Chunk* c = fn->proto->chunk;
        bool self = recv.is(ObjType::Struct);
        if (B + int(self) == c->simple_arity &&
            (get_op(i) == Op::CallMDeferNow || (runs_at_once(c, unstarted_) && args_ready(&R[A + 2], B)))) {
            ++pc;
            SAVE_PC();
            if (self) {
                R[A + 1] = recv;
            } else {
                for (int j = 0; j < B; ++j) R[A + 1 + j] = std::move(R[A + 2 + j]);
                R[A + 1 + B] = Value();
            }
            R[A] = std::move(callee);
            push_frame(fn, &R[A + 1], FrameExit::Normal, /*captures=*/true);
            LOAD_FRAME();
            DISPATCH();
        }
    }
    Instr x = *pc++;
    SAVE_PC();
    int kwk = int(x >> 16);
    const Constant* kwnames = kwk ? &frame->proto->chunk->consts[kwk - 1] : nullptr;
    int nargs = B, nkw = kwnames ? int(kwnames->names.size()) : 0;
    std::vector<Value> args;
    args.reserve(size_t(nargs) + 1);
    if (recv.is(ObjType::Struct)) args.push_back(recv);  // self
    for (int j = 0; j < nargs; ++j) args.push_back(std::move(R[A + 2 + j]));
    std::vector<std::string> names;
    std::vector<Value> values;
    for (int j = 0; j < nkw; ++j) {
        names.push_back(kwnames->names[j]);
        values.push_back(std::move(R[A + 2 + nargs + j]));
    }
    R[A + 1] = Value();
    R[A] = defer_call(*this, std::move(callee), std::span<Value>(args), std::move(names), std::move(values));
    DISPATCH();
}
op_CallDeferIf:
    // An argument of a call (`h(f(a))`): a deferral position only when the outer call,
    // whose callee is already in R[C], calls a Weft function. The call itself is
    // CallDefer's or Call's.
    if (is_weft_callee(R[C])) goto op_CallDefer;
    goto op_Call;
op_CallDeferIfM:
    // An argument of a method call (`mod.h(f(a))`, `obj.h(f(a))`): the outer receiver is
    // in R[C], the method's name in the extra word.
    if (is_weft_method(R[C], K[*pc++])) goto op_CallDefer;
    goto op_Call;
op_Force:
    if (R[A].is(ObjType::Promise)) {
        // B=1: only the promise of a deferred call (a callee's deferred `return f(x)`
        // reaching a try body or a sequential: block), not a task handle or a lazy value.
        PromiseObj* p = R[A].as<PromiseObj>();
        if (B && (p->is_handle || p->kind == PromiseObj::Kind::Lazy)) DISPATCH();
        SAVE_PC();
        RUN_RECORD(R[A], 1)
        force(R[A]);
    }
    DISPATCH();
op_CallKwDefer: {
    // `x = f(a, k=v)`: deferred like CallDefer when the callee is a Weft function or a blocking
    // builtin (keyword arguments do not change that); otherwise CallKw.
    Value& fv = R[A];
    if (cur_task && can_defer(fv) && defer_allowed()) {
        int npos = B, nkw = C;
        const Constant& names = frame->proto->chunk->consts[*pc++];
        SAVE_PC();
        std::vector<std::string> kw_names(names.names.begin(), names.names.end());
        std::vector<Value> kw_values;
        kw_values.reserve(size_t(nkw));
        for (int j = 0; j < nkw; ++j) kw_values.push_back(std::move(R[A + 1 + npos + j]));
        R[A] = defer_call(*this, std::move(fv), std::span<Value>(&R[A + 1], size_t(npos)), std::move(kw_names),
                          std::move(kw_values));
        for (int j = 1; j <= npos + nkw; ++j) R[A + j] = Value();
        DISPATCH();
    }
    goto op_CallKw;
}
op_CallKw: {
    int npos = B, nkw = C;
    const Constant& names = frame->proto->chunk->consts[*pc++];
    SAVE_PC();
    std::vector<KwArg> kw;
    kw.reserve(nkw);
    for (int j = 0; j < nkw; ++j) kw.push_back(KwArg{names.names[j], R[A + 1 + npos + j]});
    Value& fv = R[A];
    if (fv.is(ObjType::Function)) {
        FunctionObj* fn = fv.as<FunctionObj>();
        Value* nb = &R[A + 1];
        bind_args(fn, nb, std::span<const Value>(nb, npos), kw);
        push_frame(fn, nb, FrameExit::Normal);
        LOAD_FRAME();
        DISPATCH();
    }
    Value result = call_object(fv, std::span<const Value>(&R[A + 1], npos), kw);
    for (int j = 1; j <= npos + nkw; ++j) R[A + j] = Value();
    R[A] = std::move(result);
    DISPATCH();
}
op_CallEx: {
    SAVE_PC();
    std::vector<Value> pos = collect(*this, R[A + 1]);
    Value kwd = R[A + 2];
    std::vector<std::string> keys;
    std::vector<KwArg> kw;
    if (kwd.is(ObjType::Dict)) {
        DictObj* d = kwd.as<DictObj>();
        for (size_t j = 0; j < d->table.end_index(); ++j) {
            auto& e = d->table.entry(j);
            if (!e.live) continue;
            if (!e.key.is(ObjType::Str)) raise(ErrorKind::TypeError, "keywords must be strings");
            keys.push_back(e.key.as<StrObj>()->data);
        }
        size_t n = 0;
        for (size_t j = 0; j < d->table.end_index(); ++j) {
            auto& e = d->table.entry(j);
            if (!e.live) continue;
            kw.push_back(KwArg{keys[n++], e.value});
        }
    }
    R[A + 1] = Value();
    R[A + 2] = Value();
    Value& fv = R[A];
    if (fv.is(ObjType::Function)) {
        FunctionObj* fn = fv.as<FunctionObj>();
        Value* nb = &R[A + 1];
        bind_args(fn, nb, pos, kw);
        push_frame(fn, nb, FrameExit::Normal);
        LOAD_FRAME();
        DISPATCH();
    }
    Value result = call_object(fv, pos, kw);
    R[A] = std::move(result);
    DISPATCH();
}
op_CallM:
op_CallMP: {
    bool is_place = get_op(i) == Op::CallMP;
    Instr x = *pc++;
    SAVE_PC();
    StrObj* name = K[x & 0xffff].as<StrObj>();
    int kwk = int(x >> 16);
    const Constant* kwnames = kwk ? &frame->proto->chunk->consts[kwk - 1] : nullptr;
    Value& recv = is_place ? *place_ : R[C];
    if (!is_place && !kwnames && recv.is(ObjType::Struct)) {
        // A struct's own Weft method with positional arguments that bind one to one: the frame
        // is pushed here (call_method's first case, without its tests for promises, keyword
        // arguments and built-in receivers).
        StructTypeObj* t = recv.as<StructObj>()->type;
        const Value* m = t->method_not_shadowed(name);
        if (m && m->is(ObjType::Function) && m->as<FunctionObj>()->proto->chunk->simple_arity == B + 1) {
            R[A + 1] = recv;
            R[A] = *m;
            push_frame(R[A].as<FunctionObj>(), &R[A + 1], FrameExit::Normal);
            LOAD_FRAME();
            FAST_DISPATCH();
        }
    }
    bool pushed = call_method(recv, name, &R[A], B, kwnames);
    if (WEFT_UNLIKELY(is_place && place_module_ != nullptr)) place_done();
    if (pushed) {
        LOAD_FRAME();
    }
    DISPATCH();
}
op_Return: {
    // Safepoint: cancellation and time-slice preemption reach recursion as they reach loops.
    SAFEPOINT(false);
    if (WEFT_UNLIKELY(!pending_.empty()) && top_owns_records()) {
        // Deferred calls of this activation not reached by the result are awaited first.
        SAVE_PC();
        settle_activation(*this, frames_.size(), R[A]);
    }
    if (WEFT_LIKELY(frame->exit == FrameExit::Normal)) {
        // The result goes straight to the call's register, which holds the callee: its count
        // drops there, so the register count is read first (the callee may be freed).
        Value* base = frame->base;
        int n = frame->proto->chunk->nregs;
        base[-1] = std::move(R[A]);
        for (Value* r = base; n > 0; --n, ++r) r->clear();
        frames_.pop_back();
        LOAD_FRAME();
        FAST_DISPATCH();
    }
    Value result = std::move(R[A]);
    FrameExit exit = frame->exit;
    Value* base = frame->base;
    pop_frame();
    if (exit == FrameExit::Boundary) return result;
    record_frame_done(base, std::move(result), Value());
    LOAD_FRAME();
    DISPATCH();
}
op_ReturnNone: {
    SAFEPOINT(false);  // as in op_Return
    if (WEFT_UNLIKELY(!pending_.empty()) && top_owns_records()) {
        SAVE_PC();
        settle_activation(*this, frames_.size(), Value());
    }
    FrameExit exit = frame->exit;
    Value* base = frame->base;
    pop_frame();
    if (WEFT_UNLIKELY(exit != FrameExit::Normal)) {
        if (exit == FrameExit::Boundary) return Value();
        record_frame_done(base, Value(), Value());
        LOAD_FRAME();
        DISPATCH();
    }
    base[-1] = Value();
    LOAD_FRAME();
    FAST_DISPATCH();
}
op_Closure: {
    int first = int(*pc++);
    SAVE_PC();
    R[A] = make_closure(frame->proto, frame->fn, R, BX, first);
    DISPATCH();
}
op_StructDef: {
    int first = int(*pc++);
    SAVE_PC();
    R[A] = make_struct_type(frame->proto, R, BX, first);
    DISPATCH();
}
op_GetIter: {
    SAVE_PC();
    RUN_RECORD(R[B], 1)
    Value hb;
    R[A] = iter_begin(value_of(R[B], hb));
    DISPATCH();
}
op_ForIter: {
    IteratorObj* it = R[A].as<IteratorObj>();
    if (it->kind == IterKind::List) {
        auto& items = it->source.as<ListObj>()->items;
        if (it->pos < int64_t(items.size())) {
            R[A + 1] = items[it->pos++];
            FAST_DISPATCH();
        }
        pc += SBX;
        FAST_DISPATCH();
    }
    SAVE_PC();
    if (!iter_next(*this, it, R[A + 1])) pc += SBX;
    FAST_DISPATCH();
}
op_ForPrep: {
    SAVE_PC();
    force(R[A]);
    force(R[A + 1]);
    force(R[A + 2]);
    for (int j = 0; j < 3; ++j) {
        if (!R[A + j].is_int()) {
            if (R[A + j].is_bool()) {
                R[A + j] = Value::integer(R[A + j].as_bool());
                continue;
            }
            raise(ErrorKind::TypeError, "'" + type_name(R[A + j]) + "' object cannot be interpreted as an integer");
        }
    }
    int64_t start = R[A].as_int(), stop = R[A + 1].as_int(), step = R[A + 2].as_int();
    if (step == 0) raise(ErrorKind::ValueError, "range() arg 3 must not be zero");
    if (step > 0 ? start >= stop : start <= stop) {
        pc += SBX;
    } else {
        R[A + 3].set_int(start);
    }
    FAST_DISPATCH();
}
op_ForLoop: {
    int64_t step = R[A + 2].as_int();
    int64_t next;
    if (!__builtin_add_overflow(R[A].as_int(), step, &next) &&
        (step > 0 ? next < R[A + 1].as_int() : next > R[A + 1].as_int())) {
        R[A].set_int(next);
        R[A + 3].set_int(next);
        SAFEPOINT(true);  // back-edge; before the jump, as in op_Loop
        pc += SBX;
    }
    FAST_DISPATCH();
}
op_Unpack: {
    SAVE_PC();
    RUN_RECORD(R[B], 1)
    Value hb;
    const Value& src = value_of(R[B], hb);
    int n = C;
    if (src.is(ObjType::Tuple) || src.is(ObjType::List)) {
        const auto& items = src.is(ObjType::Tuple) ? src.as<TupleObj>()->items : src.as<ListObj>()->items;
        if (int(items.size()) != n) {
            if (int(items.size()) < n)
                raise(ErrorKind::ValueError, "not enough values to unpack (expected " + std::to_string(n) + ", got " +
                                                 std::to_string(items.size()) + ")");
            raise(ErrorKind::ValueError, "too many values to unpack (expected " + std::to_string(n) + ")");
        }
        Value keep = src;
        for (int j = 0; j < n; ++j) R[A + j] = keep.is(ObjType::Tuple) ? keep.as<TupleObj>()->items[j] : keep.as<ListObj>()->items[j];
        DISPATCH();
    }
    std::vector<Value> items = collect(*this, src);
    if (int(items.size()) != n) {
        if (int(items.size()) < n)
            raise(ErrorKind::ValueError, "not enough values to unpack (expected " + std::to_string(n) + ", got " +
                                             std::to_string(items.size()) + ")");
        raise(ErrorKind::ValueError, "too many values to unpack (expected " + std::to_string(n) + ")");
    }
    for (int j = 0; j < n; ++j) R[A + j] = std::move(items[j]);
    DISPATCH();
}
op_UnpackEx: {
    int star = int(*pc++);
    SAVE_PC();
    RUN_RECORD(R[B], 2)
    Value hb;
    int n = C;
    std::vector<Value> items = collect(*this, value_of(R[B], hb));
    int fixed = n - 1;
    if (int(items.size()) < fixed)
        raise(ErrorKind::ValueError, "not enough values to unpack (expected at least " + std::to_string(fixed) +
                                         ", got " + std::to_string(items.size()) + ")");
    int after = n - 1 - star;
    int rest_n = int(items.size()) - fixed;
    for (int j = 0; j < star; ++j) R[A + j] = items[j];
    std::vector<Value> rest(items.begin() + star, items.begin() + star + rest_n);
    R[A + star] = make_list(std::move(rest));
    for (int j = 0; j < after; ++j) R[A + star + 1 + j] = items[star + rest_n + j];
    DISPATCH();
}
op_Raise:
op_RaiseFrom: {
    SAVE_PC();
    force(R[A]);
    Value e = R[A];
    if (e.is(ObjType::StructType) && e.as<StructTypeObj>()->is_error) {
        e = construct_struct(e.as<StructTypeObj>(), {}, {});
    }
    if (!e.is(ObjType::Struct) || !e.as<StructObj>()->error)
        raise(ErrorKind::TypeError, "exceptions must be error values, not '" + type_name(e) + "'");
    // A fresh raise records where it happened (an error value raised again keeps its first trace).
    throw WeftError(e);
}
op_Reraise: {
    SAVE_PC();
    throw WeftError(R[A]);
}
op_ExcMatch: {
    SAVE_PC();
    const Value& e = R[B];
    StructTypeObj* et = e.as<StructObj>()->type;
    bool m;
    if (C == 255) {
        // A bare except catches the Error family only: Cancelled, SystemExit (and any other
        // kind standing apart) are caught only by naming them.
        m = et->is_subtype_of(vm_.error_type(ErrorKind::Error));
    } else {
        const Value& t = R[C];
        auto match_one = [&](const Value& ty) -> bool {
            if (ty.is(ObjType::StructType)) return et->is_subtype_of(ty.as<StructTypeObj>());
            raise(ErrorKind::TypeError, "catching '" + type_name(ty) + "' is not allowed: except needs error types");
        };
        if (t.is(ObjType::Tuple)) {
            m = false;
            for (auto& ty : t.as<TupleObj>()->items) m = m || match_one(ty);
        } else {
            m = match_one(t);
        }
    }
    R[A] = Value::boolean(m);
    DISPATCH();
}
op_Format:
op_FormatX: {
    int conv = get_op(i) == Op::FormatX ? int(*pc++) : 0;
    SAVE_PC();
    RUN_RECORD(R[B], get_op(i) == Op::FormatX ? 2 : 1)
    Value hb;
    const Value& v = value_of(R[B], hb);
    if (conv == 0 && C == 255) {
        R[A] = v.is(ObjType::Str) ? v : make_str(to_str(v));
        DISPATCH();
    }
    Value src = v;
    if (conv == 'r' || conv == 'a')
        src = make_str(repr(v));
    else if (conv == 's')
        src = make_str(to_str(v));
    if (C == 255) {
        R[A] = src.is(ObjType::Str) ? src : make_str(to_str(src));
    } else {
        const Value& spec = R[C];
        R[A] = make_str(format_spec(src, spec.is(ObjType::Str) ? std::string_view(spec.as<StrObj>()->data) : ""));
    }
    DISPATCH();
}
op_Concat: {
    std::string out;
    for (int j = 0; j < C; ++j) {
        const Value& v = R[B + j];
        if (v.is(ObjType::Str))
            out += v.as<StrObj>()->data;
        else
            append_str(out, v);
    }
    R[A] = make_str(std::move(out));
    DISPATCH();
}
op_Import: {
    SAVE_PC();
    ModuleObj* m = vm_.import_module(*this, K[BX].as<StrObj>()->data, frame->fn->module);
    R[A] = Value::borrow(m);
    LOAD_FRAME();
    DISPATCH();
}
op_ImportFrom: {
    SAVE_PC();
    ModuleObj* m = R[B].as<ModuleObj>();
    const std::string& n = K[C].as<StrObj>()->data;
    Value found;
    const Value* v = m->find(n, found) ? &found : nullptr;
    if (!v) raise(ErrorKind::NameError, "cannot import name '" + n + "' from '" + m->name + "'");
    R[A] = *v;
    DISPATCH();
}
op_LoadType:
    R[A] = frame->fn->types[B];
    FAST_DISPATCH();
op_TypeCheck: {
    int name_k = int(*pc++);
    if (WEFT_UNLIKELY(R[A].is(ObjType::Promise))) {
        SAVE_PC();
        force(R[A]);
    }
    if (!value_matches_type(R[A], R[B])) {
        SAVE_PC();
        check_type(R[A], R[B], CheckKind(C), K[name_k].as<StrObj>()->data);
    }
    FAST_DISPATCH();
}
op_IsSeq: {
    if (R[B].is(ObjType::Promise)) {
        SAVE_PC();
        RUN_RECORD(R[B], 1)
        force(R[B]);
    }
    const Value& v = R[B];
    bool ok = false;
    if (v.is(ObjType::List) || v.is(ObjType::Tuple)) {
        size_t n = v.is(ObjType::List) ? v.as<ListObj>()->items.size() : v.as<TupleObj>()->items.size();
        ok = (C & 128) ? n >= size_t(C & 127) : n == size_t(C);
    }
    R[A] = Value::boolean(ok);
    FAST_DISPATCH();
}
op_IsMap:
    SAVE_PC();
    RUN_RECORD(R[B], 1)
    force(R[B]);
    R[A] = Value::boolean(R[B].is(ObjType::Dict));
    FAST_DISPATCH();
op_HasKey: {
    SAVE_PC();
    RUN_RECORD(R[B], 1)
    force(R[B]);
    const Value& o = R[B];
    bool has = false;
    if (o.is(ObjType::Dict)) {
        has = o.as<DictObj>()->table.find(R[C]) >= 0;
    } else if (o.is(ObjType::Struct) && R[C].is(ObjType::Str)) {
        has = o.as<StructObj>()->type->field_index(R[C].as<StrObj>()->data) >= 0;
        if (!has && o.as<StructObj>()->error) {
            const auto& n = R[C].as<StrObj>()->data;
            has = n == "message" || n == "kind" || n == "trace";
        }
    }
    R[A] = Value::boolean(has);
    DISPATCH();
}
op_IsInstance:
    SAVE_PC();
    RUN_RECORD(R[B], 1)
    force(R[B]);
    R[A] = Value::boolean(is_instance(R[B], R[C]));
    FAST_DISPATCH();
op_Len: {
    SAVE_PC();
    RUN_RECORD(R[B], 1)
    Value hb;
    R[A] = Value::integer(length(value_of(R[B], hb)));
    DISPATCH();
}
op_FieldAt: {
    SAVE_PC();
    RUN_RECORD(R[B], 1)
    force(R[B]);
    const Value& o = R[B];
    if (o.is(ObjType::Struct)) {
        auto* s = o.as<StructObj>();
        if (size_t(C) >= s->fields.size()) {
            SAVE_PC();
            raise(ErrorKind::TypeError, s->type->name + "() accepts " + std::to_string(s->fields.size()) +
                                            " positional sub-patterns (" + std::to_string(C + 1) + " given)");
        }
        R[A] = s->fields[C];
    } else if (C == 0) {
        R[A] = o;
    } else {
        SAVE_PC();
        raise(ErrorKind::TypeError, type_name(o) + "() accepts 1 positional sub-pattern");
    }
    DISPATCH();
}
op_SpawnCall: {
    SAVE_PC();
    force(R[A]);
    if (C != 0) {
        std::vector<Value> pos(std::make_move_iterator(&R[A + 1]), std::make_move_iterator(&R[A + 1 + B]));
        if (C == 2) {  // a statement: no handle
            spawn_detached(*this, R[A], std::move(pos));
            R[A] = Value();
        } else {
            R[A] = spawn_task(*this, R[A], std::move(pos), {}, {});
        }
        DISPATCH();
    }
    std::vector<Value> pos = collect(*this, R[A + 1]);
    std::vector<std::string> names;
    std::vector<Value> values;
    if (R[A + 2].is(ObjType::Dict)) {
        DictObj* d = R[A + 2].as<DictObj>();
        for (size_t j = 0; j < d->table.end_index(); ++j) {
            auto& e = d->table.entry(j);
            if (!e.live) continue;
            names.push_back(to_str(e.key));
            values.push_back(e.value);
        }
    }
    R[A + 1] = Value();
    R[A + 2] = Value();
    R[A] = spawn_task(*this, R[A], std::move(pos), std::move(names), std::move(values));
    DISPATCH();
}
op_MakeLazy:
    R[A] = make_lazy(R[A], caps_);
    DISPATCH();
op_ScopeEnter:
    SAVE_PC();
    R[A] = scope_enter(truthy(R[B]));
    DISPATCH();
op_ScopeExit:
    SAVE_PC();
    scope_exit(*this, R[A]);
    R[A] = Value();
    DISPATCH();
op_ScopeAbort:
    SAVE_PC();
    scope_abort(R[A], R[B]);
    R[A] = Value();
    DISPATCH();
op_RecordMark:
    R[A] = Value::integer(int64_t(record_seq_));
    DISPATCH();
op_RecordSettle:
    if (R[A].is_int() && WEFT_UNLIKELY(!pending_.empty())) {
        SAVE_PC();
        if (B)
            abandon_since(*this, uint64_t(R[A].as_int()));
        else
            settle_since(*this, uint64_t(R[A].as_int()));
    }
    DISPATCH();
op_Nop:
    FAST_DISPATCH();

#undef A
#undef B
#undef C
#undef BX
#undef SBX
#undef RUN_RECORD
#undef DISPATCH
#undef FAST_DISPATCH
#undef SAVE_PC
#undef LOAD_FRAME
}

}  // namespace weft
