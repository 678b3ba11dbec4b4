// db.cpp — the `db` module: sqlite(path=":memory:") returns a Connection with
// query(sql, params=[]) (a list of dicts), execute(sql, params=[]) (the number
// of rows changed), executemany(sql, rows), transaction() (a `with` block that
// commits on success and rolls back on error), last_insert_rowid, close().
//
// Parameters are always bound with sqlite3_bind_* (never spliced into the SQL
// text): a list or tuple binds `?` placeholders in order, a dict binds `:name`.
// Prepared statements are cached per connection (keyed by SQL text), so a loop
// of inserts compiles its statement once.
//
// Capabilities: a database file needs both read and write capability for its
// path (SQLite may create it, and writes journals next to it); ":memory:" and
// "" (a private temporary database) need none. SQLite URIs ("file:...") are
// not accepted, so a path always means a file. SQL that reaches for other files
// is checked too: an authorizer holds every ATTACH (and VACUUM INTO, which
// attaches its output) to the same rule, and extension loading stays off.
//
// Errors from SQLite are IOError carrying SQLite's message ("no such table: t",
// "UNIQUE constraint failed: t.id") until the language has a DatabaseError.
// Every call into SQLite that may wait on the disk or on a lock (opening,
// stepping statements, exec) runs on the runtime's blocking pool, so a slow query parks only its
// task. Those calls touch no Weft value: parameters are converted to plain C++
// data before and rows to Weft values after. The connection must not be used
// while such a call runs, so each connection has a lock (a one-token channel;
// tasks sharing a connection take turns), and a cancelled task interrupts its
// statement (sqlite3_interrupt) and waits for the call to return before
// Cancelled propagates. Preparing a statement (it reads at most the schema) stays
// in the task.
#include <sqlite3.h>

#include <atomic>
#include <optional>
#include <unordered_map>
#include <utility>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/tasks.h"
#include "vm/capabilities.h"
#include "vm/lib_internal.h"
#include "weft/runtime/channel.hpp"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"

