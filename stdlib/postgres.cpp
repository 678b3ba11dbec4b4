// postgres.cpp — db.postgres(dsn, pool=1, timeout=None): a PostgreSQL client with the same
// Connection API as db.sqlite (query, execute, executemany, transaction(), close()).
//
// Why it looks like this:
// - libpq's asynchronous API only (PQconnectStartParams/PQconnectPoll, PQsendQueryParams,
//   PQconsumeInput, PQisBusy, PQgetResult): the connection's socket is waited on in the
//   runtime's reactor (rt::wait_fd), so a slow query parks only its task, never a worker.
//   The one blocking libpq call, PQcancel (it opens a second connection to the server), and
//   PQconnectStartParams (it may resolve a host name) run on the blocking pool.
// - A Connection is a pool of up to `pool` server connections. Every call takes one for its
//   duration (waiting while all are busy) and gives it back; a transaction() block pins one to
//   its task until the block ends, and calls inside the block — from that task or the tasks it
//   starts (deferred calls, spawn), which take turns — use it. A broken connection is dropped
//   and the next call opens a new one.
// - After sending, a task yields once before parking on the reactor: with many tasks busy the
//   answer is often there by then, which saves a cross-thread wake-up.
// - Parameters travel separately from the SQL (server-side $1, $2, ...), never spliced into it.
// - Cancellation (a cancelled task, `with timeout(...)`) and the `timeout=` argument send
//   PQcancel, then read the server's answer so the connection is clean for the next call; the
//   task then sees Cancelled (or TimeoutError). If the server does not answer within
//   kDrainSeconds the connection is dropped instead.
// - Errors from the server are DatabaseError (a subclass of IOError) with the server's message
//   and `e.sqlstate` (the five-character SQLSTATE); connection failures have sqlstate "08001"
//   (could not connect) or "08006" (the connection was lost) unless the server sent its own.
//
// Type mapping (results are read in text format and converted by column type OID):
//   bool → bool; int2/int4/int8/oid → int; float4/float8 → float; numeric → str (exact: no
//   silent rounding; float(x) when wanted); text/varchar/char/name/uuid/interval/other → str;
//   bytea → bytes; json/jsonb → Weft values (dict, list, ...); date → "YYYY-MM-DD";
//   time → "HH:MM:SS[.ffffff]"; timestamp → "YYYY-MM-DDTHH:MM:SS[.ffffff]", timestamptz the
//   same with its offset "+HH:MM" (in the session's TimeZone); arrays of these → lists (nested
//   for several dimensions); NULL → None.
// Parameters: None → NULL; bool, int (int4, or int8 beyond its range), float (float8) typed; str
// untyped (the server infers the column's type, so a str fills a text, numeric, date, json...
// parameter); bytes → bytea (binary); dict and list → their JSON text, untyped (for json/jsonb
// parameters).
#include "stdlib/lazy_libs.h"
#include <poll.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "stdlib/socket.h"
#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/capabilities.h"
#include "vm/lib_internal.h"
#include "vm/tasks.h"
#include "weft/runtime/channel.hpp"
#include "weft/runtime/errors.hpp"
#include "weft/runtime/reactor.hpp"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"

