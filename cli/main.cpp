// main.cpp — the `weft` command: run, -e, check, the REPL, --help, --version.
//
// Flags may come before or after the subcommand and end at the program file;
// everything after the file belongs to the program (`args`).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/repl.h"
#ifdef WEFT_HAVE_CLUSTER
#include "cluster/cluster.h"
#endif
#include "cli/signals.h"
#include "compiler/codegen.h"
#include "compiler/lisp/lower.h"
#include "compiler/parser.h"
#include "embed/program.h"
#include "stdlib/stdlib.h"
#include "vm/interp.h"
#include "vm/limits.h"
#include "vm/trace_out.h"

namespace {

const char* kHelp = R"(weft — a concurrent-by-default scripting language

Usage:
  weft [flags] run FILE [ARGS...]   run a program (ARGS become `args`)
  weft [flags] FILE [ARGS...]       same as `weft run FILE`
  weft [flags] -e CODE [ARGS...]    run CODE given on the command line
  weft [flags] - [ARGS...]          run the program read from standard input (also
                                    `weft < prog.weft`: stdin not a terminal)
  weft check FILE                   compile FILE without running it (syntax and name errors)
  weft test [-k PATTERN] [--timeout D] [PATH...]
                                    run the test_* functions of every *_test.weft file under
                                    PATH (`weft test --help`)
  weft dis FILE                     print the bytecode of FILE
  weft worker --cluster URL [...]   serve a cluster: run its remote tasks (`weft worker --help`,
                                    docs/cluster.md)
  weft cluster status --cluster URL list a cluster's live workers, pools and queued tasks
  weft                              interactive REPL on a terminal (line editing, history in
                                    ~/.weft_history; Ctrl-C cancels, Ctrl-D or exit() leaves)
  weft --help | --version           --version prints the version and the git commit

Flags:
  --workers N            worker threads that run tasks (default: one per core; 1 runs
                         every task on one thread, interleaved at waits and safepoints)
  --lisp                 -e CODE, standard input and the REPL are Lisp (.wlisp files always
                         are; docs/language/lisp.md)
  --sequential           no implicit deferral of calls: everything runs in program order
                         (spawn still starts tasks)
  --default-timeout D    bound every wait that has no timeout of its own (forcing a task,
                         recv, send, select, ...) to D (30s, 500ms, 2m); exceeding it raises
                         TimeoutError. Also set_default_timeout(d) in a program
  --max-tasks N          at most N live tasks: starting one more raises Error (--max-tasks)
                         at the spawn instead of exhausting memory (default: no limit)
  --trace                one line per task event on stderr (created, started, blocked, done)
  --trace-out FILE.json  write a Chrome/Perfetto trace of the run (ui.perfetto.dev): a track
                         per worker, a slice per task run, arrows from spawner to spawned
  --stats                a summary on stderr at exit: tasks (and the peak alive at once),
                         inline runs, context switches, steals, time blocked by cause
  --max-depth N          call depth before RecursionError (default 200000; also
                         set_recursion_limit(n) in a program)
  --allow-net[=HOSTS] --allow-read[=PATHS] --allow-write[=PATHS]
  --allow-run[=PROGRAMS] --allow-env[=NAMES] -A/--allow-all
                         capabilities (the guide: docs/language/capabilities.md)
  --cluster URL          the NATS server of the program's cluster (nats://HOST:PORT; also
                         WEFT_CLUSTER): parallel_map(f, xs, cluster=True) runs on its workers
  --cluster-name NAME    the cluster on that server (default weft)

Exit status: 0 success, 1 uncaught error (a traceback is printed on stderr),
2 compile error (file:line:col: message), a missing or unreadable program or module, or a
bad command line; exit(code) exits with code.

Documentation: docs/language/README.md
)";

const char* kTestHelp = R"(Usage: weft [flags] test [options] [PATH...]

Runs every test_* function of each *_test.weft file under PATH (files or folders; default
the current folder), each as the program's main task, and reports a line per test with its
time, the traceback of each failure (a failed `assert a == b` shows both values) and a summary.

Options:
  -k PATTERN     only the tests whose FILE::NAME contains PATTERN
  --timeout D    fail a test that runs longer than D (30s, 500ms, 2m; default 60s; 0 = no
                 limit); a single function can have its own bound with @timeout(D)
  -h, --help     this help

Exit status: 0 all passed, 1 a test failed, 2 a compile error or a missing PATH,
5 no test collected.
)";

