// share.cpp — marking values that become visible to several worker threads.
//
// Reference counts are plain integers until an object can be seen by another
// thread; from then on they are atomic (value.h). The switch is the kShared flag,
// and share() sets it on everything reachable from a value at the points where a
// value crosses from one task to another: task arguments and callees at spawn,
// task results and errors, channel sends, atom stores and module globals stored
// while tasks run.
//
// Invariant: a shared object only points to shared (or immortal) objects, so
// the walk stops at the first shared object and every object is walked at most
// once — sharing a big list twice costs nothing the second time. The invariant
// is kept by copy-on-write: a shared container is only mutated in place when the
// mutating holder is its only holder (rc == 1), and that holder turns the flag
// off first (obj_localize), because no other thread can see it any more.
//
// With one worker thread nothing crosses threads, so share() returns at once
// (Vm sets g_multi_worker from --workers).
#include <functional>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "vm/collections.h"
#include "vm/function.h"
#include "vm/native.h"
#include "vm/pending.h"
#include "vm/tasks.h"

namespace weft {

std::atomic<bool> g_multi_worker{false};

namespace {

// Walks the graph below a value. `Enter` decides whether an object is walked (and marks it):
// the share walk stops at shared objects; other walks keep their own visited set.
template <class Enter>
struct Walker {
    std::vector<Obj*> stack;
    Enter enter;
    bool sharing = false;  // the share() walk: records of deferred calls become tasks first

    void push_obj(Obj* o) {
        if (!o || !enter(o)) return;
        stack.push_back(o);
    }
    void run() {
        while (!stack.empty()) {
            Obj* o = stack.back();
            stack.pop_back();
            children(o);
        }
    }
    void push(const Value& v) {
        if (v.is_obj()) push_obj(v.as_obj());
    }
    void push_all(const std::vector<Value>& vs) {
        for (auto& v : vs) push(v);
    }
    void push_table(const OrderedTable& t) {
        for (size_t i = 0; i < t.end_index(); ++i) {
            const HashEntry& e = t.entry(i);
            if (!e.live) continue;
            push(e.key);
            push(e.value);
        }
    }

    void children(Obj* o) {
        switch (o->type) {
            case ObjType::List: push_all(static_cast<ListObj*>(o)->items); break;
            case ObjType::Tuple: push_all(static_cast<TupleObj*>(o)->items); break;
            case ObjType::Dict: push_table(static_cast<DictObj*>(o)->table); break;
            case ObjType::Set: push_table(static_cast<SetObj*>(o)->table); break;
            case ObjType::Slice: {
                auto* s = static_cast<SliceObj*>(o);
                push(s->lower);
                push(s->upper);
                push(s->step);
                break;
            }
            case ObjType::Iterator: {
                auto* it = static_cast<IteratorObj*>(o);
                push(it->source);
                push(it->func);
                break;
            }
            case ObjType::Function: {
                auto* f = static_cast<FunctionObj*>(o);
                push_all(f->captures);
                push_all(f->defaults);
                push_all(f->types);
                break;
            }
            case ObjType::Native: push(static_cast<NativeObj*>(o)->self); break;
            case ObjType::BoundMethod: {
                auto* b = static_cast<BoundMethodObj*>(o);
                push(b->self);
                push(b->func);
                break;
            }
            case ObjType::StructType: {
                auto* t = static_cast<StructTypeObj*>(o);
                for (auto& f : t->fields) {
                    push(f.annotation);
                    push(f.default_value);
                }
                push_obj(t->methods);
                push_obj(t->base);
                for (auto& m : t->method_cache) push(m.second);
                break;
            }
            case ObjType::Struct: {
                auto* s = static_cast<StructObj*>(o);
                push_obj(s->type);
                push_all(s->fields);
                if (s->error) {
                    push_all(s->error->errors);
                    push(s->error->results);
                }
                break;
            }
            case ObjType::Promise: {
                auto* p = static_cast<PromiseObj*>(o);
                // A deferred call kept as a record is about to be seen by another task: it
                // becomes a task now (its callee and arguments are shared by the spawn).
                if (sharing && p->kind == PromiseObj::Kind::Pending) start_pending(p);
                std::lock_guard<rt::SpinLock> g(p->lock);
                push(p->thunk);
                push(p->value);
                push(p->error);
                if (p->kind == PromiseObj::Kind::Pending) {
                    for (auto& a : p->call.args()) push(a);
                    if (p->call.extra) push_all(p->call.extra->kw_values);
                }
                break;
            }
            case ObjType::Opaque: {
                auto* h = static_cast<OpaqueObj*>(o);
                if (h->cls->share_children) h->cls->share_children(h);
                break;
            }
            default: break;  // Str, Bytes, Range, TypeObj, Module: no children (or immortal)
        }
    }
};

struct ShareEnter {
    bool operator()(Obj* o) const {
        if (o->flags != 0) return false;  // already shared, or immortal
        o->flags |= Obj::kShared;
        return true;
    }
};

struct VisitEnter {
    std::unordered_set<const Obj*> seen;
    bool operator()(Obj* o) { return seen.insert(o).second; }
};

}  // namespace

void share(const Value& v) {
    if (!g_multi_worker.load(std::memory_order_relaxed)) return;
    if (!v.is_obj() || v.as_obj()->flags != 0) return;
    Walker<ShareEnter> w;
    w.sharing = true;
    w.push(v);
    w.run();
}

void find_promises(const Value& root, const std::function<bool(PromiseObj*)>& found) {
    if (!root.is_obj()) return;
    Walker<VisitEnter> w;
    w.push(root);
    while (!w.stack.empty()) {
        Obj* o = w.stack.back();
        w.stack.pop_back();
        if (o->type == ObjType::Promise && !found(static_cast<PromiseObj*>(o))) return;
        w.children(o);
    }
}

void pin(const Value& v) {
    if (!v.is(ObjType::Function) && !v.is(ObjType::StructType)) return;
    Obj* o = v.as_obj();
    if (o->flags & Obj::kImmortal) return;
    share(v);  // its children may still be counted, atomically once several threads see them
    o->flags |= Obj::kImmortal;
    // Kept reachable to the end of the process, so leak checkers do not report it.
    static std::mutex mu;
    static auto* pinned = new std::vector<Obj*>;
    std::lock_guard<std::mutex> g(mu);
    pinned->push_back(o);
}

void share_all(const std::vector<Value>& vs) {
    for (auto& v : vs) share(v);
}

}  // namespace weft
