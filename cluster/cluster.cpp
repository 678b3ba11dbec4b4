// cluster.cpp — cluster mode on NATS JetStream: the driver side of parallel_map(...,
// cluster=True) and cluster.submit, `weft worker`, and `weft cluster status` (cluster.h).
//
// Semantics (docs/cluster.md): every item runs at least once and at most 1 + retries times
// (more only when a worker outlives its AckWait without progress acks); its result reaches the
// program exactly once (results carry Nats-Msg-Id "<job>.<index>": the stream drops a
// duplicate, the driver keeps the first). Application errors are results, never retried. A
// worker that fetches a task already delivered more than retries + 1 times does not run it: it
// answers WorkerLost and terminates the message.
//
// Threads: nats.c owns its own threads (message callbacks, flusher). A Weft task never blocks
// a runtime worker thread on NATS: connecting, KV reads and writes and publishing go through
// rt::run_blocking; waiting for results parks on an rt::oneshot completed by the subscription's
// callback thread, in rounds of at most 0.5 s so that a lost connection or the absence of
// workers is noticed (ClusterError), never a hang.
#include "cluster/cluster.h"

#include <nats/nats.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/wire.h"
#include "stdlib/stdlib.h"
#include "vm/capabilities.h"
#include "vm/collections.h"
#include "vm/function.h"
#include "vm/interp.h"
#include "vm/limits.h"
#include "vm/native.h"
#include "vm/tasks.h"
#include "vm/trace_out.h"
#include "weft/runtime/oneshot.hpp"
#include "weft/runtime/runtime.hpp"
#include "weft/runtime/scope.hpp"

namespace weft {
// vm/tasks.cpp: parallel_map & co. call it for cluster=True.
extern std::vector<Value> (*cluster_parallel_hook)(CallContext& cx, const Value& fn, const std::vector<Value>& items,
                                                   const CallArgs& a, const char* op, bool collect, double timeout,
                                                   std::vector<bool>* failed);
// vm/actors.cpp: remote actors.
extern void (*actor_cluster_spawn_hook)(CallContext& cx, const std::string& name, const Value& ref);
extern Value (*actor_cluster_whereis_hook)(CallContext& cx, const std::string& name);
extern bool (*actor_cluster_monitor_hook)(CallContext& cx, const Value& ref, Value& out);
}  // namespace weft

namespace weft::cluster {

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void cluster_error(const std::string& msg) { throw WeftError(ErrorKind::ClusterError, msg); }

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string nats_text(natsStatus s) {
    const char* last = nats_GetLastError(nullptr);
    std::string out = natsStatus_GetText(s);
    if (last && *last && out.find(last) == std::string::npos) out += std::string(" (") + last + ")";
    return out;
}

// Subject tokens cannot hold '.', '*', '>' or spaces.
bool valid_token(const std::string& s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!(isalnum(uint8_t(c)) || c == '_' || c == '-')) return false;
    return true;
}

std::string random_hex(int bytes) {
    static std::atomic<uint64_t> counter{0};
    uint64_t x = uint64_t(now_us()) ^ (uint64_t(getpid()) << 32) ^ (counter.fetch_add(1) * 0x9e3779b97f4a7c15ULL);
    std::string out;
    static const char* hex = "0123456789abcdef";
    for (int i = 0; i < bytes * 2; ++i) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 29;
        out += hex[x & 15];
    }
    return out;
}

// The NATS names of one cluster.
struct Names {
    std::string c;
    std::string tasks_stream() const { return "WEFT_" + c + "_TASKS"; }
    std::string results_stream() const { return "WEFT_" + c + "_RESULTS"; }
    std::string code_bucket() const { return "WEFT_" + c + "_CODE"; }
    std::string nodes_bucket() const { return "WEFT_" + c + "_NODES"; }
    std::string task_subject(const std::string& pool) const { return "weft." + c + ".task." + pool; }
    // A job id is "<driver>-<n>": its results go to weft.C.result.<driver>.<n>, so that a driver
    // listens to all its jobs with one subscription (weft.C.result.<driver>.*).
    std::string result_subject(const std::string& job) const {
        std::string j = job;
        if (auto dash = j.find('-'); dash != std::string::npos) j[dash] = '.';
        return "weft." + c + ".result." + j;
    }
    std::string cancel_subject(const std::string& job) const { return "weft." + c + ".cancel." + job; }
};

// One connection with its JetStream context and KV buckets. Thread-safe (nats.c objects are).
struct Conn {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    kvStore* code = nullptr;
    kvStore* nodes = nullptr;
    Names names;
    std::string url;
    std::atomic<int64_t> disconnected_since_us{0};

    ~Conn() {
        if (code) kvStore_Destroy(code);
        if (nodes) kvStore_Destroy(nodes);
        if (js) jsCtx_Destroy(js);
        if (nc) {
            natsConnection_FlushTimeout(nc, 1000);
            natsConnection_Destroy(nc);
        }
    }
};

void on_disconnected(natsConnection*, void* closure) {
    static_cast<Conn*>(closure)->disconnected_since_us.store(now_us());
}
void on_reconnected(natsConnection*, void* closure) { static_cast<Conn*>(closure)->disconnected_since_us.store(0); }

kvStore* open_bucket(jsCtx* js, const std::string& bucket, int64_t ttl_ns, std::string& err) {
    kvStore* kv = nullptr;
    if (js_KeyValue(&kv, js, bucket.c_str()) == NATS_OK) return kv;
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket.c_str();
    cfg.History = 1;
    cfg.TTL = ttl_ns;
    cfg.StorageType = js_FileStorage;
    natsStatus s = js_CreateKeyValue(&kv, js, &cfg);
    if (s != NATS_OK && js_KeyValue(&kv, js, bucket.c_str()) != NATS_OK) {  // another process made it meanwhile
        err = "cannot create the KV bucket " + bucket + ": " + nats_text(s);
        return nullptr;
    }
    return kv;
}

bool ensure_stream(jsCtx* js, const std::string& name, const std::string& subjects, bool work_queue, std::string& err) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = jsErrCode(0);
    if (js_GetStreamInfo(&si, js, name.c_str(), nullptr, &jerr) == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return true;
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    const char* subj[1] = {subjects.c_str()};
    cfg.Subjects = subj;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    if (work_queue) {
        cfg.Retention = js_WorkQueuePolicy;
        cfg.Duplicates = int64_t(120) * 1000000000;
    } else {
        cfg.Retention = js_LimitsPolicy;
        cfg.MaxAge = int64_t(3600) * 1000000000;  // results: one hour
        cfg.Duplicates = int64_t(120) * 1000000000;
    }
    natsStatus s = js_AddStream(&si, js, &cfg, nullptr, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return true;
    }
    if (js_GetStreamInfo(&si, js, name.c_str(), nullptr, &jerr) == NATS_OK) {  // made meanwhile
        jsStreamInfo_Destroy(si);
        return true;
    }
    err = "cannot create the JetStream stream " + name + ": " + nats_text(s);
    return false;
}

// Connects and makes the streams and buckets (idempotent). Blocks (at most a few seconds).
std::unique_ptr<Conn> connect(const std::string& url, const std::string& cluster, const std::string& client_name,
                              std::string& err) {
    auto c = std::make_unique<Conn>();
    c->names.c = cluster;
    c->url = url;
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    natsOptions_SetName(o, client_name.c_str());
    natsOptions_SetSendAsap(o, true);  // without it every hop costs ~1 ms (design section 9)
    natsOptions_SetTimeout(o, 2000);
    natsOptions_SetAllowReconnect(o, true);
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 250);
    natsOptions_SetDisconnectedCB(o, on_disconnected, c.get());
    natsOptions_SetReconnectedCB(o, on_reconnected, c.get());
    natsStatus s = natsConnection_Connect(&c->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        c->nc = nullptr;
        err = "cannot connect to the NATS server at " + url + ": " + nats_text(s) +
              " (start one with: nats-server -js -sd DIR -a 127.0.0.1 -p PORT)";
        return nullptr;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK) {
        err = "cannot use JetStream on " + url + ": " + nats_text(s);
        return nullptr;
    }
    const Names& n = c->names;
    if (!ensure_stream(c->js, n.tasks_stream(), "weft." + cluster + ".task.>", true, err)) {
        err += " (is JetStream enabled? start the server with -js)";
        return nullptr;
    }
    if (!ensure_stream(c->js, n.results_stream(), "weft." + cluster + ".result.>", false, err)) return nullptr;
    if (!(c->code = open_bucket(c->js, n.code_bucket(), 0, err))) return nullptr;
    if (!(c->nodes = open_bucket(c->js, n.nodes_bucket(), int64_t(5) * 1000000000, err))) return nullptr;
    return c;
}

// The live workers (keys of the NODES bucket) and their heartbeat texts.
std::vector<std::pair<std::string, std::string>> live_nodes(Conn& c) {
    std::vector<std::pair<std::string, std::string>> out;
    kvKeysList keys{};
    if (kvStore_Keys(&keys, c.nodes, nullptr) != NATS_OK) return out;
    for (int i = 0; i < keys.Count; ++i) {
        kvEntry* e = nullptr;
        if (kvStore_Get(&e, c.nodes, keys.Keys[i]) == NATS_OK) {
            out.emplace_back(keys.Keys[i], std::string(static_cast<const char*>(kvEntry_Value(e)), size_t(kvEntry_ValueLen(e))));
            kvEntry_Destroy(e);
        }
    }
    kvKeysList_Destroy(&keys);
    std::sort(out.begin(), out.end());
    return out;
}

