// proc.cpp — the `proc` module: run(cmd, input=None, timeout=None, cwd=None,
// env=None, check=False) and spawn_process(cmd, ...) returning a Process handle.
//
// Processes start with vfork + exec (as glibc's posix_spawn does, with clone(CLONE_VM |
// CLONE_VFORK): starting a child from a large interpreter costs no page-table copy, and exec
// failures such as "program not found" come back through the shared memory as the function's
// result rather than as a child's exit status). posix_spawn itself cannot ask for
// PR_SET_PDEATHSIG, which makes a child die with Weft even when Weft is killed hard (SIGKILL).
// Each child leads its own process group, so a timeout or kill() reaches the whole tree it
// started (`sh -c "a | b"`), not just the shell. Every child not yet reaped is listed
// (live_children), so that a program stopped by SIGINT/SIGTERM can terminate and reap them all
// (terminate_children, called by cli/signals.cpp).
//
// Output is captured through pipes drained by a poll loop, which also feeds
// `input`; both pipes are read concurrently so a child filling stderr while we
// wait on stdout cannot deadlock. Captured text is decoded as UTF-8 with
// invalid bytes replaced by U+FFFD (a tool's odd byte should not lose the rest).
//
// Waits never block a worker: the pipes are non-blocking and a task that must
// wait for them parks in the runtime's reactor (rt::wait_fd; several pipes at
// once through a small epoll set of their own), and the child's exit is waited
// for on a pidfd the same way. Outside a task (no runtime) the same waits block
// the thread in poll(). A task cancelled while its child runs kills the child's
// process group and reaps it before Cancelled propagates.
//
// Capabilities: the program (argv[0], or /bin/sh for a string command) must be
// allowed by --allow-run; the check happens before anything is started.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/capabilities.h"
#include "vm/lib_internal.h"
#include "vm/limits.h"
#include "weft/runtime/reactor.hpp"
#include "weft/runtime/runtime.hpp"

extern char** environ;

