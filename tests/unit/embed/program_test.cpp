// Engine::run_program, the call the `weft` command line is built on: a program file as the
// Engine's main module, with the command line's exit statuses and its diagnostics sent to the
// Engine's stderr sink. Every wait is bounded.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "weft/weft.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A fresh folder with a program file in it; removed with the fixture.
class Program : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("weft_program_" + std::to_string(getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string write(const std::string& name, const std::string& text) {
        std::string path = (dir_ / name).string();
        std::ofstream(path) << text;
        return path;
    }
    // Options whose output is kept in out/err (the sinks may be called from any thread).
    weft::EngineOptions options(unsigned workers = 2) {
        weft::EngineOptions o;
        o.workers = workers;
        o.stdout_sink = [this](std::string_view s) {
            std::lock_guard<std::mutex> g(mu_);
            out_ += s;
        };
        o.stderr_sink = [this](std::string_view s) {
            std::lock_guard<std::mutex> g(mu_);
            err_ += s;
        };
        return o;
    }
    std::string out() {
        std::lock_guard<std::mutex> g(mu_);
        return out_;
    }
    std::string err() {
        std::lock_guard<std::mutex> g(mu_);
        return err_;
    }
    fs::path dir_;

  private:
    std::mutex mu_;
    std::string out_, err_;
};

TEST_F(Program, RunsAFileWithItsImportsAndArgs) {
    write("helper.weft", "def twice(x):\n    return 2 * x\n");
    std::string main = write("main.weft", "import \"./helper.weft\" as helper\nprint(helper.twice(21), args)\n");
    auto o = options();
    o.args = {"a", "b"};
    weft::Engine e(o);
    EXPECT_EQ(e.run_program(main), 0);
    EXPECT_EQ(out(), "42 ['a', 'b']\n");
    EXPECT_EQ(err(), "");
}

TEST_F(Program, UncaughtErrorIsStatusOneWithATraceback) {
    std::string path = write("boom.weft", "def f(x):\n    return 1 / x\n\nf(0)\n");
    weft::Engine e(options());
    EXPECT_EQ(e.run_program(path), 1);
    std::string text = err();
    EXPECT_NE(text.find("Traceback (most recent call last):"), std::string::npos) << text;
    EXPECT_NE(text.find("boom.weft:2"), std::string::npos) << text;
    EXPECT_NE(text.find("ZeroDivisionError: division by zero"), std::string::npos) << text;
}

TEST_F(Program, CompileErrorIsStatusTwoWithLineAndColumn) {
    std::string path = write("bad.weft", "x = 1\ny = (2 +\n");
    weft::Engine e(options());
    EXPECT_EQ(e.run_program(path), 2);
    EXPECT_NE(err().find("bad.weft:"), std::string::npos) << err();
    EXPECT_EQ(out(), "");
}

TEST_F(Program, MissingFileIsStatusTwo) {
    weft::Engine e(options());
    EXPECT_EQ(e.run_program((dir_ / "nope.weft").string()), 2);
    EXPECT_NE(err().find("cannot open"), std::string::npos) << err();
}

TEST_F(Program, ExitSetsTheStatus) {
    weft::Engine e(options());
    EXPECT_EQ(e.run_program_source("print('bye')\nexit(7)\nprint('not reached')\n", "exit.weft"), 7);
    EXPECT_EQ(out(), "bye\n");
}

TEST_F(Program, OncePerEngine) {
    weft::Engine e(options());
    EXPECT_EQ(e.run_program_source("pass\n"), 0);
    EXPECT_THROW(e.run_program_source("pass\n"), weft::UsageError);
}

TEST_F(Program, CapabilitiesOfTheEngineApply) {
    std::string secret = write("secret.txt", "s3cret");
    std::string prog = "import fs\ntry:\n    print(fs.read_file('" + secret +
                       "'))\nexcept PermissionDenied:\n    print('denied')\n";
    {
        weft::Engine e(options());
        EXPECT_EQ(e.run_program_source(prog, "caps.weft"), 0);
    }
    auto o = options();
    o.capabilities = weft::Capabilities::none().allow_read(dir_.string());
    {
        weft::Engine e(o);
        EXPECT_EQ(e.run_program_source(prog, "caps.weft"), 0);
    }
    EXPECT_EQ(out(), "denied\ns3cret\n");
}

TEST_F(Program, ActorsLeftRunningAreStoppedAtTheEnd) {
    std::string prog =
        "actor Counter:\n"
        "    n: int = 0\n"
        "    def add(self):\n"
        "        self.n += 1\n"
        "        return self.n\n"
        "    def on_stop(self, reason):\n"
        "        print('stopped at', self.n)\n"
        "c = Counter.spawn()\n"
        "c.add()\n"
        "print(c.add())\n";
    weft::Engine e(options());
    EXPECT_EQ(e.run_program_source(prog, "actors.weft"), 0);
    EXPECT_EQ(out(), "2\nstopped at 2\n");
}

// interrupt() stops a running program as Ctrl-C stops `weft run`: KeyboardInterrupt in the
// main task (its cleanup runs), its tasks cancelled, status 130 — with one worker too.
TEST_F(Program, InterruptStopsTheProgramAndItsTasks) {
    for (unsigned workers : {1u, 2u}) {
        weft::Engine e(options(workers));
        std::string prog =
            "def ticker():\n"
            "    while True:\n"
            "        sleep(0.005)\n"
            "t = spawn ticker()\n"
            "try:\n"
            "    print('running')\n"
            "    sleep(60)\n"
            "finally:\n"
            "    print('cleanup')\n";
        auto status = std::async(std::launch::async, [&] { return e.run_program_source(prog, "serve.weft"); });
        std::this_thread::sleep_for(300ms);  // (a sink gets the output when the program ends)
        e.interrupt();
        ASSERT_EQ(status.wait_for(30s), std::future_status::ready) << "the program did not stop on " << workers << " worker(s): " << out();
        EXPECT_EQ(status.get(), 130);
    }
    EXPECT_EQ(out(), "running\ncleanup\nrunning\ncleanup\n");
}

// An interrupt that comes while the program still starts (its main task does not exist yet) is
// delivered as soon as it does: never lost, whatever the moment.
TEST_F(Program, InterruptAtAnyMomentOfTheStartStopsTheProgram) {
    for (int delay_us : {0, 50, 200, 1000, 3000}) {
        weft::Engine e(options(1));
        auto status = std::async(std::launch::async, [&] {
            return e.run_program_source("def spin():\n    while True:\n        sleep(0.01)\nspawn spin()\nspin()\n",
                                        "spin.weft");
        });
        for (int i = 0; i < 10000 && !e.stats().program_running; ++i) std::this_thread::sleep_for(100us);
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        e.interrupt();
        ASSERT_EQ(status.wait_for(30s), std::future_status::ready) << "not stopped, interrupt after " << delay_us << " us";
        EXPECT_EQ(status.get(), 130);
    }
}

// Engine::global(name, module): the globals of a module the scripts imported.
TEST_F(Program, GlobalOfAnImportedModule) {
    write("settings.weft", "limit = 40 + 2\nname = 'prod'\n");
    auto o = options();
    o.module_paths = {dir_.string()};
    o.capabilities = weft::Capabilities::none().allow_env("HOME");
    weft::Engine e(o);
    EXPECT_THROW(e.global("limit", "settings"), weft::UsageError);  // not imported yet
    e.exec("import settings\nx = 1\n");
    EXPECT_EQ(e.global("limit", "settings").as<int>(), 42);
    EXPECT_EQ(e.global("name", "settings").as<std::string>(), "prod");
    EXPECT_TRUE(e.global("missing", "settings").is_none());
    EXPECT_EQ(e.global("x", "__main__").as<int>(), 1);
    EXPECT_EQ(e.capabilities().to_flags(), std::vector<std::string>{"--allow-env=HOME"});
}

}  // namespace
