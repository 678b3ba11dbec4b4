// actors.h — actors and agents (spec section 10) on the VM: `X.spawn(...)`, ActorRef (tell,
// ask, handler-method calls, stop, alive, len), `self.ref` / `self.stop()`, monitor, link,
// whereis, agent state/suspend/resume, and the end-of-program shutdown.
//
// An actor is an ActorCore: its state (a struct value only its handlers touch), an
// rt::Mailbox of envelopes, its capabilities and its watchers. It has no task while idle; the
// mailbox starts one (a child of the program's root nursery, not of the sender's scope:
// actors are not owned by scopes) when a message arrives to an idle actor, and that task runs
// handlers one message at a time on a pooled interpreter. Supervision and the event bus are
// written in Weft on top of these primitives (vm/actors_lib.cpp), as OTP's supervisor is
// written in Erlang. The design and its invariants are in docs/actors.md.
#pragma once

#include <string>
#include <vector>

#include "vm/native.h"

namespace weft {

class Vm;
class Interp;
namespace rt {
class Task;
}
struct StructTypeObj;
struct StructObj;

// `X.spawn` for an actor or agent type `t` (a bound native; Interp::get_attr calls it).
Value actor_spawn_attr(const Value& type);
// `self.ref` / `self.stop` inside a handler (`s` is the actor's state). False for other names.
bool actor_state_attr(Interp& in, StructObj* s, std::string_view name, Value& out);
// Registers whereis, monitor, link, supervise, child, event_bus and the internal helpers.
void register_actor_builtins(Vm& vm);

// The program's actor system, one per Vm.
class ActorSystem;
// Called at the start of every root task (Vm::in_runtime): actor tasks started from now on are
// children of this root's implicit nursery.
void actors_begin_root(Vm& vm);
// Called when the main module has finished (normally or not): stops the live actors in reverse
// spawn order, each within its handler's end, and then raises the first failure of an actor
// that nobody watched (no supervisor, monitor or link) when `raise_failures`.
void actors_shutdown(Vm& vm, bool raise_failures);
// Counters for --stats (summed over the program's actors).
struct ActorStats {
    uint64_t spawned = 0, messages = 0, dead_letters = 0, dropped = 0, restarts = 0;
    size_t peak_mailbox = 0;
};
ActorStats actor_stats(Vm& vm);
void destroy_actor_system(ActorSystem* s);
// What the Deadlock report adds for a task that is an actor's: "actor Counter#3 handling
// 'increment'", or "" for other tasks. Any thread.
std::string actor_task_note(Vm& vm, const rt::Task* t);
// tasks(): one dict per live actor (id, kind, state, handling, mailbox, handled, dead_letters,
// peak_mailbox) after the tasks' own entries.
void append_actor_snapshots(Vm& vm, std::vector<Value>& out);
// supervise, child, event_bus (vm/actors_lib.cpp).
void register_actor_lib_builtins(Vm& vm);

}  // namespace weft
