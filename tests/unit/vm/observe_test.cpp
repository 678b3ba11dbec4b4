// The observability helpers that need no interpreter: the progress bar's line
// (vm/progress.cpp) and the slices --trace-out makes of runtime trace events (vm/trace_out.cpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "vm/progress.h"
#include "vm/trace_out.h"

using namespace weft;

TEST(ProgressBar, RendersCountsPercentRateAndEta) {
    EXPECT_EQ(ProgressBar::render("parallel_map", 0, 4, 0.0, 8),
              "parallel_map [........] 0/4   0% 0.0/s ETA ?");
    EXPECT_EQ(ProgressBar::render("parallel_map", 2, 4, 1.0, 8),
              "parallel_map [####....] 2/4  50% 2.0/s ETA 1s");
    EXPECT_EQ(ProgressBar::render("p", 4, 4, 90.0, 4), "p [####] 4/4 100% 0.0/s in 1m30s");
}

TEST(ProgressBar, DrawsNothingWhenStderrIsNotATerminal) {
    // Under ctest stderr is a pipe or a file; the bar must stay inactive and silent.
    if (isatty(2)) GTEST_SKIP() << "stderr is a terminal";
    ProgressBar bar("x", 10, true);
    EXPECT_FALSE(bar.active());
    bar.tick();
    bar.finish();
}

namespace {

rt::TraceEvent ev(rt::TraceKind k, std::uint64_t task, int worker, std::int64_t us,
                  const char* what = nullptr) {
    return rt::TraceEvent{k, task, worker, us * 1000, what};
}

int count(const std::string& s, const std::string& sub) {
    int n = 0;
    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + 1))
        ++n;
    return n;
}

}  // namespace

TEST(TraceOut, InlineRunCutsTheForcersSliceAndResumesIt) {
    TraceOut t;
    auto hook = t.hook();  // outside a runtime: no labels, so slices are named task#ID
    using K = rt::TraceKind;
    hook(ev(K::Started, 1, 0, 0));
    hook(ev(K::Started, 2, 0, 10));  // task 2 forced inline by task 1
    hook(ev(K::Done, 2, 0, 30));     // task 1 carries on
    hook(ev(K::Blocked, 1, 0, 40, "channel recv"));
    hook(ev(K::Resumed, 1, 1, 50));  // on another worker
    hook(ev(K::Done, 1, 1, 60));
    std::string j = t.json();
    EXPECT_EQ(count(j, "\"ph\":\"X\""), 4);
    EXPECT_NE(j.find("\"tid\":1,\"ts\":0.000,\"dur\":10.000,\"name\":\"task#1\""),
              std::string::npos)
        << j;
    EXPECT_NE(j.find("\"tid\":1,\"ts\":10.000,\"dur\":20.000,\"name\":\"task#2\""),
              std::string::npos)
        << j;
    EXPECT_NE(j.find("\"tid\":1,\"ts\":30.000,\"dur\":10.000,\"name\":\"task#1\""),
              std::string::npos)
        << j;
    EXPECT_NE(j.find("blocked on channel recv"), std::string::npos);
    EXPECT_NE(j.find("\"tid\":2,\"ts\":50.000,\"dur\":10.000,\"name\":\"task#1\""),
              std::string::npos)
        << j;
    EXPECT_EQ(count(j, "\"thread_name\""), 2);  // both workers' tracks are named
}

TEST(TraceOut, SliceStillOpenAtTheEndIsClosedThere) {
    TraceOut t;
    auto hook = t.hook();
    hook(ev(rt::TraceKind::Started, 7, 0, 0));
    hook(ev(rt::TraceKind::Created, 8, 0, 5));
    std::string j = t.json();
    EXPECT_NE(j.find("still running at exit"), std::string::npos) << j;
    EXPECT_EQ(count(j, "\"ph\":\"s\""), 0);  // no spawner known outside a runtime: no arrow
}