// "key=value" of a heartbeat text.
std::string field(const std::string& hb, const std::string& key) {
    size_t p = 0;
    while (p < hb.size()) {
        size_t e = hb.find(' ', p);
        if (e == std::string::npos) e = hb.size();
        std::string kv = hb.substr(p, e - p);
        if (kv.rfind(key + "=", 0) == 0) return kv.substr(key.size() + 1);
        p = e + 1;
    }
    return "";
}

bool kv_get(kvStore* kv, const std::string& key, std::string& out) {
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, kv, key.c_str()) != NATS_OK) return false;
    out.assign(static_cast<const char*>(kvEntry_Value(e)), size_t(kvEntry_ValueLen(e)));
    kvEntry_Destroy(e);
    return true;
}

std::string header(natsMsg* m, const char* key) {
    const char* v = nullptr;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v) return "";
    return v;
}

// ===========================================================================
// Driver

struct Stats {
    std::mutex mu;
    uint64_t tasks = 0, redelivered = 0, errors = 0;
    int64_t queue_us = 0, run_us = 0;
    std::map<std::string, uint64_t> per_worker;
};

// One parallel operation's results, filled by the subscription's callback thread.
struct Job {
    std::mutex mu;
    std::vector<std::string> results;
    std::vector<bool> have;
    std::deque<size_t> arrived;
    rt::OneshotSender<void> wake;
    bool waiting = false;
};

struct Driver {
    Vm* vm = nullptr;
    std::string url, name;
    std::string id = random_hex(6);  // this driver's token in job ids and result subjects
    std::mutex mu;                   // conn, results_sub, stored
    std::unique_ptr<Conn> conn;
    natsSubscription* results_sub = nullptr;
    std::set<std::string> stored;    // KV keys already stored (sources, bundles)
    std::mutex jobs_mu;
    std::map<std::string, std::shared_ptr<Job>> jobs;
    std::atomic<uint64_t> next_job{0};
    Stats stats;
    TraceOut* trace = nullptr;  // --trace-out
    // Remote actors (this process owns some, or monitors others'): the NAMES and OWNERS
    // buckets, the actors served (name -> subscription), the heartbeat and watcher threads.
    kvStore* names_kv = nullptr;
    kvStore* owners_kv = nullptr;
    std::map<std::string, natsSubscription*> served;
    std::thread heartbeat;
    std::vector<std::thread> watchers;
    std::atomic<bool> stopping{false};
};
Driver* g_driver = nullptr;
std::string g_version = "unknown";  // this build's version (set_version), carried by every task

void on_result(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* d = static_cast<Driver*>(closure);
    std::shared_ptr<Job> jobp;
    {
        std::lock_guard<std::mutex> g(d->jobs_mu);
        auto it = d->jobs.find(header(msg, "Weft-Job"));
        if (it != d->jobs.end()) jobp = it->second;
    }
    if (!jobp) {  // a late result of a finished or cancelled job
        natsMsg_Destroy(msg);
        return;
    }
    Job* job = jobp.get();
    std::string idx = header(msg, "Weft-Index");
    size_t i = size_t(strtoull(idx.c_str(), nullptr, 10));
    {
        std::lock_guard<std::mutex> g(job->mu);
        if (!idx.empty() && i < job->have.size() && !job->have[i]) {  // the first result wins
            job->have[i] = true;
            job->results[i].assign(natsMsg_GetData(msg), size_t(natsMsg_GetDataLength(msg)));
            job->arrived.push_back(i);
            if (job->waiting) {
                job->waiting = false;
                job->wake.set_value();
            }
        }
    }
    natsMsg_Destroy(msg);
}

Conn& driver_conn() {
    Driver* d = g_driver;
    if (!d)
        cluster_error("cluster=True needs a cluster: run the program with --cluster nats://HOST:PORT (or set WEFT_CLUSTER)");
    // Every run_blocking body owns what it touches (captures by value, returns its results):
    // a cancelled caller stops waiting, but the body runs to its end on the pool.
    auto [c, err] = rt::run_blocking([d]() -> std::pair<Conn*, std::string> {
        std::string err;
        std::lock_guard<std::mutex> g(d->mu);
        if (!d->conn) {
            d->conn = connect(d->url, d->name, "weft driver " + std::to_string(getpid()), err);
            if (!d->conn) return {nullptr, err};
            // One subscription for the results of every job of this driver.
            std::string subj = "weft." + d->conn->names.c + ".result." + d->id + ".*";
            natsStatus s = natsConnection_Subscribe(&d->results_sub, d->conn->nc, subj.c_str(), on_result, d);
            if (s == NATS_OK) s = natsConnection_FlushTimeout(d->conn->nc, 2000);
            if (s != NATS_OK) {
                err = "cannot subscribe to the results on " + d->url + ": " + nats_text(s);
                d->conn.reset();
                return {nullptr, err};
            }
        }
        return {d->conn.get(), ""};
    });
    if (!c) cluster_error(err);
    return *c;
}

double env_seconds(const char* name, double dflt) {
    const char* v = getenv(name);
    if (!v || !*v) return dflt;
    char* end;
    double d = strtod(v, &end);
    return end == v || d < 0 ? dflt : d;
}

