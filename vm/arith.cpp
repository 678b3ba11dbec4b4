// arith.cpp — binary and unary operators on every built-in type.
//
// Weft ints are 64-bit; every operation that can leave that range (+ - * ** <<,
// negation and abs of INT64_MIN, INT64_MIN // -1) raises OverflowError
// "integer overflow" instead of wrapping, using the GCC overflow builtins. `//`
// and `%` use floor semantics, `/` is always true division, and float
// floor-division/modulo follow CPython's float_divmod so results agree to the
// last bit. Sequence results (+, *) always build new objects: value semantics
// means `xs + ys` can never alias either operand.
#include <cmath>
#include <limits>

#include "compiler/ast.h"
#include "vm/lib_internal.h"
#include "vm/memory.h"

namespace weft {

using namespace lib;
using ast::BinaryOp;

namespace {

const char* op_symbol(BinaryOp op) {
    switch (op) {
        case BinaryOp::Add:
            return "+";
        case BinaryOp::Sub:
            return "-";
        case BinaryOp::Mul:
            return "*";
        case BinaryOp::Div:
            return "/";
        case BinaryOp::FloorDiv:
            return "//";
        case BinaryOp::Mod:
            return "%";
        case BinaryOp::Pow:
            return "** or pow()";
        case BinaryOp::MatMul:
            return "@";
        case BinaryOp::BitAnd:
            return "&";
        case BinaryOp::BitOr:
            return "|";
        case BinaryOp::BitXor:
            return "^";
        case BinaryOp::Shl:
            return "<<";
        case BinaryOp::Shr:
            return ">>";
    }
    return "?";
}

[[noreturn]] void unsupported(BinaryOp op, const Value& a, const Value& b) {
    type_error(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" +
               type_name(a) + "' and '" + type_name(b) + "'");
}

[[noreturn]] void overflow() {
    raise(ErrorKind::OverflowError, "integer overflow");
}

int64_t int_pow(int64_t base, int64_t exp) {
    int64_t result = 1;
    while (exp > 0) {
        if (exp & 1) {
            if (__builtin_mul_overflow(result, base, &result)) overflow();
        }
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) {
            // base*base overflowed but may not be needed if result is 0/1/-1 special
            overflow();
        }
    }
    return result;
}

Value float_pow(double x, double y) {
    if (x == 0.0 && y < 0)
        raise(ErrorKind::ZeroDivisionError, "0.0 cannot be raised to a negative power");
    if (x < 0 && y != std::floor(y) && std::isfinite(y))
        value_error("negative number cannot be raised to a fractional power");
    double r = std::pow(x, y);
    if (std::isinf(r) && std::isfinite(x) && std::isfinite(y))
        raise(ErrorKind::OverflowError, "(34, 'Numerical result out of range')");
    return Value::number(r);
}

Value int_binary(BinaryOp op, int64_t x, int64_t y) {
    int64_t r;
    switch (op) {
        case BinaryOp::Add:
            if (__builtin_add_overflow(x, y, &r)) overflow();
            return Value::integer(r);
        case BinaryOp::Sub:
            if (__builtin_sub_overflow(x, y, &r)) overflow();
            return Value::integer(r);
        case BinaryOp::Mul:
            if (__builtin_mul_overflow(x, y, &r)) overflow();
            return Value::integer(r);
        case BinaryOp::Div:
            if (y == 0) raise(ErrorKind::ZeroDivisionError, "division by zero");
            return Value::number(double(x) / double(y));
        case BinaryOp::FloorDiv: {
            if (y == 0) raise(ErrorKind::ZeroDivisionError, "integer division or modulo by zero");
            if (y == -1) {
                if (x == std::numeric_limits<int64_t>::min()) overflow();
                return Value::integer(-x);
            }
            int64_t q = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
            return Value::integer(q);
        }
        case BinaryOp::Mod: {
            if (y == 0) raise(ErrorKind::ZeroDivisionError, "integer modulo by zero");
            if (y == -1) return Value::integer(0);
            int64_t m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) m += y;
            return Value::integer(m);
        }
        case BinaryOp::Pow:
            if (y < 0) {
                if (x == 0)
                    raise(ErrorKind::ZeroDivisionError, "0.0 cannot be raised to a negative power");
                return Value::number(std::pow(double(x), double(y)));
            }
            if (x == 0) return Value::integer(y == 0 ? 1 : 0);
            if (x == 1) return Value::integer(1);
            if (x == -1) return Value::integer((y & 1) ? -1 : 1);
            return Value::integer(int_pow(x, y));
        case BinaryOp::BitAnd:
            return Value::integer(x & y);
        case BinaryOp::BitOr:
            return Value::integer(x | y);
        case BinaryOp::BitXor:
            return Value::integer(x ^ y);
        case BinaryOp::Shl:
            if (y < 0) value_error("negative shift count");
            if (x == 0) return Value::integer(0);
            if (y >= 64) overflow();
            r = int64_t(uint64_t(x) << y);
            if ((r >> y) != x) overflow();
            return Value::integer(r);
        case BinaryOp::Shr:
            if (y < 0) value_error("negative shift count");
            if (y >= 64) return Value::integer(x < 0 ? -1 : 0);
            return Value::integer(x >> y);
        default:
            unsupported(op, Value::integer(x), Value::integer(y));
    }
}

