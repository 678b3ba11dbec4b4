// socket.h — TCP plumbing shared by the `net` module and the HTTP server (`http.serve`):
// a socket several tasks may wait on, name resolution off the workers, listening sockets.
//
// Sockets are non-blocking; waits go through the runtime's reactor (rt::wait_fd), so a
// waiting task parks and never holds its worker. The reactor requires a waited-on fd to stay
// open, so closing is two-step: close_socket() marks the socket closed and wakes every wait
// (shutdown(2)); the fd is closed when the last waiter has left.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <vector>

#include "vm/value.h"

namespace weft::stdlib {

struct Socket {
    std::atomic<int> fd{-1};
    std::atomic<int> waiters{0};
    std::atomic<bool> closed{false};

    Socket() = default;
    explicit Socket(int f) : fd(f) {}
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() { release_fd(); }

    // Marks the socket closed and wakes every wait on it. Thread-safe, idempotent.
    void close_socket();
    // Waits until the socket is ready to read (or write); false when `timeout` seconds
    // (< 0: none) pass first, true at once when the socket is closed (the caller's next
    // operation reports that). Parks the task (blocks the thread outside a task). Raises
    // Cancelled.
    bool wait(bool write, double timeout);
    void release_fd();
};

// Raises this process's soft limit of open files to its hard limit, once (as Go's runtime does
// at start since 1.19): a server with a thousand clients needs two thousand descriptors when
// they are on the same machine, and the usual soft limit is 1024. Thread-safe.
void raise_open_files_limit();

// "host:port", "[v6]:port".
std::string host_port(const std::string& host, int port);

// Addresses of host:port, resolved with getaddrinfo on the blocking pool. NetworkError when the
// name does not resolve. `passive`: for bind (an empty host means every address).
struct Resolved {
    std::vector<sockaddr_storage> addrs;
    std::vector<socklen_t> lens;
    std::vector<int> families;
};
Resolved resolve(const std::string& host, int port, bool passive);

// (host, port) of a socket address, as a Weft tuple.
Value addr_tuple(const sockaddr_storage& ss);

// A non-blocking listening socket bound to host:port (SO_REUSEADDR), and the port it got (the
// kernel's choice for port 0). NetworkError when it cannot bind or listen. The caller has
// checked the capability.
int listen_on(const std::string& host, int port, int backlog, int& bound_port);

}  // namespace weft::stdlib
