// The reactor: an asio::io_context on its own thread (see reactor.cpp).
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_map>

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>

namespace weft::rt {
class Task;
}

namespace weft::rt::detail {

class RuntimeImpl;

struct IoOp {
    int fd;
    bool write;
    Task* host;  // strong ref until completed or cancelled
    std::uint32_t gen;
    bool done = false;               // reactor thread only
    int error = 0;                   // errno-style result, reactor thread only before the wake
    std::atomic<bool> acked{false};  // the reactor has forgotten this op (after cancel())
};

class Reactor {
  public:
    explicit Reactor(RuntimeImpl* rt);
    ~Reactor();
    asio::io_context& ctx() noexcept { return ctx_; }
    /// Arms a wait (any thread).
    void start(std::shared_ptr<IoOp> op);
    /// Withdraws a wait whose task stopped waiting (any thread); sets op->acked when done, after
    /// which the reactor no longer holds the fd (unless other waits on it are pending).
    void cancel(std::shared_ptr<IoOp> op);

  private:
    struct Entry {
        std::uint64_t id = 0;  // distinguishes a reused fd number from the one a handler armed
        std::unique_ptr<asio::posix::stream_descriptor> desc;
        std::vector<std::shared_ptr<IoOp>> ops[2];
        bool armed[2] = {false, false};
    };
    void arm(int fd, Entry& e, int dir);
    void maybe_release(int fd);
    RuntimeImpl* rt_;
    asio::io_context ctx_;
    std::unordered_map<int, Entry> fds_;  // reactor thread only
    std::uint64_t next_id_ = 1;           // reactor thread only
    std::thread thread_;
};

}  // namespace weft::rt::detail
