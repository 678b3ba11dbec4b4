// sys.cpp — exit()/quit(), the `sys` module and print()'s `file=` (see vm/sys.h).
//
// The streams are two immortal objects compared by identity; writing to sys.stdout goes
// through the program's stdout buffer (Vm::write_stdout, which decides when to flush), so
// `print(x, file=sys.stdout)` and `print(x)` keep their order. Standard error is unbuffered,
// as in C and Python.
#include "vm/sys.h"

#include <cstdio>
#include <mutex>

#include "vm/collections.h"
#include "vm/function.h"
#include "vm/interp.h"
#include "vm/lib_internal.h"
#include "vm/object.h"

namespace weft {

namespace {

using lib::type_error;

struct StreamObj : OpaqueObj {
    int fd;
    StreamObj(const OpaqueClass* c, int f) : OpaqueObj(c), fd(f) { flags = kImmortal; }
};

void write_stderr(std::string_view s) {
    // An embedding host's sink (VmOptions::stderr_sink), when the running program has one.
    if (Vm* vm = current_vm(); vm && vm->options().stderr_sink) {
        vm->options().stderr_sink(s);
        return;
    }
    // One fwrite per call: stdio locks the stream, so lines from several tasks do not mix.
    fwrite(s.data(), 1, s.size(), stderr);
    fflush(stderr);
}

Value stream_write(CallContext& cx, Value& self, const CallArgs& a) {
    lib::no_kwargs(a, "write");
    if (a.pos.size() != 1) type_error("write() takes exactly one argument (" + std::to_string(a.pos.size()) + " given)");
    if (!a.pos[0].is(ObjType::Str)) type_error("write() argument must be str, not " + type_name(a.pos[0]));
    std::string_view s = lib::sv(a.pos[0]);
    write_to_file(cx, self, s, false);
    return Value::integer(int64_t(lib::utf8_count(s)));
}

Value stream_flush(CallContext& cx, Value& self, const CallArgs& a) {
    lib::no_kwargs(a, "flush");
    if (!a.pos.empty()) type_error("flush() takes no arguments (" + std::to_string(a.pos.size()) + " given)");
    write_to_file(cx, self, {}, true);
    return Value();
}

bool stream_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* s = static_cast<const StreamObj*>(self);
    if (name == "name") {
        out = make_str(s->fd == 1 ? "<stdout>" : "<stderr>");
        return true;
    }
    if (name == "fileno") {  // an attribute, not a method: what it is matters, not a call
        out = Value::integer(s->fd);
        return true;
    }
    return false;
}

std::string stream_repr(const OpaqueObj* self) {
    return static_cast<const StreamObj*>(self)->fd == 1 ? "<sys.stdout>" : "<sys.stderr>";
}

const MethodInfo kStreamMethods[] = {{"write", stream_write, false}, {"flush", stream_flush, false}, {nullptr, nullptr, false}};
const OpaqueClass kStreamClass{"TextStream", kStreamMethods, stream_attr, stream_repr};

// The code as the user gave it: None, an int or any other value (printed, status 1).
Value exit_code_arg(const CallArgs& a, const char* fn) {
    lib::allow_kwargs(a, fn, {"code"});
    const Value* code = a.find_kw("code");
    if (a.pos.size() > 1 || (code && !a.pos.empty()))
        type_error(std::string(fn) + "() takes at most 1 argument (" + std::to_string(a.pos.size() + (code ? 1 : 0)) +
                   " given)");
    if (!a.pos.empty()) return a.pos[0];
    return code ? *code : Value();
}

}  // namespace

Value std_stream(int fd) {
    static StreamObj* out = new StreamObj(&kStreamClass, 1);
    static StreamObj* err = new StreamObj(&kStreamClass, 2);
    return Value::borrow(fd == 2 ? err : out);
}

void write_to_file(CallContext& cx, const Value& file, std::string_view s, bool flush) {
    int fd = 1;
    if (!file.is_none()) {
        if (!file.is(ObjType::Opaque) || file.as<OpaqueObj>()->cls != &kStreamClass)
            type_error("print() file must be sys.stdout, sys.stderr or None, not " + type_name(file));
        fd = static_cast<const StreamObj*>(file.as<OpaqueObj>())->fd;
    }
    if (fd == 2) {
        if (!s.empty()) write_stderr(s);
        return;
    }
    if (!s.empty()) cx.write_stdout(s);
    if (flush) cx.flush_stdout();
}

Value bi_exit(CallContext&, const CallArgs& a) {
    Value code = exit_code_arg(a, "exit");
    std::string msg;
    if (code.is_int()) msg = std::to_string(code.as_int());
    else if (!code.is_none()) msg = to_str(code);
    Value err = make_error(ErrorKind::SystemExit, std::move(msg));
    err.as<StructObj>()->error->results = code;
    throw WeftError(err);
}

void init_sys_module(ModuleObj& m, const std::string& program, const std::vector<std::string>& args) {
    auto* ex = new NativeObj("sys.exit", bi_exit);
    set_native_kwargs(ex, "code");
    m.define("exit", Value::adopt(ex));
    std::vector<Value> argv{make_str(program)};
    for (auto& s : args) argv.push_back(make_str(s));
    m.define("argv", make_list(std::move(argv)));
    m.define("stdout", std_stream(1));
    m.define("stderr", std_stream(2));
}

// The mark of a failed import: the status, kept in ErrorData::results, which only
// PartialFailure (never an import failure) and SystemExit (its code) use otherwise. Copies of
// the error value (copy-on-write, task traces) keep it.
constexpr int64_t kImportFailureStatus = 2;

void throw_import_failure(ErrorKind kind, std::string message) {
    Value err = make_error(kind, std::move(message));
    err.as<StructObj>()->error->results = Value::integer(kImportFailureStatus);
    throw WeftError(err);
}

bool is_import_failure(const Value& err) {
    if (!err.is(ObjType::Struct) || !err.as<StructObj>()->error) return false;
    auto* s = err.as<StructObj>();
    int k = s->type->builtin_error;
    return k != int(ErrorKind::SystemExit) && k != int(ErrorKind::PartialFailure) && s->error->results.is_int() &&
           s->error->results.as_int() == kImportFailureStatus;
}

bool is_system_exit(const Value& err) {
    return err.is(ObjType::Struct) && err.as<StructObj>()->error &&
           err.as<StructObj>()->type->builtin_error == int(ErrorKind::SystemExit);
}

int system_exit_status(const Value& err) {
    if (!err.is(ObjType::Struct) || !err.as<StructObj>()->error) return -1;
    auto* s = err.as<StructObj>();
    if (s->type->builtin_error == int(ErrorKind::ErrorGroup) || s->type->builtin_error == int(ErrorKind::PartialFailure)) {
        // exit() in tasks: every member must be an exit, else the group is a real failure.
        if (s->error->errors.empty()) return -1;
        for (auto& e : s->error->errors)
            if (!is_system_exit(e)) return -1;
        return system_exit_status(s->error->errors[0]);
    }
    if (!is_system_exit(err)) return -1;
    const Value& code = s->error->results;
    if (code.is_int()) return int(code.as_int() & 0xff);
    if (code.is_none()) {
        // SystemExit(...) built by the program: its message is the code.
        const std::string& m = s->error->message;
        if (m.empty()) return 0;
        char* end = nullptr;
        long n = strtol(m.c_str(), &end, 10);
        if (*end == 0) return int(n & 0xff);
        write_stderr(m + "\n");
        return 1;
    }
    if (code.is_bool()) return code.as_bool() ? 1 : 0;
    write_stderr(to_str(code) + "\n");
    return 1;
}

}  // namespace weft
