// gtest main with a watchdog: a runtime test that deadlocks aborts the process with a message
// instead of hanging CI (every wait in the tests is bounded, this is the backstop).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

// libstdc++ is not built with TSan: the reference count of std::exception_ptr uses atomics TSan
// cannot see, so freeing an exception object after another thread read it (through the task's
// error slot) looks like a race. The synchronisation is real (an acq_rel refcount).
extern "C" const char* __tsan_default_suppressions() {
    return "race:std::__exception_ptr::exception_ptr::_M_release\n"
           "race:__cxa_free_exception\n";
}

namespace {
std::atomic<long> g_test_started{0};

class Watchdog : public ::testing::EmptyTestEventListener {
    void OnTestStart(const ::testing::TestInfo&) override {
        g_test_started = std::chrono::steady_clock::now().time_since_epoch().count();
    }
};
}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    ::testing::UnitTest::GetInstance()->listeners().Append(new Watchdog);
    long limit_s = 120;
    if (const char* s = std::getenv("WEFT_TEST_TIMEOUT")) limit_s = std::atol(s);
    std::thread([limit_s] {
        for (;;) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
            long start = g_test_started.load();
            if (start == 0) continue;
            auto now = std::chrono::steady_clock::now().time_since_epoch().count();
            if (now - start > limit_s * 1000000000L) {
                const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
                std::fprintf(stderr, "watchdog: test %s.%s exceeded %ld s, aborting\n",
                             t ? t->test_suite_name() : "?", t ? t->name() : "?", limit_s);
                std::abort();
            }
        }
    }).detach();
    return RUN_ALL_TESTS();
}
