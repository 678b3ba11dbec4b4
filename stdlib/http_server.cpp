// http_server.cpp — `http.serve(handler, ...)`: Weft programs that answer HTTP/1.1.
//
//   server = http.serve(handler, host="127.0.0.1", port=8000, max_connections=1024,
//                       request_timeout=30, max_header_bytes=16384, max_body_bytes=10485760)
//   server.port, server.url, server.stop(grace=5), with http.serve(...) as server: ...
//   http.Response(status=200, body=b"", headers={})
//
// Structure. serve() checks the capability, binds the listening socket (a denial leaves no
// socket), and spawns the accept loop as a task of the caller's scope, so the program does
// not end while the server runs (stop() or the end of a `with` block ends it). Each accepted
// connection is a task of the accept loop's nursery; each request on it runs the handler in a
// task of its own, joined before the next request is read, so pipelined requests are
// answered in order and a handler that fails fails only its request: the client gets a 500
// and the error is logged on stderr. All waits park the task on the reactor.
//
// Parsing is Boost.Beast's HTTP/1.1 request parser (header and body limits, chunked bodies,
// keep-alive rules), fed from our own buffer; it is not written by hand here. Limits answer
// with the status RFC 9110 names: 400 for a malformed request, 408 when a request does not
// arrive within request_timeout (a slow client holds only its own task, never a worker), 413
// for a body over max_body_bytes, 431 for headers over max_header_bytes, 503 past
// max_connections.
//
// stop(grace) stops accepting, closes idle keep-alive connections, lets requests in flight
// finish for up to `grace` seconds, then cancels the rest.
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "stdlib/socket.h"
#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/capabilities.h"
#include "vm/interp.h"
#include "vm/lib_internal.h"
#include "vm/tasks.h"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"

