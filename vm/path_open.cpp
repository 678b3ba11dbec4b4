// path_open.cpp — resolving checked paths beneath their grant (see path_open.h for why).
//
// openat2(2) is called through syscall(2): glibc 2.36 has no wrapper. Its result is cached
// once ENOSYS is seen, so a kernel without it pays for one failed call per process.
#include "vm/path_open.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

namespace weft {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) close(fd_);
        fd_ = o.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) close(fd_);
}

bool is_escape_errno(int err) {
    return err == EXDEV || err == ELOOP;
}

std::string escape_message(const std::string& action, const std::string& path) {
    return action + " '" + path +
           "' was refused: the path left its granted folder while it was opened (a symlink or "
           "folder changed after the capability check)";
}

namespace {

std::atomic<bool> g_no_openat2{false};

std::vector<std::string> components(const std::string& rel) {
    return split_nonempty(rel, '/');
}

// The component walk used without openat2: every step refuses symlinks (O_NOFOLLOW) and
// `..` (a canonical path has none; one here means the path changed).
int walk_beneath(int rootfd, const std::string& rel, int flags, mode_t mode) {
    auto comps = components(rel);
    if (comps.empty()) return openat(rootfd, ".", flags | O_CLOEXEC, mode);
    int cur = rootfd;
    UniqueFd hold;
    for (size_t i = 0; i + 1 < comps.size(); ++i) {
        if (comps[i] == "..") return -EXDEV;
        int fd = openat(cur, comps[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return -errno;
        hold = UniqueFd(fd);
        cur = fd;
    }
    if (comps.back() == "..") return -EXDEV;
    int fd = openat(cur, comps.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
    return fd < 0 ? -errno : fd;
}

// Opens `rel` (relative, canonical) beneath the open folder `rootfd`.
int open_beneath(int rootfd, const std::string& rel, int flags, mode_t mode) {
    if (rel.empty()) {
        int fd = openat(rootfd, ".", flags | O_CLOEXEC, mode);
        return fd < 0 ? -errno : fd;
    }
    if (!g_no_openat2.load(std::memory_order_relaxed)) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = uint64_t(flags | O_CLOEXEC);
        how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        long fd;
        do {
            fd = syscall(SYS_openat2, rootfd, rel.c_str(), &how, sizeof how);
        } while (fd < 0 && errno == EAGAIN);
        if (fd >= 0) return int(fd);
        if (errno != ENOSYS && errno != EPERM) return -errno;
        // ENOSYS: an old kernel; EPERM: a seccomp filter refusing the new call.
        g_no_openat2.store(true, std::memory_order_relaxed);
    }
    return walk_beneath(rootfd, rel, flags, mode);
}

const CapabilitySet::Grant& grant_of(const CapabilitySet& caps, Access access) {
    return access == Access::Read ? caps.read : caps.write;
}

// The granted folder covering `canon` (nullptr when none does).
const std::string* covering(const CapabilitySet::Grant& g, const std::string& canon) {
    const std::string* best = nullptr;
    for (auto& item : g.items)
        if (path_within(canon, item) && (!best || item.size() > best->size())) best = &item;
    return best;
}

std::string relative_to(const std::string& canon, const std::string& root) {
    if (canon.size() == root.size()) return "";
    return canon.substr(root == "/" ? 1 : root.size() + 1);
}

int open_root(const std::string& root) {
    int fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

std::string parent_and_name(const std::string& path, std::string& name) {
    std::string p = path;
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    size_t k = p.rfind('/');
    name = k == std::string::npos ? p : p.substr(k + 1);
    if (name.empty() || name == "." || name == "..") {
        // No entry name to act on: the path is a folder given by its own name.
        std::string c = canonical_path(path);
        size_t j = c.rfind('/');
        name = c.substr(j + 1);
        return j == 0 ? "/" : c.substr(0, j);
    }
    return canonical_path(k == std::string::npos ? "." : (k == 0 ? "/" : p.substr(0, k)));
}

}  // namespace

int open_allowed(const CapabilitySet& caps, Access access, const std::string& path, int flags,
                 mode_t mode) {
    const auto& g = grant_of(caps, access);
    if (g.all) {
        int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
        return fd < 0 ? -errno : fd;
    }
    std::string canon = canonical_path(path);
    const std::string* root = covering(g, canon);
    if (!root) return -EACCES;
    if (canon == *root && *root != "/") {
        // The granted entry itself, which may be a file (--allow-read=data.csv): opened by its
        // name in its folder, never through a symlink in its place.
        std::string name;
        std::string parent = parent_and_name(*root, name);
        int pfd = open_root(parent);
        if (pfd < 0) return pfd;
        UniqueFd hold(pfd);
        int fd = openat(pfd, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode);
        return fd < 0 ? -errno : fd;
    }
    int rootfd = open_root(*root);
    if (rootfd < 0) return rootfd;
    UniqueFd hold(rootfd);
    return open_beneath(rootfd, relative_to(canon, *root), flags, mode);
}

int open_parent_allowed(const CapabilitySet& caps, Access access, const std::string& path,
                        std::string& name) {
    std::string parent = parent_and_name(path, name);
    const auto& g = grant_of(caps, access);
    if (g.all) {
        int fd = open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
    std::string entry = parent == "/" ? "/" + name : parent + "/" + name;
    const std::string* root = covering(g, entry);
    if (!root) return -EACCES;
    if (*root == entry) return open_root(parent);  // the granted folder itself
    int rootfd = open_root(*root);
    if (rootfd < 0) return rootfd;
    UniqueFd hold(rootfd);
    return open_beneath(rootfd, relative_to(parent, *root), O_PATH | O_DIRECTORY, 0);
}

int remove_tree_at(int parent, const std::string& name, bool recursive) {
    struct stat st;
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    if (!S_ISDIR(st.st_mode)) return unlinkat(parent, name.c_str(), 0) == 0 ? 0 : errno;
    if (recursive) {
        int fd = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return errno;
        DIR* d = fdopendir(fd);
        if (!d) {
            int e = errno;
            close(fd);
            return e;
        }
        std::vector<std::string> names;
        while (struct dirent* e = readdir(d))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                names.emplace_back(e->d_name);
        int err = 0;
        for (auto& n : names)
            if (int e = remove_tree_at(dirfd(d), n, true); e && e != ENOENT) {
                err = e;
                break;
            }
        closedir(d);
        if (err) return err;
    }
    return unlinkat(parent, name.c_str(), AT_REMOVEDIR) == 0 ? 0 : errno;
}

int make_dirs_allowed(const CapabilitySet& caps, const std::string& path, bool parents) {
    std::string canon = canonical_path(path);
    const std::string* root = caps.write.all ? nullptr : covering(caps.write, canon);
    if (!caps.write.all && !root) return EACCES;
    // The part at or above the granted folder (or everything, with a full grant) is created by
    // name: the command line named it.
    std::string top = caps.write.all ? canon : *root;
    std::vector<std::string> above;
    for (std::string p = top; p != "/"; p = p.substr(0, std::max<size_t>(p.rfind('/'), 1))) {
        struct stat st;
        if (stat(p.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) return p == canon ? EEXIST : ENOTDIR;
            break;
        }
        above.push_back(p);
    }
    if (!parents && above.size() > (canon == top ? 1u : 0u)) return ENOENT;
    for (auto it = above.rbegin(); it != above.rend(); ++it)
        if (mkdir(it->c_str(), 0777) != 0 && errno != EEXIST) return errno;
    if (caps.write.all || canon == top) return above.empty() && canon == top ? EEXIST : 0;
    // Below the granted folder: one mkdirat per missing component, from descriptors.
    int rootfd = open_root(top);
    if (rootfd < 0) return -rootfd;
    UniqueFd cur(rootfd);
    auto comps = components(relative_to(canon, top));
    for (size_t i = 0; i < comps.size(); ++i) {
        bool last = i + 1 == comps.size();
        if (last || parents) {
            if (mkdirat(cur.get(), comps[i].c_str(), 0777) != 0) {
                if (errno != EEXIST) return errno;
                if (last) return EEXIST;
            }
            if (last) return 0;
        }
        int fd = openat(cur.get(), comps[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return errno == ELOOP ? EXDEV : errno;
        cur = UniqueFd(fd);
    }
    return 0;
}

}  // namespace weft