namespace weft {

Value db_postgres(CallContext& cx, const CallArgs& a);

namespace {

using stdlib::Params;
using stdlib::self_as;

constexpr double kDrainSeconds = 5;  // how long a cancelled query may take to stop
constexpr double kInf = std::numeric_limits<double>::infinity();

// DatabaseError(message) with e.sqlstate (None when empty).
[[noreturn]] void db_error(const std::string& msg, const std::string& sqlstate) {
    Value e = make_error(ErrorKind::DatabaseError, msg);
    e.as<StructObj>()->error->results = sqlstate.empty() ? Value() : make_str(sqlstate);
    throw WeftError(std::move(e));
}

std::string trim_msg(const char* m) {
    std::string s = m ? m : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

// ---------------------------------------------------------------------------
// Deadlines and socket waits.

// Seconds left until `deadline` (a now_ns() value, INT64_MAX for none).
double remaining(int64_t deadline) {
    if (deadline == INT64_MAX) return kInf;
    return std::max(0.0, double(deadline - rt::now_ns()) / 1e9);
}

// Waits until `fd` is ready or `deadline` passes (false). In a task the wait parks on the
// reactor (raising Cancelled); outside the runtime it polls.
// A socket libpq has closed (fd < 0) or the reactor rejects counts as ready: the libpq call
// that follows reports the connection's state.
bool wait_sock(int fd, bool write, int64_t deadline) {
    if (fd < 0) return true;
    double t = remaining(deadline);
    if (rt::current_task()) {
        try {
            return rt::wait_fd(fd, write ? rt::Interest::Write : rt::Interest::Read, t);
        } catch (const std::system_error&) {
            return true;
        }
    }
    pollfd p{fd, short(write ? POLLOUT : POLLIN), 0};
    int ms = t == kInf ? -1 : int(std::min(t * 1000 + 1, 1e9));
    int r;
    while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR) {
    }
    return r != 0;
}

template <class F>
auto blocking(F fn) {
    if (!rt::current_task()) return fn();
    return rt::run_blocking(std::move(fn));
}

struct Shield {
    std::optional<rt::CancelScope> scope;
    Shield() {
        if (rt::current_task()) {
            rt::CancelScopeOptions o;
            o.shield = true;
            scope.emplace(o);
        }
    }
};

// Thrown inside a call when its own `timeout=` passes (turned into TimeoutError).
struct CallTimedOut {};

// ---------------------------------------------------------------------------
// One server connection.

struct PgConn {
    PGconn* pg = nullptr;
    bool broken = false;
    ~PgConn() {
        if (pg) lazy::pq().finish(pg);
    }
};

void quiet_notices(void*, const char*) {}  // NOTICEs are not printed on the program's stderr

[[noreturn]] void conn_error(PgConn* c, const std::string& what) {
    c->broken = true;
    db_error(what + ": " + trim_msg(lazy::pq().errorMessage(c->pg)), "08006");
}

// Sends a cancel request for the running query and reads what is left of its results, so the
// connection is idle again. Shielded from cancellation; bounded by kDrainSeconds, after which
// the connection is marked broken (it will be closed).
void cancel_and_drain(PgConn* c) {
    Shield shield;
    if (PGcancel* pc = lazy::pq().getCancel(c->pg)) {
        blocking([pc] {
            char buf[256];
            lazy::pq().cancel(pc, buf, sizeof buf);
            lazy::pq().freeCancel(pc);
            return 0;
        });
    }
    int64_t deadline = rt::now_ns() + int64_t(kDrainSeconds * 1e9);
    for (;;) {
        if (!lazy::pq().consumeInput(c->pg)) {
            c->broken = true;
            return;
        }
        while (!lazy::pq().isBusy(c->pg)) {
            PGresult* r = lazy::pq().getResult(c->pg);
            if (!r) return;
            lazy::pq().clear(r);
        }
        if (!wait_sock(lazy::pq().socket(c->pg), false, deadline)) {
            c->broken = true;
            return;
        }
    }
}

// A query's results: the last result of the statements it ran.
struct ResultPtr {
    PGresult* r = nullptr;
    ResultPtr() = default;
    ResultPtr(ResultPtr&& o) noexcept : r(std::exchange(o.r, nullptr)) {}
    ResultPtr& operator=(ResultPtr&& o) noexcept {
        if (this != &o) {
            if (r) lazy::pq().clear(r);
            r = std::exchange(o.r, nullptr);
        }
        return *this;
    }
    ~ResultPtr() {
        if (r) lazy::pq().clear(r);
    }
};

// Collects the results of the command just sent; raises the first error (after reading the
// rest, so the connection is idle). On Cancelled or the deadline, cancels the query first.
ResultPtr collect_results(PgConn* c, int64_t deadline) {
    int fd = lazy::pq().socket(c->pg);
    try {
        // Flush what the send could not write at once.
        for (;;) {
            int f = lazy::pq().flush(c->pg);
            if (f == 0) break;
            if (f < 0) conn_error(c, "cannot send the query");
            if (!wait_sock(fd, true, deadline)) throw CallTimedOut{};
        }
        ResultPtr last;
        std::string err, state;
        bool failed = false;
        bool yielded = false;
        for (;;) {
            while (!lazy::pq().isBusy(c->pg)) {
                PGresult* r = lazy::pq().getResult(c->pg);
                if (!r) {
                    if (failed) {
                        if (lazy::pq().status(c->pg) == CONNECTION_BAD) c->broken = true;
                        db_error(err, state);
                    }
                    return last;
                }
                ResultPtr rp;
                rp.r = r;
                ExecStatusType st = lazy::pq().resultStatus(r);
                if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE ||
                    st == PGRES_NONFATAL_ERROR) {
                    if (!failed) {
                        failed = true;
                        const char* prim = lazy::pq().resultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
                        const char* code = lazy::pq().resultErrorField(r, PG_DIAG_SQLSTATE);
                        err = trim_msg(prim ? prim : lazy::pq().resultErrorMessage(r));
                        if (const char* detail = lazy::pq().resultErrorField(r, PG_DIAG_MESSAGE_DETAIL))
                            err += " (" + trim_msg(detail) + ")";
                        state = code ? code : "";
                        if (state.empty() && lazy::pq().status(c->pg) == CONNECTION_BAD) state = "08006";
                    }
                } else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
                    c->broken =
                        true;  // COPY needs its own protocol: the connection is unusable now
                    db_error("COPY is not supported by db.postgres", "0A000");
                } else {
                    last = std::move(rp);
                }
            }
            if (!yielded && rt::current_task()) {
                // The answer takes a round trip to the server: let the other runnable tasks
                // (typically sending their own queries) run first, and often it is there when
                // this task runs again, without parking on the reactor (a cross-thread wake-up).
                yielded = true;
                rt::yield_now();
            } else if (!wait_sock(fd, false, deadline)) {
                throw CallTimedOut{};
            }
            if (!lazy::pq().consumeInput(c->pg)) {
                // The server went away: any result it sent before closing carries its reason.
                PGresult* r = lazy::pq().getResult(c->pg);
                std::string why = trim_msg(lazy::pq().errorMessage(c->pg)), code = "08006";
                if (r) {
                    if (const char* s = lazy::pq().resultErrorField(r, PG_DIAG_SQLSTATE)) code = s;
                    if (const char* m = lazy::pq().resultErrorField(r, PG_DIAG_MESSAGE_PRIMARY))
                        why = trim_msg(m);
                    lazy::pq().clear(r);
                }
                c->broken = true;
                db_error("connection to the server was lost: " + why, code);
            }
        }
    } catch (CallTimedOut&) {
        cancel_and_drain(c);
        throw;
    } catch (rt::Cancelled&) {
        cancel_and_drain(c);
        throw;
    }
}

