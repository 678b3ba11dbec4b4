// capabilities.h — the authority a task holds (spec section 11).
//
// A program starts with what its command line grants (--allow-net, --allow-read,
// ...); the set can only be narrowed inside the program (restrict blocks,
// @effects, caps(...) for actors). Sets are immutable and shared by pointer:
// a task that narrows its set installs a new one.
//
// This header is the interface; the standard-library engineer owns the
// implementation (vm/capabilities.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace weft {

struct CapabilitySet {
    // For each kind: `all` grants everything of that kind; otherwise `items`
    // lists what is granted (hosts "host" or "host:port"; canonical absolute
    // paths; program names or paths; environment variable names).
    struct Grant {
        bool all = false;
        std::vector<std::string> items;
    };
    Grant net, read, write, run, env;
    // Source files of the program itself may always be read.
    std::vector<std::string> own_sources;

    static std::shared_ptr<const CapabilitySet> none();
    static std::shared_ptr<const CapabilitySet> everything();
};

// Parses one command-line flag (--allow-net[=a,b], --allow-read[=...],
// --allow-write, --allow-run, --allow-env, -A/--allow-all) into `caps`.
// Returns false (with `error` set) for a malformed flag; returns false with an
// empty `error` when `arg` is not a capability flag at all.
bool parse_capability_flag(const std::string& arg, CapabilitySet& caps, std::string& error);

}  // namespace weft
