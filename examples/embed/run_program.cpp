// examples/embed/run_program.cpp — a host that runs whole Weft programs as `weft run` does.
//
// Engine::run_program is the call the `weft` command line itself is built on: the program is
// its own main module, errors are reported (not thrown) and the result is an exit status.
#include <weft/weft.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

using namespace std::chrono_literals;

int main() {
    std::string diagnostics;  // what `weft run` would print on standard error
    weft::EngineOptions options;
    options.workers = 2;
    options.args = {"world"};  // the program's `args`
    options.stdout_sink = [](std::string_view text) { std::fwrite(text.data(), 1, text.size(), stdout); };
    options.stderr_sink = [&](std::string_view text) { diagnostics += text; };

    {
        weft::Engine engine(options);
        int status = engine.run_program_source("print('hello,', args[0])\n", "greet.weft");
        std::printf("status %d\n", status);
    }
    {
        // An uncaught error: its traceback goes to the stderr sink; the status is 1.
        weft::Engine engine(options);
        int status = engine.run_program_source("def ratio(a, b):\n    return a / b\n\nratio(1, 0)\n", "ratio.weft");
        std::string last = diagnostics.substr(diagnostics.rfind('\n', diagnostics.size() - 2) + 1);
        std::printf("status %d: %s", status, last.c_str());
    }
    {
        // interrupt() stops a program as Ctrl-C stops `weft run`: its cleanup runs, status 130.
        weft::Engine engine(options);
        std::thread stopper([&] {
            std::this_thread::sleep_for(200ms);
            engine.interrupt();
        });
        int status = engine.run_program_source(
            "try:\n    while True:\n        sleep(0.01)\nfinally:\n    print('cleaned up')\n", "serve.weft");
        stopper.join();
        std::printf("status %d\n", status);
    }
}
