// actors_lib.cpp — supervision (`supervise`, `child`) and the event bus (`event_bus`), written
// in Weft over the actor primitives of vm/actors.cpp, as OTP's supervisor is written in Erlang.
//
// Why in Weft: a supervisor is an actor whose handlers decide restarts; the decisions (restart
// types, strategies, intensity within a period, backoff, shutdown then kill) are policy, read
// most easily as code in the language they govern, and they are not on any hot path. The C++
// side gives them what the language cannot: stable references that follow restarts (`__slot`,
// `__slot_set`), being told when a child stops (`__watch` -> `_child_down`), and stopping with
// a deadline then killing (`__stop_within`). The module is compiled on first use.
#include <string>

#include "vm/actors.h"
#include "vm/interp.h"

namespace weft {

namespace {

const char* kActorsLib = R"weft(
# The runtime's supervision and event bus (vm/actors_lib.cpp). Names starting with "_" are
# internal.
import sys

struct _ChildSpec:
    start: any
    id: str
    args: dict
    restart: str
    shutdown: any

def child(start, id, args={}, restart="permanent", shutdown="default"):
    if not isinstance(id, str):
        raise TypeError("child() id must be a str, not " + __type_name(id))
    if restart not in ["permanent", "transient", "temporary"]:
        raise ValueError("child() restart must be \"permanent\", \"transient\" or \"temporary\", not " + repr(restart))
    if not isinstance(args, dict):
        raise TypeError("child() args must be a dict of the child's fields or keyword arguments")
    if not __is_actor_type(start) and not __is_callable(start):
        raise TypeError("child() start must be an actor class or a function returning an ActorRef or a Supervisor")
    if shutdown != "default" and shutdown is not None and not (isinstance(shutdown, int) or isinstance(shutdown, float)):
        raise TypeError("child() shutdown must be seconds or None (wait)")
    return _ChildSpec(start=start, id=id, args=args, restart=restart, shutdown=shutdown)

def _start_one(spec):
    if __is_actor_type(spec.start):
        return spec.start.spawn(**spec.args)
    r = spec.start(**spec.args)
    if not __is_ref(r):
        raise TypeError("child '" + spec.id + "': its start function returned " + __type_name(r) + ", not an ActorRef or a Supervisor")
    return r

actor Supervisor:
    specs: list = []
    strategy: str = "one_for_one"
    intensity: int = 3
    period: float = 5.0
    backoff: float = 0.0
    children: dict = {}
    slots: dict = {}
    restarts: list = []
    recent: dict = {}
    stopping: bool = False

    def _start_all(self):
        for spec in self.specs:
            s = __slot()
            self.slots[spec.id] = s
            self.children[spec.id] = None
            self.recent[spec.id] = []
        started = []
        for spec in self.specs:
            try:
                self._start(spec)
                started.append(spec)
            except Error as e:
                for k in range(len(started) - 1, -1, -1):
                    self._stop_child(started[k])
                for spec2 in self.specs:
                    __slot_set(self.slots[spec2.id][0], None, True)
                self.stopping = True
                self.stop()
                return e
        return None

    def _start(self, spec):
        r = _start_one(spec)
        __watch(r, self.ref, spec.id)  # uses r: a failed start raises here, before r is kept
        self.children[spec.id] = r
        __slot_set(self.slots[spec.id][0], r)
        return r

    def _shutdown_of(self, spec, r):
        # The default: wait for a supervisor child, 5 s for an actor.
        if spec.shutdown == "default":
            return None if __is_supervisor(r) else 5.0
        return spec.shutdown

    def _stop_child(self, spec):
        r = self.children[spec.id]
        self.children[spec.id] = None
        if r is not None:
            __slot_set(self.slots[spec.id][0], None)
            __stop_within(r, self._shutdown_of(spec, r))

    def child_ref(self, id):
        if id not in self.slots:
            raise KeyError(id)
        return self.slots[id][1]

    def _child_down(self, id, reason, inst):
        if self.stopping or __shutting_down():
            return
        cur = self.children.get(id)
        if cur is None or cur != inst:
            return
        spec = None
        idx = 0
        for i in range(len(self.specs)):
            if self.specs[i].id == id:
                spec = self.specs[i]
                idx = i
        self.children[id] = None
        failed = reason is not None
        if spec.restart == "temporary" or (spec.restart == "transient" and not failed):
            __slot_set(self.slots[id][0], None, True)
            return
        __slot_set(self.slots[id][0], None)
        last = reason
        while True:
            t = monotonic()
            self.restarts = [x for x in self.restarts if t - x < self.period] + [t]
            if len(self.restarts) > self.intensity:
                self._give_up(id, last)
            __count_restart()
            recent = [x for x in self.recent[id] if t - x < self.period] + [t]
            self.recent[id] = recent
            if self.backoff > 0:
                sleep(min(self.backoff * (2 ** (len(recent) - 1)), 30.0))
            try:
                self._restart(idx)
                return
            except Error as e:
                last = e