namespace weft {

namespace {

using stdlib::Params;
using stdlib::self_as;
using Clock = std::chrono::steady_clock;

enum class Stream { Pipe, Null, Inherit, Stdout };

struct Command {
    std::vector<std::string> argv;
    std::string shown;  // for messages
    std::string exe;    // the file to execute, as checked (authorize_command)
};

Command command_arg(CallContext& cx, const Params& p, size_t i) {
    Command c;
    const Value* v = p.get(i);
    if (v->is(ObjType::Str)) {
        c.argv = {"/bin/sh", "-c", v->as<StrObj>()->data};
        c.shown = v->as<StrObj>()->data;
        return c;
    }
    if (!v->is(ObjType::List) && !v->is(ObjType::Tuple)) p.bad(i, "a list of str or a str");
    for (auto& item : collect(cx, *v)) {
        if (!item.is(ObjType::Str)) p.bad(i, "a list of str or a str");
        c.argv.push_back(item.as<StrObj>()->data);
    }
    if (c.argv.empty()) throw WeftError(ErrorKind::ValueError, "empty command");
    c.shown = c.argv[0];
    return c;
}


Stream stream_arg(const Params& p, size_t i, Stream dflt, bool allow_stdout) {
    if (!p.has(i)) return dflt;
    std::string s = p.str(i);
    if (s == "pipe") return Stream::Pipe;
    if (s == "null") return Stream::Null;
    if (s == "inherit") return Stream::Inherit;
    if (s == "stdout" && allow_stdout) return Stream::Stdout;
    throw WeftError(
        ErrorKind::ValueError,
        std::string(allow_stdout ? "stream must be \"pipe\", \"null\", \"inherit\" or \"stdout\""
                                 : "stream must be \"pipe\", \"null\" or \"inherit\"") +
            ", not '" + s + "'");
}

// The children started and not yet reaped (each leads its own process group). A pid stays
// here until it is reaped, so it cannot have been reused by another process while listed.
std::mutex g_children_mu;
std::unordered_set<pid_t>& live_children() {
    static auto* s = new std::unordered_set<pid_t>;  // never freed: used until the very end
    return *s;
}
void note_started(pid_t pid) {
    std::lock_guard<std::mutex> lock(g_children_mu);
    live_children().insert(pid);
}
void note_reaped(pid_t pid) {
    std::lock_guard<std::mutex> lock(g_children_mu);
    live_children().erase(pid);
}

// A started child with the parent's ends of its pipes (-1 when not piped).
struct Child {
    pid_t pid = -1;
    int in = -1, out = -1, err = -1;
};

void close_fd(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
}

// What the child does between vfork and exec, prepared beforehand: it shares our memory and
// runs on this thread's stack, so it may only make system calls (no allocation, no locks).
struct ChildSetup {
    const char* exe;  // the file the capability check resolved (relative to cwd, through the
                      // child's PATH), not argv[0] again: what runs is what was checked
    char** argv;
    char** envp;
    const char* dir;  // working directory, or nullptr
    Stream in, out, err;
    int in_fd, out_fd, err_fd;  // the child's ends of the pipes
    pid_t parent;
    int report_fd;  // close-on-exec pipe: the child writes its errno there if it cannot exec
};

[[noreturn]] void exec_child(const ChildSetup& cs) {
    // Dies with Weft: the kernel sends SIGKILL when the thread that started it ends, which for
    // Weft's long-lived threads means when the process ends, however it ends (even SIGKILL).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != cs.parent) _exit(127);  // Weft died before the line above
    setpgid(0, 0);
    // Signals as a fresh program expects them: SIGPIPE is ignored by Weft (an ignored signal
    // stays ignored across exec) and SIGINT/SIGTERM are blocked in Weft's threads.
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGINT, SIGTERM})
        sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    auto route = [](Stream st, int pipe_end, int target) -> bool {
        if (st == Stream::Pipe) return dup2(pipe_end, target) >= 0;
        if (st == Stream::Null) {
            int fd = open("/dev/null", target == 0 ? O_RDONLY : O_WRONLY);
            if (fd < 0) return false;
            bool ok = fd == target || dup2(fd, target) >= 0;
            if (fd != target) close(fd);
            return ok;
        }
        if (st == Stream::Stdout) return dup2(1, 2) >= 0;
        return true;
    };
    if (!route(cs.in, cs.in_fd, 0) || !route(cs.out, cs.out_fd, 1) || !route(cs.err, cs.err_fd, 2) ||
        (cs.dir && chdir(cs.dir) != 0)) {
        int e = errno;
        ssize_t w = write(cs.report_fd, &e, sizeof e);
        (void)w;
        _exit(127);
    }
    // Like Python's close_fds=True: the child gets stdin, stdout and stderr only, not the
    // interpreter's sockets, pipes or files that lack FD_CLOEXEC (libcurl's, for one). The
    // report pipe stays until exec closes it.
    unsigned rfd = unsigned(cs.report_fd);
    if ((rfd > 3 && syscall(SYS_close_range, 3u, rfd - 1, 0u) != 0) ||
        syscall(SYS_close_range, rfd + 1, ~0u, 0u) != 0)
        for (int fd = 3; fd < 65536; ++fd)
            if (fd != cs.report_fd) close(fd);
    execve(cs.exe, cs.argv, cs.envp);
    int e = errno;
    ssize_t w = write(cs.report_fd, &e, sizeof e);
    (void)w;
    _exit(127);
}

