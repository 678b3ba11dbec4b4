// net.cpp — the `net` module: TCP connections and listeners (spec section 12).
//
//   net.connect(host, port, timeout=None) -> Connection
//   net.listen(host="127.0.0.1", port=0, backlog=1024) -> Listener
//
// A Connection has read(n=-1), read_line(), read_exactly(n), write(data), close(), `peer`
// and `timeout`, and works in `with`; a Listener has accept(), `port`, `host`, close(), and
// `for conn in listener:` accepts until it is closed.
//
// Every socket is non-blocking and every wait is a readiness wait on the runtime's reactor
// (rt::wait_fd): a task waiting for a peer parks, never its worker, and a cancelled task
// leaves the wait with Cancelled. Name resolution (getaddrinfo, which blocks) runs on the
// blocking pool. A wait that outlasts the connection's timeout raises TimeoutError; a peer
// that resets or refuses raises NetworkError. Capabilities: connecting needs --allow-net for
// the host and port, listening for the bind address (Deno's rule: --allow-net=127.0.0.1:8000
// allows both); the check comes before any socket exists, so a denial leaves none.
//
// A connection may be read by one task while another writes to it; close() from any task
// wakes the others' waits, and the descriptor is closed when the last wait has left
// (stdlib/socket.h, shared with the HTTP server).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "stdlib/stdlib.h"
#include "stdlib/socket.h"
#include "stdlib/stdlib_internal.h"
#include "vm/capabilities.h"
#include "vm/lib_internal.h"
#include "weft/runtime/reactor.hpp"
#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

using stdlib::addr_tuple;
using stdlib::host_port;
using stdlib::Params;
using stdlib::resolve;
using stdlib::Resolved;
using stdlib::self_as;
using stdlib::Socket;

constexpr size_t kReadChunk = 65536;

std::string seconds_text(double t) {
    return float_repr(t);
}

[[noreturn]] void net_error(const std::string& what, int err) {
    throw WeftError(ErrorKind::NetworkError, what + ": " + strerror(err));
}

int port_arg(const Params& p, size_t i, int64_t dflt) {
    int64_t port = p.has(i) ? p.integer(i) : dflt;
    if (port < 0 || port > 65535)
        throw WeftError(ErrorKind::ValueError, "port must be in 0..65535, not " + std::to_string(port));
    return int(port);
}

// ---------------------------------------------------------------------------
// Connection

struct ConnectionObj : OpaqueObj {
    std::shared_ptr<Socket> sock = std::make_shared<Socket>();
    std::string buf;  // bytes received but not yet returned
    bool eof = false;
    double timeout = -1;  // seconds per wait; < 0: none
    Value peer;
    explicit ConnectionObj(const OpaqueClass* c) : OpaqueObj(c) {}
    ~ConnectionObj() override { sock->close_socket(); }

    std::string peer_text() const {
        if (!peer.is(ObjType::Tuple)) return "?";
        auto& items = peer.as<TupleObj>()->items;
        return host_port(items[0].as<StrObj>()->data, int(items[1].as_int()));
    }
    void check_open(const char* op) const {
        if (sock->closed.load()) throw WeftError(ErrorKind::ValueError, std::string(op) + "() on a closed connection");
    }
    void wait(bool write, const char* op) {
        if (!sock->wait(write, timeout))
            throw WeftError(ErrorKind::TimeoutError, std::string(op) + "() from " + peer_text() +
                                                         " timed out after " + seconds_text(timeout) + " seconds");
    }
    // Receives more bytes into buf; false at end of stream.
    bool fill(const char* op) {
        if (eof) return false;
        for (;;) {
            check_open(op);
            // Received straight into buf's spare room: a 64 KiB array would not fit a fiber's
            // stack comfortably.
            size_t had = buf.size();
            buf.resize(had + kReadChunk);
            ssize_t n = recv(sock->fd.load(), buf.data() + had, kReadChunk, 0);
            buf.resize(had + size_t(n > 0 ? n : 0));
            if (n > 0) return true;
            if (n == 0) {
                eof = true;
                return false;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                wait(false, op);
                continue;
            }
            net_error("reading from " + peer_text(), errno);
        }
    }
};

ConnectionObj* conn_self(Value& self) {
    return self_as<ConnectionObj>(self);
}

Value bytes_of(std::string s) {
    return make_bytes(std::move(s));
}