// ---------------------------------------------------------------------------
// Parameters.

struct Param {
    bool null = false;
    Oid type = 0;    // 0: the server infers it
    int format = 0;  // 1: binary (bytea)
    std::string text;
};

Param to_param(CallContext& cx, const Value& v) {
    Param p;
    if (v.is_none()) {
        p.null = true;
    } else if (v.is_bool()) {
        p.type = 16;
        p.text = v.as_bool() ? "t" : "f";
    } else if (v.is_int()) {
        // int4 when it fits (as a literal would be typed: functions taking int4 accept it, and
        // it widens to int8, numeric or float8 where needed), else int8.
        int64_t i = v.as_int();
        p.type = i >= INT32_MIN && i <= INT32_MAX ? 23 : 20;
        p.text = std::to_string(i);
    } else if (v.is_float()) {
        p.type = 701;
        double d = v.as_float();
        if (std::isnan(d)) {
            p.text = "NaN";
        } else if (std::isinf(d)) {
            p.text = d > 0 ? "Infinity" : "-Infinity";
        } else {
            char buf[40];
            snprintf(buf, sizeof buf, "%.17g", d);
            p.text = buf;
        }
    } else if (v.is(ObjType::Str)) {
        p.text = v.as<StrObj>()->data;
    } else if (v.is(ObjType::Bytes)) {
        p.type = 17;
        p.format = 1;
        p.text = v.as<BytesObj>()->data;
    } else if (v.is(ObjType::Dict) || v.is(ObjType::List)) {
        p.text = stdlib::json_dump_text(cx, v);
    } else {
        throw WeftError(
            ErrorKind::TypeError,
            "cannot pass a parameter of type '" + type_name(v) +
                "' (use None, bool, int, float, str, bytes, or a dict or list for JSON)");
    }
    return p;
}

std::vector<Param> param_list(CallContext& cx, const Value* params) {
    std::vector<Param> out;
    if (!params || params->is_none()) return out;
    if (!params->is(ObjType::List) && !params->is(ObjType::Tuple))
        throw WeftError(
            ErrorKind::TypeError,
            "params must be a list or tuple (for $1, $2, ...), not " + type_name(*params));
    for (auto& v : collect(cx, *params))
        out.push_back(to_param(cx, v));
    return out;
}

// Sends `sql` with `params` (the extended protocol; one statement) or, without parameters, as
// a simple query (several statements separated by `;` are allowed, as with db.sqlite).
void send_query(PgConn* c, const std::string& sql, const std::vector<Param>* params) {
    int ok;
    if (!params) {
        ok = lazy::pq().sendQuery(c->pg, sql.c_str());
    } else {
        std::vector<Oid> types;
        std::vector<const char*> values;
        std::vector<int> lengths, formats;
        for (auto& p : *params) {
            types.push_back(p.type);
            values.push_back(p.null ? nullptr : p.text.data());
            lengths.push_back(int(p.text.size()));
            formats.push_back(p.format);
        }
        ok = lazy::pq().sendQueryParams(c->pg, sql.c_str(), int(params->size()), types.data(), values.data(),
                               lengths.data(), formats.data(), 0);
    }
    if (!ok) conn_error(c, "cannot send the query");
}

// ---------------------------------------------------------------------------
// Result values.

Value text_value(Oid type, const char* s, size_t n);

// Element type of an array type OID, 0 when `type` is not an array we convert.
Oid array_element(Oid type) {
    switch (type) {
        case 1000:
            return 16;  // bool[]
        case 1001:
            return 17;  // bytea[]
        case 1005:
            return 21;  // int2[]
        case 1007:
            return 23;  // int4[]
        case 1016:
            return 20;  // int8[]
        case 1028:
            return 26;  // oid[]
        case 1021:
            return 700;  // float4[]
        case 1022:
            return 701;  // float8[]
        case 1231:
            return 1700;  // numeric[]
        case 1009:
            return 25;  // text[]
        case 1015:
            return 1043;  // varchar[]
        case 1014:
            return 1042;  // bpchar[]
        case 1003:
            return 19;  // name[]
        case 1182:
            return 1082;  // date[]
        case 1183:
            return 1083;  // time[]
        case 1115:
            return 1114;  // timestamp[]
        case 1185:
            return 1184;  // timestamptz[]
        case 1187:
            return 1186;  // interval[]
        case 199:
            return 114;  // json[]
        case 3807:
            return 3802;  // jsonb[]
        case 2951:
            return 2950;  // uuid[]
        default:
            return 0;
    }
}

