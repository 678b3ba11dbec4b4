// signals.h — SIGINT and SIGTERM while `weft` runs a program (see signals.cpp).
#pragma once

namespace weft {

class Vm;

// Turns SIGINT/SIGTERM into a cancellation of the running program, then into an exit status.
// Construct it on the main thread before the program starts its runtime (the signal mask it
// sets is inherited by every thread created afterwards); one per process.
class ProgramSignals {
  public:
    // When `enabled`: blocks SIGINT and SIGTERM in this thread and starts the watcher thread
    // that takes them. Disabled (the REPL, `weft check`): does nothing.
    explicit ProgramSignals(bool enabled);
    // Detaches from the Vm; a signal arriving later ends the process at once (status 128 + sig).
    ~ProgramSignals();
    ProgramSignals(const ProgramSignals&) = delete;
    ProgramSignals& operator=(const ProgramSignals&) = delete;
    // The Vm whose main task a signal cancels (nullptr: none).
    void attach(Vm* vm);
    // After the program has ended (no task running), with its exit status `rc`. If no signal
    // came, returns `rc`. Else terminates and reaps the processes `proc` started that are still
    // running (process group: SIGTERM, SIGKILL after 2 s), prints one line on stderr, and
    // returns 128 + the signal (130 for SIGINT, 143 for SIGTERM), or `rc` when the program
    // ended with another error (1) or with exit(n), n != 0.
    int finish(int rc);

  private:
    bool enabled_;
};

}  // namespace weft