struct Cli {
    std::string command;  // run, eval, check, dis, repl
    std::string file;
    std::string code;
    std::string trace_out;  // --trace-out FILE
    std::string cluster_url;   // --cluster URL (docs/cluster.md)
    std::string cluster_name;  // --cluster-name NAME
    std::vector<std::string> args;
    weft::Vm::TestOptions test;  // `weft test`
    // The Engine the program runs in (cli/ is the first embedder: docs/embedding.md), built
    // from the flags; the --allow-* flags as given, checked while parsing.
    weft::api::EngineOptions engine;
    weft::api::detail::ProgramSettings program;
    std::vector<std::string> cap_flags;
};

int usage_error(const std::string& msg) {
    fprintf(stderr, "weft: %s\nTry 'weft --help'.\n", msg.c_str());
    return 2;
}

using weft::limits::parse_duration;  // "15s", "500ms", "2m" (vm/limits.h)

// The options and paths of `weft test`, from argv[i] on. Returns -1 when parsing succeeded,
// else an exit status.
int parse_test_args(int argc, char** argv, int i, weft::Vm::TestOptions& t) {
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            fputs(kTestHelp, stdout);
            return 0;
        }
        if (a == "-k" || a.rfind("-k=", 0) == 0) {
            if (a == "-k" && i + 1 >= argc) return usage_error("test -k needs a PATTERN");
            t.pattern = a == "-k" ? argv[++i] : a.substr(3);
            continue;
        }
        if (a == "--timeout" || a.rfind("--timeout=", 0) == 0) {
            if (a == "--timeout" && i + 1 >= argc) return usage_error("test --timeout needs a duration like 30s");
            std::string v = a == "--timeout" ? argv[++i] : a.substr(10);
            if (!parse_duration(v, t.timeout) || t.timeout < 0)
                return usage_error("test --timeout needs a duration like 30s, got '" + v + "'");
            continue;
        }
        if (a.size() > 1 && a[0] == '-') return usage_error("unknown option of weft test '" + a + "'");
        t.paths.push_back(a);
    }
    if (t.paths.empty()) t.paths.push_back(".");
    return -1;
}