// Runs fn(*argsets[i]) for every i on the cluster's workers. Results in order; with `collect`
// a failed item's slot holds its error value and (*failed)[i] is set; without, the first error
// in arrival order is raised after the job's other tasks are told to stop.
std::vector<Value> run_remote(Interp& in, const Value& fn, const std::vector<std::vector<Value>>& argsets,
                              const std::string& what, int retries, double timeout, bool collect, const std::string& pool,
                              std::vector<bool>* failed) {
    size_t n = argsets.size();
    std::vector<Value> results(n);
    if (failed) failed->assign(n, false);
    if (n == 0) return results;
    // 1. Encode everything before sending anything: a value that cannot cross raises here.
    std::map<std::string, std::string> sources;
    Encoder table;
    std::string bundle = Encoder::bundle(fn, what, sources, &table);
    std::string bundle_sha = sha256_hex(bundle);
    // Results are decoded against the same module table: struct values come back as instances
    // of the program's own types.
    std::vector<ModuleObj*> table_modules;
    for (const ModuleObj* m : table.module_objs) table_modules.push_back(const_cast<ModuleObj*>(m));
    std::vector<std::string> bodies(n);
    for (size_t i = 0; i < n; ++i) {
        Encoder e;
        e.modules = table.modules;
        e.module_objs = table.module_objs;
        encode_caps(e, in.capabilities_raw());
        e.u64(argsets[i].size());
        for (size_t k = 0; k < argsets[i].size(); ++k)
            e.value(argsets[i][k], what + ": item " + std::to_string(i) + (argsets[i].size() > 1 ? " argument " + std::to_string(k + 1) : ""));
        if (e.module_objs.size() != table.module_objs.size())
            cluster_error(what + ": item " + std::to_string(i) +
                          " holds a function or struct of a module the mapped function does not use; it cannot be sent");
        bodies[i] = e.take();
    }
    for (auto& [sha, text] : sources)
        if (text.size() > 900 * 1024) cluster_error(what + ": a source file over 900 KiB cannot be sent in this version");
    if (bundle.size() > 900 * 1024) cluster_error(what + ": the function's globals and captures exceed 900 KiB");

    Conn& c = driver_conn();
    Driver* drv = g_driver;
    std::string job_id = drv->id + "-" + std::to_string(drv->next_job.fetch_add(1));
    auto job = std::make_shared<Job>();
    job->results.resize(n);
    job->have.assign(n, false);
    {
        std::lock_guard<std::mutex> g(drv->jobs_mu);
        drv->jobs[job_id] = job;
    }
    struct Forget {  // the job leaves the table however this call ends
        Driver* d;
        const std::string& id;
        ~Forget() {
            std::lock_guard<std::mutex> g(d->jobs_mu);
            d->jobs.erase(id);
        }
    } forget{drv, job_id};
    // 2. Store the code and publish the tasks (on the blocking pool, which owns the data).
    struct Publish {
        std::map<std::string, std::string> sources;
        std::string bundle, bundle_sha, job_id;
        std::vector<std::string> bodies;
        int retries;
        double timeout;
        std::string pool;
    };
    auto pub = std::make_shared<Publish>(
        Publish{std::move(sources), std::move(bundle), bundle_sha, job_id, std::move(bodies), retries, timeout, pool});
    Conn* cp = &c;  // lives as long as the driver
    std::string err = rt::run_blocking([pub, drv, cp]() -> std::string {
        Conn& c = *cp;
        auto& [sources, bundle, bundle_sha, job_id, bodies, retries, timeout, pool] = *pub;
        size_t n = bodies.size();
        // Content-addressed: each source and bundle is stored once (per driver, a set
        // remembers what it stored; across drivers, a lookup first).
        auto store = [&](const std::string& key, const std::string& value) -> natsStatus {
            {
                std::lock_guard<std::mutex> g(drv->mu);
                if (drv->stored.count(key)) return NATS_OK;
            }
            std::string have;
            natsStatus s = NATS_OK;
            if (!kv_get(c.code, key, have)) s = kvStore_Put(nullptr, c.code, key.c_str(), value.data(), int(value.size()));
            if (s == NATS_OK) {
                std::lock_guard<std::mutex> g(drv->mu);
                drv->stored.insert(key);
            }
            return s;
        };
        for (auto& [sha, text] : sources)
            if (natsStatus s = store("src_" + sha, text); s != NATS_OK)
                return "cannot store the program's source in the cluster: " + nats_text(s);
        if (natsStatus s = store("bundle_" + bundle_sha, bundle); s != NATS_OK)
            return "cannot store the function in the cluster: " + nats_text(s);
        natsStatus s = NATS_OK;
        std::string subj = c.names.task_subject(pool);
        std::string retries_s = std::to_string(retries);
        std::string timeout_s = timeout >= 0 ? std::to_string(timeout) : "";
        for (size_t i = 0; i < n; ++i) {
            natsMsg* m = nullptr;
            natsMsg_Create(&m, subj.c_str(), nullptr, bodies[i].data(), int(bodies[i].size()));
            std::string id = job_id + "." + std::to_string(i);
            natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
            natsMsgHeader_Set(m, "Weft-Job", job_id.c_str());
            natsMsgHeader_Set(m, "Weft-Index", std::to_string(i).c_str());
            natsMsgHeader_Set(m, "Weft-Bundle", bundle_sha.c_str());
            natsMsgHeader_Set(m, "Weft-Retries", retries_s.c_str());
            natsMsgHeader_Set(m, "Weft-Sent", std::to_string(now_us()).c_str());
            natsMsgHeader_Set(m, "Weft-Version", g_version.c_str());
            if (!timeout_s.empty()) natsMsgHeader_Set(m, "Weft-Timeout", timeout_s.c_str());
            s = js_PublishMsgAsync(c.js, &m, nullptr);
            if (m) natsMsg_Destroy(m);
            if (s != NATS_OK) return "cannot publish the tasks: " + nats_text(s);
        }
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 10000;
        s = js_PublishAsyncComplete(c.js, &po);
        if (s != NATS_OK) return "the NATS server did not store the tasks: " + nats_text(s);
        return "";
    });
    auto cancel_job = [&] {
        natsConnection_PublishString(c.nc, c.names.cancel_subject(job_id).c_str(), "cancel");
        natsConnection_FlushTimeout(c.nc, 500);
    };
    // After cancel_job: waits until every item has answered (a result, an error, or Cancelled:
    // a worker answers Cancelled for a running task it stopped and for a queued one it drops),
    // for at most WEFT_CLUSTER_CANCEL_WAIT seconds (default 15, the workers' default AckWait),
    // and not at all when the server is gone or no worker is alive. So a cancelled parallel_map
    // returns once its remote tasks have stopped. The caller is being cancelled or is raising,
    // so this polls on the thread (a runtime wait would be cancelled at once).
    auto wait_stopped = [&] {
        double bound = env_seconds("WEFT_CLUSTER_CANCEL_WAIT", 15);
        auto all_answered = [&] {
            std::lock_guard<std::mutex> g(job->mu);
            return size_t(std::count(job->have.begin(), job->have.end(), true)) == n;
        };
        if (all_answered() || natsConnection_Status(c.nc) != NATS_CONN_STATUS_CONNECTED || live_nodes(c).empty())
            return;
        Clock::time_point t0 = Clock::now();
        while (since(t0) < bound && !all_answered() && natsConnection_Status(c.nc) == NATS_CONN_STATUS_CONNECTED)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    };
    if (!err.empty()) {
        cluster_error(what + ": " + err);
    }
    // 3. Collect the results.
    double lost_after = env_seconds("WEFT_CLUSTER_LOST_AFTER", 3);
    double wait_workers = env_seconds("WEFT_CLUSTER_WAIT_WORKERS", 60);
    size_t done = 0;
    Clock::time_point last_progress = Clock::now(), last_node_check = Clock::now();
    Clock::time_point no_worker_since{};
    bool no_worker = false;
    Value first_error;
    try {
        while (done < n) {
            std::deque<size_t> ready;
            {
                std::lock_guard<std::mutex> g(job->mu);
                ready.swap(job->arrived);
            }
            for (size_t i : ready) {
                std::string bytes;
                {
                    std::lock_guard<std::mutex> g(job->mu);
                    bytes.swap(job->results[i]);
                }
                Decoder d(&in, bytes, &table_modules);
                d.u64();  // index (also in the header)
                bool ok = d.u64() == 0;
                Value v = d.value();
                std::string worker = d.str();
                uint64_t deliveries = d.u64();
                int64_t queue_us = d.i64(), run_us = d.i64();
                {
                    std::lock_guard<std::mutex> g(g_driver->stats.mu);
                    auto& st = g_driver->stats;
                    ++st.tasks;
                    if (deliveries > 1) ++st.redelivered;
                    if (!ok) ++st.errors;
                    st.queue_us += queue_us;
                    st.run_us += run_us;
                    ++st.per_worker[worker];
                }
                if (drv->trace) {
                    // The remote run, drawn on the worker's track, ending when its result came.
                    int64_t end = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
                    char args[160];
                    snprintf(args, sizeof args, "\"job\":\"%s\",\"index\":%zu,\"queue_ms\":%.3f,\"run_ms\":%.3f,\"deliveries\":%llu",
                             job_id.c_str(), i, double(queue_us) / 1000.0, double(run_us) / 1000.0,
                             (unsigned long long)deliveries);
                    drv->trace->add_remote("worker " + worker, what + " #" + std::to_string(i), end - run_us * 1000,
                                           run_us * 1000, args);
                }
                ++done;
                last_progress = Clock::now();
                if (ok) {
                    results[i] = std::move(v);
                    continue;
                }
                if (v.is(ObjType::Struct) && v.as<StructObj>()->error)
                    v.as<StructObj>()->error->trace.push_back("on cluster worker " + worker + " (delivery " +
                                                              std::to_string(deliveries) + ")");
                if (failed) (*failed)[i] = true;
                if (collect) {
                    results[i] = std::move(v);
                } else if (first_error.is_none()) {
                    first_error = std::move(v);
                }
            }
            if (!first_error.is_none()) break;
            if (done == n) break;
            // The caller's scope cancelled (a timeout, an error elsewhere): the catch below tells
            // the remote tasks to stop. (The bounded wait below swallows its own deadline only.)
            rt::check_cancelled();
            auto [tx, rx] = rt::oneshot<void>();
            {
                std::lock_guard<std::mutex> g(job->mu);
                if (job->arrived.empty()) {
                    job->wake = std::move(tx);
                    job->waiting = true;
                }
            }
            if (!rx.ready()) {
                rt::move_on_after(0.5, [&](rt::CancelScope&) {
                    try {
                        rx.wait();
                    } catch (const rt::BrokenOneshot&) {
                    }
                });
            }
            {
                std::lock_guard<std::mutex> g(job->mu);
                job->waiting = false;
            }
            // The server gone: a clear error, never a hang.
            int64_t down = c.disconnected_since_us.load();
            if (natsConnection_Status(c.nc) != NATS_CONN_STATUS_CONNECTED && down &&
                double(now_us() - down) / 1e6 > lost_after)
                cluster_error(what + ": lost the connection to the NATS server at " + c.url + " (down for more than " +
                              float_repr(lost_after) + " s; " + std::to_string(n - done) + " of " + std::to_string(n) +
                              " results missing)");
            // No worker at all for too long: an error rather than waiting forever.
            if (since(last_progress) > 2 && since(last_node_check) > 2) {
                last_node_check = Clock::now();
                bool any = rt::run_blocking([cp] { return !live_nodes(*cp).empty(); });
                if (any) {
                    no_worker = false;
                } else if (!no_worker) {
                    no_worker = true;
                    no_worker_since = Clock::now();
                } else if (since(no_worker_since) > wait_workers) {
                    cluster_error(what + ": no live worker in cluster '" + c.names.c + "' for " +
                                  float_repr(wait_workers) + " s (start one with: weft worker --cluster " + c.url + ")");
                }
            }
        }
    } catch (...) {
        // Cancelled by the caller, or a ClusterError: tell the remote tasks to stop, and wait
        // (boundedly) until they have.
        cancel_job();
        wait_stopped();
        throw;
    }
    if (!first_error.is_none()) {
        cancel_job();
        wait_stopped();
        throw WeftError(first_error);
    }
    return results;
}

// pool= of a cluster call: the workers started with --pool NAME (default "default").
std::string pool_arg(const CallArgs& a, const std::string& what) {
    const Value* p = a.find_kw("pool");
    if (!p || p->is_none()) return "default";
    if (!p->is(ObjType::Str) || !valid_token(p->as<StrObj>()->data))
        throw WeftError(ErrorKind::ValueError, what + ": pool must be a name of letters, digits, - and _");
    return p->as<StrObj>()->data;
}

