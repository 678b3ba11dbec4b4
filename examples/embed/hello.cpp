// examples/embed/hello.cpp — the smallest useful host: an Engine, Weft code, calls both ways.
#include <weft/weft.hpp>

#include <iostream>
#include <string>
#include <vector>

int main() {
    weft::EngineOptions options;
    options.workers = 2;  // 0: one worker thread per core
    weft::Engine engine(options);

    // A host function: its C++ signature gives the conversions.
    engine.def("greet", [](std::string name) { return "hello, " + name; });

    // Weft code runs in the Engine's main module; its globals stay between calls.
    engine.exec(R"(
def add(a, b):
    return a + b

def shout(names):
    return [greet(n).upper() for n in names]
)");

    std::cout << engine.call<int>("add", 2, 40) << "\n";                 // 42
    std::cout << engine.eval<std::string>("greet('weft')") << "\n";      // hello, weft
    for (auto& s : engine.call<std::vector<std::string>>("shout", std::vector<std::string>{"ada", "bob"}))
        std::cout << s << "\n";                                           // HELLO, ADA / HELLO, BOB

    // An uncaught Weft error is a C++ exception with the error's kind, message and trace.
    try {
        engine.eval("{}['missing']");
    } catch (const weft::ScriptError& e) {
        std::cout << e.kind() << ": " << e.message() << "\n";            // KeyError: 'missing'
    }
    return 0;
}
