// Blocking pool: a bounded set of threads for calls that can only block (SQLite, DNS, some file
// operations), so that no worker thread ever blocks in the kernel on behalf of one task.
//
// Threads are created on demand up to the limit and then stay (idle ones wait on a condition
// variable). The calling task parks until its job returns; cancellation abandons the wait but
// not the job, which cannot be interrupted safely: it runs to completion and its result is
// dropped. `active()` counts the jobs some task still waits for, for the deadlock detector (a
// task waiting on a blocking call is not deadlocked; an abandoned job wakes no one, so it stops
// counting when its waiter gives up, else a job stuck in the kernel hid every deadlock).
#include "runtime/internal.h"

namespace weft::rt::detail {

BlockingPool::BlockingPool(RuntimeImpl* rt, unsigned max_threads)
    : rt_(rt), max_(max_threads ? max_threads : 1) {}

BlockingPool::~BlockingPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
        t.join();
}

void BlockingPool::submit(std::function<void()> job) {
    active_.fetch_add(1, std::memory_order_acq_rel);
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
    if (idle_ == 0 && threads_.size() < max_)
        threads_.emplace_back([this] { run(); });
    else
        cv_.notify_one();
}

void BlockingPool::finish_one() {
    active_.fetch_sub(1, std::memory_order_acq_rel);
    rt_->waker_done();
}

void BlockingPool::run() {
    set_thread_runtime(rt_);
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
        while (jobs_.empty() && !stop_) {
            ++idle_;
            cv_.wait(lock);
            --idle_;
        }
        if (jobs_.empty() && stop_) return;
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        job();
        lock.lock();
    }
}

void run_blocking_impl(std::function<void()> job) {
    Task* cur = current();
    if (!cur) {
        job();
        return;
    }
    struct State {
        std::mutex mu;
        bool done = false;
        bool abandoned = false;  // the waiter gave up (cancelled): the job was uncounted then
        Task* host = nullptr;  // strong ref while set
        std::uint32_t gen = 0;
    };
    auto st = std::make_shared<State>();
    RuntimeImpl* rt = A::rt(cur);
    BlockingPool* pool = rt->blocking_.get();
    pool->submit([st, pool, job = std::move(job)] {
        job();
        Task* h;
        std::uint32_t g;
        bool counted;
        {
            std::lock_guard<std::mutex> lock(st->mu);
            st->done = true;
            counted = !st->abandoned;
            h = std::exchange(st->host, nullptr);
            g = st->gen;
        }
        if (h) {
            try_wake(h, g, kWokeNotify);
            h->release();
        }
        // After the wake: the woken task is visible before the detector stops counting us.
        if (counted) pool->finish_one();
    });
    Task* host = A::host(cur);
    for (;;) {
        std::uint32_t gen;
        {
            std::lock_guard<std::mutex> lock(st->mu);
            if (st->done) return;
            gen = begin_wait(host, "blocking call");
            if (!st->host) host->retain();
            st->host = host;
            st->gen = gen;
        }
        std::uint32_t code = wait_for_claim(cur, host, gen);
        if (code == kWokeNotify) return;
        if (is_cancelled(cur)) {
            Task* h;
            bool uncount;
            {
                std::lock_guard<std::mutex> lock(st->mu);
                h = std::exchange(st->host, nullptr);
                uncount = !st->done;
                st->abandoned = true;
            }
            if (h) h->release();
            if (uncount) pool->finish_one();
            throw Cancelled();
        }
    }
}

}  // namespace weft::rt::detail