int retries_arg(const CallArgs& a, const std::string& what) {
    const Value* r = a.find_kw("retries");
    if (!r || r->is_none()) return 3;
    if (!r->is_int() || r->as_int() < 0 || r->as_int() > 8)
        throw WeftError(ErrorKind::ValueError, what + ": retries must be an int from 0 to 8");
    return int(r->as_int());
}

std::string callable_name(const Value& fn) {
    if (fn.is(ObjType::Function)) return fn.as<FunctionObj>()->proto->chunk->name;
    if (fn.is(ObjType::Native)) return fn.as<NativeObj>()->name;
    return type_name(fn);
}

std::vector<Value> parallel_hook(CallContext& cx, const Value& fn, const std::vector<Value>& items, const CallArgs& a,
                                 const char* op, bool collect, double timeout, std::vector<bool>* failed) {
    Interp& in = static_cast<Interp&>(cx);
    std::string what = std::string(op) + "(" + callable_name(fn) + ", ...)";
    int retries = retries_arg(a, std::string(op) + "()");
    std::vector<std::vector<Value>> argsets;
    argsets.reserve(items.size());
    for (auto& x : items) argsets.push_back({x});
    return run_remote(in, fn, argsets, what, retries, timeout, collect, pool_arg(a, std::string(op) + "()"), failed);
}

// ---- the `cluster` module

std::string g_worker_name;  // set in a worker process: cluster.worker_id()

Value cl_submit(CallContext& cx, const CallArgs& a) {
    if (a.pos.empty()) throw WeftError(ErrorKind::TypeError, "cluster.submit(f, *args, retries=3, timeout=None)");
    Interp& in = static_cast<Interp&>(cx);
    std::string what = "cluster.submit(" + callable_name(a.pos[0]) + ", ...)";
    int retries = retries_arg(a, "cluster.submit()");
    double timeout = -1;
    if (const Value* t = a.find_kw("timeout"); t && !t->is_none()) {
        if (!t->is_number() || t->as_number() < 0) throw WeftError(ErrorKind::ValueError, "cluster.submit(): timeout must be a number of seconds");
        timeout = t->as_number();
    }
    std::vector<std::vector<Value>> argsets{std::vector<Value>(a.pos.begin() + 1, a.pos.end())};
    return run_remote(in, a.pos[0], argsets, what, retries, timeout, false, pool_arg(a, "cluster.submit()"), nullptr)[0];
}

Value cl_nodes(CallContext&, const CallArgs& a) {
    if (!a.pos.empty()) throw WeftError(ErrorKind::TypeError, "cluster.nodes() takes no arguments");
    Conn& c = driver_conn();
    Conn* cp = &c;
    auto nodes = rt::run_blocking([cp] { return live_nodes(*cp); });
    std::vector<Value> out;
    for (auto& n : nodes) out.push_back(make_str(n.first));
    return make_list(std::move(out));
}

Value cl_worker_id(CallContext&, const CallArgs& a) {
    if (!a.pos.empty()) throw WeftError(ErrorKind::TypeError, "cluster.worker_id() takes no arguments");
    if (g_worker_name.empty()) return Value();
    return make_str(g_worker_name);
}

void init_cluster_module(ModuleObj& m) {
    auto def = [&](const char* name, NativeFn f, const char* kwargs, bool blocking) {
        auto* n = new NativeObj(m.name + "." + name, f);
        n->kwargs = kwargs;
        n->blocking = blocking;  // deferred like a Weft call: `p = cluster.submit(f, x)` is a promise
        m.define(name, Value::adopt(n));
    };
    def("submit", cl_submit, "retries timeout pool", true);
    def("nodes", cl_nodes, nullptr, true);
    def("worker_id", cl_worker_id, nullptr, false);
}

// ===========================================================================
// Worker

std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop.store(true); }

struct Running {
    natsMsg* msg = nullptr;
    std::string job;
    rt::TaskRef task;  // the root task running it (cancelled when its job is)
    bool cancel_requested = false;
    Clock::time_point last_progress;
};

struct Finished {
    uint64_t id;
    std::string subject, msg_id, index, body;
};

struct Worker {
    std::unique_ptr<Conn> conn;
    Vm* vm = nullptr;
    std::shared_ptr<const CapabilitySet> ceiling;
    std::string name, pool;
    int slots = 1;
    int prefetch = 1;  // tasks held beyond the slots, so that the next one is here when one ends
    double ack_wait = 15;
    bool verbose = false;
    std::mutex mu;
    std::condition_variable cv;
    std::map<uint64_t, Running> running;
    std::deque<Finished> finished;
    std::set<std::string> cancelled_jobs;
    uint64_t next_id = 0, done_count = 0;
    std::mutex cache_mu;
    // A loaded bundle: its function and module table (the order the driver numbered them in).
    struct Bundle {
        Value fn;
        std::vector<ModuleObj*> modules;
    };
    std::map<std::string, Bundle> bundles;  // never erased: references stay valid

    void log(const std::string& s) {
        if (!verbose) return;
        std::string line = "[" + name + "] " + s + "\n";
        fwrite(line.data(), 1, line.size(), stderr);
        fflush(stderr);
    }
};

const Worker::Bundle& worker_bundle(Worker& w, Interp& in, const std::string& sha) {
    {
        std::lock_guard<std::mutex> g(w.cache_mu);
        auto it = w.bundles.find(sha);
        if (it != w.bundles.end()) return it->second;
    }
    kvStore* code = w.conn->code;
    auto fetch = [code](std::string key) {
        return rt::run_blocking([code, key]() -> std::pair<bool, std::string> {
            std::string v;
            bool ok = kv_get(code, key, v);
            return {ok, v};
        });
    };
    auto [found, bytes] = fetch("bundle_" + sha);
    if (!found) cluster_error("the function of this task (bundle " + sha.substr(0, 12) + ") is not in the cluster's code store");
    Worker::Bundle b;
    b.fn = load_bundle(
        in, bytes,
        [&](const std::string& src_sha) {
            auto [ok, text] = fetch("src_" + src_sha);
            if (!ok) cluster_error("a source file of this task (" + src_sha.substr(0, 12) + ") is not in the cluster's code store");
            return text;
        },
        &b.modules);
    std::lock_guard<std::mutex> g(w.cache_mu);
    return w.bundles.emplace(sha, std::move(b)).first->second;  // the first load wins
}

// A result message body (see run_remote's reader): the value, or the error value `v`, or (v
// null) an error of kind `err_kind`. A result that cannot cross becomes a ClusterError.
std::string result_body(uint64_t index, bool ok, const Value* v, const std::string& err_kind, const std::string& err_msg,
                        const std::string& worker, uint64_t deliveries, int64_t queue_us, int64_t run_us,
                        const std::vector<ModuleObj*>* modules = nullptr) {
    Encoder e;
    // The bundle's module table: struct values of its modules cross back to the driver.
    if (modules) e.module_objs.assign(modules->begin(), modules->end());
    e.u64(index);
    e.u64(ok ? 0 : 1);
    bool sent = false;
    if (v) {
        try {
            e.value(*v, ok ? "the result" : "the error");
            sent = true;
        } catch (const WeftError& x) {
            e = Encoder();
            e.u64(index);
            e.u64(1);
            encode_error_parts(e, "ClusterError", x.message);
            sent = true;
        }
    }
    if (!sent) encode_error_parts(e, err_kind, err_msg);
    e.str(worker);
    e.u64(deliveries);
    e.i64(queue_us);
    e.i64(run_us);
    return e.take();
}

// Publishes a batch of results (asynchronously, then waits for the stream's acks), then acks
// their tasks: a crash in between re-runs a task, and its duplicate result is dropped
// (Nats-Msg-Id). Results the server did not store are nak'ed: their tasks run again.
void publish_finished(Worker& w, std::deque<Finished>& batch) {
    Conn& c = *w.conn;
    natsStatus s = NATS_OK;
    for (auto& f : batch) {
        natsMsg* m = nullptr;
        natsMsg_Create(&m, f.subject.c_str(), nullptr, f.body.data(), int(f.body.size()));
        natsMsgHeader_Set(m, "Nats-Msg-Id", f.msg_id.c_str());
        natsMsgHeader_Set(m, "Weft-Job", f.msg_id.substr(0, f.msg_id.rfind('.')).c_str());
        natsMsgHeader_Set(m, "Weft-Index", f.index.c_str());
        natsStatus ps = js_PublishMsgAsync(c.js, &m, nullptr);
        if (m) natsMsg_Destroy(m);
        if (ps != NATS_OK) s = ps;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;
    natsStatus cs = js_PublishAsyncComplete(c.js, &po);
    if (s == NATS_OK) s = cs;
    std::vector<natsMsg*> tasks;
    {
        std::lock_guard<std::mutex> g(w.mu);
        for (auto& f : batch) {
            auto it = w.running.find(f.id);
            if (it != w.running.end()) {
                tasks.push_back(it->second.msg);
                w.running.erase(it);
            }
            ++w.done_count;
        }
    }
    for (natsMsg* task : tasks) {
        if (s == NATS_OK) natsMsg_Ack(task, nullptr);
        else natsMsg_Nak(task, nullptr);
        natsMsg_Destroy(task);
    }
    w.cv.notify_all();
}

// The result thread: publishes finished tasks' results and acks them; keeps long tasks alive
// with progress acks every AckWait / 3.
void result_loop(Worker& w, const std::atomic<bool>& quit) {
    while (!quit.load()) {
        std::deque<Finished> batch;
        std::vector<natsMsg*> progress;
        {
            std::unique_lock<std::mutex> lk(w.mu);
            w.cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return !w.finished.empty() || quit.load(); });
            batch.swap(w.finished);
            for (auto& [id, r] : w.running)
                if (since(r.last_progress) > w.ack_wait / 3) {
                    r.last_progress = Clock::now();
                    progress.push_back(r.msg);
                }
            for (auto* m : progress) natsMsg_InProgress(m, nullptr);  // under mu: the message stays alive
        }
        if (!batch.empty()) publish_finished(w, batch);
    }
}