namespace weft {

namespace {

namespace bhttp = boost::beast::http;
using stdlib::Params;
using stdlib::self_as;
using stdlib::Socket;
using Clock = std::chrono::steady_clock;

struct ServerOptions {
    int max_connections = 1024;
    double request_timeout = 30;
    uint32_t max_header_bytes = 16384;
    uint64_t max_body_bytes = 10 * 1024 * 1024;
};

// One accepted connection, shared by its task and the server (which closes idle ones on stop).
struct ConnState {
    Socket sock;
    std::atomic<bool> busy{false};  // a request is being handled
    explicit ConnState(int fd) : sock(fd) {}
};

struct ServerObj : OpaqueObj {
    std::shared_ptr<Socket> listener = std::make_shared<Socket>();
    Value handler;
    ServerOptions opt;
    std::string host;
    int port = 0;
    Value accept_task;  // the accept loop's task handle (guarded by mu once serving)
    std::atomic<bool> stopping{false};
    std::mutex mu;  // guards conns and tasks
    std::vector<std::shared_ptr<ConnState>> conns;
    std::vector<rt::TaskRef> tasks;  // connection tasks, for cancellation after the grace
    std::atomic<int> active{0};
    explicit ServerObj(const OpaqueClass* c) : OpaqueObj(c) {}
    ~ServerObj() override { listener->close_socket(); }
    std::string url() const { return "http://" + stdlib::host_port(host, port); }
};

void server_share(OpaqueObj* self) {
    auto* s = static_cast<ServerObj*>(self);
    share(s->handler);
    share(s->accept_task);
}

// The connection handed to a connection task (an opaque wrapper around the shared state).
struct ConnArgObj : OpaqueObj {
    std::shared_ptr<ConnState> conn;
    Value peer;
    explicit ConnArgObj(const OpaqueClass* c) : OpaqueObj(c) {}
};
const OpaqueClass kConnArgClass{"_Connection"};

// ---------------------------------------------------------------------------
// Requests and responses as Weft values

struct RequestObj : OpaqueObj {
    std::string method, target, path, body;
    Value query, headers, client;
    explicit RequestObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Percent-decoding (and '+' as space in a query), bytes as they come: invalid UTF-8 is replaced
// when the result becomes a str.
std::string url_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            out += char(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

// The query string as a dict (a repeated name keeps its last value, as Flask's args.get does).
Value parse_query(std::string_view q) {
    Value d = make_dict();
    while (!q.empty()) {
        size_t amp = q.find('&');
        std::string_view part = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
        if (part.empty()) continue;
        size_t eq = part.find('=');
        std::string k = url_decode(part.substr(0, eq), true);
        std::string v = eq == std::string_view::npos ? "" : url_decode(part.substr(eq + 1), true);
        set_item(d, make_str(stdlib::utf8_lossy(k)), make_str(stdlib::utf8_lossy(v)));
    }
    return d;
}

bool req_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* r = static_cast<const RequestObj*>(self);
    if (name == "method") out = make_str(r->method);
    else if (name == "path") out = make_str(r->path);
    else if (name == "target") out = make_str(r->target);
    else if (name == "query") out = r->query;
    else if (name == "headers") out = r->headers;
    else if (name == "body") out = make_bytes(r->body);
    else if (name == "text") out = make_str(stdlib::utf8_lossy(r->body));
    else if (name == "client") out = r->client;
    else return false;
    return true;
}

Value req_json(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "json", {}, 0);
    auto* r = self_as<RequestObj>(self);
    return stdlib::json_parse_text(stdlib::utf8_lossy(r->body));
}

std::string req_repr(const OpaqueObj* self) {
    auto* r = static_cast<const RequestObj*>(self);
    return "<Request " + r->method + " " + r->target + ">";
}

void req_share(OpaqueObj* self) {
    auto* r = static_cast<RequestObj*>(self);
    share(r->query);
    share(r->headers);
    share(r->client);
}

const MethodInfo kRequestMethods[] = {{"json", req_json, false}, {nullptr, nullptr, false}};
const OpaqueClass kRequestClass{"Request", kRequestMethods, req_get_attr, req_repr, nullptr,
                                nullptr, nullptr, req_share};

struct ResponseObj : OpaqueObj {
    int status = 200;
    std::string body;
    bool body_is_text = false;
    Value stream;  // a channel (or other iterable host object) of chunks, sent as they come
    Value headers;
    explicit ResponseObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

bool resp_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* r = static_cast<const ResponseObj*>(self);
    if (name == "status") out = Value::integer(r->status);
    else if (name == "body") out = make_bytes(r->body);
    else if (name == "headers") out = r->headers;
    else return false;
    return true;
}

std::string resp_repr(const OpaqueObj* self) {
    return "<http.Response [" + std::to_string(static_cast<const ResponseObj*>(self)->status) + "]>";
}

void resp_share(OpaqueObj* self) {
    share(static_cast<ResponseObj*>(self)->headers);
    share(static_cast<ResponseObj*>(self)->stream);
}

// A host object that can be iterated (a channel): a streamed body.
bool is_stream(const Value& v) {
    return v.is(ObjType::Opaque) && v.as<OpaqueObj>()->cls->iter_next != nullptr;
}

const OpaqueClass kServerResponseClass{"Response", nullptr, resp_get_attr, resp_repr, nullptr,
                                       nullptr, nullptr, resp_share};

// http.Response(status=200, body=b"", headers={}): what a handler may return.
Value http_response(CallContext&, const CallArgs& a) {
    Params p(a, "Response", {"status", "body", "headers"}, 0);
    auto* r = new ResponseObj(&kServerResponseClass);
    Value keep = Value::adopt(r);
    int64_t status = p.int_or(0, 200);
    if (status < 100 || status > 999)
        throw WeftError(ErrorKind::ValueError, "status must be in 100..999, not " + std::to_string(status));
    r->status = int(status);
    if (p.has(1)) {
        const Value* b = p.get(1);
        if (b->is(ObjType::Str)) {
            r->body = b->as<StrObj>()->data;
            r->body_is_text = true;
        } else if (b->is(ObjType::Bytes)) {
            r->body = b->as<BytesObj>()->data;
        } else if (is_stream(*b)) {
            r->stream = *b;
        } else {
            p.bad(1, "str, bytes or a channel of chunks");
        }
    }
    if (p.has(2)) {
        if (!p.get(2)->is(ObjType::Dict)) p.bad(2, "a dict of str to str");
        r->headers = *p.get(2);
    } else {
        r->headers = make_dict();
    }
    return keep;
}

// ---------------------------------------------------------------------------
// Writing responses

bool send_all(ConnState& c, const std::string& data, double timeout) {
    size_t off = 0;
    while (off < data.size()) {
        if (c.sock.closed.load()) return false;
        ssize_t n = send(c.sock.fd.load(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += size_t(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!c.sock.wait(true, timeout)) return false;
            continue;
        }
        return false;  // the client went away: nothing to report to
    }
    return true;
}

std::string reason_of(int status) {
    auto r = bhttp::obsolete_reason(bhttp::int_to_status(unsigned(status)));
    return r.empty() ? "Unknown" : std::string(r);
}

bool header_safe(const std::string& s) {
    return s.find_first_of("\r\n") == std::string::npos;
}

// The status line and headers; `length` < 0: a chunked body of unknown length.
std::string head_of(int status, const std::vector<std::pair<std::string, std::string>>& headers,
                    int64_t length, bool keep_alive) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) + "\r\n";
    bool has_type = false;
    for (auto& [k, v] : headers) {
        if (strcasecmp(k.c_str(), "content-length") == 0 || strcasecmp(k.c_str(), "connection") == 0 ||
            strcasecmp(k.c_str(), "transfer-encoding") == 0)
            continue;  // the server frames the message itself
        if (strcasecmp(k.c_str(), "content-type") == 0) has_type = true;
        h += k + ": " + v + "\r\n";
    }
    if (!has_type && length != 0) h += "Content-Type: application/octet-stream\r\n";
    if (length < 0)
        h += "Transfer-Encoding: chunked\r\n";
    else
        h += "Content-Length: " + std::to_string(length) + "\r\n";
    h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    return h + "\r\n";
}

void send_error(ConnState& c, int status, const std::string& text) {
    std::string body = text + "\n";
    send_all(c, head_of(status, {{"Content-Type", "text/plain; charset=utf-8"}}, int64_t(body.size()), false) + body,
             5);
}

// The handler's result as status, headers and body. TypeError for anything else.
void to_response(CallContext& cx, const Value& v, int& status,
                 std::vector<std::pair<std::string, std::string>>& headers, std::string& body,
                 Value& stream) {
    status = 200;
    if (v.is(ObjType::Opaque) && v.as<OpaqueObj>()->cls == &kServerResponseClass) {
        auto* r = v.as<ResponseObj>();
        status = r->status;
        body = r->body;
        stream = r->stream;
        bool typed = false;
        auto* d = r->headers.as<DictObj>();
        for (size_t k = 0; k < d->table.end_index(); ++k) {
            auto& e = d->table.entry(k);
            if (!e.live) continue;
            if (!e.key.is(ObjType::Str) || !e.value.is(ObjType::Str))
                throw WeftError(ErrorKind::TypeError, "http.Response headers must map str to str");
            std::string name = e.key.as<StrObj>()->data, value = e.value.as<StrObj>()->data;
            if (!header_safe(name) || !header_safe(value) || name.empty())
                throw WeftError(ErrorKind::ValueError, "header " + str_repr(name) + " holds a line break");
            if (strcasecmp(name.c_str(), "content-type") == 0) typed = true;
            headers.emplace_back(std::move(name), std::move(value));
        }
        if (!typed && r->body_is_text) headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    } else if (v.is(ObjType::Str)) {
        body = v.as<StrObj>()->data;
        headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
    } else if (v.is(ObjType::Bytes)) {
        body = v.as<BytesObj>()->data;
    } else if (v.is(ObjType::Dict) || v.is(ObjType::List)) {
        body = stdlib::json_dump_text(cx, v);
        headers.emplace_back("Content-Type", "application/json");
    } else if (v.is_none()) {
        status = 204;
    } else if (is_stream(v)) {
        stream = v;
    } else {
        throw WeftError(ErrorKind::TypeError,
                        "a handler returns http.Response, str, bytes, dict, list, None or a channel, not " + type_name(v));
    }
}

std::string describe_error(Interp& in, std::exception_ptr e);

// Sends the items of `stream` as HTTP chunks, then the last chunk. An item that is not str or
// bytes, or a failure of the producer, can no longer change the status: it is logged and the
// connection is cut (the client sees an incomplete body). False when the connection is done.
bool send_stream(Interp& in, ConnState& c, Value stream, const std::string& what, double timeout) {
    auto* obj = stream.as<OpaqueObj>();
    try {
        Value item;
        while (obj->cls->iter_next(obj, in, item)) {
            std::string data;
            if (item.is(ObjType::Str))
                data = item.as<StrObj>()->data;
            else if (item.is(ObjType::Bytes))
                data = item.as<BytesObj>()->data;
            else
                throw WeftError(ErrorKind::TypeError, "a streamed chunk must be str or bytes, not " + type_name(item));
            if (data.empty()) continue;  // an empty chunk would end the body
            char size[32];
            snprintf(size, sizeof size, "%zx\r\n", data.size());
            if (!send_all(c, size + data + "\r\n", timeout)) return false;
        }
    } catch (const rt::Cancelled&) {
        throw;
    } catch (...) {
        std::string why = describe_error(in, std::current_exception());
        in.flush_stdout();
        fprintf(stderr, "http.serve: %s: streaming stopped: %s\n", what.c_str(), why.c_str());
        return false;
    }
    return send_all(c, "0\r\n\r\n", timeout);
}

// "ValueError: message" of a failure, for the log line.
std::string describe_error(Interp& in, std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (WeftError& w) {
        Value err = in.error_value(w);
        if (err.is(ObjType::Struct) && err.as<StructObj>()->error)
            return err.as<StructObj>()->type->name + ": " + err.as<StructObj>()->error->message;
        return w.message;
    } catch (std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown error";
    }
}

// ---------------------------------------------------------------------------
// One request: the handler and the response, in a task of their own. The task also sends the
// response, so a handler that returns a channel fed by tasks it spawned (tasks of this task's
// nursery) streams while they produce.

struct ExchangeObj : OpaqueObj {
    Value server, request;
    std::shared_ptr<ConnState> conn;
    bool keep_alive = true;  // in: what the request asked; out: whether the connection goes on
    explicit ExchangeObj(const OpaqueClass* c) : OpaqueObj(c) {}
};
void exchange_share(OpaqueObj* self) {
    auto* e = static_cast<ExchangeObj*>(self);
    share(e->server);
    share(e->request);
}
const OpaqueClass kExchangeClass{"_Exchange", nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, exchange_share};

// Calls the handler and sends its response. Returns True when the response went out whole.
Value respond(CallContext& cx, Value& self, const CallArgs&) {
    auto& in = static_cast<Interp&>(cx);
    auto* ex = self_as<ExchangeObj>(self);
    auto* srv = ex->server.as<ServerObj>();
    auto* req = ex->request.as<RequestObj>();
    ConnState& conn = *ex->conn;
    int status = 500;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    Value stream;
    auto fail = [&](int code, const std::string& why, const std::string& text) {
        in.flush_stdout();
        fprintf(stderr, "http.serve: %s %s: %s\n", req->method.c_str(), req->target.c_str(), why.c_str());
        status = code;
        headers = {{"Content-Type", "text/plain; charset=utf-8"}};
        body = text + "\n";
        stream = Value();
    };
    {
        // The handler gets request_timeout seconds; past them it is cancelled and the client
        // gets a 503 (a stuck handler must not hold its client forever).
        rt::CancelScopeOptions budget;
        budget.timeout = srv->opt.request_timeout;
        rt::CancelScope deadline(budget);
        try {
            Value result = in.call(srv->handler, {&ex->request, 1});
            // A handler may return a deferred call's value (`return render(req)`).
            while (result.is(ObjType::Promise))
                result = force_promise(in, result.as<PromiseObj>());
            to_response(cx, result, status, headers, body, stream);
        } catch (...) {
            if (deadline.deadline_expired()) {
                std::string secs = float_repr(srv->opt.request_timeout);
                fail(503, "the handler did not answer within " + secs + " seconds (request_timeout)",
                     "the handler did not answer within " + secs + " seconds");
            } else {
                try {
                    throw;
                } catch (const rt::Cancelled&) {
                    throw;  // the server is stopping past its grace
                } catch (...) {
                    fail(500, describe_error(in, std::current_exception()), "internal server error");
                }
            }
        }
    }
    if (srv->stopping.load()) ex->keep_alive = false;
    bool head = req->method == "HEAD";
    if (!stream.is_none() && !head) {
        // Chunks as the channel yields them; the body ends when it is closed.
        return Value::boolean(send_all(conn, head_of(status, headers, -1, ex->keep_alive), srv->opt.request_timeout) &&
                              send_stream(in, conn, stream, req->method + " " + req->target, srv->opt.request_timeout));
    }
    std::string out = head_of(status, headers, int64_t(body.size()), ex->keep_alive);
    if (!head && status != 204 && status != 304) out += body;
    return Value::boolean(send_all(conn, out, srv->opt.request_timeout));
}

// ---------------------------------------------------------------------------
// One connection: requests read and parsed in order; each is answered by a task of its own
// (respond), joined before the next request is read, so pipelined requests get their answers
// in order.

Value serve_connection(CallContext& cx, Value& self, const CallArgs& a) {
    auto& in = static_cast<Interp&>(cx);
    auto* srv = self_as<ServerObj>(self);
    auto* arg = a.pos[0].as<ConnArgObj>();
    std::shared_ptr<ConnState> conn = arg->conn;
    Value client = arg->peer;
    struct Done {
        ServerObj* srv;
        std::shared_ptr<ConnState> conn;
        ~Done() {
            conn->sock.close_socket();
            std::lock_guard<std::mutex> g(srv->mu);
            std::erase(srv->conns, conn);
            srv->active.fetch_sub(1);
        }
    } done{srv, conn};
    std::string buf;
    bool keep_alive = true;
    while (keep_alive && !srv->stopping.load()) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.header_limit(srv->opt.max_header_bytes);
        parser.body_limit(srv->opt.max_body_bytes);
        parser.eager(true);
        auto deadline = Clock::now() + std::chrono::duration<double>(srv->opt.request_timeout);
        bool started = !buf.empty();
        for (;;) {
            boost::beast::error_code ec;
            if (!buf.empty()) {
                size_t used = parser.put(boost::asio::buffer(buf.data(), buf.size()), ec);
                buf.erase(0, used);
                if (!ec && parser.is_done()) break;
                if (ec && ec != bhttp::error::need_more) {
                    if (ec == bhttp::error::header_limit)
                        send_error(*conn, 431, "request header fields too large");
                    else if (ec == bhttp::error::body_limit)
                        send_error(*conn, 413, "content too large");
                    else
                        send_error(*conn, 400, "bad request: " + ec.message());
                    return Value();
                }
                if (parser.is_done()) break;
            }
            // More bytes: wait at most until the request's deadline.
            double left = std::chrono::duration<double>(deadline - Clock::now()).count();
            if (left <= 0 || !conn->sock.wait(false, left)) {
                if (started) send_error(*conn, 408, "request timeout");
                return Value();  // an idle keep-alive connection just closes
            }
            if (conn->sock.closed.load()) return Value();
            char chunk[8192];
            ssize_t n = recv(conn->sock.fd.load(), chunk, sizeof chunk, 0);
            if (n == 0) {
                if (started) {
                    boost::beast::error_code eof_ec;
                    parser.put_eof(eof_ec);
                    if (!eof_ec && parser.is_done()) break;
                }
                return Value();
            }
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
                return Value();
            }
            buf.append(chunk, size_t(n));
            started = true;
        }
        auto& msg = parser.get();
        keep_alive = msg.keep_alive();
        auto* req = new RequestObj(&kRequestClass);
        Value reqv = Value::adopt(req);
        req->method = std::string(msg.method_string());
        req->target = std::string(msg.target());
        size_t qm = req->target.find('?');
        req->path = stdlib::utf8_lossy(url_decode(std::string_view(req->target).substr(0, qm), false));
        req->query = parse_query(qm == std::string::npos ? std::string_view() : std::string_view(req->target).substr(qm + 1));
        // Lower-case names; a repeated header's values joined with ", " (as the client does).
        std::vector<std::pair<std::string, std::string>> fields;
        for (auto& f : msg) {
            std::string name(f.name_string());
            for (auto& ch : name)
                ch = char(tolower((unsigned char)ch));
            std::string value(f.value());
            auto it = std::find_if(fields.begin(), fields.end(), [&](auto& kv) { return kv.first == name; });
            if (it != fields.end())
                it->second += ", " + value;
            else
                fields.emplace_back(std::move(name), std::move(value));
        }
        req->headers = make_dict();
        for (auto& [k, v] : fields)
            set_item(req->headers, make_str(stdlib::utf8_lossy(k)), make_str(stdlib::utf8_lossy(v)));
        req->body = std::move(msg.body());
        req->client = client;
        auto* ex = new ExchangeObj(&kExchangeClass);
        Value exv = Value::adopt(ex);
        ex->server = self;
        ex->conn = conn;
        ex->request = reqv;
        ex->keep_alive = keep_alive;
        conn->busy.store(true);
        bool ok = false;
        try {
            Value respond_fn = stdlib::bound_native("http.serve request", respond, exv, nullptr);
            Value t = spawn_task(in, respond_fn, {}, {}, {}, false);
            Value r = force_promise(in, t.as<PromiseObj>());
            ok = r.is_bool() && r.as_bool();
        } catch (const rt::Cancelled&) {
            conn->busy.store(false);
            throw;  // stop() past its grace: the connection ends with the task
        } catch (...) {
            ok = false;  // respond() reports the handler's errors itself: this one just closes
        }
        conn->busy.store(false);
        if (!ok || !ex->keep_alive) return Value();
    }
    return Value();
}

