// The embedding API (include/weft/weft.hpp), used as a host uses it: conversions both ways,
// exec/eval/call/call_async, errors both ways, sync/blocking/async host functions (with one
// worker, proving that a waiting host function blocks no worker), cancellation reaching
// on_cancel, interrupts, limits, capabilities per Engine, host modules and types, several
// Engines and several host threads. Every wait is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "weft/weft.hpp"

using namespace std::chrono_literals;

struct Point3 {
    double x = 0;
    double y = 0;
    std::string label;
    std::vector<int> tags;
};
WEFT_RECORD(Point3, x, y, label, tags);

namespace {

weft::EngineOptions one_worker() {
    weft::EngineOptions o;
    o.workers = 1;
    return o;
}

// ------------------------------------------------------------------ conversions

TEST(Convert, ScalarsAndStringsRoundTrip) {
    weft::Engine e(one_worker());
    EXPECT_EQ(e.eval<int>("40 + 2"), 42);
    EXPECT_EQ(e.eval<std::int64_t>("2 ** 40"), std::int64_t(1) << 40);
    EXPECT_DOUBLE_EQ(e.eval<double>("1.5 * 2"), 3.0);
    EXPECT_DOUBLE_EQ(e.eval<double>("7"), 7.0);  // int -> double is allowed
    EXPECT_EQ(e.eval<std::string>("'h' + 'é'"), "hé");
    EXPECT_TRUE(e.eval<bool>("1 < 2"));
    EXPECT_TRUE(e.eval("None").is_none());
    // never double -> int, int8 range-checked
    EXPECT_THROW(e.eval<int>("1.5"), weft::ConversionError);
    EXPECT_THROW(e.eval<std::int8_t>("300"), weft::ConversionError);
    EXPECT_THROW(e.eval<std::string>("3"), weft::ConversionError);
    EXPECT_EQ(weft::Value(std::uint64_t(5)).as<int>(), 5);
    EXPECT_THROW(weft::Value(std::uint64_t(1) << 63), weft::ConversionError);
}

TEST(Convert, ContainersBothWays) {
    weft::Engine e(one_worker());
    e.exec("def echo(x):\n    return x\n");
    std::vector<int> v{1, 2, 3};
    EXPECT_EQ(e.call<std::vector<int>>("echo", v), v);
    std::map<std::string, double> m{{"a", 1.5}, {"b", 2}};
    EXPECT_EQ((e.call<std::map<std::string, double>>("echo", m)), m);
    std::optional<int> none;
    EXPECT_EQ(e.call<std::optional<int>>("echo", none), std::nullopt);
    EXPECT_EQ(e.call<std::optional<int>>("echo", std::optional<int>(4)), 4);
    auto t = e.call<std::tuple<int, std::string, bool>>("echo", std::make_tuple(1, std::string("x"), true));
    EXPECT_EQ(t, std::make_tuple(1, std::string("x"), true));
    auto p = e.eval<std::pair<std::string, int>>("('k', 9)");
    EXPECT_EQ(p.first, "k");
    EXPECT_EQ(p.second, 9);
    auto nested = e.eval<std::map<std::string, std::vector<int>>>("{'xs': [1, 2], 'ys': []}");
    EXPECT_EQ(nested["xs"], (std::vector<int>{1, 2}));
    EXPECT_TRUE(nested["ys"].empty());
    EXPECT_EQ(e.eval<weft::Bytes>("b'ab\\x00'").data, std::string("ab\0", 3));
    EXPECT_EQ(e.eval<std::set<int>>("{3, 1, 2}"), (std::set<int>{1, 2, 3}));
    EXPECT_DOUBLE_EQ(e.eval<std::chrono::duration<double>>("250ms").count(), 0.25);
    auto var = e.eval<std::variant<int, std::string>>("'s'");
    EXPECT_EQ(std::get<std::string>(var), "s");
    EXPECT_THROW(e.eval<std::vector<int>>("[1, 'two']"), weft::ConversionError);
    EXPECT_THROW((e.eval<std::map<std::string, int>>("[1]")), weft::ConversionError);
}

TEST(Convert, RecordsFromAndToDictsAndStructs) {
    weft::Engine e(one_worker());
    e.exec("struct P:\n    x: float\n    y: float\n    label: str\n    tags: list\n"
           "def shift(p):\n    return P(p['x'] + 1, p['y'] * 2, p['label'].upper(), p['tags'] + [9])\n");
    Point3 p = e.call<Point3>("shift", Point3{1.5, 2, "a", {1}});  // dict in, struct out
    EXPECT_EQ(p.x, 2.5);
    EXPECT_EQ(p.y, 4);
    EXPECT_EQ(p.label, "A");
    EXPECT_EQ(p.tags, (std::vector<int>{1, 9}));
    EXPECT_EQ(weft::Value::from(p).repr(), "{'x': 2.5, 'y': 4.0, 'label': 'A', 'tags': [1, 9]}");
    auto d = e.eval<Point3>("{'x': 1, 'y': 2, 'label': 'd', 'tags': []}");  // int -> double is fine
    EXPECT_EQ(d.y, 2);
    try {
        e.eval<Point3>("{'x': 1, 'label': 'd', 'tags': []}");
        FAIL();
    } catch (const weft::ConversionError& err) {
        EXPECT_NE(std::string(err.what()).find("Point3.y"), std::string::npos) << err.what();
    }
    EXPECT_THROW(e.eval<Point3>("{'x': 1, 'y': 'no', 'label': 'd', 'tags': []}"), weft::ConversionError);
}

TEST(Convert, ValueViews) {
    weft::Engine e(one_worker());
    weft::Value d = e.eval("{'name': 'ada', 'langs': ['weft', 'c++']}");
    EXPECT_EQ(d.kind(), weft::Kind::Dict);
    EXPECT_EQ(d.size(), 2u);
    EXPECT_EQ(d["name"].str_view(), "ada");
    EXPECT_EQ(d["langs"][1].as<std::string>(), "c++");
    EXPECT_TRUE(d.contains("langs"));
    EXPECT_FALSE(d.get("missing").has_value());
    EXPECT_THROW(d["missing"], weft::ConversionError);
    EXPECT_THROW(d["langs"][5], weft::ConversionError);
    EXPECT_EQ(d.repr(), "{'name': 'ada', 'langs': ['weft', 'c++']}");
    EXPECT_EQ(d.type_name(), "dict");
    EXPECT_TRUE(weft::list({1, "a"}) == e.eval("[1, 'a']"));
    EXPECT_EQ(weft::Value(1).hash(), weft::Value(1.0).hash());
    e.exec("struct Point:\n    x: int\n    y: int\n");
    weft::Value pt = e.eval("Point(1, 2)");
    EXPECT_EQ(pt.kind(), weft::Kind::Struct);
    EXPECT_EQ(pt["y"].as<int>(), 2);
    EXPECT_EQ(pt.items().size(), 2u);
}

// ------------------------------------------------------------------ exec / eval / call

TEST(Call, ByNameLiteralStringAndValue) {
    weft::Engine e(one_worker());
    e.exec("def add(a, b):\n    return a + b\n");
    EXPECT_EQ(e.call<int>("add", 2, 40), 42);  // a literal name: the obvious overload (item 7)
    std::string name = "add";
    EXPECT_EQ(e.call<int>(name, 1, 1), 2);
    EXPECT_EQ(e.call<std::string>(std::string_view("add"), "a", "b"), "ab");
    weft::Value f = e.global("add");
    EXPECT_EQ(f.kind(), weft::Kind::Function);
    EXPECT_EQ(e.call<int>(f, 3, 4), 7);
    weft::Function fn(f);
    EXPECT_EQ(fn.operator()<int>(5, 6), 11);
    e.exec("def greet(name, greeting='hello'):\n    return f'{greeting}, {name}'\n");
    EXPECT_EQ(e.call<std::string>("greet", "ada", weft::kw("greeting", "hi")), "hi, ada");
    EXPECT_EQ(e.call<int>("len", std::vector<int>{1, 2}), 2) << "a builtin by name";
}

TEST(Call, ExecReturnsLastExpressionAndKeepsGlobals) {
    weft::Engine e(one_worker());
    EXPECT_EQ(e.exec("x = 20\nx + 1").as<int>(), 21);
    EXPECT_EQ(e.eval<int>("x * 2"), 40);
    e.set_global("y", weft::Value(5));
    EXPECT_EQ(e.eval<int>("y + x"), 25);
    EXPECT_TRUE(e.global("nope").is_none());
    EXPECT_EQ(e.global("x").as<int>(), 20);
}

TEST(Call, PromiseReturnIsSettled) {
    weft::Engine e(one_worker());
    e.exec("def slow(n):\n    sleep(10ms)\n    return n * 2\n"
           "def outer(n):\n    return slow(n)\n");
    EXPECT_EQ(e.call<int>("outer", 21), 42);
}

TEST(Call, TasksOfACallEndWithIt) {
    weft::Engine e(one_worker());
    e.exec("def sq(i):\n    sleep(1ms)\n    return i * i\n"
           "def fan(n):\n    hs = [spawn sq(i) for i in range(n)]\n    return sum([h.result() for h in hs])\n");
    EXPECT_EQ(e.call<int>("fan", 10), 285);
}

// ------------------------------------------------------------------ errors

TEST(Errors, ScriptErrorCarriesKindMessageAndTrace) {
    weft::Engine e(one_worker());
    e.exec("def boom(x):\n    return {}[x]\n", "app.weft");
    try {
        e.call("boom", "k");
        FAIL() << "expected ScriptError";
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "KeyError");
        EXPECT_TRUE(err.is("KeyError"));
        EXPECT_TRUE(err.is("Error"));
        EXPECT_FALSE(err.is("ValueError"));
        EXPECT_NE(err.message().find("k"), std::string::npos);
        EXPECT_NE(err.trace().find("app.weft:2"), std::string::npos) << err.trace();
        EXPECT_EQ(err.value().type_name(), "KeyError");
    }
    auto r = e.try_call<int>("boom", "z");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind(), "KeyError");
    auto ok = e.try_call<int>("len", "abc");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok.value(), 3);
    EXPECT_THROW(e.call("undefined_name"), weft::ScriptError);
}