namespace weft {

Value db_postgres(CallContext& cx, const CallArgs& a);  // stdlib/postgres.cpp

namespace {

using stdlib::Params;
using stdlib::self_as;

constexpr size_t kStmtCacheMax = 64;
constexpr int kMaxAttached = 4;  // SQLite's default is 10

struct ConnectionObj : OpaqueObj {
    sqlite3* db = nullptr;
    std::string path;
    std::unordered_map<std::string, sqlite3_stmt*> stmts;
    int tx_depth = 0;  // open transaction() blocks
    // The capabilities of the task using the connection (set under ConnLock for each call),
    // which the authorizer checks ATTACH targets against. Read on the blocking pool too: the
    // set is immutable, and the lock keeps the pointer from changing during the call.
    std::shared_ptr<const CapabilitySet> caps = CapabilitySet::none();
    bool saw_attach = false;  // the statement being prepared attaches: never cached
    std::string denied;       // why the authorizer refused the current call's SQL, if it did
    // Holds one token while the connection is free (see ConnLock).
    rt::Channel<char> free_token = rt::Channel<char>::make(1);
    explicit ConnectionObj(const OpaqueClass* c) : OpaqueObj(c) { free_token.try_send(1); }
    ~ConnectionObj() override { close_db(); }
    void close_db() {
        for (auto& [sql, st] : stmts)
            sqlite3_finalize(st);
        stmts.clear();
        if (db) sqlite3_close_v2(db);
        db = nullptr;
    }
};

[[noreturn]] void db_error(sqlite3* db, const std::string& what) {
    throw WeftError(ErrorKind::IOError, what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

ConnectionObj* conn(Value& self) {
    auto* c = self_as<ConnectionObj>(self);
    if (!c->db) throw WeftError(ErrorKind::ValueError, "cannot operate on a closed database");
    return c;
}

// Exclusive use of a connection by the current task for one call: another task's statement
// may be running on the blocking pool. Outside a task (no runtime) nothing can interleave.
class ConnLock {
  public:
    ConnLock(CallContext& cx, ConnectionObj* c) : c_(c) {
        if (rt::current_task()) {
            c_->free_token.recv();
            held_ = true;
        }
        auto caps = cx.capabilities();
        c_->caps = caps ? caps : CapabilitySet::none();
    }
    ~ConnLock() {
        if (held_) c_->free_token.try_send(1);
    }
    ConnLock(const ConnLock&) = delete;
    ConnLock& operator=(const ConnLock&) = delete;

  private:
    ConnectionObj* c_;
    bool held_ = false;
};

// Runs `fn` (SQLite work on `db`, which may be null while opening) on the blocking pool and
// returns its result. If the task is cancelled meanwhile, the statement is interrupted and the
// task waits, shielded, until `fn` has returned (it uses the connection), then re-raises.
template <class F>
auto db_blocking(sqlite3* db, F fn) {
    if (!rt::current_task()) return fn();
    auto finished = std::make_shared<std::atomic<bool>>(false);
    auto job = [fn = std::move(fn), finished]() mutable {
        struct Mark {
            std::atomic<bool>* f;
            ~Mark() { f->store(true, std::memory_order_release); }
        } mark{finished.get()};
        return fn();
    };
    try {
        return rt::run_blocking(std::move(job));
    } catch (const rt::Cancelled&) {
        if (db) sqlite3_interrupt(db);
        rt::CancelScopeOptions o;
        o.shield = true;
        rt::CancelScope shield(o);
        while (!finished->load(std::memory_order_acquire))
            rt::sleep_for(0.001);
        throw;
    }
}

// A parameter or a column value as plain data (safe to use on another thread).
struct Cell {
    enum Kind : uint8_t { Null, Int, Real, Text, Blob } kind = Null;
    int64_t i = 0;
    double d = 0;
    std::string s;
};
using Row = std::vector<Cell>;

// A statement ready to bind (reset, bindings cleared); owned by the cache
// unless `owned` is set, then the caller finalizes it.
struct Stmt {
    sqlite3_stmt* st = nullptr;
    bool owned = false;
    const char* tail = nullptr;
    ~Stmt() {
        if (owned && st) sqlite3_finalize(st);
    }
};

void prepare(ConnectionObj* c, const std::string& sql, const char* start, Stmt& out) {
    // Only whole-string statements are cached (the common case: one statement).
    if (start == sql.c_str()) {
        auto it = c->stmts.find(sql);
        if (it != c->stmts.end()) {
            sqlite3_reset(it->second);
            sqlite3_clear_bindings(it->second);
            out.st = it->second;
            out.tail = sql.c_str() + sql.size();
            return;
        }
    }
    const char* tail = nullptr;
    sqlite3_stmt* st = nullptr;
    c->saw_attach = false;
    int rc = sqlite3_prepare_v2(c->db, start, int(sql.c_str() + sql.size() - start), &st, &tail);
    if (rc != SQLITE_OK) db_error(c->db, "SQL error");
    out.st = st;
    out.tail = tail;
    // A statement that attaches a file was authorized for this task's capabilities: another
    // task must prepare (and so authorize) it anew.
    bool whole = start == sql.c_str() && tail && *tail == '\0' && !c->saw_attach;
    if (whole && st) {
        if (c->stmts.size() >= kStmtCacheMax) {
            for (auto& [s, old] : c->stmts)
                sqlite3_finalize(old);
            c->stmts.clear();
        }
        c->stmts[sql] = st;
    } else {
        out.owned = true;
    }
}

Cell to_cell(const Value& v) {
    Cell c;
    if (v.is_none()) {
    } else if (v.is_bool()) {
        c.kind = Cell::Int;
        c.i = v.as_bool() ? 1 : 0;
    } else if (v.is_int()) {
        c.kind = Cell::Int;
        c.i = v.as_int();
    } else if (v.is_float()) {
        c.kind = Cell::Real;
        c.d = v.as_float();
    } else if (v.is(ObjType::Str)) {
        c.kind = Cell::Text;
        c.s = v.as<StrObj>()->data;
    } else if (v.is(ObjType::Bytes)) {
        c.kind = Cell::Blob;
        c.s = v.as<BytesObj>()->data;
    } else {
        throw WeftError(ErrorKind::TypeError, "cannot bind a parameter of type '" + type_name(v) +
                                                  "' (use None, bool, int, float, str or bytes)");
    }
    return c;
}

// Binds a row of parameters (index order) to a reset statement. Runs on the blocking pool.
void bind_row(sqlite3* db, sqlite3_stmt* st, const Row& row) {
    for (size_t k = 0; k < row.size(); ++k) {
        const Cell& c = row[k];
        int idx = int(k) + 1, rc;
        switch (c.kind) {
            case Cell::Null:
                rc = sqlite3_bind_null(st, idx);
                break;
            case Cell::Int:
                rc = sqlite3_bind_int64(st, idx, c.i);
                break;
            case Cell::Real:
                rc = sqlite3_bind_double(st, idx, c.d);
                break;
            case Cell::Text:
                rc = sqlite3_bind_text64(st, idx, c.s.data(), c.s.size(), SQLITE_TRANSIENT,
                                         SQLITE_UTF8);
                break;
            default:
                rc = sqlite3_bind_blob64(st, idx, c.s.data(), c.s.size(), SQLITE_TRANSIENT);
                break;
        }
        if (rc != SQLITE_OK) db_error(db, "cannot bind parameter " + std::to_string(idx));
    }
}

// The parameters of `st` from a list, tuple or dict, as plain data in index order.
Row param_row(CallContext& cx, sqlite3_stmt* st, const Value* params) {
    Row row;
    int n = sqlite3_bind_parameter_count(st);
    if (!params || params->is_none()) {
        if (n)
            throw WeftError(ErrorKind::ValueError, "the statement has " + std::to_string(n) +
                                                       " parameters but none were given");
        return row;
    }
    if (params->is(ObjType::Dict)) {
        auto* d = params->as<DictObj>();
        for (int i = 1; i <= n; ++i) {
            const char* name = sqlite3_bind_parameter_name(st, i);
            if (!name || !name[1])
                throw WeftError(ErrorKind::ValueError,
                                "positional parameter '?' used with a dict of parameters");
            int64_t e = d->table.find(make_str(name + 1));
            if (e < 0)
                throw WeftError(ErrorKind::KeyError,
                                std::string("missing parameter '") + (name + 1) + "'");
            row.push_back(to_cell(d->table.entry(size_t(e)).value));
        }
        return row;
    }
    if (!params->is(ObjType::List) && !params->is(ObjType::Tuple))
        throw WeftError(ErrorKind::TypeError,
                        "params must be a list, tuple or dict, not " + type_name(*params));
    std::vector<Value> items = collect(cx, *params);
    if (int(items.size()) != n)
        throw WeftError(ErrorKind::ValueError, "the statement has " + std::to_string(n) +
                                                   " parameters but " +
                                                   std::to_string(items.size()) + " were given");
    for (int i = 0; i < n; ++i)
        row.push_back(to_cell(items[size_t(i)]));
    return row;
}

Cell column_cell(sqlite3_stmt* st, int i) {
    Cell c;
    switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            c.kind = Cell::Int;
            c.i = sqlite3_column_int64(st, i);
            break;
        case SQLITE_FLOAT:
            c.kind = Cell::Real;
            c.d = sqlite3_column_double(st, i);
            break;
        case SQLITE_TEXT: {
            const char* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
            c.kind = Cell::Text;
            c.s.assign(p, size_t(sqlite3_column_bytes(st, i)));
            break;
        }
        case SQLITE_BLOB: {
            const char* p = static_cast<const char*>(sqlite3_column_blob(st, i));
            c.kind = Cell::Blob;
            c.s.assign(p ? p : "", size_t(sqlite3_column_bytes(st, i)));
            break;
        }
        default:
            break;
    }
    return c;
}

Value cell_value(Cell& c) {
    switch (c.kind) {
        case Cell::Int:
            return Value::integer(c.i);
        case Cell::Real:
            return Value::number(c.d);
        case Cell::Text:
            // Text that is not valid UTF-8 cannot be a str.
            if (lib::utf8_validate(c.s) != std::string::npos) return make_bytes(std::move(c.s));
            return make_str(std::move(c.s));
        case Cell::Blob:
            return make_bytes(std::move(c.s));
        default:
            return Value();
    }
}

// What a statement produced: its rows (when asked for) and column names.
struct Result {
    std::vector<std::string> names;
    std::vector<Row> rows;
};

// Binds `params` and steps the statement to completion; collects rows when `want_rows`.
// Runs on the blocking pool: touches no Weft value.
void blocking_run(sqlite3* db, sqlite3_stmt* st, const Row& params, bool want_rows, Result* out) {
    bind_row(db, st, params);
    int ncol = sqlite3_column_count(st);
    if (want_rows)
        for (int i = 0; i < ncol; ++i)
            out->names.emplace_back(sqlite3_column_name(st, i));
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            db_error(db, "SQL error");
        }
        if (want_rows) {
            Row row;
            row.reserve(size_t(ncol));
            for (int i = 0; i < ncol; ++i)
                row.push_back(column_cell(st, i));
            out->rows.push_back(std::move(row));
        }
    }
    sqlite3_reset(st);
}

void rows_to_values(Result& r, std::vector<Value>& rows) {
    std::vector<Value> names;
    for (auto& n : r.names)
        names.push_back(make_str(n));
    rows.clear();
    rows.reserve(r.rows.size());
    for (auto& row : r.rows) {
        Value d = make_dict();
        for (size_t i = 0; i < row.size(); ++i)
            set_item(d, names[i], cell_value(row[i]));
        rows.push_back(std::move(d));
    }
}

// Runs every statement of `sql` (params bind the last one... and only a single
// statement may have parameters). Returns rows of the last statement.
void run_sql(CallContext& cx, ConnectionObj* c, const std::string& sql, const Value* params,
             std::vector<Value>* rows) {
    const char* start = sql.c_str();
    const char* end = sql.c_str() + sql.size();
    bool any = false;
    while (start < end) {
        Stmt s;
        prepare(c, sql, start, s);
        if (!s.st) break;  // only whitespace or comments left
        bool last = !s.tail || s.tail >= end ||
                    std::string_view(s.tail).find_first_not_of(" \t\r\n;") == std::string::npos;
        if (!last && params && !params->is_none() && sqlite3_bind_parameter_count(s.st))
            throw WeftError(ErrorKind::ValueError,
                            "parameters are only allowed with a single SQL statement");
        Row bound = param_row(cx, s.st, last ? params : nullptr);
        sqlite3* db = c->db;
        sqlite3_stmt* st = s.st;
        bool want = rows != nullptr;
        Result r = db_blocking(db, [db, st, bound = std::move(bound), want] {
            Result out;
            blocking_run(db, st, bound, want, &out);
            return out;
        });
        if (rows) rows_to_values(r, *rows);
        any = true;
        start = s.tail ? s.tail : end;
    }
    if (!any) throw WeftError(ErrorKind::ValueError, "empty SQL statement");
}

// Runs `fn` (one call's SQL); an error caused by the authorizer's refusal is raised as the
// PermissionDenied it is, with the reason, instead of SQLite's "not authorized".
template <class F>
auto authorized(ConnectionObj* c, F fn) {
    c->denied.clear();
    try {
        return fn();
    } catch (WeftError&) {
        if (!c->denied.empty()) throw WeftError(ErrorKind::PermissionDenied, c->denied);
        throw;
    }
}

Value c_query(CallContext& cx, Value& self, const CallArgs& a) {
    auto* c = conn(self);
    Params p(a, "query", {"sql", "params"}, 1);
    ConnLock lock(cx, c);
    std::vector<Value> rows;
    authorized(c, [&] { run_sql(cx, c, p.str(0), p.get(1), &rows); });
    return make_list(std::move(rows));
}

Value c_execute(CallContext& cx, Value& self, const CallArgs& a) {
    auto* c = conn(self);
    Params p(a, "execute", {"sql", "params"}, 1);
    ConnLock lock(cx, c);
    authorized(c, [&] { run_sql(cx, c, p.str(0), p.get(1), nullptr); });
    return Value::integer(sqlite3_changes64(c->db));
}

Value c_executemany(CallContext& cx, Value& self, const CallArgs& a) {
    auto* c = conn(self);
    Params p(a, "executemany", {"sql", "rows"}, 2);
    ConnLock lock(cx, c);
    return authorized(c, [&] {
        std::string sql = p.str(0);
        Stmt s;
        prepare(c, sql, sql.c_str(), s);
        if (!s.st) throw WeftError(ErrorKind::ValueError, "empty SQL statement");
        std::vector<Row> rows;
        for (auto& row : collect(cx, *p.get(1)))
            rows.push_back(param_row(cx, s.st, &row));
        // Every row in one trip to the blocking pool.
        sqlite3* db = c->db;
        sqlite3_stmt* st = s.st;
        int64_t total = db_blocking(db, [db, st, rows = std::move(rows)] {
            int64_t changed = 0;
            for (auto& row : rows) {
                sqlite3_clear_bindings(st);
                blocking_run(db, st, row, false, nullptr);
                changed += sqlite3_changes64(db);
            }
            return changed;
        });
        return Value::integer(total);
    });
}

Value c_close(CallContext& cx, Value& self, const CallArgs& a) {
    Params p(a, "close", {}, 0);
    auto* c = self_as<ConnectionObj>(self);
    ConnLock lock(cx, c);
    c->close_db();
    return Value();
}

void blocking_exec(sqlite3* db, const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        throw WeftError(ErrorKind::IOError, std::string("SQL error: ") + msg);
    }
}

