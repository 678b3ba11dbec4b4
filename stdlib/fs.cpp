// fs.cpp — the `fs` module (spec section 12): read_file (`.gz` decompressed
// transparently with zlib), read_bytes, write_file, append_file, glob (with
// `**`), list_dir, exists, stat, file_size, mkdir, remove, walk.
//
// Every function checks the task's capabilities before touching the file
// system (reads need --allow-read, writes --allow-write) so a denied call has
// no effect, then acts on what it checked: files and folders are opened beneath
// the granted folder (vm/path_open.h), so a symlink swapped in after the check
// cannot lead outside it. Errors are IOError naming the path and the OS reason.
//
// Each operation that blocks is one function named blocking_*, and every call
// site runs it on the runtime's blocking pool (rt::run_blocking): a slow disk or
// a network file system parks only the calling task, never a worker. Those
// functions touch no Weft value (reference counts are not atomic across threads)
// and report errno in their result, since errno is per thread; walk and glob run
// their whole traversal as one blocking call rather than one per directory.
//
// glob follows Python's glob.glob(pattern, recursive=True) step by step (the
// same recursion over dirname/basename, hidden-name rules and "dir/" result for
// a trailing `**`), so results match Python's as a set. Unlike Python it does
// not loop forever on a symlink cycle: `**` does not descend into a directory
// that is already one of its own ancestors (compared by device and inode).
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "stdlib/stdlib.h"
#include "stdlib/stdlib_internal.h"
#include "vm/capabilities.h"
#include "vm/collections.h"
#include "vm/lib_internal.h"
#include "vm/path_open.h"
#include "weft/runtime/runtime.hpp"

namespace weft {

namespace {

using stdlib::io_error;
using stdlib::Params;

bool ends_with(const std::string& s, const char* suffix) {
    size_t n = strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

using Caps = std::shared_ptr<const CapabilitySet>;

Caps held(CallContext& cx) {
    auto c = cx.capabilities();
    return c ? c : CapabilitySet::none();
}

// ---------------------------------------------------------------------------
// Blocking operations (one per function; callers run them with rt::run_blocking)

// Opens what the task's check allowed (vm/path_open.h): beneath the grant, or for a read
// allowed only because the file is one of the program's own sources, that file by its
// canonical name. Throws IOError (the OS's reason) or PermissionDenied (the path changed
// after the check and now leaves its grant).
// open_allowed, and for a read no grant covers, the program's own source file by its
// canonical name. A descriptor or -errno.
int open_for_task(const CapabilitySet& caps, Access access, const std::string& path, int flags,
                  mode_t mode = 0) {
    int fd = open_allowed(caps, access, path, flags, mode);
    if (fd == -EACCES && access == Access::Read && caps.own_sources) {
        std::string canon = canonical_path(path);
        if (caps.own_sources->contains(canon)) {
            fd = open(canon.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode);
            if (fd < 0) fd = -errno;
        }
    }
    return fd;
}

int open_checked(const CapabilitySet& caps, Access access, const std::string& path, int flags,
                 mode_t mode, const char* what) {
    int fd = open_for_task(caps, access, path, flags, mode);
    if (fd >= 0) return fd;
    if (is_escape_errno(-fd))
        throw WeftError(ErrorKind::PermissionDenied,
                        escape_message(access == Access::Read ? "reading" : "writing", path));
    io_error(what, path, -fd);
}

std::string blocking_read_all(const CapabilitySet& caps, const std::string& path) {
    int fd = open_checked(caps, Access::Read, path, O_RDONLY, 0, "cannot read");
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        io_error("cannot read", path, EISDIR);
    }
    if (ends_with(path, ".gz")) {
        gzFile f = gzdopen(fd, "rb");  // owns fd from here
        if (!f) {
            close(fd);
            io_error("cannot read", path, ENOMEM);
        }
        std::string out;
        char buf[65536];
        int n;
        while ((n = gzread(f, buf, sizeof buf)) > 0)
            out.append(buf, size_t(n));
        int err = 0;
        std::string msg = gzerror(f, &err);
        gzclose(f);
        if (n < 0 || err < 0)
            throw WeftError(ErrorKind::IOError, "cannot read '" + path + "': " + msg);
        return out;
    }
    std::string out;
    if (st.st_size > 0) out.reserve(size_t(st.st_size));
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            io_error("cannot read", path, e);
        }
        if (n == 0) break;
        out.append(buf, size_t(n));
    }
    close(fd);
    return out;
}