// Starts the child. ProcessError when it cannot be started.
Child spawn_child(const Command& cmd, const std::string& cwd, const std::vector<std::string>* env,
                  Stream in, Stream out, Stream err) {
    if (!cwd.empty()) {
        struct stat st;
        if (stat(cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw WeftError(
                ErrorKind::ProcessError,
                "cannot run '" + cmd.shown + "': working directory '" + cwd + "' does not exist");
    }
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    auto cleanup = [&] {
        for (int* p : {pin, pout, perr}) {
            close_fd(p[0]);
            close_fd(p[1]);
        }
    };
    if ((in == Stream::Pipe && pipe2(pin, O_CLOEXEC) != 0) ||
        (out == Stream::Pipe && pipe2(pout, O_CLOEXEC) != 0) ||
        (err == Stream::Pipe && pipe2(perr, O_CLOEXEC) != 0)) {
        int e = errno;
        cleanup();
        throw WeftError(ErrorKind::ProcessError, "cannot run '" + cmd.shown + "': " + strerror(e));
    }
    std::vector<char*> argv;
    for (auto& a : cmd.argv)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    if (env) {
        for (auto& e : *env)
            envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);
    }
    ChildSetup cs;
    cs.exe = cmd.exe.c_str();
    cs.argv = argv.data();
    cs.envp = env ? envp.data() : environ;
    cs.dir = cwd.empty() ? nullptr : cwd.c_str();
    cs.in = in;
    cs.out = out;
    cs.err = err;
    cs.in_fd = pin[0];
    cs.out_fd = pout[1];
    cs.err_fd = perr[1];
    cs.parent = getpid();
    // Exec failures come back through a close-on-exec pipe (EOF: the exec happened), which also
    // works where vfork is a plain fork (ThreadSanitizer turns it into one).
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        int e = errno;
        cleanup();
        throw WeftError(ErrorKind::ProcessError, "cannot run '" + cmd.shown + "': " + strerror(e));
    }
    cs.report_fd = report[1];
    pid_t pid = vfork();
    if (pid == 0) exec_child(cs);
    int rc = pid < 0 ? errno : 0;
    close(report[1]);
    if (pid > 0) {
        int e = 0;
        ssize_t n;
        while ((n = read(report[0], &e, sizeof e)) < 0 && errno == EINTR) {
        }
        if (n == ssize_t(sizeof e)) rc = e;
    }
    close(report[0]);
    if (pid > 0 && rc != 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (rc != 0) {
        cleanup();
        throw WeftError(ErrorKind::ProcessError,
                        "cannot run '" + cmd.argv[0] + "': " + strerror(rc));
    }
    note_started(pid);
    Child c;
    c.pid = pid;
    close_fd(pin[0]);
    close_fd(pout[1]);
    close_fd(perr[1]);
    c.in = pin[1];
    c.out = pout[0];
    c.err = perr[0];
    return c;
}

// Exit status as Python reports it: the code, or -signal when killed.
int64_t decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return -1;
}

void set_nonblocking(int fd) {
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Seconds left until `deadline`, or -1 (no limit) when !has_deadline.
double seconds_left(bool has_deadline, Clock::time_point deadline) {
    if (!has_deadline) return -1;
    return std::max(0.0, std::chrono::duration<double>(deadline - Clock::now()).count());
}

// Waits until `fd` is ready for reading (or writing) or `timeout` seconds pass (< 0: no
// limit); false on timeout. In a task only the task waits (the reactor watches the fd; it must
// be non-blocking); elsewhere the thread blocks in poll(). Raises Cancelled in a task.
bool wait_ready(int fd, bool write, double timeout) {
    if (rt::current_task())
        return rt::wait_fd(fd, write ? rt::Interest::Write : rt::Interest::Read,
                           timeout < 0 ? std::numeric_limits<double>::infinity() : timeout);
    pollfd p{fd, short(write ? POLLOUT : POLLIN), 0};
    int ms = timeout < 0 ? -1 : int(std::min(timeout * 1000 + 1, 1e9));
    int r;
    while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR) {
    }
    return r > 0;
}

// Waits for `pid` to exit until `deadline` (none when !has_deadline) and reaps it. Returns
// false on timeout. The exit is watched through a pidfd (readable when the process ends);
// kernels without pidfd_open get a polling loop with growing pauses.
bool wait_exit(pid_t pid, bool has_deadline, Clock::time_point deadline, int& status) {
    int pidfd = int(syscall(SYS_pidfd_open, pid, 0));
    struct Closer {
        int fd;
        ~Closer() {
            if (fd >= 0) close(fd);
        }
    } closer{pidfd};
    double pause = 0.0002;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            note_reaped(pid);
            return true;
        }
        if (r < 0 && errno != EINTR) {
            status = 0;
            note_reaped(pid);
            return true;  // already reaped (ECHILD)
        }
        if (r != 0) continue;
        double left = seconds_left(has_deadline, deadline);
        if (has_deadline && left <= 0) return false;
        if (pidfd >= 0) {
            wait_ready(pidfd, false, left);
        } else {
            double d = has_deadline ? std::min(pause, left) : pause;
            if (rt::current_task())
                rt::sleep_for(d);
            else
                std::this_thread::sleep_for(std::chrono::duration<double>(d));
            pause = std::min(pause * 2, 0.01);
        }
    }
}

// After an error or cancellation with the child still running: kill its process group and
// reap it, shielded from cancellation (the task is usually being cancelled right now).
void kill_and_reap(pid_t pid);

