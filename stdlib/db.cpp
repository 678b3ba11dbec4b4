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
// not accepted, so a path always means a file.
//
// Errors from SQLite are IOError carrying SQLite's message ("no such table: t",
// "UNIQUE constraint failed: t.id") until the language has a DatabaseError.
// Every call into SQLite that may touch the disk is one blocking_* function.
#include <sqlite3.h>

#include <unordered_map>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/tasks.h"
#include "vm/capabilities.h"
#include "vm/lib_internal.h"

namespace weft {

namespace {

using stdlib::Params;
using stdlib::self_as;

constexpr size_t kStmtCacheMax = 64;

struct ConnectionObj : OpaqueObj {
    sqlite3* db = nullptr;
    std::string path;
    std::unordered_map<std::string, sqlite3_stmt*> stmts;
    int tx_depth = 0;  // open transaction() blocks
    explicit ConnectionObj(const OpaqueClass* c) : OpaqueObj(c) {}
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
    int rc = sqlite3_prepare_v2(c->db, start, int(sql.c_str() + sql.size() - start), &st, &tail);
    if (rc != SQLITE_OK) db_error(c->db, "SQL error");
    out.st = st;
    out.tail = tail;
    bool whole = start == sql.c_str() && tail && *tail == '\0';
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

void bind_one(ConnectionObj* c, sqlite3_stmt* st, int idx, const Value& v) {
    int rc;
    if (v.is_none())
        rc = sqlite3_bind_null(st, idx);
    else if (v.is_bool())
        rc = sqlite3_bind_int64(st, idx, v.as_bool() ? 1 : 0);
    else if (v.is_int())
        rc = sqlite3_bind_int64(st, idx, v.as_int());
    else if (v.is_float())
        rc = sqlite3_bind_double(st, idx, v.as_float());
    else if (v.is(ObjType::Str)) {
        auto& s = v.as<StrObj>()->data;
        rc = sqlite3_bind_text64(st, idx, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    } else if (v.is(ObjType::Bytes)) {
        auto& s = v.as<BytesObj>()->data;
        rc = sqlite3_bind_blob64(st, idx, s.data(), s.size(), SQLITE_TRANSIENT);
    } else {
        throw WeftError(ErrorKind::TypeError, "cannot bind a parameter of type '" + type_name(v) +
                                                  "' (use None, bool, int, float, str or bytes)");
    }
    if (rc != SQLITE_OK) db_error(c->db, "cannot bind parameter " + std::to_string(idx));
}

void bind_params(CallContext& cx, ConnectionObj* c, sqlite3_stmt* st, const Value* params) {
    int n = sqlite3_bind_parameter_count(st);
    if (!params || params->is_none()) {
        if (n)
            throw WeftError(ErrorKind::ValueError, "the statement has " + std::to_string(n) +
                                                       " parameters but none were given");
        return;
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
            bind_one(c, st, i, d->table.entry(size_t(e)).value);
        }
        return;
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
        bind_one(c, st, i + 1, items[size_t(i)]);
}

Value column_value(sqlite3_stmt* st, int i) {
    switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            return Value::integer(sqlite3_column_int64(st, i));
        case SQLITE_FLOAT:
            return Value::number(sqlite3_column_double(st, i));
        case SQLITE_TEXT: {
            const char* p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
            std::string s(p, size_t(sqlite3_column_bytes(st, i)));
            if (lib::utf8_validate(s) != std::string::npos) return make_bytes(std::move(s));
            return make_str(std::move(s));
        }
        case SQLITE_BLOB: {
            const char* p = static_cast<const char*>(sqlite3_column_blob(st, i));
            return make_bytes(std::string(p ? p : "", size_t(sqlite3_column_bytes(st, i))));
        }
        default:
            return Value();
    }
}

// Steps a bound statement to completion; collects rows into `rows` when non-null.
void blocking_run(ConnectionObj* c, sqlite3_stmt* st, std::vector<Value>* rows) {
    int ncol = sqlite3_column_count(st);
    std::vector<Value> names;
    if (rows)
        for (int i = 0; i < ncol; ++i)
            names.push_back(make_str(sqlite3_column_name(st, i)));
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) {
            sqlite3_reset(st);
            db_error(c->db, "SQL error");
        }
        if (rows) {
            Value d = make_dict();
            for (int i = 0; i < ncol; ++i)
                set_item(d, names[size_t(i)], column_value(st, i));
            rows->push_back(std::move(d));
        }
    }
    sqlite3_reset(st);
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
        bind_params(cx, c, s.st, last ? params : nullptr);
        if (rows) rows->clear();
        blocking_run(c, s.st, rows);
        any = true;
        start = s.tail ? s.tail : end;
    }
    if (!any) throw WeftError(ErrorKind::ValueError, "empty SQL statement");
}