void blocking_write(const CapabilitySet& caps, const std::string& path, const std::string& data,
                    bool append) {
    int fd = open_checked(caps, Access::Write, path,
                          O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0666, "cannot write");
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            io_error("cannot write", path, e);
        }
        off += size_t(n);
    }
    if (close(fd) != 0) io_error("cannot write", path, errno);
}

// Sorted names of the open directory `fd` (taken; without "." and ".."); false with errno
// set on failure.
bool list_dir_fd(int fd, std::vector<std::string>& names) {
    DIR* d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        errno = e;
        return false;
    }
    while (struct dirent* e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        names.emplace_back(e->d_name);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    return true;
}

// The same for a directory by name (glob, which filters what it reports by the grant).
bool blocking_list_dir(const std::string& dir, std::vector<std::string>& names) {
    int fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd >= 0 && list_dir_fd(fd, names);
}

bool blocking_stat(const std::string& path, struct stat& st, bool follow = true) {
    return (follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st)) == 0;
}

// stat (and lstat) with the errno of a failure, computed on the blocking pool.
struct StatResult {
    bool ok = false;
    int err = 0;
    struct stat st {};
    bool is_link = false;  // lstat says symlink (only when asked for)
};

// stat(2) of what the check allowed: fstat of the file opened (O_PATH) beneath the grant.
StatResult stat_off_worker(Caps caps, Access access, const std::string& path,
                           bool want_link = false) {
    return rt::run_blocking([caps, access, path, want_link] {
        StatResult r;
        int fd = open_for_task(*caps, access, path, O_PATH);
        r.ok = fd >= 0 && fstat(fd, &r.st) == 0;
        r.err = fd < 0 ? (is_escape_errno(-fd) ? EACCES : -fd) : r.ok ? 0 : errno;
        if (fd >= 0) close(fd);
        if (r.ok && want_link) {
            struct stat lst;
            r.is_link = blocking_stat(path, lst, false) && S_ISLNK(lst.st_mode);
        }
        return r;
    });
}

void blocking_mkdir(const CapabilitySet& caps, const std::string& path, bool parents,
                    bool exist_ok) {
    int e = make_dirs_allowed(caps, path, parents);
    if (e == EEXIST) {
        struct stat st;
        // An existing directory is fine with exist_ok (a file there never is).
        int fd = open_allowed(caps, Access::Write, path, O_PATH);
        bool dir = fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
        if (fd >= 0) close(fd);
        if (dir && exist_ok) return;
    }
    if (is_escape_errno(e))
        throw WeftError(ErrorKind::PermissionDenied, escape_message("creating directory", path));
    if (e) io_error("cannot create directory", path, e);
}

// Removes the entry itself (a symlink, not its target) from its parent opened beneath the
// grant; a tree is removed through descriptors (vm/path_open.h).
void blocking_remove(const CapabilitySet& caps, const std::string& path, bool recursive) {
    std::string name;
    int dir = open_parent_allowed(caps, Access::Write, path, name);
    if (dir < 0) {
        if (is_escape_errno(-dir))
            throw WeftError(ErrorKind::PermissionDenied, escape_message("removing", path));
        io_error("cannot remove", path, -dir);
    }
    UniqueFd hold(dir);
    if (int e = remove_tree_at(dir, name, recursive)) io_error("cannot remove", path, e);
}

// ---------------------------------------------------------------------------
// Reading

