// Exceptions raised by the Weft runtime.
//
// The runtime reports failures as C++ exceptions so that cleanup code (destructors, the VM's
// `finally` blocks) runs on every path. `Cancelled` deliberately does not derive from
// std::runtime_error: code that catches "ordinary" errors should not swallow cancellation.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace weft::rt {

/// Raised at a checkpoint (any blocking call, `check_cancelled()`) when the current task is
/// inside a cancelled cancel scope (or its task was cancelled) and no shield intervenes. It
/// unwinds to the scope that was cancelled, which swallows it (see CancelScope).
class Cancelled : public std::exception {
  public:
    const char* what() const noexcept override { return "Cancelled"; }
};

/// A timed wait (`Channel::recv_for`, `with_timeout`) ran out of time.
class TimeoutError : public std::runtime_error {
  public:
    TimeoutError() : std::runtime_error("TimeoutError: deadline exceeded") {}
    using std::runtime_error::runtime_error;
};

/// Send on a closed channel, or a receive that needs a value from a closed, drained channel.
class ChannelClosed : public std::runtime_error {
  public:
    ChannelClosed() : std::runtime_error("ChannelClosed") {}
};

/// Delivered to the root task of `Runtime::block_on` when the deadlock detector finds that
/// every remaining task is blocked and nothing (timer, I/O, blocking call) can wake any of them.
/// `what()` lists each blocked task with what it waits on.
class Deadlock : public std::runtime_error {
  public:
    explicit Deadlock(const std::string& report) : std::runtime_error(report) {}
};

/// Several tasks of one scope failed; every error is kept, in completion order.
class ErrorGroup : public std::exception {
  public:
    explicit ErrorGroup(std::vector<std::exception_ptr> errors, bool partial = false);
    const char* what() const noexcept override { return what_.c_str(); }
    /// The errors, in the order the failing tasks finished.
    const std::vector<std::exception_ptr>& errors() const noexcept { return errors_; }
    /// True when raised by a collect-all scope (the language's `PartialFailure`).
    bool partial() const noexcept { return partial_; }

  private:
    std::vector<std::exception_ptr> errors_;
    bool partial_;
    std::string what_;
};

/// Message of an exception_ptr (for reports); "unknown error" for non-std exceptions.
std::string describe(const std::exception_ptr& e);

}  // namespace weft::rt
