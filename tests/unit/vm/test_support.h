// test_support.h — helpers for the object-library unit tests: a CallContext
// that can call NativeObj callees and captures stdout, and short constructors.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "compiler/ast.h"
#include "vm/collections.h"

namespace weft::test {

class TestContext : public CallContext {
  public:
    Value call(const Value& callee, std::span<const Value> args) override {
        return call_kw(callee, args, {});
    }
    Value call_kw(const Value& callee, std::span<const Value> args,
                  std::span<const KwArg> kw) override {
        if (callee.is(ObjType::TypeObj))
            return call_type(*this, callee.as<TypeObj>(), CallArgs{args, kw});
        if (!callee.is(ObjType::Native))
            throw WeftError(ErrorKind::TypeError,
                            "'" + type_name(callee) + "' object is not callable");
        auto* n = callee.as<NativeObj>();
        CallArgs a{args, kw};
        if (n->method) {
            Value self = n->self;
            return n->method(*this, self, a);
        }
        return n->fn(*this, a);
    }
    void write_stdout(std::string_view s) override { out += s; }

    bool read_line(std::string& line) override {
        if (input.empty()) return false;
        line = input.front();
        input.pop_front();
        return true;
    }
    std::string out;
    std::deque<std::string> input;
};

inline Value I(int64_t i) {
    return Value::integer(i);
}
inline Value F(double d) {
    return Value::number(d);
}
inline Value B(bool b) {
    return Value::boolean(b);
}
inline Value S(std::string_view s) {
    return make_str(std::string(s));
}
inline Value L(std::vector<Value> v) {
    return make_list(std::move(v));
}
inline Value T(std::vector<Value> v) {
    return make_tuple(std::move(v));
}
inline Value N() {
    return Value();
}
Value D(std::vector<std::pair<Value, Value>> kv);
Value Set(std::vector<Value> v);
Value native(const char* name, NativeFn fn);

// Looks up a core builtin (function or type) by name.
Value builtin(std::string_view name);
// Calls a builtin with positional and keyword arguments.
Value callb(std::string_view name, std::vector<Value> pos, std::vector<KwArg> kw = {});
Value callb(TestContext& cx, std::string_view name, std::vector<Value> pos,
            std::vector<KwArg> kw = {});
// Calls a method (unsharing mutators as the interpreter does).
Value callm(Value& self, std::string_view name, std::vector<Value> pos = {},
            std::vector<KwArg> kw = {});

// Runs `f` and returns "Kind: message" of the WeftError it throws ("" when none).
template <class Fn>
std::string err(Fn f) {
    try {
        f();
    } catch (WeftError& e) {
        return std::string(error_kind_name(e.kind)) + ": " + e.message;
    }
    return "";
}

inline std::string sv_of(const Value& v) {
    return std::string(v.as<StrObj>()->data);
}
inline Value binop(ast::BinaryOp op, const Value& a, const Value& b) {
    return binary_op(op, a, b);
}

}  // namespace weft::test
