// wire.h — the value codec of cluster mode ("WVAL1") and function bundles.
//
// A function crosses processes by content, never as bytecode (docs/cluster.md, design
// section 4): its module's source text (named by SHA-256), the place of its Proto in that
// module's proto tree (child indices), its captured values, defaults and annotation types,
// and a snapshot of the module globals that functions read. The worker compiles the source
// (never running the module's top level), installs the snapshot as the module's globals and
// rebuilds the closure. Data values are encoded by value (tagged, varints, little-endian).
//
// Values that cannot cross (channels, atoms, task handles, scopes, actor refs, host objects,
// struct instances in this version) make encoding throw WeftError(ClusterError) naming the
// path to the value ("'score' captures 'cfg' -> cfg['a'][0] (a channel)"), before anything is
// sent. Globals that cannot cross are left out of the snapshot (reading one on a worker raises
// NameError there), so unrelated globals never stop shipping.
//
// Thread-safety: an Encoder or Decoder is used by one thread at a time; a Decoder builds values
// in the Vm of the calling task.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vm/value.h"

namespace weft {
class Interp;
struct ModuleObj;
struct StructTypeObj;
struct CapabilitySet;
}  // namespace weft

namespace weft::cluster {

// SHA-256 of `data` as 64 lowercase hex digits (OpenSSL); raises ClusterError if OpenSSL fails.
std::string sha256_hex(std::string_view data);

// A module referenced by a bundle: its source hash, file name and module name.
struct ModuleRef {
    std::string sha;
    std::string path;
    std::string name;
};

// Encodes values for the wire. One Encoder per bundle: the modules its functions come from are
// collected in `modules` (index = module number on the wire); `sources` maps each module's
// hash to its text (stored once per hash in the cluster's CODE bucket).
class Encoder {
public:
    // Appends `v`; `path` names it in errors ("'score' captures 'cfg'"). Throws ClusterError.
    void value(const Value& v, const std::string& path);
    void u64(uint64_t x);
    void i64(int64_t x);
    void str(std::string_view s);
    std::string take() { return std::move(out_); }
    std::string& buffer() { return out_; }

    // The bundle: `fn` and, for every module its functions come from, the globals snapshot.
    // Returns the bytes; fills `sources` (sha -> text). `what` names the call in errors
    // ("parallel_map(score, ...)").
    // `table` (may be null) receives the bundle's module table, so that the task arguments
    // encoded with it may hold functions of the same modules.
    static std::string bundle(const Value& fn, const std::string& what, std::map<std::string, std::string>& sources,
                              Encoder* table = nullptr);

    std::vector<ModuleRef> modules;
    std::vector<const ModuleObj*> module_objs;
    std::map<std::string, std::string>* sources = nullptr;

private:
    int module_index(const ModuleObj* m, const std::string& path);
    void function(const Value& v, const std::string& path);
    void struct_type(const StructTypeObj* t, const std::string& path);
    std::string out_;
    int depth_ = 0;
    // Struct types written so far in this message (a second use is a back reference).
    std::map<const StructTypeObj*, uint64_t> struct_ids_;
};

// Reads what an Encoder wrote. Throws ClusterError on malformed input.
class Decoder {
public:
    // `in` may be null for data without values (u64, str, capability sets).
    Decoder(Interp* in, std::string_view data, const std::vector<ModuleObj*>* modules = nullptr)
        : in_(in), p_(data.data()), end_(data.data() + data.size()), modules_(modules) {}
    Value value();
    uint64_t u64();
    int64_t i64();
    std::string str();
    bool at_end() const { return p_ == end_; }
    std::string_view rest() const { return std::string_view(p_, size_t(end_ - p_)); }

private:
    Interp* in_;
    const char* p_;
    const char* end_;
    const std::vector<ModuleObj*>* modules_;
    int depth_ = 0;
    std::vector<Value> struct_types_;  // by id, in the order the Encoder wrote them
    Value struct_type();
};

// Decodes a bundle in the worker's Vm: fetches each module's source through `source_of(sha)`
// (throws when unavailable), compiles it without running its top level, installs the globals
// snapshot and returns the function. The returned value is shared (safe on any thread).
// `modules_out` (may be null) receives the bundle's module table: decode the task's arguments
// and encode its result with it, so that struct values of those modules cross.
Value load_bundle(Interp& in, std::string_view bundle,
                  const std::function<std::string(const std::string& sha)>& source_of,
                  std::vector<ModuleObj*>* modules_out = nullptr);

// Capability sets as data (the caller's set travels with each task).
void encode_caps(Encoder& e, const CapabilitySet* caps);
std::shared_ptr<const CapabilitySet> decode_caps(Decoder& d);
// The grants held by both `a` (the worker's ceiling) and `b` (the caller's set).
std::shared_ptr<const CapabilitySet> intersect_caps(const CapabilitySet& a, const CapabilitySet& b);

// An error value as (kind name, message, trace lines), and back (in the caller's Vm; a kind
// this Vm does not know becomes Error with "Kind: message").
void encode_error(Encoder& e, const Value& err);
// An error by kind name and message only (no value at hand: decided before running a task).
void encode_error_parts(Encoder& e, const std::string& kind, const std::string& message);
Value decode_error(Interp& in, Decoder& d);

}  // namespace weft::cluster