TEST(Errors, UserErrorStructsAndGroups) {
    weft::Engine e(one_worker());
    e.exec("struct QuotaError(Error):\n    left: int\n"
           "def f():\n    raise QuotaError(message='over', left=0)\n"
           "def g():\n    a = spawn f()\n    b = spawn f()\n    return 1\n");
    try {
        e.call("f");
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "QuotaError");
        EXPECT_TRUE(err.is("Error"));
        EXPECT_EQ(err.message(), "over");
        EXPECT_EQ(err.value()["left"].as<int>(), 0);
    }
    try {
        e.call("g");
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "ErrorGroup");
        EXPECT_EQ(err.errors().size(), 2u);
        EXPECT_EQ(err.errors()[0].kind(), "QuotaError");
    }
}

TEST(Errors, CompileErrorHasLineAndColumn) {
    weft::Engine e(one_worker());
    try {
        e.exec("x = 1\ndef f(:\n    pass\n", "bad.weft");
        FAIL();
    } catch (const weft::CompileError& err) {
        EXPECT_EQ(err.file(), "bad.weft");
        EXPECT_EQ(err.line(), 2);
        EXPECT_GT(err.column(), 0);
        EXPECT_NE(std::string(err.what()).find("bad.weft:2:"), std::string::npos) << err.what();
    }
    EXPECT_THROW(e.check("def (", "c.weft"), weft::CompileError);
    EXPECT_NO_THROW(e.check("def ok():\n    return 1\n"));
}

TEST(Errors, CppExceptionsBecomeWeftErrors) {
    weft::Engine e(one_worker());
    e.def("at", [](std::vector<int> v, int i) { return v.at(std::size_t(i)); });
    e.def("parse", [](std::string s) { return std::stoi(s); });
    e.def("quota", [] { throw weft::Raise("KeyError", "no quota"); });
    e.def("weird", [] { throw 42; });
    e.exec("def kinds():\n"
           "    out = []\n"
           "    try:\n        at([1], 5)\n    except IndexError as e:\n        out.append('IndexError')\n"
           "    try:\n        parse('x')\n    except ValueError:\n        out.append('ValueError')\n"
           "    try:\n        quota()\n    except KeyError as e:\n        out.append(str(e))\n"
           "    try:\n        at('no', 1)\n    except TypeError as e:\n        out.append('TypeError')\n"
           "    try:\n        weird()\n    except Error as e:\n        out.append(str(e))\n"
           "    return out\n");
    auto out = e.call<std::vector<std::string>>("kinds");
    ASSERT_EQ(out.size(), 5u);
    EXPECT_EQ(out[0], "IndexError");
    EXPECT_EQ(out[1], "ValueError");
    EXPECT_EQ(out[2], "no quota");
    EXPECT_EQ(out[3], "TypeError");
    EXPECT_EQ(out[4], "unknown C++ exception in weird()");
}

// ------------------------------------------------------------------ host functions