    def _restart(self, idx):
        if self.strategy == "one_for_one":
            self._start(self.specs[idx])
            return
        first = 0 if self.strategy == "one_for_all" else idx
        others = [k for k in range(first, len(self.specs)) if k != idx]
        for k in range(len(others) - 1, -1, -1):
            self._stop_child(self.specs[others[k]])
        for k in range(first, len(self.specs)):
            spec = self.specs[k]
            if k != idx and spec.restart == "temporary":
                __slot_set(self.slots[spec.id][0], None, True)
                continue
            if self.children[spec.id] is None:
                self._start(spec)

    def _stop_all(self):
        # Children in reverse start order; no instance will come for any of them.
        self.stopping = True
        for k in range(len(self.specs) - 1, -1, -1):
            self._stop_child(self.specs[k])
        for spec in self.specs:
            if spec.id in self.slots:
                __slot_set(self.slots[spec.id][0], None, True)

    def _give_up(self, id, reason):
        self._stop_all()
        raise Error("supervisor gave up: child '" + id + "' failed more than " + str(self.intensity) + " times in " + str(self.period) + " s; last error: " + __type_name(reason) + ": " + str(reason))

    def on_error(self, err, msg):
        # A bad id in sup.ref(id) is the asker's error, not the supervisor's.
        if msg["method"] != "child_ref":
            raise err

    def on_stop(self, reason):
        self._stop_all()

def supervise(children, strategy="one_for_one", intensity=3, period=5.0, backoff=0):
    if strategy not in ["one_for_one", "one_for_all", "rest_for_one"]:
        raise ValueError("supervise() strategy must be \"one_for_one\", \"one_for_all\" or \"rest_for_one\", not " + repr(strategy))
    if not isinstance(intensity, int) or intensity < 0:
        raise ValueError("supervise() intensity must be an int >= 0")
    if not (isinstance(period, int) or isinstance(period, float)) or period <= 0:
        raise ValueError("supervise() period must be seconds > 0")
    if not (isinstance(backoff, int) or isinstance(backoff, float)) or backoff < 0:
        raise ValueError("supervise() backoff must be seconds >= 0")
    ids = []
    for c in children:
        if not isinstance(c, _ChildSpec):
            raise TypeError("supervise() takes a list of child(...) specs, not " + __type_name(c))
        if c.id in ids:
            raise ValueError("supervise(): two children have the id '" + c.id + "'")
        ids.append(c.id)
    sup = Supervisor.spawn(specs=list(children), strategy=strategy, intensity=intensity, period=float(period), backoff=float(backoff))
    err = sup._start_all()
    if err is not None:
        raise err
    return sup

actor EventBus:
    topics: dict = {}

    def subscribe(self, topic, target, method="on_event"):
        subs = self.topics.get(topic, [])
        subs.append((target, method))
        self.topics[topic] = subs

    def unsubscribe(self, topic, target):
        subs = self.topics.get(topic, [])
        self.topics[topic] = [s for s in subs if s[0] != target]

    def publish(self, topic, event):
        subs = self.topics.get(topic, [])
        keep = []
        for s in subs:
            target = s[0]
            if __is_ref(target):
                if not target.alive:
                    continue
                target.tell(s[1], event)
            else:
                try:
                    target(event)
                except Error as e:
                    print("event_bus: a subscriber of '" + str(topic) + "' failed: " + __type_name(e) + ": " + str(e), file=sys.stderr)
            keep.append(s)
        self.topics[topic] = keep

def event_bus():
    return EventBus.spawn()
)weft";

ModuleObj* lib(Interp& in) { return in.vm().internal_module(in, "__actors__", kActorsLib); }

// supervise / child / event_bus: call the Weft function of the same name in the library.
Value forward(CallContext& cx, const CallArgs& a, const char* name) {
    Interp& in = static_cast<Interp&>(cx);
    ModuleObj* m = lib(in);
    Value fn;
    m->find(name, fn);
    return in.call_kw(fn, a.pos, a.kw);
}
Value bi_supervise(CallContext& cx, const CallArgs& a) { return forward(cx, a, "supervise"); }
Value bi_child(CallContext& cx, const CallArgs& a) { return forward(cx, a, "child"); }
Value bi_event_bus(CallContext& cx, const CallArgs& a) { return forward(cx, a, "event_bus"); }

}  // namespace

void register_actor_lib_builtins(Vm& vm) {
    auto native = [&](const char* name, NativeFn fn, const char* kwargs) {
        auto* n = new NativeObj(name, fn);
        n->kwargs = kwargs;
        vm.add_builtin(name, Value::adopt(n));
    };
    native("supervise", bi_supervise, "strategy intensity period backoff");
    native("child", bi_child, "id args restart shutdown");
    native("event_bus", bi_event_bus, nullptr);
}

}  // namespace weft
