// Fiber-aware I/O readiness waits on the runtime's reactor (standalone Asio over epoll).
//
// The reactor runs an asio::io_context on its own thread. A task that waits for a socket parks;
// the reactor's completion makes it runnable again, so a task waiting on I/O never blocks its
// worker. The waits are readiness waits (like poll), not I/O operations: the caller does the
// non-blocking read()/write() itself, which is exactly what libcurl's multi-socket API
// (CURLMOPT_SOCKETFUNCTION / curl_multi_socket_action) needs.
//
// Rules: the fd must be non-blocking and must stay open while a wait on it is pending. When
// wait_fd returns (ready, timeout or Cancelled) the reactor has already deregistered the fd
// unless other tasks still wait on it, so the caller may close it at once and the number may be
// reused (libcurl closes and reopens sockets all the time). Several tasks may wait on the same
// fd (for the same or different directions). Thread-safety: any task.
#pragma once

#include <limits>

namespace weft::rt {

enum class Interest { Read, Write };

/// Parks the current task until `fd` is ready for `interest`, or `timeout_seconds` pass.
/// Returns true when ready, false on timeout. Raises Cancelled; std::system_error if the
/// reactor reports an error for the fd (e.g. EBADF). Must be called in a task.
bool wait_fd(int fd, Interest interest,
             double timeout_seconds = std::numeric_limits<double>::infinity());
inline bool wait_readable(int fd, double timeout = std::numeric_limits<double>::infinity()) {
    return wait_fd(fd, Interest::Read, timeout);
}
inline bool wait_writable(int fd, double timeout = std::numeric_limits<double>::infinity()) {
    return wait_fd(fd, Interest::Write, timeout);
}

}  // namespace weft::rt