TEST(HostFunctions, SyncRawAndContext) {
    weft::Engine e(one_worker());
    e.def("twice", [](int x) { return 2 * x; });
    e.def("join", [](weft::Context&, weft::Args& a) {
        std::string out;
        for (std::size_t i = 0; i < a.size(); ++i) out += a[i].str();
        return out + a.kw<std::string>("end", "");
    });
    e.def("apply", [](weft::Context& cx, weft::Value f, int x) { return cx.call<int>(f, x) + 1; });
    EXPECT_EQ(e.eval<int>("twice(21)"), 42);
    EXPECT_EQ(e.eval<std::string>("join(1, 'a', None, end='!')"), "1aNone!");
    EXPECT_EQ(e.eval<int>("apply(lambda v: v * 10, 4)"), 41);
    // too many arguments: TypeError in the script
    EXPECT_THROW(e.eval("twice(1, 2)"), weft::ScriptError);
    // a blocking Engine member inside a host function is refused, not a deadlock
    e.def("reenter", [&e] { return e.eval<int>("1"); });
    try {
        e.eval("reenter()");
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_NE(err.message().find("Context::call"), std::string::npos) << err.message();
    }
}

// A blocking host function parks its task: with one worker, a ticker task keeps running.
TEST(HostFunctions, BlockingRunsOnThePoolNotTheWorker) {
    weft::Engine e(one_worker());
    e.def_blocking("slow_read", [](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
    });
    e.exec("def run():\n"
           "    ticks = atom(0)\n"
           "    done = atom(False)\n"
           "    def ticker():\n"
           "        while not done.get():\n"
           "            ticks.swap(lambda n: n + 1)\n"
           "            sleep(2ms)\n"
           "    t = spawn ticker()\n"
           "    r = slow_read(150)\n"
           "    r = r + 0\n"
           "    done.reset(True)\n"
           "    t.result()\n"
           "    return [r, ticks.get()]\n");
    auto r = e.call<std::vector<int>>("run");
    EXPECT_EQ(r[0], 150);
    EXPECT_GT(r[1], 3) << "the worker was blocked";  // blocked, the ticker would tick at most once
}

// An async host function returns at once; another thread resolves it later; with one worker a
// ticker keeps running meanwhile. Two calls run concurrently (deferred).
TEST(HostFunctions, AsyncResolvedFromAnotherThread) {
    weft::Engine e(one_worker());
    std::mutex mu;
    std::vector<std::thread> threads;
    e.def_async("fetch", [&](int id, weft::Completion<std::string> done) {
        std::lock_guard<std::mutex> g(mu);
        threads.emplace_back([id, done = std::move(done)]() mutable {
            std::this_thread::sleep_for(300ms);
            done.resolve("user" + std::to_string(id));
        });
    });
    e.exec("def run():\n"
           "    ticks = atom(0)\n"
           "    done = atom(False)\n"
           "    def ticker():\n"
           "        while not done.get():\n"
           "            ticks.swap(lambda n: n + 1)\n"
           "            sleep(2ms)\n"
           "    t = spawn ticker()\n"
           "    a = fetch(1)\n"
           "    b = fetch(2)\n"
           "    r = a + ',' + b\n"
           "    done.reset(True)\n"
           "    t.result()\n"
           "    return [r, ticks.get()]\n");
    auto start = std::chrono::steady_clock::now();
    weft::Value r = e.call("run");
    auto took = std::chrono::steady_clock::now() - start;
    for (auto& t : threads) t.join();
    EXPECT_EQ(r[0].as<std::string>(), "user1,user2");
    EXPECT_GT(r[1].as<int>(), 3);
    EXPECT_LT(took, 590ms) << "the two async calls did not run concurrently";  // one after the other: 600 ms
}

TEST(HostFunctions, AsyncRejectAndDroppedCompletion) {
    weft::Engine e(one_worker());
    e.def_async("fails", [](weft::Completion<int> done) {
        std::thread([done = std::move(done)]() mutable {
            done.reject(std::make_exception_ptr(std::out_of_range("gone")));
        }).detach();
    });
    e.def_async("forgets", [](weft::Completion<int>) {});
    e.def_async("fast", [](int x, weft::Completion<int> done) { done.resolve(x + 1); });
    e.exec("def catch_index():\n    try:\n        fails()\n    except IndexError as e:\n        return str(e)\n");
    EXPECT_EQ(e.call<std::string>("catch_index"), "gone");
    try {
        e.eval("forgets()");
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.message(), "forgets(): the host dropped its completion");
    }
    EXPECT_EQ(e.eval<int>("fast(1)"), 2);
}

// A timeout in the script cancels the waiting task; the host's on_cancel runs.
TEST(HostFunctions, CancellationReachesOnCancel) {
    weft::Engine e(one_worker());
    std::promise<void> cancelled;
    std::mutex mu;
    std::optional<weft::Completion<int>> kept;
    e.def_async("never", [&](weft::Completion<int> done) {
        done.on_cancel([&] { cancelled.set_value(); });
        std::lock_guard<std::mutex> g(mu);
        kept.emplace(std::move(done));
    });
    e.exec("def bounded():\n    try:\n        with timeout(30ms):\n            never()\n        return 'no'\n"
           "    except TimeoutError:\n        return 'timed out'\n");
    EXPECT_EQ(e.call<std::string>("bounded"), "timed out");
    ASSERT_EQ(cancelled.get_future().wait_for(5s), std::future_status::ready);
    std::lock_guard<std::mutex> g(mu);
    EXPECT_TRUE(kept->cancelled());
    kept->resolve(1);  // after cancellation: ignored
}

TEST(HostFunctions, SerializedRunsOneAtATime) {
    weft::Engine e;
    std::atomic<int> inside{0}, most{0};
    weft::DefOptions o;
    o.serialized = true;
    e.def_blocking(
        "critical",
        [&] {
            int n = ++inside;
            most = std::max(most.load(), n);
            std::this_thread::sleep_for(5ms);
            --inside;
            return 1;
        },
        o);
    EXPECT_EQ(e.eval<int>("sum(parallel_map(lambda i: critical(), range(8)))"), 8);
    EXPECT_EQ(most.load(), 1);
}

// ------------------------------------------------------------------ modules and types

struct Counter {
    explicit Counter(int start) : value(start) {}
    int inc(int by) { return value += by; }
    int value;
};

TEST(HostModulesAndTypes, ModuleImportAndConstants) {
    weft::Engine e(one_worker());
    e.module("sensors").def("count", [] { return 4; }).set("UNIT", weft::Value("celsius"));
    EXPECT_EQ(e.exec("import sensors\nsensors.count() * 10").as<int>(), 40);
    EXPECT_EQ(e.eval<std::string>("sensors.UNIT"), "celsius");
    // another Engine has no such module
    weft::Engine other(one_worker());
    EXPECT_THROW(other.exec("import sensors"), weft::ScriptError);
}