// Returns -1 when parsing succeeded, else an exit status.
int parse(int argc, char** argv, Cli& cli) {
    int i = 1;
    auto value = [&](const std::string& flag, std::string& out) -> bool {
        std::string a = argv[i];
        auto eq = a.find('=');
        if (eq != std::string::npos) {
            out = a.substr(eq + 1);
            return true;
        }
        if (i + 1 >= argc) return false;
        out = argv[++i];
        return true;
    };
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            fputs(kHelp, stdout);
            return 0;
        }
        if (a == "--version" || a == "-V") {
            printf("weft %s\n", weft::version_string().c_str());
            return 0;
        }
        if (a == "-e") {
            if (i + 1 >= argc) return usage_error("-e needs CODE");
            cli.command = "eval";
            cli.code = argv[++i];
            // `weft -e '(...)' --lisp`: the flag may also follow the code.
            if (i + 1 < argc && std::string(argv[i + 1]) == "--lisp") {
                cli.program.lisp = true;
                ++i;
            }
            for (++i; i < argc; ++i) cli.args.push_back(argv[i]);
            return -1;
        }
        if (a.rfind("--workers", 0) == 0 || a.rfind("--max-tasks", 0) == 0 || a.rfind("--max-depth", 0) == 0) {
            std::string v;
            if (!value(a, v)) return usage_error(a + " needs a number");
            char* end;
            long n = strtol(v.c_str(), &end, 10);
            if (*end || n <= 0) return usage_error(a.substr(0, a.find('=')) + " needs a positive number, got '" + v + "'");
            if (a.rfind("--max-depth", 0) == 0) cli.engine.limits.max_depth = size_t(n);
            if (a.rfind("--workers", 0) == 0) cli.engine.workers = unsigned(std::min(n, 1024L));
            if (a.rfind("--max-tasks", 0) == 0) cli.engine.limits.max_tasks = size_t(n);
            continue;
        }
        if (a.rfind("--default-timeout", 0) == 0) {
            std::string v;
            double d;
            if (!value(a, v) || !parse_duration(v, d) || d < 0)
                return usage_error("--default-timeout needs a duration like 30s");
            cli.engine.default_timeout = d;
            continue;
        }
        if (a == "-A" || a.rfind("--allow-", 0) == 0) {
            std::string err;
            weft::CapabilitySet probe;
            if (!weft::parse_capability_flag(a, probe, err))
                return usage_error(err.empty() ? "unknown flag '" + a + "'" : err);
            cli.cap_flags.push_back(a);
            continue;
        }
        if (a == "--stats") {
            cli.program.stats = true;
            continue;
        }
        if (a == "--cluster-name" || a.rfind("--cluster-name=", 0) == 0) {
            if (!value(a, cli.cluster_name) || cli.cluster_name.empty()) return usage_error("--cluster-name needs a name");
            continue;
        }
        if (a == "--cluster" || a.rfind("--cluster=", 0) == 0) {
            if (!value(a, cli.cluster_url) || cli.cluster_url.empty()) return usage_error("--cluster needs a URL like nats://127.0.0.1:4222");
            continue;
        }
        if (a == "--trace") {
            cli.program.trace = true;
            continue;
        }
        if (a == "--lisp") {
            cli.program.lisp = true;  // -e, stdin and the REPL read Lisp (docs/language/lisp.md)
            continue;
        }
        if (a == "--sequential") {
            cli.engine.sequential = true;
            continue;
        }
        if (a.rfind("--trace-out", 0) == 0) {
            std::string v;
            if (!value(a, v) || v.empty()) return usage_error("--trace-out needs a file name (FILE.json)");
            // `weft --trace-out prog.weft` (the name forgotten) would take the program for the
            // trace file and overwrite it after the run.
            bool looks_like_program = v == "run" || v == "check" || v == "test" || v == "dis" || v == "-e" ||
                                      (v.size() > 5 && v.compare(v.size() - 5, 5, ".weft") == 0) ||
                                      (v.size() > 6 && v.compare(v.size() - 6, 6, ".wlisp") == 0) ||
                                      (v.size() > 1 && v[0] == '-');
            if (looks_like_program)
                return usage_error("--trace-out needs a file name (FILE.json) before the program, got '" + v + "'");
            cli.trace_out = v;
            continue;
        }
        if (a.size() > 1 && a[0] == '-') return usage_error("unknown flag '" + a + "'");
        if (cli.command.empty() && (a == "run" || a == "check" || a == "dis")) {
            cli.command = a;
            continue;
        }
        if (cli.command.empty() && a == "test") {
            cli.command = "test";
            return parse_test_args(argc, argv, i + 1, cli.test);
        }
        if (cli.command.empty()) cli.command = "run";
        cli.file = a;
        for (++i; i < argc; ++i) cli.args.push_back(argv[i]);
        return -1;
    }
    if (cli.command.empty()) {
        cli.command = "repl";
        return -1;
    }
    return usage_error("'" + cli.command + "' needs a FILE");
}

int disassemble_file(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return usage_error("cannot open '" + path + "': Is a directory");
    std::ifstream f(path, std::ios::binary);
    if (!f) return usage_error("cannot open '" + path + "'");
    std::stringstream ss;
    ss << f.rdbuf();
    std::string src = ss.str();
    try {
        bool lisp = weft::lisp::is_lisp_path(path);  // a .wlisp file: lowered, sequential
        auto ast = lisp ? weft::lisp::parse_lisp_module(src, path, weft::lisp::LowerOptions{})
                        : weft::parse_module(src, path);
        weft::VmOptions o;
        weft::Vm vm(o);
        weft::register_stdlib_builtins(vm);
        weft::GlobalLayout g;
        weft::CompileOptions co;
        co.sequential = lisp;
        co.builtins = &vm.builtin_index;
        auto chunk = weft::compile_module(*ast, g, co);
        fputs(weft::disassemble(*chunk).c_str(), stdout);
    } catch (weft::CompileError& e) {
        if (e.diag.path.empty()) e.diag.path = path;
        fputs(weft::format_diagnostic(e.diag, src).c_str(), stderr);
        return 2;
    }
    return 0;
}

}  // namespace

// Opens the --trace-out file for writing before the program runs, so that a path that cannot
// be written is reported at once (status 2) rather than after a long run. Returns false
// with the reason.
bool trace_out_writable(const std::string& path, std::string& err) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        err = "Is a directory";
        return false;
    }
    FILE* f = fopen(path.c_str(), "ab");  // "a": an existing trace stays until the new one is written
    if (!f) {
        err = strerror(errno);
        return false;
    }
    fclose(f);
    return true;
}

// Reads the whole program from standard input (`weft -`, or `weft < prog.weft`).
std::string read_stdin() {
    std::string src;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) src.append(buf, n);
    return src;
}