Value c_query(CallContext& cx, Value& self, const CallArgs& a) {
    auto* c = conn(self);
    Params p(a, "query", {"sql", "params"}, 1);
    std::vector<Value> rows;
    run_sql(cx, c, p.str(0), p.get(1), &rows);
    return make_list(std::move(rows));
}

Value c_execute(CallContext& cx, Value& self, const CallArgs& a) {
    auto* c = conn(self);
    Params p(a, "execute", {"sql", "params"}, 1);
    run_sql(cx, c, p.str(0), p.get(1), nullptr);
    return Value::integer(sqlite3_changes64(c->db));
}

Value c_executemany(CallContext& cx, Value& self, const CallArgs& a) {
    auto* c = conn(self);
    Params p(a, "executemany", {"sql", "rows"}, 2);
    std::string sql = p.str(0);
    int64_t total = 0;
    for (auto& row : collect(cx, *p.get(1))) {
        Stmt s;
        prepare(c, sql, sql.c_str(), s);
        if (!s.st) throw WeftError(ErrorKind::ValueError, "empty SQL statement");
        bind_params(cx, c, s.st, &row);
        blocking_run(c, s.st, nullptr);
        total += sqlite3_changes64(c->db);
    }
    return Value::integer(total);
}

Value c_close(CallContext&, Value& self, const CallArgs& a) {
    Params p(a, "close", {}, 0);
    self_as<ConnectionObj>(self)->close_db();
    return Value();
}

void blocking_exec(ConnectionObj* c, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(c->db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        throw WeftError(ErrorKind::IOError, std::string("SQL error: ") + msg);
    }
}

// ---------------------------------------------------------------------------
// transaction(): BEGIN/COMMIT/ROLLBACK, or a SAVEPOINT when nested.

struct TransactionObj : OpaqueObj {
    Value conn;
    bool savepoint = false;
    std::string name;
    explicit TransactionObj(const OpaqueClass* c) : OpaqueObj(c) {}
};

Value t_enter(CallContext&, Value& self, const CallArgs&) {
    auto* t = self_as<TransactionObj>(self);
    auto* c = conn(t->conn);
    t->savepoint = !sqlite3_get_autocommit(c->db);
    if (t->savepoint) {
        t->name = "weft_sp_" + std::to_string(++c->tx_depth);
        blocking_exec(c, ("SAVEPOINT " + t->name).c_str());
    } else {
        ++c->tx_depth;
        blocking_exec(c, "BEGIN");
    }
    return t->conn;
}

Value t_exit(CallContext&, Value& self, const CallArgs& a) {
    auto* t = self_as<TransactionObj>(self);
    auto* c = conn(t->conn);
    bool failed = !a.pos.empty() && !a.pos[0].is_none();
    --c->tx_depth;
    if (t->savepoint) {
        if (failed) blocking_exec(c, ("ROLLBACK TO " + t->name).c_str());
        blocking_exec(c, ("RELEASE " + t->name).c_str());
    } else if (failed) {
        if (!sqlite3_get_autocommit(c->db)) blocking_exec(c, "ROLLBACK");
    } else {
        blocking_exec(c, "COMMIT");
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

const MethodInfo kConnectionMethods[] = {{"query", c_query, false},
                                         {"execute", c_execute, false},
                                         {"executemany", c_executemany, false},
                                         {"transaction", c_transaction, false},
                                         {"close", c_close, false},
                                         {nullptr, nullptr, false}};
const OpaqueClass kConnectionClass{"Connection", kConnectionMethods, c_get_attr, c_repr};

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
    c->db = blocking_open(path);
    return keep;
}

}  // namespace

void init_db_module(ModuleObj& m) {
    stdlib::define_fn(m, "sqlite", db_sqlite);
}

}  // namespace weft
