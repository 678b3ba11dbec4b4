// test_stubs.cpp — minimal versions of what the interpreter provides
// (make_error, callable_repr, error_kind_name, write_to_file, current_budget), and test helpers.
#include "test_support.h"
#include "vm/task_context.h"

namespace weft {

const char* error_kind_name(ErrorKind k) {
    static const char* const kNames[] = {
        "Error",          "ValueError",        "TypeError",      "KeyError",
        "IndexError",     "ZeroDivisionError", "OverflowError",  "AttributeError",
        "NameError",      "RecursionError",    "MemoryError",    "AssertionError", "TimeoutError",
        "ChannelClosed",  "PermissionDenied",  "IOError",        "NetworkError",
        "ProcessError",   "ActorStopped",      "Deadlock",       "ErrorGroup",
        "PartialFailure", "Cancelled",         "SystemExit",     "KeyboardInterrupt",
        "DatabaseError",  "MailboxFull",       "CircuitOpen",    "ClusterError",   "WorkerLost"};
    static_assert(sizeof kNames / sizeof kNames[0] == size_t(ErrorKind::Count),
                  "one name per ErrorKind (vm/native.h)");
    return kNames[size_t(k)];
}

// No embedding host here: no call has a step, output or memory budget (vm/task_context.cpp).
CallBudget* current_budget() { return nullptr; }

// print(..., file=...) writes through the sys module (vm/sys.cpp, not linked here): the tests'
// print goes to the context's standard output.
void write_to_file(CallContext& cx, const Value&, std::string_view s, bool) {
    cx.write_stdout(s);
}

Value make_error(ErrorKind kind, std::string msg) {
    auto* t = new StructTypeObj();
    t->name = error_kind_name(kind);
    t->is_error = true;
    t->builtin_error = int(kind);
    auto* s = new StructObj(t);
    obj_decref(t);
    s->error->message = std::move(msg);
    return Value::adopt(s);
}

std::string callable_repr(const Value& v) {
    if (v.is(ObjType::Native)) return "<built-in function " + v.as<NativeObj>()->name + ">";
    if (v.is(ObjType::StructType)) return "<class '" + v.as<StructTypeObj>()->name + "'>";
    return "<object>";
}

namespace test {

Value D(std::vector<std::pair<Value, Value>> kv) {
    Value d = make_dict();
    for (auto& [k, v] : kv)
        d.as<DictObj>()->table.insert(k, v);
    return d;
}

Value Set(std::vector<Value> v) {
    Value s = make_set();
    for (auto& x : v)
        s.as<SetObj>()->table.insert(x, Value());
    return s;
}

Value native(const char* name, NativeFn fn) {
    return Value::adopt(new NativeObj(name, fn));
}

Value builtin(std::string_view name) {
    static std::vector<std::pair<std::string, Value>>* table = [] {
        auto* t = new std::vector<std::pair<std::string, Value>>();
        register_core_builtins(*t);
        return t;
    }();
    for (auto& [n, v] : *table)
        if (n == name) return v;
    ADD_FAILURE() << "no builtin " << name;
    return Value();
}

Value callb(TestContext& cx, std::string_view name, std::vector<Value> pos, std::vector<KwArg> kw) {
    Value f = builtin(name);
    CallArgs a{pos, kw};
    if (f.is(ObjType::TypeObj)) return call_type(cx, f.as<TypeObj>(), a);
    return f.as<NativeObj>()->fn(cx, a);
}

Value callb(std::string_view name, std::vector<Value> pos, std::vector<KwArg> kw) {
    TestContext cx;
    return callb(cx, name, std::move(pos), std::move(kw));
}

Value callm(Value& self, std::string_view name, std::vector<Value> pos, std::vector<KwArg> kw) {
    TestContext cx;
    return call_method(cx, self, name, CallArgs{pos, kw});
}

}  // namespace test
}  // namespace weft