Value float_binary(BinaryOp op, double x, double y, const Value& a, const Value& b) {
    switch (op) {
        case BinaryOp::Add:
            return Value::number(x + y);
        case BinaryOp::Sub:
            return Value::number(x - y);
        case BinaryOp::Mul:
            return Value::number(x * y);
        case BinaryOp::Div:
            if (y == 0.0) raise(ErrorKind::ZeroDivisionError, "float division by zero");
            return Value::number(x / y);
        case BinaryOp::FloorDiv:
            if (y == 0.0) raise(ErrorKind::ZeroDivisionError, "float floor division by zero");
            return Value::number(float_floor_div(x, y));
        case BinaryOp::Mod:
            if (y == 0.0) raise(ErrorKind::ZeroDivisionError, "float modulo");
            return Value::number(float_mod(x, y));
        case BinaryOp::Pow:
            return float_pow(x, y);
        default:
            unsupported(op, a, b);
    }
}

// Sequence repetition count: negative counts give an empty result.
// A result larger than the process could ever hold is a MemoryError before anything is
// allocated (vm/memory.h); `what` names the result ("a str").
int64_t repeat_count(const Value& n, size_t unit, const char* what) {
    int64_t k = int_of(n);
    if (k <= 0 || unit == 0) return 0;
    uint64_t bytes = mul_bytes(uint64_t(k), unit);
    if (bytes > uint64_t(INT64_MAX)) raise(ErrorKind::OverflowError, "repeated sequence is too long");  // CPython's
    check_alloc(bytes, what);
    return k;
}

Value repeat(const Value& seq, const Value& n) {
    Obj* o = seq.as_obj();
    switch (o->type) {
        case ObjType::Str: {
            auto& d = static_cast<StrObj*>(o)->data;
            int64_t k = repeat_count(n, d.size(), "a str");
            std::string r;
            r.reserve(d.size() * size_t(k));
            for (int64_t i = 0; i < k; ++i)
                r += d;
            return make_str(std::move(r));
        }
        case ObjType::Bytes: {
            auto& d = static_cast<BytesObj*>(o)->data;
            int64_t k = repeat_count(n, d.size(), "a bytes");
            std::string r;
            r.reserve(d.size() * size_t(k));
            for (int64_t i = 0; i < k; ++i)
                r += d;
            return make_bytes(std::move(r));
        }
        case ObjType::List:
        case ObjType::Tuple: {
            auto& items = o->type == ObjType::List ? static_cast<ListObj*>(o)->items
                                                   : static_cast<TupleObj*>(o)->items;
            int64_t k = repeat_count(n, items.size() * sizeof(Value),
                                     o->type == ObjType::List ? "a list" : "a tuple");
            std::vector<Value> r;
            r.reserve(items.size() * size_t(k));
            for (int64_t i = 0; i < k; ++i)
                r.insert(r.end(), items.begin(), items.end());
            return o->type == ObjType::List ? make_list(std::move(r)) : make_tuple(std::move(r));
        }
        default:
            break;
    }
    return Value();
}