TEST(HostModulesAndTypes, LoadModuleAndModulePaths) {
    std::string dir = "/tmp/weft_embed_module_paths";
    std::system(("mkdir -p " + dir).c_str());
    {
        std::ofstream f(dir + "/mathx.weft");
        f << "def triple(x):\n    return 3 * x\n";
    }
    std::atomic<int> loads{0};
    std::string seen_importer;
    std::mutex mu;
    weft::EngineOptions o = one_worker();  // no read capability: the host grants these modules
    o.module_paths = {dir};
    o.load_module = [&](std::string_view name, std::string_view importer) -> std::optional<std::string> {
        if (name == "greet") {
            ++loads;
            return std::string("import mathx\ndef hello(n):\n    return 'hi ' + n + str(mathx.triple(1))\n");
        }
        if (name == "mathx") {  // nested import: the importer is the host module
            std::lock_guard<std::mutex> g(mu);
            seen_importer = std::string(importer);
            return std::nullopt;  // let module_paths find it
        }
        if (name == "lib/cfg.weft") return std::string("LEVEL = 3\n");
        if (name == "broken") return std::string("def (:\n");
        if (name == "throws") throw std::runtime_error("database down");
        return std::nullopt;
    };
    weft::Engine e(o);
    EXPECT_EQ(e.exec("import greet\ngreet.hello('ann')").as<std::string>(), "hi ann3");
    EXPECT_EQ(e.exec("import greet\ngreet.hello('bo')").as<std::string>(), "hi bo3");
    EXPECT_EQ(loads.load(), 1);  // loaded once per Engine
    {
        std::lock_guard<std::mutex> g(mu);
        EXPECT_EQ(seen_importer, "<greet>");
    }
    EXPECT_EQ(e.exec("import mathx\nmathx.triple(5)").as<int>(), 15);
    EXPECT_EQ(e.exec("import \"lib/cfg.weft\" as cfg\ncfg.LEVEL").as<int>(), 3);
    for (const char* bad : {"import broken", "import throws", "import nowhere"}) {
        try {
            e.exec(bad);
            ADD_FAILURE() << bad << " imported";
        } catch (const weft::ScriptError& err) {
            EXPECT_TRUE(err.is("Error")) << bad << ": " << err.kind();
            if (std::string(bad) == "import throws") {
                EXPECT_NE(err.message().find("database down"), std::string::npos) << err.message();
            }
        }
    }
    weft::Engine plain(one_worker());  // another Engine does not see them
    EXPECT_THROW(plain.exec("import greet"), weft::Exception);  // no module named 'greet'
}

TEST(HostModulesAndTypes, HostTypeSharedWithTheHost) {
    weft::Engine e(one_worker());
    e.def_type<Counter>("Counter").constructor<int>().method("inc", &Counter::inc).property("value", &Counter::value);
    EXPECT_EQ(e.exec("c = Counter(5)\nc.inc(2)\nc.inc(3)\nc.value").as<int>(), 10);
    auto c = e.global("c").as<std::shared_ptr<Counter>>();
    EXPECT_EQ(c->value, 10);
    c->value = 100;  // the same object
    EXPECT_EQ(e.eval<int>("c.value"), 100);
    auto mine = std::make_shared<Counter>(1);
    e.exec("def bump(x):\n    return x.inc(1)\n");
    EXPECT_EQ(e.call<int>("bump", mine), 2);
    EXPECT_EQ(mine->value, 2);
    EXPECT_EQ(e.global("c").type_name(), "Counter");
    EXPECT_EQ(e.global("c").kind(), weft::Kind::HostObject);
}

struct Device {
    explicit Device(int b) : base(b) {}
    int base;
};

// Blocking and async methods of a host type park the calling task (one worker: a ticker keeps
// running) and are deferred like functions.
TEST(HostModulesAndTypes, BlockingAndAsyncMethods) {
    weft::Engine e(one_worker());
    e.def_type<Device>("Device")
        .constructor<int>()
        .method_blocking("read",
                         [](Device& d, int ms) {
                             std::this_thread::sleep_for(std::chrono::milliseconds(ms));
                             return d.base + ms;
                         })
        .method_async("fetch", [](Device& d, std::string key, weft::Completion<std::string> done) {
            std::thread([b = d.base, key, done = std::move(done)]() mutable {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                done.resolve(key + std::to_string(b));
            }).detach();
        });
    e.exec("def run():\n"
           "    d = Device(1000)\n"
           "    ticks = atom(0)\n"
           "    done = atom(False)\n"
           "    def ticker():\n"
           "        while not done.get():\n"
           "            ticks.swap(lambda n: n + 1)\n"
           "            sleep(2ms)\n"
           "    t = spawn ticker()\n"
           "    a = d.read(150)\n"
           "    b = d.fetch('k')\n"
           "    r = [a + 0, b + '']\n"
           "    done.reset(True)\n"
           "    t.result()\n"
           "    return [str(r[0]), r[1], str(ticks.get())]\n");
    auto r = e.call<std::vector<std::string>>("run");
    EXPECT_EQ(r[0], "1150");
    EXPECT_EQ(r[1], "k1000");
    EXPECT_GT(std::stoi(r[2]), 3) << "the worker was blocked";
    try {
        e.eval("Device(1).read('x')");
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "TypeError");
    }
}

// ------------------------------------------------------------------ output, async calls

TEST(Output, StdoutSinkGetsPrints) {
    std::string out;
    std::mutex mu;
    weft::EngineOptions o = one_worker();
    o.stdout_sink = [&](std::string_view s) {
        std::lock_guard<std::mutex> g(mu);
        out += s;
    };
    weft::Engine e(o);
    e.exec("print('hello', 42)\nfor i in range(3):\n    print(i)\n");
    std::lock_guard<std::mutex> g(mu);
    EXPECT_EQ(out, "hello 42\n0\n1\n2\n");
}

TEST(Output, StderrSinkGetsErrorOutput) {
    std::string out, err;
    std::mutex mu;
    weft::EngineOptions o = one_worker();
    o.stdout_sink = [&](std::string_view s) {
        std::lock_guard<std::mutex> g(mu);
        out += s;
    };
    o.stderr_sink = [&](std::string_view s) { err += s; };  // called one at a time
    o.load_module = [](std::string_view name, std::string_view) -> std::optional<std::string> {
        if (name == "bad") return std::string("x = (\n");
        return std::nullopt;
    };
    weft::Engine e(o);
    e.exec("import sys\nprint('to out')\nprint('to err', file=sys.stderr)\nsys.stderr.write('raw\\n')\n"
           "def noisy(n):\n    hs = [spawn print(i, file=sys.stderr) for i in range(n)]\n    return n\n");
    EXPECT_EQ(e.call<int>("noisy", 20), 20);
    EXPECT_THROW(e.exec("import bad"), weft::ScriptError);
    std::lock_guard<std::mutex> g(mu);
    EXPECT_EQ(out, "to out\n");
    EXPECT_EQ(err.substr(0, 11), "to err\nraw\n") << err;
    for (int i = 0; i < 20; ++i) EXPECT_NE(err.find("\n" + std::to_string(i) + "\n"), std::string::npos) << i;
    EXPECT_NE(err.find("<bad>"), std::string::npos) << err;  // the module's compile error
}