// The accept loop: runs as a task until the listener is closed.
Value accept_loop(CallContext& cx, Value& self, const CallArgs&) {
    auto& in = static_cast<Interp&>(cx);
    auto* srv = self_as<ServerObj>(self);
    Value conn_fn = stdlib::bound_native("http.serve connection", serve_connection, self, nullptr);
    for (;;) {
        if (srv->listener->closed.load()) break;
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int fd = accept4(srv->listener->fd.load(), reinterpret_cast<sockaddr*>(&ss), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                srv->listener->wait(false, -1);
                continue;
            }
            if (srv->listener->closed.load()) break;
            if (errno == EMFILE || errno == ENFILE) {
                rt::sleep_for(0.05);  // out of descriptors: let connections finish
                continue;
            }
            break;
        }
        auto conn = std::make_shared<ConnState>(fd);
        if (srv->active.load() >= srv->opt.max_connections) {
            send_error(*conn, 503, "too many connections");
            conn->sock.close_socket();
            continue;
        }
        srv->active.fetch_add(1);
        {
            std::lock_guard<std::mutex> g(srv->mu);
            srv->conns.push_back(conn);
        }
        auto* arg = new ConnArgObj(&kConnArgClass);
        Value argv = Value::adopt(arg);
        arg->conn = conn;
        arg->peer = stdlib::addr_tuple(ss);
        Value t = spawn_task(in, conn_fn, {argv}, {}, {}, false);
        std::lock_guard<std::mutex> g(srv->mu);
        srv->tasks.push_back(t.as<PromiseObj>()->task);
        std::erase_if(srv->tasks, [](const rt::TaskRef& r) { return r->done(); });
    }
    return Value();
}