Value c_read(CallContext&, Value& self, const CallArgs& a) {
    auto* c = conn_self(self);
    Params p(a, "read", {"n"}, 0);
    int64_t n = p.int_or(0, -1);
    if (n < 0) {
        while (c->fill("read")) {
        }
        return bytes_of(std::exchange(c->buf, std::string()));
    }
    if (n == 0) return bytes_of("");
    if (c->buf.empty()) c->fill("read");
    size_t take = std::min(size_t(n), c->buf.size());
    std::string out = c->buf.substr(0, take);
    c->buf.erase(0, take);
    return bytes_of(std::move(out));
}

Value c_read_exactly(CallContext&, Value& self, const CallArgs& a) {
    auto* c = conn_self(self);
    Params p(a, "read_exactly", {"n"}, 1);
    int64_t n = p.integer(0);
    if (n < 0) throw WeftError(ErrorKind::ValueError, "read_exactly() needs n >= 0");
    while (c->buf.size() < size_t(n))
        if (!c->fill("read_exactly"))
            throw WeftError(ErrorKind::NetworkError,
                            "connection from " + c->peer_text() + " closed after " +
                                std::to_string(c->buf.size()) + " of " + std::to_string(n) + " bytes");
    std::string out = c->buf.substr(0, size_t(n));
    c->buf.erase(0, size_t(n));
    return bytes_of(std::move(out));
}

Value c_read_line(CallContext&, Value& self, const CallArgs& a) {
    auto* c = conn_self(self);
    Params p(a, "read_line", {}, 0);
    size_t from = 0;
    for (;;) {
        size_t nl = c->buf.find('\n', from);
        if (nl != std::string::npos) {
            std::string line = c->buf.substr(0, nl);
            c->buf.erase(0, nl + 1);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return make_str(stdlib::utf8_lossy(line));
        }
        from = c->buf.size();
        if (!c->fill("read_line")) break;
    }
    if (c->buf.empty()) return Value();  // end of stream
    return make_str(stdlib::utf8_lossy(std::exchange(c->buf, std::string())));
}

Value c_write(CallContext&, Value& self, const CallArgs& a) {
    auto* c = conn_self(self);
    Params p(a, "write", {"data"}, 1);
    std::string data = p.str_or_bytes(0);
    size_t off = 0;
    while (off < data.size()) {
        c->check_open("write");
        ssize_t n = send(c->sock->fd.load(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += size_t(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->wait(true, "write");
            continue;
        }
        net_error("writing to " + c->peer_text(), errno);
    }
    return Value::integer(int64_t(data.size()));
}

Value c_close(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "close", {}, 0);
    conn_self(self)->sock->close_socket();
    return Value();
}

Value c_enter(CallContext&, Value& self, const CallArgs&) {
    return self;
}

Value c_exit(CallContext&, Value& self, const CallArgs&) {
    conn_self(self)->sock->close_socket();
    return Value::boolean(false);
}

bool c_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* c = static_cast<const ConnectionObj*>(self);
    if (name == "peer") {
        out = c->peer;
    } else if (name == "timeout") {
        out = c->timeout < 0 ? Value() : Value::number(c->timeout);
    } else if (name == "closed") {
        out = Value::boolean(c->sock->closed.load());
    } else {
        return false;
    }
    return true;
}

std::string c_repr(const OpaqueObj* self) {
    auto* c = static_cast<const ConnectionObj*>(self);
    return "<net Connection " + c->peer_text() + (c->sock->closed.load() ? " (closed)" : "") + ">";
}

const MethodInfo kConnectionMethods[] = {{"read", c_read, false, "n"},
                                         {"read_line", c_read_line, false},
                                         {"read_exactly", c_read_exactly, false, "n"},
                                         {"write", c_write, false, "data"},
                                         {"close", c_close, false},
                                         {"__enter__", c_enter, false},
                                         {"__exit__", c_exit, false},
                                         {nullptr, nullptr, false}};
const OpaqueClass kConnectionClass{"Connection", kConnectionMethods, c_get_attr, c_repr};