void kill_group(pid_t pid, int sig) {
    if (kill(-pid, sig) != 0) kill(pid, sig);
}

void kill_and_reap(pid_t pid) {
    kill_group(pid, SIGKILL);
    int status;
    // SIGKILL cannot be caught: the exit follows at once, so a blocking waitpid is brief and
    // needs no cancellation point (the task may be unwinding from one).
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    note_reaped(pid);
}

// Feeds `input` and collects stdout/stderr until both close or the deadline passes.
// Returns false on timeout. The pipes are watched together through an epoll set, so one
// readiness wait covers all three.
bool communicate(Child& c, const std::string& input, bool has_deadline, Clock::time_point deadline,
                 std::string& out, std::string& err) {
    size_t written = 0;
    if (c.in >= 0 && input.empty()) close_fd(c.in);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) throw WeftError(ErrorKind::ProcessError, std::string("epoll: ") + strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { close(fd); }
    } closer{ep};
    auto watch = [&](int fd, uint32_t events) {
        if (fd < 0) return;
        set_nonblocking(fd);
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    };
    auto done_with = [&](int& fd) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close_fd(fd);
    };
    watch(c.in, EPOLLOUT);
    watch(c.out, EPOLLIN);
    watch(c.err, EPOLLIN);
    char buf[65536];
    while (c.in >= 0 || c.out >= 0 || c.err >= 0) {
        epoll_event evs[3];
        int n = epoll_wait(ep, evs, 3, 0);
        if (n < 0 && errno != EINTR) return true;
        if (n <= 0) {
            double left = seconds_left(has_deadline, deadline);
            if (has_deadline && left <= 0) return false;
            wait_ready(ep, false, left);
            continue;
        }
        for (int k = 0; k < n; ++k) {
            int fd = evs[k].data.fd;
            if (fd == c.in) {
                ssize_t w = write(fd, input.data() + written, input.size() - written);
                if (w > 0) written += size_t(w);
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || written >= input.size())
                    done_with(c.in);
                continue;
            }
            int& owner = fd == c.out ? c.out : c.err;
            ssize_t got = read(fd, buf, sizeof buf);
            if (got > 0)
                (&owner == &c.out ? out : err).append(buf, size_t(got));
            else if (got == 0 || (errno != EAGAIN && errno != EINTR))
                done_with(owner);
        }
    }
    return true;
}

std::vector<std::string> env_arg(CallContext& cx, const Params& p, size_t i) {
    std::vector<std::string> env;
    const Value* v = p.get(i);
    if (!v->is(ObjType::Dict)) p.bad(i, "a dict of str to str");
    auto* d = v->as<DictObj>();
    for (size_t k = 0; k < d->table.end_index(); ++k) {
        auto& e = d->table.entry(k);
        if (!e.live) continue;
        if (!e.key.is(ObjType::Str) || !e.value.is(ObjType::Str)) p.bad(i, "a dict of str to str");
        env.push_back(e.key.as<StrObj>()->data + "=" + e.value.as<StrObj>()->data);
    }
    return env;
}