void exec_sql(ConnectionObj* c, std::string sql) {
    sqlite3* db = c->db;
    db_blocking(db, [db, sql = std::move(sql)] { blocking_exec(db, sql); });
}

// ---------------------------------------------------------------------------
// transaction(): BEGIN/COMMIT/ROLLBACK, or a SAVEPOINT when nested.

struct TransactionObj : OpaqueObj {
    Value conn;
    bool savepoint = false;
    std::string name;
    explicit TransactionObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

Value t_enter(CallContext& cx, Value& self, const CallArgs&) {
    auto* t = self_as<TransactionObj>(self);
    auto* c = conn(t->conn);
    ConnLock lock(cx, c);
    t->savepoint = !sqlite3_get_autocommit(c->db);
    if (t->savepoint) {
        t->name = "weft_sp_" + std::to_string(++c->tx_depth);
        exec_sql(c, "SAVEPOINT " + t->name);
    } else {
        ++c->tx_depth;
        exec_sql(c, "BEGIN");
    }
    return t->conn;
}

Value t_exit(CallContext& cx, Value& self, const CallArgs& a) {
    auto* t = self_as<TransactionObj>(self);
    auto* c = conn(t->conn);
    bool failed = !a.pos.empty() && !a.pos[0].is_none();
    // The block may be leaving because its task was cancelled: the rollback (or commit) must
    // still happen, so this runs shielded from cancellation.
    std::optional<rt::CancelScope> shield;
    if (rt::current_task()) {
        rt::CancelScopeOptions o;
        o.shield = true;
        shield.emplace(o);
    }
    ConnLock lock(cx, c);
    --c->tx_depth;
    if (t->savepoint) {
        if (failed) exec_sql(c, "ROLLBACK TO " + t->name);
        exec_sql(c, "RELEASE " + t->name);
    } else if (failed) {
        if (!sqlite3_get_autocommit(c->db)) exec_sql(c, "ROLLBACK");
    } else {
        exec_sql(c, "COMMIT");
    }
    return Value::boolean(false);
}

const MethodInfo kTransactionMethods[] = {
    {"__enter__", t_enter, false}, {"__exit__", t_exit, false}, {nullptr, nullptr, false}};
void transaction_share(OpaqueObj* self) { share(static_cast<TransactionObj*>(self)->conn); }
const OpaqueClass kTransactionClass{"Transaction", kTransactionMethods, nullptr, nullptr, nullptr, nullptr, nullptr,
                                    transaction_share};

Value c_transaction(CallContext&, Value& self, const CallArgs& a) {
    conn(self);
    Params p(a, "transaction", {}, 0);
    auto* t = new TransactionObj(&kTransactionClass);
    t->conn = self;
    return Value::adopt(t);
}

bool c_get_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* c = static_cast<const ConnectionObj*>(self);
    if (name == "last_insert_rowid") {
        out = c->db ? Value::integer(sqlite3_last_insert_rowid(c->db)) : Value();
    } else if (name == "path") {
        out = make_str(c->path);
    } else if (name == "in_transaction") {
        out = Value::boolean(c->db && !sqlite3_get_autocommit(c->db));
    } else {
        return false;
    }
    return true;
}

