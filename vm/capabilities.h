// capabilities.h — the authority a task holds (spec section 11).
//
// A program starts with what its command line grants (--allow-net, --allow-read,
// ...); the set can only be narrowed inside the program (restrict blocks,
// @effects, caps(...) for actors). Sets are immutable and shared by pointer:
// a task that narrows its set installs a new one.
//
// Paths are compared as canonical absolute paths: `..` and every symlink are
// resolved, including a dangling symlink at the end of a path about to be
// created (std::filesystem::weakly_canonical would stop there and let a write
// through `allowed/link -> /etc/x` escape). A granted directory covers
// everything below it. The check and the later open are not atomic (a symlink
// swapped in between wins); sandboxing against a hostile local user is not the
// goal, keeping a program to what it was granted is.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace weft {

class CallContext;

// Held through std::shared_ptr (make_shared) everywhere, so a raw pointer kept by a deferred
// call's record can be turned back into an owner (vm/pending.cpp).
struct CapabilitySet : std::enable_shared_from_this<CapabilitySet> {
    // For each kind: `all` grants everything of that kind; otherwise `items`
    // lists what is granted (hosts "host" or "host:port"; canonical absolute
    // paths; program names or paths; environment variable names).
    struct Grant {
        bool all = false;
        std::vector<std::string> items;
    };
    Grant net, read, write, run, env;
    // Source files of the program itself may always be read (canonical paths).
    std::vector<std::string> own_sources;
    // Set on sets made inside the program (restrict, caps, @effects), so a
    // denial can say that the task's authority was narrowed, not just name a flag.
    bool narrowed = false;

    static std::shared_ptr<const CapabilitySet> none();
    static std::shared_ptr<const CapabilitySet> everything();

    // `path` may be relative (to the working directory); it is canonicalized here.
    bool allows_read(const std::string& path) const;
    bool allows_write(const std::string& path) const;
    // Exact host name match (case-insensitive); a granted "host:port" allows only
    // that port, a bare "host" any port. `port` < 0 means "any port" and is
    // allowed only by a bare host grant.
    bool allows_net(const std::string& host, int port) const;
    // A granted name without '/' matches a program by its basename ("sh" allows
    // "sh" and "/bin/sh"); a granted path matches the same canonical file.
    bool allows_run(const std::string& program) const;
    bool allows_env(const std::string& name) const;

    // Whether every grant of `narrower` is held by this set. On false, `excess`
    // describes the first grant that is not held (e.g. "read '/etc'").
    bool covers(const CapabilitySet& narrower, std::string& excess) const;
};

// Canonical absolute form of `path`: relative to the working directory, `.` and
// `..` removed, every symlink (also a dangling final one) followed, up to 40
// links; a missing tail is kept as written. Never throws.
std::string canonical_path(const std::string& path);

// Parses one command-line flag (--allow-net[=a,b], --allow-read[=...],
// --allow-write, --allow-run, --allow-env, -A/--allow-all) into `caps`.
// Returns false (with `error` set) for a malformed flag; returns false with an
// empty `error` when `arg` is not a capability flag at all.
bool parse_capability_flag(const std::string& arg, CapabilitySet& caps, std::string& error);

// Adds a source file of the running program to the files that are always
// readable (called by the VM as modules load; thread-safe). Applies to every
// capability set of the process, including narrowed ones.
void add_own_source(const std::string& path);

// Checks against the running task's capabilities (cx.capabilities(); a context
// without capabilities holds none). Each throws
// WeftError(PermissionDenied, "<action> '<what>' requires --allow-<kind> (or
// --allow-<kind>=<what>)"). `action` is a verb phrase such as "reading" or "running".
void require_read(CallContext& cx, const std::string& path, const char* action = "reading");
void require_write(CallContext& cx, const std::string& path, const char* action = "writing");
// Like require_write, but for an operation on the directory entry itself
// (unlink, rmdir): a final symlink is not followed, its parent directory is.
void require_write_entry(CallContext& cx, const std::string& path, const char* action = "removing");
void require_net(CallContext& cx, const std::string& host, int port);
void require_run(CallContext& cx, const std::string& program);
void require_env(CallContext& cx, const std::string& name);

}  // namespace weft