// Parses a PostgreSQL array literal ({1,2,NULL}, {"a b","c\"d"}, {{1,2},{3,4}}, with an
// optional "[lo:hi]=" dimension prefix) into nested lists of `elem` values.
Value parse_array(Oid elem, const char*& p, const char* end) {
    if (p < end && *p == '[') {  // explicit bounds: skip to '='
        while (p < end && *p != '=')
            ++p;
        if (p < end) ++p;
    }
    std::vector<Value> items;
    if (p >= end || *p != '{')
        throw WeftError(ErrorKind::ValueError, "malformed array value from the server");
    ++p;
    while (p < end && *p != '}') {
        if (*p == '{') {
            items.push_back(parse_array(elem, p, end));
        } else if (*p == '"') {
            std::string s;
            ++p;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end) ++p;
                s += *p++;
            }
            ++p;
            items.push_back(text_value(elem, s.data(), s.size()));
        } else {
            const char* q = p;
            while (p < end && *p != ',' && *p != '}')
                ++p;
            std::string s(q, size_t(p - q));
            if (s == "NULL")
                items.push_back(Value());
            else
                items.push_back(text_value(elem, s.data(), s.size()));
        }
        if (p < end && *p == ',') ++p;
    }
    if (p < end) ++p;  // '}'
    return make_list(std::move(items));
}

// "2024-01-02 03:04:05.5+01" → "2024-01-02T03:04:05.5+01:00".
std::string iso_timestamp(std::string s, bool tz) {
    size_t sp = s.find(' ');
    if (sp != std::string::npos && sp == 10) s[sp] = 'T';
    if (tz) {
        size_t sign = s.find_last_of("+-");
        if (sign != std::string::npos && sign > 10) {
            std::string off = s.substr(sign + 1);
            if (off.size() == 2) s += ":00";
        }
    }
    return s;
}

Value str_value(const char* s, size_t n) {
    std::string t(s, n);
    if (lib::utf8_validate(t) != std::string::npos) return make_bytes(std::move(t));
    return make_str(std::move(t));
}

Value text_value(Oid type, const char* s, size_t n) {
    switch (type) {
        case 16:
            return Value::boolean(n > 0 && s[0] == 't');
        case 20:
        case 21:
        case 23:
        case 26: {
            std::string t(s, n);
            return Value::integer(std::strtoll(t.c_str(), nullptr, 10));
        }
        case 700:
        case 701: {
            std::string t(s, n);
            return Value::number(std::strtod(t.c_str(), nullptr));  // also NaN, Infinity
        }
        case 17: {
            size_t len = 0;
            std::string t(s, n);
            unsigned char* raw =
                lazy::pq().unescapeBytea(reinterpret_cast<const unsigned char*>(t.c_str()), &len);
            if (!raw)
                throw WeftError(ErrorKind::MemoryError, "out of memory decoding a bytea value");
            std::string out(reinterpret_cast<char*>(raw), len);
            lazy::pq().freemem(raw);
            return make_bytes(std::move(out));
        }
        case 114:
        case 3802:
            return stdlib::json_parse_text(std::string_view(s, n));
        case 1114:
            return make_str(iso_timestamp(std::string(s, n), false));
        case 1184:
            return make_str(iso_timestamp(std::string(s, n), true));
        default:
            if (Oid elem = array_element(type)) {
                const char* p = s;
                return parse_array(elem, p, s + n);
            }
            return str_value(s, n);
    }
}

// The rows of `r` as a list of dicts (column name → value).
Value rows_of(const PGresult* r) {
    std::vector<Value> rows;
    if (!r || lazy::pq().resultStatus(r) != PGRES_TUPLES_OK) return make_list(std::move(rows));
    int nc = lazy::pq().nfields(r), nr = lazy::pq().ntuples(r);
    std::vector<Value> names;
    std::vector<Oid> types;
    for (int j = 0; j < nc; ++j) {
        names.push_back(make_str(lazy::pq().fname(r, j)));
        types.push_back(lazy::pq().ftype(r, j));
    }
    rows.reserve(size_t(nr));
    for (int i = 0; i < nr; ++i) {
        Value d = make_dict();
        for (int j = 0; j < nc; ++j) {
            Value v;
            if (!lazy::pq().getisnull(r, i, j))
                v = text_value(types[size_t(j)], lazy::pq().getvalue(r, i, j), size_t(lazy::pq().getlength(r, i, j)));
            set_item(d, names[size_t(j)], std::move(v));
        }
        rows.push_back(std::move(d));
    }
    return make_list(std::move(rows));
}

int64_t rows_changed(const PGresult* r) {
    if (!r) return 0;
    const char* t = lazy::pq().cmdTuples(const_cast<PGresult*>(r));
    return t && *t ? std::strtoll(t, nullptr, 10) : 0;
}

// ---------------------------------------------------------------------------
// The pool.

struct Target {
    std::vector<std::string> keys, vals;  // connection parameters, host and port resolved
    std::string shown;                    // host:port or socket path, for messages
};

// A transaction's connection, pinned to the task that opened the block: that task and the tasks
// it starts meanwhile (its deferred calls, spawn) use it, taking turns (`turn` holds one token).
struct Pin {
    PgConn* conn = nullptr;
    rt::Channel<char> turn = rt::Channel<char>::make(1);
    Pin() { turn.try_send(1); }
};

struct Pool {
    Target target;
    size_t size = 1;
    double timeout = -1;  // default per-call timeout in seconds; < 0: none
    std::mutex mu;
    std::vector<std::unique_ptr<PgConn>> idle;
    std::unordered_map<uint64_t, std::shared_ptr<Pin>> pinned;  // task id → its transaction
    rt::Channel<char> tokens;  // one token per connection that may be in use
    bool closed = false;
    ~Pool() { idle.clear(); }
};