// Checks that the task may run `cmd` with this working directory and environment, and sets
// cmd.exe to the file the exec must run. A NUL byte in the program, an argument, the working
// directory or the environment is a ValueError before anything else (the exec would see only
// the part before it). ProcessError when no such program is found.
void authorize_command(CallContext& cx, Command& cmd, const std::string& cwd,
                       const std::vector<std::string>* env) {
    for (auto& arg : cmd.argv)
        reject_nul(arg);
    reject_nul(cwd);
    const std::string* path_env = nullptr;
    if (env)
        for (auto& e : *env) {
            reject_nul(e);
            if (e.rfind("PATH=", 0) == 0) path_env = &e;
        }
    std::string child_path = path_env ? path_env->substr(5) : "";
    struct stat st;
    if (!cwd.empty() && (stat(cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
        throw WeftError(ErrorKind::ProcessError, "cannot run '" + cmd.shown +
                                                     "': working directory '" + cwd +
                                                     "' does not exist");
    cmd.exe = require_run(cx, cmd.argv[0], cwd, path_env ? &child_path : nullptr);
    if (cmd.exe.empty())
        throw WeftError(ErrorKind::ProcessError,
                        "cannot run '" + cmd.argv[0] + "': " + strerror(ENOENT));
}

Clock::time_point deadline_after(double seconds) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(std::min(seconds, 1e9)));
}

std::string seconds_text(double t) {
    return float_repr(t);
}

// ---------------------------------------------------------------------------
// run

Value proc_run(CallContext& cx, const CallArgs& a) {
    Params p(a, "run", {"cmd", "input", "timeout", "cwd", "env", "check"}, 1);
    Command cmd = command_arg(cx, p, 0);
    std::string input;
    bool has_input = p.has(1);
    if (has_input) {
        const Value* v = p.get(1);
        if (v->is(ObjType::Str))
            input = v->as<StrObj>()->data;
        else if (v->is(ObjType::Bytes))
            input = v->as<BytesObj>()->data;
        else
            p.bad(1, "str or bytes");
    }
    double timeout = p.timeout(2);
    // Without a timeout of its own the command is bounded by --default-timeout, if set.
    bool by_default = timeout < 0 && (timeout = limits::wait_bound()) >= 0;
    std::string cwd = p.str_or(3, "");
    std::vector<std::string> env;
    if (p.has(4)) env = env_arg(cx, p, 4);
    bool check = p.flag_or(5, false);
    authorize_command(cx, cmd, cwd, p.has(4) ? &env : nullptr);

    Child c = spawn_child(cmd, cwd, p.has(4) ? &env : nullptr,
                          has_input ? Stream::Pipe : Stream::Null, Stream::Pipe, Stream::Pipe);
    std::string out, err;
    auto deadline = deadline_after(timeout < 0 ? 0 : timeout);
    bool finished;
    int status = 0;
    try {
        finished = communicate(c, input, timeout >= 0, deadline, out, err);
        if (finished) finished = wait_exit(c.pid, timeout >= 0, deadline, status);
    } catch (...) {  // cancelled: the child must not outlive the call
        close_fd(c.in);
        close_fd(c.out);
        close_fd(c.err);
        kill_and_reap(c.pid);
        throw;
    }
    if (!finished) {
        close_fd(c.in);
        close_fd(c.out);
        close_fd(c.err);
        kill_and_reap(c.pid);
        throw WeftError(ErrorKind::TimeoutError, "command '" + cmd.shown + "' timed out after " +
                                                     seconds_text(timeout) + " seconds" +
                                                     (by_default ? " (--default-timeout)" : ""));
    }
    int64_t code = decode_status(status);
    if (check && code != 0)
        throw WeftError(ErrorKind::ProcessError, "command '" + cmd.shown + "' exited with status " +
                                                     std::to_string(code) +
                                                     (err.empty() ? "" : ": " + stdlib::utf8_lossy(err)));
    Value d = make_dict();
    stdlib::dict_put(d, "code", Value::integer(code));
    stdlib::dict_put(d, "stdout", make_str(stdlib::utf8_lossy(out)));
    stdlib::dict_put(d, "stderr", make_str(stdlib::utf8_lossy(err)));
    return d;
}

// ---------------------------------------------------------------------------
// Process handles

struct ProcessObj : OpaqueObj {
    Child child;
    std::string shown;
    bool reaped = false;
    int64_t code = 0;
    std::string out_buf;  // stdout bytes read but not yet returned as lines
    bool out_eof = false;
    explicit ProcessObj(const OpaqueClass* c) : OpaqueObj(c) {}
    ~ProcessObj() override {
        close_fd(child.in);
        close_fd(child.out);
        close_fd(child.err);
        int status;
        if (!reaped && child.pid > 0 && waitpid(child.pid, &status, WNOHANG) == child.pid) {
            reaped = true;
            note_reaped(child.pid);
        }
    }
    void poll_exit() {
        int status;
        if (!reaped && waitpid(child.pid, &status, WNOHANG) == child.pid) {
            reaped = true;
            note_reaped(child.pid);
            code = decode_status(status);
        }
    }
    // Reads more stdout (the pipe is non-blocking: waits in the reactor when
    // empty); false at EOF.
    bool read_more() {
        if (child.out < 0 || out_eof) return false;
        char buf[65536];
        for (;;) {
            ssize_t n = read(child.out, buf, sizeof buf);
            if (n > 0) {
                out_buf.append(buf, size_t(n));
                return true;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) {
                wait_ready(child.out, false, -1);
                continue;
            }
            out_eof = true;
            return false;
        }
    }
};

ProcessObj* proc_self(Value& self) {
    return self_as<ProcessObj>(self);
}

Value p_wait(CallContext&, Value& self, const CallArgs& a) {
    auto* p = proc_self(self);
    Params pa(a, "wait", {"timeout"}, 0);
    double timeout = pa.timeout(0);
    bool by_default = timeout < 0 && (timeout = limits::wait_bound()) >= 0;
    if (!p->reaped) {
        close_fd(p->child.in);
        int status = 0;
        if (!wait_exit(p->child.pid, timeout >= 0, deadline_after(timeout < 0 ? 0 : timeout),
                       status))
            throw WeftError(ErrorKind::TimeoutError,
                            "process " + std::to_string(p->child.pid) + " ('" + p->shown +
                                "') still running after " + seconds_text(timeout) + " seconds" +
                                (by_default ? " (--default-timeout)" : ""));
        p->reaped = true;
        p->code = decode_status(status);
    }
    return Value::integer(p->code);
}

Value p_signal(Value& self, int sig) {
    auto* p = proc_self(self);
    p->poll_exit();
    if (!p->reaped) kill_group(p->child.pid, sig);
    return Value();
}

Value p_kill(CallContext&, Value& self, const CallArgs& a) {
    Params pa(a, "kill", {}, 0);
    return p_signal(self, SIGKILL);
}

Value p_terminate(CallContext&, Value& self, const CallArgs& a) {
    Params pa(a, "terminate", {}, 0);
    return p_signal(self, SIGTERM);
}

Value p_read_line(CallContext&, Value& self, const CallArgs& a) {
    auto* p = proc_self(self);
    Params pa(a, "read_line", {}, 0);
    if (p->child.out < 0 && p->out_buf.empty())
        throw WeftError(ErrorKind::ValueError,
                        "read_line(): stdout is not a pipe (spawn with stdout=\"pipe\")");
    for (;;) {
        size_t nl = p->out_buf.find('\n');
        if (nl != std::string::npos) {
            std::string line = p->out_buf.substr(0, nl);
            p->out_buf.erase(0, nl + 1);
            return make_str(stdlib::utf8_lossy(line));
        }
        if (!p->read_more()) break;
    }
    if (p->out_buf.empty()) return Value();
    std::string line = std::move(p->out_buf);
    p->out_buf.clear();
    return make_str(stdlib::utf8_lossy(line));
}

Value p_stdout_lines(CallContext& cx, Value& self, const CallArgs& a) {
    Params pa(a, "stdout_lines", {}, 0);
    std::vector<Value> lines;
    for (;;) {
        Value l = p_read_line(cx, self, CallArgs{});
        if (l.is_none()) break;
        lines.push_back(std::move(l));
    }
    return make_list(std::move(lines));
}

Value p_write(CallContext&, Value& self, const CallArgs& a) {
    auto* p = proc_self(self);
    Params pa(a, "write", {"data"}, 1);
    std::string data = pa.str_or_bytes(0);
    if (p->child.in < 0)
        throw WeftError(ErrorKind::ValueError,
                        "write(): stdin is not a pipe (spawn with stdin=\"pipe\")");
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = write(p->child.in, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                wait_ready(p->child.in, true, -1);
                continue;
            }
            throw WeftError(
                ErrorKind::ProcessError,
                "write to process " + std::to_string(p->child.pid) + ": " + strerror(errno));
        }
        off += size_t(n);
    }
    return Value();
}

