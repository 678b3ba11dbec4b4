// test_runner.cpp — `weft test`: collects the `test_*` functions of `*_test.weft` files, runs
// each (filtered by -k, bounded by a per-test timeout), and reports as pytest does: a line per
// test with its time, the traceback of each failure, a summary, and the exit status (0 all
// passed, 1 a failure, 2 a compile error or a missing path, 5 nothing collected).
//
// Each test runs as the main task of its own runtime entry, inside a cancel scope with the
// timeout as deadline, so a hanging test is cancelled (its `finally` blocks run) and fails with
// TimeoutError instead of stopping the run. A failed `assert a == b` names both values: the
// compiler builds the message of a failed comparison assert (compiler/codegen.cpp).

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "compiler/parser.h"
#include "vm/collections.h"
#include "vm/capabilities.h"
#include "vm/interp.h"
#include "vm/pending.h"
#include "weft/runtime/errors.hpp"
#include "weft/runtime/scope.hpp"

namespace weft {

namespace {


std::string format_ms(double seconds) {
    char buf[32];
    if (seconds < 1) snprintf(buf, sizeof buf, "%.1f ms", seconds * 1e3);
    else snprintf(buf, sizeof buf, "%.2f s", seconds);
    return buf;
}

}  // namespace

int Vm::run_tests(const TestOptions& opts) {
    VmScope scope(this);
    namespace fs = std::filesystem;
    using Clock = std::chrono::steady_clock;
    auto run_start = Clock::now();
    std::vector<std::string> files;
    for (auto& p : opts.paths) {
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            std::vector<std::string> found;
            for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
                 it != fs::recursive_directory_iterator(); it.increment(ec)) {
                std::string name = it->path().filename().string();
                if (it->is_regular_file(ec) && name.size() > 10 && name.compare(name.size() - 10, 10, "_test.weft") == 0)
                    found.push_back(it->path().string());
            }
            std::sort(found.begin(), found.end());
            files.insert(files.end(), found.begin(), found.end());
        } else if (fs::exists(p, ec)) {
            files.push_back(p);
        } else {
            fprintf(stderr, "weft test: no such file or directory: %s\n", p.c_str());
            return 2;
        }
    }
    int passed = 0, failed = 0, deselected = 0;
    for (auto& f : files) {
        std::string source;
        if (!read_source_file(f, source)) {
            fprintf(stderr, "weft test: cannot read %s\n", f.c_str());
            return 2;
        }
        sources_->add(f);  // a test file is a program: its sources are its own to read and import
        sources_->set_root(fs::path(canonical_path(f)).parent_path().string());
        auto* m = new ModuleObj();
        m->name = fs::path(f).stem().string();
        m->path = f;
        {
            std::lock_guard<std::mutex> g(modules_mu_);
            modules_[f] = m;  // owned (freed) by the Vm like any module
        }
        Proto* p;
        std::unique_ptr<ast::Module> ast;
        try {
            p = compile_into(*m, source, false, &ast);
        } catch (CompileError& e) {
            if (e.diag.path.empty()) e.diag.path = f;
            return report_compile_error(e, source);
        }
        std::unordered_set<std::string> seen;
        if (int rc = check_imports(*ast, f, source, seen)) return rc;
        // Select this file's tests before running it: a file with none selected is not run.
        std::vector<std::string> names;
        for (auto& name : m->layout.names) {
            if (name.rfind("test_", 0) != 0) continue;
            if (!opts.pattern.empty() && (f + "::" + name).find(opts.pattern) == std::string::npos) {
                ++deselected;
                continue;
            }
            names.push_back(name);
        }
        if (names.empty()) continue;
        try {
            in_runtime([&] { main_->run_module_chunk(m, p); });
        } catch (WeftError& e) {
            flush_stdout();
            fprintf(stderr, "ERROR %s (while loading)\n", f.c_str());
            report_uncaught(main_->error_value(e));
            ++failed;
            continue;
        } catch (...) {
            flush_stdout();
            fprintf(stderr, "ERROR %s (while loading)\n", f.c_str());
            report_uncaught(main_->runtime_error_value(std::current_exception()));
            ++failed;
            continue;
        }
        for (auto& name : names) {
            Value found;
            const Value* fn = m->find(name, found) ? &found : nullptr;
            if (!fn || !fn->is(ObjType::Function)) continue;  // a test_ global that is not a function
            Value err;
            auto start = Clock::now();
            try {
                Value test = *fn;
                in_runtime([&] {
                    if (opts.timeout <= 0) {
                        main_->call(test, {});
                        return;
                    }
                    // The deadline cancels the test (its finally blocks run); the Cancelled it
                    // raises, as a Weft error or a runtime one, becomes TimeoutError here.
                    rt::CancelScopeOptions o;
                    o.timeout = opts.timeout;
                    bool expired = false;
                    {
                        rt::CancelScope cs(o);
                        try {
                            main_->call(test, {});
                        } catch (WeftError& e) {
                            if (!cs.deadline_expired() || !is_cancelled_value(main_->error_value(e))) throw;
                            expired = true;
                        } catch (const rt::Cancelled&) {
                            if (!cs.deadline_expired()) throw;
                            expired = true;
                        }
                    }
                    if (expired)
                        throw WeftError(ErrorKind::TimeoutError, "test " + name + " did not finish within " +
                                                                     format_ms(opts.timeout) + " (weft test --timeout)");
                });
            } catch (WeftError& e) {
                err = main_->error_value(e);
            } catch (...) {
                err = main_->runtime_error_value(std::current_exception());
            }
            double secs = std::chrono::duration<double>(Clock::now() - start).count();
            flush_stdout();
            printf("%s %s::%s (%s)\n", err.is_none() ? "PASS" : "FAIL", f.c_str(), name.c_str(), format_ms(secs).c_str());
            fflush(stdout);
            if (err.is_none()) {
                ++passed;
            } else {
                report_uncaught(err);
                ++failed;
            }
        }
    }
    flush_stdout();
    double total = std::chrono::duration<double>(Clock::now() - run_start).count();
    if (passed + failed == 0) {
        printf("no tests collected%s in %s\n",
               deselected ? (" (" + std::to_string(deselected) + " deselected by -k)").c_str() : "",
               format_ms(total).c_str());
        fflush(stdout);
        return 5;
    }
    std::string summary = std::to_string(passed) + " passed, " + std::to_string(failed) + " failed";
    if (deselected) summary += ", " + std::to_string(deselected) + " deselected";
    printf("%s in %s\n", summary.c_str(), format_ms(total).c_str());
    fflush(stdout);
    return failed ? 1 : 0;
}

}  // namespace weft