// stop(grace=5): stop accepting, close idle connections, wait for requests in flight up to
// `grace` seconds, cancel what is left, and wait for the accept loop to end.
Value server_stop(CallContext& cx, Value& self, const CallArgs& a) {
    auto& in = static_cast<Interp&>(cx);
    auto* srv = self_as<ServerObj>(self);
    Params p(a, "stop", {"grace"}, 0);
    double grace = p.has(0) ? p.number(0) : 5.0;
    if (std::isnan(grace) || grace < 0) throw WeftError(ErrorKind::ValueError, "grace must be a non-negative number");
    if (!srv->stopping.exchange(true)) srv->listener->close_socket();
    // Shielded: stop() is the cleanup of a cancelled task too (a `with` block left by Ctrl-C),
    // and the grace must still be given. It is bounded by `grace` (and the cancellations).
    rt::CancelScopeOptions shield_options;
    shield_options.shield = true;
    rt::CancelScope shield(shield_options);
    auto close_idle = [&] {
        std::lock_guard<std::mutex> g(srv->mu);
        for (auto& c : srv->conns)
            if (!c->busy.load()) c->sock.close_socket();
    };
    auto deadline = Clock::now() + std::chrono::duration<double>(grace);
    for (;;) {
        close_idle();
        if (srv->active.load() == 0 || Clock::now() >= deadline) break;
        rt::sleep_for(0.01);
    }
    {
        std::lock_guard<std::mutex> g(srv->mu);
        for (auto& t : srv->tasks)
            if (!t->done()) t->cancel();
        for (auto& c : srv->conns)
            c->sock.close_socket();
    }
    Value accept_task;
    {
        std::lock_guard<std::mutex> g(srv->mu);  // stop() may run in two tasks at once
        accept_task = srv->accept_task;
    }
    if (accept_task.is(ObjType::Promise)) {
        try {
            force_promise(in, accept_task.as<PromiseObj>());
        } catch (const rt::Cancelled&) {
            throw;
        } catch (...) {
            // A connection cancelled past the grace ends with Cancelled: that is the point.
        }
        // The tasks' bodies refer to this server: dropping their handles breaks those cycles.
        std::lock_guard<std::mutex> g(srv->mu);
        srv->accept_task = Value();
        srv->tasks.clear();
    }
    return Value();
}