Value p_close_stdin(CallContext&, Value& self, const CallArgs& a) {
    Params pa(a, "close_stdin", {}, 0);
    close_fd(proc_self(self)->child.in);
    return Value();
}

Value p_enter(CallContext&, Value& self, const CallArgs&) {
    return self;
}

// Leaving a `with` block: kill the process group if still running, then reap.
Value p_exit(CallContext&, Value& self, const CallArgs&) {
    auto* p = proc_self(self);
    p->poll_exit();
    if (!p->reaped) {
        kill_group(p->child.pid, SIGKILL);
        int status = 0;
        // Killed: the exit is immediate, and leaving a `with` block must not be a
        // cancellation point (the block may be unwinding from one).
        while (waitpid(p->child.pid, &status, 0) < 0 && errno == EINTR) {
        }
        note_reaped(p->child.pid);
        p->reaped = true;
        p->code = decode_status(status);
    }
    close_fd(p->child.in);
    close_fd(p->child.out);
    close_fd(p->child.err);
    return Value::boolean(false);
}

bool p_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* p = const_cast<ProcessObj*>(static_cast<const ProcessObj*>(self));
    if (name == "pid") {
        out = Value::integer(p->child.pid);
    } else if (name == "returncode") {
        p->poll_exit();
        out = p->reaped ? Value::integer(p->code) : Value();
    } else {
        return false;
    }
    return true;
}

