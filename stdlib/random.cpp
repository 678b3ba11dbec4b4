// random.cpp — the `random` module: random(), uniform, randint, randrange,
// choice, shuffle, sample, seed, on one std::mt19937_64 per process.
//
// Value semantics: shuffle(xs) cannot reorder the caller's list in place (the
// argument is a value), so it returns a new shuffled list.
//
// The generator is shared by every task and guarded by a mutex; seed(n) makes
// a single-task program's sequence reproducible. Integers in a range come from
// rejection sampling on the raw 64-bit output (unbiased and the same on every
// platform, unlike std::uniform_int_distribution). Not for secrets: uuid4
// uses the OS's CSPRNG.
#include <mutex>
#include <random>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/lib_internal.h"

namespace weft {

namespace {

using stdlib::Params;

std::mutex& rng_mutex() {
    static std::mutex m;
    return m;
}

std::mt19937_64& rng() {
    static std::mt19937_64 g{std::random_device{}()};
    return g;
}

uint64_t next_u64() {
    std::lock_guard<std::mutex> lock(rng_mutex());
    return rng()();
}

// Uniform in [0, n) for n > 0 (rejection sampling, no modulo bias).
uint64_t below(uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
        uint64_t x = next_u64();
        if (x < limit) return x % n;
    }
}

double next_double() {
    return double(next_u64() >> 11) * 0x1.0p-53;
}

Value r_random(CallContext&, const CallArgs& a) {
    Params p(a, "random", {}, 0);
    return Value::number(next_double());
}

Value r_uniform(CallContext&, const CallArgs& a) {
    Params p(a, "uniform", {"a", "b"}, 2);
    double lo = p.number(0), hi = p.number(1);
    return Value::number(lo + (hi - lo) * next_double());
}

int64_t in_range(int64_t lo, int64_t hi) {  // inclusive
    uint64_t span = uint64_t(hi) - uint64_t(lo);
    if (span == UINT64_MAX) return int64_t(next_u64());
    return int64_t(uint64_t(lo) + below(span + 1));
}

Value r_randint(CallContext&, const CallArgs& a) {
    Params p(a, "randint", {"a", "b"}, 2);
    int64_t lo = p.integer(0), hi = p.integer(1);
    if (hi < lo)
        throw WeftError(ErrorKind::ValueError, "empty range for randint(" + std::to_string(lo) +
                                                   ", " + std::to_string(hi) + ")");
    return Value::integer(in_range(lo, hi));
}

Value r_randrange(CallContext&, const CallArgs& a) {
    Params p(a, "randrange", {"start", "stop", "step"}, 1);
    int64_t start = p.integer(0), stop = 0, step = p.int_or(2, 1);
    if (p.has(1)) {
        stop = p.integer(1);
    } else {
        stop = start;
        start = 0;
    }
    if (step == 0) throw WeftError(ErrorKind::ValueError, "zero step for randrange()");
    __int128 n = step > 0 ? (__int128(stop) - start + step - 1) / step
                          : (__int128(stop) - start + step + 1) / step;
    if (n <= 0) throw WeftError(ErrorKind::ValueError, "empty range for randrange()");
    return Value::integer(int64_t(start + __int128(below(uint64_t(n))) * step));
}

Value r_choice(CallContext& cx, const CallArgs& a) {
    Params p(a, "choice", {"seq"}, 1);
    std::vector<Value> items = collect(cx, *p.get(0));
    if (items.empty())
        throw WeftError(ErrorKind::IndexError, "Cannot choose from an empty sequence");
    return items[below(items.size())];
}

void shuffle_in_place(std::vector<Value>& v) {
    for (size_t i = v.size(); i > 1; --i)
        std::swap(v[i - 1], v[below(i)]);  // Fisher-Yates
}

Value r_shuffle(CallContext& cx, const CallArgs& a) {
    Params p(a, "shuffle", {"seq"}, 1);
    std::vector<Value> items = collect(cx, *p.get(0));
    shuffle_in_place(items);
    return make_list(std::move(items));
}

Value r_sample(CallContext& cx, const CallArgs& a) {
    Params p(a, "sample", {"population", "k"}, 2);
    std::vector<Value> items = collect(cx, *p.get(0));
    int64_t k = p.integer(1);
    if (k < 0 || k > int64_t(items.size()))
        throw WeftError(ErrorKind::ValueError, "Sample larger than population or is negative");
    // Partial Fisher-Yates: the first k positions.
    for (size_t i = 0; i < size_t(k); ++i)
        std::swap(items[i], items[i + below(items.size() - i)]);
    items.resize(size_t(k));
    return make_list(std::move(items));
}

Value r_seed(CallContext&, const CallArgs& a) {
    Params p(a, "seed", {"n"}, 0);
    uint64_t s;
    if (!p.has(0))
        s = std::random_device{}();
    else if (p.get(0)->is(ObjType::Str) || p.get(0)->is(ObjType::Bytes) || p.get(0)->is_float())
        s = value_hash(*p.get(0));
    else
        s = uint64_t(p.integer(0));
    std::lock_guard<std::mutex> lock(rng_mutex());
    rng().seed(s);
    return Value();
}

}  // namespace

void init_random_module(ModuleObj& m) {
    using stdlib::define_fn;
    define_fn(m, "random", r_random);
    define_fn(m, "uniform", r_uniform);
    define_fn(m, "randint", r_randint);
    define_fn(m, "randrange", r_randrange);
    define_fn(m, "choice", r_choice);
    define_fn(m, "shuffle", r_shuffle);
    define_fn(m, "sample", r_sample);
    define_fn(m, "seed", r_seed);
}

}  // namespace weft
