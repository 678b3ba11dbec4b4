// examples/embed/control.cpp — capabilities, limits, interrupts, asynchronous calls and output.
#include <weft/weft.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

using namespace std::chrono_literals;

int main() {
    weft::EngineOptions options;
    options.workers = 2;
    options.capabilities = weft::Capabilities::none().allow_env("HOME");  // default: none at all
    options.limits.timeout = 2000ms;                                      // every call
    options.stdout_sink = [](std::string_view text) { std::cout << "[script] " << text; };
    weft::Engine engine(options);

    engine.exec(R"(
import fs

def spin():
    while True:
        pass

def peek(path):
    return fs.read_file(path)
)");

    // Capabilities: the Engine's scripts may not read files.
    try {
        engine.call("peek", "/etc/hostname");
    } catch (const weft::ScriptError& e) {
        std::cout << e.kind() << "\n";  // PermissionDenied
    }

    // A per-call limit (narrower than the Engine's): LimitExceeded, not catchable by the script.
    weft::CallOptions quick;
    quick.limits = weft::Limits{};
    quick.limits->timeout = 50ms;
    try {
        engine.call_with(quick, "spin");
    } catch (const weft::LimitExceeded& e) {
        std::cout << "time limit\n";
    }

    // call_async returns a Future; interrupt() stops every running call from any thread.
    auto running = engine.call_async("spin");
    std::thread([handle = engine.interrupt_handle()] {
        std::this_thread::sleep_for(30ms);
        handle.interrupt();
    }).join();
    try {
        running.get();
    } catch (const weft::Interrupted&) {
        std::cout << "interrupted\n";
    }

    // The Engine is usable afterwards; print() goes to the sink.
    engine.exec("print('still here', 6 * 7)");
    auto sum = engine.call_async<int>("sum", std::vector<int>{1, 2, 3});
    std::cout << "sum " << sum.get() << "\n";
    return 0;
}
