// signals.cpp — SIGINT (Ctrl-C) and SIGTERM while `weft` runs a program.
//
// Both signals are blocked in every thread (the mask is set on the main thread before the
// runtime starts its threads, which inherit it) and taken by one watcher thread with
// sigtimedwait, so no Weft code runs in a signal handler: the watcher may lock, allocate and
// call into the VM. The first signal cancels the main task as a cancel scope would
// (Vm::interrupt_main): the main task then sees KeyboardInterrupt (SIGINT) or Cancelled
// (SIGTERM) at its next wait or safepoint, every `finally` and `with` exit runs, and its tasks
// are cancelled and awaited. A signal that comes before the main task exists (while the program
// compiles) is delivered as soon as it does. Once the program has ended, the processes `proc`
// started and nobody reaped are terminated by process group and reaped (finish), one line goes
// to stderr, and the status is 128 + the signal (130, 143), as a shell reports a program killed
// by it. A second signal during that cleanup ends the process at once: SIGKILL to the
// children's process groups and _exit, Python's "press Ctrl-C again" escape. Children also die
// when Weft is killed outright (PR_SET_PDEATHSIG, stdlib/proc.cpp).
#include "cli/signals.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

#include "stdlib/stdlib.h"
#include "vm/interp.h"

namespace weft {

namespace {

// Shared by the watcher and the main thread; never freed (the watcher is never joined: it
// waits in sigtimedwait until the process ends).
struct State {
    std::mutex mu;
    Vm* vm = nullptr;        // while a program may run
    int signal = 0;          // the first signal, or 0
    bool delivered = false;  // the main task was cancelled for it
    bool finished = false;   // finish() has begun: nothing more to cancel
};
State* g_state = nullptr;

const char* signal_name(int sig) {
    return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

[[noreturn]] void exit_now(int sig, const char* why) {
    kill_children_now();
    std::string line =
        std::string("weft: ") + why + " " + signal_name(sig) + ", exiting without cleanup\n";
    ssize_t w = write(2, line.data(), line.size());
    (void)w;
    _exit(128 + sig);
}

void watch(State* st, sigset_t set) {
    for (;;) {
        // Waits with a timeout only while a first signal is still to be delivered (the main
        // task did not exist yet): then it is retried every 10 ms.
        bool retry;
        {
            std::lock_guard<std::mutex> lock(st->mu);
            retry = st->signal != 0 && !st->delivered && !st->finished;
        }
        siginfo_t info;
        timespec pause{0, 10 * 1000 * 1000};
        int sig = retry ? sigtimedwait(&set, &info, &pause) : sigwaitinfo(&set, &info);
        std::lock_guard<std::mutex> lock(st->mu);
        if (sig < 0) {
            if (errno != EAGAIN && errno != EINTR) return;
        } else if (st->signal != 0) {
            exit_now(sig, "second");  // cleanup is taking too long for the user
        } else {
            st->signal = sig;
            if (!st->vm) exit_now(sig, "received");
            st->vm->stop_signal.store(sig, std::memory_order_release);
        }
        if (st->signal != 0 && !st->delivered && !st->finished && st->vm)
            st->delivered = st->vm->interrupt_main();
    }
}

}  // namespace

ProgramSignals::ProgramSignals(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    g_state = new State;
    std::thread(watch, g_state, set).detach();
}

ProgramSignals::~ProgramSignals() {
    attach(nullptr);
}

void ProgramSignals::attach(Vm* vm) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(g_state->mu);
    g_state->vm = vm;
}

int ProgramSignals::finish(int rc) {
    if (!enabled_) return rc;
    int sig;
    {
        std::lock_guard<std::mutex> lock(g_state->mu);
        g_state->finished = true;
        sig = g_state->signal;
    }
    if (sig == 0) return rc;
    int n = terminate_children(2.0);
    std::string line = std::string("weft: stopped by ") + signal_name(sig) + " after cleanup";
    if (n > 0)
        line += "; " + std::to_string(n) + (n == 1 ? " child process" : " child processes") +
                " terminated";
    fprintf(stderr, "%s\n", line.c_str());
    if (rc != 0 && rc != 128 + sig) return rc;  // another error, or exit(n)
    return 128 + sig;
}

}  // namespace weft