bool is_sequence_obj(const Value& v) {
    return v.is(ObjType::Str) || v.is(ObjType::Bytes) || v.is(ObjType::List) ||
           v.is(ObjType::Tuple);
}

Value set_binary(BinaryOp op, const SetObj* x, const SetObj* y) {
    auto* r = new SetObj();
    Value rv = Value::adopt(r);
    auto& a = x->table;
    auto& b = y->table;
    switch (op) {
        case BinaryOp::BitOr:
            r->table = a;
            for (size_t i = 0; i < b.end_index(); ++i)
                if (b.entry(i).live) r->table.insert(b.entry(i).key, Value());
            break;
        case BinaryOp::BitAnd:
            for (size_t i = 0; i < a.end_index(); ++i)
                if (a.entry(i).live && b.find(a.entry(i).key) >= 0)
                    r->table.insert(a.entry(i).key, Value());
            break;
        case BinaryOp::Sub:
            for (size_t i = 0; i < a.end_index(); ++i)
                if (a.entry(i).live && b.find(a.entry(i).key) < 0)
                    r->table.insert(a.entry(i).key, Value());
            break;
        case BinaryOp::BitXor:
            for (size_t i = 0; i < a.end_index(); ++i)
                if (a.entry(i).live && b.find(a.entry(i).key) < 0)
                    r->table.insert(a.entry(i).key, Value());
            for (size_t i = 0; i < b.end_index(); ++i)
                if (b.entry(i).live && a.find(b.entry(i).key) < 0)
                    r->table.insert(b.entry(i).key, Value());
            break;
        default:
            break;
    }
    return rv;
}

}  // namespace

namespace lib {
// CPython's float_divmod, floor part.
double float_floor_div(double vx, double wx) {
    double mod = std::fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) div -= 1.0;
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = std::copysign(0.0, vx / wx);
    }
    return floordiv;
}
double float_mod(double vx, double wx) {
    double mod = std::fmod(vx, wx);
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) mod += wx;
    } else {
        mod = std::copysign(0.0, wx);
    }
    return mod;
}
}  // namespace lib

Value str_concat(Value& a, const Value& b) {
    auto* s = a.as<StrObj>();
    auto* t = b.as<StrObj>();
    if (obj_unique(s) && !s->interned) {
        s->data += t->data;
        s->hash = 0;
        s->ascii = s->ascii && t->ascii;
        if (s->cp_len >= 0 && t->cp_len >= 0)
            s->cp_len += t->cp_len;
        else
            s->cp_len = s->ascii ? int64_t(s->data.size()) : -1;
        return a;
    }
    std::string r;
    r.reserve(s->data.size() + t->data.size());
    r += s->data;
    r += t->data;
    auto* o = new StrObj(std::move(r));
    return Value::adopt(o);
}

