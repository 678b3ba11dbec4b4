// weft-bench-runtime: micro-benchmarks of the C++ runtime alone, each mirrored by a Go peer
// (bench/peers/runtime_peers.go) so that bench/runtime/run.py can print time ratios.
// Usage: weft-bench-runtime <skynet|pingpong|spawn|yield|sleepers|select|inline> [n]
// (`inline` has no Go peer: it measures the cost of lazy task creation's inline path.)
// Each subcommand prints details on stderr and its checksum as the last line of stdout.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "weft/runtime/channel.hpp"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"

using namespace weft::rt;

namespace {

// Classic skynet (github.com/atemerev/skynet): a 10-ary tree of tasks, 1,000,000 leaves; each
// task sends its sum to its parent over an (unbuffered) channel.
void skynet(Channel<long> out, long num, long size, long div) {
    if (size == 1) {
        out.send(num);
        return;
    }
    auto rc = Channel<long>::make();
    for (long i = 0; i < div; ++i) {
        long sub = num + i * (size / div);
        spawn([rc, sub, size, div] { skynet(rc, sub, size / div, div); });
    }
    long sum = 0;
    for (long i = 0; i < div; ++i)
        sum += rc.recv();
    out.send(sum);
}

long resident_kib() {
    std::ifstream f("/proc/self/statm");
    long pages = 0, resident = 0;
    f >> pages >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s skynet|pingpong|spawn|yield|sleepers|select [n]\n",
                     argv[0]);
        return 2;
    }
    std::string what = argv[1];
    long n = argc > 2 ? std::atol(argv[2]) : 0;
    RuntimeOptions opts;
    if (const char* w = std::getenv("WEFT_WORKERS")) opts.workers = std::atoi(w);
    Runtime rt(opts);
    auto t0 = now_ns();
    long result = 0;
    if (what == "skynet") {
        if (!n) n = 1'000'000;
        result = rt.block_on([n] {
            auto c = Channel<long>::make();
            spawn([c, n] { skynet(c, 0, n, 10); });
            return c.recv();
        });
    } else if (what == "pingpong") {
        if (!n) n = 200'000;
        result = rt.block_on([n] {
            auto ping = Channel<long>::make();
            auto pong = Channel<long>::make();
            spawn([ping, pong]() mutable {
                while (auto v = ping.recv_ok())
                    pong.send(*v + 1);
            });
            long sum = 0;
            for (long i = 0; i < n; ++i) {
                ping.send(i);
                sum += pong.recv();
            }
            ping.close();
            return sum;
        });
    } else if (what == "spawn") {
        // spawn + join throughput: tasks spawned in batches of 1000 and joined.
        if (!n) n = 1'000'000;
        result = rt.block_on([n] {
            long sum = 0;
            std::vector<TaskHandle<long>> hs;
            hs.reserve(1000);
            for (long b = 0; b < n; b += 1000) {
                for (long i = b; i < b + 1000 && i < n; ++i)
                    hs.push_back(spawn([i] { return i; }));
                for (auto& h : hs)
                    sum += h.get();
                hs.clear();
            }
            return sum;
        });
    } else if (what == "yield") {
        // Two tasks yielding to each other n times each.
        if (!n) n = 1'000'000;
        std::atomic<long> count{0};
        rt.block_on([n, &count] {
            for (int k = 0; k < 2; ++k)
                spawn([n, &count] {
                    for (long i = 0; i < n; ++i)
                        yield_now();
                    count.fetch_add(n);
                });
        });
        result = count.load();
    } else if (what == "sleepers") {
        // n tasks sleeping 1 s: resident memory per sleeping task.
        if (!n) n = 100'000;
        long before = resident_kib();
        std::atomic<long> woke{0}, asleep{0};
        long during = 0, asleep_then = 0;
        rt.block_on([n, &woke, &asleep, &during, &asleep_then] {
            for (long i = 0; i < n; ++i)
                spawn([&woke, &asleep] {
                    asleep.fetch_add(1, std::memory_order_relaxed);
                    sleep_for(1.0);
                    woke.fetch_add(1);
                });
            // Measured once every task is asleep (or 0.9 s after the start, before the first
            // wakes): at 0.5 s, as Go's peer measures, not all of them had started yet.
            auto start = now_ns();
            sleep_for(0.5);
            while (asleep.load() < n && now_ns() - start < 900'000'000)
                sleep_for(0.01);
            during = resident_kib();
            asleep_then = asleep.load();
        });
        std::fprintf(stderr, "sleepers: %.2f KiB resident per sleeping task (%ld of %ld asleep)\n",
                     double(during - before) / double(n), asleep_then, n);
        std::printf("kib_per_task %.2f\n", double(during - before) / double(n));
        std::printf("asleep %ld\n", asleep_then);
        result = woke.load();
    } else if (what == "select") {
        // Two producers on two unbuffered channels, one consumer selecting over both.
        if (!n) n = 200'000;
        result = rt.block_on([n] {
            auto a = Channel<long>::make();
            auto b = Channel<long>::make();
            spawn([a, n]() mutable {
                for (long i = 0; i < n; ++i)
                    a.send(1);
            });
            spawn([b, n]() mutable {
                for (long i = 0; i < n; ++i)
                    b.send(2);
            });
            long sum = 0;
            for (long i = 0; i < 2 * n; ++i) {
                std::optional<long> va, vb;
                Select s;
                s.recv(a, va);
                s.recv(b, vb);
                s.wait();
                sum += va ? *va : *vb;
            }
            return sum;
        });
    } else if (what == "inline") {
        // Lazy task creation: fib(n) spawning one child per call and forcing it at once. With
        // nobody stealing, every child runs inline on its parent's stack; the per-spawn cost is
        // what a deferred call whose value is needed right away costs the VM.
        if (!n) n = 27;
        std::function<long(long)> fib = [&fib](long k) -> long {
            if (k < 2) return k;
            auto a = spawn([&fib, k] { return fib(k - 1); });
            long b = fib(k - 2);
            return a.get() + b;
        };
        std::function<long(long)> plain = [&plain](long k) -> long {
            return k < 2 ? k : plain(k - 1) + plain(k - 2);
        };
        auto p0 = now_ns();
        long expect = plain(n);
        auto p1 = now_ns();
        result = rt.block_on([&] { return fib(n); });
        auto p2 = now_ns();
        Counters c0 = rt.counters();
        double spawns = double(c0.spawned);
        std::fprintf(stderr, "inline: %.0f ns per spawned+forced call (plain call %.1f ns)\n",
                     double((p2 - p1) - (p1 - p0)) / spawns, double(p1 - p0) / spawns);
        if (result != expect) result = -1;
    } else {
        std::fprintf(stderr, "unknown benchmark %s\n", what.c_str());
        return 2;
    }
    auto dt = double(now_ns() - t0) / 1e9;
    Counters c = rt.counters();
    std::fprintf(stderr,
                 "%s: %.3f s (workers %u; spawned %llu inlined %llu fibers %llu switches %llu "
                 "steals %llu parks %llu worker_parks %llu)\n",
                 what.c_str(), dt, rt.workers(), (unsigned long long)c.spawned,
                 (unsigned long long)c.inlined, (unsigned long long)c.fibers,
                 (unsigned long long)c.switches, (unsigned long long)c.steals,
                 (unsigned long long)c.parks, (unsigned long long)c.worker_parks);
    std::printf("%ld\n", result);
    return 0;
}