std::string decode(const std::string& path, std::string data, const std::string& encoding) {
    std::string enc;
    for (char c : encoding)
        enc += char(tolower((unsigned char)c));
    if (enc == "utf-8" || enc == "utf8") {
        size_t bad = lib::utf8_validate(data);
        if (bad != std::string::npos)
            throw WeftError(ErrorKind::ValueError,
                            "'" + path + "' is not valid UTF-8 (invalid byte at offset " +
                                std::to_string(bad) + "); use fs.read_bytes for binary files");
        return data;
    }
    if (enc == "latin-1" || enc == "latin1" || enc == "iso-8859-1") {
        std::string out;
        out.reserve(data.size());
        for (unsigned char c : data)
            lib::utf8_append(out, c);
        return out;
    }
    if (enc == "ascii") {
        for (size_t i = 0; i < data.size(); ++i)
            if ((unsigned char)data[i] >= 0x80)
                throw WeftError(
                    ErrorKind::ValueError,
                    "'" + path + "' is not ASCII (byte at offset " + std::to_string(i) + ")");
        return data;
    }
    throw WeftError(ErrorKind::ValueError,
                    "unknown encoding '" + encoding + "' (supported: utf-8, latin-1, ascii)");
}

Value fs_read_file(CallContext& cx, const CallArgs& a) {
    Params p(a, "read_file", {"path", "encoding"}, 1);
    std::string path = p.str(0);
    std::string enc = p.str_or(1, "utf-8");
    require_read(cx, path);
    Caps caps = held(cx);
    return make_str(decode(
        path, rt::run_blocking([caps, path] { return blocking_read_all(*caps, path); }), enc));
}

Value fs_read_bytes(CallContext& cx, const CallArgs& a) {
    Params p(a, "read_bytes", {"path"}, 1);
    std::string path = p.str(0);
    require_read(cx, path);
    Caps caps = held(cx);
    return make_bytes(rt::run_blocking([caps, path] { return blocking_read_all(*caps, path); }));
}

Value fs_exists(CallContext& cx, const CallArgs& a) {
    Params p(a, "exists", {"path"}, 1);
    std::string path = p.str(0);
    // Existence is no secret where the task may create and remove files: write access suffices too.
    reject_nul(path);
    Caps caps = held(cx);
    Access access = caps->allows_write(path) ? Access::Write : Access::Read;
    if (access == Access::Read) require_read(cx, path, "checking");
    return Value::boolean(stat_off_worker(caps, access, path).ok);
}

Value fs_stat(CallContext& cx, const CallArgs& a) {
    Params p(a, "stat", {"path"}, 1);
    std::string path = p.str(0);
    require_read(cx, path, "checking");
    StatResult r = stat_off_worker(held(cx), Access::Read, path, true);
    if (!r.ok) io_error("cannot stat", path, r.err);
    const struct stat& st = r.st;
    bool is_link = r.is_link;
    Value d = make_dict();
    stdlib::dict_put(d, "size", Value::integer(int64_t(st.st_size)));
    stdlib::dict_put(d, "mtime",
                     Value::number(double(st.st_mtim.tv_sec) + double(st.st_mtim.tv_nsec) * 1e-9));
    stdlib::dict_put(d, "is_dir", Value::boolean(S_ISDIR(st.st_mode)));
    stdlib::dict_put(d, "is_file", Value::boolean(S_ISREG(st.st_mode)));
    stdlib::dict_put(d, "is_symlink", Value::boolean(is_link));
    stdlib::dict_put(d, "mode", Value::integer(int64_t(st.st_mode & 07777)));
    return d;
}

Value fs_file_size(CallContext& cx, const CallArgs& a) {
    Params p(a, "file_size", {"path"}, 1);
    std::string path = p.str(0);
    require_read(cx, path, "checking");
    StatResult r = stat_off_worker(held(cx), Access::Read, path);
    if (!r.ok) io_error("cannot stat", path, r.err);
    return Value::integer(int64_t(r.st.st_size));
}