// Opens a server connection (asynchronously; bounded by `deadline`).
std::unique_ptr<PgConn> open_conn(Pool& pool, int64_t deadline) {
    auto c = std::make_unique<PgConn>();
    const Target& t = pool.target;
    // PQconnectStartParams may resolve the host name, so it runs on the blocking pool. The job
    // owns its copy of the parameters and the new connection until it is taken here: a task
    // cancelled meanwhile leaves the job running, which then closes what it opened.
    auto started = std::make_shared<PgConn>();
    blocking([started, keys = t.keys, vals = t.vals] {
        std::vector<const char*> k, v;
        for (size_t i = 0; i < keys.size(); ++i) {
            k.push_back(keys[i].c_str());
            v.push_back(vals[i].c_str());
        }
        k.push_back(nullptr);
        v.push_back(nullptr);
        started->pg = lazy::pq().connectStartParams(k.data(), v.data(), 0);
        return 0;
    });
    c->pg = std::exchange(started->pg, nullptr);
    if (!c->pg)
        throw WeftError(ErrorKind::MemoryError, "out of memory opening a PostgreSQL connection");
    auto fail = [&](const std::string& why) {
        db_error("cannot connect to PostgreSQL at " + t.shown + ": " + why, "08001");
    };
    if (lazy::pq().status(c->pg) == CONNECTION_BAD) fail(trim_msg(lazy::pq().errorMessage(c->pg)));
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK) break;
        if (st == PGRES_POLLING_FAILED) fail(trim_msg(lazy::pq().errorMessage(c->pg)));
        if (!wait_sock(lazy::pq().socket(c->pg), st == PGRES_POLLING_WRITING, deadline))
            throw CallTimedOut{};
        st = lazy::pq().connectPoll(c->pg);
    }
    lazy::pq().setnonblocking(c->pg, 1);
    lazy::pq().setNoticeProcessor(c->pg, quiet_notices, nullptr);
    return c;
}

uint64_t task_key() {
    return rt::current_task() ? rt::current_task()->id() : 0;
}

// The transaction the current task is in: its own, or one an ancestor task opened (a deferred
// call or a spawned task inside the block runs in the transaction, as with db.sqlite). Walks
// the task tree only while some transaction of this pool is open.
std::shared_ptr<Pin> find_pin(Pool& pool) {
    uint64_t id = task_key();
    {
        std::lock_guard<std::mutex> g(pool.mu);
        if (pool.pinned.empty()) return nullptr;
        auto it = pool.pinned.find(id);
        if (it != pool.pinned.end()) return it->second;
    }
    if (!id) return nullptr;
    std::unordered_map<uint64_t, uint64_t> parent;
    for (auto& t : rt::tasks_snapshot())
        parent[t.task->id()] = t.parent;
    std::lock_guard<std::mutex> g(pool.mu);
    for (int hops = 0; hops < 100000; ++hops) {
        auto up = parent.find(id);
        if (up == parent.end() || up->second == 0) return nullptr;
        id = up->second;
        auto it = pool.pinned.find(id);
        if (it != pool.pinned.end()) return it->second;
    }
    return nullptr;
}

