// math.cpp — the `math` module: Python's math functions and constants with
// Python's error behaviour (a domain error is ValueError "math domain error",
// a result too large is OverflowError "math range error").
//
// Results are checked explicitly (errno is not reliable across libm builds and
// optimisation levels): an argument outside the domain is rejected before the
// call, an infinite result from finite arguments is an overflow.
#include <cmath>
#include <numeric>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/lib_internal.h"

namespace weft {

namespace {

// Returns Value so it can stand in a conditional expression; never returns.
[[noreturn]] Value domain() {
    throw WeftError(ErrorKind::ValueError, "math domain error");
}
[[noreturn]] void range_error() {
    throw WeftError(ErrorKind::OverflowError, "math range error");
}

double num(const CallArgs& a, size_t i, const char* fn) {
    if (i >= a.pos.size() || !lib::is_numlike(a.pos[i]))
        throw WeftError(ErrorKind::TypeError,
                        std::string(fn) + "() argument must be a number, not " +
                            (i < a.pos.size() ? type_name(a.pos[i]) : std::string("nothing")));
    return lib::num_of(a.pos[i]);
}

void nargs(const CallArgs& a, const char* fn, size_t n) {
    if (a.pos.size() != n || !a.kw.empty())
        throw WeftError(ErrorKind::TypeError, std::string(fn) + "() takes exactly " +
                                                  std::to_string(n) +
                                                  (n == 1 ? " argument (" : " arguments (") +
                                                  std::to_string(a.pos.size()) + " given)");
}

// A finite result from finite arguments, else OverflowError.
Value checked(double r, double x) {
    if (std::isinf(r) && std::isfinite(x)) range_error();
    return Value::number(r);
}

#define WEFT_UNARY(NAME, EXPR)                        \
    Value m_##NAME(CallContext&, const CallArgs& a) { \
        nargs(a, #NAME, 1);                           \
        double x = num(a, 0, #NAME);                  \
        return EXPR;                                  \
    }

WEFT_UNARY(sqrt, (x < 0 ? domain() : Value::number(std::sqrt(x))))
WEFT_UNARY(exp, checked(std::exp(x), x))
WEFT_UNARY(sin, (std::isinf(x) ? domain() : Value::number(std::sin(x))))
WEFT_UNARY(cos, (std::isinf(x) ? domain() : Value::number(std::cos(x))))
WEFT_UNARY(tan, (std::isinf(x) ? domain() : Value::number(std::tan(x))))
WEFT_UNARY(asin, (x < -1 || x > 1 ? domain() : Value::number(std::asin(x))))
WEFT_UNARY(acos, (x < -1 || x > 1 ? domain() : Value::number(std::acos(x))))
WEFT_UNARY(atan, Value::number(std::atan(x)))
WEFT_UNARY(log2, (x <= 0 ? domain() : Value::number(std::log2(x))))
WEFT_UNARY(log10, (x <= 0 ? domain() : Value::number(std::log10(x))))
WEFT_UNARY(fabs, Value::number(std::fabs(x)))
WEFT_UNARY(isnan, Value::boolean(std::isnan(x)))
WEFT_UNARY(isinf, Value::boolean(std::isinf(x)))
WEFT_UNARY(isfinite, Value::boolean(std::isfinite(x)))
WEFT_UNARY(degrees, Value::number(x * 180.0 / M_PI))
WEFT_UNARY(radians, Value::number(x* M_PI / 180.0))

// floor, ceil, trunc: ints stay ints; floats become ints (Python semantics).
Value to_int(double d, const char* fn) {
    if (std::isnan(d))
        throw WeftError(ErrorKind::ValueError, "cannot convert float NaN to integer");
    if (std::isinf(d))
        throw WeftError(ErrorKind::OverflowError, "cannot convert float infinity to integer");
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        throw WeftError(ErrorKind::OverflowError,
                        std::string(fn) + "() result does not fit in a 64-bit int");
    return Value::integer(int64_t(d));
}

Value m_floor(CallContext&, const CallArgs& a) {
    nargs(a, "floor", 1);
    if (lib::is_intlike(a.pos[0])) return Value::integer(lib::int_of(a.pos[0]));
    return to_int(std::floor(num(a, 0, "floor")), "floor");
}
Value m_ceil(CallContext&, const CallArgs& a) {
    nargs(a, "ceil", 1);
    if (lib::is_intlike(a.pos[0])) return Value::integer(lib::int_of(a.pos[0]));
    return to_int(std::ceil(num(a, 0, "ceil")), "ceil");
}
Value m_trunc(CallContext&, const CallArgs& a) {
    nargs(a, "trunc", 1);
    if (lib::is_intlike(a.pos[0])) return Value::integer(lib::int_of(a.pos[0]));
    return to_int(std::trunc(num(a, 0, "trunc")), "trunc");
}

// log(x[, base])
Value m_log(CallContext&, const CallArgs& a) {
    if (a.pos.empty() || a.pos.size() > 2 || !a.kw.empty())
        throw WeftError(ErrorKind::TypeError, "log() takes 1 or 2 arguments");
    double x = num(a, 0, "log");
    if (x <= 0) domain();
    if (a.pos.size() == 1) return Value::number(std::log(x));
    double b = num(a, 1, "log");
    if (b == 1) throw WeftError(ErrorKind::ZeroDivisionError, "float division by zero");
    if (b <= 0) domain();
    return Value::number(std::log(x) / std::log(b));
}

Value m_pow(CallContext&, const CallArgs& a) {
    nargs(a, "pow", 2);
    double x = num(a, 0, "pow"), y = num(a, 1, "pow");
    if (x == 0 && y < 0) domain();
    if (x < 0 && std::isfinite(x) && std::isfinite(y) && y != std::floor(y)) domain();
    double r = std::pow(x, y);
    if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) range_error();
    return Value::number(r);
}

Value m_atan2(CallContext&, const CallArgs& a) {
    nargs(a, "atan2", 2);
    return Value::number(std::atan2(num(a, 0, "atan2"), num(a, 1, "atan2")));
}

Value m_hypot(CallContext&, const CallArgs& a) {
    if (!a.kw.empty()) throw WeftError(ErrorKind::TypeError, "hypot() takes no keyword arguments");
    double r = 0;
    for (size_t i = 0; i < a.pos.size(); ++i)
        r = std::hypot(r, num(a, i, "hypot"));
    return Value::number(r);
}

Value m_gcd(CallContext&, const CallArgs& a) {
    if (!a.kw.empty()) throw WeftError(ErrorKind::TypeError, "gcd() takes no keyword arguments");
    int64_t g = 0;
    for (auto& v : a.pos) {
        if (!lib::is_intlike(v))
            throw WeftError(ErrorKind::TypeError,
                            "'" + type_name(v) + "' object cannot be interpreted as an integer");
        int64_t x = lib::int_of(v);
        if (x == INT64_MIN)
            throw WeftError(ErrorKind::OverflowError, "gcd() argument out of 64-bit range");
        g = std::gcd(g, x);
    }
    return Value::integer(g);
}

Value m_isclose(CallContext&, const CallArgs& a) {
    stdlib::Params p(a, "isclose", {"a", "b", "rel_tol", "abs_tol"}, 2);
    double x = p.number(0), y = p.number(1);
    double rel = p.has(2) ? p.number(2) : 1e-9, abs_tol = p.has(3) ? p.number(3) : 0.0;
    if (rel < 0 || abs_tol < 0)
        throw WeftError(ErrorKind::ValueError, "tolerances must be non-negative");
    if (x == y) return Value::boolean(true);
    if (std::isinf(x) || std::isinf(y)) return Value::boolean(false);
    double d = std::fabs(x - y);
    return Value::boolean(d <= std::fabs(rel * y) || d <= std::fabs(rel * x) || d <= abs_tol);
}

}  // namespace

void init_math_module(ModuleObj& m) {
    using stdlib::define_fn;
    // Only isclose takes keywords (bound by Params); the interpreter rejects any to the others.
    define_fn(m, "sqrt", m_sqrt, nullptr);
    define_fn(m, "exp", m_exp, nullptr);
    define_fn(m, "sin", m_sin, nullptr);
    define_fn(m, "cos", m_cos, nullptr);
    define_fn(m, "tan", m_tan, nullptr);
    define_fn(m, "asin", m_asin, nullptr);
    define_fn(m, "acos", m_acos, nullptr);
    define_fn(m, "atan", m_atan, nullptr);
    define_fn(m, "atan2", m_atan2, nullptr);
    define_fn(m, "log", m_log, nullptr);
    define_fn(m, "log2", m_log2, nullptr);
    define_fn(m, "log10", m_log10, nullptr);
    define_fn(m, "fabs", m_fabs, nullptr);
    define_fn(m, "isnan", m_isnan, nullptr);
    define_fn(m, "isinf", m_isinf, nullptr);
    define_fn(m, "isfinite", m_isfinite, nullptr);
    define_fn(m, "isclose", m_isclose);
    define_fn(m, "degrees", m_degrees, nullptr);
    define_fn(m, "radians", m_radians, nullptr);
    define_fn(m, "floor", m_floor, nullptr);
    define_fn(m, "ceil", m_ceil, nullptr);
    define_fn(m, "trunc", m_trunc, nullptr);
    define_fn(m, "pow", m_pow, nullptr);
    define_fn(m, "hypot", m_hypot, nullptr);
    define_fn(m, "gcd", m_gcd, nullptr);
    m.define("pi", Value::number(M_PI));
    m.define("e", Value::number(M_E));
    m.define("tau", Value::number(2 * M_PI));
    m.define("inf", Value::number(HUGE_VAL));
    m.define("nan", Value::number(std::nan("")));
}

}  // namespace weft