Value server_enter(CallContext&, Value& self, const CallArgs&) {
    return self;
}

Value server_exit(CallContext& cx, Value& self, const CallArgs&) {
    server_stop(cx, self, CallArgs{});
    return Value::boolean(false);
}

bool server_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* s = static_cast<const ServerObj*>(self);
    if (name == "port") out = Value::integer(s->port);
    else if (name == "host") out = make_str(s->host);
    else if (name == "url") out = make_str(s->url());
    else return false;
    return true;
}

std::string server_repr(const OpaqueObj* self) {
    auto* s = static_cast<const ServerObj*>(self);
    return "<http.Server " + s->url() + (s->stopping.load() ? " (stopped)" : "") + ">";
}

const MethodInfo kServerMethods[] = {{"stop", server_stop, false, "grace"},
                                     {"__enter__", server_enter, false},
                                     {"__exit__", server_exit, false},
                                     {nullptr, nullptr, false}};
const OpaqueClass kServerClass{"Server", kServerMethods, server_get_attr, server_repr, nullptr,
                               nullptr, nullptr, server_share};

double positive_seconds(const Params& p, size_t i, double dflt, const char* what) {
    if (!p.has(i)) return dflt;
    double t = p.number(i);
    if (std::isnan(t) || t <= 0) throw WeftError(ErrorKind::ValueError, std::string(what) + " must be a positive number");
    return t;
}