Value fs_list_dir(CallContext& cx, const CallArgs& a) {
    Params p(a, "list_dir", {"path"}, 0);
    std::string path = p.str_or(0, ".");
    require_read(cx, path, "listing");
    Caps caps = held(cx);
    auto [names, err] = rt::run_blocking([caps, path] {
        std::vector<std::string> names;
        int fd = open_allowed(*caps, Access::Read, path, O_RDONLY | O_DIRECTORY);
        int err = fd < 0 ? -fd : list_dir_fd(fd, names) ? 0 : errno;
        return std::make_pair(std::move(names), err);
    });
    if (is_escape_errno(err))
        throw WeftError(ErrorKind::PermissionDenied, escape_message("listing", path));
    if (err) io_error("cannot list", path, err);
    std::vector<Value> items;
    items.reserve(names.size());
    for (auto& n : names)
        items.push_back(make_str(n));
    return make_list(std::move(items));
}

// ---------------------------------------------------------------------------
// Writing

Value fs_write_file(CallContext& cx, const CallArgs& a) {
    Params p(a, "write_file", {"path", "data"}, 2);
    std::string path = p.str(0);
    std::string data = p.str_or_bytes(1);
    require_write(cx, path);
    rt::run_blocking([caps = held(cx), path, data = std::move(data)] {
        blocking_write(*caps, path, data, false);
    });
    return Value();
}

Value fs_append_file(CallContext& cx, const CallArgs& a) {
    Params p(a, "append_file", {"path", "data"}, 2);
    std::string path = p.str(0);
    std::string data = p.str_or_bytes(1);
    require_write(cx, path);
    rt::run_blocking([caps = held(cx), path, data = std::move(data)] {
        blocking_write(*caps, path, data, true);
    });
    return Value();
}

Value fs_mkdir(CallContext& cx, const CallArgs& a) {
    Params p(a, "mkdir", {"path", "parents", "exist_ok"}, 1);
    std::string path = p.str(0);
    bool parents = p.flag_or(1, true), exist_ok = p.flag_or(2, true);
    require_write(cx, path, "creating directory");
    rt::run_blocking([caps = held(cx), path, parents, exist_ok] {
        blocking_mkdir(*caps, path, parents, exist_ok);
    });
    return Value();
}

Value fs_remove(CallContext& cx, const CallArgs& a) {
    Params p(a, "remove", {"path", "recursive"}, 1);
    std::string path = p.str(0);
    bool recursive = p.flag_or(1, false);
    require_write_entry(cx, path);  // removing a symlink removes the link, not its target
    rt::run_blocking([caps = held(cx), path, recursive] { blocking_remove(*caps, path, recursive); });
    return Value();
}

// ---------------------------------------------------------------------------
// walk: os.walk(top) with topdown=True, followlinks=False; names sorted.

struct WalkEntry {
    std::string dir;
    std::vector<std::string> dirs, files;
};

// The whole traversal, as plain strings (it runs on the blocking pool). It moves through
// directory descriptors (openat with O_NOFOLLOW from the folder above), so a directory
// swapped for a symlink during the walk is not entered.
void blocking_walk(int dirfd, const std::string& dir, std::vector<WalkEntry>& out) {
    UniqueFd self(dirfd);
    std::vector<std::string> names;
    int listing = dup(dirfd);
    if (listing < 0 || !list_dir_fd(listing, names)) return;  // os.walk ignores unreadable directories
    WalkEntry e;
    e.dir = dir;
    std::vector<std::string> descend;
    for (auto& n : names) {
        struct stat st;
        bool is_dir = fstatat(dirfd, n.c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode);
        if (is_dir) {
            e.dirs.push_back(n);
            struct stat lst;
            if (fstatat(dirfd, n.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISLNK(lst.st_mode))
                descend.push_back(n);
        } else {
            e.files.push_back(n);
        }
    }
    out.push_back(std::move(e));
    for (auto& n : descend) {
        int fd = openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) blocking_walk(fd, dir == "/" ? "/" + n : dir + "/" + n, out);
    }
}

