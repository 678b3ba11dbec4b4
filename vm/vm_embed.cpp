// vm_embed.cpp — the Vm's side of the embedding API (embed/, include/weft/weft.hpp).
//
// The command line runs one program: one root task, on the main interpreter (Vm::in_runtime).
// An embedding host calls into a Vm from several threads at once — run this code, call that
// function, evaluate an expression — so each host call here is a root task of its own, with its
// own interpreter from the pool, its own TaskContext, the capabilities the host gives the call,
// and a cancel scope the host can cancel from any thread (interrupt, timeout). The call's tasks
// live in its implicit nursery inside that scope, so cancelling the scope reaches all of them
// and the call ends only when they have (structured concurrency).
//
// Errors never escape as C++ exceptions: a RootResult carries the error value (with its trace),
// or the CompileError of exec/eval, for embed/ to turn into the host's exceptions.
#include <climits>

#include "compiler/diagnostic.h"
#include "vm/collections.h"
#include "vm/interp.h"
#include "vm/pending.h"
#include "vm/task_context.h"
#include "vm/tasks.h"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"

namespace weft {

namespace {

constexpr size_t kEmbedMainSlots = 4096;

// A result handed to the host with the promises inside its containers (lists, tuples, dicts,
// struct fields) forced: a host thread has no task to wait on them with. `changed` tells the
// caller to rebuild its own container; unchanged values are returned as they are (no copy).
Value force_deep(Interp& in, const Value& v, int depth, bool& changed) {
    Value x = v;
    if (x.is(ObjType::Promise)) {
        in.force(x);
        changed = true;
    }
    if (depth >= kMaxValueNesting || !x.is_obj()) return x;
    auto items = [&](const std::vector<Value>& src, bool& any) {
        std::vector<Value> out;
        out.reserve(src.size());
        for (auto& item : src) out.push_back(force_deep(in, item, depth + 1, any));
        return out;
    };
    bool any = false;
    if (x.is(ObjType::List)) {
        auto out = items(x.as<ListObj>()->items, any);
        if (any) x = make_list(std::move(out));
    } else if (x.is(ObjType::Tuple)) {
        auto out = items(x.as<TupleObj>()->items, any);
        if (any) x = make_tuple(std::move(out));
    } else if (x.is(ObjType::Dict)) {
        auto& t = x.as<DictObj>()->table;
        std::vector<std::pair<Value, Value>> kv;
        for (size_t i = 0; i < t.end_index(); ++i)
            if (t.entry(i).live) kv.emplace_back(t.entry(i).key, force_deep(in, t.entry(i).value, depth + 1, any));
        if (any) {
            Value d = make_dict();
            for (auto& [k, val] : kv) set_item(d, k, val);
            x = d;
        }
    } else if (x.is(ObjType::Struct) && !x.as<StructObj>()->error) {
        auto out = items(x.as<StructObj>()->fields, any);
        if (any) {
            struct_unshare(x)->fields = std::move(out);
        }
    }
    if (any) changed = true;
    return x;
}

// The body of an embedded root task: sets up the task's interpreter and scopes, runs the call,
// and turns whatever it raised into a RootResult.
Vm::RootResult run_root_body(Vm& vm, const Vm::RootBody& body,
                             const std::shared_ptr<const CapabilitySet>& caps,
                             std::int64_t deadline_ns, const Vm::ScopeHook& hook, CallBudget* budget) {
    Vm::RootResult r;
    Interp* in = vm.acquire_interp();
    TaskContext ctx;
    ctx.interp = in;
    ctx.budget = budget;
    rt::Task* task = rt::current_task();
    task->set_user_data(&ctx);
    in->bind_task(Interp::TaskBinding{rt::current_stack_low(), 0});
    in->set_capabilities(caps);
    if (budget) in->narrow_depth(budget->max_depth);
    size_t records = in->pending().size();
    {
        rt::CancelScopeOptions o;
        o.deadline_ns = deadline_ns;
        rt::CancelScope cs(o);
        if (hook) hook(&cs);
        try {
            r.value = run_in_implicit_scope([&] {
                Value v = body(*in);
                bool changed = false;
                v = force_deep(*in, v, 0, changed);  // the host gets settled values, never promises
                run_leftover_records(*in, records);
                return v;
            });
        } catch (CompileError&) {
            r.ok = false;
            r.compile_error = std::current_exception();
        } catch (WeftError& e) {
            r.ok = false;
            r.value = in->error_value(e);
        } catch (...) {
            r.ok = false;
            r.value = in->runtime_error_value(std::current_exception());
        }
        r.scope_cancelled = cs.cancel_called();
        if (hook) hook(nullptr);
    }
    share(r.value);  // handed to a host thread
    auto& list = in->pending();
    if (list.size() > records) list.resize(records);
    task->set_user_data(nullptr);
    vm.release_interp(in);
    return r;
}

}  // namespace

rt::Runtime& Vm::runtime() {
    // No empty root task to start it (a round trip through a worker was most of an Engine's
    // creation time): the first root is the first call or the program, as on the command line.
    start_runtime();
    return *runtime_;
}

Vm::RootResult Vm::run_root(const RootBody& body, std::shared_ptr<const CapabilitySet> caps,
                            std::int64_t deadline_ns, const ScopeHook& hook, const std::string& name,
                            CallBudget* budget) {
    VmScope scope(this);
    rt::Runtime& rt = runtime();
    if (!caps) caps = program_capabilities();
    try {
        // On the calling thread until the call first parks: a call that does not wait costs
        // no hand-off to a worker and back (Runtime::block_on_here).
        return rt.block_on_here([&] { return run_root_body(*this, body, caps, deadline_ns, hook, budget); },
                                name);
    } catch (...) {
        // Raised by the runtime around the body (a Deadlock delivered to the root).
        RootResult r;
        r.ok = false;
        r.value = main_->runtime_error_value(std::current_exception());
        share(r.value);
        return r;
    }
}

rt::TaskRef Vm::start_root(RootBody body, std::shared_ptr<const CapabilitySet> caps,
                           std::int64_t deadline_ns, ScopeHook hook, const std::string& name,
                           std::function<void(RootResult&)> done, CallBudget* budget) {
    rt::Runtime& rt = runtime();
    if (!caps) caps = program_capabilities();
    return rt.start_root(
        [this, body = std::move(body), caps = std::move(caps), deadline_ns, hook = std::move(hook),
         done = std::move(done), budget] {
            RootResult r = run_root_body(*this, body, caps, deadline_ns, hook, budget);
            done(r);
        },
        name);
}

ModuleObj* Vm::embed_main_module() {
    std::lock_guard<std::mutex> g(modules_mu_);
    if (!embed_main_) {
        embed_main_ = new ModuleObj();
        embed_main_->name = "__main__";
        embed_main_->path = "<embed>";
        // Room for the globals of many exec calls: a compile that adds names grows the vector
        // within its capacity, so it never moves the slots that running calls read.
        embed_main_->globals.reserve(kEmbedMainSlots);
    }
    return embed_main_;
}

GlobalLayout Vm::embed_main_layout() {
    ModuleObj* m = embed_main_module();
    std::lock_guard<std::mutex> g(embed_compile_mu_);
    return m->layout;
}

bool Vm::find_in_embed_main(const std::string& name, Value& out) {
    ModuleObj* m = embed_main_module();
    std::lock_guard<std::mutex> g(embed_compile_mu_);
    return m->find(name, out);
}

int Vm::find_in_module(const std::string& module, const std::string& name, Value& out) {
    ModuleObj* m;
    {
        std::lock_guard<std::mutex> g(modules_mu_);
        auto it = modules_.find(module);  // standard and host modules
        if (it == modules_.end()) it = modules_.find("<host>:" + module);  // load_module, module_paths
        if (it == modules_.end()) return -1;
        m = it->second;
    }
    // Its globals are written only by its own top level (spec section 4): read once it is done.
    if (!m->initialized) return 0;
    return m->find(name, out) ? 1 : 0;
}

Value Vm::run_in_main(Interp& in, const std::string& source, const std::string& name) {
    ModuleObj* m = embed_main_module();
    Proto* p;
    {
        // Compiling extends the module's layout and globals: one compile at a time.
        std::lock_guard<std::mutex> g(embed_compile_mu_);
        std::string saved = m->path;
        m->path = name;
        try {
            p = compile_into(*m, source, true);
        } catch (CompileError& e) {
            m->path = saved;
            if (e.diag.path.empty()) e.diag.path = name;
            throw;
        }
        m->path = saved;
    }
    Value echo;
    TaskContext* c = current_task_context();
    Value* saved_echo = c ? std::exchange(c->echo, &echo) : nullptr;
    struct Restore {
        TaskContext* c;
        Value* saved;
        ~Restore() {
            if (c) c->echo = saved;
        }
    } restore{c, saved_echo};
    in.run_module_chunk(m, p);
    // In a program only the module's own code reads a global that no function reads, so such a
    // value stays unshared; here every host call may read any of them (call("name")), from
    // several tasks at once: share them all (atomic counts). Read through the seqlock.
    for (size_t i = 0; i < m->layout.names.size() && i < m->globals.size(); ++i) {
        Value g;
        m->load(int(i), g);
        share(g);
    }
    return echo;
}

void Vm::add_host_module(const std::string& name, std::function<void(ModuleObj&)> init) {
    std::lock_guard<std::mutex> g(modules_mu_);
    host_modules_[name] = std::move(init);
}

}  // namespace weft