TEST(CallAsync, FutureGetThenAndManyAtOnce) {
    weft::Engine e;
    e.exec("def sq(n):\n    sleep(5ms)\n    return n * n\n");
    std::vector<weft::Future<int>> fs;
    for (int i = 0; i < 50; ++i) fs.push_back(e.call_async<int>("sq", i));
    long sum = 0;
    for (auto& f : fs) {
        ASSERT_TRUE(f.wait_for(10s));
        sum += f.get();
    }
    EXPECT_EQ(sum, 40425);
    std::promise<int> got;
    auto f = e.call_async<int>("sq", 7);
    f.then([&](weft::Result<int>& r) { got.set_value(r.value()); });
    auto fut = got.get_future();
    ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(fut.get(), 49);
    auto bad = e.call_async<int>("sq", "x");
    EXPECT_THROW(bad.get(), weft::ScriptError);
}

// ------------------------------------------------------------------ interrupts and limits

TEST(Interrupts, PureWeftLoopIsInterruptedAndEngineStaysUsable) {
    weft::Engine e(one_worker());
    e.exec("def spin():\n    n = 0\n    while True:\n        try:\n            n += 1\n        except Cancelled:\n            pass\n");
    auto f = e.call_async("spin");
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(f.ready());
    e.interrupt();
    ASSERT_TRUE(f.wait_for(10s));
    EXPECT_THROW(f.get(), weft::Interrupted);
    EXPECT_EQ(e.eval<int>("1 + 1"), 2);
    // from another thread through a handle, during a blocking call
    weft::InterruptHandle h = e.interrupt_handle();
    std::thread t([h] {
        std::this_thread::sleep_for(50ms);
        EXPECT_TRUE(h.interrupt());
    });
    EXPECT_THROW(e.call("spin"), weft::Interrupted);
    t.join();
}

// A long native (sum over a huge range) polls for cancellation: interrupt() and time limits
// reach it, and so does a script's own `with timeout`.
TEST(Interrupts, LongNativeIsInterrupted) {
    weft::Engine e(one_worker());
    auto f = e.call_async("eval_sum");
    e.exec("def huge():\n    return sum(range(10 ** 12))\n");
    auto g = e.call_async("huge");
    std::this_thread::sleep_for(50ms);
    e.interrupt();
    ASSERT_TRUE(g.wait_for(10s));
    EXPECT_THROW(g.get(), weft::Interrupted);
    EXPECT_THROW(f.get(), weft::ScriptError);  // eval_sum is not defined
    weft::CallOptions co;
    co.limits = weft::Limits{};
    co.limits->timeout = 50ms;
    EXPECT_THROW(e.call_with(co, "huge"), weft::LimitExceeded);
    e.exec("def bounded():\n    try:\n        with timeout(20ms):\n            return sum(range(10 ** 12))\n"
           "    except TimeoutError:\n        return -1\n");
    EXPECT_EQ(e.call<int>("bounded"), -1);
}

TEST(Interrupts, FutureCancelStopsTheTaskTree) {
    weft::Engine e(one_worker());
    e.exec("def tree():\n    hs = [spawn sleep(100) for i in range(5)]\n    return sum([1 for h in hs])\n");
    auto f = e.call_async("tree");
    std::this_thread::sleep_for(30ms);
    f.cancel();
    ASSERT_TRUE(f.wait_for(10s));
    EXPECT_THROW(f.get(), weft::Interrupted);
}

TEST(Interrupts, HandleOutlivesTheEngine) {
    std::optional<weft::InterruptHandle> h;
    {
        weft::Engine e(one_worker());
        h.emplace(e.interrupt_handle());
        EXPECT_TRUE(h->interrupt());
    }
    EXPECT_FALSE(h->interrupt());
}

TEST(Limits, TimeoutPerEngineAndPerCall) {
    weft::EngineOptions o = one_worker();
    o.limits.timeout = 2000ms;
    weft::Engine e(o);
    e.exec("def loop():\n    while True:\n        pass\n");
    weft::CallOptions co;
    co.limits = weft::Limits{};
    co.limits->timeout = 50ms;
    auto start = std::chrono::steady_clock::now();
    try {
        e.call_with(co, "loop");
        FAIL();
    } catch (const weft::LimitExceeded& l) {
        EXPECT_EQ(l.which(), weft::Limit::Time);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
    // the script cannot catch it as TimeoutError
    e.exec("def sly():\n    try:\n        while True:\n            pass\n    except TimeoutError:\n        return 'caught'\n");
    EXPECT_THROW(e.call_with(co, "sly"), weft::LimitExceeded);
    EXPECT_EQ(e.eval<int>("3"), 3);
}

TEST(Limits, StepsAndOutput) {
    std::string out;
    std::mutex mu;
    weft::EngineOptions o = one_worker();
    o.limits.max_steps = 100000;
    o.stdout_sink = [&](std::string_view s) {
        std::lock_guard<std::mutex> g(mu);
        out += s;
    };
    weft::Engine e(o);
    e.exec("def count(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
           "def forever():\n    while True:\n        pass\n"
           "def fan():\n    hs = [spawn forever() for i in range(4)]\n    return 1\n"
           "def chatty():\n    while True:\n        print('0123456789')\n");
    EXPECT_EQ(e.call<int>("count", 1000), 499500);  // well within the limit
    try {
        e.call("forever");
        FAIL();
    } catch (const weft::LimitExceeded& l) {
        EXPECT_EQ(l.which(), weft::Limit::Steps);
    }
    EXPECT_THROW(e.call("fan"), weft::LimitExceeded);  // summed over the call's tasks
    weft::CallOptions co;
    co.limits = weft::Limits{};
    co.limits->max_output = 55;
    try {
        e.call_with(co, "chatty");
        FAIL();
    } catch (const weft::LimitExceeded& l) {
        EXPECT_EQ(l.which(), weft::Limit::Output);
    }
    std::lock_guard<std::mutex> g(mu);
    EXPECT_EQ(out, "0123456789\n0123456789\n0123456789\n0123456789\n0123456789\n");
}

TEST(Limits, MaxTasksPerEngine) {
    weft::EngineOptions o = one_worker();
    o.limits.max_tasks = 5;
    weft::Engine e(o);
    try {
        e.eval("[spawn sleep(1) for i in range(50)]");
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_NE(err.message().find("too many live tasks"), std::string::npos) << err.message();
    }
    weft::Engine free(one_worker());  // another Engine is not limited by it
    EXPECT_EQ(free.eval<int>("len([spawn (lambda: 1)() for i in range(50)])"), 50);
}

TEST(Limits, MemoryPerEngineAcrossCalls) {
    constexpr std::size_t MiB = 1024 * 1024;
    weft::EngineOptions o;
    o.workers = 2;
    o.limits.max_memory = 16 * MiB;
    weft::Engine e(o);
    e.exec("keep = []\n"
           "def grow(n):\n    xs = []\n    while True:\n        xs.append('x' * n + str(len(xs)))\n"
           "def big():\n    try:\n        s = 'x' * 100000000\n        return 'allocated'\n"
           "    except MemoryError as err:\n        return str(err)\n");
    // Memory kept in globals counts across calls: the fourth 5 MiB is refused before allocating,
    // as a MemoryError the script could catch.
    const char* add = "keep.append(bytes(5 * 1024 * 1024))\nlen(keep)";  // top level: globals change
    for (int i = 1; i <= 3; ++i) EXPECT_EQ(e.exec(add).as<int>(), i);
    EXPECT_GE(e.stats().memory_bytes, 15 * MiB);
    try {
        e.exec(add);
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "MemoryError");
        EXPECT_NE(err.message().find("memory limit"), std::string::npos) << err.message();
    }
    e.exec("keep.clear()");
    EXPECT_LT(e.stats().memory_bytes, 4 * MiB);
    EXPECT_EQ(e.exec(add).as<int>(), 1);  // room again
    e.exec("keep.clear()");
    // Growing in small steps: the call is stopped (not catchable), its memory given back as it
    // unwinds, and the Engine is usable afterwards.
    try {
        e.call("grow", 1000);
        FAIL();
    } catch (const weft::LimitExceeded& l) {
        EXPECT_EQ(l.which(), weft::Limit::Memory);
    }
    EXPECT_LT(e.stats().memory_bytes, 4 * MiB);
    EXPECT_NE(e.call<std::string>("big").find("memory limit"), std::string::npos);
    EXPECT_EQ(e.eval<int>("len([str(i) for i in range(10000)])"), 10000);
}

