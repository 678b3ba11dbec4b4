// The example programs of the language spec (docs: shared/spec/language.md, sections 2-10)
// must parse. Each block is copied verbatim (list-item indentation removed); the spec writes
// `…` as a placeholder body, which the parser accepts like `pass`.
#include <gtest/gtest.h>

#include <string>

#include "compiler/ast_dump.h"
#include "compiler/parser.h"

namespace weft {
namespace {

std::string parse_ok(const std::string& src) {
    try {
        return dump_module(*parse_module(src, "spec.weft"));
    } catch (const CompileError& e) {
        return "ERROR " + format_diagnostic(e.diag, src);
    }
}

struct Program {
    const char* name;
    const char* source;
};

void PrintTo(const Program& p, std::ostream* os) {
    *os << p.name;
}

class SpecProgram : public ::testing::TestWithParam<Program> {};

TEST_P(SpecProgram, Parses) {
    std::string d = parse_ok(GetParam().source);
    EXPECT_EQ(d.rfind("ERROR", 0), std::string::npos) << d;
}

const Program kPrograms[] = {
    {"Section3StructUser", R"weft(struct User:
    name: str
    age: int = 0
    def greeting(self) -> str:
        return f"hi {self.name}"
u = User(name="Ada")          # keyword or positional construction; missing fields raise TypeError
u.age = 36                    # updates u only
v = u.with(age=37)            # copy with changes
)weft"},
    {"Section5Dashboard", R"weft(def dashboard(uid):
    user = fetch_user(uid)          # all three start now, in parallel
    posts = fetch_posts(uid)
    friends = fetch_friends(uid)
    return {"user": user, "posts": posts, "n": len(friends)}   # len forces friends only
)weft"},
    {"Section6Concurrent", R"weft(concurrent:
    a = spawn fetch(u1)
    b = spawn fetch(u2)
    spawn:
        for p in pages:
            index(p)
print(a["title"], b["title"])
)weft"},
    {"Section7Channels", R"weft(ch = channel()              # unbuffered: send waits for a receiver
ch = channel(100)           # buffered: send waits only when full
ch = channel(unbounded=True)
ch.send(v)                  # raises ChannelClosed if closed
v = ch.recv()               # raises ChannelClosed when closed and drained
v = ch.recv(timeout=1s)     # raises TimeoutError
ok, v = ch.try_recv()       # never blocks; ok is False if nothing is ready
for v in ch: …              # until closed and drained
ch.close()                  # idempotent; receivers drain what is buffered
len(ch), ch.closed, ch.capacity
)weft"},
    {"Section7Select", R"weft(select:
    case msg = inbox.recv():
        handle(msg)
    case msg, ok = other.recv():       # ok is False when other is closed and drained
        …
    case out.send(result):
        …
    case after(1s):
        print("idle")
    default:                           # optional: taken if nothing is ready now
        …
)weft"},
    {"Section7Atoms", R"weft(a = atom(0, validator=lambda v: v >= 0)
a.get()                       # current value
a.swap(lambda v, n: v + n, 5) # apply a pure function atomically; retried on conflict; returns new value
a.swap_vals(f)                # returns (old, new)
a.reset(10)                   # set; returns new value
a.compare_and_set(10, 11)     # True if it was 10
a.watch("log", lambda key, old, new: print(old, new))   # called after each change
)weft"},
    {"Section8Pipelines",
     R"weft(summarize = clean | [extract_entities, classify, summary] | merge   # a function
report = summarize(doc)
report = doc | clean | [extract_entities, classify, summary] | merge # applied directly
)weft"},
    {"Section10Actor", R"weft(actor Counter:
    count: int = 0                      # private state, mutable only inside handlers
    def on_start(self): …               # optional lifecycle hooks
    def on_stop(self, reason): …
    def increment(self, n=1):           # a message handler
        self.count += n
        return self.count

c = Counter.spawn(count=10, name="counter", mailbox=1000)   # an ActorRef
n = c.increment(5)                 # ask: a deferred call, so a promise
c.tell("increment", 1)             # fire and forget
v = c.ask("increment", 1, timeout=2s)
c.stop(); c.alive; whereis("counter")
)weft"},
    {"Section10Supervise", R"weft(sup = supervise([
    child(Fetcher, id="fetcher", args={"base": url}, restart="permanent", shutdown=5s),
    child(Indexer, id="indexer", restart="transient"),
], strategy="one_for_one", intensity=3, period=5s, backoff=0.1)
f = sup.ref("fetcher")      # a stable reference that follows restarts
)weft"},
    {"Section3Annotations", R"weft(def f(x: int, xs: list[str] = []) -> dict:
    return {}
x: float = 1.0
)weft"},
    {"Section3ValueSemantics", R"weft(ys = xs; xs.append(4)
d[k] = v
xs.append(v)
xs.sort()
p.x = 1
)weft"},
    {"Section3Unpacking", R"weft(a, *rest = xs
print(str([1, 'a']), repr({'k': 1.5}), (1,), None)
)weft"},
    {"Section4Imports", R"weft(import json
import http
from fs import glob
import "./util.weft" as util
from "./util.weft" import f
print(args)
)weft"},
    {"Section5Lazy", R"weft(x = lazy expensive(a)
)weft"},
    {"Section5Sequential", R"weft(sequential:
    log(x)
    log(y)
@sequential
def f():
    pass
)weft"},
    {"Section6Race", R"weft(v = race(fetch(m1), fetch(m2))
race:
    fetch(m1)
    fetch(m2)
)weft"},
    {"Section6Timeouts", R"weft(with timeout(2s):
    work()
with move_on_after(2s) as scope:
    work()
print(scope.expired)
@timeout(5s)
def g():
    pass
with cancel_scope() as cs:
    cs.cancel()
with shield:
    cleanup()
t = spawn f(x)
print(t.done(), t.result(timeout=None), t.id, t.state)
)weft"},
    {"Section6ConcurrentFailFast", R"weft(concurrent(fail_fast=False):
    spawn f()
)weft"},
    {"Section7SelectFunction", R"weft(ch, value = select([ch1, ch2], timeout=1s)
)weft"},
    {"Section8Table",
     R"weft(r = parallel_map(f, xs, workers=None, timeout=None, errors="raise", progress=False)
out = stream_map(f, in_ch, workers=4, ordered=False, buffer=workers)
with worker_pool(8) as pool:
    pool.map(f, xs)
retry(f, attempts=3, backoff=0.1, max_backoff=5s, on=[Error])
parallel(f, g, h, workers=8, timeout=30s, errors="fail_fast", retries=0, backoff=0.5)
)weft"},
    {"Section9Errors", R"weft(try:
    raise ValueError("bad")
except KeyError as e:
    print(e.message, e.kind, e.trace)
except (A, B):
    pass
else:
    pass
finally:
    pass
struct MyError(Error):
    pass
err = error("msg")
print(is_error(err))
)weft"},
    {"Section10Bus", R"weft(bus = event_bus()
bus.subscribe(topic, ref_or_function)
bus.publish(topic, event)
bus.unsubscribe(topic, ref)
cb = circuit_breaker(f, threshold=5, recovery=60s)
agent Planner:
    goal: str = ""
    def step(self):
        pass
p = Planner.spawn(goal="x")
p.suspend(); p.resume()
m = monitor(ref)
link(a, b)
)weft"},
};
INSTANTIATE_TEST_SUITE_P(Spec, SpecProgram, ::testing::ValuesIn(kPrograms),
                         [](const ::testing::TestParamInfo<Program>& i) {
                             return std::string(i.param.name);
                         });

TEST(SpecProgramShape, ConcurrentBlock) {
    EXPECT_EQ(
        parse_ok(kPrograms[2].source),
        "(concurrent (options) (body (assign a (spawn (call fetch u1))) (assign b (spawn (call "
        "fetch u2))) (spawnblock (for p pages (body (expr (call index p)))))))\n"
        "(expr (call print ([] a \"title\") ([] b \"title\")))");
}

TEST(SpecProgramShape, StructUser) {
    EXPECT_EQ(
        parse_ok(kPrograms[0].source),
        "(struct User (fields (name : str) (age : int = 0)) (methods (def greeting (params self) "
        "-> str (body (return (fstr \"hi \" (fmt (. self name))))))))\n"
        "(assign u (call User (kw name \"Ada\")))\n"
        "(assign (. u age) 36)\n"
        "(assign v (call (. u with) (kw age 37)))");
}

}  // namespace
}  // namespace weft