std::string p_repr(const OpaqueObj* self) {
    auto* p = static_cast<const ProcessObj*>(self);
    return "<Process pid=" + std::to_string(p->child.pid) + " " + str_repr(p->shown) + ">";
}

const MethodInfo kProcessMethods[] = {{"wait", p_wait, false, "timeout"},
                                      {"kill", p_kill, false},
                                      {"terminate", p_terminate, false},
                                      {"read_line", p_read_line, false},
                                      {"stdout_lines", p_stdout_lines, false},
                                      {"write", p_write, false, "data"},
                                      {"close_stdin", p_close_stdin, false},
                                      {"__enter__", p_enter, false},
                                      {"__exit__", p_exit, false},
                                      {nullptr, nullptr, false}};
const OpaqueClass kProcessClass{"Process", kProcessMethods, p_get_attr, p_repr};

Value proc_spawn(CallContext& cx, const CallArgs& a) {
    Params p(a, "spawn_process", {"cmd", "cwd", "env", "stdin", "stdout", "stderr"}, 1);
    Command cmd = command_arg(cx, p, 0);
    std::string cwd = p.str_or(1, "");
    std::vector<std::string> env;
    if (p.has(2)) env = env_arg(cx, p, 2);
    Stream in = stream_arg(p, 3, Stream::Null, false);
    Stream out = stream_arg(p, 4, Stream::Pipe, false);
    Stream err = stream_arg(p, 5, Stream::Inherit, true);
    authorize_command(cx, cmd, cwd, p.has(2) ? &env : nullptr);
    auto* obj = new ProcessObj(&kProcessClass);
    Value keep = Value::adopt(obj);
    obj->shown = cmd.shown;
    obj->child = spawn_child(cmd, cwd, p.has(2) ? &env : nullptr, in, out, err);
    set_nonblocking(obj->child.in);
    set_nonblocking(obj->child.out);
    return keep;
}

}  // namespace

int terminate_children(double grace_seconds) {
    std::vector<pid_t> pids;
    {
        std::lock_guard<std::mutex> lock(g_children_mu);
        pids.assign(live_children().begin(), live_children().end());
    }
    if (pids.empty()) return 0;
    for (pid_t pid : pids)
        kill_group(pid, SIGTERM);
    // Listed pids are unreaped, so each is still ours (a zombie at worst) and so is its group.
    auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(grace_seconds));
    std::vector<pid_t> left = pids;
    while (!left.empty()) {
        std::vector<pid_t> still;
        for (pid_t pid : left) {
            int status;
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == 0) still.push_back(pid);
        }
        left.swap(still);
        if (left.empty() || Clock::now() >= until) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (pid_t pid : left) {
        kill_group(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    {
        std::lock_guard<std::mutex> lock(g_children_mu);
        for (pid_t pid : pids)
            live_children().erase(pid);
    }
    return int(pids.size());
}

void kill_children_now() noexcept {
    // From a signal-watching thread about to _exit: no waiting, no allocation. try_lock: the
    // lock's owner may be this very process's other thread stopped anywhere; the kernel's
    // parent-death signal still reaches the children if this fails.
    if (!g_children_mu.try_lock()) return;
    for (pid_t pid : live_children())
        kill_group(pid, SIGKILL);
    g_children_mu.unlock();
}

void init_proc_module(ModuleObj& m) {
    // A child that exits before reading its input must not kill the interpreter
    // with SIGPIPE on our next write; writes report EPIPE instead.
    signal(SIGPIPE, SIG_IGN);
    stdlib::define_fn(m, "run", proc_run);
    stdlib::define_fn(m, "spawn_process", proc_spawn);
}

}  // namespace weft
