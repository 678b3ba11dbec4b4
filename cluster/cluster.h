// cluster.h — cluster mode on NATS JetStream (docs/cluster.md; design: shared/design/cluster.md).
//
// The layer above the standard library (runtime <- vm <- stdlib <- embed <- cluster <- cli):
//  * the driver side: `weft run --cluster URL` calls enable_driver(), which installs the hook
//    that vm/tasks.cpp's parallel_map / parallel_filter / parallel_for_each call for
//    `cluster=True`, and the `cluster` module (submit, nodes, worker_id);
//  * `weft worker` (worker_main): pulls tasks from the cluster's JetStream work queue, runs them
//    in its own Vm with its capabilities intersected with the caller's, publishes results, acks;
//  * `weft cluster status` (status_main): live workers (heartbeats in a KV bucket), pools and
//    queue depths.
// NATS names for cluster C: stream WEFT_C_TASKS (subjects weft.C.task.<pool>, work-queue
// retention, one durable pull consumer pool_<pool>), stream WEFT_C_RESULTS (weft.C.result.<job>,
// de-duplicated by Nats-Msg-Id "<job>.<index>"), KV WEFT_C_CODE (sources and bundles by
// SHA-256), KV WEFT_C_NODES (worker heartbeats, TTL 5 s), core subject weft.C.cancel.<job>.
#pragma once

#include <string>

namespace weft {
class Vm;
class TraceOut;
}

namespace weft::cluster {

// Registers the `cluster` module (import cluster) and the parallel_map hook. Call once at start.
void register_cluster();

// This build's version ("0.1.0 (commit abc)"): tasks carry it, and a worker refuses a task of
// another version (a function is found in its module by its place in the compiled code, which
// only the same compiler reproduces). Call before worker_main / enable_driver.
void set_version(const std::string& version);

// Makes `vm`'s program a cluster driver connected to `url` (nats://HOST:PORT) lazily, on the first
// cluster operation; `name` is the cluster name (default "weft"). Not thread-safe: call before
// the program runs. `trace` (may be null): --trace-out's recorder, which then gets a slice per
// remote task (worker, queue time, run time, deliveries).
void enable_driver(Vm& vm, const std::string& url, const std::string& name, TraceOut* trace = nullptr);

// Ends the driver: closes the connection; with `stats` prints a summary of remote tasks on
// stderr (tasks, per worker, deliveries, queue and run times). Call after the program ended.
void finish_driver(bool stats);

// `weft worker ...` and `weft cluster status ...` (argv[0] is "worker" / "cluster"). Return
// the process exit status.
int worker_main(int argc, char** argv);
int cluster_command_main(int argc, char** argv);

}  // namespace weft::cluster