std::string c_repr(const OpaqueObj* self) {
    auto* c = static_cast<const ConnectionObj*>(self);
    return "<sqlite Connection " + str_repr(c->path) + (c->db ? "" : " (closed)") + ">";
}

const MethodInfo kConnectionMethods[] = {{"query", c_query, false, "sql params"},
                                         {"execute", c_execute, false, "sql params"},
                                         {"executemany", c_executemany, false, "sql rows"},
                                         {"transaction", c_transaction, false},
                                         {"close", c_close, false},
                                         {nullptr, nullptr, false}};
const OpaqueClass kConnectionClass{"Connection", kConnectionMethods, c_get_attr, c_repr};

// The path SQLite will open for an ATTACH target: a plain path, or the path of a `file:`
// URI (file:PATH, file://localhost/PATH, file:///PATH, with %XX escapes and ?query).
std::string attach_target_path(const std::string& target) {
    if (target.rfind("file:", 0) != 0) return target;
    std::string rest = target.substr(5);
    rest = rest.substr(0, rest.find_first_of("?#"));
    if (rest.rfind("//", 0) == 0) {
        size_t slash = rest.find('/', 2);
        rest = slash == std::string::npos ? "" : rest.substr(slash);
    }
    std::string out;
    for (size_t i = 0; i < rest.size(); ++i) {
        if (rest[i] == '%' && i + 2 < rest.size() && isxdigit((unsigned char)rest[i + 1]) &&
            isxdigit((unsigned char)rest[i + 2])) {
            out += char(std::stoi(rest.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += rest[i];
        }
    }
    return out;
}

// sqlite3_set_authorizer callback: ATTACH (also the one VACUUM INTO runs for its output
// file) must name a file the task may read and write, checked like db.sqlite()'s own path;
// an in-memory database needs nothing. A target SQLite computes at run time (a bound
// parameter) is not shown to the authorizer, so it is refused. A file: URI is checked both
// as the file SQLite would open and as the literal name, whichever way the connection reads
// it. Extensions cannot be loaded (never enabled), so nothing else reaches the file system.
int authorize(void* self, int action, const char* arg1, const char*, const char*, const char*) {
    if (action != SQLITE_ATTACH) return SQLITE_OK;
    auto* c = static_cast<ConnectionObj*>(self);
    c->saw_attach = true;
    auto deny = [&](std::string why) {
        if (c->denied.empty()) c->denied = std::move(why);
        return SQLITE_DENY;
    };
    if (!arg1)
        return deny("ATTACH with a file name given as a parameter is not allowed: write the "
                    "file name in the SQL, where it can be checked");
    std::string target = arg1;
    if (target.empty() || target == ":memory:") return SQLITE_OK;
    const CapabilitySet& caps = *c->caps;
    for (const std::string& p : {target, attach_target_path(target)}) {
        if (p.empty() || !caps.allows_read(p) || !caps.allows_write(p))
            return deny("attaching database '" + target +
                        "' requires --allow-read and --allow-write (or --allow-read=" + p +
                        " --allow-write=" + p + ")" +
                        (caps.narrowed ? "; this task's capabilities were narrowed by "
                                         "restrict(), caps() or @effects"
                                       : ""));
    }
    return SQLITE_OK;
}

sqlite3* blocking_open(const std::string& path) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
        if (db) sqlite3_close_v2(db);
        throw WeftError(ErrorKind::IOError, "cannot open database '" + path + "': " + msg);
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    // Loading extensions (native code from any file) stays off, also through SQL's
    // load_extension(); few attached databases are needed, and each is checked (authorize).
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, kMaxAttached);
    return db;
}