// A task answered without running it (its job was cancelled, another build sent it, it is a
// poison task): the answer is published and the message acked like a finished task's.
void answer_without_running(Worker& w, uint64_t id, natsMsg* msg, const std::string& job, Finished f) {
    {
        std::lock_guard<std::mutex> g(w.mu);
        w.running[id] = Running{msg, job, {}, false, Clock::now()};
        w.finished.push_back(std::move(f));
    }
    w.cv.notify_all();
}

void start_task(Worker& w, natsMsg* msg) {
    Conn& c = *w.conn;
    std::string job = header(msg, "Weft-Job"), index = header(msg, "Weft-Index"), bundle = header(msg, "Weft-Bundle");
    int retries = atoi(header(msg, "Weft-Retries").c_str());
    std::string timeout_s = header(msg, "Weft-Timeout");
    int64_t sent = strtoll(header(msg, "Weft-Sent").c_str(), nullptr, 10);
    int64_t queue_us = sent ? now_us() - sent : 0;
    uint64_t deliveries = 1;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        deliveries = meta->NumDelivered;
        jsMsgMetaData_Destroy(meta);
    }
    std::string result_subject = c.names.result_subject(job);
    std::string msg_id = job + "." + index;
    uint64_t idx = strtoull(index.c_str(), nullptr, 10);
    bool cancelled;
    uint64_t id;
    {
        std::lock_guard<std::mutex> g(w.mu);
        cancelled = w.cancelled_jobs.count(job) > 0;
        id = w.next_id++;
    }
    if (job.empty() || bundle.empty()) {
        natsMsg_Term(msg, nullptr);
        natsMsg_Destroy(msg);
        return;
    }
    if (cancelled) {  // its job was cancelled while it waited in the queue
        // Answered Cancelled (the driver waits for every item of a cancelled job to answer),
        // then acked like any finished task.
        w.log("dropped task " + msg_id + " (job cancelled)");
        Finished f{id, result_subject, msg_id, index,
                   result_body(idx, false, nullptr, "Cancelled", "the job was cancelled", w.name, deliveries, queue_us, 0)};
        answer_without_running(w, id, msg, job, std::move(f));
        return;
    }
    std::string version = header(msg, "Weft-Version");
    if (version != g_version) {
        // Another build: its function places may not exist here. An error result, not a retry.
        w.log("refused task " + msg_id + " of weft " + version);
        Finished f{id, result_subject, msg_id, index,
                   result_body(idx, false, nullptr, "ClusterError",
                               "this task was sent by weft " + version + ", but worker '" + w.name + "' runs weft " +
                                   g_version + ": start workers of the program's version",
                               w.name, deliveries, queue_us, 0)};
        answer_without_running(w, id, msg, job, std::move(f));
        return;
    }
    if (deliveries > uint64_t(retries) + 1) {
        // A poison task: every worker that ran it died. Answer WorkerLost instead of running it.
        w.log("task " + msg_id + " delivered " + std::to_string(deliveries) + " times: WorkerLost");
        Finished f{id, result_subject, msg_id, index,
                   result_body(idx, false, nullptr, "WorkerLost",
                               "the worker running this task was lost " + std::to_string(deliveries - 1) +
                                   " times (retries=" + std::to_string(retries) + ")",
                               w.name, deliveries, queue_us, 0)};
        answer_without_running(w, id, msg, job, std::move(f));
        return;
    }
    // The caller's capabilities, intersected with this worker's.
    std::string payload(natsMsg_GetData(msg), size_t(natsMsg_GetDataLength(msg)));
    std::shared_ptr<const CapabilitySet> caps;
    size_t args_at = 0;
    try {
        Decoder d(nullptr, payload);
        auto caller = decode_caps(d);
        caps = intersect_caps(*w.ceiling, *caller);
        args_at = payload.size() - d.rest().size();
    } catch (const WeftError&) {
        natsMsg_Term(msg, nullptr);
        natsMsg_Destroy(msg);
        return;
    }
    {
        std::lock_guard<std::mutex> g(w.mu);
        w.running[id] = Running{msg, job, {}, false, Clock::now()};
    }
    w.log("running task " + msg_id + " (delivery " + std::to_string(deliveries) + ")");
    int64_t deadline = INT64_MAX;
    double timeout = timeout_s.empty() ? -1 : atof(timeout_s.c_str());
    if (timeout >= 0)
        deadline = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count() +
                   int64_t(timeout * 1e9);
    auto started = std::make_shared<Clock::time_point>(Clock::now());
    auto mods = std::make_shared<std::vector<ModuleObj*>>();  // the bundle's modules, once loaded
    Worker* wp = &w;
    rt::TaskRef task = w.vm->start_root(
        [wp, bundle, payload = std::move(payload), args_at, mods](Interp& in) -> Value {
            const Worker::Bundle& b = worker_bundle(*wp, in, bundle);
            *mods = b.modules;
            Value fn = b.fn;
            Decoder d(&in, std::string_view(payload).substr(args_at), &b.modules);
            uint64_t n = d.u64();
            std::vector<Value> args;
            for (uint64_t i = 0; i < n; ++i) args.push_back(d.value());
            return in.call(fn, args);
        },
        caps, deadline, nullptr,
        "task " + msg_id,
        [wp, id, idx, index, msg_id, result_subject, deliveries, queue_us, started, timeout, mods](Vm::RootResult& r) {
            int64_t run_us = int64_t(since(*started) * 1e6);
            bool cancelled_by_job;
            {
                std::lock_guard<std::mutex> g(wp->mu);
                auto it = wp->running.find(id);
                cancelled_by_job = it != wp->running.end() && it->second.cancel_requested;
            }
            std::string body;
            if (r.ok) {
                body = result_body(idx, true, &r.value, "", "", wp->name, deliveries, queue_us, run_us, mods.get());
            } else if (r.scope_cancelled && !cancelled_by_job && timeout >= 0) {
                body = result_body(idx, false, nullptr, "TimeoutError",
                                   "item timed out after " + float_repr(timeout) + " s", wp->name, deliveries, queue_us, run_us);
            } else if (r.scope_cancelled || cancelled_by_job) {
                body = result_body(idx, false, nullptr, "Cancelled", "the job was cancelled", wp->name, deliveries,
                                   queue_us, run_us);
            } else if (r.compile_error || r.value.is_none()) {
                body = result_body(idx, false, nullptr, "ClusterError", "the task could not be compiled on this worker",
                                   wp->name, deliveries, queue_us, run_us);
            } else {
                body = result_body(idx, false, &r.value, "", "", wp->name, deliveries, queue_us, run_us);
            }
            wp->log("finished task " + msg_id + (r.ok ? "" : cancelled_by_job ? " (cancelled)" : " (error)"));
            {
                std::lock_guard<std::mutex> g(wp->mu);
                wp->finished.push_back(Finished{id, result_subject, msg_id, index, std::move(body)});
            }
            wp->cv.notify_all();
        });
    // Keep the task to cancel it if its job is; a cancel that came before this point applies now.
    std::lock_guard<std::mutex> g(w.mu);
    auto it = w.running.find(id);
    if (it != w.running.end()) {
        it->second.task = task;
        if (it->second.cancel_requested) task->cancel();
    }
}

void on_cancel_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* w = static_cast<Worker*>(closure);
    std::string subject = natsMsg_GetSubject(msg);
    std::string job = subject.substr(subject.rfind('.') + 1);
    natsMsg_Destroy(msg);
    int stopped = 0;
    {
        std::lock_guard<std::mutex> g(w->mu);
        w->cancelled_jobs.insert(job);
        for (auto& [id, r] : w->running)
            if (r.job == job) {
                r.cancel_requested = true;
                // The task itself, not its cancel scope: a scope's address on a parked task's
                // stack was not safe to use from here (a null node in Release builds).
                if (r.task) r.task->cancel();
                ++stopped;
            }
    }
    w->log("job " + job + " cancelled by its driver (" + std::to_string(stopped) + " running task" +
           (stopped == 1 ? "" : "s") + " cancelled)");

}

// A positive duration ("15s", "500ms", "2m"; vm/limits.h).
bool parse_seconds(const std::string& s, double& out) { return limits::parse_duration(s, out) && out > 0; }

const char* kWorkerHelp = R"(Usage: weft worker --cluster nats://HOST:PORT [options]

Serves a Weft cluster: pulls tasks (parallel_map(..., cluster=True), cluster.submit) from the
cluster's JetStream work queue, runs them and sends their results back. docs/cluster.md.