Value binary_op(BinaryOp op, const Value& a, const Value& b) {
    if ((a.is(ObjType::Promise) || b.is(ObjType::Promise)) && promise_resolver) {  // a promise is forced when inspected
        Value r_a = a;
        resolve_if_promise(r_a);
        Value r_b = b;
        resolve_if_promise(r_b);
        return binary_op(op, r_a, r_b);
    }
    // Numbers (bool counts as int).
    if (is_numlike(a) && is_numlike(b)) {
        if (a.is_float() || b.is_float()) {
            if (op >= BinaryOp::MatMul) unsupported(op, a, b);
            return float_binary(op, num_of(a), num_of(b), a, b);
        }
        if (a.is_bool() && b.is_bool() &&
            (op == BinaryOp::BitAnd || op == BinaryOp::BitOr || op == BinaryOp::BitXor)) {
            bool x = a.as_bool(), y = b.as_bool();
            return vbool(op == BinaryOp::BitAnd  ? (x && y)
                         : op == BinaryOp::BitOr ? (x || y)
                                                 : (x != y));
        }
        if (op == BinaryOp::MatMul) unsupported(op, a, b);
        return int_binary(op, int_of(a), int_of(b));
    }
    if (!a.is_obj() && !b.is_obj()) unsupported(op, a, b);
    ObjType ta = a.is_obj() ? a.as_obj()->type : ObjType::Opaque;
    ObjType tb = b.is_obj() ? b.as_obj()->type : ObjType::Opaque;
    switch (op) {
        case BinaryOp::Add:
            if (ta == ObjType::Str) {
                if (tb != ObjType::Str)
                    type_error("can only concatenate str (not \"" + type_name(b) + "\") to str");
                std::string r;
                r.reserve(sv(a).size() + sv(b).size());
                r += sv(a);
                r += sv(b);
                return make_str(std::move(r));
            }
            if (ta == ObjType::List || ta == ObjType::Tuple) {
                if (tb != ta)
                    type_error("can only concatenate " + type_name(a) + " (not \"" + type_name(b) +
                               "\") to " + type_name(a));
                auto& x = ta == ObjType::List ? a.as<ListObj>()->items : a.as<TupleObj>()->items;
                auto& y = ta == ObjType::List ? b.as<ListObj>()->items : b.as<TupleObj>()->items;
                std::vector<Value> r;
                r.reserve(x.size() + y.size());
                r.insert(r.end(), x.begin(), x.end());
                r.insert(r.end(), y.begin(), y.end());
                return ta == ObjType::List ? make_list(std::move(r)) : make_tuple(std::move(r));
            }
            if (ta == ObjType::Bytes && tb == ObjType::Bytes)
                return make_bytes(a.as<BytesObj>()->data + b.as<BytesObj>()->data);
            break;
        case BinaryOp::Mul:
            if (a.is_obj() && is_sequence_obj(a)) {
                if (is_intlike(b)) return repeat(a, b);
                type_error("can't multiply sequence by non-int of type '" + type_name(b) + "'");
            }
            if (b.is_obj() && is_sequence_obj(b)) {
                if (is_intlike(a)) return repeat(b, a);
                type_error("can't multiply sequence by non-int of type '" + type_name(a) + "'");
            }
            break;
        case BinaryOp::Mod:
            if (ta == ObjType::Str) return make_str(percent_format(sv(a), b));
            break;
        case BinaryOp::BitOr:
            if (ta == ObjType::Dict && tb == ObjType::Dict) {
                auto* r = new DictObj();
                Value rv = Value::adopt(r);
                r->table = a.as<DictObj>()->table;
                auto& t = b.as<DictObj>()->table;
                for (size_t i = 0; i < t.end_index(); ++i)
                    if (t.entry(i).live) r->table.insert(t.entry(i).key, t.entry(i).value);
                return rv;
            }
            [[fallthrough]];
        case BinaryOp::BitAnd:
        case BinaryOp::BitXor:
        case BinaryOp::Sub:
            if (ta == ObjType::Set && tb == ObjType::Set)
                return set_binary(op, a.as<SetObj>(), b.as<SetObj>());
            break;
        default:
            break;
    }
    unsupported(op, a, b);
}

Value unary_op(ast::UnaryOp op, const Value& a) {
    if ((a.is(ObjType::Promise)) && promise_resolver) {  // a promise is forced when inspected
        Value r_a = a;
        resolve_if_promise(r_a);
        return unary_op(op, r_a);
    }
    using ast::UnaryOp;
    switch (op) {
        case UnaryOp::Not:
            return vbool(!truthy(a));
        case UnaryOp::Neg:
            if (a.is_float()) return Value::number(-a.as_float());
            if (is_intlike(a)) {
                int64_t x = int_of(a);
                if (x == std::numeric_limits<int64_t>::min()) overflow();
                return Value::integer(-x);
            }
            type_error("bad operand type for unary -: '" + type_name(a) + "'");
        case UnaryOp::Pos:
            if (a.is_float()) return a;
            if (is_intlike(a)) return Value::integer(int_of(a));
            type_error("bad operand type for unary +: '" + type_name(a) + "'");
        case UnaryOp::Invert:
            if (is_intlike(a)) return Value::integer(~int_of(a));
            type_error("bad operand type for unary ~: '" + type_name(a) + "'");
    }
    return Value();
}

}  // namespace weft
