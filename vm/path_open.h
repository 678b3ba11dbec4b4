// path_open.h — opening exactly what a capability check allowed (spec section 11).
//
// A check by name followed by an open by name leaves a window: a symlink swapped in between
// is followed, and the program reads or creates a file outside its grant. So the functions
// here do not open the checked name again. They find the grant that covers the path (a
// granted folder, named by the trusted command line), open that folder, and resolve the rest
// of the path beneath it with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the kernel
// refuses any step — `..`, an absolute symlink, a symlink swapped in, a /proc magic link —
// that would leave the folder. Where the kernel lacks openat2 (before Linux 5.6, or a sandbox
// that filters it) the rest is walked one component at a time with openat(O_NOFOLLOW), which
// refuses every symlink on the way (the checked path is canonical: it had none).
//
// Callers act on the returned descriptor (read, write, fstat, fdopendir, the *at calls).
// Where a kind is granted in full (`--allow-read` without a list, `-A`), or for the program's
// own source files, there is no folder to stay beneath and the path is opened as given.
//
// Everything here is plain C++ on plain strings: it runs on the blocking pool.
#pragma once

#include <sys/types.h>

#include <string>

#include "vm/capabilities.h"

namespace weft {

enum class Access { Read, Write };

// An owned file descriptor (-1 when empty); closes on destruction. Move-only.
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();
    int get() const { return fd_; }
    int release() {
        int f = fd_;
        fd_ = -1;
        return f;
    }
    explicit operator bool() const { return fd_ >= 0; }

  private:
    int fd_ = -1;
};

// The error a resolution that tried to leave its grant reports (errno value): EXDEV from
// openat2's RESOLVE_BENEATH, ELOOP from the O_NOFOLLOW walk. escape_message() words it.
bool is_escape_errno(int err);
std::string escape_message(const std::string& action, const std::string& path);

// Opens `path` like open(2) with `flags` (O_CLOEXEC is added) and `mode`, resolved beneath
// the grant of `caps` that allows `access` to it. Returns the descriptor, or -errno: the
// open's own error, -EACCES when no grant covers the path (the caller checked first, so this
// means the path changed since), or an escape (is_escape_errno) when resolving it would
// leave the grant. Thread-safe; blocks on the file system.
int open_allowed(const CapabilitySet& caps, Access access, const std::string& path, int flags,
                 mode_t mode = 0);

// Opens the directory holding `path`'s final entry (O_PATH | O_DIRECTORY), beneath the grant
// that covers the entry, for the *at calls that act on the entry itself without following it
// (unlinkat, mkdirat, fstatat with AT_SYMLINK_NOFOLLOW). `name` receives the entry's name.
// The entry's parent is canonicalized; the entry is not. Returns a descriptor or -errno as
// open_allowed does. When the entry is a granted folder itself, its parent is outside every
// grant but named by the command line: it is opened as given.
int open_parent_allowed(const CapabilitySet& caps, Access access, const std::string& path,
                        std::string& name);

// Removes the directory entry `name` of the folder `parent` and, when it is a directory and `recursive`,
// everything below it, through descriptors only (a symlink inside the tree is removed, never
// followed, even if swapped in during the walk). Returns 0 or an errno value.
int remove_tree_at(int parent, const std::string& name, bool recursive);

// Creates the directory `path` (and, with `parents`, its missing ancestors beneath the grant)
// with mkdirat from descriptors opened beneath the grant that allows writing it. Ancestors at
// or above a granted folder are created by name (the command line named them). Returns 0 or an
// errno value (EEXIST when `path` exists; the caller decides whether that is an error).
int make_dirs_allowed(const CapabilitySet& caps, const std::string& path, bool parents);

}  // namespace weft