Value db_sqlite(CallContext& cx, const CallArgs& a) {
    Params p(a, "sqlite", {"path"}, 0);
    std::string path = p.str_or(0, ":memory:");
    if (path.rfind("file:", 0) == 0)
        throw WeftError(ErrorKind::ValueError, "SQLite URIs are not supported; pass a file path");
    if (path != ":memory:" && !path.empty()) {
        require_read(cx, path, "opening database");
        require_write(cx, path, "opening database");
    }
    auto* c = new ConnectionObj(&kConnectionClass);
    Value keep = Value::adopt(c);
    c->path = path;
    // Owned by `opened` until taken: if the task is cancelled during the open, the
    // connection the pool opened is closed rather than leaked.
    struct Opened {
        sqlite3* db = nullptr;
        ~Opened() {
            if (db) sqlite3_close_v2(db);
        }
    };
    auto opened = std::make_shared<Opened>();
    db_blocking(nullptr, [path, opened] { opened->db = blocking_open(path); });
    c->db = std::exchange(opened->db, nullptr);
    sqlite3_set_authorizer(c->db, authorize, c);
    return keep;
}

}  // namespace

void init_db_module(ModuleObj& m) {
    stdlib::define_fn(m, "sqlite", db_sqlite);
    stdlib::define_fn(m, "postgres", db_postgres);  // stdlib/postgres.cpp
}

}  // namespace weft