Options:
  --cluster URL         the NATS server (also WEFT_CLUSTER)
  --cluster-name NAME   the cluster (default weft): several clusters may share one server
  --name NAME           this worker's name (default HOST-PID)
  --workers N           worker threads running tasks (default 1)
  --prefetch K          tasks taken ahead of the free threads (default N): they start at once
                        and share the threads, so the queue's round trip is hidden; 0 for
                        strict balance of long tasks between workers
  --pool NAME           the pool served (default "default")
  --ack-wait D          a task whose worker is silent this long runs elsewhere (default 15s)
  --verbose             a line on stderr per task started and finished
  --allow-net[=HOSTS] --allow-read[=PATHS] --allow-write[=PATHS] --allow-run[=PROGRAMS]
  --allow-env[=NAMES] -A/--allow-all
                        the most this worker grants a task (default nothing); a task runs
                        with these intersected with its caller's capabilities
SIGTERM or SIGINT: stop pulling, finish the running tasks, exit 0.
)";


// ===========================================================================
// Remote actors (docs/cluster.md, "Remote actors"): X.spawn(name=..., cluster=True) claims the
// name in the KV bucket WEFT_C_NAMES (create-if-absent) and serves asks on the core subject
// weft.C.actor.<name> (request-reply: at-most-once, as local asks); whereis(name) in another
// process returns a RemoteRef whose asks are NATS requests; the owning process re-puts a
// heartbeat every second in WEFT_C_OWNERS (entries expire after 3 s), and monitor(remote ref)
// delivers {"down": ref, "reason": "noconnection"} when that heartbeat is gone.

constexpr int64_t kOwnerTtlNs = int64_t(3) * 1000000000;

// The NAMES and OWNERS buckets of the driver (opened on first use). Blocks: call on the pool.
bool actor_buckets(Driver& d, Conn& c, std::string& err) {
    std::lock_guard<std::mutex> g(d.mu);
    if (!d.names_kv && !(d.names_kv = open_bucket(c.js, "WEFT_" + c.names.c + "_NAMES", 0, err))) return false;
    if (!d.owners_kv && !(d.owners_kv = open_bucket(c.js, "WEFT_" + c.names.c + "_OWNERS", kOwnerTtlNs, err))) return false;
    return true;
}

bool owner_alive(Driver& d, const std::string& owner) {
    std::string v;
    return kv_get(d.owners_kv, owner, v);
}

// A reference to an actor of another process.
struct RemoteRefObj : OpaqueObj {
    std::string name, subject, owner;
    explicit RemoteRefObj(const OpaqueClass* c) : OpaqueObj(c) {}
};
extern const OpaqueClass kRemoteRefClass;

RemoteRefObj* remote_ref(const Value& v) {
    if (!v.is(ObjType::Opaque) || v.as<OpaqueObj>()->cls != &kRemoteRefClass) return nullptr;
    return static_cast<RemoteRefObj*>(v.as<OpaqueObj>());
}

// Sends handler `method` with `args` to the remote actor; waits for the reply unless `tell`.
Value remote_send(Interp& in, RemoteRefObj* r, const std::string& method, std::span<const Value> args, double timeout,
                  bool tell) {
    Encoder e;
    e.str(method);
    e.u64(args.size());
    for (size_t i = 0; i < args.size(); ++i)
        e.value(args[i], "actor '" + r->name + "'." + method + "(): argument " + std::to_string(i + 1));
    std::string body = e.take();
    Conn& c = driver_conn();
    if (tell) {
        natsConnection_Publish(c.nc, r->subject.c_str(), body.data(), int(body.size()));
        return Value();
    }
    natsConnection* nc = c.nc;
    std::string subject = r->subject;
    auto [s, reply] = rt::run_blocking([nc, subject, body, timeout]() -> std::pair<natsStatus, natsMsg*> {
        natsMsg* m = nullptr;
        natsStatus st = natsConnection_Request(&m, nc, subject.c_str(), body.data(), int(body.size()), int64_t(timeout * 1000));
        return {st, m};
    });
    if (s == NATS_NO_RESPONDERS)
        throw WeftError(ErrorKind::ActorStopped, "the actor '" + r->name + "' is not running (no process answers for it)");
    if (s == NATS_TIMEOUT)
        throw WeftError(ErrorKind::TimeoutError, "ask of '" + method + "' to actor '" + r->name + "' timed out after " +
                                                     float_repr(timeout) + " s");
    if (s != NATS_OK) cluster_error("ask to actor '" + r->name + "': " + nats_text(s));
    std::string data(natsMsg_GetData(reply), size_t(natsMsg_GetDataLength(reply)));
    natsMsg_Destroy(reply);
    Decoder d(&in, data);
    bool ok = d.u64() == 0;
    Value v = d.value();
    if (!ok) throw WeftError(v);
    return v;
}

double timeout_of(const CallArgs& a, double dflt) {
    const Value* t = a.find_kw("timeout");
    if (!t || t->is_none()) return dflt;
    if (!t->is_number() || t->as_number() < 0) throw WeftError(ErrorKind::ValueError, "timeout must be a number of seconds");
    return t->as_number();
}

// ref.<handler>(*args): self is (ref, handler name).
Value remote_handler_call(CallContext& cx, Value& self, const CallArgs& a) {
    auto* t = self.as<TupleObj>();
    return remote_send(static_cast<Interp&>(cx), remote_ref(t->items[0]), t->items[1].as<StrObj>()->data, a.pos,
                       timeout_of(a, 30), false);
}
Value remote_ask(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.empty() || !a.pos[0].is(ObjType::Str)) throw WeftError(ErrorKind::TypeError, "ask(name, *args, timeout=None)");
    return remote_send(static_cast<Interp&>(cx), remote_ref(self), a.pos[0].as<StrObj>()->data, a.pos.subspan(1),
                       timeout_of(a, 30), false);
}
Value remote_tell(CallContext& cx, Value& self, const CallArgs& a) {
    if (a.pos.empty() || !a.pos[0].is(ObjType::Str)) throw WeftError(ErrorKind::TypeError, "tell(name, *args)");
    return remote_send(static_cast<Interp&>(cx), remote_ref(self), a.pos[0].as<StrObj>()->data, a.pos.subspan(1), 0, true);
}

bool remote_ref_attr(const OpaqueObj* self, std::string_view name, Value& out) {
    auto* r = static_cast<const RemoteRefObj*>(self);
    Value me = Value::borrow(const_cast<OpaqueObj*>(self));
    if (name == "name") {
        out = make_str(r->name);
        return true;
    }
    auto* n = new NativeObj("ActorRef." + std::string(name), nullptr);
    n->kwargs = kAnyKeywords;
    n->blocking = true;  // an ask is deferred like any call: `x = ref.m()` does not wait
    if (name == "ask") {
        n->method = remote_ask;
        n->self = me;
    } else if (name == "tell") {
        n->method = remote_tell;
        n->self = me;
    } else {
        n->method = remote_handler_call;
        n->self = make_tuple({me, make_str(std::string(name))});
    }
    out = Value::adopt(n);
    share(out);
    return true;
}

std::string remote_ref_repr(const OpaqueObj* self) {
    return "<ActorRef '" + static_cast<const RemoteRefObj*>(self)->name + "' (remote)>";
}

const OpaqueClass kRemoteRefClass{"ActorRef", nullptr, remote_ref_attr, remote_ref_repr};

struct Served {
    Driver* d;
    Value ref;
    std::string name;
};

// An ask or tell for an actor this process owns (on a nats.c thread): run as a root task of
// the program's Vm, reply from its end.
void on_actor_request(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* sv = static_cast<Served*>(closure);
    std::string data(natsMsg_GetData(msg), size_t(natsMsg_GetDataLength(msg)));
    std::string reply = natsMsg_GetReply(msg) ? natsMsg_GetReply(msg) : "";
    natsMsg_Destroy(msg);
    Vm* vm = sv->d->vm;
    if (!vm || sv->d->stopping.load()) return;
    Value ref = sv->ref;
    vm->start_root(
        [ref, data](Interp& in) -> Value {
            Decoder d(&in, data);
            std::string method = d.str();
            uint64_t n = d.u64();
            std::vector<Value> args{make_str(method)};
            for (uint64_t i = 0; i < n; ++i) args.push_back(d.value());
            Value ask = in.attribute(ref, intern("ask"));
            return in.call(ask, args);
        },
        nullptr, INT64_MAX, nullptr, "remote ask",
        [nc, reply](Vm::RootResult& r) {
            if (reply.empty()) return;  // a tell
            Encoder e;
            e.u64(r.ok ? 0 : 1);
            try {
                if (r.ok || r.value.is(ObjType::Struct)) e.value(r.value, r.ok ? "the reply" : "the error");
                else encode_error_parts(e, "Error", "the ask failed");
            } catch (const WeftError& x) {
                e = Encoder();
                e.u64(1);
                encode_error_parts(e, "ClusterError", x.message);
            }
            std::string body = e.take();
            natsConnection_Publish(nc, reply.c_str(), body.data(), int(body.size()));
        });
}