int main(int argc, char** argv) {
    // `weft worker ...` and `weft cluster status ...` have options of their own (cluster/).
    if (argc > 1 && (std::string(argv[1]) == "worker" || std::string(argv[1]) == "cluster")) {
#ifdef WEFT_HAVE_CLUSTER
        weft::cluster::set_version(weft::version_string());
        return std::string(argv[1]) == "worker" ? weft::cluster::worker_main(argc - 1, argv + 1)
                                                : weft::cluster::cluster_command_main(argc - 1, argv + 1);
#else
        return usage_error("this weft was built without cluster support (install libnats-dev and rebuild)");
#endif
    }
    Cli cli;
    int status = parse(argc, argv, cli);
    if (status >= 0) return status;
    weft::register_stdlib();
#ifdef WEFT_HAVE_CLUSTER
    weft::cluster::register_cluster();
    weft::cluster::set_version(weft::version_string());
    if (cli.cluster_url.empty() && getenv("WEFT_CLUSTER")) cli.cluster_url = getenv("WEFT_CLUSTER");
#else
    if (!cli.cluster_url.empty()) return usage_error("--cluster: this weft was built without cluster support (libnats)");
#endif
    // A program on stdin: `weft -`, or `weft` with stdin not a terminal (a pipe or a file)
    // runs it as a program, not as REPL lines.
    bool from_stdin = (cli.command == "run" && cli.file == "-") || (cli.command == "repl" && !isatty(0));
    if (from_stdin) {
        cli.command = "stdin";
        cli.file = "<stdin>";
    }
    if (cli.command == "dis") return disassemble_file(cli.file);
    if (!cli.trace_out.empty() && cli.command != "check") {
        std::string err;
        if (!trace_out_writable(cli.trace_out, err))
            return usage_error("--trace-out: cannot write '" + cli.trace_out + "': " + err);
    }
    // `weft run` is an Engine built from the flags, running the program with run_program.
    cli.engine.args = cli.args;
    cli.engine.capabilities = weft::api::Capabilities::from_flags(cli.cap_flags);
    cli.program.install_signal_handlers = true;  // a fiber-stack overflow is reported by name
    cli.program.program = cli.command == "eval" ? "-e" : cli.command == "stdin" ? "-" : cli.file;
    cli.engine.name = cli.program.program;
    // The recorder outlives the Engine (and so the runtime that calls its hook); the file is
    // written once the runtime has stopped, with every task ended.
    weft::TraceOut trace_out;
    if (!cli.trace_out.empty()) cli.program.trace_hook = trace_out.hook();
    int rc;
    // SIGINT/SIGTERM cancel a running program and its cleanup runs (cli/signals.cpp). Set up
    // before the Engine starts any thread; the REPL handles Ctrl-C itself.
    bool program = cli.command == "run" || cli.command == "eval" || cli.command == "stdin";
    weft::ProgramSignals signals(program);
    {
        weft::api::Engine engine(std::move(cli.engine), cli.program);
        // check, test and the REPL are commands of the command line, not Engine calls: they
        // work on the Engine's Vm (embed/program.h).
        weft::Vm& vm = weft::api::detail::engine_vm(engine);
        signals.attach(&vm);
#ifdef WEFT_HAVE_CLUSTER
        if (!cli.cluster_url.empty())
            weft::cluster::enable_driver(vm, cli.cluster_url, cli.cluster_name, cli.trace_out.empty() ? nullptr : &trace_out);
#endif
        if (cli.command == "check")
            rc = vm.check_file(cli.file);
        else if (cli.command == "eval")
            rc = engine.run_program_source(cli.code, "<string>");
        else if (cli.command == "stdin")
            rc = engine.run_program_source(read_stdin(), "<stdin>");
        else if (cli.command == "repl")
            rc = weft::run_repl(vm);
        else if (cli.command == "test")
            rc = vm.run_tests(cli.test);
        else
            rc = engine.run_program(cli.file);
        rc = signals.finish(rc);
        signals.attach(nullptr);
    }
#ifdef WEFT_HAVE_CLUSTER
    weft::cluster::finish_driver(cli.program.stats);
#endif
    if (!cli.trace_out.empty() && cli.command != "check") {
        std::string err;
        if (!trace_out.write(cli.trace_out, err)) {
            fprintf(stderr, "weft: cannot write the trace to '%s': %s\n", cli.trace_out.c_str(), err.c_str());
            if (rc == 0) rc = 1;
        }
    }
    return rc;
}
