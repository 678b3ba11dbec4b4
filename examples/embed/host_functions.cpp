// examples/embed/host_functions.cpp — the three kinds of host functions, a host module and a
// host type. A waiting host function never blocks a worker: its task parks.
#include <weft/weft.hpp>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

struct Counter {
    explicit Counter(int start) : value(start) {}
    int inc(int by) { return value += by; }
    int value;
};

int main() {
    weft::EngineOptions options;
    options.workers = 1;  // one worker: the tasks below still run while host calls wait
    weft::Engine engine(options);

    // sync: runs inline on the worker (keep it short)
    engine.def("square", [](double x) { return x * x; });

    // blocking: runs on the blocking pool; the calling task parks meanwhile
    engine.def_blocking("read_sensor", [](int id) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a slow vendor call
        return 20.0 + id;
    });

    // async: returns at once; any thread resolves the Completion later
    engine.def_async("fetch_user", [](int id, weft::Completion<std::string> done) {
        std::thread([id, done = std::move(done)]() mutable {
            if (done.cancelled()) return;
            done.resolve("user" + std::to_string(id));
        }).detach();
    });

    // C++ exceptions become Weft errors (std::out_of_range: IndexError, weft::Raise: any kind)
    engine.def("quota", [](std::string user) -> int {
        if (user == "eve") throw weft::Raise("PermissionDenied", "no quota for " + user);
        return 10;
    });

    // a host module (`import sensors`) and a host type held by shared_ptr
    engine.module("sensors").def("count", [] { return 4; }).set("UNIT", weft::Value("celsius"));
    engine.def_type<Counter>("Counter").constructor<int>().method("inc", &Counter::inc).property("value",
                                                                                             &Counter::value);

    engine.exec(R"(
import sensors

def report():
    a = fetch_user(1)          # deferred: the two async calls run concurrently
    b = fetch_user(2)
    temps = [read_sensor(i) for i in range(sensors.count())]
    try:
        quota("eve")
    except PermissionDenied as e:
        print("denied:", e)
    return f"{a} {b} {sum(temps)} {sensors.UNIT} {square(1.5)}"

c = Counter(5)
c.inc(2)
)");
    std::cout << engine.call<std::string>("report") << "\n";

    auto counter = engine.global("c").as<std::shared_ptr<Counter>>();  // the same C++ object
    std::cout << "counter " << counter->value << "\n";
    return 0;
}
