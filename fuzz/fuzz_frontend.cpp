// fuzz_frontend.cpp — fuzz target for the front end (lexer + parser + diagnostics) and the
// bytecode compiler behind it.
//
// Any input must either compile or raise CompileError; anything else (a crash, another
// exception, a sanitizer report, a hang) is a bug. The compiler runs with the builtin table of
// a real VM (fuzz_builtins), which is created once and never runs code. Built two ways:
//  - with clang and -fsanitize=fuzzer (fuzz/CMakeLists.txt, -DWEFT_FUZZ=ON): a libFuzzer target;
//  - with -DWEFT_FUZZ_SMOKE_MAIN (any compiler): a deterministic driver that runs the seed corpus
//    and a fixed number of seeded random mutations of it, registered as the CTest test
//    `fuzz.frontend_smoke`, so every build (ASan included) exercises the same entry point.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <unordered_map>

#include "compiler/codegen.h"
#include "compiler/diagnostic.h"
#include "compiler/lexer.h"
#include "compiler/parser.h"
#include "stdlib/stdlib.h"
#include "vm/interp.h"

namespace {

// The builtin table of a real VM with the standard library registered, exactly what `weft`
// compiles against: the code generator looks hidden builtins up by name (__race__,
// __select__, ...), so a stand-in list of names would abort on the constructs that use them
// instead of testing them.
const std::unordered_map<std::string, int>& fuzz_builtins() {
    static weft::Vm* vm = [] {
        weft::register_stdlib();
        weft::VmOptions options;
        auto* v = new weft::Vm(options);
        weft::register_stdlib_builtins(*v);
        return v;
    }();
    return vm->builtin_index;
}

size_t g_compiled = 0;  // inputs that compiled cleanly (reported by the smoke driver)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view source(reinterpret_cast<const char*>(data), size);
    try {
        auto mod = weft::parse_module(source, "fuzz.weft");
        weft::GlobalLayout globals;
        weft::CompileOptions options;
        options.builtins = &fuzz_builtins();
        options.repl = size % 2 == 1;  // exercise both modes
        auto chunk = weft::compile_module(*mod, globals, options);
        if (chunk) ++g_compiled;
    } catch (const weft::CompileError& e) {
        std::string text = weft::format_diagnostic(e.diag, source);
        if (text.empty() || e.diag.path != "fuzz.weft") __builtin_trap();
    }
    return 0;
}

#ifdef WEFT_FUZZ_SMOKE_MAIN

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace {

// xorshift64*: a fixed, portable sequence so every run tests the same mutations.
struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 2685821657736338717ULL;
    }
    size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
};

// Fragments that are likely to reach interesting parser states when spliced in.
const char* const kFragments[] = {
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    "\n",
    "\n    ",
    "\t",
    "\\",
    "'",
    "\"",
    "'''",
    "\"\"\"",
    "f'{",
    "f\"{x!r:{w}}\"",
    "#",
    "*",
    "**",
    "=",
    "==",
    "->",
    "@",
    ",",
    ".",
    "...",
    "\xE2\x82\xAC",
    "\xff",
    "\xC3",
    "race:",
    "select:\n    case x = c.recv():\n        pass\n    case after(0.1):\n        pass\n",
    "case c.send(1):",
    "case after(",
    "timeout(",
    "restrict(read=[]):",
    "@effects(read=[])\n",
    "if ",
    "else:",
    "elif ",
    "def ",
    "lambda ",
    "match ",
    "case ",
    "spawn ",
    "lazy ",
    "select:",
    "concurrent:",
    "struct ",
    "actor ",
    "import ",
    "from ",
    " as ",
    "not ",
    " in ",
    " is ",
    "for ",
    "while ",
    "try:",
    "except ",
    "finally:",
    "with ",
    "return ",
    "raise ",
    "0x",
    "1_0",
    "9223372036854775808",
    "250ms",
    "1.5m",
    "r'",
    "b'",
    "_",
    "|",
    "-",
    "~",
    ";",
    "%",
};

std::string mutate(const std::string& in, Rng& rng, const std::vector<std::string>& corpus) {
    std::string s = in;
    int rounds = 1 + static_cast<int>(rng.below(4));
    for (int r = 0; r < rounds; ++r) {
        switch (rng.below(7)) {
            case 0:  // flip a byte
                if (!s.empty()) s[rng.below(s.size())] = static_cast<char>(rng.next() & 0xFF);
                break;
            case 1: {  // insert a fragment
                const char* f = kFragments[rng.below(sizeof kFragments / sizeof kFragments[0])];
                s.insert(rng.below(s.size() + 1), f);
                break;
            }
            case 2: {  // delete a range
                if (s.empty()) break;
                size_t a = rng.below(s.size());
                s.erase(a, rng.below(std::min<size_t>(16, s.size() - a) + 1));
                break;
            }
            case 3: {  // duplicate a range
                if (s.empty()) break;
                size_t a = rng.below(s.size());
                size_t n = rng.below(std::min<size_t>(64, s.size() - a) + 1);
                s.insert(rng.below(s.size() + 1), s.substr(a, n));
                break;
            }
            case 4: {  // splice with another corpus entry
                const std::string& o = corpus[rng.below(corpus.size())];
                if (o.empty()) break;
                size_t a = rng.below(o.size());
                s.insert(rng.below(s.size() + 1), o.substr(a, rng.below(o.size() - a + 1)));
                break;
            }
            case 5:  // truncate (exercises "incomplete" paths)
                s.resize(rng.below(s.size() + 1));
                break;
            default: {  // deep nesting
                size_t n = 1 + rng.below(400);
                const char* open = rng.below(2) ? "(" : "[";
                std::string pre;
                for (size_t i = 0; i < n; ++i)
                    pre += open;
                s.insert(rng.below(s.size() + 1), pre);
                break;
            }
        }
    }
    return s;
}

}  // namespace

// Usage: weft_fuzz_smoke CORPUS_DIR [MUTATIONS]
int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS]\n", argv[0]);
        return 2;
    }
    size_t mutations = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 4000;
    std::vector<std::string> corpus;
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
        if (entry.is_regular_file()) paths.push_back(entry.path());
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
        std::ifstream f(p, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        corpus.push_back(ss.str());
    }
    if (corpus.empty()) {
        std::fprintf(stderr, "empty corpus %s\n", argv[1]);
        return 2;
    }
    auto run = [](const std::string& s) {
        auto t0 = std::chrono::steady_clock::now();
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
        double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (dt > 2.0) {
            std::fprintf(stderr, "input of %zu bytes took %.2fs\n", s.size(), dt);
            std::exit(1);
        }
    };
    for (const auto& s : corpus)
        run(s);
    Rng rng{0x9E3779B97F4A7C15ULL};
    for (size_t i = 0; i < mutations; ++i) {
        run(mutate(corpus[rng.below(corpus.size())], rng, corpus));
    }
    std::printf("fuzz smoke: %zu corpus inputs, %zu mutations (%zu compiled), no crash\n",
                corpus.size(), mutations, g_compiled);
    return 0;
}

#endif  // WEFT_FUZZ_SMOKE_MAIN