// A connection held for one call (or pinned to a transaction): returned to the pool when the
// lease ends, or closed if it broke or the pool was closed meanwhile.
class Lease {
  public:
    Lease(std::shared_ptr<Pool> pool, int64_t deadline) : pool_(std::move(pool)) {
        {
            std::lock_guard<std::mutex> g(pool_->mu);
            if (pool_->closed)
                throw WeftError(ErrorKind::ValueError, "cannot operate on a closed database");
        }
        if ((pin_ = find_pin(*pool_))) {
            try {
                if (rt::current_task()) pin_->turn.recv_for(remaining(deadline));
                turn_ = rt::current_task() != nullptr;
                conn_ = pin_->conn;
                return;
            } catch (rt::TimeoutError&) {
                throw CallTimedOut{};
            } catch (rt::ChannelClosed&) {
                pin_.reset();  // the transaction ended meanwhile: an ordinary call
            }
        }
        if (rt::current_task()) {
            try {
                pool_->tokens.recv_for(remaining(deadline));
            } catch (rt::TimeoutError&) {
                throw CallTimedOut{};
            }
        } else {
            std::optional<char> tok;
            if (pool_->tokens.try_recv(tok) != rt::detail::TryResult::Ok)
                throw WeftError(ErrorKind::ValueError, "every connection of the pool is in use");
        }
        token_ = true;
        {
            std::lock_guard<std::mutex> g(pool_->mu);
            if (!pool_->idle.empty()) {
                owned_ = std::move(pool_->idle.back());
                pool_->idle.pop_back();
            }
        }
        if (owned_ && lazy::pq().status(owned_->pg) == CONNECTION_BAD) owned_.reset();
        if (!owned_) owned_ = open_conn(*pool_, deadline);
        conn_ = owned_.get();
    }
    ~Lease() { release(); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    PgConn* conn() const { return conn_; }
    bool pinned() const { return pin_ != nullptr; }

    // Hands the connection to the transaction: pinned to the current task until unpin().
    void pin() {
        own_pin_ = std::make_shared<Pin>();
        own_pin_->conn = conn_;
        std::lock_guard<std::mutex> g(pool_->mu);
        pool_->pinned[task_key()] = own_pin_;
    }
    // Ends the pin: tasks still waiting for a turn go through the pool instead.
    void unpin() {
        if (!own_pin_) return;
        {
            std::lock_guard<std::mutex> g(pool_->mu);
            pool_->pinned.erase(task_key());
        }
        own_pin_->turn.close();
        own_pin_.reset();
    }

    void release() {
        if (owned_) {
            bool keep = !owned_->broken && lazy::pq().status(owned_->pg) == CONNECTION_OK &&
                        lazy::pq().transactionStatus(owned_->pg) == PQTRANS_IDLE;
            std::lock_guard<std::mutex> g(pool_->mu);
            if (keep && !pool_->closed) pool_->idle.push_back(std::move(owned_));
            owned_.reset();
        }
        if (token_) {
            token_ = false;
            pool_->tokens.try_send(1);
        }
        if (turn_) {
            turn_ = false;
            if (!pin_->turn.closed()) pin_->turn.try_send(1);
        }
        conn_ = nullptr;
    }

  private:
    std::shared_ptr<Pool> pool_;
    std::unique_ptr<PgConn> owned_;
    std::shared_ptr<Pin> pin_;      // the transaction whose connection this is, if any
    std::shared_ptr<Pin> own_pin_;  // the pin this (a transaction's) lease made
    PgConn* conn_ = nullptr;
    bool token_ = false;  // holds one of the pool's tokens
    bool turn_ = false;   // holds the transaction's turn
};

struct PgConnectionObj : OpaqueObj {
    std::shared_ptr<Pool> pool;
    explicit PgConnectionObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

std::shared_ptr<Pool> pool_of(Value& self) {
    auto* o = self_as<PgConnectionObj>(self);
    std::lock_guard<std::mutex> g(o->pool->mu);
    if (o->pool->closed)
        throw WeftError(ErrorKind::ValueError, "cannot operate on a closed database");
    return o->pool;
}

std::shared_ptr<Pool> pool_of_any(Value& self) {
    return self_as<PgConnectionObj>(self)->pool;
}

double timeout_value(const Value* v, double dflt) {
    if (!v || v->is_none()) return dflt;
    if (!(v->is_number()) || v->is_bool())
        throw WeftError(ErrorKind::TypeError,
                        "timeout must be a number of seconds, not " + type_name(*v));
    double t = v->as_number();
    if (std::isnan(t) || t < 0)
        throw WeftError(ErrorKind::ValueError, "timeout must be a non-negative number");
    return t;
}

int64_t deadline_for(double timeout) {
    if (timeout < 0 || timeout > 1e9) return INT64_MAX;
    return rt::now_ns() + int64_t(timeout * 1e9);
}

std::string seconds_text(double s) {
    char buf[32];
    snprintf(buf, sizeof buf, "%g", s);
    return buf;
}

// Runs one call's work with a leased connection, turning its own deadline into TimeoutError.
template <class F>
auto with_conn(Value& self, const Value* timeout_arg, const char* what, F fn) {
    auto pool = pool_of(self);
    double timeout = timeout_value(timeout_arg, pool->timeout);
    int64_t deadline = deadline_for(timeout);
    try {
        Lease lease(pool, deadline);
        return fn(lease.conn(), deadline);
    } catch (CallTimedOut&) {
        throw WeftError(ErrorKind::TimeoutError, std::string(what) + "() on PostgreSQL at " +
                                                     pool->target.shown + " timed out after " +
                                                     seconds_text(timeout) + " seconds");
    }
}

ResultPtr run(PgConn* c, const std::string& sql, const std::vector<Param>* params,
              int64_t deadline) {
    send_query(c, sql, params);
    return collect_results(c, deadline);
}

Value c_query(CallContext& cx, Value& self, const CallArgs& a) {
    Params p(a, "query", {"sql", "params", "timeout"}, 1);
    std::string sql = p.str(0);
    bool has_params = p.has(1);
    auto params = param_list(cx, p.get(1));
    return with_conn(self, p.get(2), "query", [&](PgConn* c, int64_t deadline) {
        ResultPtr r = run(c, sql, has_params ? &params : nullptr, deadline);
        return rows_of(r.r);
    });
}

Value c_execute(CallContext& cx, Value& self, const CallArgs& a) {
    Params p(a, "execute", {"sql", "params", "timeout"}, 1);
    std::string sql = p.str(0);
    bool has_params = p.has(1);
    auto params = param_list(cx, p.get(1));
    return with_conn(self, p.get(2), "execute", [&](PgConn* c, int64_t deadline) {
        ResultPtr r = run(c, sql, has_params ? &params : nullptr, deadline);
        return Value::integer(rows_changed(r.r));
    });
}

Value c_executemany(CallContext& cx, Value& self, const CallArgs& a) {
    Params p(a, "executemany", {"sql", "rows", "timeout"}, 2);
    std::string sql = p.str(0);
    std::vector<std::vector<Param>> rows;
    for (auto& row : collect(cx, *p.get(1)))
        rows.push_back(param_list(cx, &row));
    return with_conn(self, p.get(2), "executemany", [&](PgConn* c, int64_t deadline) {
        int64_t total = 0;
        for (auto& row : rows) {
            ResultPtr r = run(c, sql, &row, deadline);
            total += rows_changed(r.r);
        }
        return Value::integer(total);
    });
}

Value c_close(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "close", {}, 0);
    auto* o = self_as<PgConnectionObj>(self);
    std::vector<std::unique_ptr<PgConn>> idle;
    {
        std::lock_guard<std::mutex> g(o->pool->mu);
        o->pool->closed = true;
        idle.swap(o->pool->idle);
    }
    return Value();  // `idle` closes here; connections in use close when their calls end
}

// ---------------------------------------------------------------------------
// transaction(): BEGIN/COMMIT/ROLLBACK on a connection pinned to the task, or a SAVEPOINT
// when the task is already inside a transaction of this Connection.

struct PgTransactionObj : OpaqueObj {
    Value conn;
    std::unique_ptr<Lease> lease;  // the outermost block's connection
    PgConn* pg = nullptr;
    std::string savepoint;  // nested: the savepoint's name
    explicit PgTransactionObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

void exec_simple(PgConn* c, const std::string& sql) {
    run(c, sql, nullptr, INT64_MAX);
}

Value t_enter(CallContext&, Value& self, const CallArgs&) {
    auto* t = self_as<PgTransactionObj>(self);
    if (t->pg) throw WeftError(ErrorKind::ValueError, "this transaction() block is already open");
    auto pool = pool_of(t->conn);
    auto lease = std::make_unique<Lease>(pool, deadline_for(pool->timeout));
    t->pg = lease->conn();
    if (lease->pinned()) {
        t->savepoint = "weft_sp_" + std::to_string(reinterpret_cast<uintptr_t>(t));
        exec_simple(t->pg, "SAVEPOINT " + t->savepoint);
        return t->conn;
    }
    exec_simple(t->pg, "BEGIN");
    lease->pin();
    t->lease = std::move(lease);
    return t->conn;
}

Value t_exit(CallContext&, Value& self, const CallArgs& a) {
    auto* t = self_as<PgTransactionObj>(self);
    bool failed = !a.pos.empty() && !a.pos[0].is_none();
    // Leaving because the task was cancelled: the rollback must still happen.
    Shield shield;
    PgConn* c = std::exchange(t->pg, nullptr);
    std::unique_ptr<Lease> lease = std::move(t->lease);
    if (!c) return Value::boolean(false);
    // This task's turn on the connection (tasks started in the block may still be using it),
    // held until the pin ends; then the connection goes back to the pool (`lease`).
    std::optional<Lease> turn;
    try {
        turn.emplace(pool_of_any(t->conn), INT64_MAX);
    } catch (...) {
        if (lease) lease->unpin();
        throw;
    }
    struct Unpin {
        Lease* l;
        ~Unpin() {
            if (l) l->unpin();
        }
    } unpin{lease.get()};
    if (c->broken || lazy::pq().status(c->pg) != CONNECTION_OK) {
        if (!failed)
            db_error("the connection was lost during the transaction; it was not committed",
                     "08006");
        return Value::boolean(false);
    }
    if (!t->savepoint.empty()) {
        if (failed) exec_simple(c, "ROLLBACK TO SAVEPOINT " + t->savepoint);
        exec_simple(c, "RELEASE SAVEPOINT " + t->savepoint);
    } else if (failed) {
        exec_simple(c, "ROLLBACK");
    } else {
        // COMMIT of a transaction the server has aborted (an error caught inside the block)
        // rolls back: say so rather than pretend it committed.
        bool aborted = lazy::pq().transactionStatus(c->pg) == PQTRANS_INERROR;
        exec_simple(c, "COMMIT");
        if (aborted) db_error("the transaction was rolled back: a statement in it failed", "25P02");
    }
    return Value::boolean(false);
}

const MethodInfo kTransactionMethods[] = {
    {"__enter__", t_enter, false}, {"__exit__", t_exit, false}, {nullptr, nullptr, false}};
void transaction_share(OpaqueObj* self) {
    share(static_cast<PgTransactionObj*>(self)->conn);
}
const OpaqueClass kTransactionClass{
    "Transaction", kTransactionMethods, nullptr, nullptr, nullptr, nullptr,
    nullptr,       transaction_share};

Value c_transaction(CallContext&, Value& self, const CallArgs& a) {
    pool_of(self);
    Params p(a, "transaction", {}, 0);
    auto* t = new PgTransactionObj(&kTransactionClass);
    t->conn = self;
    return Value::adopt(t);
}

bool c_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* o = static_cast<const PgConnectionObj*>(self);
    if (name == "pool_size") {
        out = Value::integer(int64_t(o->pool->size));
    } else if (name == "in_transaction") {
        std::lock_guard<std::mutex> g(o->pool->mu);
        out = Value::boolean(o->pool->pinned.count(task_key()) > 0);
    } else {
        return false;
    }
    return true;
}

std::string c_repr(const OpaqueObj* self) {
    auto* o = static_cast<const PgConnectionObj*>(self);
    return "<postgres Connection " + str_repr(o->pool->target.shown) +
           (o->pool->closed ? " (closed)" : "") + ">";
}

const MethodInfo kConnectionMethods[] = {{"query", c_query, false, "sql params timeout"},
                                         {"execute", c_execute, false, "sql params timeout"},
                                         {"executemany", c_executemany, false, "sql rows timeout"},
                                         {"transaction", c_transaction, false},
                                         {"close", c_close, false},
                                         {nullptr, nullptr, false}};
const OpaqueClass kConnectionClass{"Connection", kConnectionMethods, c_get_attr, c_repr};

// Splits a comma-separated libpq host or port list.
std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t comma = s.find(',', start);
        out.push_back(
            s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

// Parses the DSN (a "key=value ..." string or a postgresql:// URI), fixes host and port (from
// the DSN, else PGHOST/PGPORT, else libpq's defaults) so that what is checked against the
// capabilities is what libpq connects to, and checks them: --allow-net for host:port, or
// --allow-read for a Unix socket's path.
Target resolve_target(CallContext& cx, const std::string& dsn) {
    char* err = nullptr;
    PQconninfoOption* opts = lazy::pq().conninfoParse(dsn.c_str(), &err);
    if (!opts) {
        std::string why = err ? trim_msg(err) : "out of memory";
        if (err) lazy::pq().freemem(err);
        throw WeftError(ErrorKind::ValueError, "invalid PostgreSQL connection string: " + why);
    }
    Target t;
    std::string host, hostaddr, port, options;
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
        if (!o->val) continue;
        std::string k = o->keyword;
        if (k == "host")
            host = o->val;
        else if (k == "hostaddr")
            hostaddr = o->val;
        else if (k == "port")
            port = o->val;
        else if (k == "options")
            options = o->val;
        else if (k == "service" || k == "servicefile")
            throw WeftError(ErrorKind::ValueError,
                            "db.postgres() does not read service files: give host and port");
        else if (k != "client_encoding") {
            t.keys.push_back(k);
            t.vals.push_back(o->val);
        }
    }
    lazy::pq().conninfoFree(opts);
    if (host.empty() && hostaddr.empty()) {
        const char* e = getenv("PGHOST");
        host = e && *e ? e : "/var/run/postgresql";
    }
    if (port.empty()) {
        const char* e = getenv("PGPORT");
        port = e && *e ? e : "5432";
    }
    std::vector<std::string> hosts = split_list(hostaddr.empty() ? host : hostaddr);
    std::vector<std::string> ports = split_list(port);
    for (size_t i = 0; i < hosts.size(); ++i) {
        const std::string& h = hosts[i];
        const std::string& pt =
            ports.size() == 1 ? ports[0] : (i < ports.size() ? ports[i] : "5432");
        char* endp = nullptr;
        long pn = std::strtol(pt.c_str(), &endp, 10);
        if (pt.empty() || *endp || pn <= 0 || pn > 65535)
            throw WeftError(ErrorKind::ValueError, "invalid PostgreSQL port '" + pt + "'");
        std::string shown;
        if (!h.empty() && h[0] == '/') {
            shown = h + "/.s.PGSQL." + pt;
            require_read(cx, shown, "connecting to the PostgreSQL socket");
        } else {
            require_net(cx, h, int(pn), "connecting to");
            shown = stdlib::host_port(h, int(pn));
        }
        if (!t.shown.empty()) t.shown += ",";
        t.shown += shown;
    }
    if (!host.empty()) {
        t.keys.push_back("host");
        t.vals.push_back(host);
    }
    if (!hostaddr.empty()) {
        t.keys.push_back("hostaddr");
        t.vals.push_back(hostaddr);
    }
    t.keys.push_back("port");
    t.vals.push_back(port);
    // Results are decoded as UTF-8, and dates in ISO order whatever the server's defaults.
    t.keys.push_back("client_encoding");
    t.vals.push_back("UTF8");
    t.keys.push_back("options");
    t.vals.push_back("-c DateStyle=ISO,YMD" + (options.empty() ? "" : " " + options));
    return t;
}

}  // namespace