TEST(Limits, MemoryCountComesBackAfterCalls) {
    // What a call allocates and drops (its tasks, their frames, its result once the host lets it
    // go) is given back: many calls do not add up to a limit.
    constexpr std::size_t MiB = 1024 * 1024;
    weft::EngineOptions o;
    o.workers = 2;
    o.limits.max_memory = 64 * MiB;
    weft::Engine e(o);
    e.exec("def work(n):\n    hs = [spawn str(i) * 100 for i in range(n)]\n    return [h for h in hs]\n");
    e.call("work", 50);  // first-use caches (interpreters, pools)
    std::size_t before = e.stats().memory_bytes;
    for (int i = 0; i < 300; ++i) EXPECT_EQ(e.call<std::vector<std::string>>("work", 50).size(), 50u);
    EXPECT_LT(e.stats().memory_bytes, before + 2 * MiB) << "before " << before;
}

TEST(Limits, MemoryPerCallAndNativeGrowth) {
    constexpr std::size_t MiB = 1024 * 1024;
    weft::Engine e(one_worker());  // no limit of its own
    e.exec("def grow(n):\n    xs = []\n    while True:\n        xs.append('x' * n + str(len(xs)))\n"
           "def hold(n):\n    return len([str(i) for i in range(n)])\n");
    weft::CallOptions co;
    co.limits = weft::Limits{};
    co.limits->max_memory = 4 * MiB;
    try {
        e.call_with(co, "grow", 100);
        FAIL();
    } catch (const weft::LimitExceeded& l) {
        EXPECT_EQ(l.which(), weft::Limit::Memory);
    }
    // A native filling a list by itself (no safepoint inside) is stopped at its polls.
    try {
        e.call_with(co, "list", e.eval("range(100000000)"));
        FAIL();
    } catch (const weft::LimitExceeded& l) {
        EXPECT_EQ(l.which(), weft::Limit::Memory);
    }
    EXPECT_EQ(e.call<int>("hold", 200000), 200000);                  // unlimited calls are not
    EXPECT_THROW(e.call_with(co, "hold", 200000), weft::LimitExceeded);  // ~10 MiB of str
    EXPECT_EQ(e.call_with<int>(co, "hold", 1000), 1000);
}

// ------------------------------------------------------------------ capabilities

TEST(Capabilities, ContextRequireChecksTheTasksCapabilities) {
    weft::EngineOptions o = one_worker();
    o.capabilities = weft::Capabilities::none().allow_write("/tmp").allow_net("example.com").allow_env("HOME");
    weft::Engine e(o);
    e.def("check", [](weft::Context& cx, std::string kind, std::string what) {
        if (kind == "write") cx.require_write(what);
        if (kind == "net") cx.require_net(what, 443);
        if (kind == "run") cx.require_run(what);
        if (kind == "env") cx.require_env(what);
        if (kind == "read") cx.require_read(what);
        return kind;
    });
    EXPECT_EQ(e.eval<std::string>("check('write', '/tmp/out.txt')"), "write");
    EXPECT_EQ(e.eval<std::string>("check('net', 'example.com')"), "net");
    EXPECT_EQ(e.eval<std::string>("check('env', 'HOME')"), "env");
    for (const char* denied : {"check('write', '/etc/passwd')", "check('net', 'evil.example')",
                               "check('run', 'ls')", "check('env', 'PATH')", "check('read', '/tmp/x')"}) {
        try {
            e.eval(denied);
            ADD_FAILURE() << denied << " was allowed";
        } catch (const weft::ScriptError& err) {
            EXPECT_EQ(err.kind(), "PermissionDenied") << denied;
        }
    }
    // A call narrowed to no capabilities: the host function sees the narrowed set.
    weft::CallOptions co;
    co.capabilities = weft::Capabilities::none();
    e.exec("def w(p):\n    return check('write', p)\n");
    EXPECT_THROW(e.call_with(co, "w", "/tmp/out.txt"), weft::ScriptError);
    EXPECT_EQ(e.call<std::string>("w", "/tmp/out.txt"), "write");
}

TEST(Capabilities, PerEngineAndNoWideningPerCall) {
    std::string dir = "/tmp/weft_embed_caps_test";
    std::string path = dir + "/secret.txt";
    std::system(("mkdir -p " + dir).c_str());
    {
        std::ofstream f(path);
        f << "secret";
    }
    std::string read = "import fs\nfs.read_file('" + path + "')";
    weft::Engine none(one_worker());
    try {
        none.exec(read);
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "PermissionDenied");
    }
    weft::EngineOptions o = one_worker();
    o.capabilities.allow_read(dir);
    weft::Engine reader(o);
    EXPECT_EQ(reader.exec(read).as<std::string>(), "secret");
    // a call may narrow, never widen
    reader.exec("def rd(p):\n    return fs.read_file(p)\n");
    EXPECT_EQ(reader.call<std::string>("rd", path), "secret");
    weft::CallOptions narrow;
    narrow.capabilities = weft::Capabilities::none();
    try {
        reader.call_with(narrow, "rd", path);
        FAIL();
    } catch (const weft::ScriptError& err) {
        EXPECT_EQ(err.kind(), "PermissionDenied");
    }
    weft::CallOptions wide;
    wide.capabilities = weft::Capabilities::none().allow_write("/tmp");
    EXPECT_THROW(none.call_with(wide, "len", "x"), weft::UsageError);
    std::remove(path.c_str());
}