Value str_list(const std::vector<std::string>& v) {
    std::vector<Value> items;
    items.reserve(v.size());
    for (auto& s : v)
        items.push_back(make_str(s));
    return make_list(std::move(items));
}

Value fs_walk(CallContext& cx, const CallArgs& a) {
    Params p(a, "walk", {"top"}, 1);
    std::string top = p.str(0);
    require_read(cx, top, "listing");
    std::vector<WalkEntry> entries = rt::run_blocking([caps = held(cx), top] {
        std::vector<WalkEntry> out;
        int fd = open_allowed(*caps, Access::Read, top, O_RDONLY | O_DIRECTORY);
        if (fd >= 0) blocking_walk(fd, top, out);
        return out;
    });
    std::vector<Value> out;
    out.reserve(entries.size());
    for (auto& e : entries)
        out.push_back(make_tuple({make_str(e.dir), str_list(e.dirs), str_list(e.files)}));
    return make_list(std::move(out));
}

// ---------------------------------------------------------------------------
// glob

bool has_magic(const std::string& s) {
    return s.find_first_of("*?[") != std::string::npos;
}
bool is_hidden(const std::string& s) {
    return !s.empty() && s[0] == '.';
}

std::string path_join(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    if (dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

void split_path(const std::string& p, std::string& dirname, std::string& basename) {
    size_t k = p.rfind('/');
    if (k == std::string::npos) {
        dirname.clear();
        basename = p;
        return;
    }
    basename = p.substr(k + 1);
    dirname = p.substr(0, k + 1);
    // Python's os.path.split strips trailing slashes from the head unless it is all slashes.
    size_t end = dirname.find_last_not_of('/');
    if (end != std::string::npos) dirname.resize(end + 1);
}

class Globber {
  public:
    explicit Globber(std::shared_ptr<const CapabilitySet> caps) : caps_(std::move(caps)) {}

    // Python's glob._iglob(pathname, root_dir=None, dir_fd=None, recursive=True, dironly).
    void iglob(const std::string& pathname, bool dironly, std::vector<std::string>& out) {
        std::string dirname, basename;
        split_path(pathname, dirname, basename);
        if (!has_magic(pathname)) {
            if (!basename.empty()) {
                if (lexists(pathname)) out.push_back(pathname);
            } else if (is_dir(dirname)) {
                out.push_back(pathname);
            }
            return;
        }
        if (dirname.empty()) {
            glob_in_dir("", basename, dironly, out);
            return;
        }
        std::vector<std::string> dirs;
        if (dirname != pathname && has_magic(dirname))
            iglob(dirname, true, dirs);
        else
            dirs.push_back(dirname);
        for (auto& d : dirs) {
            std::vector<std::string> names;
            glob_in_dir(d, basename, dironly, names);
            for (auto& n : names)
                out.push_back(path_join(d, n));
        }
    }

  private:
    void glob_in_dir(const std::string& dir, const std::string& pattern, bool dironly,
                     std::vector<std::string>& out) {
        if (pattern == "**") {
            // _glob2: the empty name (the directory itself), then everything below.
            out.push_back("");
            std::vector<std::pair<dev_t, ino_t>> stack;
            rlistdir(dir, "", dironly, out, stack);
        } else if (has_magic(pattern)) {
            std::vector<std::pair<std::string, bool>> entries;
            list(dir, dironly, entries);
            bool hidden_ok = is_hidden(pattern);
            for (auto& [n, d] : entries) {
                if (!hidden_ok && is_hidden(n)) continue;
                if (fnmatch(pattern.c_str(), n.c_str(), FNM_NOESCAPE) == 0) out.push_back(n);
            }
        } else {
            // _glob0
            if (pattern.empty()) {
                if (is_dir(dir)) out.push_back(pattern);
            } else if (lexists(path_join(dir, pattern))) {
                out.push_back(pattern);
            }
        }
    }

    // _rlistdir: every non-hidden entry below `dir` (files only when !dironly),
    // descending into directories (symlinked ones too) that are not ancestors.
    void rlistdir(const std::string& dir, const std::string& rel, bool dironly,
                  std::vector<std::string>& out, std::vector<std::pair<dev_t, ino_t>>& stack) {
        struct stat st;
        std::string real = path_join(dir, rel);
        if (::stat(real.empty() ? "." : real.c_str(), &st) != 0) return;
        auto id = std::make_pair(st.st_dev, st.st_ino);
        if (std::find(stack.begin(), stack.end(), id) != stack.end()) return;  // a symlink cycle
        stack.push_back(id);
        std::vector<std::pair<std::string, bool>> entries;
        list(real, dironly, entries);
        for (auto& [n, d] : entries) {
            if (is_hidden(n)) continue;
            std::string path = path_join(rel, n);
            out.push_back(path);
            if (d) rlistdir(dir, path, dironly, out, stack);
        }
        stack.pop_back();
    }

    // Entries of `dir` with whether each is a directory (symlinks followed).
    // Directories the task may not read are treated as empty.
    void list(const std::string& dir, bool dironly,
              std::vector<std::pair<std::string, bool>>& out) {
        if (!caps_->read.all && !caps_->allows_read(dir.empty() ? "." : dir)) return;
        std::vector<std::string> names;
        if (!blocking_list_dir(dir, names)) return;
        for (auto& n : names) {
            bool d = is_dir(path_join(dir, n));
            if (dironly && !d) continue;
            out.emplace_back(n, d);
        }
    }

    static bool lexists(const std::string& p) {
        struct stat st;
        return lstat(p.c_str(), &st) == 0;
    }
    static bool is_dir(const std::string& p) {
        struct stat st;
        return ::stat(p.empty() ? "." : p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }

    std::shared_ptr<const CapabilitySet> caps_;
};

Value fs_glob(CallContext& cx, const CallArgs& a) {
    Params p(a, "glob", {"pattern"}, 1);
    std::string pattern = p.str(0);
    reject_nul(pattern);
    // The directory the pattern starts from must be readable.
    std::string base;
    {
        size_t magic = pattern.find_first_of("*?[");
        std::string lit = magic == std::string::npos ? pattern : pattern.substr(0, magic);
        size_t slash = lit.rfind('/');
        base = slash == std::string::npos ? "." : (slash == 0 ? "/" : lit.substr(0, slash));
        if (magic == std::string::npos) base = pattern;
    }
    require_read(cx, base, "listing");
    Caps caps = held(cx);
    std::vector<std::string> out = rt::run_blocking([caps, pattern] {
        Globber g(caps);
        std::vector<std::string> found;
        g.iglob(pattern, false, found);
        // A glob reports only paths the task may know exist (as fs.exists does: readable or
        // writable): `ok/*/../../secret/s.txt` must not tell whether secret/s.txt exists.
        std::erase_if(found, [&](const std::string& f) {
            return !caps->allows_read(f.empty() ? "." : f) && !caps->allows_write(f.empty() ? "." : f);
        });
        return found;
    });
    // Python drops the empty match of a bare "**" (the current directory itself).
    if (pattern == "**" && !out.empty() && out.front().empty()) out.erase(out.begin());
    return str_list(out);
}

}  // namespace

void init_fs_module(ModuleObj& m) {
    using stdlib::define_fn;
    define_fn(m, "read_file", fs_read_file);
    define_fn(m, "read_bytes", fs_read_bytes);
    define_fn(m, "write_file", fs_write_file);
    define_fn(m, "append_file", fs_append_file);
    define_fn(m, "glob", fs_glob);
    define_fn(m, "list_dir", fs_list_dir);
    define_fn(m, "exists", fs_exists);
    define_fn(m, "stat", fs_stat);
    define_fn(m, "file_size", fs_file_size);
    define_fn(m, "mkdir", fs_mkdir);
    define_fn(m, "remove", fs_remove);
    define_fn(m, "walk", fs_walk);
}

}  // namespace weft