/// db.postgres(dsn, pool=1, timeout=None): a Connection to a PostgreSQL server. `dsn` is a
/// libpq connection string ("host=127.0.0.1 port=5432 dbname=app user=app") or URI
/// ("postgresql://app@127.0.0.1:5432/app"). `pool` bounds the server connections opened (each
/// call or transaction uses one); `timeout` (seconds) is the default limit of each call,
/// connecting included. Raises PermissionDenied without the capability, DatabaseError when the
/// server cannot be reached (connections are opened on first use, and the first is opened here
/// so a wrong DSN fails at once), TimeoutError. Thread-safety: a Connection may be used by any
/// number of tasks at once.
Value db_postgres(CallContext& cx, const CallArgs& a) {
    Params p(a, "postgres", {"dsn", "pool", "timeout"}, 1);
    std::string dsn = p.str(0);
    int64_t size = p.int_or(1, 1);
    if (size < 1 || size > 10000)
        throw WeftError(ErrorKind::ValueError, "pool must be between 1 and 10000");
    double timeout = timeout_value(p.get(2), -1);
    auto pool = std::make_shared<Pool>();
    pool->target = resolve_target(cx, dsn);
    pool->size = size_t(size);
    pool->timeout = timeout;
    pool->tokens = rt::Channel<char>::make(size_t(size));
    for (int64_t i = 0; i < size; ++i)
        pool->tokens.try_send(1);
    auto* o = new PgConnectionObj(&kConnectionClass);
    Value keep = Value::adopt(o);
    o->pool = pool;
    // Open the first connection now: a wrong DSN or password is reported by db.postgres().
    with_conn(keep, nullptr, "connect", [](PgConn*, int64_t) { return 0; });
    return keep;
}

}  // namespace weft