// ------------------------------------------------------------------ several engines, threads

TEST(Concurrency, FourEnginesOnFourThreadsNoCrossTalk) {
    std::vector<std::thread> ts;
    std::atomic<int> ok{0};
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([i, &ok] {
            weft::EngineOptions o;
            o.workers = 2;
            o.name = "e" + std::to_string(i);
            weft::Engine e(o);
            e.exec("me = " + std::to_string(i) + "\ndef work(n):\n    return sum([me for _ in range(n)])\n");
            e.def("who", [i] { return i; });
            bool good = true;
            for (int k = 0; k < 20; ++k)
                good = good && e.call<int>("work", 100) == 100 * i && e.eval<int>("who()") == i &&
                       e.eval<int>("me") == i;
            try {
                e.call("undefined_here");
            } catch (const weft::ScriptError& err) {
                good = good && err.kind() == "NameError";
            }
            if (good) ++ok;
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(ok.load(), 4);
}

TEST(Concurrency, EightHostThreadsCallOneEngine) {
    weft::Engine e;
    std::atomic<int> hits{0};
    e.def("hit", [&] { return ++hits; });
    e.exec("def handle(req):\n    hit()\n    return {'path': req, 'len': len(req)}\n");
    std::vector<std::thread> ts;
    std::atomic<int> good{0};
    for (int t = 0; t < 8; ++t)
        ts.emplace_back([&, t] {
            for (int k = 0; k < 50; ++k) {
                std::string p = "/r/" + std::to_string(t) + "/" + std::to_string(k);
                auto r = e.call<std::map<std::string, weft::Value>>("handle", p);
                if (r["path"].as<std::string>() == p && r["len"].as<std::size_t>() == p.size()) ++good;
            }
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(good.load(), 400);
    EXPECT_EQ(hits.load(), 400);
}

TEST(Concurrency, EnginesShareOneRuntime) {
    weft::RuntimeOptions ro;
    ro.workers = 2;
    auto rt = weft::Runtime::create(ro);
    EXPECT_EQ(rt->workers(), 2u);
    {
        std::vector<std::unique_ptr<weft::Engine>> engines;
        for (int i = 0; i < 8; ++i) {
            weft::EngineOptions o;
            o.runtime = rt;
            engines.push_back(std::make_unique<weft::Engine>(o));
            engines.back()->exec("k = " + std::to_string(i));
        }
        for (int i = 0; i < 8; ++i) EXPECT_EQ(engines[std::size_t(i)]->eval<int>("k * 10"), i * 10);
    }
}

TEST(Concurrency, ValueOutlivesItsEngine) {
    weft::Value kept, fn;
    {
        weft::Engine e(one_worker());
        kept = e.eval("{'a': [1, 2]}");
        fn = e.eval("lambda: 1");
    }
    EXPECT_EQ(kept["a"][1].as<int>(), 2);
    EXPECT_THROW(weft::Function(fn).operator()<int>(), weft::EngineClosed);
}

TEST(Engine, TraceEventsAndStats) {
    std::mutex mu;
    std::map<weft::TraceEvent::Kind, int> seen;
    weft::EngineOptions o = one_worker();
    o.trace = [&](const weft::TraceEvent& ev) {
        std::lock_guard<std::mutex> g(mu);
        ++seen[ev.kind];
    };
    weft::Engine e(o);
    e.exec("def fan(n):\n    hs = [spawn sleep(0.001) for i in range(n)]\n    return n\n");
    EXPECT_EQ(e.call<int>("fan", 3), 3);
    {
        std::lock_guard<std::mutex> g(mu);
        EXPECT_GE(seen[weft::TraceEvent::Kind::Created], 3);
        EXPECT_GE(seen[weft::TraceEvent::Kind::Done], 3);
        EXPECT_GE(seen[weft::TraceEvent::Kind::Blocked], 3);  // each sleeps
    }
    EXPECT_THROW(e.eval("1 / 0"), weft::ScriptError);
    weft::EngineStats st = e.stats();
    EXPECT_EQ(st.calls_total, 3u);  // exec, call, eval
    EXPECT_EQ(st.calls_failed, 1u);
    EXPECT_EQ(st.calls_running, 0u);

    weft::EngineOptions shared;
    weft::RuntimeOptions ro;
    ro.workers = 1;
    shared.runtime = weft::Runtime::create(ro);
    shared.trace = [](const weft::TraceEvent&) {};
    EXPECT_THROW(weft::Engine bad(shared), weft::UsageError);
}

// ------------------------------------------------------------------ calls on the host thread
// A call runs its root task on the calling thread until it first parks (Runtime::block_on_here);
// a worker finishes it after that. These check both halves and what must stay true meanwhile:
// spawned tasks reach the workers, interrupts and limits reach the host thread, the deadlock
// detector neither fires early nor misses a deadlock, a one-worker ticker keeps running.

std::int64_t thread_tag() {
    return std::int64_t(std::hash<std::thread::id>{}(std::this_thread::get_id()) & 0x3fffffffffffffffULL);
}

TEST(HostThreadCalls, RunOnTheCallerUntilTheyPark) {
    weft::Engine e(one_worker());
    e.def("tid", [] { return thread_tag(); });
    e.exec("def here():\n    return tid()\n"
           "def moves():\n    a = tid()\n    sleep(0.01)\n    return [a, tid()]\n");
    EXPECT_EQ(e.call<std::int64_t>("here"), thread_tag());
    auto ids = e.call<std::vector<std::int64_t>>("moves");
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0], thread_tag());  // before the sleep: this thread
    EXPECT_NE(ids[1], thread_tag());  // after it: the worker that woke it finished it
    EXPECT_EQ(e.call<std::int64_t>("here"), thread_tag());
}

TEST(HostThreadCalls, BlockOnAChannelMidwayAndAWorkerFinishes) {
    weft::Engine e(one_worker());
    e.exec("def producer(ch, n):\n    for i in range(n):\n        ch.send(i)\n    ch.close()\n"
           "def consume(n):\n    ch = channel()\n    spawn producer(ch, n)\n    total = 0\n"
           "    for i in range(n):\n        total += ch.recv()\n    return total\n");
    for (int k = 0; k < 20; ++k) EXPECT_EQ(e.call<int>("consume", 100), 4950);
}

TEST(HostThreadCalls, SpawnedTasksRunAndEndWithTheCall) {
    weft::EngineOptions o;
    o.workers = 2;
    weft::Engine e(o);
    std::atomic<int> off_host{0};
    std::int64_t host = thread_tag();
    e.def("note", [&] {
        if (thread_tag() != host) ++off_host;
    });
    e.exec("def child(i):\n    sleep(0.001)\n    note()\n    return i * 2\n"
           "def fan(n):\n    hs = [spawn child(i) for i in range(n)]\n    return sum([h for h in hs])\n"
           "def left():\n    spawn child(1)\n    return 7\n");
    EXPECT_EQ(e.call<int>("fan", 200), 200 * 199);
    EXPECT_GT(off_host.load(), 0);  // workers took some of them
    EXPECT_EQ(e.call<int>("left"), 7);
    EXPECT_EQ(e.stats().calls_running, 0u);
}

TEST(HostThreadCalls, InterruptAndTimeoutReachTheHostThread) {
    weft::Engine e(one_worker());
    std::atomic<std::int64_t> seen{0};
    e.def("mark", [&] { seen = thread_tag(); });
    e.exec("def spin():\n    mark()\n    while True:\n        pass\n");
    weft::InterruptHandle h = e.interrupt_handle();
    std::thread t([h] {
        std::this_thread::sleep_for(100ms);
        h.interrupt();
    });
    EXPECT_THROW(e.call("spin"), weft::Interrupted);
    t.join();
    EXPECT_EQ(seen.load(), thread_tag());  // it was spinning on this thread
    seen = 0;
    weft::CallOptions co;
    co.limits = weft::Limits{};
    co.limits->timeout = 50ms;
    try {
        e.call_with(co, "spin");
        FAIL();
    } catch (const weft::LimitExceeded& l) {
        EXPECT_EQ(l.which(), weft::Limit::Time);
    }
    EXPECT_EQ(seen.load(), thread_tag());
    EXPECT_EQ(e.eval<int>("40 + 2"), 42);
}

TEST(HostThreadCalls, DeadlocksAreReportedNotHung) {
    weft::Engine e(one_worker());
    e.exec("gate = channel()\n"
           "def stuck():\n    ch = channel()\n    return ch.recv()\n"
           "def wait_gate():\n    return gate.recv()\n"
           "def busy(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n");
    // (No time limit: its timer would be something that could still wake the call.) A missed
    // deadlock fails the test instead of hanging it: the host thread is interrupted.
    auto stuck = std::async(std::launch::async, [&]() -> std::string {
        try {
            e.call("stuck");
            return "returned";
        } catch (const weft::ScriptError& s) {
            return std::string(s.kind());
        } catch (const weft::Interrupted&) {
            return "hung";
        }
    });
    if (stuck.wait_for(20s) != std::future_status::ready) e.interrupt();
    EXPECT_EQ(stuck.get(), "Deadlock");
    // Another call parks for good while calls keep running on this thread: the detector waits
    // for them (they could still wake it), then reports it.
    auto f = e.call_async("wait_gate");
    for (int k = 0; k < 200; ++k) EXPECT_EQ(e.call<int>("busy", 100), 4950);
    ASSERT_TRUE(f.wait_for(20s));
    try {
        f.get();
        FAIL();
    } catch (const weft::ScriptError& s) {
        EXPECT_EQ(s.kind(), "Deadlock");
    }
}

TEST(HostThreadCalls, ManyHostThreadsAtOnce) {
    // More threads than the runtime has guest slots (16): the rest take the worker path.
    weft::EngineOptions o;
    o.workers = 2;
    weft::Engine e(o);
    e.exec("def work(i):\n    hs = [spawn str(i + k) for k in range(5)]\n    if i % 3 == 0:\n"
           "        sleep(0.001)\n    return len([h for h in hs]) + i\n");
    std::atomic<int> good{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 20; ++t)
        ts.emplace_back([&, t] {
            for (int k = 0; k < 30; ++k)
                if (e.call<int>("work", t * 100 + k) == t * 100 + k + 5) ++good;
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(good.load(), 600);
}

TEST(HostThreadCalls, OneWorkerTickerKeepsRunningDuringAHostThreadCall) {
    weft::Engine e(one_worker());
    std::atomic<int> ticks{0};
    e.def("tick", [&] { ++ticks; });
    e.def("ticks", [&] { return ticks.load(); });
    e.exec("def ticker():\n    while True:\n        tick()\n        sleep(0.002)\n"
           "def wait_ticks(n):\n    while ticks() < n:\n        pass\n    return ticks()\n");
    auto f = e.call_async("ticker");
    weft::CallOptions co;
    co.limits = weft::Limits{};
    co.limits->timeout = 20s;
    int base = ticks.load();
    // Spins on this thread without ever parking; the ticker must tick meanwhile.
    EXPECT_GE(e.call_with<int>(co, "wait_ticks", base + 10), base + 10);
    f.cancel();
    ASSERT_TRUE(f.wait_for(10s));
}

// A host function that calls back into Weft, which parks: the task (and the host function's
// frame) ends on a worker. The host thread must still count as a host thread afterwards.
TEST(HostThreadCalls, HostFunctionParkingInACallbackLeavesTheThreadUsable) {
    weft::Engine e(one_worker());
    e.def("via_host", [](weft::Context& cx, weft::Value f, int x) { return cx.call<int>(f, x); });
    e.exec("def nap_double(n):\n    sleep(0.005)\n    return n * 2\n"
           "def outer():\n    return via_host(nap_double, 20)\n");
    EXPECT_EQ(e.call<int>("outer"), 40);
    EXPECT_EQ(e.call<int>("outer"), 40);
    EXPECT_EQ(e.eval<int>("1 + 1"), 2);
}

TEST(HostThreadCalls, ACallFromACatchBlockKeepsTheHostsException) {
    weft::Engine e(one_worker());
    e.exec("def nap():\n    try:\n        raise ValueError('inner')\n    except ValueError:\n        sleep(0.005)\n    return 1\n");
    try {
        throw std::runtime_error("the host's own");
    } catch (const std::exception&) {
        EXPECT_EQ(e.call<int>("nap"), 1);  // parks inside the script's except block
        try {
            throw;
        } catch (const std::runtime_error& x) {
            EXPECT_STREQ(x.what(), "the host's own");
        }
    }
}

TEST(Version, MatchesTheHeader) {
    auto v = weft::version();
    EXPECT_EQ(v.major, WEFT_VERSION_MAJOR);
    EXPECT_EQ(v.minor, WEFT_VERSION_MINOR);
}

}  // namespace