int64_t positive_int(const Params& p, size_t i, int64_t dflt, int64_t max, const char* what) {
    int64_t v = p.int_or(i, dflt);
    if (v < 1 || v > max)
        throw WeftError(ErrorKind::ValueError, std::string(what) + " must be in 1.." + std::to_string(max));
    return v;
}

Value http_serve(CallContext& cx, const CallArgs& a) {
    auto& in = static_cast<Interp&>(cx);
    Params p(a, "serve",
             {"handler", "host", "port", "max_connections", "request_timeout", "max_header_bytes",
              "max_body_bytes"},
             1);
    const Value& handler = *p.get(0);
    std::string host = p.str_or(1, "127.0.0.1");
    int64_t port = p.int_or(2, 8000);
    if (port < 0 || port > 65535) throw WeftError(ErrorKind::ValueError, "port must be in 0..65535");
    ServerOptions opt;
    opt.max_connections = int(positive_int(p, 3, 1024, 1 << 20, "max_connections"));
    opt.request_timeout = positive_seconds(p, 4, 30, "request_timeout");
    opt.max_header_bytes = uint32_t(positive_int(p, 5, 16384, 1 << 24, "max_header_bytes"));
    opt.max_body_bytes = uint64_t(positive_int(p, 6, 10 * 1024 * 1024, int64_t(1) << 40, "max_body_bytes"));
    reject_nul(host);
    require_net(cx, host, port == 0 ? -1 : int(port), "listening on");
    auto* srv = new ServerObj(&kServerClass);
    Value keep = Value::adopt(srv);
    srv->handler = handler;
    srv->opt = opt;
    srv->host = host;
    srv->listener->fd.store(stdlib::listen_on(host, int(port), 1024, srv->port));
    share(keep);
    Value loop = stdlib::bound_native("http.serve", accept_loop, keep, nullptr);
    srv->accept_task = spawn_task(in, loop, {}, {}, {}, false);
    return keep;
}

}  // namespace

void init_http_server(ModuleObj& m) {
    stdlib::define_fn(m, "serve", http_serve);
    stdlib::define_fn(m, "Response", http_response);
}

}  // namespace weft