void cluster_spawn_hook(CallContext&, const std::string& name, const Value& ref) {
    Driver* d = g_driver;
    if (!d) cluster_error("spawn(cluster=True) needs a cluster: run the program with --cluster nats://HOST:PORT");
    if (!valid_token(name)) throw WeftError(ErrorKind::ValueError, "a cluster actor's name may hold letters, digits, - and _ only, not '" + name + "'");
    Conn* cp = &driver_conn();
    std::string err = rt::run_blocking([d, cp, name, ref]() -> std::string {
        Conn& c = *cp;
        std::string e;
        if (!actor_buckets(*d, c, e)) return e;
        // This process's heartbeat first, so that the claim below is never seen without one.
        kvStore_PutString(nullptr, d->owners_kv, d->id.c_str(), "up");
        {
            std::lock_guard<std::mutex> g(d->mu);
            if (!d->heartbeat.joinable())
                d->heartbeat = std::thread([d] {
                    while (!d->stopping.load()) {
                        kvStore_PutString(nullptr, d->owners_kv, d->id.c_str(), "up");
                        for (int i = 0; i < 10 && !d->stopping.load(); ++i)
                            std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    }
                });
        }
        std::string subject = "weft." + c.names.c + ".actor." + name;
        std::string value = "owner=" + d->id + " subject=" + subject;
        if (kvStore_Create(nullptr, d->names_kv, name.c_str(), value.data(), int(value.size())) != NATS_OK) {
            std::string old;
            if (kv_get(d->names_kv, name, old) && owner_alive(*d, field(old, "owner")) && field(old, "owner") != d->id)
                return "an actor named '" + name + "' is already registered in cluster '" + c.names.c + "' by another process";
            // Its owner is gone (no heartbeat): take the name over.
            if (kvStore_Put(nullptr, d->names_kv, name.c_str(), value.data(), int(value.size())) != NATS_OK)
                return "cannot register the actor name '" + name + "'";
        }
        natsSubscription* sub = nullptr;
        auto* sv = new Served{d, ref, name};  // lives while the process serves the name
        if (natsConnection_Subscribe(&sub, c.nc, subject.c_str(), on_actor_request, sv) != NATS_OK) {
            delete sv;
            return "cannot serve the actor '" + name + "'";
        }
        natsConnection_FlushTimeout(c.nc, 2000);
        std::lock_guard<std::mutex> g(d->mu);
        d->served[name] = sub;
        return "";
    });
    if (!err.empty()) cluster_error(err);
}

Value cluster_whereis_hook(CallContext&, const std::string& name) {
    Driver* d = g_driver;
    if (!d || !valid_token(name)) return Value();
    Conn* cp = &driver_conn();
    auto [found, entry] = rt::run_blocking([d, cp, name]() -> std::pair<bool, std::string> {
        std::string e, v;
        bool ok = actor_buckets(*d, *cp, e) && kv_get(d->names_kv, name, v) && owner_alive(*d, field(v, "owner"));
        return {ok, v};
    });
    if (!found) return Value();
    auto* r = new RemoteRefObj(&kRemoteRefClass);
    r->name = name;
    r->subject = field(entry, "subject");
    r->owner = field(entry, "owner");
    Value v = Value::adopt(r);
    share(v);
    return v;
}

