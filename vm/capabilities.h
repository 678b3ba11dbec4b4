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
// swapped in between would win), so the modules open what they checked through
// vm/path_open.h, beneath the granted folder. docs/security.md has the threat model.
//
// A string with a NUL byte is refused (ValueError, "embedded null byte", Python's words)
// before any check: the check would see the whole string, the system call only its
// part before the NUL.
#pragma once

#include <memory>
#include <mutex>
#include <set>
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
    // The program's own source files, always readable; shared by every set derived from the
    // program's (null: none).
    std::shared_ptr<class SourceFiles> own_sources;
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
    // Whether running `program` is allowed: it is resolved as the exec will resolve it
    // (resolve_executable: relative to `cwd`, through `path_env`), then a granted path
    // allows the same canonical file, and a granted bare name allows the file that name
    // resolves to through this process's PATH (so "sh" allows "sh" and "/bin/sh" but not a
    // copy named sh elsewhere).
    bool allows_run(const std::string& program, const std::string& cwd = "",
                    const std::string* path_env = nullptr) const;
    bool allows_env(const std::string& name) const;

    // Whether every grant of `narrower` is held by this set. On false, `excess`
    // describes the first grant that is not held (e.g. "read '/etc'").
    bool covers(const CapabilitySet& narrower, std::string& excess) const;
};

// The program's own source files (canonical paths) and the folder of its main file: a
// program may always read its sources and, without flags, import the `.weft`/`.wlisp` files
// of its folder tree (spec section 11). One per program (Vm), never process-wide: an engine
// embedded beside another does not see its sources. Thread-safe.
class SourceFiles {
  public:
    void add(const std::string& path);  // canonicalized here
    bool contains(const std::string& canonical) const;
    void set_root(const std::string& folder);  // canonicalized here
    std::string root() const;

  private:
    mutable std::mutex mu_;
    std::set<std::string> paths_;
    std::string root_;
};

// Throws WeftError(ValueError, "embedded null byte") when `s` holds a NUL (every path,
// program, argument and environment string goes through this before its check).
void reject_nul(const std::string& s);

// The non-empty pieces of `s` between `sep`s ("a,,b," -> a, b; "/x//y" with '/' -> x, y).
std::vector<std::string> split_nonempty(const std::string& s, char sep);

// Whether canonical `path` is `dir` or below it (both canonical absolute paths).
bool path_within(const std::string& path, const std::string& dir);

// The canonical file an exec of `program` would run: a name with '/' relative to `cwd`
// (empty: the working directory), a bare name looked up in the ':'-separated `path_env`
// (null: this process's PATH; relative entries relative to `cwd`). Empty when no
// executable file is found. Blocks on the file system (stat per PATH entry).
std::string resolve_executable(const std::string& program, const std::string& cwd = "",
                               const std::string* path_env = nullptr);

// Canonical absolute form of `path`: relative to the working directory, `.` and
// `..` removed, every symlink (also a dangling final one) followed, up to 40
// links; a missing tail is kept as written. Never throws.
std::string canonical_path(const std::string& path);

// Parses one command-line flag (--allow-net[=a,b], --allow-read[=...],
// --allow-write, --allow-run, --allow-env, -A/--allow-all) into `caps`.
// Returns false (with `error` set) for a malformed flag; returns false with an
// empty `error` when `arg` is not a capability flag at all.
bool parse_capability_flag(const std::string& arg, CapabilitySet& caps, std::string& error);

// Checks against the running task's capabilities (cx.capabilities(); a context
// without capabilities holds none). Each throws
// WeftError(PermissionDenied, "<action> '<what>' requires --allow-<kind> (or
// --allow-<kind>=<what>)"). `action` is a verb phrase such as "reading" or "running".
void require_read(CallContext& cx, const std::string& path, const char* action = "reading");
void require_write(CallContext& cx, const std::string& path, const char* action = "writing");
// Like require_write, but for an operation on the directory entry itself
// (unlink, rmdir): a final symlink is not followed, its parent directory is.
void require_write_entry(CallContext& cx, const std::string& path, const char* action = "removing");
void require_net(CallContext& cx, const std::string& host, int port,
                 const char* action = "connecting to");
// Returns the canonical file to execute (resolve_executable), which the caller must run
// rather than `program` (so what runs is what was checked); empty when none is found
// (the caller reports "No such file or directory" as the exec would).
std::string require_run(CallContext& cx, const std::string& program, const std::string& cwd = "",
                        const std::string* path_env = nullptr);
void require_env(CallContext& cx, const std::string& name);

}  // namespace weft
