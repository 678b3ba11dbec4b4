// Reactor waits: a task waiting for a pipe to become readable parks without blocking its worker.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>

#include "test_support.h"
#include "weft/runtime/reactor.hpp"

using namespace weft::rt;
using weft::rt::testing::RtTest;

class Io : public RtTest {};
WEFT_WORKER_PARAMS(Io);

namespace {
struct Pipe {
    int fds[2];
    Pipe() { EXPECT_EQ(pipe2(fds, O_NONBLOCK), 0); }
    ~Pipe() {
        close(fds[0]);
        close(fds[1]);
    }
};
}  // namespace

TEST_P(Io, WaitReadableWakesOnWrite) {
    Runtime rt(options());
    Pipe p;
    std::atomic<bool> other_ran{false};
    rt.block_on([&] {
        Scope s;
        s.spawn([&] {
            // With one worker this only runs if the reader does not block the worker.
            other_ran = true;
            sleep_for(0.005);
            char c = 'x';
            EXPECT_EQ(write(p.fds[1], &c, 1), 1);
        });
        EXPECT_TRUE(wait_readable(p.fds[0], 10));
        char c = 0;
        EXPECT_EQ(read(p.fds[0], &c, 1), 1);
        EXPECT_EQ(c, 'x');
        s.join();
    });
    EXPECT_TRUE(other_ran.load());
}

TEST_P(Io, WaitTimesOutAndIsCancellable) {
    Runtime rt(options());
    Pipe p;
    rt.block_on([&] {
        auto t0 = now_ns();
        EXPECT_FALSE(wait_readable(p.fds[0], 0.01));
        EXPECT_GE(now_ns() - t0, 9'000'000);
        EXPECT_FALSE(move_on_after(0.01, [&](CancelScope&) { wait_readable(p.fds[0]); }));
        EXPECT_TRUE(wait_writable(p.fds[1], 1));
        // Two waiters on the same fd, then one write wakes the reader side for both.
        Scope s;
        std::atomic<int> woke{0};
        for (int i = 0; i < 2; ++i)
            s.spawn([&] {
                if (wait_readable(p.fds[0], 10)) woke++;
            });
        sleep_for(0.005);
        char c = 'y';
        EXPECT_EQ(write(p.fds[1], &c, 1), 1);
        s.join();
        EXPECT_EQ(woke.load(), 2);
    });
}

// libcurl's pattern: sockets closed right after a wait and their numbers reused at once.
TEST_P(Io, FdReuseAfterWaits) {
    Runtime rt(options());
    rt.block_on([&] {
        for (int i = 0; i < 200 / weft::rt::testing::kScale + 20; ++i) {
            Pipe p;
            if (i % 3 == 0) {
                EXPECT_FALSE(wait_readable(p.fds[0], 0.0005));  // times out
            } else if (i % 3 == 1) {
                char c = 'z';
                EXPECT_EQ(write(p.fds[1], &c, 1), 1);
                EXPECT_TRUE(wait_readable(p.fds[0], 10));
            } else {
                EXPECT_FALSE(move_on_after(0.0005, [&](CancelScope&) { wait_readable(p.fds[0]); }));
            }
        }  // each Pipe closes its fds here, right after the wait
    });
}