Value new_connection(int fd, const sockaddr_storage& peer, double timeout) {
    auto* c = new ConnectionObj(&kConnectionClass);
    Value keep = Value::adopt(c);
    c->sock->fd.store(fd);
    c->timeout = timeout;
    c->peer = addr_tuple(peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return keep;
}

Value net_connect(CallContext& cx, const CallArgs& a) {
    Params p(a, "connect", {"host", "port", "timeout"}, 2);
    std::string host = p.str(0);
    int port = port_arg(p, 1, 0);
    double timeout = p.timeout(2);
    require_net(cx, host, port);
    Resolved r = resolve(host, port, false);
    stdlib::raise_open_files_limit();
    int last_err = ECONNREFUSED;
    for (size_t i = 0; i < r.addrs.size(); ++i) {
        int fd = socket(r.families[i], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        auto sock = std::make_shared<Socket>();
        sock->fd.store(fd);
        if (connect(fd, reinterpret_cast<const sockaddr*>(&r.addrs[i]), r.lens[i]) != 0) {
            if (errno != EINPROGRESS) {
                last_err = errno;
                continue;  // ~Socket closes fd
            }
            if (!sock->wait(true, timeout))
                throw WeftError(ErrorKind::TimeoutError, "connecting to " + host_port(host, port) +
                                                             " timed out after " + seconds_text(timeout) +
                                                             " seconds");
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                last_err = err;
                continue;
            }
        }
        sock->fd.store(-1);  // the connection takes the fd
        return new_connection(fd, r.addrs[i], timeout);
    }
    net_error("cannot connect to " + host_port(host, port), last_err);
}

// ---------------------------------------------------------------------------
// Listener

struct ListenerObj : OpaqueObj {
    std::shared_ptr<Socket> sock = std::make_shared<Socket>();
    std::string host;
    int port = 0;
    explicit ListenerObj(const OpaqueClass* c) : OpaqueObj(c) {}
    ~ListenerObj() override { sock->close_socket(); }

    // The next connection, or false once the listener is closed.
    bool accept_one(Value& out) {
        for (;;) {
            if (sock->closed.load()) return false;
            sockaddr_storage ss{};
            socklen_t len = sizeof ss;
            int fd = accept4(sock->fd.load(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                out = new_connection(fd, ss, -1);
                return true;
            }
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                sock->wait(false, -1);
                continue;
            }
            if (sock->closed.load()) return false;
            if (errno == EMFILE || errno == ENFILE)
                net_error("accepting on " + host_port(host, port) + " (too many open files)", errno);
            net_error("accepting on " + host_port(host, port), errno);
        }
    }
};

ListenerObj* listener_self(Value& self) {
    return self_as<ListenerObj>(self);
}

Value l_accept(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "accept", {}, 0);
    auto* l = listener_self(self);
    Value conn;
    if (!l->accept_one(conn)) throw WeftError(ErrorKind::ValueError, "accept() on a closed listener");
    return conn;
}

bool l_iter_next(OpaqueObj* self, CallContext&, Value& out) {
    return static_cast<ListenerObj*>(self)->accept_one(out);
}

Value l_close(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "close", {}, 0);
    listener_self(self)->sock->close_socket();
    return Value();
}

Value l_enter(CallContext&, Value& self, const CallArgs&) {
    return self;
}

Value l_exit(CallContext&, Value& self, const CallArgs&) {
    listener_self(self)->sock->close_socket();
    return Value::boolean(false);
}

bool l_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* l = static_cast<const ListenerObj*>(self);
    if (name == "port") {
        out = Value::integer(l->port);
    } else if (name == "host") {
        out = make_str(l->host);
    } else if (name == "closed") {
        out = Value::boolean(l->sock->closed.load());
    } else {
        return false;
    }
    return true;
}

std::string l_repr(const OpaqueObj* self) {
    auto* l = static_cast<const ListenerObj*>(self);
    return "<net Listener " + host_port(l->host, l->port) + (l->sock->closed.load() ? " (closed)" : "") + ">";
}

const MethodInfo kListenerMethods[] = {{"accept", l_accept, false},
                                       {"close", l_close, false},
                                       {"__enter__", l_enter, false},
                                       {"__exit__", l_exit, false},
                                       {nullptr, nullptr, false}};
const OpaqueClass kListenerClass{"Listener", kListenerMethods, l_get_attr, l_repr, nullptr, l_iter_next};

Value net_listen(CallContext& cx, const CallArgs& a) {
    Params p(a, "listen", {"host", "port", "backlog"}, 0);
    std::string host = p.str_or(0, "127.0.0.1");
    int port = port_arg(p, 1, 0);
    int64_t backlog = p.int_or(2, 1024);
    if (backlog < 1 || backlog > 65535) throw WeftError(ErrorKind::ValueError, "backlog must be in 1..65535");
    // Port 0 (any free port) needs a grant for the host on every port.
    require_net(cx, host, port == 0 ? -1 : port, "listening on");
    auto* l = new ListenerObj(&kListenerClass);
    Value keep = Value::adopt(l);
    l->host = host;
    l->sock->fd.store(stdlib::listen_on(host, port, int(backlog), l->port));
    return keep;
}

}  // namespace

void init_net_module(ModuleObj& m) {
    stdlib::define_fn(m, "connect", net_connect);
    stdlib::define_fn(m, "listen", net_listen);
}

}  // namespace weft
