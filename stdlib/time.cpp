// time.cpp — the `time` module: time(), time_ns(), monotonic(), perf_counter(),
// sleep(seconds), strftime(format, t=None) and localtime/gmtime as dicts.
//
// time.sleep is the builtin sleep: in a task a runtime timer parks only the task
// (cancellable, like every wait); outside a task it blocks the thread.
#include <time.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

using stdlib::Params;

double wall_seconds() {
    auto d = std::chrono::system_clock::now().time_since_epoch();
    return std::chrono::duration<double>(d).count();
}

void sleep_seconds(double seconds) {
    if (rt::current_task())
        rt::sleep_for(seconds);
    else
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

Value t_time(CallContext&, const CallArgs& a) {
    Params p(a, "time", {}, 0);
    return Value::number(wall_seconds());
}

Value t_time_ns(CallContext&, const CallArgs& a) {
    Params p(a, "time_ns", {}, 0);
    auto d = std::chrono::system_clock::now().time_since_epoch();
    return Value::integer(int64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

Value t_monotonic(CallContext&, const CallArgs& a) {
    Params p(a, "monotonic", {}, 0);
    auto d = std::chrono::steady_clock::now().time_since_epoch();
    return Value::number(std::chrono::duration<double>(d).count());
}

Value t_perf_counter(CallContext&, const CallArgs& a) {
    Params p(a, "perf_counter", {}, 0);
    auto d = std::chrono::steady_clock::now().time_since_epoch();
    return Value::number(std::chrono::duration<double>(d).count());
}

Value t_sleep(CallContext&, const CallArgs& a) {
    Params p(a, "sleep", {"seconds"}, 1);
    double s = p.number(0);
    if (std::isnan(s) || s < 0)
        throw WeftError(ErrorKind::ValueError, "sleep length must be non-negative");
    sleep_seconds(s);
    return Value();
}

struct tm broken_down(const Params& p, size_t i, bool utc) {
    double t = p.has(i) ? p.number(i) : wall_seconds();
    if (!std::isfinite(t) || std::fabs(t) > 1e15)
        throw WeftError(ErrorKind::OverflowError, "timestamp out of range");
    time_t secs = time_t(std::floor(t));
    struct tm tm {};
    if (!(utc ? gmtime_r(&secs, &tm) : localtime_r(&secs, &tm)))
        throw WeftError(ErrorKind::OverflowError, "timestamp out of range");
    return tm;
}

Value t_strftime(CallContext&, const CallArgs& a) {
    Params p(a, "strftime", {"format", "t", "utc"}, 1);
    std::string fmt = p.str(0);
    struct tm tm = broken_down(p, 1, p.flag_or(2, false));
    if (fmt.empty()) return make_str("");
    std::string buf(256 + fmt.size() * 8, '\0');
    size_t n = strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
    if (n == 0)
        throw WeftError(ErrorKind::ValueError,
                        "strftime() result too long or empty for format " + fmt);
    buf.resize(n);
    return make_str(std::move(buf));
}

Value tm_dict(const struct tm& tm) {
    Value d = make_dict();
    stdlib::dict_put(d, "year", Value::integer(tm.tm_year + 1900));
    stdlib::dict_put(d, "month", Value::integer(tm.tm_mon + 1));
    stdlib::dict_put(d, "day", Value::integer(tm.tm_mday));
    stdlib::dict_put(d, "hour", Value::integer(tm.tm_hour));
    stdlib::dict_put(d, "minute", Value::integer(tm.tm_min));
    stdlib::dict_put(d, "second", Value::integer(tm.tm_sec));
    stdlib::dict_put(d, "weekday",
                     Value::integer((tm.tm_wday + 6) % 7));  // Monday is 0, as in Python
    stdlib::dict_put(d, "yearday", Value::integer(tm.tm_yday + 1));
    return d;
}

Value t_localtime(CallContext&, const CallArgs& a) {
    Params p(a, "localtime", {"t"}, 0);
    return tm_dict(broken_down(p, 0, false));
}

Value t_gmtime(CallContext&, const CallArgs& a) {
    Params p(a, "gmtime", {"t"}, 0);
    return tm_dict(broken_down(p, 0, true));
}

}  // namespace

void init_time_module(ModuleObj& m) {
    using stdlib::define_fn;
    define_fn(m, "time", t_time);
    define_fn(m, "time_ns", t_time_ns);
    define_fn(m, "monotonic", t_monotonic);
    define_fn(m, "perf_counter", t_perf_counter);
    define_fn(m, "sleep", t_sleep);
    define_fn(m, "strftime", t_strftime);
    define_fn(m, "localtime", t_localtime);
    define_fn(m, "gmtime", t_gmtime);
}

}  // namespace weft