bool cluster_monitor_hook(CallContext&, const Value& refv, Value& out) {
    RemoteRefObj* r = remote_ref(refv);
    if (!r) return false;
    Driver* d = g_driver;
    Conn* cp = &driver_conn();
    auto [ok, err] = rt::run_blocking([d, cp]() -> std::pair<bool, std::string> {
        std::string e;
        bool good = actor_buckets(*d, *cp, e);
        return {good, e};
    });
    if (!ok) cluster_error(err);
    Value ch = new_channel_value(1);
    share(ch);
    out = ch;
    std::string owner = r->owner;
    Value ref = refv;
    std::lock_guard<std::mutex> g(d->mu);
    // Three missed heartbeats (the OWNERS entry expired) mean the owner's node is gone.
    d->watchers.emplace_back([d, owner, ref, ch] {
        while (!d->stopping.load()) {
            if (!owner_alive(*d, owner)) {
                Value msg = make_dict();
                msg.as<DictObj>()->table.insert(make_str("down"), ref);
                msg.as<DictObj>()->table.insert(make_str("reason"), make_str("noconnection"));
                share(msg);
                if (auto* core = channel_core(ch)) {
                    core->try_send(msg);
                    core->close();
                }
                return;
            }
            for (int i = 0; i < 5 && !d->stopping.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    return true;
}

}  // namespace

// ===========================================================================
// Public entry points

void set_version(const std::string& version) {
    // Header values and the heartbeat text are space-separated fields: no spaces inside.
    // WEFT_CLUSTER_TEST_VERSION replaces it (the cluster tests start a worker "of another
    // version" with it).
    const char* test = getenv("WEFT_CLUSTER_TEST_VERSION");
    g_version = test && *test ? test : version;
    for (char& ch : g_version)
        if (ch == ' ') ch = '_';
}

void register_cluster() {
    static bool done = false;
    if (done) return;
    done = true;
    Vm::register_native_module("cluster", init_cluster_module);
    cluster_parallel_hook = parallel_hook;
    actor_cluster_spawn_hook = cluster_spawn_hook;
    actor_cluster_whereis_hook = cluster_whereis_hook;
    actor_cluster_monitor_hook = cluster_monitor_hook;
}

void enable_driver(Vm& vm, const std::string& url, const std::string& name, TraceOut* trace) {
    if (!g_driver) g_driver = new Driver();  // lives to the end of the process
    g_driver->vm = &vm;
    g_driver->trace = trace;
    g_driver->url = url;
    g_driver->name = name.empty() ? "weft" : name;
}

void finish_driver(bool stats) {
    Driver* d = g_driver;
    if (!d) return;
    if (stats) {
        std::lock_guard<std::mutex> g(d->stats.mu);
        auto& s = d->stats;
        if (s.tasks) {
            std::string per;
            for (auto& [w, k] : s.per_worker) per += (per.empty() ? "" : ", ") + w + " " + std::to_string(k);
            fprintf(stderr,
                    "cluster: %llu remote tasks (%s), %llu redelivered, %llu failed; mean queue %.2f ms, mean run %.2f ms\n",
                    (unsigned long long)s.tasks, per.c_str(), (unsigned long long)s.redelivered,
                    (unsigned long long)s.errors, double(s.queue_us) / 1000.0 / double(s.tasks),
                    double(s.run_us) / 1000.0 / double(s.tasks));
        }
    }
    // Remote actors: stop serving and watching, then leave (the heartbeat entry is deleted, so
    // monitors elsewhere see "noconnection" at once).
    d->stopping.store(true);
    if (d->heartbeat.joinable()) d->heartbeat.join();
    for (auto& t : d->watchers) t.join();
    d->watchers.clear();
    std::lock_guard<std::mutex> g(d->mu);
    for (auto& [name, sub] : d->served) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
        if (d->names_kv) kvStore_Delete(d->names_kv, name.c_str());
    }
    d->served.clear();
    if (d->owners_kv) {
        kvStore_Delete(d->owners_kv, d->id.c_str());
        kvStore_Destroy(d->owners_kv);
        d->owners_kv = nullptr;
    }
    if (d->names_kv) {
        kvStore_Destroy(d->names_kv);
        d->names_kv = nullptr;
    }
    if (d->results_sub) {
        natsSubscription_Unsubscribe(d->results_sub);
        natsSubscription_Destroy(d->results_sub);
        d->results_sub = nullptr;
    }
    d->conn.reset();
}

int worker_main(int argc, char** argv) {
    std::string url = getenv("WEFT_CLUSTER") ? getenv("WEFT_CLUSTER") : "";
    std::string cluster = "weft", name, pool = "default";
    int slots = 1, prefetch = -1;
    double ack_wait = 15;
    bool verbose = false;
    VmOptions vo;
    auto usage = [](const std::string& m) {
        fprintf(stderr, "weft worker: %s\nTry 'weft worker --help'.\n", m.c_str());
        return 2;
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](std::string& out) {
            auto eq = a.find('=');
            if (eq != std::string::npos) {
                out = a.substr(eq + 1);
                return true;
            }
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        auto is = [&](const char* flag) { return a == flag || a.rfind(std::string(flag) + "=", 0) == 0; };
        std::string v;
        if (a == "-h" || a == "--help") {
            fputs(kWorkerHelp, stdout);
            return 0;
        } else if (is("--cluster")) {
            if (!value(url)) return usage("--cluster needs a URL");
        } else if (is("--cluster-name")) {
            if (!value(cluster) || !valid_token(cluster)) return usage("--cluster-name needs a name of letters, digits, - and _");
        } else if (is("--name")) {
            if (!value(name) || !valid_token(name)) return usage("--name needs a name of letters, digits, - and _");
        } else if (is("--pool")) {
            if (!value(pool) || !valid_token(pool)) return usage("--pool needs a name of letters, digits, - and _");
        } else if (is("--workers")) {
            if (!value(v) || atoi(v.c_str()) < 1) return usage("--workers needs a positive number");
            slots = std::min(atoi(v.c_str()), 256);
        } else if (is("--prefetch")) {
            if (!value(v) || atoi(v.c_str()) < 0 || (v != "0" && atoi(v.c_str()) == 0)) return usage("--prefetch needs a number >= 0");
            prefetch = std::min(atoi(v.c_str()), 1024);
        } else if (is("--ack-wait")) {
            if (!value(v) || !parse_seconds(v, ack_wait)) return usage("--ack-wait needs a duration like 15s");
        } else if (a == "--verbose") {
            verbose = true;
        } else if (a == "-A" || a.rfind("--allow-", 0) == 0) {
            std::string err;
            if (!parse_capability_flag(a, vo.caps, err)) return usage(err.empty() ? "unknown flag '" + a + "'" : err);
        } else {
            return usage("unknown option '" + a + "'");
        }
    }
    if (url.empty()) return usage("--cluster nats://HOST:PORT is required (or set WEFT_CLUSTER)");
    if (name.empty()) {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        name = std::string(host) + "-" + std::to_string(getpid());
        for (char& ch : name)
            if (!(isalnum(uint8_t(ch)) || ch == '_' || ch == '-')) ch = '-';
    }
    register_stdlib();
    register_cluster();
    g_worker_name = name;

    Worker w;
    w.name = name;
    w.pool = pool;
    w.slots = slots;
    w.prefetch = prefetch < 0 ? slots : prefetch;
    w.ack_wait = ack_wait;
    w.verbose = verbose;
    std::string err;
    w.conn = connect(url, cluster, "weft worker " + name, err);
    if (!w.conn) {
        fprintf(stderr, "weft worker: %s\n", err.c_str());
        return 1;
    }
    Conn& c = *w.conn;
    // The pool's durable pull consumer (created by the first worker; later ones bind to it).
    std::string durable = "pool_" + pool;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = int64_t(ack_wait * 1e9);
    cc.MaxDeliver = 10;
    std::string filter = c.names.task_subject(pool);
    cc.FilterSubject = filter.c_str();
    cc.MaxAckPending = 10000;
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = jsErrCode(0);
    std::string tasks_stream = c.names.tasks_stream();
    if (js_GetConsumerInfo(&ci, c.js, tasks_stream.c_str(), durable.c_str(), nullptr, &jerr) != NATS_OK) {
        natsStatus s = js_AddConsumer(&ci, c.js, tasks_stream.c_str(), &cc, nullptr, &jerr);
        if (s != NATS_OK && js_GetConsumerInfo(&ci, c.js, tasks_stream.c_str(), durable.c_str(), nullptr, &jerr) != NATS_OK) {
            fprintf(stderr, "weft worker: cannot create the consumer %s: %s\n", durable.c_str(), nats_text(s).c_str());
            return 1;
        }
    }
    if (ci) jsConsumerInfo_Destroy(ci);
    natsSubscription* sub = nullptr;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = tasks_stream.c_str();
    so.Consumer = durable.c_str();
    natsStatus s = js_PullSubscribe(&sub, c.js, filter.c_str(), durable.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "weft worker: cannot pull tasks: %s\n", nats_text(s).c_str());
        return 1;
    }
    natsSubscription* cancel_sub = nullptr;
    natsConnection_Subscribe(&cancel_sub, c.nc, ("weft." + cluster + ".cancel.*").c_str(), on_cancel_msg, &w);

    vo.workers = unsigned(std::max(1, std::min(slots, 64)));
    vo.program = "weft worker";
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    int rc = 0;
    {
        Vm vm(vo);
        register_stdlib_builtins(vm);
        vm.runtime();
        w.vm = &vm;
        w.ceiling = std::make_shared<CapabilitySet>(vo.caps);
        std::atomic<bool> quit{false};
        std::thread results([&] { result_loop(w, quit); });
        std::thread heartbeat([&] {
            char host[256] = "host";
            gethostname(host, sizeof host - 1);
            while (!quit.load()) {
                size_t busy;
                uint64_t done;
                {
                    std::lock_guard<std::mutex> g(w.mu);
                    busy = w.running.size();
                    done = w.done_count;
                }
                std::string hb = "name=" + name + " host=" + host + " pid=" + std::to_string(getpid()) + " pool=" + pool +
                                 " slots=" + std::to_string(slots) + " busy=" + std::to_string(busy) +
                                 " done=" + std::to_string(done) + (g_stop.load() ? " state=stopping" : " state=up") +
                                 " version=" + g_version;
                kvStore_Put(nullptr, c.nodes, name.c_str(), hb.data(), int(hb.size()));
                for (int i = 0; i < 10 && !quit.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            kvStore_Delete(c.nodes, name.c_str());
        });
        fprintf(stderr, "weft worker %s: serving pool '%s' of cluster '%s' at %s (%d slot%s)\n", name.c_str(),
                pool.c_str(), cluster.c_str(), url.c_str(), slots, slots == 1 ? "" : "s");
        fflush(stderr);
        // The fetch loop: pull as many tasks as there are free slots.
        int capacity = slots + w.prefetch;
        while (!g_stop.load()) {
            int free_slots;
            {
                std::unique_lock<std::mutex> lk(w.mu);
                w.cv.wait_for(lk, std::chrono::milliseconds(200), [&] { return int(w.running.size()) < capacity || g_stop.load(); });
                free_slots = capacity - int(w.running.size());
            }
            if (free_slots <= 0 || g_stop.load()) continue;
            natsMsgList list{};
            natsStatus fs = natsSubscription_Fetch(&list, sub, free_slots, 500, &jerr);
            if (fs != NATS_OK) {
                if (fs != NATS_TIMEOUT) std::this_thread::sleep_for(std::chrono::milliseconds(200));
                continue;
            }
            for (int i = 0; i < list.Count; ++i) {
                natsMsg* m = list.Msgs[i];
                list.Msgs[i] = nullptr;
                start_task(w, m);
            }
            natsMsgList_Destroy(&list);
        }
        // SIGTERM: stop pulling, finish what runs (bounded), then leave.
        fprintf(stderr, "weft worker %s: stopping (finishing %zu running task%s)\n", name.c_str(), w.running.size(),
                w.running.size() == 1 ? "" : "s");
        {
            std::unique_lock<std::mutex> lk(w.mu);
            w.cv.wait_for(lk, std::chrono::seconds(300), [&] { return w.running.empty() && w.finished.empty(); });
        }
        quit.store(true);
        w.cv.notify_all();
        results.join();
        heartbeat.join();
        w.vm = nullptr;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    if (cancel_sub) {
        natsSubscription_Unsubscribe(cancel_sub);
        natsSubscription_Destroy(cancel_sub);
    }
    w.conn.reset();
    return rc;
}

int cluster_command_main(int argc, char** argv) {
    std::string url = getenv("WEFT_CLUSTER") ? getenv("WEFT_CLUSTER") : "";
    std::string cluster = "weft";
    auto usage = [](const std::string& m) {
        fprintf(stderr, "weft cluster: %s\nUsage: weft cluster status --cluster nats://HOST:PORT [--cluster-name NAME]\n",
                m.c_str());
        return 2;
    };
    if (argc < 2 || std::string(argv[1]) != "status") return usage(argc < 2 ? "needs a command" : "unknown command '" + std::string(argv[1]) + "'");
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        std::string* out = a.rfind("--cluster-name", 0) == 0 ? &cluster : a.rfind("--cluster", 0) == 0 ? &url : nullptr;
        if (!out) return usage("unknown option '" + a + "'");
        auto eq = a.find('=');
        if (eq != std::string::npos) *out = a.substr(eq + 1);
        else if (i + 1 < argc) *out = argv[++i];
        else return usage(a + " needs a value");
    }
    if (url.empty()) return usage("--cluster nats://HOST:PORT is required (or set WEFT_CLUSTER)");
    if (!valid_token(cluster)) return usage("--cluster-name needs a name of letters, digits, - and _");
    std::string err;
    auto c = connect(url, cluster, "weft cluster status", err);
    if (!c) {
        fprintf(stderr, "weft cluster: %s\n", err.c_str());
        return 1;
    }
    auto nodes = live_nodes(*c);
    printf("cluster '%s' at %s\n", cluster.c_str(), url.c_str());
    printf("workers: %zu\n", nodes.size());
    for (auto& [n, hb] : nodes)
        printf("  %-24s host=%s pid=%s pool=%s slots=%s busy=%s done=%s %s weft %s\n", n.c_str(),
               field(hb, "host").c_str(), field(hb, "pid").c_str(), field(hb, "pool").c_str(), field(hb, "slots").c_str(),
               field(hb, "busy").c_str(), field(hb, "done").c_str(), field(hb, "state").c_str(), field(hb, "version").c_str());
    jsConsumerInfoList* list = nullptr;
    jsErrCode jerr = jsErrCode(0);
    printf("pools:\n");
    if (js_Consumers(&list, c->js, c->names.tasks_stream().c_str(), nullptr, &jerr) == NATS_OK && list) {
        for (int i = 0; i < list->Count; ++i) {
            jsConsumerInfo* ci = list->List[i];
            std::string pname = ci->Name;
            if (pname.rfind("pool_", 0) == 0) pname = pname.substr(5);
            printf("  %-24s queued=%llu running=%lld redelivered=%lld\n", pname.c_str(), (unsigned long long)ci->NumPending,
                   (long long)ci->NumAckPending, (long long)ci->NumRedelivered);
        }
        jsConsumerInfoList_Destroy(list);
    }
    return 0;
}

}  // namespace weft::cluster
