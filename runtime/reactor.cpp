// I/O reactor: standalone Asio on a dedicated thread.
//
// Why a thread of its own rather than polling from idle workers: a worker that blocks in
// epoll_wait cannot be woken cheaply when work arrives (it needs an eventfd write per wake-up),
// while a dedicated thread costs one context switch per readiness event and keeps the worker
// parking protocol a plain futex. For the loads this runtime targets (HTTP clients, a few
// thousand sockets) the extra hop is small; measure before changing.
//
// All reactor state (the fd table, the Asio descriptors) is touched only on the reactor thread:
// requests arrive by asio::post. One stream_descriptor per fd (epoll refuses a second
// registration of the same fd), shared by every task waiting on it; the descriptor is released
// (not closed: the fd belongs to the caller) when nobody waits on it any more.
#include <asio/post.hpp>
#include <system_error>

#include "runtime/internal.h"
#include "runtime/reactor_impl.h"
#include "weft/runtime/reactor.hpp"

namespace weft::rt::detail {

Reactor::Reactor(RuntimeImpl* rt) : rt_(rt) {
    thread_ = std::thread([this] {
        set_thread_runtime(rt_);
        auto guard = asio::make_work_guard(ctx_);
        ctx_.run();
    });
}

Reactor::~Reactor() {
    ctx_.stop();
    thread_.join();
    for (auto& [fd, e] : fds_) {
        if (e.desc) e.desc->release();
        for (auto& v : e.ops)
            for (auto& op : v)
                if (!op->done) {
                    op->done = true;
                    op->host->release();
                }
    }
}

void Reactor::start(std::shared_ptr<IoOp> op) {
    asio::post(ctx_, [this, op] {
        Entry& e = fds_[op->fd];
        if (!e.desc) {
            e.id = next_id_++;
            e.desc = std::make_unique<asio::posix::stream_descriptor>(ctx_);
            std::error_code ec;
            e.desc->assign(op->fd, ec);
            if (ec) {
                e.desc.reset();
                fds_.erase(op->fd);
                op->error = ec.value();
                op->done = true;
                try_wake(op->host, op->gen, kWokeNotify);
                op->host->release();
                rt_->io_waits_.fetch_sub(1, std::memory_order_acq_rel);
                rt_->waker_done();
                return;
            }
        }
        int dir = op->write ? 1 : 0;
        e.ops[dir].push_back(op);
        if (!e.armed[dir]) arm(op->fd, e, dir);
    });
}

void Reactor::arm(int fd, Entry& e, int dir) {
    e.armed[dir] = true;
    auto kind = dir ? asio::posix::stream_descriptor::wait_write
                    : asio::posix::stream_descriptor::wait_read;
    std::uint64_t id = e.id;
    e.desc->async_wait(kind, [this, fd, dir, id](const std::error_code& ec) {
        auto it = fds_.find(fd);
        if (it == fds_.end() || it->second.id != id) return;  // released meanwhile
        Entry& en = it->second;
        en.armed[dir] = false;
        if (ec == asio::error::operation_aborted) {
            if (!en.ops[dir].empty()) arm(fd, en, dir);
            return;
        }
        auto ops = std::move(en.ops[dir]);
        en.ops[dir].clear();
        // Deregister before waking: when wait_fd returns, the caller may close the fd.
        maybe_release(fd);
        for (auto& op : ops) {
            if (op->done) continue;
            op->done = true;
            op->error = ec ? ec.value() : 0;
            try_wake(op->host, op->gen, kWokeNotify);
            op->host->release();
            rt_->io_waits_.fetch_sub(1, std::memory_order_acq_rel);
            rt_->waker_done();
        }
    });
}

void Reactor::maybe_release(int fd) {
    auto it = fds_.find(fd);
    if (it == fds_.end()) return;
    Entry& e = it->second;
    if (!e.ops[0].empty() || !e.ops[1].empty()) return;
    // Synchronous: deregisters from epoll now; pending async waits complete later as aborted and
    // find no entry with their id.
    e.desc->release();
    fds_.erase(it);
}

void Reactor::cancel(std::shared_ptr<IoOp> op) {
    asio::post(ctx_, [this, op] {
        if (!op->done) {
            op->done = true;
            op->host->release();
            rt_->io_waits_.fetch_sub(1, std::memory_order_acq_rel);
            rt_->waker_done();
            auto it = fds_.find(op->fd);
            if (it != fds_.end()) {
                auto& v = it->second.ops[op->write ? 1 : 0];
                v.erase(std::remove(v.begin(), v.end(), op), v.end());
                maybe_release(op->fd);
            }
        }
        op->acked.store(true, std::memory_order_release);
    });
}

}  // namespace weft::rt::detail

namespace weft::rt {

using namespace detail;

bool wait_fd(int fd, Interest interest, double timeout_seconds) {
    Task* cur = current();
    if (!cur) throw std::logic_error("wait_fd outside a runtime task");
    Task* host = A::host(cur);
    RuntimeImpl* rt = A::rt(cur);
    std::int64_t deadline = deadline_from(timeout_seconds);
    for (;;) {
        check_cancelled();
        if (now_ns() >= deadline) return false;
        auto op = std::make_shared<IoOp>();
        op->fd = fd;
        op->write = interest == Interest::Write;
        op->host = host;
        host->retain();
        op->gen = begin_wait(host, op->write ? "socket writable" : "socket readable");
        rt->io_waits_.fetch_add(1, std::memory_order_acq_rel);
        rt->reactor_->start(op);
        TimerEntry* te =
            deadline != INT64_MAX ? rt->timers_->add_wake(deadline, host, op->gen) : nullptr;
        std::uint32_t code = wait_for_claim(cur, host, op->gen);
        if (te) rt->timers_->cancel(te);
        if (code == kWokeNotify) {
            if (op->error) throw std::system_error(op->error, std::system_category(), "wait_fd");
            return true;
        }
        rt->reactor_->cancel(op);
        // Wait (briefly: one trip through the reactor thread) until the reactor has let go of
        // the fd, so that the caller may close it as soon as we return.
        while (!op->acked.load(std::memory_order_acquire))
            yield_now();
        if (code == kWokeTimeout) return false;
        if (code == kWokeDeadlock) throw Deadlock(deadlock_report(rt));
    }
}

}  // namespace weft::rt

asio::io_context& weft::rt::Runtime::io_context() noexcept {
    return impl_->reactor_->ctx();
}
